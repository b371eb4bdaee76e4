"""Reading a multi-label dataset into the items table (gold and ann_* hold label-set integers,
llmal.tasks.multilabel.labels) and splitting it.

dataset.kind demo (task: multilabel): the SYNTHETIC demo (llmal.tasks.multilabel.demo).
dataset.kind file: any reader of llmal.datasets (csv, tsv, jsonl, json, parquet, header-less,
several `files`). Its label columns come in two shapes:
  - one column holding a list: `dataset.columns.gold: labels`, cells "insult|profane" joined by
    `dataset.label_sep` (default "|"), or a real list (JSON, Parquet);
  - one 0/1 column per label: `dataset.columns.gold: {insult: is_insult, profane: is_profane}`.
Human annotators take the same shapes: `dataset.columns.annotators: [coder_a, coder_b]` (list
columns) or `{coder_a: {insult: a_insult, ...}, coder_b: {...}}` (0/1 columns per coder).
A gold cell that is empty is the empty set; an annotator's empty cell (every 0/1 cell empty)
is "not labelled", and its empty set is written `none` or `[]`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import ANNOTATOR_PREFIX, ITEM_COLUMNS, safe_column_name
from llmal.datasets.loaders import SPLIT_COLUMN, dataset_files, load_table, map_columns, positional_columns
from llmal.datasets.split import assign_split
from llmal.datasets.validate import DatasetError, check_split, validate_items
from llmal.tasks.multilabel.demo import DEMO_LABELS, generate_multilabel_demo
from llmal.tasks.multilabel.labels import MAX_LABELS, UNKNOWN, parse_label_list

DEFAULT_SEP = "|"
EMPTY_SET = {"none", "[]"}
FILE_KEYS = {"name", "kind", "cache_dir", "path", "files", "columns", "format", "quoting", "header",
             "skip_rows", "encoding", "source", "label_sep", "split_map",
             "annotator_sep", "drop_empty_text"}   # the last two: classification's, filled by the schema
DEMO_KEYS = {"name", "kind", "cache_dir", "task", "n_items", "seed", "classes"}   # classes: the same
SPLIT_DEFAULTS = {"test": 0.2, "dev": 0.1, "seed": 0, "use_column": True}


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def list_column(values: pd.Series, label_names: Sequence[str], sep: str, *, where: str, column: str,
                ids: pd.Series, empty_is_set: bool) -> pd.Series:
    """A column of label lists -> label-set integers (Int64; <NA> = not labelled)."""
    out: list[Any] = []
    for row, (item, v) in enumerate(zip(ids, values)):
        if _missing(v) or (isinstance(v, str) and v.strip() == ""):
            out.append(0 if empty_is_set else pd.NA)
        elif isinstance(v, str) and v.strip().lower() in EMPTY_SET:
            out.append(0)
        else:
            try:
                out.append(parse_label_list(v, label_names, sep,
                                            where=f"{where}: column {column!r}, row {row + 1} (id {item!r})"))
            except ValueError as e:
                raise DatasetError(str(e)) from None
    return pd.Series(out, index=values.index, dtype="Int64")


def indicator_columns(df: pd.DataFrame, spec: Mapping[str, Any], label_names: Sequence[str], *,
                      where: str, key: str, ids: pd.Series, empty_is_set: bool) -> pd.Series:
    """One 0/1 column per label ({label: column}) -> label-set integers (Int64)."""
    unknown = [k for k in spec if k not in label_names]
    if unknown:
        raise DatasetError(f"{where}: {key} names {unknown}, not labels (labels.names: {list(label_names)})")
    absent = [str(c) for c in spec.values() if str(c) not in df.columns]
    if absent:
        raise DatasetError(f"{where}: column(s) {absent} ({key}) not found; the file has {list(df.columns)}")
    out = np.zeros(len(df), dtype=np.int64)
    blank = np.ones(len(df), dtype=bool)
    for name, col in spec.items():
        cells = df[str(col)]
        empty = cells.map(lambda v: _missing(v) or (isinstance(v, str) and v.strip() == "")).to_numpy(bool)
        value = pd.to_numeric(cells.where(~empty, 0), errors="coerce")
        bad = value.isna() | ~value.isin([0, 1])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DatasetError(f"{where}: column {col!r} ({key}.{name}), row {row + 1} (id {ids.iloc[row]!r}) "
                               f"holds {cells.iloc[row]!r}; a label column holds 0 or 1")
        out |= value.to_numpy(dtype=np.int64) << label_names.index(name)
        blank &= empty
    res = pd.Series(out, index=df.index, dtype="Int64")
    return res if empty_is_set else res.mask(blank)   # an annotator's row with no cell: not labelled


def label_sets(df: pd.DataFrame, spec: Any, label_names: list[str], sep: str, *, where: str, key: str,
               ids: pd.Series, empty_is_set: bool) -> pd.Series:
    if isinstance(spec, Mapping):
        return indicator_columns(df, spec, label_names, where=where, key=key, ids=ids,
                                 empty_is_set=empty_is_set)
    if str(spec) not in df.columns:
        raise DatasetError(f"{where}: column {spec!r} ({key}) not found; the file has {list(df.columns)}")
    return list_column(df[str(spec)], label_names, sep, where=where, column=str(spec), ids=ids,
                       empty_is_set=empty_is_set)


def read_file(dataset: Mapping[str, Any], label_names: list[str]) -> tuple[pd.DataFrame, str]:
    files = dataset_files(dataset)
    where = files[0][0] if len(files) == 1 else ", ".join(p for p, _ in files)
    columns = dataset.get("columns")
    if not isinstance(columns, Mapping) or not columns.get("text"):
        raise DatasetError(f"{where}: dataset.columns needs at least text (and gold) for task multilabel")
    columns = positional_columns(columns)
    sep = str(dataset.get("label_sep") or DEFAULT_SEP)
    plain = {k: v for k, v in columns.items() if k not in ("gold", "annotators")}
    strings = [plain[k] for k in ("id", "text", "topic", "source", "split") if plain.get(k)]
    if isinstance(columns.get("gold"), str):
        strings.append(columns["gold"])
    parts = []
    for path, split in files:
        table = load_table(path, format=dataset.get("format"), string_columns=strings,
                           quoting=dataset.get("quoting"), header=dataset.get("header"),
                           encoding=dataset.get("encoding"), skip_rows=dataset.get("skip_rows"))
        source = dataset.get("source") or dataset.get("name") or Path(path).stem
        part = map_columns(table, plain, source=str(source), label_names=label_names,
                           split_map=dataset.get("split_map"), where=str(path))
        ids = part["id"]
        gold = columns.get("gold")
        part["gold"] = (label_sets(table, gold, label_names, sep, where=str(path), key="dataset.columns.gold",
                                   ids=ids, empty_is_set=True).astype("int64") if gold else UNKNOWN)
        annotators = columns.get("annotators") or []
        if isinstance(annotators, str):
            annotators = [annotators]
        named = (annotators.items() if isinstance(annotators, Mapping) else ((a, a) for a in annotators))
        for name, spec in named:
            part[ANNOTATOR_PREFIX + safe_column_name(name)] = label_sets(
                table, spec, label_names, sep, where=str(path), key=f"dataset.columns.annotators.{name}",
                ids=ids, empty_is_set=False)
        if split is not None:
            if not plain.get("id"):
                part["id"] = Path(path).stem + ":" + part["id"]
            part[SPLIT_COLUMN] = split
        parts.append(part)
    return (parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)), where


def load_multilabel_items(dataset: Mapping[str, Any], label_names: list[str]) -> tuple[pd.DataFrame, str]:
    kind = dataset.get("kind")
    allowed = DEMO_KEYS if kind == "demo" else FILE_KEYS if kind == "file" else None
    if allowed is None:
        raise DatasetError(f"dataset.kind: task multilabel reads kinds demo and file, not {kind!r}")
    unknown = sorted(set(dataset) - allowed)
    if unknown:
        raise DatasetError(f"dataset: unknown key(s) {unknown} for kind {kind!r} (task multilabel)")
    if not 2 <= len(label_names) <= MAX_LABELS:
        raise DatasetError(f"labels.names: task multilabel takes 2 to {MAX_LABELS} labels, got {len(label_names)}")
    if kind == "demo":
        if tuple(label_names) != DEMO_LABELS:
            raise DatasetError(f"labels.names: the multi-label demo has the labels {list(DEMO_LABELS)} "
                               f"(in this order), got {label_names}")
        return (generate_multilabel_demo(int(dataset.get("n_items", 2000)), int(dataset.get("seed", 0))),
                "multi-label demo dataset (synthetic)")
    return read_file(dataset, label_names)


def order_columns(items: pd.DataFrame) -> pd.DataFrame:
    ann = [c for c in items.columns if c.startswith(ANNOTATOR_PREFIX)]
    meta = [c for c in items.columns if c.startswith("meta_")]
    out = items[ITEM_COLUMNS + ann + meta].reset_index(drop=True).copy()
    for col in ("id", "text", "topic", "source"):
        out[col] = out[col].astype(str)
    out["gold"] = out["gold"].astype("int64")
    for col in ann:
        out[col] = out[col].astype("Int64")
    return out


def prepare_multilabel(dataset: Mapping[str, Any], labels: Mapping[str, Any], split: Mapping[str, Any],
                       *, cache_dir: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    label_names = [str(n) for n in labels["names"]]
    items, where = load_multilabel_items(dataset, label_names)
    # ids, texts and columns as every task checks them; label sets were checked while read
    validate_items(items.drop(columns=[c for c in items.columns if c.startswith(ANNOTATOR_PREFIX)])
                   .assign(gold=UNKNOWN), label_names=label_names, where=where, allow_unknown_gold=True)
    items = order_columns(items)
    cfg = {**SPLIT_DEFAULTS, **split}
    # stratified by label set (rare sets get their share where they can)
    table = assign_split(items, test=float(cfg["test"]), dev=float(cfg["dev"]), seed=int(cfg["seed"]),
                         use_column=bool(cfg["use_column"]))
    check_split(table, where, need_test=bool((items["gold"] >= 0).any()))
    return items, table
