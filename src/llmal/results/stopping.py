"""The stop table as data: where each stopping criterion fired, and what stopping there bought.

Per condition × encoder × criterion (the runs' rounds.csv columns stop_<name>, llmal.stopping):
the round, training labels, cost (cost_total) and test metric at the stop, against the same at the
full budget (the run's last round). A seed whose criterion never fired stops at its last round
(it would have run to its budget). A run that ended at its stop (`al.stop.mode: stop`, run.json
stop_reason stop_criterion) has no full-budget values: only record mode compares the two.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from llmal.results.settings import mean_sd, ordered
from llmal.stopping.registry import CRITERIA

STOPPED_AT_CRITERION = "stop_criterion"     # llmal.engine.schedule.STOP_CRITERION
STOP_COLUMNS = ["condition", "encoder", "criterion", "mode", "n_seeds", "n_fired", "round_mean",
                "n_labels_stop_mean", "n_labels_stop_sd", "cost_stop_mean", "cost_stop_sd",
                "metric_stop_mean", "metric_stop_sd", "n_labels_full_mean", "cost_full_mean",
                "metric_full_mean", "metric_full_sd", "labels_saved_share", "cost_saved_share",
                "metric_diff_mean", "metric_diff_sd", "metric", "note"]


def criteria_in(rounds: pd.DataFrame) -> list[str]:
    """The criteria whose columns the runs wrote, in registry order."""
    return [n for n in CRITERIA if f"stop_{n}" in rounds.columns]


def stop_table(rounds: pd.DataFrame, finals: pd.DataFrame, metric: str,
               condition_order: Sequence[str] = ()) -> pd.DataFrame:
    """One row per condition × encoder × criterion the runs checked (STOP_COLUMNS)."""
    cost = "cost_total" if "cost_total" in rounds.columns else "cost_usd"
    ended = {(c, e, int(s)): r == STOPPED_AT_CRITERION for c, e, s, r in
             zip(finals["condition"], finals["encoder"], finals["seed"], finals["stop_reason"])}
    modes = ({(c, e): m for c, e, m in zip(finals["condition"], finals["encoder"], finals["stop_mode"])}
             if "stop_mode" in finals.columns else {})
    rows: list[dict[str, Any]] = []
    for name in criteria_in(rounds):
        col = f"stop_{name}"
        checked = rounds[rounds[col].notna()]
        for enc in ordered(checked["encoder"].unique(), ()):
            for cond in ordered(checked.loc[checked["encoder"] == enc, "condition"].unique(), condition_order):
                g = checked[(checked["condition"] == cond) & (checked["encoder"] == enc)]
                per_seed = [_seed_row(gs.sort_values("round"), col, cost, metric,
                                      ended.get((cond, enc, int(seed)), False))
                            for seed, gs in g.groupby("seed", sort=True)]
                rows.append(_summarise(cond, enc, name, str(modes.get((cond, enc)) or ""), metric, per_seed))
    return pd.DataFrame(rows, columns=STOP_COLUMNS)


def _seed_row(g: pd.DataFrame, col: str, cost: str, metric: str, ended_here: bool) -> dict[str, float]:
    said = g[col].astype(str).str.lower().isin(["true", "1", "1.0"]).to_numpy()
    fired = bool(said.any())
    at = g.iloc[int(np.argmax(said))] if fired else g.iloc[-1]
    last = g.iloc[-1]
    full = not ended_here          # a run that ended at its stop never saw its full budget
    nan = float("nan")
    return {"fired": fired, "round": float(at["round"]), "labels": float(at["n_labels"]),
            "cost": float(at[cost]), "metric": float(at[metric]),
            "labels_full": float(last["n_labels"]) if full else nan,
            "cost_full": float(last[cost]) if full else nan,
            "metric_full": float(last[metric]) if full else nan}


def _summarise(cond: str, enc: str, name: str, mode: str, metric: str,
               seeds: list[dict[str, float]]) -> dict[str, Any]:
    f = pd.DataFrame(seeds)
    n_fired = int(f["fired"].sum())
    row: dict[str, Any] = {"condition": cond, "encoder": enc, "criterion": name, "mode": mode,
                           "n_seeds": len(f), "n_fired": n_fired, "metric": metric,
                           "round_mean": float(f["round"].mean())}
    for key, src in (("n_labels_stop", "labels"), ("cost_stop", "cost"), ("metric_stop", "metric"),
                     ("metric_full", "metric_full")):
        row[f"{key}_mean"], row[f"{key}_sd"] = mean_sd(f[src])
    row["n_labels_full_mean"] = float(f["labels_full"].mean())
    row["cost_full_mean"] = float(f["cost_full"].mean())
    row["labels_saved_share"] = _share_saved(f["labels"], f["labels_full"])
    row["cost_saved_share"] = _share_saved(f["cost"], f["cost_full"])
    row["metric_diff_mean"], row["metric_diff_sd"] = mean_sd(f["metric"] - f["metric_full"])
    notes = []
    if n_fired < len(f):
        notes.append(f"{len(f) - n_fired} of {len(f)} seed(s) never fired: their stop is the last round")
    if f["labels_full"].isna().all():
        notes.append("the runs ended at the stop (al.stop.mode: stop): no full-budget values; "
                     "record mode compares the two")
    row["note"] = "; ".join(notes)
    return row


def _share_saved(at_stop: pd.Series, full: pd.Series) -> float:
    """Mean over seeds of 1 - at_stop / full (NaN where full is unknown or zero)."""
    shares = [1.0 - a / b for a, b in zip(at_stop, full) if not math.isnan(b) and b > 0]
    return float(np.mean(shares)) if shares else float("nan")
