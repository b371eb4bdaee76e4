"""task ner: token budgets (al.budget_tokens, rounds.csv n_tokens, tokens as a budget axis of the
aggregate tables and figures), and cache_mode on the NER LLM path, through real runs."""
from __future__ import annotations

import json
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
from conftest import snakemake, write_config

from llmal.config import ConfigError, validate_config
from llmal.engine.schedule import BUDGET_TOKENS, Schedule
from llmal.tasks.ner.data import prepare_ner

TYPES = ["PER", "ORG", "LOC", "DATE"]


def _demo(tmp_path, n_items=240):
    items, split = prepare_ner({"kind": "demo", "task": "ner", "n_items": n_items, "seed": 5},
                               {"names": TYPES}, {}, cache_dir=tmp_path)
    return items, split


def _tokens_of(items: pd.DataFrame) -> dict[str, int]:
    return {str(i): len(json.loads(t)) for i, t in zip(items["id"], items["meta_tokens"])}


def _simulate(items, split, schedule, sampler="random", seed=0):
    from llmal.engine.loop import simulate
    from llmal.engine.oracle import GoldSource, TableOracle
    from llmal.tasks.ner.annotators import annotate_ner_human
    from llmal.tasks.ner.crf import CRFTagger
    from llmal.tasks.ner.task import NERTask

    task = NERTask(items, split, TYPES)
    table = annotate_ner_human(items[split["split"].isin(["pool", "dev"]).to_numpy()],
                               {"mode": "gold", "cost_per_token": 0.01})
    return task, simulate(task=task, oracle=TableOracle("human", table), gold=GoldSource({}, 0.0),
                          classifier=CRFTagger(task.tokens, task.tag_names, recipe={"max_iterations": 20}, seed=0),
                          sampler=sampler, schedule=schedule, seed=seed, buy_dev=False, log=lambda m: None)


def _next_sentence(message: str) -> tuple[str, int]:
    found = re.search(r"the next sentence, '([^']+)', has (\d+) tokens", message)
    assert found, message
    return found.group(1), int(found.group(2))


def test_full_takes_the_prefix_of_its_seeded_order_that_fits(tmp_path):
    """`full` buys the pool in its seeded order (recomputed here) up to the first sentence whose
    tokens would exceed the budget; a shorter sentence after it is not bought."""
    items, split = _demo(tmp_path)
    size = _tokens_of(items)
    budget = 301
    _, result = _simulate(items, split, Schedule(10, 10, 0, full=True, budget_tokens=budget))
    pool = split.loc[split["split"] == "pool", "id"].astype(str).tolist()
    order = [pool[i] for i in np.random.default_rng(0).permutation(len(pool))]
    cumulative = np.cumsum([size[i] for i in order])
    n = int((cumulative <= budget).sum())
    assert 0 < n < len(pool)
    assert result.queried["id"].tolist() == order[:n]
    assert result.info["stop_reason"] == BUDGET_TOKENS == result.rounds["stop"].iloc[-1]
    assert result.rounds["n_tokens"].iloc[-1] == cumulative[n - 1] <= budget < cumulative[n]
    assert _next_sentence(result.info["stop_message"]) == (order[n], size[order[n]])
    assert "budget_tokens (301 tokens)" in result.info["stop_message"]


def test_budget_tokens_stops_an_al_run_within_the_budget(tmp_path):
    items, split = _demo(tmp_path)
    size = _tokens_of(items)
    budget = 333
    _, result = _simulate(items, split, Schedule(10, 10, 20, budget_tokens=budget), sampler="mean_token_entropy")
    q = result.queried
    spent = sum(size[i] for i in q["id"])
    nxt, k = _next_sentence(result.info["stop_message"])
    assert result.info["stop_reason"] == "budget_tokens"
    assert spent <= budget < spent + k and k == size[nxt] and nxt not in set(q["id"])
    assert len(result.rounds) < 21   # the budget, not the schedule, ended it
    per_round = q.assign(t=q["id"].map(size)).groupby("round")["t"].sum().cumsum()
    assert result.rounds.set_index("round")["n_tokens"].to_dict() == per_round.to_dict()
    # human cost per token: the dollars follow the tokens
    assert result.rounds["cost_al"].iloc[-1] == pytest.approx(0.01 * spent)


def test_budget_tokens_is_a_config_error_outside_task_ner():
    from conftest import tiny_config

    config = tiny_config(al={"initial": 30, "batch": 30, "rounds": 2, "budget_tokens": 500})
    with pytest.raises(ConfigError, match=r"al\.budget_tokens: .*task: ner"):
        validate_config(config)
    config = tiny_config()
    config["conditions"]["human_al"]["al"] = {"budget_tokens": 500}
    with pytest.raises(ConfigError, match=r"conditions\.human_al\.al\.budget_tokens"):
        validate_config(config)
    with pytest.raises(ConfigError, match=r"al\.budget_tokens: 0 is less than the minimum"):
        validate_config({**tiny_config(al={"budget_tokens": 0})})


