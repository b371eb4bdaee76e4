"""Issue 4 through the real DAG: a condition whose encoder is fine-tuned, on CPU, with a tiny BERT."""
import json

import pandas as pd
import pytest
from conftest import snakemake, tiny_config, write_config

from llmal.models.tiny import make_tiny_bert
from llmal.tasks.classification.demo import generate_demo


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    work = tmp_path_factory.mktemp("ft")
    texts = generate_demo(400, seed=1)["text"].tolist()
    model = make_tiny_bert(work / "tiny-bert", texts, vocab_size=800, hidden=32, layers=2, heads=2)
    config = tiny_config(
        encoders={"tfidf": {"kind": "tfidf", "max_features": 3000, "min_df": 1},
                  "tinybert": {"kind": "transformer", "model": str(model), "max_length": 48,
                               "batch_size": 16, "lr": 1.0e-3, "epochs": 3}},
        recipes={"linear": {"kind": "logistic"},
                 "ft": {"kind": "finetune", "patience": 1, "class_weight": "balanced"}},
        conditions={"human_al": {"annotator": "crowd", "sampler": "entropy"},
                    "human_al_ft": {"annotator": "crowd", "sampler": "entropy", "recipe": "ft"}},
        al={"initial": 40, "batch": 40, "rounds": 1}, seeds=[0])
    write_config(work, config)
    snakemake(work)
    return work


def test_finetuned_condition_runs_and_reports_f1(finished):
    res = finished / "results" / "tiny"
    run_dir = res / "runs" / "human_al_ft" / "tinybert" / "seed0"
    run = json.loads((run_dir / "run.json").read_text())
    assert run["recipe"] == "ft" and run["device"] == "cpu"
    assert run["training"]["n_dev"] > 0          # early stopping on the annotator's dev labels
    rounds = pd.read_csv(run_dir / "rounds.csv")
    assert len(rounds) == 2 and (rounds["epochs_run"] >= 1).all() and (rounds["epochs_run"] <= 3).all()
    assert 0.0 <= run["final"]["f1_macro"] <= 1.0
    summary = pd.read_csv(res / "tables" / "summary.csv")
    pairs = set(zip(summary["condition"], summary["encoder"]))
    assert pairs == {("human_al", "tfidf"), ("human_al_ft", "tinybert")}
    # the fine-tuned encoder needs no embeddings file: it reads the texts itself
    assert not (res / "embeddings" / "tinybert.npz").exists()


def test_finetuning_job_declares_its_gpu(finished):
    plan = snakemake(finished, "results/tiny/runs/human_al_ft/tinybert/seed0/run.json",
                     "--forcerun", "al_run", "-n", "-p")
    assert "gpu=1" in plan.stdout
    plan = snakemake(finished, "results/tiny/runs/human_al/tfidf/seed0/run.json",
                     "--forcerun", "al_run", "-n", "-p")
    assert "gpu=0" in plan.stdout
