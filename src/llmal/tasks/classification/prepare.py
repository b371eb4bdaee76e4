"""The prepare stage: dataset config -> validated items table and split table.

dataset.kind picks the source:
  demo  the SYNTHETIC demo data (llmal.tasks.classification.demo); keys n_items, seed, classes (2 or 3), task
        (hostility, or relation: entity-marked relation classification, llmal.tasks.classification.relations)
  gahd  GAHD, from dataset.path or downloaded once into the cache directory (checked by sha256)
  file  a user's csv/tsv/jsonl/json/parquet; keys path (or files: [{path, split}, ...]),
        columns, label_map, annotator_sep, split_map, format, quoting, header, skip_rows, encoding,
        source
Items whose text is empty are an error, unless dataset.drop_empty_text (default true for gahd,
which holds one whitespace-only text, false for file) drops them with a warning naming their ids.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from llmal.contracts import ANNOTATOR_PREFIX, ITEM_COLUMNS, META_PREFIX
from llmal.datasets.loaders import SPLIT_COLUMN, dataset_files, load_table, map_columns, positional_columns
from llmal.datasets.split import assign_split
from llmal.datasets.validate import DatasetError, check_split, is_blank, small_test_classes, validate_items
from llmal.tasks.classification.demo import THREE_CLASS_NAMES, generate_demo
from llmal.tasks.classification.gahd import load_gahd
from llmal.tasks.classification.relations import RELATION_NAMES, generate_relations

# keys every kind accepts; cache_dir is read by the caller, which passes it as `cache_dir`
COMMON_KEYS = {"name", "kind", "cache_dir"}
DATASET_KEYS = {
    "demo": COMMON_KEYS | {"n_items", "seed", "classes", "task"},
    "gahd": COMMON_KEYS | {"path", "drop_empty_text"},
    "file": COMMON_KEYS | {"path", "files", "columns", "label_map", "annotator_sep", "split_map",
                           "format", "quoting", "header", "skip_rows", "encoding", "source",
                           "drop_empty_text"},
}
# GAHD holds one whitespace-only text (id f4c7eaf2, dev split); a user's file fails loudly
DROP_EMPTY_TEXT_DEFAULT = {"demo": False, "gahd": True, "file": False}
logger = logging.getLogger(__name__)

DEMO_DEFAULTS = {"n_items": 3000, "seed": 0, "classes": 2, "task": "hostility"}
SPLIT_DEFAULTS = {"test": 0.2, "dev": 0.1, "seed": 0, "use_column": True}


def _check_keys(dataset_cfg: Mapping[str, Any]) -> str:
    kind = dataset_cfg.get("kind")
    if kind not in DATASET_KEYS:
        raise DatasetError(f"dataset.kind must be one of {sorted(DATASET_KEYS)}, got {kind!r}")
    unknown = sorted(set(dataset_cfg) - DATASET_KEYS[kind])
    if unknown:
        raise DatasetError(f"dataset: unknown key(s) {unknown} for kind {kind!r}; "
                           f"allowed: {sorted(DATASET_KEYS[kind])}")
    return kind


def _two_labels(label_names: list[str], kind: str) -> None:
    if len(label_names) != 2:
        raise DatasetError(f"labels.names: dataset kind {kind!r} is binary (index 0 = not "
                           f"hostile/not hate, 1 = hostile/hate) but {len(label_names)} label "
                           f"names are given: {label_names}")


def _n_labels(label_names: list[str], n: int, kind: str, meaning: tuple[str, ...]) -> None:
    if len(label_names) != n:
        raise DatasetError(f"labels.names: dataset {kind} has {n} classes (index order: "
                           f"{list(meaning)}) but {len(label_names)} label names are given: "
                           f"{label_names}")


def order_item_columns(items: pd.DataFrame) -> pd.DataFrame:
    """id, text, gold, topic, source, ann_* (file order), meta_* (file order)."""
    ann = [c for c in items.columns if c.startswith(ANNOTATOR_PREFIX)]
    meta = [c for c in items.columns if c.startswith(META_PREFIX)]
    other = [c for c in items.columns if c not in ITEM_COLUMNS and c not in ann and c not in meta]
    if other:
        raise DatasetError(f"items table has columns outside the contract: {other}")
    out = items[ITEM_COLUMNS + ann + meta].reset_index(drop=True).copy()
    out["id"] = out["id"].astype(str)
    out["text"] = out["text"].astype(str)
    out["gold"] = out["gold"].astype("int64")
    out["topic"] = out["topic"].astype(str)
    out["source"] = out["source"].astype(str)
    for col in ann:
        out[col] = out[col].astype("Int64")
    return out


def load_items(dataset_cfg: Mapping[str, Any], label_names: list[str], *,
               cache_dir: str | Path) -> tuple[pd.DataFrame, str]:
    """The mapped (not yet validated) items table and a name for error messages."""
    kind = _check_keys(dataset_cfg)
    if kind == "demo":
        cfg = {**DEMO_DEFAULTS, **dataset_cfg}
        if cfg["task"] == "relation":
            _n_labels(label_names, len(RELATION_NAMES), "demo (task: relation)", RELATION_NAMES)
            return (generate_relations(int(cfg["n_items"]), int(cfg["seed"])),
                    "relation demo dataset (synthetic)")
        if int(cfg["classes"]) == 3:
            _n_labels(label_names, 3, "demo (classes: 3)", THREE_CLASS_NAMES)
        else:
            _two_labels(label_names, kind)
        return (generate_demo(int(cfg["n_items"]), int(cfg["seed"]), classes=int(cfg["classes"])),
                "demo dataset (synthetic)")
    if kind == "gahd":
        _two_labels(label_names, kind)
        path = dataset_cfg.get("path")
        items = load_gahd(path, cache_dir, label_names=label_names)
        return items, str(path) if path else "gahd"
    files = dataset_files(dataset_cfg)
    columns = dataset_cfg.get("columns")
    where = files[0][0] if len(files) == 1 else ", ".join(p for p, _ in files)
    if not isinstance(columns, Mapping):
        raise DatasetError(f"{where}: dataset.columns is required for dataset kind 'file' (at "
                           "least {text: <column>, gold: <column>})")
    columns = positional_columns(columns)
    string_columns = [columns[k] for k in ("id", "text", "topic", "source", "split") if columns.get(k)]
    parts = []
    for path, split in files:
        table = load_table(path, format=dataset_cfg.get("format"), string_columns=string_columns,
                           quoting=dataset_cfg.get("quoting"), header=dataset_cfg.get("header"),
                           encoding=dataset_cfg.get("encoding"),
                           skip_rows=dataset_cfg.get("skip_rows"))
        source = dataset_cfg.get("source") or dataset_cfg.get("name") or Path(path).stem
        part = map_columns(table, columns, source=str(source), label_names=label_names,
                           label_map=dataset_cfg.get("label_map"),
                           annotator_sep=dataset_cfg.get("annotator_sep"),
                           split_map=dataset_cfg.get("split_map"), where=str(path))
        if split is not None:
            if not columns.get("id"):  # row numbers restart in every file: prefix the file's name
                part["id"] = Path(path).stem + ":" + part["id"]
            part[SPLIT_COLUMN] = split
        parts.append(part)
    items = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return items, where


def drop_empty_text(items: pd.DataFrame, where: str) -> pd.DataFrame:
    """Remove items whose text is empty or whitespace only, saying which ones in the log."""
    empty = items["text"].map(is_blank).astype(bool)
    if empty.any():
        ids = items.loc[empty, "id"].astype(str).tolist()
        logger.warning("%s: dropped %d item(s) with empty text (dataset.drop_empty_text): %s%s",
                       where, len(ids), ", ".join(ids[:10]), " ..." if len(ids) > 10 else "")
    return items.loc[~empty].reset_index(drop=True)


def prepare_dataset(dataset_cfg: Mapping[str, Any], labels_cfg: Mapping[str, Any],
                    split_cfg: Mapping[str, Any], *,
                    cache_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load, map and validate the configured dataset; return (items, split) tables."""
    items, split, where = load_and_split(dataset_cfg, labels_cfg, split_cfg, cache_dir=cache_dir)
    for warning in dataset_warnings(items, split, [str(n) for n in labels_cfg["names"]], where):
        logger.warning("%s", warning)
    return items, split


