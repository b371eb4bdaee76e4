"""Precomputed annotators: labels somebody already has (recorded LLM answers, an export of an
annotation tool), read from a file or from the dataset's own columns, as they are.

Spec keys (workflow/schemas/config.schema.yaml, kind precomputed):
  file        a CSV/TSV/JSONL/JSON/Parquet file (read by llmal.datasets.loaders.load_table, so no row
              is lost); without it, `columns` name columns of the prepared items table (a
              dataset column kept with dataset.columns.meta is found as meta_<name>)
  format, header, quoting, skip_rows, encoding
              the file's reader options, as the dataset's (llmal.datasets.readers): a header-less
              file (header: false) names its columns by position, 1 = first column
  columns     id (default id), label (required: the recorded answer), and optional raw (the
              raw answer text; default the label cell), probs (a column of JSON objects label
              or answer -> probability, or a mapping label name -> column of its probability),
              cost_usd, input_tokens, output_tokens, cached_tokens, model
  select      column -> value: the rows of a long file that belong to this annotator
              (e.g. {model: gpt-4o} in a file of several models' answers)
  label_map   recorded answer -> label name (e.g. {A: neutral, B: hostile}); without it the
              label names, their indices 0..K-1 and their case-insensitive spellings are read
  model       what the `model` column says (default precomputed:<file or column>)
  cost_per_label  dollars per row when there is no cost_usd column

Only pool and dev items are kept (test items never become annotations); rows for ids the
dataset does not have are left out and counted in the log. A non-empty answer that is no label
becomes status invalid with its text kept in `raw`; an empty one is status failed (no answer).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import META_PREFIX, make_annotations, safe_column_name
from llmal.datasets.loaders import _label_key, label_lookup, load_table, positional_columns


class PrecomputedError(ValueError):
    """A precomputed annotator's source cannot be read as configured (names file and column)."""


READER_KEYS = ("format", "header", "quoting", "skip_rows", "encoding")  # as the dataset's


