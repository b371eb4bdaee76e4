"""Read the per-run contract: one directory per condition × encoder × seed.

results/{ds}/runs/{condition}/{encoder}/seed{seed}/ holds
- rounds.csv: one row per AL round (ROUND_COLUMNS plus precision_/recall_/f1_<label> per label);
- predictions.parquet: final-round test predictions (PREDICTION_COLUMNS);
- queried.parquet: the queried items (id, round, label, status) — not needed for aggregation;
- run.json: condition, encoder, seed, dataset, annotator, sampler, recipe, config_hash, versions,
  device, timings, final, label_names, positive.
Every reader raises RunFileError naming the file at fault.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from llmal.contracts import ContractError

RUN_JSON = "run.json"
ROUNDS_CSV = "rounds.csv"
PREDICTIONS_PARQUET = "predictions.parquet"
QUERIED_PARQUET = "queried.parquet"
LEDGER_PARQUET = "ledger.parquet"

RUN_KEYS = ["condition", "encoder", "seed", "label_names", "positive"]
RUN_META_KEYS = ["dataset", "annotator", "annotation", "sampler", "recipe", "config_hash", "device",
                 "stop_reason"]
ROUND_COLUMNS = ["round", "n_labels", "n_train", "cost_al", "cost_dev", "cost_gold", "cost_total",
                 "f1_macro", "accuracy",
                 "tp", "fp", "fn", "tn", "soft_ce", "soft_brier", "seconds"]
POSITIVE_COLUMNS = ("tp", "fp", "fn", "tn")  # only with a positive class (labels.positive)
PER_LABEL_METRICS = ["precision", "recall", "f1"]
PREDICTION_COLUMNS = ["id", "pred", "gold", "topic"]  # and `prob` (positive class) when there is one


class RunFileError(ContractError):
    """A run file is missing or does not follow the per-run contract; the message names it."""


def collect_runs(run_dirs: Iterable[Path | str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read every run directory: (rounds, finals, predictions).

    `run_dirs` may also name files inside run directories (e.g. the Snakemake inputs
    .../run.json); their parent directories are used, each once.
    rounds: rounds.csv rows plus condition/encoder/seed; finals: one row per run (the run.json
    metadata, the last round's metrics, and f1_pos/precision_pos/recall_pos for the positive
    class); predictions: predictions.parquet's PREDICTION_COLUMNS plus condition/encoder/seed.
    The predictions are the large part (a test row per item per run): they are read without
    the columns no table uses (`prob`), and their strings are held as one object per distinct
    value (condition, encoder, id, topic: object columns of shared strings), so 140 runs of
    56,087 test items take about 440 MB instead of 800 MB.
    Raises RunFileError naming the file at fault.
    """
    dirs = _run_directories(run_dirs)
    if not dirs:
        raise ValueError("collect_runs: no run directories given")
    rounds_parts, final_rows, pred_parts = [], [], []
    seen: dict[tuple, Path] = {}
    labels_seen: tuple[tuple[str, ...], str, Path] | None = None
    for d in dirs:
        meta = read_run_json(d / RUN_JSON)
        key = (meta["condition"], meta["encoder"], meta["seed"])
        if key in seen:
            raise RunFileError(f"{d / RUN_JSON}: run {key} also in {seen[key] / RUN_JSON}")
        seen[key] = d
        labels = (tuple(meta["label_names"]), meta["positive"], d)
        if labels_seen is None:
            labels_seen = labels
        elif labels[:2] != labels_seen[:2]:
            raise RunFileError(f"{d / RUN_JSON}: label_names/positive {labels[:2]} differ from "
                               f"{labels_seen[:2]} in {labels_seen[2] / RUN_JSON}")
        rounds = read_rounds(d / ROUNDS_CSV, meta["label_names"], positive=meta["positive"] is not None)
        preds = _shared_strings(read_predictions(d / PREDICTIONS_PARQUET, PREDICTION_COLUMNS), ("id", "topic"))
        check_ledger(d / LEDGER_PARQUET, rounds)
        for frame in (rounds, preds):
            frame.insert(0, "seed", meta["seed"])
            frame.insert(0, "encoder", meta["encoder"])
            frame.insert(0, "condition", meta["condition"])
        _shared_strings(preds, ("condition", "encoder"))
        rounds_parts.append(rounds)
        pred_parts.append(preds)
        final_rows.append(_final_row(meta, rounds, d))
    rounds_all = pd.concat(rounds_parts, ignore_index=True)
    finals = pd.DataFrame(final_rows)
    preds_all = pd.concat(pred_parts, ignore_index=True)
    return rounds_all, finals, preds_all


