"""Seeds and power (llmal.results.power, llmal.config.seeds): the minimum detectable difference and
the seeds needed against statsmodels and the noncentral t by hand, the exact Wilcoxon floor
against scipy, and the `llmal check` warning for too few seeds."""
from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.integrate import quad
from statsmodels.stats.power import TTestPower
from test_check import _demo

from llmal.config.check import check_config
from llmal.config.seeds import holm_family_size, seed_warnings
from llmal.report.power import power_markdown
from llmal.results.min_seeds import min_seeds, wilcoxon_min_seeds
from llmal.results.power import power_by_integral, power_table


def _sig(rows):
    return pd.DataFrame([{"encoder": e, "condition": c, "reference": "ref", "metric": "f1_macro",
                          "n_pairs": n, "mean_diff": 0.01, "sd_diff": sd} for e, c, n, sd in rows])


def _power_by_hand(effect: float, n: int, alpha: float) -> float:
    """Two-sided power of the one-sample t-test by hand: T = (Z + ncp) / sqrt(V / df) with
    ncp = effect * sqrt(n), V ~ chi2(df = n - 1); P(|T| > t_crit), integrated over V (scipy's
    noncentral t itself returns NaN at scattered points)."""
    df, ncp = n - 1, effect * math.sqrt(n)
    crit = sps.t.ppf(1 - alpha / 2, df)

    def tails(v):
        s = crit * math.sqrt(v / df)
        return sps.chi2.pdf(v, df) * (sps.norm.sf(s - ncp) + sps.norm.cdf(-s - ncp))
    return float(quad(tails, 0, np.inf, limit=200, epsabs=1e-12, epsrel=1e-10)[0])


def test_power_table_against_statsmodels_and_the_noncentral_t():
    sig = _sig([("tfidf", "a", 3, 0.02), ("tfidf", "b", 10, 0.005), ("minilm", "a", 5, 0.03)])
    table = power_table(sig, delta=0.01).set_index(["encoder", "condition"])
    solver = TTestPower()
    for (enc, cond), n, sd, m in ((("tfidf", "a"), 3, 0.02, 2), (("tfidf", "b"), 10, 0.005, 2),
                                  (("minilm", "a"), 5, 0.03, 1)):
        row = table.loc[(enc, cond)]
        assert row["family_size"] == m
        d = solver.solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8, alternative="two-sided")
        if n != 3:   # statsmodels' solve_power stops short at 3 seeds (power 0.786 for 0.8 at 0.025)
            assert row["mdd"] == pytest.approx(d * sd, rel=1e-6)
        assert _power_by_hand(row["mdd"] / sd, n, 0.05) == pytest.approx(0.8, abs=1e-6)
        assert _power_by_hand(row["mdd_holm"] / sd, n, 0.05 / m) == pytest.approx(0.8, abs=1e-6)
        k = int(row["seeds_needed"])
        assert k == max(2, math.ceil(solver.solve_power(effect_size=0.01 / sd, nobs=None, alpha=0.05, power=0.8)))
        assert solver.power(effect_size=0.01 / sd, nobs=k, alpha=0.05) >= 0.8
        assert _power_by_hand(0.01 / sd, k, 0.05) >= 0.8
        if k > 2:
            assert _power_by_hand(0.01 / sd, k - 1, 0.05) < 0.8
        assert row["seeds_needed_holm"] >= k
    # numbers a reader can check: 3 seeds, sd 0.02 -> MDD 0.0653 (d = 3.264); a difference of
    # 0.01 with sd 0.005 (d = 2) needs 5 seeds
    assert table.loc[("tfidf", "a"), "mdd"] == pytest.approx(0.06528, abs=1e-4)
    assert table.loc[("tfidf", "b"), "seeds_needed"] == 5


