"""Load once, run many (issue 22): the warm worker forks every AL run of a local Snakemake session
from inputs it read once, and every run stays a job of its own."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, snakemake, tiny_config, write_config

RUNS = [("human_al", 0), ("human_al", 1), ("noisy_full", 0), ("noisy_full", 1),
        ("noisy_random", 0), ("noisy_random", 1)]


def grid(warm: bool) -> dict:
    config = tiny_config(warm_worker=warm)
    config["conditions"]["noisy_random"] = {"annotator": "noisy", "sampler": "random"}
    return config


def run_json(work: Path, condition: str, seed: int) -> dict:
    return json.loads((work / f"results/tiny/runs/{condition}/tfidf/seed{seed}/run.json").read_text())


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[Path, Path]:
    """The same small grid through Snakemake with the warm worker and without it."""
    warm, plain = tmp_path_factory.mktemp("warm"), tmp_path_factory.mktemp("plain")
    write_config(warm, grid(True))
    write_config(plain, grid(False))
    snakemake(warm)
    snakemake(plain)
    return warm, plain


def test_the_worker_ran_every_run_and_plain_jobs_ran_their_own(both):
    warm, plain = both
    for condition, seed in RUNS:
        assert "worker_read_seconds" in run_json(warm, condition, seed)["timings"]
        assert "worker_read_seconds" not in run_json(plain, condition, seed)["timings"]
    # the worker read the shared inputs once: for later runs they were in memory
    reads = sorted(run_json(warm, c, s)["timings"]["worker_read_seconds"] for c, s in RUNS)
    assert reads[0] == 0.0 and reads[-1] > 0.0
    # every worker run wrote its own log
    log = (warm / "results/tiny/runs/human_al/tfidf/seed1/log.txt").read_text()
    assert "round 2:" in log


def test_tables_are_identical_with_and_without_the_worker(both):
    warm, plain = both
    names = sorted(p.name for p in (plain / "results/tiny/tables").iterdir())
    assert "summary.csv" in names and "significance.csv" in names
    for name in names:
        assert (warm / "results/tiny/tables" / name).read_bytes() == \
            (plain / "results/tiny/tables" / name).read_bytes(), name
    for condition, seed in RUNS:
        for f in ("queried.parquet", "predictions.parquet", "ledger.parquet"):
            a = warm / f"results/tiny/runs/{condition}/tfidf/seed{seed}/{f}"
            b = plain / f"results/tiny/runs/{condition}/tfidf/seed{seed}/{f}"
            assert a.read_bytes() == b.read_bytes(), (condition, seed, f)
        assert run_json(warm, condition, seed)["config_hash"] == run_json(plain, condition, seed)["config_hash"]


def test_naming_one_run_json_reruns_that_run_alone_through_the_worker(both):
    warm, _ = both
    run_dir = warm / "results/tiny/runs/noisy_random/tfidf/seed1"
    others = [p for p in (warm / "results").rglob("*") if p.is_file() and run_dir not in p.parents]
    before = {p: p.stat().st_mtime_ns for p in others}
    queried = (run_dir / "queried.parquet").read_bytes()
    shutil.rmtree(run_dir)
    target = "results/tiny/runs/noisy_random/tfidf/seed1/run.json"
    plan = snakemake(warm, target, "-n")
    assert re.search(r"^al_run\s+1\s*$", plan.stdout, re.M), plan.stdout
    assert re.search(r"^total\s+1\s*$", plan.stdout, re.M), plan.stdout
    snakemake(warm, target)
    assert "worker_read_seconds" in run_json(warm, "noisy_random", 1)["timings"]
    assert (run_dir / "queried.parquet").read_bytes() == queried
    assert {p: p.stat().st_mtime_ns for p in others} == before


def test_a_failing_run_fails_its_job_and_names_its_log(tmp_path):
    config = grid(True)
    write_config(tmp_path, config)
    snakemake(tmp_path, "results/tiny/data/split.parquet", "results/tiny/embeddings/tfidf.npz")
    # an embeddings file that no longer holds the pool's ids: the run itself fails
    emb = tmp_path / "results/tiny/embeddings/tfidf.npz"
    import numpy as np
    with np.load(emb) as z:
        parts = {k: z[k] for k in z.files}
    parts["ids"] = np.array([f"x{i}" for i in range(len(parts["ids"]))])
    np.savez(emb, **parts)
    res = snakemake(tmp_path, "results/tiny/runs/noisy_random/tfidf/seed0/run.json", check=False)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "AL run failed in the warm worker" in out
    assert "has no row in the embeddings" in (tmp_path / "results/tiny/runs/noisy_random/tfidf/seed0/log.txt").read_text()
    assert not (tmp_path / "results/tiny/runs/noisy_random/tfidf/seed0/run.json").exists()


def test_a_linear_head_run_imports_no_torch(both, tmp_path):
    """A job that runs a linear-head run itself (no worker) loads neither torch nor transformers."""
    warm, _ = both
    spec = run_json(warm, "human_al", 0)["spec"]
    data = warm / "results/tiny"
    code = f"""
import json, sys
from llmal.runner import run_al
run_al(spec=json.loads({json.dumps(json.dumps(spec))}), dataset="tiny", seed=0,
       inputs={{"item_table": "{data}/data/items.parquet", "split_table": "{data}/data/split.parquet",
               "tables": ["{data}/annotations/crowd.parquet"], "embeddings": "{data}/embeddings/tfidf.npz"}},
       outputs={{k: "{tmp_path}/" + k for k in ("rounds", "queried", "predictions", "ledger", "run")}})
print(json.dumps(sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert json.loads(res.stdout.strip().splitlines()[-1]) == []
    assert (tmp_path / "run").exists()


def test_texts_are_read_only_by_a_learner_that_reads_them(tmp_path):
    # the worker holds the inputs of every run it forks; the texts by id only a fine-tuned
    # learner reads, so RunInputs makes that dict on first use, never for a linear head
    import pandas as pd

    from llmal.runner import RunInputs

    path = tmp_path / "items.parquet"
    pd.DataFrame({"id": ["a", "b"], "text": ["first", "second"]}).to_parquet(path)
    loaded = RunInputs()
    texts = loaded.texts(str(path))
    assert loaded.texts(str(path)) is texts
    assert not any(key[0] == "texts" for key in loaded._values)   # nothing read yet
    assert texts["b"] == "second" and dict(texts) == {"a": "first", "b": "second"} and len(texts) == 2
    assert "a" in texts and "c" not in texts
    assert any(key[0] == "texts" for key in loaded._values)
