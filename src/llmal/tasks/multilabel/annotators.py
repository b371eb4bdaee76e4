"""Annotators of label sets: the dataset's human coders, a simulated annotator with per-label
false-positive and false-negative rates, and precomputed label lists (a file or a column).

Every table is the annotation contract (llmal.contracts) with `label` the label-set integer
(llmal.tasks.multilabel.labels) and `answers` the label names as a JSON list.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import ANNOTATOR_PREFIX, annotator_columns, make_annotations, safe_column_name
from llmal.datasets.loaders import load_table, positional_columns
from llmal.tasks.draws import uniform_per_item
from llmal.tasks.multilabel.labels import from_indicator, names_of, parse_label_list, to_indicator

READER_KEYS = ("format", "header", "quoting", "skip_rows", "encoding")


def _answers(masks: Sequence[Any], label_names: Sequence[str]) -> list[str]:
    return ["{}" if pd.isna(m) else json.dumps({"labels": names_of(int(m), label_names)}) for m in masks]


def human_label_sets(items: pd.DataFrame, mode: str, seed: int, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(label sets, labels consulted per item) by `mode`: gold; majority per label of the coders
    who labelled the item (a tie goes to the seeded draw); or one sampled coder. Items no coder
    labelled fall back to gold (one label)."""
    gold = items["gold"].to_numpy(dtype=np.int64)
    cols = annotator_columns(items)
    consulted = np.ones(len(items), dtype=np.int64)
    if mode == "gold" or not cols:
        return gold.copy(), consulted
    if mode not in ("majority", "sample"):
        raise ValueError(f"unknown human annotator mode {mode!r}")
    given = items[cols].notna().to_numpy()
    sets = items[cols].fillna(0).to_numpy(dtype=np.int64)
    n_given = given.sum(axis=1)
    u = uniform_per_item(items["id"].astype(str), seed, f"human-{mode}")
    out = gold.copy()
    coded = n_given > 0
    if mode == "sample":   # the k-th coder who labelled the item, k drawn per item
        k = (u * np.maximum(n_given, 1)).astype(np.int64)
        nth = np.argmax(np.cumsum(given, axis=1) > k[:, None], axis=1)
        out[coded] = sets[np.arange(len(items)), nth][coded]
        return out, consulted
    votes = sum(to_indicator(sets[:, j], n_labels) * given[:, j, None] for j in range(len(cols))) * 2
    tie = votes == n_given[:, None]
    chosen = (votes > n_given[:, None]) | (tie & (u < 0.5)[:, None])
    out[coded] = from_indicator(chosen)[coded]
    consulted[coded] = n_given[coded]
    return out, consulted


def annotate_human(items: pd.DataFrame, spec: Mapping[str, Any], label_names: Sequence[str]) -> pd.DataFrame:
    """One coder's column (`column`: items they skipped are status failed, unpaid), or a
    combination by `mode`. `cost_per_label` is per item, or per label decision with
    `cost_unit: decision` (each item costs it times the number of labels)."""
    unit = len(label_names) if spec.get("cost_unit") == "decision" else 1
    price = float(spec.get("cost_per_label", 0.0)) * unit
    if spec.get("column"):
        col = str(spec["column"])
        name = col if col.startswith(ANNOTATOR_PREFIX) else ANNOTATOR_PREFIX + safe_column_name(col)
        if name not in items.columns:
            raise ValueError(f"human annotator column {col!r}: the items table has no column {name!r} "
                             f"(annotator columns: {annotator_columns(items)})")
        labels = items[name].astype("Int64")
        given = labels.notna().to_numpy()
        return make_annotations({"id": items["id"].astype(str), "label": labels.to_numpy(),
                                 "status": np.where(given, "ok", "failed"),
                                 "answers": _answers(labels.tolist(), label_names),
                                 "cost_usd": np.where(given, price, 0.0), "model": f"human:{col}"})
    mode = str(spec.get("mode", "majority"))
    labels, consulted = human_label_sets(items, mode, int(spec.get("seed", 0)), len(label_names))
    return make_annotations({"id": items["id"].astype(str), "label": labels, "status": "ok",
                             "answers": _answers(labels.tolist(), label_names),
                             "cost_usd": price * consulted, "model": f"human:{mode}"})


