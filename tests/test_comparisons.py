"""Fair comparisons on synthetic rounds/predictions tables (in-process, no files)."""
import math

import numpy as np
import pandas as pd
import pytest

from llmal.report.tables import matched_budget_markdown
from llmal.results import comparisons as cmp
from llmal.results.stats import holm


def curve(condition, seed, labels, f1, *, encoder="tfidf", cost_per_label=0.01, degenerate=()):
    rows = []
    for r, (n, f) in enumerate(zip(labels, f1)):
        bad = r in degenerate
        rows.append({"condition": condition, "encoder": encoder, "seed": seed, "round": r,
                     "n_labels": n, "cost_usd": n * cost_per_label, "f1_macro": f,
                     "tp": 0 if bad else 5, "fp": 0 if bad else 2, "fn": 10 if bad else 5,
                     "tn": 30 if bad else 28})
    return pd.DataFrame(rows)


def predictions(condition, seed, preds, encoder="tfidf"):
    n = len(preds)
    return pd.DataFrame({"condition": condition, "encoder": encoder, "seed": seed,
                         "id": [f"t{i}" for i in range(n)], "prob": np.where(preds, 0.8, 0.2),
                         "pred": preds, "gold": np.arange(n) % 2, "topic": ""})


def settings(**kw):
    return cmp.ComparisonSettings(reference=kw.pop("reference", "long"), **kw)


def test_a_50_label_run_and_a_360_label_run_are_never_compared_at_their_final_rounds():
    labels_long = [20, 50, 100, 200, 360]
    parts = []
    for seed in range(4):
        parts.append(curve("short", seed, [20, 35, 50], [0.50, 0.55, 0.60 + 0.01 * seed]))
        parts.append(curve("long", seed, labels_long, [0.50, 0.58 + 0.02 * seed, 0.65, 0.70, 0.80]))
    rounds = pd.concat(parts, ignore_index=True)
    table = cmp.matched_budget_table(rounds, settings())
    labels = table[table["budget_kind"] == "labels"]
    assert sorted(labels["budget"].unique()) == [50, 360]
    at50 = labels[labels["budget"] == 50].set_index("condition")
    # the long run is read off its curve at 50 labels (0.58 + 0.02 seed), not at its final 0.80
    assert at50.loc["long", "f1_macro_mean"] == pytest.approx(np.mean([0.58 + 0.02 * s for s in range(4)]))
    assert at50.loc["short", "f1_macro_mean"] == pytest.approx(np.mean([0.60 + 0.01 * s for s in range(4)]))
    assert at50.loc["short", "n_pairs"] == 4
    assert at50.loc["short", "mean_diff"] == pytest.approx(0.60 + 0.015 - 0.61)
    # at 360 labels the short run has no value (never extrapolated): no row, no test
    at360 = labels[labels["budget"] == 360]
    assert at360["condition"].tolist() == ["long"]
    assert np.isnan(at360["p"]).all() and (at360["family_size"] == 0).all()
    # an explicit budget beyond the short run's reach gives it no value either
    assert math.isnan(cmp.value_at_budget(np.array([20., 35, 50]), np.array([.5, .55, .6]), 60))
    assert cmp.value_at_budget(np.array([20., 35, 50]), np.array([.5, .55, .6]), 27.5) == pytest.approx(0.525)


def test_identical_full_repeats_count_once_and_stay_out_of_paired_tests():
    preds = np.array([1, 0, 1, 1, 0, 0])
    rounds = pd.concat([curve("full", s, [500], [0.75]) for s in range(3)]
                       + [curve("long", s, [20, 500], [0.5, 0.7 + 0.01 * s]) for s in range(3)],
                       ignore_index=True)
    pred_table = pd.concat([predictions("full", s, preds) for s in range(3)]
                           + [predictions("long", s, np.roll(preds, s)) for s in range(3)],
                           ignore_index=True)
    groups = cmp.deterministic_groups(pred_table, rounds)
    det = groups.set_index("condition")["deterministic"]
    assert det["full"] and not det["long"]
    collapsed = cmp.collapse_deterministic(rounds, groups)
    assert collapsed[collapsed["condition"] == "full"]["seed"].tolist() == [0]
    assert len(collapsed[collapsed["condition"] == "long"]) == 6
    table = cmp.matched_budget_table(rounds, settings(label_budgets=(500,)), groups)
    table = table[table["budget_kind"] == "labels"]
    row = table.set_index("condition").loc["full"]
    assert row["n_runs"] == 1 and math.isnan(row["f1_macro_sd"]) and row["deterministic"]
    assert math.isnan(row["p"]) and "count once" in row["note"]
    aulc = cmp.aulc_summary(cmp.aulc_table(rounds, groups=groups))
    assert aulc.set_index("condition").loc["full", "n"] == 1
    assert aulc.set_index("condition").loc["long", "n"] == 3
    # different predictions in one seed: not deterministic
    changed = pred_table.copy()
    changed.loc[(changed["condition"] == "full") & (changed["seed"] == 2) & (changed["id"] == "t0"), "pred"] = 0
    assert not cmp.deterministic_groups(changed, rounds).set_index("condition").loc["full", "deterministic"]
    # the same training set in another order moves a solver's probabilities: still one run
    noisy = pred_table.assign(prob=pred_table["prob"] + 1e-9 * pred_table["seed"])
    assert cmp.deterministic_groups(noisy, rounds).set_index("condition").loc["full", "deterministic"]


