"""Noise-robust training options of a condition (`conditions.<name>.training`), S1 and S3.

- Annotation discrepancy (S1, MoLLIA): an item whose annotator label disagrees with what the
  classifier of the previous round predicted for it when it was queried is trained with weight
  `discrepancy_alpha` instead of 1.
- Negative learning (S1): complementary labels, trained with the loss -log(1 - p(class)) and a
  weight that grows per round (weight + increment * round, S1's 0.4 + 0.06 * round by default;
  weight * growth^round when `growth` is set). Rule `probability` (S1): for every bought item,
  the classes whose mean member probability (a mixture's `member_mean`, else the annotator's
  recorded label distribution) is at most `threshold`, never the item's own label; rule
  `rejected_by_all`: items the mixture gave no label, with the classes no member chose.
- Soft labels: an item with a known label distribution (`probs`: logprobs, vote shares, a
  mixture's posterior) trains on every class c with weight q_c (times its sample weight), which
  is cross-entropy against the distribution; items without one keep their hard label.
- Learning to reweight (S3, LLMaAA after Ren et al. 2018): a small gold-labelled meta set drawn
  from the dev split (or, `meta_set: demonstrations`, the LLM annotator's k-NN demonstration
  pool, as S3 does) steers per-example weights inside the fine-tuning loop
  (llmal.models.reweight).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from llmal import label_probs
from llmal.tasks.draws import draw_meta_ids

NO_PREDICTION = -1  # the item was queried before any classifier existed (round 0)
NEGATIVE_RULES = ("probability", "rejected_by_all")
META_SETS = ("dev", "demonstrations")


@dataclass(frozen=True)
class TrainingOptions:
    discrepancy_alpha: float | None = None
    meta_size: int | None = None   # None: no learning to reweight
    meta_seed: int = 0
    meta_set: str = "dev"          # dev: drawn from the dev split; demonstrations: the LLM's pool
    negative_weight: float | None = None  # None: no negative learning
    negative_growth: float | None = None  # None: linear growth by negative_increment per round
    negative_increment: float = 0.06
    negative_rule: str = "probability"
    negative_threshold: float = 0.001
    soft_labels: bool = False

    @classmethod
    def from_config(cls, training: Mapping[str, Any] | None) -> "TrainingOptions":
        training = dict(training or {})
        allowed = ["discrepancy_alpha", "negative_learning", "reweight", "soft_labels"]
        unknown = sorted(set(training) - set(allowed))
        if unknown:
            raise ValueError(f"training: unknown key(s) {unknown}; allowed: {allowed}")
        alpha = training.get("discrepancy_alpha")
        if alpha is not None and not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"training.discrepancy_alpha must lie in [0, 1], got {alpha!r}")
        options: dict[str, Any] = {"discrepancy_alpha": None if alpha is None else float(alpha),
                                   "soft_labels": bool(training.get("soft_labels", False))}
        reweight = training.get("reweight")
        if reweight is not None:
            options["meta_size"] = int(reweight.get("meta_size", 32))
            options["meta_seed"] = int(reweight.get("seed", 0))
            options["meta_set"] = str(reweight.get("meta_set", "dev"))
            if options["meta_set"] not in META_SETS:
                raise ValueError(f"training.reweight.meta_set must be one of {list(META_SETS)}, "
                                 f"got {options['meta_set']!r}")
            if options["meta_size"] < 1:
                raise ValueError(f"training.reweight.meta_size must be >= 1, got {options['meta_size']!r}")
        negative = training.get("negative_learning")
        if negative is not None:
            options["negative_weight"] = float(negative.get("weight", 0.4))
            if negative.get("growth") is not None:
                options["negative_growth"] = float(negative["growth"])
            options["negative_increment"] = float(negative.get("increment", 0.06))
            options["negative_rule"] = str(negative.get("rule", "probability"))
            options["negative_threshold"] = float(negative.get("threshold", 0.001))
            for key in ("weight", "growth", "increment", "threshold"):
                value = options.get(f"negative_{key}")
                if value is not None and not value >= 0:
                    raise ValueError(f"training.negative_learning.{key} must be >= 0, "
                                     f"got {negative.get(key)!r}")
            if options["negative_rule"] not in NEGATIVE_RULES:
                raise ValueError(f"training.negative_learning.rule must be one of {NEGATIVE_RULES}, "
                                 f"got {options['negative_rule']!r}")
        return cls(**options)

    @property
    def reweight(self) -> bool:
        return self.meta_size is not None

    @property
    def negative_learning(self) -> bool:
        return self.negative_weight is not None

    def negative_weight_at(self, round_: int) -> float:
        """The negative-learning loss weight of an AL round: weight + increment * round (S1),
        or weight * growth^round when growth is set."""
        if self.negative_weight is None:
            raise ValueError("negative learning is off")
        if self.negative_growth is not None:
            return self.negative_weight * self.negative_growth ** round_
        return self.negative_weight + self.negative_increment * round_


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


def member_distribution(answers: str, probs: str, label_names: Sequence[str]) -> np.ndarray | None:
    """The label distribution S1's rule looks at: a mixture's mean member distribution
    (`member_mean` in answers), else the annotator's recorded one (`probs`: label, then votes)."""

    try:
        mean = json.loads(answers or "{}").get("member_mean")
    except (json.JSONDecodeError, AttributeError):
        mean = None
    dist = label_probs.distribution(mean, label_names)
    if dist is None:
        cell = label_probs.read_cell(probs)
        dist = label_probs.distribution(cell.get("label"), label_names)
        if dist is None:
            dist = label_probs.distribution(cell.get("votes"), label_names)
    return dist


