"""Routing: which items a routed annotator (`kind: routed`) sends from its primary to its fallback.

An item goes to the fallback when one of these holds (the first that holds is its reason):
- `status`: the primary gave no label (invalid or failed);
- `disagreement` (`on_disagreement`, default on): the primary's samples disagree (vote share of
  the majority below 1 over `samples`), or a mixture's members do (fewer agree than voted);
- `below_threshold` (`threshold`): the primary's confidence is below it;
- `no_confidence` (`threshold`): the primary's answer has no confidence to compare;
- `fallback_share` (`fallback_share`): the item is among the least confident `fallback_share`
  of the items routed together (one acquisition of an AL run: a round; the whole table when the
  annotate rule routes it), items without a confidence first, ties by a per-item hash.

The confidence (`confidence_from`) is the top probability of the primary's `probs` label
distribution (logprobs, a mixture's posterior, recorded or simulated probabilities), else the
vote share of the majority over its samples (`auto`); `probability` or `vote_share` read only
that one. Everything here is task-free: it reads the annotation contract only.
"""
from __future__ import annotations

import json
import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import make_annotations
from llmal.label_probs import read_cell
from llmal.tasks.draws import uniform_per_item

REASONS = ("status", "disagreement", "below_threshold", "no_confidence", "fallback_share")


def confidence(table: pd.DataFrame, source: str = "auto") -> np.ndarray:
    """The primary's confidence in each row's answer (NaN where unknown or without an answer)."""
    out = np.full(len(table), np.nan)
    for n, (cell, status) in enumerate(zip(table["probs"], table["status"])):
        if status != "ok":
            continue
        probs = read_cell(cell)
        value = None
        if source in ("auto", "probability"):
            value = _top_probability(probs.get("label"))
        if value is None and source in ("auto", "vote_share"):
            value = probs.get("agreement")
        if value is not None and math.isfinite(float(value)):
            out[n] = float(value)
    return out


def _top_probability(dist: Any) -> float | None:
    """The highest probability of a label-name -> probability mapping (None when empty)."""
    if not isinstance(dist, Mapping) or not dist:
        return None
    try:
        values = [float(v or 0.0) for v in dist.values()]
    except (TypeError, ValueError):
        return None
    total = sum(values)
    return max(values) / total if total > 0 else None


def disagreement(table: pd.DataFrame) -> np.ndarray:
    """Rows whose samples (vote share below 1) or mixture members (n_agree < n_votes) disagree."""
    out = np.zeros(len(table), dtype=bool)
    for n, (cell, answers) in enumerate(zip(table["probs"], table["answers"])):
        agreement = read_cell(cell).get("agreement")
        if agreement is not None and float(agreement) < 1.0:
            out[n] = True
            continue
        try:
            parsed = json.loads(answers) if isinstance(answers, str) else {}
        except json.JSONDecodeError:
            parsed = {}
        if isinstance(parsed, dict) and "n_votes" in parsed and "n_agree" in parsed:
            out[n] = int(parsed["n_agree"]) < int(parsed["n_votes"])
    return out


def route_reasons(table: pd.DataFrame, rule: Mapping[str, Any]) -> list[str]:
    """Per row of the primary's `table`: why it goes to the fallback ("" = it keeps the primary's
    answer). `rule`: the routed annotator's spec (threshold, fallback_share, on_disagreement,
    confidence_from, seed)."""
    n = len(table)
    reasons = [""] * n
    if n == 0:
        return reasons
    conf = confidence(table, str(rule.get("confidence_from", "auto")))
    no_label = (table["status"] != "ok").to_numpy()
    disagree = disagreement(table) if rule.get("on_disagreement", True) else np.zeros(n, dtype=bool)
    threshold = rule.get("threshold")
    for i in range(n):
        if no_label[i]:
            reasons[i] = "status"
        elif disagree[i]:
            reasons[i] = "disagreement"
        elif threshold is not None and not np.isnan(conf[i]) and conf[i] < float(threshold):
            reasons[i] = "below_threshold"
        elif threshold is not None and np.isnan(conf[i]):
            reasons[i] = "no_confidence"
    share = rule.get("fallback_share")
    if share:
        for i in least_confident(conf, table["id"].astype(str).tolist(), float(share),
                                 int(rule.get("seed", 0))):
            reasons[i] = reasons[i] or "fallback_share"
    return reasons


def share_count(n: int, share: float) -> int:
    """How many of `n` items a `fallback_share` routes: share x n rounded half up."""
    return min(n, int(math.floor(share * n + 0.5 + 1e-9)))


def least_confident(conf: np.ndarray, ids: Sequence[str], share: float, seed: int) -> list[int]:
    """Positions of the least confident `share` of the rows (NaN first; ties by a per-item hash)."""
    k = share_count(len(ids), share)
    if k == 0:
        return []
    ranked = np.where(np.isnan(conf), -np.inf, conf)
    order = np.lexsort((uniform_per_item(list(ids), seed, "route"), ranked))
    return [int(i) for i in order[:k]]


def routed_table(primary: pd.DataFrame, fallback: pd.DataFrame, reasons: Sequence[str], *,
                 primary_name: str, fallback_name: str) -> pd.DataFrame:
    """The routed annotator's rows, in the primary's order: the primary's answer where it is kept,
    the fallback's where routed (`source` names whose answer it is, `route` why). A routed row's
    `cost_usd` is what the item cost in all: the primary's price plus the fallback's."""
    primary = make_annotations(primary).reset_index(drop=True)
    fallback = make_annotations(fallback)
    by_id = fallback.set_index(fallback["id"].astype(str), drop=False)
    rows = []
    for row, reason in zip(primary.to_dict("records"), reasons):
        if not reason:
            rows.append({**row, "source": primary_name, "route": ""})
            continue
        item = str(row["id"])
        if item not in by_id.index:
            raise ValueError(f"routed annotator: its fallback {fallback_name!r} has no answer for id "
                             f"{item!r} (routed for {reason})")
        other = by_id.loc[item].to_dict()
        rows.append({**other, "cost_usd": float(row["cost_usd"]) + float(other["cost_usd"]),
                     "request_id": "", "source": fallback_name, "route": reason})
    return make_annotations(rows if rows else {"id": []})


def routing_summary(table: pd.DataFrame) -> dict[str, Any]:
    """Share routed and counts per reason of a routed annotator's table (empty for other kinds)."""
    if "route" not in table.columns or not (table["source"].astype(str) != "").any():
        return {}
    routed = table["route"].astype(str) != ""
    return {"routed_share": float(routed.mean()) if len(table) else 0.0,
            "routed": int(routed.sum()),
            "reasons": {r: int((table["route"] == r).sum()) for r in REASONS if (table["route"] == r).any()}}
