"""Workflow hygiene (issue 12): `snakemake --lint` is clean, and each rule's params carry only
what the rule uses, so config changes that concern no job rerun nothing (real Snakemake)."""
from __future__ import annotations

import yaml
from conftest import snakemake, tiny_config, write_config


def test_lint_prints_no_lints(tmp_path):
    write_config(tmp_path, tiny_config())
    res = snakemake(tmp_path, "--lint", check=False)
    text = res.stdout + res.stderr
    assert "Lints for" not in text and res.returncode == 0, text[-3000:]


def test_unused_encoder_and_unused_price_rerun_nothing(tmp_path):
    config = tiny_config(seeds=[0])
    config["conditions"] = {"human_al": {"annotator": "crowd", "sampler": "entropy", "encoders": ["tfidf"]},
                            "noisy_full": {"annotator": "noisy", "sampler": "full", "encoders": ["tfidf"]}}
    # an LLM annotator that is declared but never used: declaring is not paying
    config["annotators"]["gpt"] = {"kind": "openai", "model": "gpt-4o-mini", "prompt": "holistic",
                                   "base_url": "http://127.0.0.1:9/v1"}
    config["prices"] = {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}
    write_config(tmp_path, config)
    snakemake(tmp_path)
    assert "Nothing to be done" in (snakemake(tmp_path, "-n").stdout)

    changed = yaml.safe_load((tmp_path / "config.yaml").read_text())
    changed["encoders"]["tfidf_big"] = {"kind": "tfidf", "max_features": 5000, "min_df": 1}
    changed["prices"]["gpt-4o-mini"]["output"] = 0.9
    changed["prices"]["gpt-unused"] = {"input": 1.0, "output": 2.0}
    write_config(tmp_path, changed)
    plan = snakemake(tmp_path, "-n")
    assert "Nothing to be done" in plan.stdout, plan.stdout[-3000:]

    # a change a job does read reruns exactly the jobs that read it
    changed["conditions"]["noisy_full"]["al"] = {"batch": 20}
    write_config(tmp_path, changed)
    plan = snakemake(tmp_path, "-n", "--quiet", "rules")
    counts = dict(line.split() for line in plan.stdout.splitlines()
                  if len(line.split()) == 2 and line.split()[1].isdigit())
    assert counts == {"al_run": "1", "aggregate": "1", "report": "1", "all": "1", "total": "4"}, plan.stdout
