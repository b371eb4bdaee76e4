"""`llmal plan`: tokens and dollars per LLM annotator and prompt interface, before sending anything."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from llmal.annotate.plan import format_plan, plan_annotators
from llmal.cli import main
from llmal.llm.cost import price_for
from llmal.llm.plan_rows import PlanRow
from llmal.llm.prompts import load_prompt
from llmal.llm.tokens import approximate_counter, make_counter
from llmal.tasks.classification.plan import estimate, max_answer_tokens

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "config" / "prompts"
LABELS = ["not_hostile", "hostile"]


def _config(tmp_path: Path, **prices) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["dataset"]["n_items"] = 200
    cfg["cache_dir"] = str(tmp_path / "cache")
    cfg["annotators"].update({
        "gpt_2q": {"kind": "openai_batch", "model": "gpt-4o-mini", "prompt": "two_question", "max_tokens": 32},
        "gpt_online_hol": {"kind": "openai", "model": "gpt-4o-mini", "prompt": "holistic", "limit": 50},
        "open_2q": {"kind": "vllm", "model": "org/open-model", "prompt": "two_question"},
        "smollm": {"kind": "local", "model": "smollm2-135m-instruct-gguf", "prompt": "holistic", "limit": 20},
    })
    cfg["prices"] = prices or {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.60,
                                               "batch_discount": 0.5}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return path


def test_plan_prints_tokens_and_dollars_per_annotator_and_interface(tmp_path, capsys):
    assert main(["plan", "--configfile", str(_config(tmp_path))]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("gpt_", "open_", "smollm"))]
    names = {(r[0], r[3]) for r in rows}
    assert ("gpt_2q", "two_question") in names and ("gpt_online_hol", "holistic") in names
    assert ("gpt_2q", "holistic") in names  # compared: 2q annotator has no holistic twin
    assert ("open_2q", "holistic") in names and ("smollm", "two_question") in names
    by = {(r[0], r[3]): r for r in rows}
    # items: pool + dev of 200 items is 160 (default split test 0.2); limit samples
    assert by[("gpt_2q", "two_question")][4] == "160"
    assert by[("gpt_online_hol", "holistic")][4] == "50" and by[("smollm", "holistic")][4] == "20"
    assert float(by[("open_2q", "two_question")][8]) == 0.0  # self-hosted: no price, $0
    assert "gpt-4o-mini (openai_batch): holistic $" in out and "two_question / holistic = " in out
    ratio = float(out.split("two_question / holistic = ")[1].split("x")[0])
    assert ratio > 1.0  # two questions ask for more input and output
    assert "GGUF vocabulary of smollm2-135m-instruct-gguf" in out
    assert "estimated bill" in out


def test_plan_errors_name_the_key(tmp_path, capsys):
    cfg = _config(tmp_path)
    assert main(["plan", "--configfile", str(cfg), "--annotator", "nobody"]) == 2
    assert "annotators.nobody" in capsys.readouterr().err
    cfg = _config(tmp_path, **{"gpt-4-other": {"input": 1.0, "output": 1.0}})
    assert main(["plan", "--configfile", str(cfg), "--annotator", "gpt_2q"]) == 2
    err = capsys.readouterr().err   # `llmal check` first, as snakemake -n: it names the key
    assert "error: " in err and "prices.gpt-4o-mini: no price for the model of annotators.gpt_2q" in err


def test_estimate_counts_unique_requests_and_prices_batch_at_the_discount():
    t = load_prompt("two_question", PROMPTS)
    items = pd.DataFrame({"id": ["a", "b", "c"], "text": ["eins", "zwei", "eins"]})
    spec = {"kind": "openai_batch", "model": "gpt-4o-mini", "prompt": "two_question", "max_tokens": 32}
    price = price_for("gpt-4o-mini", "openai_batch",
                      {"gpt-4o-mini": {"input": 1.0, "output": 2.0, "batch_discount": 0.5}})
    counter = approximate_counter()
    row = estimate("x", spec, t, items, LABELS, "hostile", price, counter)
    assert (row.n_items, row.n_requests) == (3, 2)
    per_answer = max_answer_tokens(t, counter)
    assert per_answer == math.ceil(len('{"migration":"yes","hostile":"yes"}') / 4) + 1
    assert row.output_tokens == 2 * per_answer
    assert row.usd_online == pytest.approx((row.input_tokens * 1.0 + row.output_tokens * 2.0) / 1e6)
    assert row.usd_batch == pytest.approx(row.usd_online / 2) and row.usd == row.usd_batch
    assert row.usd_per_item == pytest.approx(row.usd_batch / 3)


def test_counters_fall_back_and_say_which_they_are():
    approx = make_counter({"kind": "openai", "model": "not-a-known-openai-model"})
    assert approx.label.startswith("APPROXIMATION") and not approx.exact
    assert approx.text("12345678") == 2
    msgs = [{"role": "system", "content": "abcd"}, {"role": "user", "content": "abcdefgh"}]
    assert approx.messages(msgs) == (3 + 1) + (3 + 2) + 3
    gguf = make_counter({"kind": "local", "model": "smollm2-135m-instruct-gguf"})
    assert gguf.label.startswith("GGUF vocabulary") and gguf.exact
    assert 0 < gguf.text("Die Flüchtlinge sollen bleiben.") < 20


def test_format_plan_without_llm_annotators():
    assert "no LLM annotators" in format_plan([])
    row = PlanRow("a", "openai", "m", "holistic", True, 10, 10, 1000, 50, 0.01, 0.005, "c",
                  targets=("condition c",))
    assert "estimated bill" in format_plan([row]) and "$0.0100" in format_plan([row])
    assert "a: $0.0100 / $0.0100  for condition c" in format_plan([row])
    declared = PlanRow("b", "openai", "m", "holistic", True, 10, 10, 1000, 50, 0.02, 0.01, "c")
    out = format_plan([row, declared])
    assert "b: not annotated, $0" in out and "is billed): $0.0100 without" in out


def test_plan_bounds_what_lazy_runs_may_buy(tmp_path, capsys):
    """An LLM only lazy conditions use is not "$0": the plan bounds it by the runs' schedules plus
    dev, each item paid once (shared cache), and by each run's budget_usd."""
    path = _config(tmp_path)
    cfg = yaml.safe_load(path.read_text())
    cfg["al"] = {"initial": 10, "batch": 10, "rounds": 2}
    cfg["seeds"] = [0, 1]
    cfg["conditions"] = {"lazy_rand": {"annotator": "gpt_online_hol", "sampler": "random"},
                         "lazy_cap": {"annotator": "gpt_online_hol", "sampler": "entropy",
                                      "al": {"budget_usd": 0.0001}}}
    cfg["agreement"] = {"annotators": []}
    path.write_text(yaml.safe_dump(cfg))
    assert main(["plan", "--configfile", str(path)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("  gpt_online_hol: asked during"))
    row = next(ln.split() for ln in out.splitlines() if ln.startswith("gpt_online_hol "))
    per_item = float(row[10])
    # 2 encoders x 2 seeds per condition; its `limit: 50` sample caps every run at 50 items
    assert "lazy_rand (4 runs x <= 50)" in line and "lazy_cap (4 runs x <= 50, <= $0.00 each)" in line
    assert "at most 50 items (each paid once" in line
    bound = float(line.rsplit("$", 1)[1])
    assert bound == pytest.approx(50 * per_item, rel=1e-2) and bound > 0
    assert f"plus at most ${bound:,.4f} asked during lazy AL runs" in out
    # alone, the capped condition is bounded by its runs' budgets: 4 x $0.0001
    cfg["conditions"] = {"lazy_cap": cfg["conditions"]["lazy_cap"]}
    path.write_text(yaml.safe_dump(cfg))
    assert main(["plan", "--configfile", str(path)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("  gpt_online_hol: asked during"))
    capped = float(line.rsplit("$", 1)[1])
    assert capped == pytest.approx(4 * 0.0001, abs=1e-4 / 2) and capped < 50 * per_item


def test_one_orchestration_asks_the_task_for_each_llm_annotator():
    """annotate.plan.plan_annotators names no task: it hands each LLM annotator's items (pool +
    dev, or its `limit` sample), gold pool, price, counter, targets and the compared interfaces
    no other annotator plans exactly to Task.plan_rows, and keeps the rows in order."""
    items = pd.DataFrame({"id": [f"i{k}" for k in range(10)], "text": [f"t{k}" for k in range(10)],
                          "gold": [k % 2 for k in range(10)]})
    split = pd.DataFrame({"id": items["id"], "split": ["pool"] * 6 + ["dev"] * 2 + ["test"] * 2})
    base = {"kind": "openai", "model": "gpt-4o-mini", "prompt": "holistic"}
    config = {"labels": {"names": LABELS, "positive": "hostile"},
              "prices": {"gpt-4o-mini": {"input": 1.0, "output": 2.0}},
              "annotators": {"human": {"kind": "human", "mode": "gold"},
                             "hol": base, "two": {**base, "prompt": "two_question", "limit": 3},
                             "knn": {**base, "demonstrations": {"k": 1, "pool_size": 2}},
                             "twin": {**base, "prompt": "two_question"}}}
    asked = []

    class Recorder:
        def plan_rows(self, name, spec, subset, labels, *, price, counter, demo_pool, prompts_dir,
                      compare=(), targets=()):
            asked.append((name, sorted(subset["id"]), list(compare), targets,
                          None if demo_pool is None else len(demo_pool), labels is config["labels"]))
            return [name]

    rows = plan_annotators(config, items, split, Recorder(), PROMPTS, targets={"hol": ["agreement"]},
                           compare=["holistic", "two_question"])
    assert rows == ["hol", "two", "knn", "twin"]
    visible = [f"i{k}" for k in range(8)]
    hol, two, knn, twin = asked
    # `twin` plans exactly `hol` with two_question (and the reverse): not compared again
    assert hol == ("hol", visible, [], ("agreement",), None, True) and twin[2] == []
    # `two` with holistic is not `hol` (its `limit` differs): compared, on its 3-item sample
    assert two[1:4] == (sorted(two[1]), ["holistic"], ()) and len(two[1]) == 3
    assert knn[2] == ["two_question"] and knn[4] == 2   # its gold pool: 2 of the dev split
    asked.clear()
    plan_annotators(config, items, split, Recorder(), PROMPTS, annotator="hol", compare=["two_question"])
    assert [a[:3] for a in asked] == [("hol", visible, ["two_question"])]   # alone: compared after all
    with pytest.raises(KeyError, match="annotators.nobody"):
        plan_annotators(config, items, split, Recorder(), PROMPTS, annotator="nobody")
