"""Task multilabel with a fine-tuned sigmoid head (recipe kind finetune) through the real
Snakemake workflow, on CPU, with a tiny BERT built offline from the synthetic demo's texts."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import snakemake, write_config
from test_workflow_multilabel import small_demo

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from llmal.models.tiny import make_tiny_bert
    from llmal.tasks.multilabel.demo import generate_multilabel_demo

    work = tmp_path_factory.mktemp("multilabel-ft")
    config = small_demo(400, step=40, rounds=1)
    texts = generate_multilabel_demo(400, seed=config["dataset"]["seed"])["text"].tolist()
    model = make_tiny_bert(work / "tiny-bert", texts, vocab_size=600, hidden=32, layers=2, heads=2)
    config["encoders"] = {"tinybert": {"kind": "transformer", "model": str(model), "max_length": 48,
                                       "batch_size": 16, "lr": 3e-3, "epochs": 3}}
    config["recipes"] = {"ft": {"kind": "finetune", "patience": 1, "tune_thresholds": True}}
    config["conditions"] = {"human_entropy_ft": {"annotator": "human", "sampler": "entropy", "recipe": "ft"}}
    config["aggregate"]["reference"] = "human_entropy_ft"
    write_config(work, config)
    snakemake(work)
    return work / "results" / config["dataset"]["name"], config


def test_a_finetuned_sigmoid_head_runs_in_the_dag_with_dev_tuned_thresholds(finished):
    out, config = finished
    names = config["labels"]["names"]
    run_dir = out / "runs" / "human_entropy_ft" / "tinybert" / "seed0"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["recipe"] == "ft" and run["device"] == "cpu"
    training = run["training"]
    assert training["head"] == "sigmoid" and training["n_dev"] > 0 and training["dev_metric"] == "f1_micro"
    assert len(training["thresholds"]) == len(names)
    rounds = pd.read_csv(run_dir / "rounds.csv")
    assert list(rounds["n_labels"]) == [40, 80]
    preds = pd.read_parquet(run_dir / "predictions.parquet")
    n_test = int((pd.read_parquet(out / "data" / "split.parquet")["split"] == "test").sum())
    assert len(preds) == n_test * len(names)          # one row per (test item, label)
    html = (out / "report.html").read_text()
    assert all(f"F1 ({n})" in html for n in names)
    assert np.isfinite(rounds["f1_micro"]).all()
