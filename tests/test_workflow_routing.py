"""A lazy routed condition through the real DAG: an LLM primary on the loopback OpenAI server, a
human fallback for the items whose logprob confidence is below the threshold. Each item is sent
once to the LLM, the crowd is charged only for the routed items, and the server's bill plus the
human cost is the run's ledger."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from conftest import snakemake, tiny_config, write_config
from openai_server import Faults, read_ledger_file, start_subprocess
from test_workflow_llm import PRICES, ledger_cost

RUN = "results/routing/runs/routed_al/tfidf/seed0"
HUMAN = 0.1


def test_lazy_routed_condition_pays_the_llm_once_per_item_and_the_crowd_only_where_routed(tmp_path: Path) -> None:
    server_dir = tmp_path / "server"
    process, base_url = start_subprocess(server_dir, Faults(seed=2))
    try:
        work = tmp_path / "work"
        config = tiny_config(dataset={"name": "routing", "kind": "demo", "n_items": 600, "seed": 3})
        config["annotators"] = {
            "crowd": {"kind": "human", "mode": "gold", "cost_per_label": HUMAN},
            "llm": {"kind": "openai", "model": "gpt-test-online", "prompt": "holistic", "base_url": base_url,
                    "logprobs": True, "top_logprobs": 5, "concurrency": 4},
            "routed": {"kind": "routed", "primary": "llm", "fallback": "crowd", "threshold": 0.75},
        }
        config["prices"] = PRICES
        config["al"] = {"initial": 40, "batch": 40, "rounds": 3}
        config["conditions"] = {"routed_al": {"annotator": "routed", "sampler": "entropy"}}
        config["seeds"] = [0]
        write_config(work, config)
        snakemake(work, RUN + "/run.json", env_extra={"OPENAI_API_KEY": "sk-test"})

        billed = [e for e in read_ledger_file(server_dir) if e["model"] == "gpt-test-online"]
        ledger = pd.read_parquet(work / RUN / "ledger.parquet")
        rounds = pd.read_csv(work / RUN / "rounds.csv")
        info = json.loads((work / RUN / "run.json").read_text())
        items = pd.read_parquet(work / "results" / "routing" / "data" / "items.parquet").set_index("id")
        llm, crowd = ledger[ledger["source"] == "llm"], ledger[ledger["source"] == "crowd"]
        assert set(ledger["source"]) == {"llm", "crowd"}
        # every item bought was asked of the LLM once; the crowd labelled a part of them
        assert llm["id"].is_unique and crowd["id"].is_unique
        n_dev = int((pd.read_parquet(work / "results" / "routing" / "data" / "split.parquet")["split"] == "dev").sum())
        assert len(llm) == 40 + 3 * 40 + n_dev
        assert set(crowd["id"]) < set(llm["id"]) and 0 < len(crowd) < len(llm)
        assert Counter(e["body_hash"] for e in billed).most_common(1)[0][1] == 1      # nothing twice
        assert len(billed) == items.loc[llm["id"], "text"].nunique()                  # one request per text
        routing = info["data"]["oracle"]
        assert routing["routed"] == len(crowd) and routing["items"] == len(llm)
        assert set(routing["reasons"]) <= {"below_threshold", "status", "no_confidence"}
        assert routing["reasons"].get("below_threshold", 0) > 0
        # the bill: the server's charges for the LLM + HUMAN per routed item = the ledger
        assert llm["cost_usd"].sum() == pytest.approx(ledger_cost(billed, "gpt-test-online", "openai"), rel=1e-9)
        assert crowd["cost_usd"].sum() == pytest.approx(HUMAN * len(crowd))
        assert rounds["cost_total"].iloc[-1] == pytest.approx(
            ledger_cost(billed, "gpt-test-online", "openai") + HUMAN * len(crowd), rel=1e-9)
        # no annotation table of the LLM was made up front: it was asked during the run only
        assert not (work / "results" / "routing" / "annotations" / "llm.parquet").exists()
    finally:
        process.terminate()
        process.wait(timeout=10)
