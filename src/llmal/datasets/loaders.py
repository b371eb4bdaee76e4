"""Read a user's dataset file and map its columns onto the items table (contract in llmal.contracts).

`load_table` reads .csv/.tsv/.jsonl/.json (JSON lines or an array of records)/.parquet by suffix;
`map_columns` renames and converts: ids to strings, labels to indices into the configured label
names, per-annotator label columns to `ann_<name>`, the dataset's own split to pool/dev/test
(kept as `meta_split`), extra columns to `meta_<name>`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import ANNOTATOR_PREFIX, META_PREFIX, safe_column_name
from llmal.datasets import readers
from llmal.datasets.errors import DatasetError, describe_offenders

FORMATS = readers.FORMATS
detect_format = readers.detect_format

COLUMN_KEYS = ("id", "text", "gold", "annotators", "topic", "split", "source", "meta")
# gold is optional: without it every item's gold is -1 (unknown), which only an agreement-only
# study (no conditions; llmal.config refuses conditions without gold) can use
REQUIRED_COLUMN_KEYS = ("text",)
NO_GOLD = -1
SPLIT_COLUMN = META_PREFIX + "split"  # the dataset's own split, mapped to pool | dev | test

# names a dataset may use for its splits -> the pipeline's splits
DEFAULT_SPLIT_MAP = {
    "pool": "pool", "train": "pool", "training": "pool", "trn": "pool",
    "dev": "dev", "validation": "dev", "valid": "dev", "val": "dev", "development": "dev",
    "test": "test", "testing": "test", "tst": "test", "eval": "test", "evaluation": "test",
}
# YAML 1.1 turns `yes:`/`no:` keys into booleans; accept the spellings a user meant
_BOOL_SPELLINGS = {True: ("true", "yes", "y", "on"), False: ("false", "no", "n", "off")}


def load_table(path: str | Path, *, format: str | None = None,
               string_columns: Sequence[str] = (), quoting: str | None = None,
               header: bool | None = None, encoding: str | None = None,
               skip_rows: int | None = None, key: str = "dataset") -> pd.DataFrame:
    """Read a table file into a DataFrame, choosing the reader by suffix (or `format`).

    CSV/TSV/JSON go through llmal.datasets.readers, record by record (see there for `quoting` and
    `header`, `skip_rows`); the number of records is checked against the file. `key` names the
    config keys of these options in messages (dataset, or annotators.<name>). Only empty cells are missing
    values (a comment reading "NA" or "null" stays text). `string_columns` stay strings (ids keep
    leading zeros, texts stay byte-exact); the other CSV/TSV columns become numbers where every
    cell is one.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: file not found")
    opts = readers.read_options(path, format, quoting, header, encoding, skip_rows, key)
    if opts.format == "parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # the reader's own message says what is wrong with the file
            raise DatasetError(f"{path}: cannot read as parquet: {exc}") from exc
    else:
        raw = readers.read_raw(path, opts)
        check_record_count(path, opts, raw)
        df = pd.DataFrame(raw.records, columns=raw.columns, dtype=object)
        if opts.format in ("csv", "tsv"):
            for col in df.columns:
                if col not in string_columns:
                    df[col] = _numbers_where_all_are(df[col])
        else:
            df = df.infer_objects()
        df.attrs["lines"] = raw.lines
    for col in string_columns:
        if col in df.columns:
            df[col] = _as_string_ids(df[col])
    return df


def check_record_count(path: Path, opts: readers.ReadOptions, raw: readers.RawTable) -> None:
    """Line-based files (tsv, csv without quoting, jsonl): one record per non-blank line after
    the header, else an error naming the first line that did not become a record."""
    if opts.format == "csv" and opts.quoting == "standard" or opts.format == "json":
        return  # a quoted CSV cell may span lines; a JSON array is not line-based
    text = readers.read_text(path, opts.encoding, opts.key)
    expected = [n for n, line in readers._physical_lines(text)
                if n > opts.skip_rows and line.strip() != ""]
    if opts.format in ("csv", "tsv") and opts.header:
        expected = expected[1:]
    if expected != raw.lines:
        missing = sorted(set(expected) - set(raw.lines))
        first = missing[0] if missing else next(a for a, b in zip(expected, raw.lines) if a != b)
        raise DatasetError(f"{path}: read {len(raw.lines)} record(s) but the file has "
                           f"{len(expected)} non-blank data line(s); first suspect line {first}")


def _numbers_where_all_are(values: pd.Series) -> pd.Series:
    """A column of number-like strings as numbers (ints stay ints); anything else unchanged."""
    present = values.dropna()
    if present.empty:
        return values
    try:
        numbers = pd.to_numeric(present)
    except (ValueError, TypeError):
        return values
    out = pd.to_numeric(values)
    if pd.api.types.is_integer_dtype(numbers) and values.isna().any():
        return out.astype("Int64")
    return out


def _as_string_ids(values: pd.Series) -> pd.Series:
    def one(v: Any) -> Any:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return pd.NA
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)
    return values.map(one).astype(object)


