"""Tables for any number of classes: confusion matrices, per-class scores, one-vs-rest errors.

Everything here works from the final-round test predictions (pred, gold per item) and the
final rows of the runs, so it needs no positive class. With `labels.positive` the aggregate
keeps its positive-class FP/FN view; without it FP/FN and topic errors are given per class,
one class against the rest (an item of class A predicted as B is an FN of A and an FP of B).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from llmal.results.errors import errors_by_topic_table, fpfn_table
from llmal.results.settings import KEYS, UNKNOWN_TOPIC, AggregateSettings, Metric, groups, mean_sd

CLASS_COLUMN = "class"


def summary_metrics(label_names: Sequence[str]) -> tuple[Metric, ...]:
    """The summary columns without a positive class: macro-F1, accuracy, F1 of every class."""
    return (Metric("f1_macro", "F1 (macro)", 3, "max"), Metric("accuracy", "Accuracy", 3, "max"),
            *(Metric(f"f1_{n}", f"F1 ({n})", 3, "max") for n in label_names),
            Metric("n_labels", "Labels", 0, None), Metric("n_train", "Trained on", 0, None),
            Metric("cost_usd", "Cost ($)", None, "min"), Metric("soft_ce", "Soft CE", 3, "min"))


def one_vs_rest_counts(predictions: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per run (condition, encoder, seed): tp, fp, fn, tn of class k against the rest."""
    gold, pred = predictions["gold"] == k, predictions["pred"] == k
    p = predictions[KEYS].assign(tp=(gold & pred).astype(int), fp=(~gold & pred).astype(int),
                                 fn=(gold & ~pred).astype(int), tn=(~gold & ~pred).astype(int))
    return p.groupby(KEYS, sort=False)[["tp", "fp", "fn", "tn"]].sum().reset_index()


def _finals_for_class(finals: pd.DataFrame, predictions: pd.DataFrame, k: int) -> pd.DataFrame:
    counts = one_vs_rest_counts(predictions, k)
    base = finals.drop(columns=[c for c in ("tp", "fp", "fn", "tn") if c in finals.columns])
    return base.merge(counts, on=KEYS, how="left").assign(positive_index=k)


def per_class_fpfn(finals: pd.DataFrame, predictions: pd.DataFrame, settings: AggregateSettings,
                   label_names: Sequence[str]) -> pd.DataFrame:
    """fpfn_table once per class (one-vs-rest), with a `class` column, class-major."""
    parts = [fpfn_table(_finals_for_class(finals, predictions, k), settings)
             .assign(**{CLASS_COLUMN: name}) for k, name in enumerate(label_names)]
    return _class_first(pd.concat(parts, ignore_index=True))


def per_class_topics(predictions: pd.DataFrame, finals: pd.DataFrame, settings: AggregateSettings,
                     label_names: Sequence[str]) -> pd.DataFrame:
    """errors_by_topic_table once per class (one-vs-rest), with a `class` column."""
    parts = [errors_by_topic_table(predictions, _finals_for_class(finals, predictions, k), settings)
             .assign(**{CLASS_COLUMN: name}) for k, name in enumerate(label_names)]
    return _class_first(pd.concat(parts, ignore_index=True))


def _class_first(df: pd.DataFrame) -> pd.DataFrame:
    return df[[CLASS_COLUMN] + [c for c in df.columns if c != CLASS_COLUMN]]


def has_topics(predictions: pd.DataFrame) -> bool:
    """Whether any test item has a topic (without one there is no errors-by-topic view)."""
    topics = pd.Series(predictions["topic"].unique()).astype(str)  # not a copy of every row
    return bool((topics != "").any() and (topics != UNKNOWN_TOPIC).any())


def flatten_classes(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A per-class table with `condition` renamed "condition [class]" (for the figures that
    draw one bar or column per condition), and those names in order."""
    named = table.assign(condition=table["condition"] + " [" + table[CLASS_COLUMN].astype(str) + "]")
    return named.drop(columns=[CLASS_COLUMN]), list(dict.fromkeys(named["condition"]))


def confusion_table(predictions: pd.DataFrame, settings: AggregateSettings,
                    label_names: Sequence[str]) -> pd.DataFrame:
    """Per condition × encoder × gold class × predicted class: the mean count over seeds, its
    sd, and the share of the gold class's items (row-normalised, pooled over seeds)."""
    k = len(label_names)
    rows: list[dict[str, Any]] = []
    for (cond, enc), g in groups(predictions, settings):
        per_seed = []
        for _, gs in g.groupby("seed", sort=True):
            m = np.zeros((k, k))
            np.add.at(m, (gs["gold"].to_numpy(int), gs["pred"].to_numpy(int)), 1)
            per_seed.append(m)
        stack = np.stack(per_seed)
        pooled = stack.sum(axis=0)
        row_tot = pooled.sum(axis=1)
        for i, gold in enumerate(label_names):
            for j, pred in enumerate(label_names):
                mean, sd = mean_sd(pd.Series(stack[:, i, j]))
                rows.append({"condition": cond, "encoder": enc, "gold": gold, "pred": pred,
                             "n_seeds": len(per_seed), "count_mean": mean, "count_sd": sd,
                             "share_of_gold": pooled[i, j] / row_tot[i] if row_tot[i] else float("nan")})
    return pd.DataFrame(rows, columns=["condition", "encoder", "gold", "pred", "n_seeds",
                                       "count_mean", "count_sd", "share_of_gold"])


def per_class_table(finals: pd.DataFrame, settings: AggregateSettings,
                    label_names: Sequence[str]) -> pd.DataFrame:
    """Per condition × encoder × class: mean/sd over seeds of precision, recall and F1."""
    rows = []
    for (cond, enc), g in groups(finals, settings):
        for name in label_names:
            row: dict[str, Any] = {"condition": cond, "encoder": enc, CLASS_COLUMN: name,
                                   "n_seeds": int(g["seed"].nunique())}
            for m in ("precision", "recall", "f1"):
                col = f"{m}_{name}"
                row[f"{m}_mean"], row[f"{m}_sd"] = mean_sd(g[col]) if col in g else (float("nan"),) * 2
            rows.append(row)
    return pd.DataFrame(rows)


def degenerate_predictions(finals: pd.DataFrame, settings: AggregateSettings) -> pd.DataFrame:
    """Per condition × encoder: whether some seed never predicts the positive class (so FP = 0
    means nothing) or never the negative one (FN = 0 means nothing)."""
    rows = []
    for (cond, enc), g in groups(finals, settings):
        said_pos = g["tp"].astype(float) + g["fp"].astype(float)
        said_neg = g["tn"].astype(float) + g["fn"].astype(float)
        rows.append({"condition": cond, "encoder": enc, "never_positive": bool((said_pos == 0).any()),
                     "never_negative": bool((said_neg == 0).any())})
    return pd.DataFrame(rows)
