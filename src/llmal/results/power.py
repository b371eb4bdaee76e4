"""Seeds and power as data: how small a difference the seeds can detect, and how many seeds a
difference needs.

Per comparison of the significance table (a condition against the reference, per encoder,
paired by seed on the final-round metric), the paired differences' standard deviation over seeds
(`sd_diff`) is the seed variance. With statsmodels' power class for the one-sample / paired
t-test (`statsmodels.stats.power.TTestPower().power`, two-sided):
- mdd: the minimum detectable difference at `alpha` and `power` with the seeds used: the effect
  size d whose power with n pairs is `power` (bisection on TTestPower's power: its own
  solve_power stops short with 3 seeds at small alpha, e.g. power 0.786 for 0.8; where scipy's
  noncentral t under it gives NaN, the same power is integrated from the t-test's definition),
  times sd_diff;
- seeds_needed: the fewest seeds (at least 2) whose power for a difference `delta`, effect size
  delta / sd_diff, reaches `power`;
- the same at alpha / m (`*_holm`): Holm's first step over the m comparisons of the encoder's
  family, the level the smallest p-value must pass.
The Wilcoxon signed-rank test (aggregate.primary_test wilcoxon) has no such closed form; the
t-test numbers stand in for it (its asymptotic efficiency against the t-test is 0.955 for normal
differences), and `wilcoxon_min_seeds` says below how many seeds its exact p cannot pass the
Holm level at all.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.integrate import quad
from statsmodels.stats.power import TTestPower

from llmal.results.aggregate import fair_comparisons, significance_table
from llmal.results.min_seeds import wilcoxon_min_seeds
from llmal.results.runs import collect_runs
from llmal.results.settings import AggregateSettings

ALPHA = 0.05
POWER = 0.8
DELTA = 0.01
POWER_COLUMNS = ["encoder", "condition", "reference", "metric", "n_pairs", "mean_diff", "sd_diff",
                 "alpha", "power", "family_size", "mdd", "mdd_holm", "delta", "seeds_needed",
                 "seeds_needed_holm", "wilcoxon_min_seeds", "note"]


def power_table(significance: pd.DataFrame, *, alpha: float = ALPHA, power: float = POWER,
                delta: float = DELTA) -> pd.DataFrame:
    """One row per comparison of `significance` (llmal.results.aggregate.significance_table)."""
    solver = TTestPower()
    rows: list[dict[str, Any]] = []
    for enc, fam in significance.groupby("encoder", sort=False):
        m = int(fam["n_pairs"].ge(2).sum()) or 1
        for r in fam.itertuples(index=False):
            n, sd = int(r.n_pairs), float(r.sd_diff)
            row = {"encoder": enc, "condition": r.condition, "reference": r.reference,
                   "metric": r.metric, "n_pairs": n, "mean_diff": float(r.mean_diff), "sd_diff": sd,
                   "alpha": alpha, "power": power, "family_size": m, "delta": delta,
                   "wilcoxon_min_seeds": wilcoxon_min_seeds(alpha, m), "mdd": np.nan,
                   "mdd_holm": np.nan, "seeds_needed": np.nan, "seeds_needed_holm": np.nan, "note": ""}
            if n < 2 or not math.isfinite(sd):
                row["note"] = (f"{n} paired seed(s): no seed variance (one seed run, or every seed "
                               "made the same run, which counts once)")
            elif sd == 0:
                row["note"] = "identical difference on every seed: no seed variance to size"
            else:
                for suffix, level in (("", alpha), ("_holm", alpha / m)):
                    row[f"mdd{suffix}"] = sd * detectable_effect(solver, n, level, power)
                    row[f"seeds_needed{suffix}"] = seeds_for(solver, delta / sd, level, power)
            rows.append(row)
    return pd.DataFrame(rows, columns=POWER_COLUMNS)


MAX_SEEDS = 100_000


def _power(solver: TTestPower, effect: float, n: int, alpha: float) -> float:
    """TTestPower's two-sided power. Where scipy's noncentral t gives NaN (scattered points and
    whole stretches with few pairs, e.g. d = 8.1, n = 3, alpha = 0.0083), the same power is
    integrated directly (power_by_integral)."""
    value = float(solver.power(effect_size=effect, nobs=n, alpha=alpha, alternative="two-sided"))
    return value if not math.isnan(value) else power_by_integral(effect, n, alpha)


def power_by_integral(effect: float, n: int, alpha: float) -> float:
    """The two-sided one-sample t-test's power from its definition: T = (Z + d sqrt(n)) /
    sqrt(V / (n-1)), V ~ chi2(n-1); P(|T| > t_crit) integrated over V."""
    df, ncp = n - 1, effect * math.sqrt(n)
    crit = float(sps.t.ppf(1 - alpha / 2, df))

    def tails(v: float) -> float:
        s = crit * math.sqrt(v / df)
        return float(sps.chi2.pdf(v, df) * (sps.norm.sf(s - ncp) + sps.norm.cdf(-s - ncp)))
    return float(quad(tails, 0, np.inf, limit=200, epsabs=1e-12, epsrel=1e-10)[0])


def detectable_effect(solver: TTestPower, n: int, alpha: float, power: float) -> float:
    """The standardised effect whose two-sided paired t-test power with n pairs is `power`
    (bisection: power grows with the effect)."""
    low, high = 0.0, 1.0
    while _power(solver, high, n, alpha) < power:
        low, high = high, high * 2
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (low, mid) if _power(solver, mid, n, alpha) >= power else (mid, high)
        if high - low <= 1e-12 * high:
            break
    return high


def seeds_for(solver: TTestPower, effect: float, alpha: float, power: float) -> float:
    """The fewest pairs (at least 2) whose two-sided paired t-test power for `effect` reaches
    `power`; NaN beyond MAX_SEEDS."""
    def enough(n: int) -> bool:
        return _power(solver, effect, n, alpha) >= power
    if enough(2):
        return 2
    low, high = 2, 4
    while not enough(high):
        low, high = high, high * 2
        if high > MAX_SEEDS:
            return float("nan")
    while high - low > 1:                       # power grows with n: bisect on whole seeds
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high


def power_of_runs(run_dirs: Any, config: Any, *, alpha: float = ALPHA, power: float = POWER,
                  delta: float = DELTA) -> pd.DataFrame:
    """power_table of the significance table that aggregate builds from these run directories
    (the same comparisons, deterministic repeats counted once)."""
    rounds, finals, preds = collect_runs(run_dirs)
    settings = AggregateSettings.from_config(config, finals)
    fair = fair_comparisons(rounds, finals, preds, config, settings)
    return power_table(significance_table(fair.finals, settings), alpha=alpha, power=power, delta=delta)