def test_aulc_is_normalised_by_the_runs_own_range():
    rounds = pd.concat([curve("a", 0, [20, 70, 120], [0.5, 0.6, 0.7]),
                        curve("b", 0, [40], [0.65])], ignore_index=True)
    a = cmp.aulc_table(rounds).set_index("condition")
    assert a.loc["a", "aulc_labels"] == pytest.approx(0.6)
    assert a.loc["a", "aulc_cost"] == pytest.approx(0.6)
    assert (a.loc["a", "labels_min"], a.loc["a", "labels_max"]) == (20, 120)
    assert a.loc["b", "aulc_labels"] == pytest.approx(0.65) and a.loc["b", "single_round"]
    rounds["cost_total"] = rounds["cost_usd"] + 1.0        # the ledger's total wins when present
    assert cmp.cost_column(rounds) == "cost_total"
    assert cmp.aulc_table(rounds).set_index("condition").loc["a", "cost_min"] == pytest.approx(1.2)


def test_holm_family_is_the_budget_and_the_primary_test_is_the_configured_one():
    rng = np.random.default_rng(0)
    parts = []
    for seed in range(6):
        parts.append(curve("long", seed, [20, 100], [0.5, 0.70 + 0.01 * rng.normal()]))
        for cond, shift in (("x", 0.05), ("y", 0.02), ("z", -0.01)):
            parts.append(curve(cond, seed, [20, 100], [0.5, 0.70 + shift + 0.01 * rng.normal()]))
    rounds = pd.concat(parts, ignore_index=True)
    for test, column in (("wilcoxon", "p_wilcoxon"), ("ttest", "p_ttest")):
        table = cmp.matched_budget_table(rounds, settings(primary_test=test, label_budgets=(100,),
                                                          cost_budgets=(1.0,)))
        table = table[table["budget_kind"] == "labels"]
        tested = table[table["condition"] != "long"]
        assert (tested["family_size"] == 3).all()
        assert set(tested["holm_family"]) == {"labels = 100 · tfidf"}
        np.testing.assert_allclose(tested["p_holm"], holm(tested["p"].to_numpy()))
        assert (tested["primary_test"] == test).all()
    md = matched_budget_markdown(table, settings(primary_test="ttest"))
    assert "p (ttest)" in md and "Holm family (size)" in md and "p (wilcoxon)" not in md
    with pytest.raises(ValueError, match="aggregate.primary_test"):
        cmp.ComparisonSettings.from_config({"aggregate": {"primary_test": "best"}}, "long")


def test_degenerate_rows_are_marked_and_never_best():
    rounds = pd.concat([curve("long", s, [20, 100], [0.5, 0.6]) for s in range(3)]
                       + [curve("lazy", s, [20, 100], [0.5, 0.9], degenerate=(1,)) for s in range(3)],
                       ignore_index=True)
    table = cmp.matched_budget_table(rounds, settings(label_budgets=(100,), cost_budgets=(1.0,)))
    table = table[table["budget_kind"] == "labels"]
    assert table.set_index("condition").loc["lazy", "degenerate"]
    assert not table.set_index("condition").loc["long", "degenerate"]
    best_rows = {table["condition"].iloc[i] for i in cmp.matched_budget_best(table, "f1_macro")}
    assert "lazy" not in best_rows
    preds = pd.concat([predictions("lazy", 0, np.zeros(6, int)), predictions("long", 0, np.r_[0, 1, 0, 1, 1, 0])])
    flags = cmp.degenerate_runs(preds).set_index("condition")["degenerate"]
    assert flags["lazy"] and not flags["long"]


def test_summary_never_bolds_a_degenerate_row():
    from llmal.results.aggregate import summary_best
    summary = pd.DataFrame({"condition": ["a", "b"], "encoder": ["e", "e"], "n_seeds": [3, 3],
                            "fp_mean": [0.0, 4.0], "fp_sd": [0.0, 1.0], "degenerate": [True, False]})
    from llmal.results.settings import Metric
    metrics = (Metric("fp", "FP", 1, "min"),)
    assert summary_best(summary, metrics) == set()          # the only other row is alone
    summary.loc[2] = ["c", "e", 3, 6.0, 1.0, False]
    assert summary_best(summary, metrics) == {(1, "fp")}


def test_bootstrap_ci_brackets_the_point_estimate():
    rng = np.random.default_rng(0)
    gold = np.arange(200) % 2
    pred = np.where(rng.random(200) < 0.8, gold, 1 - gold)
    p = predictions("a", 0, pred)
    p["gold"] = gold
    ci = cmp.bootstrap_f1_ci(p, 200, seed=1).iloc[0]
    from sklearn.metrics import f1_score
    point = f1_score(gold, pred, average="macro")
    assert ci["f1_macro_boot_low"] < point < ci["f1_macro_boot_high"]
    assert ci["f1_macro_boot_high"] - ci["f1_macro_boot_low"] < 0.25


