"""A linear head (logistic regression) on frozen features."""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from llmal.encoders import Features


class LogisticHead:
    def __init__(self, features: Features, *, recipe: dict[str, Any], n_classes: int, seed: int):
        self.features = features
        self.recipe = recipe
        self.n_classes = n_classes
        self.seed = seed
        self._model: Any = None
        self._prior: np.ndarray | None = None
        self._seconds = 0.0

    def fit(self, ids: Sequence[str], labels: np.ndarray, *, sample_weight: np.ndarray | None = None,
            dev: tuple[Sequence[str], np.ndarray] | None = None,
            meta: tuple[Sequence[str], np.ndarray] | None = None,
            negatives: tuple[Sequence[str], np.ndarray, float] | None = None) -> "LogisticHead":
        if negatives is not None:
            raise ValueError("training.negative_learning needs a recipe of kind finetune; the "
                             "logistic recipe cannot train on complementary labels")
        if meta is not None:
            raise ValueError("training.reweight (learning to reweight with a gold meta set) needs "
                             "a recipe of kind finetune; the logistic recipe cannot use it")
        from sklearn.linear_model import LogisticRegression

        start = time.perf_counter()
        labels = np.asarray(labels, dtype=np.int64)
        present = np.unique(labels)
        if present.size < 2:
            # one class seen so far: predict the (smoothed) label frequencies
            counts = np.bincount(labels, minlength=self.n_classes).astype(float) + 1.0
            self._model, self._prior = None, counts / counts.sum()
        else:
            cw = self.recipe.get("class_weight", "balanced")
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
        probs = np.zeros((len(ids), self.n_classes))
        probs[:, self._model.classes_] = self._model.predict_proba(self.features.rows(ids))
        return probs

    def info(self) -> dict[str, Any]:
        return {"device": "cpu", "kind": "logistic", "train_seconds": round(self._seconds, 3)}