def test_token_budget_and_network_cache_through_the_dag(tmp_path):
    """The NER demo with al.budget_tokens and a lazy LLM annotator (the loopback server) under
    cache_mode: network: every run stops at the token budget, rounds.csv's n_tokens is the
    tokens of queried.parquet, tokens are a budget axis of the tables and the figures, and the
    response cache is in network mode (rollback journal, no WAL)."""
    import yaml
    from conftest import ROOT
    from openai_server import Faults, OpenAITestServer

    config = yaml.safe_load((ROOT / "config" / "ner_demo.yaml").read_text())
    budget = 260
    config["dataset"].update(name="tok_ner", n_items=300)
    config["al"] = {"initial": 10, "batch": 10, "rounds": 8, "budget_tokens": budget}
    config["seeds"] = [0, 1]
    config["cache_mode"] = "network"
    config["prices"] = {"gpt-test": {"input": 1.0, "output": 2.0}}
    config["conditions"] = {"human_random": {"annotator": "human", "sampler": "random"},
                            "human_mte": {"annotator": "human", "sampler": "mean_token_entropy"},
                            "gpt_mte": {"annotator": "gpt", "sampler": "mean_token_entropy"}}
    config["aggregate"] = {"metric": "f1_micro", "reference": "human_random", "token_budgets": [200]}
    with OpenAITestServer(tmp_path / "server", Faults()) as server:
        config["annotators"]["gpt"] = {"kind": "openai", "model": "gpt-test", "prompt": "ner",
                                       "base_url": server.base_url, "max_retries": 1, "backoff_base": 0.01}
        write_config(tmp_path / "work", config)
        snakemake(tmp_path / "work", env_extra={"OPENAI_API_KEY": "sk-test"})
        billed = server.ledger()["billed"]
    res = tmp_path / "work" / "results" / "tok_ner"
    items = pd.read_parquet(res / "data" / "items.parquet")
    size = _tokens_of(items)
    for cond in config["conditions"]:
        for seed in config["seeds"]:
            run_dir = res / "runs" / cond / "tfidf" / f"seed{seed}"
            rounds = pd.read_csv(run_dir / "rounds.csv")
            queried = pd.read_parquet(run_dir / "queried.parquet")
            run = json.loads((run_dir / "run.json").read_text())
            spent = sum(size[str(i)] for i in queried["id"])
            nxt, k = _next_sentence(run["stop_message"])
            assert run["stop_reason"] == "budget_tokens" == rounds["stop"].iloc[-1], run["stop_message"]
            assert spent <= budget < spent + k and size[nxt] == k
            recount = queried.assign(t=queried["id"].astype(str).map(size)).groupby("round")["t"].sum().cumsum()
            assert rounds.set_index("round")["n_tokens"].to_dict() == recount.to_dict()
    assert billed   # the LLM condition asked the server during its runs
    # the network-mode cache: a rollback journal (a local cache is WAL), no WAL file, no lock left
    cache = tmp_path / "work" / ".llmal-cache" / "responses.sqlite"
    assert cache.is_file()
    conn = sqlite3.connect(cache)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == len(billed)
    conn.close()
    assert not cache.with_name("responses.sqlite-wal").exists()
    assert not cache.with_name("responses.sqlite.lock").exists()
    # tokens as a budget axis
    curve = pd.read_csv(res / "tables" / "learning_curve.csv")
    assert (curve["n_tokens_mean"] > 0).all()
    aulc = pd.read_csv(res / "tables" / "aulc.csv")
    assert aulc["aulc_tokens"].between(0, 1).all() and (aulc["tokens_max"] <= budget).all()
    matched = pd.read_csv(res / "tables" / "matched_budget.csv")
    assert set(matched["budget_kind"]) == {"labels", "usd", "tokens"}
    assert set(matched.loc[matched["budget_kind"] == "tokens", "budget"]) == {200.0}
    assert "200 tokens" in (res / "tables" / "matched_budget.md").read_text()
    summary = pd.read_csv(res / "tables" / "summary.csv")
    assert (summary["n_tokens_mean"] <= budget).all()
    assert (res / "figures" / "learning_curve_tokens.png").stat().st_size > 1000
    report = (res / "report.html").read_text()
    assert "against the tokens of the sentences acquired" in report
    assert "AULC (tokens)" in report