def read_run_json(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: run file missing")
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunFileError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise RunFileError(f"{path}: expected a JSON object")
    meta.setdefault("positive", None)  # no positive class: any number of classes
    missing = [k for k in RUN_KEYS if k not in meta]
    if missing:
        raise RunFileError(f"{path}: missing key(s) {missing}")
    names = meta["label_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise RunFileError(f"{path}: label_names must be a non-empty list of strings")
    if meta["positive"] is not None and meta["positive"] not in names:
        raise RunFileError(f"{path}: positive {meta['positive']!r} is not in label_names {names}")
    try:
        meta["seed"] = int(meta["seed"])
    except (TypeError, ValueError) as e:
        raise RunFileError(f"{path}: seed {meta['seed']!r} is not an integer") from e
    meta["condition"], meta["encoder"] = str(meta["condition"]), str(meta["encoder"])
    return meta


def read_rounds(path: Path, label_names: Sequence[str], positive: bool = True) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: run file missing")
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise RunFileError(f"{path}: cannot read CSV ({e})") from e
    needed = [c for c in ROUND_COLUMNS if positive or c not in POSITIVE_COLUMNS]
    needed += [f"{m}_{n}" for n in label_names for m in PER_LABEL_METRICS]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise RunFileError(f"{path}: missing column(s) {missing}")
    if df.empty:
        raise RunFileError(f"{path}: no rounds")
    for col in needed:
        try:
            df[col] = pd.to_numeric(df[col])
        except (TypeError, ValueError) as e:
            raise RunFileError(f"{path}: column {col!r} is not numeric ({e})") from e
    if df["round"].duplicated().any():
        raise RunFileError(f"{path}: duplicate round {int(df.loc[df['round'].duplicated(), 'round'].iloc[0])}")
    return df.sort_values("round", kind="stable").reset_index(drop=True)


def check_ledger(path: Path, rounds: pd.DataFrame) -> None:
    """The run's ledger and its rounds.csv must tell one cost: the ledger's total is cost_total
    of the last round."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: run file missing")
    try:
        ledger = pd.read_parquet(path, columns=["cost_usd"])
    except Exception as e:  # pyarrow raises several unrelated types for a broken file
        raise RunFileError(f"{path}: cannot read parquet ({e})") from e
    total, last = float(ledger["cost_usd"].sum()), float(rounds["cost_total"].iloc[-1])
    if abs(total - last) > 1e-9 * max(1.0, abs(total)):
        raise RunFileError(f"{path}: ledger total ${total:.6f} differs from cost_total ${last:.6f} "
                           "in the last row of rounds.csv")


def read_predictions(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """predictions.parquet, PREDICTION_COLUMNS first; with `columns`, only those are read."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: run file missing")
    try:
        if columns is not None:
            present = set(pq.ParquetFile(path).schema_arrow.names)
            columns = [c for c in columns if c in present]
        df = pd.read_parquet(path, columns=columns)
    except Exception as e:  # pyarrow raises several unrelated types for a broken file
        raise RunFileError(f"{path}: cannot read parquet ({e})") from e
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise RunFileError(f"{path}: missing column(s) {missing}")
    df = df[PREDICTION_COLUMNS + [c for c in df.columns if c not in PREDICTION_COLUMNS]].copy()
    for col in ("pred", "gold"):
        if df[col].isna().any():
            raise RunFileError(f"{path}: column {col!r} has missing values "
                               f"(id {df.loc[df[col].isna(), 'id'].iloc[0]!r})")
        df[col] = df[col].astype("int64")
    df["id"] = df["id"].astype(str)
    df["topic"] = df["topic"].fillna("").astype(str)
    return df


def _shared_strings(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """`columns` (strings) as object columns whose equal strings are one object (sys.intern),
    in place: 8 bytes a row where a string column holds each row's characters. The values are
    unchanged."""
    for col in columns:
        codes, uniques = pd.factorize(df[col].to_numpy(dtype=object))
        shared = np.array([sys.intern(v) for v in uniques], dtype=object)
        df[col] = pd.Series(shared[codes], index=df.index, dtype=object)
    return df


def _run_directories(paths: Iterable[Path | str]) -> list[Path]:
    return list(dict.fromkeys(p if p.is_dir() or not p.suffix else p.parent for p in map(Path, paths)))


def _final_row(meta: Mapping[str, Any], rounds: pd.DataFrame, run_dir: Path) -> dict[str, Any]:
    last = rounds.iloc[-1]
    pos = meta["positive"]
    row: dict[str, Any] = {k: meta[k] for k in ("condition", "encoder", "seed")}
    for k in RUN_META_KEYS:
        row[k] = "" if meta.get(k) is None else str(meta.get(k))
    row["positive"] = pos
    row["positive_index"] = list(meta["label_names"]).index(pos) if pos is not None else -1
    row["label_names"] = json.dumps(list(meta["label_names"]))
    row["versions"] = json.dumps(meta.get("versions") or {}, sort_keys=True)
    row["timings"] = json.dumps(meta.get("timings") or {}, sort_keys=True)
    row["n_rounds"] = int(len(rounds))
    if meta.get("stopping"):   # al.stop: stop or record (llmal.stopping)
        row["stop_mode"] = str(meta["stopping"].get("mode", ""))
    row["run_dir"] = str(run_dir)
    for col in rounds.columns:
        row[col] = last[col]
    for m in PER_LABEL_METRICS if pos is not None else ():
        row[f"{m}_pos"] = last[f"{m}_{pos}"]
    for k, v in (meta.get("final") or {}).items():  # metrics only run.json knows
        if k not in row and isinstance(v, (int, float)) and not isinstance(v, bool):
            row[k] = v
    return row