def spec_columns(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's `columns`, column numbers (header: false; 1 = first) as the reader names them."""
    return positional_columns(spec.get("columns") or {})


def read_source_file(spec: Mapping[str, Any], where: str) -> pd.DataFrame:
    """The annotator's `file`, read with its reader options (format, header, quoting, skip_rows,
    encoding); ids stay strings. Errors name the file and the annotator's keys (`where`)."""
    id_col = str(spec_columns(spec).get("id", "id"))
    return load_table(Path(str(spec["file"])), string_columns=[id_col], key=where,
                      **{k: spec.get(k) for k in READER_KEYS})


def _empty(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) \
        or (isinstance(value, str) and not value.strip())


def source_table(spec: Mapping[str, Any], items: pd.DataFrame, where: str) -> tuple[pd.DataFrame, str]:
    """(rows of this annotator, the name of their source) from the file or the items table."""
    columns = spec_columns(spec)
    id_col = str(columns.get("id", "id"))
    if spec.get("file"):
        df = read_source_file(spec, where)
        source = str(spec["file"])
        first = [c for c in df.columns if c in set(items["id"].astype(str))]
        if first and spec.get("header") is not False and id_col not in df.columns:
            raise PrecomputedError(f"{where}: the header line of {source} holds the item id "
                                   f"{first[0]!r}: a header-less file needs {where}.header: false "
                                   "(and columns by number, 1 = first column), or its first "
                                   "answer is lost to the header")
    else:
        df = items.copy()
        source = "the items table"
        for key, col in columns.items():     # dataset columns kept as meta_<name>
            if isinstance(col, str) and col not in df.columns and META_PREFIX + safe_column_name(col) in df.columns:
                df[col] = df[META_PREFIX + safe_column_name(col)]
    for col, value in positional_columns(spec.get("select") or {}).items():
        if col not in df.columns:
            raise PrecomputedError(f"{where}.select: {source} has no column {col!r} "
                                   f"(columns: {list(df.columns)})")
        df = df[df[col].astype(str) == str(value)]
    wanted = [id_col, str(columns.get("label", "label"))]
    for key in ("raw", "cost_usd", "input_tokens", "output_tokens", "cached_tokens", "model"):
        if key in columns:
            wanted.append(str(columns[key]))
    probs = columns.get("probs")
    if isinstance(probs, str):
        wanted.append(probs)
    elif isinstance(probs, Mapping):
        wanted += [str(c) for c in probs.values()]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        numbered = spec.get("file") and spec.get("header") is not False and any(
            c.isdigit() for c in missing)
        raise PrecomputedError(f"{where}.columns: {source} has no column(s) {missing} "
                               f"(columns: {list(df.columns)})"
                               + (f"; columns given by number need {where}.header: false"
                                  if numbered else ""))
    df = df.assign(**{id_col: df[id_col].astype(str)})
    dup = df[id_col].duplicated()
    if dup.any():
        raise PrecomputedError(f"{where}: {source} holds id {df.loc[dup, id_col].iloc[0]!r} more than once "
                               + ("for this `select`" if spec.get("select") else
                                  "(a file of several annotators needs `select`)"))
    return df, source


def _probs_cell(row: pd.Series, probs: Any, lookup: Mapping[str, int], label_names: Sequence[str],
                where: str) -> dict[str, Any]:
    if probs is None:
        return {}
    if isinstance(probs, Mapping):
        raw = {name: row[col] for name, col in probs.items()}
    else:
        cell = row[probs]
        if _empty(cell):
            return {}
        try:
            raw = json.loads(cell) if isinstance(cell, str) else dict(cell)
        except (json.JSONDecodeError, TypeError, ValueError):
            raise PrecomputedError(f"{where}.columns.probs: id {row.name!r}: {str(cell)[:60]!r} is "
                                   "not a JSON object of probabilities") from None
    lower = {k.lower(): v for k, v in lookup.items()}
    mass = np.zeros(len(label_names))
    for key, value in raw.items():
        if _empty(value):
            continue
        index = lookup.get(_label_key(key), lower.get(_label_key(key).lower()))
        if index is None:
            continue    # probability of an answer that is no label (e.g. "unsure")
        mass[index] += float(value)
    if mass.sum() <= 0:
        return {}
    return {"label": {name: round(float(p), 6) for name, p in zip(label_names, mass / mass.sum())}}


def annotate_precomputed(items: pd.DataFrame, spec: Mapping[str, Any], label_names: Sequence[str],
                         *, name: str = "precomputed", log: Callable[[str], None] = print) -> pd.DataFrame:
    """The annotation table of `items` (pool and dev items, see llmal.annotate.run) from the
    recorded answers."""
    where = f"annotators.{name}"
    columns = spec_columns(spec)
    id_col, label_col = str(columns.get("id", "id")), str(columns.get("label", "label"))
    df, source = source_table(spec, items, where)
    lookup = label_lookup(label_names, spec.get("label_map"), where=f"{where}.label_map")
    lower = {k.lower(): v for k, v in lookup.items()}
    wanted = set(items["id"].astype(str))
    unknown = int((~df[id_col].isin(wanted)).sum()) if spec.get("file") else 0
    df = df[df[id_col].isin(wanted)].set_index(id_col, drop=False)
    default_model = spec.get("model") or f"precomputed:{Path(str(spec.get('file', ''))).name or 'items'}/{label_col}"
    rows = []
    for item_id, row in df.iterrows():
        value = row[label_col]
        raw = row[columns["raw"]] if "raw" in columns else value
        out: dict[str, Any] = {"id": str(item_id), "raw": "" if _empty(raw) else str(raw),
                               "model": str(row[columns["model"]]) if "model" in columns else default_model,
                               "cost_usd": float(row[columns["cost_usd"]]) if "cost_usd" in columns and
                               not _empty(row[columns["cost_usd"]]) else float(spec.get("cost_per_label", 0.0))}
        for key in ("input_tokens", "output_tokens", "cached_tokens"):
            if key in columns and not _empty(row[columns[key]]):
                out[key] = int(row[columns[key]])
        if _empty(value):
            out["status"] = "failed"
        else:
            index = lookup.get(_label_key(value), lower.get(_label_key(value).lower()))
            if index is None:
                out["status"] = "invalid"
            else:
                out.update(status="ok", label=index,
                           probs=_probs_cell(row, columns.get("probs"), lookup, label_names, where))
        rows.append(out)
    table = make_annotations(rows) if rows else make_annotations({"id": []})
    counts = table["status"].value_counts().to_dict()
    log(f"{name}: {len(table)} answers from {source} ({counts})"
        + (f"; {unknown} row(s) for ids outside the pool and dev items (test items, or ids the "
           "dataset does not have) were left out" if unknown else "")
        + (f"; {len(wanted) - len(table)} pool/dev item(s) have no row" if len(table) < len(wanted) else ""))
    return table
