"""A linear head (logistic regression) on frozen features."""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from llmal.models.encoders import Features
from llmal.models.perturb import perturbed_linear_proba
from llmal.models.softmax import SoftmaxRegression

PREDICT_BLOCK = 8192   # rows scored at a time by predict_proba


class LogisticHead:
    def __init__(self, features: Features, *, recipe: dict[str, Any], n_classes: int, seed: int,
                 fit_ids: Sequence[str] | None = None):
        """`fit_ids`: the rows a fitted projection (the SVD of `embed`) may learn from (pool and
        dev: never test); None: every row (an encoder with `transductive: true`)."""
        self.features = features
        self.fit_ids = None if fit_ids is None else list(fit_ids)
        self.recipe = recipe
        self.n_classes = n_classes
        self.seed = seed
        self._model: Any = None
        self._prior: np.ndarray | None = None
        self._seconds = 0.0
        self._svd: Any = None

    def fit(self, ids: Sequence[str], labels: np.ndarray, *, sample_weight: np.ndarray | None = None,
            dev: tuple[Sequence[str], np.ndarray] | None = None,
            meta: tuple[Sequence[str], np.ndarray] | None = None,
            negatives: tuple[Sequence[str], np.ndarray, float] | None = None) -> "LogisticHead":
        if meta is not None:
            raise ValueError("training.reweight (learning to reweight with a gold meta set) needs "
                             "a recipe of kind finetune; the logistic recipe cannot use it")
        from sklearn.linear_model import LogisticRegression

        start = time.perf_counter()
        labels = np.asarray(labels, dtype=np.int64)
        present = np.unique(labels)
        cw = self.recipe.get("class_weight", "balanced")
        if negatives is not None and len(negatives[0]) and present.size >= 1:
            # S1's negative learning: scikit-learn has no complementary-label term, so a small
            # softmax regression fitted with L-BFGS (llmal.models.softmax) takes its place

            neg_ids, mask, weight = negatives
            self._model = SoftmaxRegression(
                self.n_classes, C=float(self.recipe.get("C", 1.0)),
                class_weight=None if cw == "none" else cw, max_iter=int(self.recipe.get("max_iter", 1000)))
            self._model.fit(self.features.rows(ids), labels, sample_weight=sample_weight,
                            negatives=(self.features.rows(list(neg_ids)), np.asarray(mask, dtype=bool),
                                       float(weight)))
            self._prior = None
        elif present.size < 2:
            # one class seen so far: predict the (smoothed) label frequencies
            counts = np.bincount(labels, minlength=self.n_classes).astype(float) + 1.0
            self._model, self._prior = None, counts / counts.sum()
        else:
            self._model = LogisticRegression(
                C=float(self.recipe.get("C", 1.0)), class_weight=None if cw == "none" else cw,
                max_iter=int(self.recipe.get("max_iter", 1000)), random_state=self.seed)
            self._model.fit(self.features.rows(ids), labels, sample_weight=sample_weight)
            self._prior = None
        self._seconds += time.perf_counter() - start
        return self

    def predict_proba(self, ids: Sequence[str]) -> np.ndarray:
        if self._model is None:
            if self._prior is None:
                raise RuntimeError("predict_proba before fit")
            return np.tile(self._prior, (len(ids), 1))
        # in blocks of rows: a pool of 200k candidates on a 384-d encoder would otherwise be
        # copied whole (300 MB) for one round's scores; each row's probabilities are its own
        probs = np.zeros((len(ids), self.n_classes))
        ids = list(ids)
        for start in range(0, len(ids), PREDICT_BLOCK):
            block = ids[start:start + PREDICT_BLOCK]
            probs[start:start + len(block), self._model.classes_] = self._model.predict_proba(self.features.rows(block))
        return probs

    def embed(self, ids: Sequence[str]) -> np.ndarray:
        """Dense features the head sees (float32). Sparse (TF-IDF) features are projected by a
        truncated SVD (`recipe.embed_dim` components, default 128) fitted once on the `fit_ids`
        rows (pool and dev), so nothing of the test set shapes the embedding."""
        X = self.features.rows(ids)
        if not sp.issparse(X):
            return np.asarray(X, dtype=np.float32)
        if self._svd is None:
            from sklearn.decomposition import TruncatedSVD
            dim = min(int(self.recipe.get("embed_dim", 128)), self.features.X.shape[1] - 1)
            self._svd = TruncatedSVD(n_components=max(1, dim), random_state=self.seed)
            self._svd.fit(self.features.X if self.fit_ids is None else self.features.rows(self.fit_ids))
        return self._svd.transform(X).astype(np.float32)

    def perturbed_proba(self, ids: Sequence[str], passes: int, scale: float,
                        seed: int) -> np.ndarray:
        """(passes, n, C) probabilities with Gaussian noise of norm `scale` × |coef| added to the
        weights (S1's noise stability); a head fitted on one class has no weights, so every
        pass repeats its prior."""
        if self._model is None:
            return np.tile(self.predict_proba(ids)[None], (passes, 1, 1))
        m = self._model
        raw = perturbed_linear_proba(self.features.rows(ids), m.coef_, m.intercept_,
                                     passes=passes, scale=scale, seed=seed,
                                     binary_logistic=m.coef_.shape[0] == 1)
        out = np.zeros((passes, len(ids), self.n_classes))
        out[:, :, m.classes_] = raw
        return out

    def info(self) -> dict[str, Any]:
        return {"device": "cpu", "kind": "logistic", "train_seconds": round(self._seconds, 3)}
