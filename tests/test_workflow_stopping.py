"""A real Snakemake run with stopping criteria (al.stop) in record mode, one condition in stop mode,
and `llmal power` on its finished runs, checked by hand against rounds.csv and statsmodels."""
import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import snakemake, tiny_config, write_config
from statsmodels.stats.power import TTestPower

from llmal import cli

SEEDS = [0, 1, 2]
STOP = {"mode": "record", "stop_set": 100,
        "criteria": {"stabilizing_predictions": {"window": 2, "kappa": 0.9}, "dev_f1_plateau": {"window": 2}}}
OWN_STOP = {"mode": "stop", "criteria": {"stabilizing_predictions": {"window": 2, "kappa": 0.8}}}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    work = tmp_path_factory.mktemp("stopdag")
    config = tiny_config(seeds=SEEDS, al={"initial": 30, "batch": 20, "rounds": 6, "stop": STOP})
    config["conditions"] = {
        "human_random": {"annotator": "crowd", "sampler": "random"},
        "human_al": {"annotator": "crowd", "sampler": "entropy"},
        "noisy_al": {"annotator": "noisy", "sampler": "entropy", "al": {"stop": OWN_STOP}},
        "noisy_full": {"annotator": "noisy", "sampler": "full"},
    }
    write_config(work, config)
    snakemake(work)
    return work


def _runs(work, cond):
    base = work / "results" / "tiny" / "runs" / cond / "tfidf"
    return {s: (pd.read_csv(base / f"seed{s}" / "rounds.csv"),
                json.loads((base / f"seed{s}" / "run.json").read_text())) for s in SEEDS}


def test_record_mode_runs_to_the_budget_and_records_each_criterion(finished):
    for cond in ("human_random", "human_al"):
        for seed, (rounds, run) in _runs(finished, cond).items():
            assert rounds["round"].tolist() == list(range(7)) and run["stop_reason"] == "completed"
            assert run["stopping"]["mode"] == "record" and run["stopping"]["stop_set"] == 100
            for name in STOP["criteria"]:
                fired = rounds["round"][rounds[f"stop_{name}"].astype(bool)]
                assert run["stopping"]["first_fired"][name] == (int(fired.iloc[0]) if len(fired) else None)
    rounds, run = _runs(finished, "noisy_full")[0]
    assert "stopping" not in run and not [c for c in rounds.columns if c.startswith("stop_")]


def test_stop_mode_condition_ends_where_its_criterion_fired(finished):
    ended = 0
    for seed, (rounds, run) in _runs(finished, "noisy_al").items():
        first = run["stopping"]["first_fired"]["stabilizing_predictions"]
        assert run["stopping"]["mode"] == "stop" and "dev_f1_plateau" not in run["stopping"]["first_fired"]
        if first is not None:
            ended += 1
            assert run["stop_reason"] == "stop_criterion" and rounds["round"].iloc[-1] == first
    assert ended == 3   # kappa 0.8 over two pairs: reached by round 4 on every seed of this grid


def test_stop_table_matches_the_rounds_by_hand(finished):
    table = pd.read_csv(finished / "results" / "tiny" / "tables" / "stopping.csv")
    keys = list(zip(table["condition"], table["criterion"]))
    assert keys == [("human_random", "stabilizing_predictions"), ("human_al", "stabilizing_predictions"),
                    ("noisy_al", "stabilizing_predictions"), ("human_random", "dev_f1_plateau"),
                    ("human_al", "dev_f1_plateau")]
    for row in table.itertuples():
        at, full, fired = [], [], 0
        for seed, (rounds, run) in _runs(finished, row.condition).items():
            said = rounds[f"stop_{row.criterion}"].astype(bool)
            stop_row = rounds[said].iloc[0] if said.any() else rounds.iloc[-1]
            fired += bool(said.any())
            at.append(stop_row)
            full.append(rounds.iloc[-1])
        assert row.n_fired == fired and row.n_seeds == 3 and row.mode == ("stop" if row.condition == "noisy_al" else "record")
        assert row.n_labels_stop_mean == pytest.approx(np.mean([r["n_labels"] for r in at]))
        assert row.cost_stop_mean == pytest.approx(np.mean([r["cost_total"] for r in at]))
        assert row.metric_stop_mean == pytest.approx(np.mean([r["f1_macro"] for r in at]))
        if row.condition == "noisy_al" and fired == 3:
            assert math.isnan(row.metric_full_mean) and "ended at the stop" in row.note
        elif row.condition != "noisy_al":
            assert row.metric_full_mean == pytest.approx(np.mean([r["f1_macro"] for r in full]))
            assert row.labels_saved_share == pytest.approx(
                np.mean([1 - a["n_labels"] / f["n_labels"] for a, f in zip(at, full)]))
            assert row.metric_diff_mean == pytest.approx(
                np.mean([a["f1_macro"] - f["f1_macro"] for a, f in zip(at, full)]))
    md = (finished / "results" / "tiny" / "tables" / "stopping.md").read_text()
    assert "Labels at stop" in md and "human_al" in md
    html = (finished / "results" / "tiny" / "report.html").read_text()
    assert "When to stop" in html and "Seeds and power" in html and "TTestPower" in html


def test_llmal_power_on_the_finished_runs_matches_statsmodels_by_hand(finished, capsys, monkeypatch):
    monkeypatch.chdir(finished)
    assert cli.main(["power", "--configfile", "config.yaml", "--delta", "0.02", "--csv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("12 of 12 runs finished")
    table = pd.read_csv(io.StringIO(out.split("\n", 1)[1])).set_index("condition")
    ref = {s: r.iloc[-1]["f1_macro"] for s, (r, _) in _runs(finished, "human_random").items()}
    # noisy_full buys the whole pool on every seed: the same run, counted once (no pairs), so
    # Holm's family on tfidf is human_al and noisy_al against human_random
    assert table.loc["noisy_full", "n_pairs"] == 1 and np.isnan(table.loc["noisy_full", "mdd"])
    m = 2
    for cond in ("human_al", "noisy_al"):
        d = np.array([r.iloc[-1]["f1_macro"] - ref[s] for s, (r, _) in _runs(finished, cond).items()])
        sd = float(np.std(d, ddof=1))
        row = table.loc[cond]
        assert row["n_pairs"] == 3 and row["sd_diff"] == pytest.approx(sd, rel=1e-9)
        assert row["family_size"] == m and row["wilcoxon_min_seeds"] == 7   # 2/2^7 < 0.05/2 < 2/2^6
        es = TTestPower().solve_power(effect_size=None, nobs=3, alpha=0.05, power=0.8)
        assert row["mdd"] == pytest.approx(es * sd, rel=1e-6)
        # at 0.05 / 2 statsmodels' solve_power stops short with 3 pairs: check the power instead
        es_holm = row["mdd_holm"] / sd
        assert TTestPower().power(effect_size=es_holm, nobs=3, alpha=0.05 / m) == pytest.approx(0.8, abs=1e-6)
        n = TTestPower().solve_power(effect_size=0.02 / sd, nobs=None, alpha=0.05, power=0.8)
        assert row["seeds_needed"] == max(2, math.ceil(n))
