"""Query strategies over sentences (task: ner), scored from a tagger's SequenceOutput.

- random: uniformly random sentences;
- mean_token_entropy (S2): the mean over tokens of the entropy of the token's tag marginals;
- total_token_entropy: their sum (favours long sentences);
- least_confidence (S3): 1 - P(best tag sequence);
- mnlp: maximum normalised log-probability, -log P(best sequence) / length (Shen et al. 2018);
- kmeans (S3): k-means of sentence embeddings (the run's encoder over the sentence text), the
  sentence nearest each centroid (llmal.strategies.catalog.KMeansSampling).
Every score is highest-first with random tie breaking (llmal.strategies.base.top_k).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from llmal.strategies.base import Strategy, top_k
from llmal.strategies.catalog import make_strategy

SEQUENCE_STRATEGIES = ("random", "mean_token_entropy", "total_token_entropy", "least_confidence",
                       "mnlp", "kmeans")


def _entropies(marginals: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = []
    for m in marginals:
        p = np.clip(np.asarray(m, dtype=np.float64), 1e-12, 1.0)
        out.append(-(p * np.log(p)).sum(axis=1))
    return out


def sequence_scores(out: Any) -> dict[str, np.ndarray]:
    """Every uncertainty score of a SequenceOutput, one value per sentence (higher = query first)."""
    ent = _entropies(out.marginals)
    lengths = np.array([max(1, len(b)) for b in out.best], dtype=np.float64)
    logp = np.asarray(out.best_logprob, dtype=np.float64)
    return {
        "mean_token_entropy": np.array([e.mean() if e.size else 0.0 for e in ent]),
        "total_token_entropy": np.array([e.sum() for e in ent]),
        "least_confidence": 1.0 - np.exp(logp),
        "mnlp": -logp / lengths,
    }


class SequenceContext:
    """The query context of a tagger: candidates, labelled, rng, the tagger's output on the
    candidates (computed once per round) and sentence embeddings (`embed` of the tagger)."""

    def __init__(self, classifier: Any, candidates: Sequence[str], labelled: Sequence[str], *,
                 rng: np.random.Generator, seed: int) -> None:
        self.classifier = classifier
        self.candidates = np.asarray(candidates, dtype=object)
        self.labelled = np.asarray(labelled, dtype=object)
        self.rng, self.seed = rng, int(seed)
        self._scores: dict[str, np.ndarray] | None = None

    def scores(self) -> dict[str, np.ndarray]:
        if self._scores is None:
            self._scores = sequence_scores(self.classifier.predict_proba(list(self.candidates)))
        return self._scores

    def embeddings(self, ids: Sequence[str]) -> np.ndarray:
        return np.asarray(self.classifier.embed(list(ids)))


class SequenceScore(Strategy):
    """Query the sentences with the highest value of one sequence_scores() entry."""

    def __init__(self, score: str) -> None:
        self.score = score

    def _select(self, ctx: Any, k: int) -> np.ndarray:
        return top_k(ctx.scores()[self.score], k, ctx.rng)


def make_sequence_strategy(name: str) -> Strategy:
    if name not in SEQUENCE_STRATEGIES:
        raise ValueError(f"query strategy {name!r} is not one for sequence labelling "
                         f"(task: ner knows {list(SEQUENCE_STRATEGIES)})")
    if name in ("random", "kmeans"):
        return make_strategy(name)
    strategy = SequenceScore(name)
    strategy.name = name
    return strategy
