"""The cost-quality frontier as data: every condition x encoder at its mean test metric and mean
`cost_total` over seeds, the Pareto front per encoder, and the answers a reader wants from it.

- `pareto`: no other condition of the encoder is at least as good for at most the cost, and
  better or cheaper (conditions at the same point are all on the front);
- `within_best`: within `tolerance` (aggregate.frontier_tolerance, default 0.01) of the encoder's
  best metric; `cheapest_within_best`: the cheapest of those (the answer to "what do I buy");
- routed conditions (annotator kind routed) are compared with their primary's condition of the
  same sampler where the grid has one (pure LLM), else with the encoder's cheapest condition:
  `extra_metric` and `extra_cost` over it, and `metric_per_dollar` = extra_metric / extra_cost,
  what each routed setting buys per extra dollar.

A condition's `role` says what kind of labels it buys: human, routed, or machine (an LLM, a
mixture, a simulated or precomputed annotator); `routing` names a routed annotator's rule.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import pandas as pd

from llmal.results.settings import AggregateSettings, groups

DEFAULT_TOLERANCE = 0.01
COLUMNS = ["encoder", "condition", "annotator", "role", "routing", "sampler", "n_seeds", "metric",
           "metric_mean", "cost_total_mean", "pareto", "within_best", "cheapest_within_best",
           "compared_with", "extra_metric", "extra_cost", "metric_per_dollar"]


def role_of(spec: Mapping[str, Any]) -> str:
    kind = str(spec.get("kind", ""))
    return kind if kind in ("human", "routed") else "machine"


def routing_of(spec: Mapping[str, Any]) -> str:
    """A routed annotator's rule in words, e.g. 'threshold 0.7' or 'share 0.2'."""
    if spec.get("kind") != "routed":
        return ""
    parts = [f"threshold {spec['threshold']:g}"] if spec.get("threshold") is not None else []
    if spec.get("fallback_share"):
        parts.append(f"share {spec['fallback_share']:g}")
    return ", ".join(parts) or "invalid/disagreeing only"


def pareto_mask(metric: pd.Series, cost: pd.Series) -> list[bool]:
    """Points no other point dominates (higher or equal metric at lower or equal cost, one strict)."""
    m, c = metric.to_numpy(float), cost.to_numpy(float)
    out = []
    for i in range(len(m)):
        dominated = any(m[j] >= m[i] and c[j] <= c[i] and (m[j] > m[i] or c[j] < c[i])
                        for j in range(len(m)) if j != i and not math.isnan(m[j]))
        out.append(not math.isnan(m[i]) and not dominated)
    return out


def frontier_table(finals: pd.DataFrame, config: Mapping[str, Any], settings: AggregateSettings,
                   tolerance: float | None = None) -> pd.DataFrame:
    """One row per condition x encoder (columns COLUMNS), in the order of the config."""
    tol = float((config.get("aggregate") or {}).get("frontier_tolerance", DEFAULT_TOLERANCE)
                if tolerance is None else tolerance)
    conditions = config.get("conditions") or {}
    annotators = config.get("annotators") or {}
    metric = settings.metric
    rows = []
    for (cond, enc), g in groups(finals, settings):
        spec = conditions.get(cond) or {}
        ann = annotators.get(spec.get("annotator")) or {}
        rows.append({"encoder": enc, "condition": cond, "annotator": str(spec.get("annotator", "")),
                     "role": role_of(ann), "routing": routing_of(ann), "sampler": str(spec.get("sampler", "")),
                     "n_seeds": int(g["seed"].nunique()), "metric": metric,
                     "metric_mean": float(pd.to_numeric(g[metric], errors="coerce").mean()),
                     "cost_total_mean": float(pd.to_numeric(g["cost_total"], errors="coerce").mean())})
    table = pd.DataFrame(rows, columns=COLUMNS[:10])
    parts = []
    for _, g in table.groupby("encoder", sort=False):
        g = g.copy()
        g["pareto"] = pareto_mask(g["metric_mean"], g["cost_total_mean"])
        best = g["metric_mean"].max()
        g["within_best"] = g["metric_mean"] >= best - tol - 1e-12
        cheapest = g.loc[g["within_best"], "cost_total_mean"].min()
        g["cheapest_within_best"] = g["within_best"] & (g["cost_total_mean"] <= cheapest + 1e-12)
        parts.append(_compare_routed(g, conditions, annotators))
    out = (pd.concat(parts) if parts else table.reindex(columns=COLUMNS)).reset_index(drop=True)[COLUMNS]
    out.attrs["tolerance"] = tol
    return out


def _compare_routed(g: pd.DataFrame, conditions: Mapping[str, Any], annotators: Mapping[str, Any]) -> pd.DataFrame:
    """extra_metric, extra_cost and metric_per_dollar of the routed conditions of one encoder."""
    g = g.assign(compared_with="", extra_metric=float("nan"), extra_cost=float("nan"),
                 metric_per_dollar=float("nan"))
    by_name = g.set_index("condition")
    cheapest = str(g.loc[g["cost_total_mean"].idxmin(), "condition"]) if len(g) else ""
    for idx, row in g.iterrows():
        if row["role"] != "routed":
            continue
        primary = (annotators.get(row["annotator"]) or {}).get("primary")
        base = next((c for c in by_name.index if (conditions.get(c) or {}).get("annotator") == primary
                     and by_name.loc[c, "sampler"] == row["sampler"]), cheapest)
        if base == row["condition"]:
            continue
        extra_m = float(row["metric_mean"] - by_name.loc[base, "metric_mean"])
        extra_c = float(row["cost_total_mean"] - by_name.loc[base, "cost_total_mean"])
        g.loc[idx, ["compared_with", "extra_metric", "extra_cost"]] = [base, extra_m, extra_c]
        g.loc[idx, "metric_per_dollar"] = extra_m / extra_c if extra_c > 0 else float("nan")
    return g


def frontier_answers(table: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE) -> list[dict[str, Any]]:
    """Per encoder: the best condition, the cheapest within `tolerance` of it, the Pareto front
    (cheapest first) and each routed condition's gain per extra dollar."""
    out = []
    for enc, g in table.groupby("encoder", sort=False):
        best = g.loc[g["metric_mean"].idxmax()]
        cheap = g[g["cheapest_within_best"]].sort_values("cost_total_mean").iloc[0]
        routed = g[g["role"] == "routed"]
        out.append({
            "encoder": str(enc), "best": str(best["condition"]), "best_metric": float(best["metric_mean"]),
            "best_cost": float(best["cost_total_mean"]), "cheapest_within_best": str(cheap["condition"]),
            "cheapest_metric": float(cheap["metric_mean"]), "cheapest_cost": float(cheap["cost_total_mean"]),
            "tolerance": tolerance,
            "pareto": g[g["pareto"]].sort_values("cost_total_mean")["condition"].astype(str).tolist(),
            "routed": [{"condition": str(r["condition"]), "routing": str(r["routing"]),
                        "compared_with": str(r["compared_with"]), "extra_metric": float(r["extra_metric"]),
                        "extra_cost": float(r["extra_cost"]), "metric_per_dollar": float(r["metric_per_dollar"])}
                       for _, r in routed.iterrows()],
        })
    return out
