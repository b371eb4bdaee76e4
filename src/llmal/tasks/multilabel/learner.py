"""A one-vs-rest logistic head on frozen features: one logistic regression per label, and a
decision threshold per label (recipe `threshold`, default 0.5; `tune_thresholds: true` picks
each label's threshold that maximises its F1 on the dev labels the run bought, never on test).

predict_proba returns LabelProbs: the (n, n_labels) per-label probabilities, carrying the
thresholds, so the task scores predictions as `probs > thresholds` while the strategies read
plain probabilities.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from llmal.models.encoders import Features
from llmal.models.logistic import LogisticHead

CANDIDATE_THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)


class LabelProbs(np.ndarray):
    """Per-label probabilities (n, n_labels) with the decision thresholds (n_labels,)."""
    thresholds: np.ndarray

    def __new__(cls, probs: np.ndarray, thresholds: np.ndarray) -> "LabelProbs":
        out = np.asarray(probs, dtype=np.float64).view(cls)
        out.thresholds = np.asarray(thresholds, dtype=np.float64)
        return out

    def __array_finalize__(self, obj: Any) -> None:
        self.thresholds = getattr(obj, "thresholds", None)


def decisions(probs: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
    """0/1 predictions: a label is predicted when its probability exceeds its threshold."""
    t = getattr(probs, "thresholds", None) if thresholds is None else thresholds
    t = np.full(np.shape(probs)[1], 0.5) if t is None else np.asarray(t)
    return (np.asarray(probs) > t).astype(np.int8)


def tune_threshold(y: np.ndarray, p: np.ndarray, default: float) -> float:
    """The candidate threshold with the best F1 of one label on (y, p); ties: nearest the
    default; no positive in y: the default."""
    if y.sum() == 0:
        return default
    best, best_f1 = default, -1.0
    for t in sorted(CANDIDATE_THRESHOLDS, key=lambda c: (abs(c - default), c)):
        pred = p > t
        tp = float((pred & (y == 1)).sum())
        f1 = 2 * tp / (pred.sum() + y.sum()) if pred.sum() + y.sum() else 0.0
        if f1 > best_f1 + 1e-12:
            best, best_f1 = float(t), f1
    return best


class OneVsRestHead:
    def __init__(self, features: Features, *, recipe: dict[str, Any], n_labels: int, seed: int,
                 fit_ids: Sequence[str] | None = None) -> None:
        self.features, self.recipe, self.n_labels, self.seed = features, recipe, n_labels, seed
        self._embedder = LogisticHead(features, recipe=recipe, n_classes=2, seed=seed, fit_ids=fit_ids)
        self._models: list[Any] = []
        self.thresholds = np.full(n_labels, float(recipe.get("threshold", 0.5)))
        self._seconds = 0.0

    def fit(self, ids: Sequence[str], labels: np.ndarray, *, sample_weight: np.ndarray | None = None,
            dev: tuple[Sequence[str], np.ndarray] | None = None, meta: Any = None,
            negatives: Any = None) -> "OneVsRestHead":
        if meta is not None or negatives is not None:
            raise ValueError("task multilabel: the one-vs-rest head trains on label sets only "
                             "(no reweighting meta set, no negative learning)")
        from sklearn.linear_model import LogisticRegression

        start = time.perf_counter()
        y = np.asarray(labels, dtype=np.int64).reshape(len(ids), self.n_labels)
        X = self.features.rows(list(ids))
        cw = self.recipe.get("class_weight", "balanced")
        self._models = []
        for k in range(self.n_labels):
            if np.unique(y[:, k]).size < 2:   # one value seen so far: its smoothed frequency
                self._models.append((y[:, k].sum() + 1.0) / (len(y) + 2.0))
                continue
            m = LogisticRegression(C=float(self.recipe.get("C", 1.0)), class_weight=None if cw == "none" else cw,
                                   max_iter=int(self.recipe.get("max_iter", 1000)), random_state=self.seed)
            self._models.append(m.fit(X, y[:, k], sample_weight=sample_weight))
        default = float(self.recipe.get("threshold", 0.5))
        self.thresholds = np.full(self.n_labels, default)
        if self.recipe.get("tune_thresholds") and dev is not None and len(dev[0]):
            p = np.asarray(self._probs(list(dev[0])))
            ydev = np.asarray(dev[1], dtype=np.int64).reshape(len(dev[0]), self.n_labels)
            self.thresholds = np.array([tune_threshold(ydev[:, k], p[:, k], default)
                                        for k in range(self.n_labels)])
        self._seconds += time.perf_counter() - start
        return self

    def _probs(self, ids: Sequence[str]) -> np.ndarray:
        if not self._models:
            raise RuntimeError("predict_proba before fit")
        X = self.features.rows(list(ids))
        out = np.empty((len(ids), self.n_labels))
        for k, m in enumerate(self._models):
            out[:, k] = m if isinstance(m, float) else m.predict_proba(X)[:, 1]
        return out

    def predict_proba(self, ids: Sequence[str]) -> LabelProbs:
        return LabelProbs(self._probs(ids), self.thresholds)

    def embed(self, ids: Sequence[str]) -> np.ndarray:
        return self._embedder.embed(ids)

    def info(self) -> dict[str, Any]:
        return {"device": "cpu", "kind": "logistic", "train_seconds": round(self._seconds, 3)}