def _label_key(value: Any) -> str:
    """Normalise a raw label for lookup: 1, 1.0, "1" and " 1 " are the same key."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def label_lookup(label_names: Sequence[str], label_map: Mapping[Any, Any] | None,
                 where: str = "dataset.label_map") -> dict[str, int]:
    """raw value (normalised) -> label index: label_map first, then names, then 0..n-1."""
    names = [str(n) for n in label_names]
    lookup: dict[str, int] = {str(i): i for i in range(len(names))}
    lookup.update({name: i for i, name in enumerate(names)})
    for raw, target in (label_map or {}).items():
        if isinstance(target, str) and target in names:
            index = names.index(target)
        elif isinstance(target, (int, np.integer)) and not isinstance(target, bool) \
                and 0 <= int(target) < len(names):
            index = int(target)
        else:
            raise DatasetError(f"{where}: {raw!r} maps to {target!r}, which is not one of the "
                               f"label names {names} (labels.names)")
        keys = _BOOL_SPELLINGS[bool(raw)] if isinstance(raw, bool) else (_label_key(raw),)
        for key in keys:
            lookup[key] = index
    return lookup


def labels_to_indices(values: pd.Series, lookup: Mapping[str, int], *, label_names: Sequence[str],
                      column: str, where: str, ids: pd.Series | None = None,
                      sep_hint: bool = True) -> pd.Series:
    """Map raw labels to Int64 indices (<NA> where the cell is empty); unknown values are errors."""
    lower = {k.lower(): v for k, v in lookup.items()}
    out: list[Any] = []
    bad = np.zeros(len(values), dtype=bool)
    for pos, v in enumerate(values.tolist()):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or \
                (isinstance(v, str) and not v.strip()):
            out.append(pd.NA)
            continue
        key = _label_key(v)
        index = lookup.get(key, lower.get(key.lower()))
        if index is None:
            bad[pos] = True
            out.append(pd.NA)
        else:
            out.append(index)
    if bad.any():
        frame = pd.DataFrame({"id": ids if ids is not None else values.index.astype(str),
                              column: values.to_numpy()})
        mask = pd.Series(bad)
        example = str(values[mask.to_numpy()].iloc[0])
        hint = ""
        if sep_hint and any(s in example for s in "/,;|"):
            hint = (" (several labels in one cell? name that column in columns.annotators and set "
                    "dataset.annotator_sep)")
        raise DatasetError(
            f"{where}: {int(bad.sum())} row(s) in column {column!r} hold a value that is not a "
            f"label: expected one of the names {list(label_names)}, an index 0..{len(label_names) - 1}"
            f" or a key of dataset.label_map; first at {describe_offenders(frame, mask, column)}{hint}")
    return pd.Series(pd.array(out, dtype="Int64"), index=values.index)


_safe_name = safe_column_name


def positional_columns(columns: Mapping[Any, Any]) -> dict[str, Any]:
    """Column numbers (header: false; 1 = first column) as the names the reader gives them, in
    the values (and lists or mappings of them) of a columns spec; keys become strings."""
    def name(v: Any) -> Any:
        if isinstance(v, list):
            return [name(x) for x in v]
        if isinstance(v, Mapping):
            return {k: name(x) for k, x in v.items()}
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v
    return {str(k): name(v) for k, v in columns.items()}


def _require_columns(df: pd.DataFrame, wanted: Mapping[str, str], where: str) -> None:
    for key, col in wanted.items():
        if col not in df.columns:
            raise DatasetError(f"{where}: column {col!r} (dataset.columns.{key}) not found; the "
                               f"file has columns {list(df.columns)}")


def _tidy_meta(values: pd.Series) -> pd.Series:
    """Whole-number floats with gaps (pandas' reading of an int column with empty cells) -> Int64."""
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        if len(finite) and bool(np.all(np.mod(finite.to_numpy(), 1) == 0)):
            return values.astype("Int64")
    return values


def map_columns(df: pd.DataFrame, columns: Mapping[str, Any], *, source: str,
                label_names: Sequence[str], label_map: Mapping[Any, Any] | None = None,
                annotator_sep: str | None = None, split_map: Mapping[str, str] | None = None,
                where: str = "dataset") -> pd.DataFrame:
    """Turn a user's table into an items table.

    `columns` maps contract names to the file's column names:
      id (optional; default: row numbers "1", "2", ... in file order), text (required), gold
      (optional: without it every gold label is -1, unknown, for an agreement-only study),
      annotators (optional: a list of columns, each becoming ann_<column>; or one column of
      labels joined by `annotator_sep`, e.g. "1/0/1", becoming ann_1, ann_2, ... by position),
      topic (optional), split (optional: mapped to pool/dev/test through `split_map`, default
      DEFAULT_SPLIT_MAP, and kept as meta_split), source (optional column; default: the
      `source` argument for every row), meta (optional list of columns kept as meta_<column>).
    Labels may be label names, indices into `label_names`, or keys of `label_map`.
    The result is not validated here; call validate_items on it.
    """
    unknown = [k for k in columns if k not in COLUMN_KEYS]
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {unknown} in dataset.columns; "
                           f"known keys are {list(COLUMN_KEYS)}")
    for key in REQUIRED_COLUMN_KEYS:
        if not columns.get(key):
            raise DatasetError(f"{where}: dataset.columns.{key} is required (the name of the "
                               f"file's column holding the {key})")
    single = {k: columns[k] for k in ("id", "text", "gold", "topic", "split", "source")
              if columns.get(k)}
    _require_columns(df, single, where)
    df = df.reset_index(drop=True)

    out = pd.DataFrame(index=df.index)
    if "id" in single:
        out["id"] = _as_string_ids(df[single["id"]])
    else:
        out["id"] = [str(i + 1) for i in range(len(df))]
    out["text"] = df[single["text"]].map(lambda v: v if v is None or v is pd.NA
                                         or (isinstance(v, float) and np.isnan(v)) else str(v))
    lookup = label_lookup(label_names, label_map)
    if "gold" in single:
        gold = labels_to_indices(df[single["gold"]], lookup, label_names=label_names,
                                 column=single["gold"], where=where, ids=out["id"])
        out["gold"] = gold.fillna(NO_GOLD).astype("int64")
    else:
        out["gold"] = NO_GOLD
    out["topic"] = (df[single["topic"]].fillna("").astype(str) if "topic" in single else "")
    out["source"] = df[single["source"]].fillna("").astype(str) if "source" in single else source

    for name, values in _annotator_columns(df, columns.get("annotators"), annotator_sep, where):
        out[ANNOTATOR_PREFIX + name] = labels_to_indices(
            values, lookup, label_names=label_names, column=name, where=where, ids=out["id"],
            sep_hint=annotator_sep is None)

    if "split" in single:
        out[SPLIT_COLUMN] = _map_split(df[single["split"]], split_map, where, single["split"],
                                       out["id"])

    meta = columns.get("meta") or []
    if isinstance(meta, str):
        meta = [meta]
    _require_columns(df, {"meta": m for m in meta}, where)
    for col in meta:
        out[META_PREFIX + _safe_name(col)] = _tidy_meta(df[col])
    return out


