"""Classifiers behind one interface (models.base.Classifier): fit on labelled ids, predict probabilities."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from llmal.models.base import Classifier
from llmal.models.encoders import Features
from llmal.models.logistic import LogisticHead


def build_classifier(recipe: dict[str, Any], encoder: dict[str, Any], *, texts: Mapping[str, str],
                     features: Features | None, n_classes: int, seed: int,
                     fit_ids: Sequence[str] | None = None) -> Classifier:
    """The text classifier of a recipe (kinds logistic and finetune); a task with learners of its
    own (sequence taggers) builds those itself (llmal.tasks). `fit_ids`: the items a fitted
    projection of the features may learn from (pool and dev; None: all, transductive)."""
    kind = recipe["kind"]
    if kind == "logistic":
        if features is None:
            raise ValueError("the logistic recipe needs frozen features (an embeddings file)")
        return LogisticHead(features, recipe=recipe, n_classes=n_classes, seed=seed, fit_ids=fit_ids)
    if kind == "finetune":
        from llmal.models.finetune import build_finetune  # torch: optional, heavy
        return build_finetune(recipe, encoder, texts=texts, n_classes=n_classes, seed=seed)
    raise ValueError(f"unknown recipe kind {kind!r}")
