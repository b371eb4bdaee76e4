"""Paired significance tests over seeds and the Holm correction.

A comparison pairs two conditions by seed (the same seed means the same split, initial sample and
model initialisation), so the tests run on per-seed differences `condition - reference`.
Degenerate cases (fewer than two pairs, all differences zero, constant differences) give
p = NaN and a note instead of a misleading number.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import stats as sps

# largest number of non-zero differences for which an exact Wilcoxon null distribution is used
EXACT_WILCOXON_MAX_N = 50
# with tied |differences|: largest number for an exhaustive (2**n sign flips) permutation test
EXACT_PERMUTATION_MAX_N = 13
# differences are compared (zero, tied, constant) after rounding to this many decimals
DIFF_DECIMALS = 10


@dataclass
class PairedComparison:
    """One condition against the reference on one metric, paired by seed."""

    n_pairs: int
    mean_reference: float
    mean_condition: float
    mean_diff: float
    sd_diff: float
    ci_low: float
    ci_high: float
    wilcoxon_stat: float
    p_wilcoxon: float
    wilcoxon_method: str          # "exact" | "exact permutation (ties)" | "normal approximation" | ""
    wilcoxon_min_p: float         # smallest two-sided p the exact test can reach with n pairs
    t_stat: float
    p_ttest: float
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["note"] = "; ".join(d.pop("notes"))
        return d


def paired_comparison(condition: Sequence[float], reference: Sequence[float],
                      confidence: float = 0.95) -> PairedComparison:
    """Wilcoxon signed-rank and paired t-test of `condition - reference`, with a t-based CI.

    Zero differences are dropped (Wilcoxon's convention). The Wilcoxon p-value is exact
    when it can be (see `_wilcoxon_method`); `wilcoxon_min_p` tells how small it could get with
    this many pairs, which matters with few seeds (3 seeds: 0.25 at best).
    """
    x = np.asarray(condition, dtype=float)
    y = np.asarray(reference, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in length: {x.shape} vs {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    notes: list[str] = []
    if not keep.all():
        notes.append(f"{int((~keep).sum())} pair(s) with a missing value dropped")
    x, y = x[keep], y[keep]
    # rounded so that float noise (0.85 - 0.80 vs 0.90 - 0.85) neither hides ties nor zeros
    d = np.round(x - y, DIFF_DECIMALS)
    n = int(d.size)
    nan = float("nan")
    res = PairedComparison(
        n_pairs=n, mean_reference=_mean(y), mean_condition=_mean(x), mean_diff=_mean(d),
        sd_diff=_sd(d), ci_low=nan, ci_high=nan,
        wilcoxon_stat=nan, p_wilcoxon=nan, wilcoxon_method="", wilcoxon_min_p=nan,
        t_stat=nan, p_ttest=nan, notes=notes)
    if n < 2:
        notes.append(f"{n} paired seed(s): tests need at least 2")
        return res

    half_width = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * res.sd_diff / math.sqrt(n)
    res.ci_low, res.ci_high = res.mean_diff - half_width, res.mean_diff + half_width

    nonzero = d[d != 0]
    if nonzero.size == 0:
        notes.append("identical values in every pair: no test")
        return res
    n_nz = int(nonzero.size)
    res.wilcoxon_method, method = _wilcoxon_method(nonzero)
    # zeros are dropped beforehand (Wilcoxon's convention), so every method sees the same data
    w = sps.wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided", method=method)
    res.wilcoxon_stat, res.p_wilcoxon = float(w.statistic), float(w.pvalue)
    res.wilcoxon_min_p = min(1.0, 2.0 / 2.0 ** n_nz)
    if n_nz < n:
        notes.append(f"{n - n_nz} zero difference(s) dropped by Wilcoxon")
    if res.wilcoxon_min_p > 0.05:
        notes.append(f"with {n_nz} non-zero pairs the exact Wilcoxon p cannot go below "
                     f"{res.wilcoxon_min_p:.3g}")

    if res.sd_diff == 0:
        notes.append("constant difference across seeds: t-test undefined")
    else:
        t = sps.ttest_rel(x, y)
        res.t_stat, res.p_ttest = float(t.statistic), float(t.pvalue)
    return res


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values; NaN stays NaN and does not count as a comparison."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out


def _sd(a: np.ndarray) -> float:
    """Sample sd; exactly 0 for constant values (np.std leaves float noise there)."""
    if a.size < 2:
        return float("nan")
    return 0.0 if np.ptp(a) == 0 else float(np.std(a, ddof=1))


def _mean(a: np.ndarray) -> float:
    return float(a.mean()) if a.size else float("nan")


def _wilcoxon_method(nonzero: np.ndarray) -> tuple[str, Any]:
    """(label, scipy method) for non-zero differences.

    Without ties: the exact null distribution (up to EXACT_WILCOXON_MAX_N pairs). With ties:
    an exhaustive permutation test (exact given the ties) up to EXACT_PERMUTATION_MAX_N pairs.
    Otherwise the normal approximation.
    """
    n = nonzero.size
    ties = np.unique(np.abs(nonzero)).size < n
    if not ties and n <= EXACT_WILCOXON_MAX_N:
        return "exact", "exact"
    if ties and n <= EXACT_PERMUTATION_MAX_N and hasattr(sps, "PermutationMethod"):
        return "exact permutation (ties)", sps.PermutationMethod(n_resamples=2 ** n)
    doc = inspect.getdoc(sps.wilcoxon) or ""  # scipy 1.15 renamed 'approx' to 'asymptotic'
    return "normal approximation", ("asymptotic" if "'asymptotic'" in doc else "approx")