def _annotator_columns(df: pd.DataFrame, spec: Any, sep: str | None,
                       where: str) -> list[tuple[str, pd.Series]]:
    if not spec:
        return []
    if isinstance(spec, str) and sep:
        _require_columns(df, {"annotators": spec}, where)
        cells = df[spec].map(lambda v: [] if v is None or v is pd.NA or
                             (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""
                             else [p.strip() for p in _label_key(v).split(sep)])
        width = int(cells.map(len).max()) if len(cells) else 0
        return [(str(k + 1), pd.Series([c[k] if k < len(c) and c[k] != "" else pd.NA
                                         for c in cells], index=df.index, dtype=object))
                for k in range(width)]
    names = [spec] if isinstance(spec, str) else list(spec)
    _require_columns(df, {"annotators": n for n in names}, where)
    safe = [_safe_name(n) for n in names]
    if len(set(safe)) != len(safe):
        raise DatasetError(f"{where}: dataset.columns.annotators {names} give clashing column "
                           f"names {safe}")
    return [(s, df[n]) for s, n in zip(safe, names)]


def _map_split(values: pd.Series, split_map: Mapping[str, str] | None, where: str, column: str,
               ids: pd.Series) -> pd.Series:
    mapping = {str(k).strip().lower(): str(v) for k, v in (split_map or DEFAULT_SPLIT_MAP).items()}
    targets = set(mapping.values()) - {"pool", "dev", "test"}
    if targets:
        raise DatasetError(f"{where}: dataset.split_map maps to {sorted(targets)}; the targets "
                           "must be pool, dev or test")
    mapped = values.map(lambda v: mapping.get(str(v).strip().lower()) if pd.notna(v) else None)
    bad = mapped.isna()
    if bad.any():
        frame = pd.DataFrame({"id": ids, column: values.to_numpy()})
        raise DatasetError(
            f"{where}: {int(bad.sum())} row(s) in split column {column!r} hold a value that is not "
            f"a known split (known: {sorted(mapping)}; set dataset.split_map to name yours); "
            f"first at {describe_offenders(frame, bad.reset_index(drop=True), column)}")
    return mapped.astype(str)


def dataset_files(dataset_cfg: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """(path, split or None) of every file of a `file` dataset: `path`, or `files` in order."""
    path, files = dataset_cfg.get("path"), dataset_cfg.get("files")
    if path and files:
        raise DatasetError("dataset: give either path (one file) or files (several, each with its "
                           "split), not both")
    if path:
        return [(str(path), None)]
    if not files:
        raise DatasetError("dataset.path (or dataset.files) is required for dataset kind 'file'")
    out = []
    for i, entry in enumerate(files):
        key = f"dataset.files[{i}]"
        if not isinstance(entry, Mapping) or not entry.get("path"):
            raise DatasetError(f"{key}: expected {{path: <file>, split: pool|dev|test}}")
        split = DEFAULT_SPLIT_MAP.get(str(entry.get("split", "")).strip().lower())
        if split is None:
            raise DatasetError(f"{key}.split: {entry.get('split')!r} is not pool, dev or test "
                               f"({entry['path']})")
        out.append((str(entry["path"]), split))
    return out
