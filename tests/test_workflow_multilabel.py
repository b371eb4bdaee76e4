"""The multi-label demo grid through the real Snakemake workflow (a smaller copy of
config/multilabel_demo.yaml): a report with per-label tables and figures, rounds.csv scores
that scikit-learn recomputes from predictions.parquet, and the agreement table's per-label
Krippendorff's α that the `krippendorff` package recomputes from the annotation tables."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, snakemake, write_config
from llmal.tasks.multilabel.labels import to_indicator
from llmal.tasks.multilabel.metrics import indicator_from_rows

DS = "multilabel_demo"


def small_demo(n_items: int, *, step: int, rounds: int) -> dict:
    """config/multilabel_demo.yaml shrunk for a test: `n_items` synthetic items, one seed, `step`
    initial labels and `rounds` rounds of `step` more."""
    config = yaml.safe_load((ROOT / "config" / f"{DS}.yaml").read_text())
    config["dataset"]["n_items"] = n_items
    config["al"] = {"initial": step, "batch": step, "rounds": rounds}
    config["seeds"] = [0]
    return config


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    config = small_demo(800, step=40, rounds=2)
    config["conditions"] = {k: v for k, v in config["conditions"].items()
                            if k in ("human_random", "llm_entropy", "llm_kmeans")}
    work = tmp_path_factory.mktemp("multilabel")
    write_config(work, config)
    snakemake(work)
    return work / "results" / DS, config


def test_the_report_has_per_label_tables_and_figures(finished):
    out, config = finished
    html = (out / "report.html").read_text()
    for name in config["labels"]["names"]:
        assert f"F1 ({name})" in html
    assert "Hamming loss" in html and "Subset accuracy" in html
    per_class = pd.read_csv(out / "tables" / "per_class.csv")
    assert set(per_class["class"]) == set(config["labels"]["names"])
    fpfn = pd.read_csv(out / "tables" / "fpfn.csv")
    assert set(fpfn["class"]) == set(config["labels"]["names"])
    for fig in ("fpfn.png", "errors_by_topic.png", "learning_curve.png"):
        assert (out / "figures" / fig).stat().st_size > 1000


def test_rounds_csv_scores_equal_scikit_learn_on_predictions_parquet(finished):
    from sklearn.metrics import f1_score, hamming_loss

    out, config = finished
    names = config["labels"]["names"]
    runs = sorted(out.glob("runs/*/*/seed*/rounds.csv"))
    assert len(runs) == 3
    items = pd.read_parquet(out / "data" / "items.parquet").set_index("id")
    for rounds_csv in runs:
        last = pd.read_csv(rounds_csv).iloc[-1]
        preds = pd.read_parquet(rounds_csv.parent / "predictions.parquet")
        ids, Y, P = indicator_from_rows(preds, names)
        # the gold rows of predictions.parquet are the items' gold label sets
        assert (Y == to_indicator(items.loc[ids, "gold"], len(names))).all()
        assert last["f1_micro"] == pytest.approx(f1_score(Y, P, average="micro", zero_division=0), abs=1e-12)
        assert last["f1_macro"] == pytest.approx(f1_score(Y, P, average="macro", zero_division=0), abs=1e-12)
        assert last["hamming_loss"] == pytest.approx(hamming_loss(Y, P), abs=1e-12)
        assert last["subset_accuracy"] == pytest.approx(np.mean((Y == P).all(axis=1)), abs=1e-12)
        assert 0 < last["subset_accuracy"] < 1 and last["f1_micro"] > 0.3


def test_agreement_alpha_per_label_equals_the_krippendorff_package(finished):
    import krippendorff

    out, config = finished
    names = config["labels"]["names"]
    table = pd.read_csv(out / "tables" / "annotators.csv").set_index("annotator")
    items = pd.read_parquet(out / "data" / "items.parquet").set_index("id")
    split = pd.read_parquet(out / "data" / "split.parquet").set_index("id")["split"]
    checked = 0
    for name in ("human", "llm_sim"):
        ann = pd.read_parquet(out / "annotations" / f"{name}.parquet")
        ann = ann[(ann["status"] == "ok") & ann["id"].map(split).isin(["pool", "dev"]).to_numpy()]
        gold = to_indicator(items.loc[ann["id"], "gold"], len(names))
        given = to_indicator(ann["label"].astype("int64"), len(names))
        for k, label in enumerate(names):
            expected = krippendorff.alpha(reliability_data=np.stack([gold[:, k], given[:, k]]).astype(float),
                                          level_of_measurement="nominal")
            assert table.loc[name, f"alpha_{label}"] == pytest.approx(expected, abs=1e-12)
            checked += 1
    assert checked == 12
    assert table.loc["llm_sim", "alpha_threat"] < table.loc["human", "alpha_threat"]
    summary = json.loads((out / "tables" / "agreement.json").read_text())["task"]
    assert summary["coders"] == ["c1", "c2", "c3"] and 0 < summary["alpha_masi"] < 1
    assert all(0 < summary[f"fleiss_kappa_{n}"] < 1 for n in names)


def test_a_run_bills_one_item_per_label_set(finished):
    out, config = finished
    ledger = pd.read_parquet(next(out.glob("runs/llm_entropy/*/seed0/ledger.parquet")))
    # the simulated LLM's price is per item whatever the number of labels
    assert ledger["cost_usd"].max() == pytest.approx(config["annotators"]["llm_sim"]["cost_per_label"])
    assert ledger["id"].is_unique


def test_a_lazy_llm_annotator_of_label_sets_inside_the_dag(tmp_path):
    """The LLM asked through the loopback server during the AL run only about what it buys (dev
    labels in round 0, then its queries), one request per item; planted malformed answers on dev
    items (an unknown label, a non-list, a missing key) are bought as invalid and never trained
    on; the server's bill equals the ledger and cost_total."""
    from openai_server import Faults
    from test_workflow_llm import PRICES, Server, ledger_cost

    from llmal.tasks.multilabel.data import prepare_multilabel

    config = small_demo(600, step=30, rounds=2)
    config["prices"] = PRICES
    config["conditions"] = {"llm_lazy": {"annotator": "llm", "sampler": "entropy"}}
    config["aggregate"] = {"metric": "f1_micro"}
    items, split = prepare_multilabel(config["dataset"], config["labels"], config["split"], cache_dir=tmp_path)
    texts = items["text"].tolist()
    dev = items[split["split"].eq("dev").to_numpy()]
    unique = [t for t in dev["text"] if sum(t in other for other in texts) == 1][:3]
    planted = {unique[0]: json.dumps({"labels": ["hostile", "sarcasm"]}),
               unique[1]: json.dumps({"labels": "insult"}),
               unique[2]: json.dumps({"label": ["threat"]})}
    server = Server(tmp_path / "server", Faults(planted=json.dumps(planted)))
    try:
        config["annotators"]["llm"] = {"kind": "openai", "model": "gpt-test-online", "prompt": "multilabel_list",
                                       "base_url": server.base_url, "max_retries": 1, "backoff_base": 0.01}
        work = tmp_path / "work"
        write_config(work, config)
        snakemake(work)
        billed = server.billed()
    finally:
        server.stop()
    run = work / "results" / DS / "runs" / "llm_lazy" / "tfidf" / "seed0"
    ledger, rounds = pd.read_parquet(run / "ledger.parquet"), pd.read_csv(run / "rounds.csv")
    assert not (work / "results" / DS / "annotations" / "llm.parquet").exists()    # lazy: no annotate job
    n_dev = int(split["split"].eq("dev").sum())
    assert (ledger["purpose"] == "dev").sum() == n_dev
    assert len(ledger) == n_dev + 30 + 2 * 30 and ledger["id"].is_unique
    asked = items.set_index("id").loc[ledger["id"], "text"]
    assert len(billed) == asked.nunique()                  # one request per distinct text, each once
    assert ledger["cost_usd"].sum() == pytest.approx(ledger_cost(billed, "gpt-test-online", "openai"), rel=1e-9)
    assert rounds["cost_total"].iloc[-1] == pytest.approx(ledger["cost_usd"].sum(), rel=1e-12)
    by_text = items.set_index("text")["id"]
    bad = [by_text[t] for t in planted]
    assert ledger.set_index("id").loc[bad, "status"].eq("invalid").all()
    assert ledger["status"].eq("ok").sum() == len(ledger) - 3
