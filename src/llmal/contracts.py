"""The file contracts of DESIGN.md as code: column names, dtypes and checked writers.

Every stage reads and writes these tables through the functions here, so a column added or
renamed in one place is seen by all stages and by the tests.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

# results/{ds}/data/items.parquet
#   id (str), text (str), gold (int, index into the label set; -1 when unknown),
#   topic (str, "" when unknown), source (str), ann_<name> (Int64, one column per human
#   annotator, <NA> where that annotator gave no label), plus any meta_<name> columns.
ITEM_COLUMNS = ["id", "text", "gold", "topic", "source"]
ANNOTATOR_PREFIX = "ann_"
META_PREFIX = "meta_"

# results/{ds}/data/split.parquet
SPLIT_COLUMNS = ["id", "split"]
SPLITS = ("pool", "dev", "test")

# results/{ds}/annotations/{annotator}.parquet
STATUSES = ("ok", "invalid", "failed")
ANNOTATION_COLUMNS = [
    "id",             # item id
    "label",          # Int64 index into the label set, <NA> unless status == "ok"
    "status",         # ok | invalid | failed
    "answers",        # JSON object: question name -> answer (LLM interfaces), "{}" otherwise
    "raw",            # raw model output (or "" for human/simulated)
    "input_tokens",   # int
    "output_tokens",  # int
    "cached_tokens",  # int
    "cost_usd",       # float, what this label cost
    "model",          # e.g. "gpt-4o-mini", "human:majority", "simulated"
    "prompt_hash",    # sha256 prefix of the rendered prompt template ("" if none)
    "reasoning_tokens",  # int, reasoning tokens of an LLM answer (part of output_tokens), 0 otherwise
    "request_id",     # the request this answer came from (LLM custom_id; "" for human/simulated):
                      # duplicate texts share one request, paid once (see annotation_cost)
    "probs",          # JSON object, "{}" when unknown (llmal.label_probs): "choices" (question ->
                      # choice -> probability, from logprobs), "label" (label name -> probability),
                      # "votes" (label name -> share of the samples) with "n_samples", "agreement"
    "spans",          # task: ner only: JSON list of [start, end, type] over token positions (end
                      # exclusive) of an ok answer, "" otherwise; `label` is then 0 (labelled) or
                      # <NA> (no usable answer), so status and label keep their meaning
    "invalid_spans",  # task: ner only: spans of the answer dropped as invalid (not in the sentence,
                      # unknown type, overlapping), 0 otherwise; the raw answer stays in `raw`
    "source",         # routed annotators: the annotator whose answer this row is (its primary or its
                      # fallback); "" for every other kind (the annotator itself)
    "route",          # routed annotators: why the item went to the fallback (llmal.annotate.routing
                      # REASONS), "" when the primary's answer was kept or for other kinds
]
# added after the first release: tables written before lack them and read as the default
OPTIONAL_ANNOTATION_COLUMNS = {"reasoning_tokens": 0, "request_id": "", "probs": "{}", "spans": "",
                               "invalid_spans": 0, "source": "", "route": ""}


class ContractError(ValueError):
    """A table does not follow its contract; the message names the file and column."""


def safe_column_name(name: str) -> str:
    """A file's column name as it appears in ann_<name> / meta_<name> (letters, digits, _)."""
    return re.sub(r"[^0-9A-Za-z_]+", "_", str(name)).strip("_") or "x"


def annotator_columns(items: pd.DataFrame) -> list[str]:
    return [c for c in items.columns if c.startswith(ANNOTATOR_PREFIX)]


