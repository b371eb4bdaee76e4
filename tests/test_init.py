"""`llmal init`: from a data file nobody configured to a report, with no hand edit.

The data is written here: 1,000 rows with odd column names (spaces, parentheses, a hyphen),
YES/NO labels (which YAML reads as booleans unless quoted), two annotator columns and a topic.
"""
from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from llmal.config.starter import affordable_schedule, guess_columns, misread_labels, yaml_scalar

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ["Wirtschaft", "Sport", "Kultur", "Politik"]
COLUMNS = ["Kommentar-ID", "Comment Body (raw)", "Final Verdict", "coder A", "coder B", "Thema"]


def write_csv(path: Path, n: int = 1000, seed: int = 0) -> Path:
    """Texts whose words give the label away most of the time; coder A errs 10 %, coder B 20 %."""
    rng = random.Random(seed)
    pos, neg = ["awful", "hate", "terrible", "angry", "worst"], ["nice", "great", "calm", "friendly", "fine"]
    filler = ["the", "match", "city", "today", "news", "report", "people", "about", "story", "week"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i in range(n):
            topic = rng.choice(TOPICS)
            y = rng.random() < (0.5 if topic == "Politik" else 0.3)
            words = [rng.choice(filler) for _ in range(8)] + [rng.choice(pos if y else neg) for _ in range(2)]
            if rng.random() < 0.15:
                words.append(rng.choice(neg if y else pos))
            rng.shuffle(words)
            gold, other = ("YES", "NO") if y else ("NO", "YES")
            w.writerow([f"c{i:05d}", " ".join(words), gold, gold if rng.random() > 0.1 else other,
                        gold if rng.random() > 0.2 else other, topic])
    return path


def llmal(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "llmal.cli", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=600)


def test_guesses_columns_and_quotes_labels_yaml_would_misread(tmp_path):
    g = guess_columns(write_csv(tmp_path / "data.csv"))
    assert (g.id, g.text, g.gold, g.annotators, g.topic) == (
        "Kommentar-ID", "Comment Body (raw)", "Final Verdict", ["coder A", "coder B"], "Thema")
    assert g.labels == ["NO", "YES"] and g.recorded == [] and g.n_rows == 1000
    assert misread_labels(["NO", "YES", "on", "off", "1", "0.5", "null", "hostile"]) == [
        "NO", "YES", "on", "off", "1", "0.5", "null"]
    for name in ("NO", "YES", "on", "1", "it's", "a: b", "hostile", "not_hostile"):
        assert yaml.safe_load(f"x: {yaml_scalar(name)}") == {"x": name}
    assert yaml_scalar("hostile") == "hostile" and yaml_scalar("NO") == "'NO'"


def test_a_recorded_llm_column_becomes_a_precomputed_annotator(tmp_path):
    df = pd.read_csv(write_csv(tmp_path / "d.csv", n=600))
    df["gpt4_answer"] = df["Final Verdict"]
    df.to_csv(tmp_path / "d.csv", index=False)
    g = guess_columns(tmp_path / "d.csv")
    assert g.recorded == ["gpt4_answer"] and g.annotators == ["coder A", "coder B"]
    res = llmal(tmp_path, "init", "d.csv", "--out", "c.yaml")
    assert res.returncode == 0, res.stdout + res.stderr
    config = yaml.safe_load((tmp_path / "c.yaml").read_text())
    assert config["annotators"]["llm"] == {"kind": "precomputed", "columns": {"label": "gpt4_answer"},
                                           "cost_per_label": 0.0004}
    assert config["dataset"]["columns"]["meta"] == ["gpt4_answer"]
    assert "no problems found" in res.stdout


def test_schedule_follows_the_pool():
    s = affordable_schedule(1000)
    assert (s.pool, s.initial, s.batch, s.rounds, s.labels) == (700, 50, 50, 6, 350)
    small = affordable_schedule(120)
    assert small.labels <= small.pool // 2 + small.batch and small.initial >= 2
    assert affordable_schedule(100_000).labels <= 1000


def test_a_bad_override_names_the_columns(tmp_path):
    write_csv(tmp_path / "data.csv", n=50)
    res = llmal(tmp_path, "init", "data.csv", "--gold", "verdict")
    assert res.returncode == 2
    assert "--gold verdict: data.csv has no such column (columns: Kommentar-ID, Comment Body (raw)" in res.stderr


def test_llm_option_writes_a_two_question_template_and_prints_the_plan(tmp_path):
    write_csv(tmp_path / "data.csv")
    res = llmal(tmp_path, "init", "data.csv", "--out", "config/mine.yaml", "--llm", "openai_batch:gpt-4o-mini",
                env={"OPENAI_API_KEY": ""})
    assert res.returncode == 0, res.stdout + res.stderr
    config = yaml.safe_load((tmp_path / "config/mine.yaml").read_text())
    assert config["annotators"]["llm_real"]["kind"] == "openai_batch"
    assert config["annotators"]["llm_real"]["prompt"] == "config/mine_prompt.yaml"
    assert config["prices"]["gpt-4o-mini"]["input"] == 0.15
    prompt = yaml.safe_load((tmp_path / "config/mine_prompt.yaml").read_text())
    assert [q["name"] for q in prompt["questions"]] == ["q1", "q2"]
    assert all(q["text"].startswith("TODO") for q in prompt["questions"])
    assert "plan for config/mine.yaml (dataset data: 1,000 items)" in res.stdout
    plan_row = next(line for line in res.stdout.splitlines() if line.startswith("llm_real "))
    assert plan_row.split()[:3] == ["llm_real", "openai_batch", "gpt-4o-mini"]
    assert " 800 " in plan_row        # pool + dev items (700 + 100) the lazy runs may ask about


def test_init_check_snakemake_from_a_fresh_csv_to_a_report_without_hand_edits(tmp_path):
    write_csv(tmp_path / "data.csv")
    init = llmal(tmp_path, "init", "data.csv")
    assert init.returncode == 0, init.stdout + init.stderr
    assert "gold                  Final Verdict" in init.stdout
    assert "labels                'NO', 'YES'" in init.stdout
    text = (tmp_path / "config/mine.yaml").read_text()
    assert "names: ['NO', 'YES']" in text and "positive: 'YES'" in text
    check = llmal(tmp_path, "check", "--configfile", "config/mine.yaml")
    assert check.returncode == 0 and check.stdout.strip() == "config/mine.yaml: no problems found", check.stdout
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2",
                          "--configfile", "config/mine.yaml"], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    results = tmp_path / "results" / "data"
    assert (results / "report.html").stat().st_size > 10_000
    summary = pd.read_csv(results / "tables" / "summary.csv")
    assert sorted(summary["condition"]) == ["human_al", "human_random", "llm_al", "llm_random"]
    assert set(summary["n_seeds"]) == {3}
    # the topic column was guessed and used: errors are broken down by the file's topics
    topics = pd.read_csv(results / "tables" / "errors_by_topic.csv")
    assert set(topics["topic"]) == set(TOPICS)
    # the human reference is the coders' majority, which beats chance on this data
    assert summary.set_index("condition").loc["human_random", "f1_macro_mean"] > 0.8