def load_and_split(dataset_cfg: Mapping[str, Any], labels_cfg: Mapping[str, Any],
                   split_cfg: Mapping[str, Any], *,
                   cache_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(items, split, name of the data for messages); raises DatasetError on the first problem."""
    label_names = [str(n) for n in labels_cfg["names"]]
    items, where = load_items(dataset_cfg, label_names, cache_dir=cache_dir)
    kind = str(dataset_cfg["kind"])
    if dataset_cfg.get("drop_empty_text", DROP_EMPTY_TEXT_DEFAULT[kind]):
        items = drop_empty_text(items, where)
    # no gold column (an agreement-only study): every gold label is unknown, and that is fine
    gold = has_gold(dataset_cfg)
    validate_items(items, label_names=label_names, where=where, allow_unknown_gold=not gold)
    items = order_item_columns(items)
    cfg = {**SPLIT_DEFAULTS, **split_cfg}
    split = assign_split(items, test=float(cfg["test"]), dev=float(cfg["dev"]),
                         seed=int(cfg["seed"]), use_column=bool(cfg["use_column"]))
    check_split(split, where, need_test=gold)
    return items, split, where


def has_gold(dataset_cfg: Mapping[str, Any]) -> bool:
    """The dataset has gold labels: every kind but a `file` whose columns name no gold column."""
    columns = dataset_cfg.get("columns")
    return dataset_cfg.get("kind") != "file" or not isinstance(columns, Mapping) or \
        columns.get("gold") not in (None, "")


def dataset_warnings(items: pd.DataFrame, split: pd.DataFrame, label_names: list[str],
                     where: str) -> list[str]:
    """What makes results weak without making them wrong (log, report, `llmal check`)."""
    if not (items["gold"] >= 0).any():
        return []   # no gold at all (an agreement-only study): nothing is scored against it
    small = small_test_classes(items, split, label_names)
    if not small:
        return []
    listed = ", ".join(f"{name}: {n}" for name, n in small.items())
    return [f"{where}: the test split has fewer than 30 gold items of some class ({listed}); "
            "scores of those classes are noise (more data, or a larger split.test)"]
