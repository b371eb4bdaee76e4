"""Human annotators from the dataset's per-annotator label columns."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from llmal.contracts import ANNOTATOR_PREFIX, annotator_columns, make_annotations, safe_column_name
from llmal.tasks.draws import uniform_per_item


def human_labels(items: pd.DataFrame, mode: str, seed: int) -> np.ndarray:
    """Labels by `mode`: gold, majority of the annotator columns, or one sampled annotator.

    Items that no annotator labelled fall back to gold (the dataset's own label).
    """
    gold = items["gold"].to_numpy(dtype=np.int64)
    cols = annotator_columns(items)
    if mode == "gold" or not cols:
        return gold.copy()
    votes = items[cols].to_numpy(dtype="float64", na_value=np.nan)  # (n, n_annotators)
    ids = items["id"].astype(str).tolist()
    u = uniform_per_item(ids, seed, f"human-{mode}")
    out = gold.copy()
    for i, row in enumerate(votes):
        given = row[~np.isnan(row)].astype(np.int64)
        if given.size == 0:
            continue
        if mode == "sample":
            out[i] = given[int(u[i] * given.size)]
        elif mode == "majority":
            values, counts = np.unique(given, return_counts=True)
            tied = values[counts == counts.max()]
            out[i] = tied[int(u[i] * tied.size)]
        else:
            raise ValueError(f"unknown human annotator mode {mode!r}")
    return out


def labels_consulted(items: pd.DataFrame, mode: str) -> np.ndarray:
    """Human labels paid for per item: a majority consults every annotator who labelled the
    item; a sampled annotator, or the gold label, is one label (items without any annotator
    label fall back to gold, one label)."""
    cols = annotator_columns(items)
    if mode != "majority" or not cols:
        return np.ones(len(items), dtype=np.int64)
    n = items[cols].notna().sum(axis=1).to_numpy(dtype=np.int64)
    return np.maximum(n, 1)


def annotator_column(column: str) -> str:
    """The items table's column of the dataset's annotator column `column` (ann_<column>)."""
    return column if column.startswith(ANNOTATOR_PREFIX) else ANNOTATOR_PREFIX + safe_column_name(column)


def column_labels(items: pd.DataFrame, column: str) -> pd.Series:
    """One expert's labels: the annotator column `column` of the dataset (ann_<column>)."""
    name = annotator_column(column)
    if name not in items.columns:
        raise ValueError(f"human annotator column {column!r}: the items table has no column {name!r} "
                         f"(annotator columns: {annotator_columns(items)}; see dataset.columns.annotators)")
    return items[name].astype("Int64")


def annotate_human(items: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """Labels of the dataset's annotators: one column (`column`, e.g. one expert: items it did
    not label get status failed), or a combination by `mode`."""
    if spec.get("column"):
        labels = column_labels(items, str(spec["column"]))
        given = labels.notna().to_numpy()
        return make_annotations({
            "id": items["id"].astype(str), "label": labels.to_numpy(),
            "status": np.where(given, "ok", "failed"),
            # an item the expert never labelled was never paid for
            "cost_usd": np.where(given, float(spec.get("cost_per_label", 0.0)), 0.0),
            "model": f"human:{spec['column']}",
        })
    mode = spec.get("mode", "majority")
    labels = human_labels(items, mode, int(spec.get("seed", 0)))
    return make_annotations({
        "id": items["id"].astype(str),
        "label": labels,
        "status": "ok",
        "cost_usd": float(spec.get("cost_per_label", 0.0)) * labels_consulted(items, mode),
        "model": f"human:{mode}",
    })