def negative_mask(answers: str, probs: str, label: int | None, label_names: Sequence[str],
                  options: TrainingOptions, *, item: str) -> np.ndarray:
    """The (K,) mask of an item's complementary labels under the options' rule (see module doc)."""
    if options.negative_rule == "rejected_by_all":
        if label is not None:
            return np.zeros(len(label_names), dtype=bool)
        return rejected_classes(answers, label_names, item=item)
    dist = member_distribution(answers, probs, label_names)
    if dist is None:
        return np.zeros(len(label_names), dtype=bool)
    mask = dist <= options.negative_threshold
    if label is not None:
        mask[int(label)] = False
    return mask


def soft_targets(ids: Sequence[str], labels: np.ndarray, table: Any, label_names: Sequence[str],
                 weights: np.ndarray | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(ids, labels, weights) with every item that has a label distribution (probs `label`, else
    `votes`) expanded into one row per class of positive probability, weighted by it."""

    cells = dict(zip(table["id"].astype(str), table["probs"].astype(str))) if "probs" in table else {}
    w = np.ones(len(ids)) if weights is None else np.asarray(weights, dtype=float)
    out_ids: list[str] = []
    out_labels: list[int] = []
    out_w: list[float] = []
    for item, y, wi in zip(ids, labels, w):
        cell = label_probs.read_cell(cells.get(str(item), "{}"))
        dist = label_probs.distribution(cell.get("label"), label_names)
        if dist is None:
            dist = label_probs.distribution(cell.get("votes"), label_names)
        if dist is None:
            out_ids.append(item), out_labels.append(int(y)), out_w.append(float(wi))
            continue
        for c in np.flatnonzero(dist > 0):
            out_ids.append(item), out_labels.append(int(c)), out_w.append(float(wi * dist[c]))
    return out_ids, np.array(out_labels, dtype=np.int64), np.array(out_w)


def draw_meta_set(dev_ids: Sequence[str], gold: np.ndarray, *, size: int,
                  seed: int) -> tuple[list[str], np.ndarray]:
    """`size` dev items (all when fewer) with their human gold labels, in dev order."""
    gold = np.asarray(gold, dtype=np.int64)
    if len(dev_ids) != len(gold):
        raise ValueError("draw_meta_set: dev_ids and gold differ in length")
    chosen = draw_meta_ids(dev_ids, size=size, seed=seed)
    position = {str(i): n for n, i in enumerate(dev_ids)}
    return chosen, gold[[position[i] for i in chosen]]
