"""Classifiers behind one interface (models.base.Classifier): fit on labelled ids, predict probabilities."""
from __future__ import annotations

from typing import Any, Mapping

from llmal.encoders import Features
from llmal.models.base import Classifier


def build_classifier(recipe: dict[str, Any], encoder: dict[str, Any], *, texts: Mapping[str, str],
                     features: Features | None, n_classes: int, seed: int, task: Any = None) -> Classifier:
    """`task`: the run's task; a sequence tagger (kind crf, or finetune under task ner: token
    classification) reads the sentences' tokens and tags from it."""
    kind = recipe["kind"]
    if kind == "crf":
        from llmal.ner.crf import CRFTagger
        if getattr(task, "kind", None) != "ner":
            raise ValueError("the crf recipe tags sentences: it needs task: ner")
        return CRFTagger(task.tokens, task.tag_names, recipe=recipe, seed=seed, features=features)
    if kind == "logistic":
        if features is None:
            raise ValueError("the logistic recipe needs frozen features (an embeddings file)")
        from llmal.models.logistic import LogisticHead
        return LogisticHead(features, recipe=recipe, n_classes=n_classes, seed=seed)
    if kind == "finetune" and getattr(task, "kind", None) == "ner":
        from llmal.ner.transformer import TransformerTagger
        return TransformerTagger(task.tokens, task.tag_names, encoder=encoder, recipe=recipe, seed=seed)
    if kind == "finetune":
        from llmal.models.finetune import build_finetune
        return build_finetune(recipe, encoder, texts=texts, n_classes=n_classes, seed=seed)
    raise ValueError(f"unknown recipe kind {kind!r}")
