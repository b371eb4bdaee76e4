"""Active-learning round simulation for one condition x encoder x seed.

The annotator's labels are looked up in its annotation table (annotated ahead of time, so the
simulation can replay any sampler over the same answers). Every label acquired is counted and
paid for; only labels with status ok are trained on. The test split is scored against human
gold only and is never queried.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from llmal.metrics import classification_metrics, soft_label_metrics, vote_counts
from llmal.models.base import Classifier
from llmal.noise_robust import (NO_PREDICTION, TrainingOptions, discrepancy_weights,
                                draw_meta_set, rejected_classes)
from llmal.samplers import select
from llmal.tables import annotator_columns


# what a classifier's info() may report about one round's training, copied into rounds.csv
ROUND_TRAINING_KEYS = ("epochs_run", "best_dev_f1", "stopped_early", "train_seconds")


@dataclass
class ALResult:
    rounds: pd.DataFrame
    queried: pd.DataFrame
    predictions: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Schedule:
    initial: int
    batch: int
    rounds: int
    budget_labels: int | None
    budget_usd: float | None

    @classmethod
    def from_settings(cls, s: dict[str, Any]) -> "Schedule":
        return cls(int(s.get("initial", 50)), int(s.get("batch", 50)), int(s.get("rounds", 10)),
                   s.get("budget_labels"), s.get("budget_usd"))

    def affordable(self, chosen: np.ndarray, cost: pd.Series, n_labels: int, spent: float) -> np.ndarray:
        """The prefix of `chosen` (in priority order) that stays within both budgets."""
        if self.budget_labels is not None:
            chosen = chosen[: max(0, int(self.budget_labels) - n_labels)]
        if self.budget_usd is not None:
            cumulative = spent + np.cumsum(cost.loc[chosen].to_numpy())
            chosen = chosen[: int(np.searchsorted(cumulative, float(self.budget_usd) + 1e-12, side="right"))]
        return chosen


def simulate(*, items: pd.DataFrame, split: pd.DataFrame, annotations: pd.DataFrame,
             classifier: Classifier, sampler: str, settings: dict[str, Any],
             label_names: Sequence[str], positive: str, seed: int,
             training: dict[str, Any] | None = None,
             log: Callable[[str], None] = print) -> ALResult:
    """Run the rounds; `training` is the condition's noise-robust training block (see
    llmal.noise_robust), None or empty for plain training."""
    rng = np.random.default_rng(seed)
    options = TrainingOptions.from_config(training)
    n_classes = len(label_names)
    pos = list(label_names).index(positive)
    ann = annotations.set_index("id")
    split_of = split.set_index("id")["split"]
    items = items.set_index("id", drop=False)

    pool = np.array(sorted(set(split_of.index[split_of == "pool"]) & set(ann.index)), dtype=object)
    if pool.size == 0:
        raise ValueError("the annotator has labelled no pool item: nothing to learn from")
    dev_ids = [i for i in split_of.index[split_of == "dev"] if i in ann.index and ann.at[i, "status"] == "ok"]
    dev = (dev_ids, ann.loc[dev_ids, "label"].to_numpy(dtype=np.int64)) if dev_ids else None
    test_ids = list(split_of.index[split_of == "test"])
    if not test_ids:
        raise ValueError("the split has no test items")
    gold_test = items.loc[test_ids, "gold"].to_numpy(dtype=np.int64)
    votes = _test_votes(items.loc[test_ids], n_classes)
    cost = ann["cost_usd"]
    schedule = Schedule.from_settings(settings)
    meta = None
    if options.reweight:
        # the clean meta set: human gold of dev items (never test), outside the AL budget
        dev_split = [str(i) for i in split_of.index[split_of == "dev"]]
        meta = draw_meta_set(dev_split, items.loc[dev_split, "gold"].to_numpy(dtype=np.int64),
                             size=int(options.meta_size), seed=options.meta_seed)
    # label the classifier of the previous round predicted for each item when it was queried
    predicted_at_query: dict[str, int] = {}
    fitted = False
    ok_ids = set(ann.index[ann["status"] == "ok"])
    rejected: dict[str, np.ndarray] = {}  # negative learning: rejected-class masks, parsed once

    labelled: list[str] = []
    ok: list[str] = []   # the labelled items with status ok, in query order
    spent = 0.0
    queried_rows: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    probs_test = np.full((len(test_ids), n_classes), 1.0 / n_classes)
    n_rounds = 0 if sampler == "full" else schedule.rounds
    for rnd in range(n_rounds + 1):
        start = time.perf_counter()
        unlabelled = pool[~np.isin(pool, labelled)]
        if sampler == "full":
            chosen = unlabelled
        elif rnd == 0:
            chosen = select("random", unlabelled, schedule.initial, rng)
        else:
            probs_pool = classifier.predict_proba(list(unlabelled)) if sampler != "random" else None
            chosen = select(sampler, unlabelled, schedule.batch, rng, probs_pool)
        if sampler != "full":
            chosen = schedule.affordable(np.asarray(chosen, dtype=object), cost, len(labelled), spent)
        if rnd > 0 and len(chosen) == 0:
            log(f"round {rnd}: budget or pool exhausted, stopping")
            break
        chosen_ids = [str(i) for i in chosen]
        labelled.extend(chosen_ids)
        ok = ok + [i for i in chosen_ids if i in ok_ids]  # a new list: fit() may keep the old one
        spent = float(cost.loc[labelled].sum())
        if options.discrepancy_alpha is not None and fitted and chosen_ids:
            predicted = classifier.predict_proba(chosen_ids).argmax(axis=1)
            predicted_at_query.update(zip(chosen_ids, (int(p) for p in predicted)))
        queried_rows += [{"id": str(i), "round": rnd, "label": ann.at[i, "label"],
                          "status": ann.at[i, "status"]} for i in chosen]
        trained: dict[str, Any] = {}
        if options.discrepancy_alpha is not None:
            trained["n_downweighted"] = 0
        negatives = None
        if options.negative_learning:
            negatives = _negative_items(ann, labelled, label_names,
                                        options.negative_weight_at(rnd), rejected)
            trained["n_negative"] = 0 if negatives is None else len(negatives[0])
        if ok:
            ok_labels = ann.loc[ok, "label"].to_numpy(dtype=np.int64)
            extra: dict[str, Any] = {} if meta is None else {"meta": meta}
            if negatives is not None:
                extra["negatives"] = negatives
            weights = None
            if options.discrepancy_alpha is not None:
                weights = discrepancy_weights(
                    ok_labels, np.array([predicted_at_query.get(i, NO_PREDICTION) for i in ok]),
                    options.discrepancy_alpha)
                trained["n_downweighted"] = int((weights != 1.0).sum())
            classifier.fit(ok, ok_labels, sample_weight=weights, dev=dev, **extra)
            fitted = True
            probs_test = classifier.predict_proba(test_ids)
            trained.update({k: v for k, v in classifier.info().items() if k in ROUND_TRAINING_KEYS})
        metrics = classification_metrics(gold_test, probs_test, label_names, pos)
        metrics.update(soft_label_metrics(votes, probs_test))
        rows.append({"round": rnd, "n_labels": len(labelled), "n_train": len(ok),
                     "cost_usd": spent, **metrics, **trained,
                     "seconds": round(time.perf_counter() - start, 4)})
        log(f"round {rnd}: {len(labelled)} labels ({len(ok)} usable), "
            f"${rows[-1]['cost_usd']:.4f}, F1-macro {metrics['f1_macro']:.4f}")

    predictions = pd.DataFrame({
        "id": test_ids, "prob": probs_test[:, pos], "pred": probs_test.argmax(axis=1),
        "gold": gold_test,
        "topic": items.loc[test_ids, "topic"].astype(str).to_numpy() if "topic" in items else "",
    })
    queried = pd.DataFrame(queried_rows, columns=["id", "round", "label", "status"])
    queried["label"] = pd.array(queried["label"], dtype="Int64")
    # the dev labels (early stopping of fine-tuning) are bought once, outside the AL budget
    return ALResult(pd.DataFrame(rows), queried, predictions,
                    {"n_pool": int(pool.size), "n_dev": len(dev_ids), "n_test": len(test_ids),
                     "dev_cost_usd": float(cost.loc[dev_ids].sum()),
                     **({} if meta is None else {"n_meta": len(meta[0])})})


def _negative_items(ann: pd.DataFrame, labelled: Sequence[str], label_names: Sequence[str],
                    weight: float, cache: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray, float] | None:
    """Labelled items without a label (status not ok) whose rejected classes are known, with
    their rejected-class masks and this round's loss weight; None when there are none.
    `cache` keeps each item's mask across rounds (its answers never change)."""
    ids, masks = [], []
    for i in labelled:
        if ann.at[i, "status"] == "ok":
            continue
        mask = cache.get(i)
        if mask is None:
            mask = cache[i] = rejected_classes(str(ann.at[i, "answers"]), label_names, item=i)
        if mask.any():
            ids.append(i)
            masks.append(mask)
    return (ids, np.array(masks), weight) if ids else None


def _test_votes(test_items: pd.DataFrame, n_classes: int) -> np.ndarray:
    cols = annotator_columns(test_items)
    if not cols:
        return np.zeros((len(test_items), n_classes))
    return vote_counts(test_items[cols].to_numpy(dtype="float64", na_value=np.nan), n_classes)
