"""Fair comparisons of AL runs as tables: AULC, matched budgets, repeats counted once, degenerate models.

Area under the learning curve, matched budgets, deterministic repeats counted once, degenerate
models marked. Computation only (tables as DataFrames); llmal.report renders and draws them.

- AULC: per run, the trapezoid area under `metric` over labels (and over dollars, and for
  task ner over tokens), divided by the run's own label (dollar, token) range, so it is the
  mean metric over the budget the run spent and runs of different lengths stay comparable. A
  one-round run (e.g. `full`) has no area: its AULC is its single value, flagged `single_round`.
- Matched budgets: each run's learning curve is interpolated linearly at common label and
  dollar budgets (and token budgets where rounds.csv has n_tokens), never extrapolated (a run
  that did not reach a budget has no value there).
  Conditions are tested against the reference within each budget, paired by seed, with the one
  primary test of `aggregate.primary_test`; Holm's correction runs over the comparisons of one
  budget × encoder (the `holm_family` column names it).
- Deterministic repeats: a condition × encoder whose seeds all made the same run is one result,
  not several: it keeps one run (n = 1, no sd) and stays out of paired tests. "The same run" is
  decided by what a run did, exactly: the same predicted test labels and the same training set
  (queried ids with their labels, per round), and the same learning curve; never by a tolerance
  on probabilities (a solver moves them by 1e-9 to 1e-6 when the same rows come in another order).
- Degenerate: a model that predicts one class for every test item (from the predictions; for
  intermediate rounds, from tp/fp/fn/tn: it never or always says the positive class).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.results.runs import QUERIED_PARQUET
from llmal.results.settings import mean_sd, ordered
from llmal.results.stats import holm, paired_comparison

KEYS = ["condition", "encoder", "seed"]
PRIMARY_TESTS = {"wilcoxon": "p_wilcoxon", "ttest": "p_ttest"}
MAX_AUTO_BUDGETS = 8


@dataclass(frozen=True)
class ComparisonSettings:
    """The comparison keys of the `aggregate` config section, with defaults."""

    reference: str
    metric: str = "f1_macro"
    primary_test: str = "wilcoxon"
    label_budgets: tuple[float, ...] = ()
    cost_budgets: tuple[float, ...] = ()
    token_budgets: tuple[float, ...] = ()
    log_x: bool = False
    bootstrap: int = 0
    condition_order: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], reference: str) -> "ComparisonSettings":
        agg = config.get("aggregate") or {}
        test = str(agg.get("primary_test", "wilcoxon"))
        if test not in PRIMARY_TESTS:
            raise ValueError(f"config key aggregate.primary_test: {test!r} is not one of "
                             f"{sorted(PRIMARY_TESTS)}")
        return cls(reference=reference, metric=str(agg.get("metric", "f1_macro")),
                   primary_test=test,
                   label_budgets=tuple(float(b) for b in agg.get("label_budgets") or ()),
                   cost_budgets=tuple(float(b) for b in agg.get("cost_budgets") or ()),
                   token_budgets=tuple(float(b) for b in agg.get("token_budgets") or ()),
                   log_x=bool(agg.get("log_x", False)), bootstrap=int(agg.get("bootstrap", 0)),
                   condition_order=tuple((config.get("conditions") or {}).keys()))


def cost_column(rounds: pd.DataFrame) -> str:
    """`cost_total` (AL plus one-off costs) where the runs report it, else `cost_usd`."""
    return "cost_total" if "cost_total" in rounds.columns else "cost_usd"


def has_tokens(frame: pd.DataFrame) -> bool:
    """The runs count tokens (task ner: rounds.csv's n_tokens): tokens are a budget axis too."""
    return "n_tokens" in frame.columns and bool(
        pd.to_numeric(frame["n_tokens"], errors="coerce").notna().any())


def budget_axes(rounds: pd.DataFrame) -> list[tuple[str, str]]:
    """(kind, rounds column) of every budget axis of the AULC: labels, dollars, and tokens
    where the runs count them."""
    return [("labels", "n_labels"), ("cost", cost_column(rounds))] + \
        ([("tokens", "n_tokens")] if has_tokens(rounds) else [])


# --------------------------------------------------------------------------------------------
# degenerate models and deterministic repeats


def degenerate_runs(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per run: the number of distinct predicted classes and whether it is one."""
    g = predictions.groupby(KEYS, sort=False)["pred"].nunique().rename("predicted_classes")
    out = g.reset_index()
    out["degenerate"] = out["predicted_classes"] <= 1
    return out


def degenerate_rounds(rounds: pd.DataFrame) -> pd.Series:
    """Per round row: the model never or always predicted the positive class (from tp/fp/fn/tn)."""
    if not {"tp", "fp", "fn", "tn"} <= set(rounds.columns):
        return pd.Series(False, index=rounds.index)
    said_pos = rounds["tp"] + rounds["fp"]
    said_neg = rounds["fn"] + rounds["tn"]
    return (said_pos == 0) | (said_neg == 0)


CURVE_COLUMNS = ("round", "n_labels", "cost_usd", "cost_total", "f1_macro", "accuracy")


def training_sets(finals: pd.DataFrame) -> dict[tuple[str, str, int], tuple | None]:
    """(condition, encoder, seed) -> the run's training set: its queried.parquet rows as sorted
    (round, id, label, status) tuples; None where the run directory has no queried.parquet."""
    out: dict[tuple[str, str, int], tuple | None] = {}
    for cond, enc, seed, run_dir in zip(finals["condition"], finals["encoder"], finals["seed"],
                                        finals.get("run_dir", pd.Series([None] * len(finals)))):
        path = Path(str(run_dir)) / QUERIED_PARQUET if run_dir else None
        if path is None or not path.is_file():
            out[(cond, enc, int(seed))] = None
            continue
        q = pd.read_parquet(path)
        cols = [c for c in ("round", "id", "label", "status") if c in q.columns]
        rows = q[cols].astype(object).where(q[cols].notna(), None)
        out[(cond, enc, int(seed))] = tuple(sorted(
            # one object per distinct string (sys.intern): the runs' sets are held together
            tuple(sys.intern("" if v is None else str(v)) for v in r)
            for r in rows.itertuples(index=False)))
    return out


def deterministic_groups(predictions: pd.DataFrame, rounds: pd.DataFrame | None = None,
                         training: Mapping[tuple[str, str, int], tuple | None] | None = None) -> pd.DataFrame:
    """Per condition × encoder: n_seeds, and `deterministic` when there are two or more seeds
    and every seed made the same run: identical predicted test labels (ids and classes), and,
    where given, identical training sets (`training`, from training_sets) and learning curves
    (`rounds`' CURVE_COLUMNS). Probabilities play no part: two runs that predict the same labels
    after training on the same labels are one result, however their probabilities differ."""
    rows = []
    for (cond, enc), g in predictions.groupby(["condition", "encoder"], sort=False):
        distinct: list[tuple] = []
        for seed, gs in g.groupby("seed", sort=True):
            gs = gs.sort_values("id", kind="stable")
            trained = (training or {}).get((cond, enc, int(seed)))
            curve = np.zeros(0)
            if rounds is not None:
                gr = rounds[(rounds["condition"] == cond) & (rounds["encoder"] == enc)
                            & (rounds["seed"] == seed)].sort_values("round")
                cols = [c for c in CURVE_COLUMNS if c in gr.columns]
                curve = np.nan_to_num(gr[cols].to_numpy(float), nan=-1).ravel()
            sig = (tuple(gs["id"]), tuple(gs["pred"]), trained, curve)
            if not any(_same_run(sig, other) for other in distinct):
                distinct.append(sig)
        n_seeds = int(g["seed"].nunique())
        rows.append({"condition": cond, "encoder": enc, "n_seeds": n_seeds,
                     "n_distinct": len(distinct),
                     "deterministic": n_seeds >= 2 and len(distinct) == 1})
    return pd.DataFrame(rows, columns=["condition", "encoder", "n_seeds", "n_distinct",
                                       "deterministic"])


def _same_run(a: tuple, b: tuple) -> bool:
    """Same ids and predicted classes, same training set (where both runs have one), and the
    same learning curve: its label counts, metrics and costs follow from labels and prices, so
    they agree to the last bits (1e-9 covers summing the same costs in another order)."""
    return (a[0] == b[0] and a[1] == b[1] and (a[2] is None or b[2] is None or a[2] == b[2])
            and a[3].shape == b[3].shape and np.allclose(a[3], b[3], rtol=1e-9, atol=1e-9))


def collapse_deterministic(df: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """Keep only the lowest seed of every deterministic condition × encoder (rounds, finals,
    predictions or any frame with KEYS columns)."""
    det = groups[groups["deterministic"]]
    if det.empty:
        return df
    keep = pd.Series(True, index=df.index)
    for cond, enc in zip(det["condition"], det["encoder"]):
        mask = (df["condition"] == cond) & (df["encoder"] == enc)
        if mask.any():
            keep &= ~mask | (df["seed"] == df.loc[mask, "seed"].min())
    return df[keep]


def deterministic_set(groups: pd.DataFrame) -> set[tuple[str, str]]:
    return {(c, e) for c, e, d in zip(groups["condition"], groups["encoder"],
                                      groups["deterministic"]) if d}


# --------------------------------------------------------------------------------------------
# area under the learning curve


def aulc_table(rounds: pd.DataFrame, metric: str = "f1_macro",
               groups: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run: label and dollar (and token) range, normalised AULC over each, final metric."""
    det = deterministic_set(groups) if groups is not None else set()
    rows = []
    for (cond, enc, seed), g in rounds.groupby(KEYS, sort=False):
        g = g.sort_values("round", kind="stable")
        y = pd.to_numeric(g[metric], errors="coerce").to_numpy(float)
        row: dict[str, Any] = {"condition": cond, "encoder": enc, "seed": int(seed),
                               "n_rounds": int(len(g)), "single_round": len(g) == 1,
                               "deterministic": (cond, enc) in det}
        for kind, col in budget_axes(rounds):
            x = pd.to_numeric(g[col], errors="coerce").to_numpy(float)
            row[f"{kind}_min"], row[f"{kind}_max"] = float(np.nanmin(x)), float(np.nanmax(x))
            row[f"aulc_{kind}"] = normalised_area(x, y)
        row[f"final_{metric}"] = float(y[-1])
        row["degenerate_share"] = float(degenerate_rounds(g).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def normalised_area(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoid area under y(x) divided by the x range; with no range (one round, or no
    spending) the mean of y at the last x."""
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size == 0:
        return float("nan")
    x, y = _last_per_x(x, y)
    span = x[-1] - x[0]
    if span <= 0:
        return float(y[-1])
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / span)


def aulc_summary(aulc: pd.DataFrame, condition_order: Sequence[str] = ()) -> pd.DataFrame:
    """Per condition × encoder: runs counted (deterministic repeats once) and mean/sd of the
    normalised AULCs."""
    rows = []
    for (cond, enc), g in _ordered_groups(aulc, condition_order):
        if g["deterministic"].any():
            g = g[g["seed"] == g["seed"].min()]
        row: dict[str, Any] = {"condition": cond, "encoder": enc, "n": int(len(g)),
                               "deterministic": bool(g["deterministic"].any()),
                               "single_round": bool(g["single_round"].all())}
        for col in [c for c in ("aulc_labels", "aulc_cost", "aulc_tokens") if c in g.columns]:
            row[f"{col}_mean"], row[f"{col}_sd"] = mean_sd(g[col])
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# matched budgets


def auto_budgets(rounds: pd.DataFrame, column: str) -> list[float]:
    """Budgets where runs end: the median final `column` of every condition × encoder
    (positive ones), at most MAX_AUTO_BUDGETS of them (evenly spread over the sorted list)."""
    finals = rounds.sort_values("round").groupby(KEYS, sort=False)[column].last()
    ends = finals.groupby(level=["condition", "encoder"]).median()
    values = sorted({_round_budget(float(v)) for v in ends if v > 0 and not math.isnan(v)})
    if len(values) > MAX_AUTO_BUDGETS:
        picks = np.linspace(0, len(values) - 1, MAX_AUTO_BUDGETS).round().astype(int)
        values = [values[i] for i in sorted(set(picks))]
    return values


def value_at_budget(x: np.ndarray, y: np.ndarray, budget: float) -> float:
    """Linear interpolation of y at x = budget; NaN outside the run's range (no extrapolation).
    Where several rounds share an x (nothing spent in between), the last round counts."""
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size == 0 or budget < x.min() - 1e-9 or budget > x.max() + 1e-9:
        return float("nan")
    x, y = _last_per_x(x, y)
    return float(np.interp(budget, x, y))


def matched_budget_table(rounds: pd.DataFrame, settings: ComparisonSettings,
                         groups: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every condition at every common budget (labels, dollars, and tokens where the runs count
    them), with its test against the reference inside the budget's Holm family."""
    det = deterministic_set(groups) if groups is not None else set()
    if groups is not None:
        rounds = collapse_deterministic(rounds, groups)
    rounds = rounds.assign(_degenerate=degenerate_rounds(rounds))
    metric, ref = settings.metric, settings.reference
    p_col = PRIMARY_TESTS[settings.primary_test]
    out: list[dict[str, Any]] = []
    explicit = {"labels": settings.label_budgets, "cost": settings.cost_budgets,
                "tokens": settings.token_budgets}
    for axis, col in budget_axes(rounds):
        kind = "usd" if axis == "cost" else axis     # the budget_kind of matched_budget.csv
        budgets = list(explicit[axis]) or auto_budgets(rounds, col)
        per_run = _values_at_budgets(rounds, col, metric, budgets)
        for enc in ordered(per_run["encoder"].unique(), ()):
            for budget in budgets:
                cell = per_run[(per_run["encoder"] == enc) & (per_run["budget"] == budget)]
                cell = cell.dropna(subset=["value"])
                if cell.empty:
                    continue
                family = f"{kind} = {budget_text(kind, budget)} · {enc}"
                rows = _budget_rows(cell, kind, budget, enc, family, ref, det, metric, p_col,
                                    settings.condition_order)
                adjusted = holm([r["p"] for r in rows])
                tested = sum(not math.isnan(r["p"]) for r in rows)
                for r, a in zip(rows, adjusted):
                    r["p_holm"], r["family_size"] = float(a), tested
                out.extend(rows)
    columns = ["budget_kind", "budget", "encoder", "condition", "n_runs", "deterministic",
               "degenerate", f"{metric}_mean", f"{metric}_sd", "reference", "n_pairs",
               "mean_diff", "ci_low", "ci_high", "primary_test", "p", "holm_family",
               "family_size", "p_holm", "note"]
    return pd.DataFrame(out, columns=columns)


def _values_at_budgets(rounds: pd.DataFrame, col: str, metric: str,
                       budgets: Sequence[float]) -> pd.DataFrame:
    rows = []
    for (cond, enc, seed), g in rounds.groupby(KEYS, sort=False):
        g = g.sort_values("round", kind="stable")
        x = pd.to_numeric(g[col], errors="coerce").to_numpy(float)
        y = pd.to_numeric(g[metric], errors="coerce").to_numpy(float)
        bad = g["_degenerate"].to_numpy(bool)
        for b in budgets:
            v = value_at_budget(x, y, b)
            # the rounds bracketing the budget: degenerate if either is
            lo = np.flatnonzero(x <= b + 1e-9)
            hi = np.flatnonzero(x >= b - 1e-9)
            around = ([lo[-1]] if lo.size else []) + ([hi[0]] if hi.size else [])
            rows.append({"condition": cond, "encoder": enc, "seed": int(seed), "budget": b,
                         "value": v, "degenerate": bool(bad[around].any()) if around else False})
    return pd.DataFrame(rows, columns=["condition", "encoder", "seed", "budget", "value",
                                       "degenerate"])


def _budget_rows(cell: pd.DataFrame, kind: str, budget: float, enc: str, family: str, ref: str,
                 det: set[tuple[str, str]], metric: str, p_col: str,
                 order: Sequence[str]) -> list[dict[str, Any]]:
    ref_vals = cell[cell["condition"] == ref].set_index("seed")["value"]
    ref_det = (ref, enc) in det
    rows = []
    for cond in ordered(cell["condition"].unique(), order):
        g = cell[cell["condition"] == cond]
        mean, sd = mean_sd(g["value"])
        row: dict[str, Any] = {
            "budget_kind": kind, "budget": budget, "encoder": enc, "condition": cond,
            "n_runs": int(len(g)), "deterministic": (cond, enc) in det,
            "degenerate": bool(g["degenerate"].any()), f"{metric}_mean": mean,
            f"{metric}_sd": sd, "reference": ref, "n_pairs": 0, "mean_diff": float("nan"),
            "ci_low": float("nan"), "ci_high": float("nan"), "primary_test": p_col[2:],
            "p": float("nan"), "holm_family": family, "note": ""}
        if cond == ref:
            row["note"] = "reference"
        elif ref_vals.empty:
            row["note"] = f"reference {ref!r} did not reach this budget: no test"
        elif row["deterministic"] or ref_det:
            row["note"] = "deterministic repeats count once: no paired test"
        else:
            vals = g.set_index("seed")["value"]
            common = sorted(set(vals.index) & set(ref_vals.index))
            res = paired_comparison(vals.loc[common].to_numpy(), ref_vals.loc[common].to_numpy())
            row.update(n_pairs=res.n_pairs, mean_diff=res.mean_diff, ci_low=res.ci_low,
                       ci_high=res.ci_high, p=float(getattr(res, p_col)),
                       note="; ".join(res.notes))
        rows.append(row)
    return rows


def matched_budget_best(table: pd.DataFrame, metric: str) -> set[int]:
    """Row positions with the best mean in their Holm family, degenerate rows excluded; none
    where fewer than two rows compete or all tie."""
    best: set[int] = set()
    col = f"{metric}_mean"
    for _, g in table.groupby("holm_family", sort=False):
        g = g[~g["degenerate"].astype(bool)]
        vals = g[col].astype(float)
        if len(g) < 2 or vals.isna().all() or vals.max() == vals.min():
            continue
        best |= {table.index.get_loc(i) for i, v in zip(g.index, vals)
                 if math.isclose(v, vals.max(), rel_tol=1e-9, abs_tol=1e-12)}
    return best


# --------------------------------------------------------------------------------------------
# bootstrap over test items


def bootstrap_f1_ci(predictions: pd.DataFrame, n_boot: int, *, seed: int = 0,
                    confidence: float = 0.95) -> pd.DataFrame:
    """Per condition × encoder: a percentile bootstrap CI of the mean-over-seeds macro F1,
    resampling test items (the same resample for every seed, so seeds stay paired)."""
    from sklearn.metrics import f1_score

    rows = []
    rng = np.random.default_rng(seed)
    for (cond, enc), g in predictions.groupby(["condition", "encoder"], sort=False):
        seeds = sorted(g["seed"].unique())
        frames = [g[g["seed"] == s].sort_values("id", kind="stable") for s in seeds]
        n = len(frames[0])
        if n == 0 or any(len(f) != n for f in frames):
            continue
        labels = sorted(set(g["gold"]) | set(g["pred"]))
        golds = [f["gold"].to_numpy() for f in frames]
        preds = [f["pred"].to_numpy() for f in frames]
        stats = np.empty(n_boot)
        for b in range(n_boot):
            idx = rng.integers(n, size=n)
            stats[b] = np.mean([f1_score(gd[idx], pr[idx], labels=labels, average="macro",
                                         zero_division=0) for gd, pr in zip(golds, preds)])
        alpha = (1 - confidence) / 2
        rows.append({"condition": cond, "encoder": enc,
                     "f1_macro_boot_low": float(np.quantile(stats, alpha)),
                     "f1_macro_boot_high": float(np.quantile(stats, 1 - alpha))})
    return pd.DataFrame(rows, columns=["condition", "encoder", "f1_macro_boot_low",
                                       "f1_macro_boot_high"])


# --------------------------------------------------------------------------------------------
# helpers


def _last_per_x(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    last = np.r_[x[1:] != x[:-1], True]
    return x[last], y[last]


def _round_budget(v: float) -> float:
    if v >= 1 and float(v).is_integer():
        return v
    return float(f"{v:.4g}")


def budget_text(kind: str, budget: float) -> str:
    """A budget as the tables name it: 200 (labels, tokens) or $1.5 (dollars)."""
    if kind in ("labels", "tokens"):
        return f"{budget:g}"
    return f"${budget:,.4g}"


def _ordered_groups(df: pd.DataFrame, order: Sequence[str]):
    for enc in ordered(df["encoder"].unique(), ()):
        de = df[df["encoder"] == enc]
        for cond in ordered(de["condition"].unique(), order):
            yield (cond, enc), de[de["condition"] == cond]
