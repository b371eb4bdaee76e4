"""The classifier interface every training recipe implements.

A classifier is built once per AL run (condition x encoder x seed) and fitted again each round.
It refers to items by id; where its inputs come from (a feature matrix, the raw texts) is its
own business, so a linear head on frozen features and a fine-tuned transformer are
interchangeable inside the AL loop.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np


class Classifier(Protocol):
    n_classes: int
    # a classifier that reads `dev` in fit() says so (uses_dev = True): only then does the AL run
    # buy dev labels from its annotator (a recipe that ignores them must not pay for them)

    def fit(self, ids: Sequence[str], labels: np.ndarray, *,
            sample_weight: np.ndarray | None = None,
            dev: tuple[Sequence[str], np.ndarray] | None = None,
            meta: tuple[Sequence[str], np.ndarray] | None = None,
            negatives: tuple[Sequence[str], np.ndarray, float] | None = None) -> "Classifier":
        """Train from scratch (or warm start, if the recipe says so) on these labelled ids.

        `labels` are int class indices; `sample_weight` scales each example's loss; `dev` is an
        optional (ids, labels) set labelled by the condition's own annotator, for early stopping.
        `meta` is an optional clean (ids, human gold labels) set for learning to reweight
        (`training.reweight`); `negatives` = (ids, (n, n_classes) bool mask of the classes every
        annotator rejected, loss weight) for negative learning (`training.negative_learning`).
        The AL loop passes `meta` and `negatives` only when a condition asks for them, so
        recipes without them need not accept the keywords. Never pass test gold here.
        """

    def predict_proba(self, ids: Sequence[str]) -> np.ndarray:
        """Return an (n, n_classes) array of class probabilities, rows in the order of `ids`."""

    def info(self) -> dict[str, Any]:
        """What run.json should record about training (device, epochs run, timings...)."""
