"""A QueryContext backed by a classifier (llmal.models): what the AL loop hands a strategy.

Every output is computed on first use and cached for the round, so a strategy pays only for
what it asks. The classifier must have `predict_proba`; `embed`, `mc_dropout_proba` and
`perturbed_proba` only when a strategy needs them (models/logistic.py and models/finetune.py
have them; the logistic head has no dropout). Gradient embeddings are the closed-form BADGE
embeddings of the head: (p − e_ŷ) ⊗ embed(x).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from llmal.strategies.base import linear_grad_embeddings


class ModelContext:
    def __init__(self, classifier: Any, candidates: Sequence[str], labelled: Sequence[str], *,
                 rng: np.random.Generator, seed: int) -> None:
        self.classifier = classifier
        self.candidates = np.asarray(candidates, dtype=object)
        self.labelled = np.asarray(labelled, dtype=object)
        self.rng = rng
        self.seed = int(seed)
        self._cache: dict[Any, np.ndarray] = {}

    def probs(self) -> np.ndarray:
        return self._once(("probs",), lambda: self.classifier.predict_proba(list(self.candidates)))

    def labelled_probs(self) -> np.ndarray:
        return self._once(("labelled_probs",),
                          lambda: self.classifier.predict_proba(list(self.labelled)))

    def embeddings(self, ids: Sequence[str]) -> np.ndarray:
        ids = list(ids)
        if ids == list(self.candidates):
            return self._once(("embed", "candidates"), lambda: self._call("embed", ids))
        if ids == list(self.labelled):
            return self._once(("embed", "labelled"), lambda: self._call("embed", ids))
        return self._call("embed", ids)

    def grad_embeddings(self) -> np.ndarray:
        return self._once(("grad",), lambda: linear_grad_embeddings(
            self.embeddings(self.candidates), self.probs()))

    def mc_probs(self, passes: int) -> np.ndarray:
        return self._once(("mc", passes), lambda: self._call(
            "mc_dropout_proba", list(self.candidates), passes, self.seed))

    def perturbed_probs(self, passes: int, scale: float) -> np.ndarray:
        return self._once(("perturbed", passes, scale), lambda: self._call(
            "perturbed_proba", list(self.candidates), passes, scale, self.seed))

    def _call(self, method: str, *args: Any) -> np.ndarray:
        fn = getattr(self.classifier, method, None)
        if fn is None:
            raise ValueError(f"{type(self.classifier).__name__} has no {method}(): the query "
                             "strategy needs a model that supplies it")
        return np.asarray(fn(*args))

    def _once(self, key: tuple, compute: Any) -> np.ndarray:
        if key not in self._cache:
            self._cache[key] = np.asarray(compute())
        return self._cache[key]