def make_annotations(rows: Iterable[dict[str, Any]] | dict[str, Any] | pd.DataFrame) -> pd.DataFrame:
    """Build an annotation table with the contract's columns and dtypes.

    `rows` is a list of row dicts, a dict of columns (scalars are broadcast) or a DataFrame.
    Missing optional fields get neutral defaults (no tokens, no cost, empty raw text).
    """
    attrs: dict[str, Any] = {}
    if isinstance(rows, pd.DataFrame):
        df = rows.copy()
        attrs = dict(rows.attrs)
    elif isinstance(rows, dict):
        df = pd.DataFrame(rows)
    else:
        df = pd.DataFrame(list(rows))
    defaults: dict[str, Any] = {
        "label": pd.NA, "status": "ok", "answers": "{}", "raw": "", "input_tokens": 0,
        "output_tokens": 0, "cached_tokens": 0, "cost_usd": 0.0, "model": "", "prompt_hash": "",
        **OPTIONAL_ANNOTATION_COLUMNS,
    }
    for col, default in defaults.items():
        if col not in df.columns:
            df[col] = default
    if "id" not in df.columns:
        raise ContractError("annotation rows need an 'id'")
    for col in ("answers", "probs"):
        df[col] = [_json_cell(a) for a in df[col]]
    df = df[ANNOTATION_COLUMNS].copy()
    df["id"] = df["id"].astype(str)
    df["label"] = pd.array(df["label"], dtype="Int64")
    df["status"] = df["status"].astype(str)
    for col in ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "invalid_spans"):
        df[col] = df[col].fillna(0).astype("int64")
    df["cost_usd"] = df["cost_usd"].fillna(0.0).astype("float64")
    for col in ("raw", "model", "prompt_hash", "request_id", "spans", "source", "route"):
        df[col] = df[col].fillna("").astype(str)
    check_annotations(df)
    df.attrs = attrs   # e.g. an LLM annotator's run statistics (attrs["llm"]), kept in parquet
    return df


def _json_cell(value: Any) -> str:
    """A JSON object column's cell: strings as they are, mappings dumped, missing as "{}"."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "{}"


def annotation_cost(df: pd.DataFrame) -> float:
    """What the rows of an annotation table cost together: every row's `cost_usd` is the full
    price of its request, and rows sharing a `request_id` (duplicate texts) paid it once."""
    if "request_id" not in df.columns:
        return float(df["cost_usd"].sum())
    own = df["request_id"].astype(str) == ""
    shared = df.loc[~own].drop_duplicates("request_id")
    return float(df.loc[own, "cost_usd"].sum() + shared["cost_usd"].sum())


def check_annotations(df: pd.DataFrame, where: str = "annotation table") -> None:
    missing = [c for c in ANNOTATION_COLUMNS if c not in df.columns
               and c not in OPTIONAL_ANNOTATION_COLUMNS]
    if missing:
        raise ContractError(f"{where}: missing column(s) {missing}")
    bad = ~df["status"].isin(STATUSES)
    if bad.any():
        raise ContractError(f"{where}: status {df.loc[bad, 'status'].iloc[0]!r} of id "
                            f"{df.loc[bad, 'id'].iloc[0]!r} is not one of {STATUSES}")
    ok = df["status"] == "ok"
    if df.loc[ok, "label"].isna().any():
        raise ContractError(f"{where}: id {df.loc[ok & df['label'].isna(), 'id'].iloc[0]!r} "
                            "has status ok but no label")
    if df.loc[~ok, "label"].notna().any():
        raise ContractError(f"{where}: id {df.loc[~ok & df['label'].notna(), 'id'].iloc[0]!r} "
                            "has a label but status is not ok (labels are never guessed)")
    if df["id"].duplicated().any():
        raise ContractError(f"{where}: duplicate id {df.loc[df['id'].duplicated(), 'id'].iloc[0]!r}")


def write_parquet(df: pd.DataFrame, path: str | Path) -> None:
    """Write atomically: a crash never leaves a half-written table behind a valid name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically (through a .tmp sibling), creating the directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_json(obj: Any, path: str | Path) -> None:
    """Strict JSON: NaN and infinities become null (a bare NaN is not JSON)."""
    write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=True, default=_json_default,
                                allow_nan=False) + "\n")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) or isinstance(obj, np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if obj is pd.NA:
        return None
    return obj


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