def annotate_simulated(items: pd.DataFrame, spec: Mapping[str, Any], label_names: Sequence[str]) -> pd.DataFrame:
    """Noise per label over gold (or `of`: majority/sample of the coders): `label_error`
    {label: {fp: P(adds it | absent), fn: P(misses it | present)}}; `invalid_rate` of the
    answers are unusable (status invalid). Draws are per item, label and seed."""
    seed = int(spec.get("seed", 0))
    n = len(label_names)
    true, _ = human_label_sets(items, str(spec.get("of", "gold")), seed, n)
    y = to_indicator(true, n)
    ids = items["id"].astype(str).tolist()
    rates = spec.get("label_error") or {}
    unknown = [k for k in rates if k not in label_names]
    if unknown:
        raise ValueError(f"label_error names {unknown}, not labels (labels.names: {list(label_names)})")
    out = y.copy()
    for k, name in enumerate(label_names):
        r = rates.get(name) or {}
        u = uniform_per_item(ids, seed, f"label-{name}")
        out[:, k] = np.where(y[:, k] == 1, u >= float(r.get("fn", 0.0)), u < float(r.get("fp", 0.0)))
    labels = pd.Series(from_indicator(out), dtype="Int64")
    invalid = uniform_per_item(ids, seed, "invalid") < float(spec.get("invalid_rate", 0.0))
    labels = labels.mask(invalid)
    return make_annotations({"id": ids, "label": labels, "status": np.where(invalid, "invalid", "ok"),
                             "raw": np.where(invalid, "<simulated: no answer>", ""),
                             "answers": _answers(labels.tolist(), label_names),
                             "cost_usd": float(spec.get("cost_per_label", 0.0)), "model": "simulated"})


def annotate_precomputed(items: pd.DataFrame, spec: Mapping[str, Any], label_names: Sequence[str], *,
                         name: str, log: Callable[[str], None]) -> pd.DataFrame:
    """Recorded label lists: `file` (any reader; reader options as the dataset's) with
    `columns.id` (default id) and `columns.label` (a list column: names joined by `label_sep`,
    default "|", or a real list), or without `file` a `columns.label` of the items table. A
    cell naming an unknown label is status invalid with the cell kept in `raw` (nothing is
    coerced); an empty cell is status failed; `none` or `[]` is the empty set."""
    columns = positional_columns(spec.get("columns") or {})
    if not columns.get("label"):
        raise ValueError(f"annotators.{name}.columns.label: the column of recorded label lists is required")
    sep = str(spec.get("label_sep") or "|")
    ids = items["id"].astype(str)
    if spec.get("file"):
        id_col = str(columns.get("id", "id"))
        table = load_table(Path(str(spec["file"])), string_columns=[id_col], key=f"annotators.{name}.file",
                           **{k: spec.get(k) for k in READER_KEYS})
        for col in (id_col, str(columns["label"])):
            if col not in table.columns:
                raise ValueError(f"annotators.{name}: column {col!r} not in {spec['file']} "
                                 f"(columns: {list(table.columns)})")
        table[id_col] = table[id_col].astype(str)
        extra = int((~table[id_col].isin(set(ids))).sum())
        if extra:
            log(f"annotators.{name}: {extra} row(s) of {spec['file']} are not pool/dev items; left out")
        cells = table.drop_duplicates(id_col).set_index(id_col)[str(columns["label"])].reindex(ids)
    else:
        col = str(columns["label"])
        if col not in items.columns:
            raise ValueError(f"annotators.{name}.columns.label: the items table has no column {col!r}")
        cells = items.set_index(ids)[col]
    rows = []
    for item, cell in zip(ids, cells.tolist()):
        empty = cell is None or cell is pd.NA or (isinstance(cell, float) and np.isnan(cell)) or \
            (isinstance(cell, str) and cell.strip() == "")
        raw = "" if empty else (json.dumps(list(cell)) if isinstance(cell, (list, tuple, np.ndarray)) else str(cell))
        if empty:
            rows.append({"id": item, "status": "failed", "raw": raw})
            continue
        try:
            mask = 0 if isinstance(cell, str) and cell.strip().lower() in ("none", "[]") else \
                parse_label_list(cell, label_names, sep, where=f"annotators.{name}, id {item!r}")
        except ValueError:
            rows.append({"id": item, "status": "invalid", "raw": raw})
            continue
        rows.append({"id": item, "label": mask, "status": "ok", "raw": raw,
                     "answers": json.dumps({"labels": names_of(mask, label_names)})})
    table = make_annotations(rows)
    table["cost_usd"] = np.where(table["status"] == "failed", 0.0, float(spec.get("cost_per_label", 0.0)))
    table["model"] = str(spec.get("model") or f"precomputed:{spec.get('file') or columns['label']}")
    return table
