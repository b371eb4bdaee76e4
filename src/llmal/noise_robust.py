"""Noise-robust training options of a condition (`conditions.<name>.training`), S1 and S3.

- Annotation discrepancy (S1, MoLLIA): an item whose annotator label disagrees with what the
  classifier of the previous round predicted for it when it was queried is trained with weight
  `discrepancy_alpha` instead of 1.
- Negative learning (S1): items the mixture gave no label but whose rejected classes are known
  (`rejected_by_all`) train with a complementary-label loss whose weight grows per round.
- Learning to reweight (S3, LLMaAA after Ren et al. 2018): a small gold-labelled meta set drawn
  from the dev split steers per-example weights inside the fine-tuning loop
  (llmal.models.reweight).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

NO_PREDICTION = -1  # the item was queried before any classifier existed (round 0)


@dataclass(frozen=True)
class TrainingOptions:
    discrepancy_alpha: float | None = None
    meta_size: int | None = None   # None: no learning to reweight
    meta_seed: int = 0
    negative_weight: float | None = None  # None: no negative learning
    negative_growth: float = 1.5

    @classmethod
    def from_config(cls, training: Mapping[str, Any] | None) -> "TrainingOptions":
        training = dict(training or {})
        allowed = ["discrepancy_alpha", "negative_learning", "reweight"]
        unknown = sorted(set(training) - set(allowed))
        if unknown:
            raise ValueError(f"training: unknown key(s) {unknown}; allowed: {allowed}")
        alpha = training.get("discrepancy_alpha")
        if alpha is not None and not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"training.discrepancy_alpha must lie in [0, 1], got {alpha!r}")
        options: dict[str, Any] = {"discrepancy_alpha": None if alpha is None else float(alpha)}
        reweight = training.get("reweight")
        if reweight is not None:
            options["meta_size"] = int(reweight.get("meta_size", 32))
            options["meta_seed"] = int(reweight.get("seed", 0))
            if options["meta_size"] < 1:
                raise ValueError(f"training.reweight.meta_size must be >= 1, got {options['meta_size']!r}")
        negative = training.get("negative_learning")
        if negative is not None:
            options["negative_weight"] = float(negative.get("weight", 0.1))
            options["negative_growth"] = float(negative.get("growth", 1.5))
            for key in ("weight", "growth"):
                if not options[f"negative_{key}"] >= 0:
                    raise ValueError(f"training.negative_learning.{key} must be >= 0, "
                                     f"got {negative.get(key)!r}")
        return cls(**options)

    @property
    def reweight(self) -> bool:
        return self.meta_size is not None

    @property
    def negative_learning(self) -> bool:
        return self.negative_weight is not None

    def negative_weight_at(self, round_: int) -> float:
        """weight * growth^round: the negative-learning loss weight of an AL round."""
        if self.negative_weight is None:
            raise ValueError("negative learning is off")
        return self.negative_weight * self.negative_growth ** round_


def discrepancy_weights(labels: np.ndarray, predictions: np.ndarray, alpha: float) -> np.ndarray:
    """Weight alpha where the label disagrees with the prediction made at query time, else 1.

    `predictions` holds NO_PREDICTION for items queried before any classifier existed; they keep
    weight 1.
    """
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ in shape")
    disagree = (predictions != NO_PREDICTION) & (predictions != labels)
    return np.where(disagree, float(alpha), 1.0)


def rejected_classes(answers: str, label_names: Sequence[str], *, item: str) -> np.ndarray:
    """The (n_classes,) bool mask of a mixture's `rejected_by_all` labels in an answers JSON
    (all False when the key is absent: the annotator is not a mixture)."""
    try:
        rejected = json.loads(answers or "{}").get("rejected_by_all") or []
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(f"item {item!r}: answers is not a JSON object: {answers[:80]!r}") from None
    names = list(label_names)
    unknown = [r for r in rejected if r not in names]
    if unknown:
        raise ValueError(f"item {item!r}: rejected_by_all names unknown labels {unknown} "
                         f"(labels.names: {names})")
    mask = np.zeros(len(names), dtype=bool)
    mask[[names.index(r) for r in rejected]] = True
    return mask


def draw_meta_ids(dev_ids: Sequence[str], *, size: int, seed: int) -> list[str]:
    """`size` dev items (all when fewer), in dev order: the clean meta set, chosen before its
    gold labels are bought (through the run's ledger)."""
    if len(dev_ids) == 0:
        raise ValueError("training.reweight: the split has no dev item to draw the gold meta set from")
    n = min(size, len(dev_ids))
    chosen = np.sort(np.random.default_rng(seed).choice(len(dev_ids), size=n, replace=False))
    return [str(dev_ids[i]) for i in chosen]


def draw_meta_set(dev_ids: Sequence[str], gold: np.ndarray, *, size: int,
                  seed: int) -> tuple[list[str], np.ndarray]:
    """`size` dev items (all when fewer) with their human gold labels, in dev order."""
    gold = np.asarray(gold, dtype=np.int64)
    if len(dev_ids) != len(gold):
        raise ValueError("draw_meta_set: dev_ids and gold differ in length")
    chosen = draw_meta_ids(dev_ids, size=size, seed=seed)
    position = {str(i): n for n, i in enumerate(dev_ids)}
    return chosen, gold[[position[i] for i in chosen]]