def test_fpfn_figure_draws_a_degenerate_row_apart_without_squashing_the_others(tmp_path):
    from llmal.report.figures import condition_colors, fpfn_figure
    fpfn = pd.DataFrame({"condition": ["a", "b", "local_llm"], "encoder": "tfidf",
                         "n_seeds": 3, "fp_mean": [4.0, 6.0, 435.0], "fp_sd": [1.0, 1.0, 0.0],
                         "fn_mean": [5.0, 3.0, 0.0], "fn_sd": [1.0, 0.5, 0.0]})
    paths = fpfn_figure(fpfn, tmp_path / "fpfn", colors=condition_colors(["a", "b", "local_llm"]),
                        degenerate={("local_llm", "tfidf")})
    svg = next(p for p in paths if p.suffix == ".svg").read_text()
    assert "435↑" in svg and "local_llm (degenerate)" in svg
    plain = fpfn_figure(fpfn, tmp_path / "plain", colors=condition_colors(["a", "b", "local_llm"]))
    assert "435↑" not in next(p for p in plain if p.suffix == ".svg").read_text()


def test_aulc_figure_draws_two_conditions_of_one_annotator_and_strategy(tmp_path):
    from llmal.report.figures import aulc_figure

    aulc = pd.DataFrame({"condition": ["llm_al", "llm_al_robust", "llm_random"], "encoder": "tfidf",
                         "single_round": False, "aulc_labels_mean": [0.7, 0.72, 0.65],
                         "aulc_labels_sd": [0.01, 0.02, 0.01]})
    paths = aulc_figure(aulc, tmp_path / "aulc", annotator_of=dict.fromkeys(aulc["condition"], "llm"),
                        strategy_of={"llm_al": "entropy", "llm_al_robust": "entropy", "llm_random": "random"})
    svg = (tmp_path / "aulc.svg").read_text()
    assert len(paths) == 3 and "entropy (llm_al_robust)" in svg and "entropy (llm_al)" in svg


def test_a_deterministic_full_run_is_one_run_by_its_labels_and_training_set_not_a_tolerance(tmp_path):
    """Issue 17, item 15: one test probability 1.19e-6 apart across seeds (above the old 1e-6
    tolerance) made a deterministic `full` condition two seeds with sd 0 and two paired tests."""
    preds = np.array([1, 0, 1, 1, 0, 0])
    rounds = pd.concat([curve("full", s, [500], [0.75]) for s in range(2)], ignore_index=True)
    table = pd.concat([predictions("full", s, preds) for s in range(2)], ignore_index=True)
    table.loc[(table["seed"] == 1) & (table["id"] == "t3"), "prob"] += 1.19e-6
    assert cmp.deterministic_groups(table, rounds).set_index("condition").loc["full", "deterministic"]
    # the training sets, read from each run's queried.parquet: every pool item with its label
    finals = []
    for seed in range(2):
        run_dir = tmp_path / f"seed{seed}"
        run_dir.mkdir()
        pd.DataFrame({"id": ["p2", "p1", "p3"], "round": 0, "purpose": "initial",
                      "label": pd.array([1, 0, None], dtype="Int64"),
                      "status": ["ok", "ok", "failed"]}).to_parquet(run_dir / "queried.parquet")
        finals.append({"condition": "full", "encoder": "tfidf", "seed": seed, "run_dir": str(run_dir)})
    training = cmp.training_sets(pd.DataFrame(finals))
    assert training[("full", "tfidf", 0)] == training[("full", "tfidf", 1)] == (
        ("0", "p1", "0", "ok"), ("0", "p2", "1", "ok"), ("0", "p3", "", "failed"))
    groups = cmp.deterministic_groups(table, rounds, training).set_index("condition")
    assert groups.loc["full", "deterministic"] and groups.loc["full", "n_distinct"] == 1
    matched = cmp.matched_budget_table(rounds, settings(reference="full", label_budgets=(500,)),
                                       groups.reset_index())
    assert (matched.loc[matched["condition"] == "full", "n_runs"] == 1).all()
    # a probability far apart with the same labels: still the same run
    far = table.assign(prob=table["prob"] + 0.05 * table["seed"])
    assert cmp.deterministic_groups(far, rounds, training).set_index("condition").loc["full", "deterministic"]
    # the same predictions from another training set (one label bought differently): two runs
    other = dict(training)
    other[("full", "tfidf", 1)] = (("0", "p1", "1", "ok"),) + training[("full", "tfidf", 1)][1:]
    groups = cmp.deterministic_groups(table, rounds, other).set_index("condition")
    assert not groups.loc["full", "deterministic"] and groups.loc["full", "n_distinct"] == 2
    # a run directory without queried.parquet: decided by predictions and curve alone
    assert cmp.training_sets(pd.DataFrame([{**finals[0], "run_dir": str(tmp_path / "gone")}])) == \
        {("full", "tfidf", 0): None}
