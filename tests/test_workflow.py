"""Real Snakemake runs of the whole DAG on a tiny offline grid."""
import io
import json
import re
import shutil

import pandas as pd
import pytest
from conftest import snakemake, tiny_config, write_config


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    work = tmp_path_factory.mktemp("dag")
    write_config(work, tiny_config())
    snakemake(work)
    return work


def test_dag_produces_every_contract_file(finished):
    res = finished / "results" / "tiny"
    assert len(pd.read_parquet(res / "data" / "items.parquet")) == 400
    split = pd.read_parquet(res / "data" / "split.parquet")
    assert set(split["split"]) == {"pool", "dev", "test"}
    for ann in ("crowd", "noisy"):
        table = pd.read_parquet(res / "annotations" / f"{ann}.parquet")
        assert not set(table["id"]) & set(split.loc[split["split"] == "test", "id"])
    assert (res / "embeddings" / "tfidf.npz").exists()
    for cond, n_rounds in (("human_al", 3), ("noisy_full", 1)):
        for seed in (0, 1):
            run_dir = res / "runs" / cond / "tfidf" / f"seed{seed}"
            rounds = pd.read_csv(run_dir / "rounds.csv")
            assert len(rounds) == n_rounds
            run = json.loads((run_dir / "run.json").read_text())
            assert run["condition"] == cond and run["seed"] == seed and run["device"] == "cpu"
            assert run["final"]["f1_macro"] == pytest.approx(rounds["f1_macro"].iloc[-1])
            preds = pd.read_parquet(run_dir / "predictions.parquet")
            assert len(preds) == (split["split"] == "test").sum()
    summary = pd.read_csv(res / "tables" / "summary.csv")
    assert len(summary) == 2
    for name in ("learning_curve.png", "fpfn.png", "errors_by_topic.svg"):
        assert (res / "figures" / name).stat().st_size > 1000
    assert "synthetic" in (res / "report.html").read_text().lower()


def test_every_cost_is_the_ledger_total(finished):
    """Ledger total = cost_total of the last round = the run.json cost = the summary's cost."""
    res = finished / "results" / "tiny"
    totals = {}
    for cond in ("human_al", "noisy_full"):
        for seed in (0, 1):
            run_dir = res / "runs" / cond / "tfidf" / f"seed{seed}"
            ledger = pd.read_parquet(run_dir / "ledger.parquet")
            rounds = pd.read_csv(run_dir / "rounds.csv")
            run = json.loads((run_dir / "run.json").read_text(), parse_constant=lambda c: pytest.fail(c))
            assert ledger["cost_usd"].sum() == pytest.approx(rounds["cost_total"].iloc[-1], rel=1e-12)
            assert run["costs"]["cost_total"] == pytest.approx(ledger["cost_usd"].sum(), rel=1e-12)
            dev = ledger[ledger["purpose"] == "dev"]
            assert len(dev) == run["data"]["n_dev"] > 0 and rounds["cost_dev"].iloc[-1] == pytest.approx(
                dev["cost_usd"].sum())
            totals.setdefault(cond, []).append(ledger["cost_usd"].sum())
    summary = pd.read_csv(res / "tables" / "summary.csv").set_index("condition")
    for cond, values in totals.items():
        assert summary.loc[cond, "cost_total_mean"] == pytest.approx(sum(values) / len(values), rel=1e-9)


def test_results_differ_between_conditions(finished):
    summary = pd.read_csv(finished / "results" / "tiny" / "tables" / "summary.csv")
    f1 = summary.set_index("condition").filter(like="f1_macro").iloc[:, 0]
    assert f1["human_al"] != f1["noisy_full"]


def test_naming_one_run_reruns_only_that_run(finished):
    run_dir = finished / "results" / "tiny" / "runs" / "human_al" / "tfidf" / "seed1"
    others = [p for p in (finished / "results").rglob("*") if p.is_file() and run_dir not in p.parents]
    before = {p: p.stat().st_mtime_ns for p in others}
    old_rounds = (run_dir / "rounds.csv").read_text()
    shutil.rmtree(run_dir)
    target = "results/tiny/runs/human_al/tfidf/seed1/run.json"
    plan = snakemake(finished, target, "-n")
    assert re.search(r"^al_run\s+1\s*$", plan.stdout, re.M), plan.stdout
    assert re.search(r"^total\s+1\s*$", plan.stdout, re.M), plan.stdout   # nothing else
    snakemake(finished, target)
    assert (run_dir / "rounds.csv").read_text().split("\n")[0] == old_rounds.split("\n")[0]
    timing = ["seconds", "train_seconds"]
    assert pd.read_csv(run_dir / "rounds.csv").drop(columns=timing).equals(
        pd.read_csv(io.StringIO(old_rounds)).drop(columns=timing))
    assert {p: p.stat().st_mtime_ns for p in others} == before


def test_bad_config_fails_before_any_job(tmp_path):
    config = tiny_config()
    config["conditions"]["human_al"]["annotator"] = "ghost"
    write_config(tmp_path, config)
    res = snakemake(tmp_path, "-n", check=False)
    assert res.returncode != 0
    assert "conditions.human_al.annotator: 'ghost' is not an annotator" in res.stdout + res.stderr
    assert not (tmp_path / "results").exists()


def test_unknown_key_fails_naming_it(tmp_path):
    config = tiny_config()
    config["al"]["bacth"] = 3
    write_config(tmp_path, config)
    res = snakemake(tmp_path, "-n", check=False)
    assert res.returncode != 0 and "bacth" in res.stdout + res.stderr


@pytest.mark.parametrize("column_fix, words", [
    (lambda df: df.drop(columns=["label"]), "label"),
    (lambda df: df.assign(text=["", *df["text"][1:]]), "empty text"),
    (lambda df: df.assign(id=["dup", "dup", *df["id"][2:]]), "duplicate id"),
    (lambda df: df.assign(label=["angry", *df["label"][1:]]), "angry"),
])
def test_bad_dataset_fails_with_a_message_naming_the_problem(tmp_path, column_fix, words):
    df = pd.DataFrame({"id": [f"r{k}" for k in range(60)], "text": [f"text number {k}" for k in range(60)],
                       "label": ["hostile" if k % 3 == 0 else "not_hostile" for k in range(60)]})
    column_fix(df).to_csv(tmp_path / "data.csv", index=False)
    config = tiny_config(dataset={"name": "mine", "kind": "file", "path": "data.csv",
                                  "columns": {"id": "id", "text": "text", "gold": "label"}})
    write_config(tmp_path, config)
    res = snakemake(tmp_path, "results/mine/data/items.parquet", check=False)
    assert res.returncode != 0
    # found while planning (llmal.config.check), before the prepare job runs
    out = res.stdout + res.stderr
    assert "data.csv" in out and words in out
    assert not (tmp_path / "results" / "mine" / "logs" / "prepare.log").exists()


def test_paper_scale_plan_has_280_runs(tmp_path, repo_root, monkeypatch):
    # its GPT annotators have requests to send: without the key -n only warns (test_check.py
    # plans it without one); with it the plan prints no warning
    monkeypatch.setenv("OPENAI_API_KEY", "sk-plan-only")
    shutil.copy(repo_root / "config" / "hakimi2026.yaml", tmp_path / "config.yaml")
    res = snakemake(tmp_path, "-n", "--quiet", "rules")
    assert re.search(r"al_run\s+280\b", res.stdout), res.stdout
