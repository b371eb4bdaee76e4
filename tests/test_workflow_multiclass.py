"""Any number of classes, end to end: the three-class demo through the real DAG.

Needs the AL loop to run without labels.positive (classification_metrics(..., positive=None)).
"""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from conftest import ROOT, snakemake, write_config


# remove this marker when the AL loop (al.py, runner.py, annotators/run.py) reads
# labels.positive with .get() and passes positive=None on; strict: it fails once that is done
def test_three_class_demo_runs_end_to_end(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "demo3.yaml").read_text())
    config["dataset"].update(n_items=300, name="demo3_tiny")
    config["encoders"] = {"tfidf": {"kind": "tfidf", "max_features": 2000, "min_df": 1}}
    config["al"] = {"initial": 40, "batch": 40, "rounds": 1}
    config["conditions"] = {k: config["conditions"][k] for k in ("human_random", "llm_full")}
    config["seeds"] = [0]
    write_config(tmp_path, config)
    snakemake(tmp_path)
    res = tmp_path / "results" / "demo3_tiny"
    summary = pd.read_csv(res / "tables" / "summary.csv")
    assert not [c for c in summary.columns if c.endswith(("_pos_mean", "_pos_sd")) or c.startswith(("fp_", "fn_"))]
    assert {"f1_macro_mean", "f1_neutral_mean", "f1_critical_civil_mean", "f1_hostile_mean"} <= set(summary.columns)
    assert (res / "figures" / "confusion.png").stat().st_size > 0
    conf = pd.read_csv(res / "tables" / "confusion.csv")
    test_items = 60
    for cond, g in conf.groupby("condition"):
        assert g["count_mean"].sum() == test_items       # every test item in one cell
    fpfn = pd.read_csv(res / "tables" / "fpfn.csv")
    assert set(fpfn["class"]) == {"neutral", "critical_civil", "hostile"}   # one-vs-rest
    assert "no positive class" in (res / "tables" / "summary.md").read_text()
    agreement = json.loads((res / "tables" / "agreement.json").read_text())
    # the two experts are two raters; gold-like and sampled annotators are not
    assert agreement["fleiss_annotators"] == ["expert_a1", "expert_a2", "llm_sim"]
    html = (res / "report.html").read_text()
    assert "Confusion matrix per condition" in html and "(no positive class)" in html
