"""annotate_with_llm end to end with the `openai` and `openai_batch` executors against the
OpenAI-compatible test server on 127.0.0.1 (with malformed answers, 429s and failures)."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from llmal.llm.prompts import load_prompt
from llmal.llm.requests import build_requests
from llmal.tasks.classification.llm import annotate_with_llm

sys.path.insert(0, str(Path(__file__).parent))
from openai_server import Faults, OpenAITestServer, expected_answer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "config" / "prompts"
LABELS = ["not_hostile", "hostile"]
PRICES = {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.60, "batch_discount": 0.5}}
ITEMS = pd.DataFrame({"id": [f"k{n:02d}" for n in range(24)],
                      "text": [f"Kommentar Nummer {n} über Politik" for n in range(24)]})


def _price(usage: dict, batch: bool) -> float:
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    usd = ((usage["prompt_tokens"] - cached) * 0.15 + cached * 0.075
           + usage["completion_tokens"] * 0.60) / 1e6
    return usd * (0.5 if batch else 1.0)


@pytest.mark.parametrize("kind", ["openai", "openai_batch"])
def test_annotate_against_the_test_server(tmp_path, kind):
    faults = Faults(seed=1, rate_malformed=0.2, rate_fail=0.1, rate_429=0.1, retry_after=0.01)
    template = load_prompt("two_question", PROMPTS)
    with OpenAITestServer(tmp_path / "server", faults) as server:
        spec = {"kind": kind, "model": "gpt-4o-mini", "prompt": "two_question", "max_tokens": 32,
                "base_url": server.base_url, "max_retries": 2, "backoff_base": 0.01,
                "timeout": 10, "poll_interval": 0.1, "api_key_env": "LLMAL_TEST_NO_SUCH_KEY"}
        kwargs = dict(spec=spec, label_names=LABELS, positive="hostile", prompts_dir=PROMPTS,
                      prices=PRICES, cache_path=tmp_path / "cache.sqlite",
                      state_dir=tmp_path / "state", log=lambda m: None, name="gpt")
        table = annotate_with_llm(ITEMS, **kwargs).set_index("id")
        billed = server.ledger()["billed"]

        plan = build_requests(ITEMS, template, spec, LABELS, "hostile")
        bodies = {line["custom_id"]: line["body"] for line in plan.lines}
        by_hash = {b["body_hash"]: b for b in billed}
        assert len(by_hash) == len(billed)  # no request was paid twice
        for item_id, cid in zip(plan.item_ids, plan.custom_ids):
            row = table.loc[item_id]
            bill = by_hash.get(cid)
            if bill is None:
                assert row["status"] == "failed" and row["cost_usd"] == 0
            elif bill["malformed"]:
                assert row["status"] == "invalid" and row["raw"] == bill["content"]
            else:
                assert row["status"] == "ok"
                assert row["label"] == template.label_of(expected_answer(bodies[cid]), LABELS, "hostile")
        counts = table["status"].value_counts()
        assert counts.get("ok", 0) >= 12 and counts.get("invalid", 0) >= 1
        assert table["cost_usd"].sum() == pytest.approx(
            sum(_price(b["usage"], kind == "openai_batch") for b in billed))

        again = annotate_with_llm(ITEMS, **kwargs).set_index("id")
        assert len(server.ledger()["billed"]) == len(billed)  # rerun: nothing paid again
        pd.testing.assert_frame_equal(table[table["status"] != "failed"],
                                      again[table["status"] != "failed"])
