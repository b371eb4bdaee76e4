"""A linear-chain CRF tagger on hand-made token features (sklearn-crfsuite): the fast CPU
baseline of task: ner, behind the classifier interface of llmal.models.base generalised to
sequences: `fit(ids, tag_sequences)`, `predict_proba(ids) -> SequenceOutput` (per-token
marginals, the Viterbi sequence and its probability).

Recipe keys (kind: crf): c1, c2 (L1/L2 penalties), max_iterations, embed_dim (sentence
embeddings for kmeans: the run's encoder, projected as for the linear head).
Token features: the lower-cased word, its last/first 2-3 characters, shape flags (title, upper,
digit, punctuation), and the same for the words one to the left and right.
"""
from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import numpy as np

from llmal.tasks.ner.task import SequenceOutput


def _word_features(w: str, prefix: str) -> dict[str, Any]:
    return {f"{prefix}lower": w.lower(), f"{prefix}suf3": w[-3:].lower(), f"{prefix}title": w.istitle(),
            f"{prefix}upper": w.isupper(), f"{prefix}digit": w.isdigit()}


def token_features(tokens: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    n = len(tokens)
    for i, w in enumerate(tokens):
        f: dict[str, Any] = {"bias": 1.0, **_word_features(w, ""), "suf2": w[-2:].lower(),
                             "pre2": w[:2].lower(), "pre3": w[:3].lower(),
                             "punct": not any(c.isalnum() for c in w), "first": i == 0}
        if i > 0:
            f.update(_word_features(tokens[i - 1], "-1:"))
        else:
            f["BOS"] = True
        if i < n - 1:
            f.update(_word_features(tokens[i + 1], "+1:"))
        else:
            f["EOS"] = True
        out.append(f)
    return out


class CRFTagger:
    uses_dev = False

    def __init__(self, tokens: Mapping[str, Sequence[str]], tag_names: Sequence[str], *,
                 recipe: Mapping[str, Any], seed: int, features: Any = None) -> None:
        self.tokens = tokens
        self.tag_names = list(tag_names)
        self.n_classes = len(self.tag_names)
        self.recipe, self.seed = dict(recipe), int(seed)
        self._features = features
        self._embedder: Any = None
        self._crf: Any = None
        self._x: dict[str, list[dict[str, Any]]] = {}
        self._seconds = 0.0
        self._fits = 0

    def _X(self, ids: Sequence[str]) -> list[list[dict[str, Any]]]:
        out = []
        for i in ids:
            x = self._x.get(i)
            if x is None:
                x = self._x[i] = token_features(self.tokens[i])
            out.append(x)
        return out

    def fit(self, ids: Sequence[str], labels: np.ndarray, *, sample_weight: np.ndarray | None = None,
            dev: Any = None, **_unused: Any) -> "CRFTagger":
        import sklearn_crfsuite

        if sample_weight is not None and not np.allclose(sample_weight, 1.0):
            raise ValueError("the crf recipe takes no sample weights")
        start = time.perf_counter()
        crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=float(self.recipe.get("c1", 0.1)),
                                   c2=float(self.recipe.get("c2", 0.1)),
                                   max_iterations=int(self.recipe.get("max_iterations", 100)),
                                   all_possible_transitions=True)
        crf.fit(self._X(list(ids)), [list(t) for t in labels])
        self._crf = crf
        self._seconds = time.perf_counter() - start
        self._fits += 1
        return self

    def predict_proba(self, ids: Sequence[str]) -> SequenceOutput:
        ids = list(ids)
        if self._crf is None:
            raise RuntimeError("the CRF tagger is not fitted")
        X = self._X(ids)
        k = {t: n for n, t in enumerate(self.tag_names)}
        marginals = []
        for sent in self._crf.predict_marginals(X):
            m = np.zeros((len(sent), self.n_classes))
            for pos, probs in enumerate(sent):
                for tag, p in probs.items():
                    if tag in k:
                        m[pos, k[tag]] = p
            marginals.append(m)
        tagger = self._crf.tagger_
        best, logp = [], np.zeros(len(ids))
        for n, x in enumerate(X):
            tagger.set(x)
            path = tagger.tag()
            best.append(list(path))
            logp[n] = np.log(max(tagger.probability(path), 1e-300))
        return SequenceOutput(marginals, best, logp)

    def embed(self, ids: Sequence[str]) -> np.ndarray:
        """Sentence embeddings (kmeans): the run's encoder features, as the linear head sees them."""
        if self._features is None:
            raise ValueError("the kmeans strategy needs sentence embeddings: give the condition a "
                             "feature encoder (tfidf or sentence_transformer)")
        if self._embedder is None:
            from llmal.models.logistic import LogisticHead  # scikit-learn, only for kmeans embeddings
            self._embedder = LogisticHead(self._features, recipe=self.recipe, n_classes=1, seed=self.seed)
        return self._embedder.embed(ids)

    def info(self) -> dict[str, Any]:
        return {"device": "cpu", "kind": "crf", "train_seconds": round(self._seconds, 3), "fits": self._fits}