def test_power_where_scipys_noncentral_t_fails():
    """scipy's nct gives NaN for d = 8.125, n = 3, alpha = 0.05 / 6 (the default grid's minilm
    family): the power comes from the integral, and matches statsmodels on either side."""
    solver = TTestPower()
    assert math.isnan(solver.power(effect_size=8.125, nobs=3, alpha=0.05 / 6))
    for d in (4.0, 5.0, 8.0):
        sm = solver.power(effect_size=d, nobs=3, alpha=0.05 / 6)
        if not math.isnan(sm):
            assert power_by_integral(d, 3, 0.05 / 6) == pytest.approx(sm, abs=1e-8)
    table = power_table(_sig([("e", c, 3, 0.01) for c in "abcdef"]))
    assert table["mdd_holm"].notna().all()
    assert _power_by_hand(table["mdd_holm"].iloc[0] / 0.01, 3, 0.05 / 6) == pytest.approx(0.8, abs=1e-6)


def test_power_table_without_seed_variance_says_why():
    table = power_table(_sig([("e", "one", 1, float("nan")), ("e", "same", 3, 0.0)]))
    assert table["mdd"].isna().all() and table["seeds_needed"].isna().all()
    assert table["note"].tolist() == ["1 paired seed(s): no seed variance (one seed run, or every "
                                      "seed made the same run, which counts once)",
                                      "identical difference on every seed: no seed variance to size"]
    text = power_markdown(power_table(_sig([("e", "a", 3, 0.02)])))
    assert "TTestPower" in text and "| e | a | ref | 3 |" in text


@pytest.mark.parametrize("m", [1, 2, 3, 7, 8, 20])
def test_wilcoxon_floor_against_scipy_exact(m):
    n = wilcoxon_min_seeds(0.05, m)
    # all differences positive and distinct: the smallest exact two-sided p with n pairs
    best = lambda k: sps.wilcoxon(np.arange(1, k + 1, dtype=float), method="exact").pvalue  # noqa: E731
    assert best(n) * m < 0.05 <= best(n - 1) * m
    assert min_seeds("wilcoxon", 0.05, m) == n and min_seeds("ttest", 0.05, m) == 2
    assert {1: 6, 3: 7, 7: 9, 8: 9}.get(m, n) == n


def test_check_warns_when_seeds_cannot_reach_significance(tmp_path):
    cfg = _demo(tmp_path)
    cfg["conditions"]["human_random"] = {"annotator": "crowd", "sampler": "random"}
    assert holm_family_size(copy.deepcopy(cfg) | {"encoders": cfg["encoders"]}) == 2

    def warnings(c):
        return [str(p) for p in check_config(copy.deepcopy(c), "c.yaml", data=False) if p.level == "warning"]

    cfg["seeds"] = [0, 1, 2]
    got = [w for w in warnings(cfg) if "seeds:" in w]
    assert len(got) == 1 and ("seeds: 3 seed(s), but aggregate.primary_test wilcoxon with Holm over 2 "
                              "comparison(s) per encoder needs at least 7") in got[0], got
    cfg["seeds"] = list(range(7))
    assert not [w for w in warnings(cfg) if "seeds:" in w]
    cfg["seeds"] = [0]
    cfg["aggregate"] = {"primary_test": "ttest"}
    got = [w for w in warnings(cfg) if "seeds:" in w]
    assert len(got) == 1 and "needs at least 2" in got[0]
    cfg["seeds"] = [0, 1]
    assert not [w for w in warnings(cfg) if "seeds:" in w]


def test_family_size_counts_the_reference_encoders_only():
    cfg = {"encoders": {"tfidf": {"kind": "tfidf"}, "minilm": {"kind": "sentence_transformer"}},
           "recipes": {"linear": {"kind": "logistic"}},
           "conditions": {"ref": {"annotator": "a", "sampler": "random"},
                          "x": {"annotator": "a", "sampler": "entropy"},
                          "y": {"annotator": "a", "sampler": "entropy", "encoders": ["minilm"]},
                          "z": {"annotator": "a", "sampler": "entropy", "encoders": ["minilm"]}},
           "seeds": [0, 1, 2]}
    assert holm_family_size(cfg) == 3          # minilm: x, y, z
    cfg["aggregate"] = {"reference": "y"}
    assert holm_family_size(cfg) == 3          # minilm only: ref, x, z
    assert seed_warnings({**cfg, "conditions": {"ref": cfg["conditions"]["ref"]}}) == []
