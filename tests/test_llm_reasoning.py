"""Reasoning models, request parameters, cache identity, use-time pricing and never paying twice,
against the OpenAI-compatible test server (real HTTP on 127.0.0.1, the real openai client)."""
from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llmal.config import ConfigError, annotation_targets, validate_config
from llmal.llm.backend import backend_identity
from llmal.llm.cache import ResponseCache
from llmal.llm.cost import price_for
from llmal.llm.executors.base import ok_line
from llmal.llm.inflight import InFlight
from llmal.llm.profiles import request_profile, sampling_body
from llmal.llm.prompts import load_prompt
from llmal.llm.requests import build_requests
from llmal.llm.retry import is_transient, read_token, record_failures
from llmal.tasks.classification.llm import annotate_with_llm

sys.path.insert(0, str(Path(__file__).parent))
from conftest import tiny_config  # noqa: E402
from openai_server import Faults, OpenAITestServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "config" / "prompts"
LABELS = ["not_hostile", "hostile"]
PRICES = {"gpt-5.2": {"input": 1.25, "cached_input": 0.125, "output": 10.0, "batch_discount": 0.5},
          "gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.60}}
ITEMS = pd.DataFrame({"id": [f"r{n:02d}" for n in range(30)],
                      "text": [f"Kommentar {n} zur Migrationspolitik und zur Regierung" for n in range(30)]})
GPT5 = {"model": "gpt-5.2", "prompt": "two_question", "reasoning_effort": "low",
        "max_completion_tokens": 512, "api_key_env": "LLMAL_TEST_NO_SUCH_KEY", "max_retries": 2,
        "backoff_base": 0.01, "timeout": 10, "poll_interval": 0.05}


def annotate(tmp_path: Path, spec: dict[str, Any], items: pd.DataFrame = ITEMS, **kwargs: Any) -> pd.DataFrame:
    return annotate_with_llm(items, spec=spec, label_names=LABELS, positive="hostile",
                             prompts_dir=PROMPTS, prices=PRICES, cache_path=tmp_path / "cache.sqlite",
                             state_dir=tmp_path / "state" / spec["kind"], log=lambda m: None,
                             name="gpt", **kwargs)


def ledger_usd(billed: list[dict[str, Any]], model: str, kind: str) -> float:
    price = price_for(model, kind, PRICES)
    return sum(price.cost(b["usage"]["prompt_tokens"], b["usage"]["completion_tokens"],
                          b["usage"]["prompt_tokens_details"]["cached_tokens"], batch=kind == "openai_batch")
               for b in billed)


# ------------------------------------------------------------------ reasoning models
def test_profiles_follow_the_model_family_with_an_override():
    assert request_profile({"model": "gpt-5.2"}) == "reasoning"
    assert request_profile({"model": "o3-mini"}) == request_profile({"model": "openai/gpt-5"}) == "reasoning"
    assert request_profile({"model": "gpt-4o-mini"}) == request_profile({"model": "gpt-5-chat-latest"}) == "chat"
    assert request_profile({"model": "my-served-o3", "request_profile": "reasoning"}) == "reasoning"
    body = sampling_body({"model": "gpt-5.2", "reasoning_effort": "low", "temperature": 0, "max_tokens": 64})
    assert body == {"max_completion_tokens": 4096, "reasoning_effort": "low", "seed": 0}
    # chat bodies keep the keys of earlier versions (their cache entries stay valid)
    assert sampling_body({"model": "gpt-4o-mini"}) == {"temperature": 0.0, "max_tokens": 64, "seed": 0}
    extra = sampling_body({"model": "gpt-4o-mini", "top_p": 0.9, "n": 3, "stop": ["\n"], "logprobs": True,
                           "top_logprobs": 2, "request": {"service_tier": "flex"}})
    assert extra["top_p"] == 0.9 and extra["n"] == 3 and extra["service_tier"] == "flex"


@pytest.mark.parametrize("kind", ["openai", "openai_batch"])
def test_gpt5_with_low_reasoning_effort_end_to_end_and_priced_with_its_reasoning(tmp_path, kind):
    with OpenAITestServer(tmp_path / "server", Faults(seed=2, batch_seconds=0.1)) as server:
        spec = {**GPT5, "kind": kind, "base_url": server.base_url}
        table = annotate(tmp_path, spec)
        billed = server.ledger()["billed"]
    assert (table["status"] == "ok").all() and len(billed) == len(ITEMS)   # the server took every request
    reasoning = sum(b["usage"]["completion_tokens_details"]["reasoning_tokens"] for b in billed)
    assert reasoning > 40 * len(ITEMS)                     # "low" effort reasons, and is billed
    assert int(table["reasoning_tokens"].sum()) == reasoning
    assert table["cost_usd"].sum() == pytest.approx(ledger_usd(billed, "gpt-5.2", kind))
    answer_only = sum((b["usage"]["completion_tokens"] - b["usage"]["completion_tokens_details"]["reasoning_tokens"])
                      for b in billed)
    assert table["cost_usd"].sum() > price_for("gpt-5.2", kind, PRICES).cost(
        int(table["input_tokens"].sum()), answer_only, int(table["cached_tokens"].sum()), batch=kind == "openai_batch")
    # the repeated static prefix (instructions and questions) was cached by the provider after the first request
    assert table["cached_tokens"].sum() > 0
    assert table.attrs["llm"]["sent"] == len(ITEMS) and table.attrs["llm"]["maybe_billed"] == 0


def test_reasoning_model_rejects_chat_keys_on_the_server_and_at_plan_time(tmp_path):
    with OpenAITestServer(tmp_path / "server", Faults()) as server:
        chat_style = {**GPT5, "kind": "openai", "base_url": server.base_url, "request_profile": "chat",
                      "max_retries": 0}
        del chat_style["max_completion_tokens"]             # so the chat profile sends max_tokens
        table = annotate(tmp_path, chat_style, ITEMS.head(3))
    assert (table["status"] == "failed").all()
    assert table["raw"].str.contains("max_tokens").all()   # the emulated 400 names the key

    def config_with(**keys: Any) -> dict[str, Any]:
        cfg = tiny_config()
        cfg["annotators"]["gpt"] = {"kind": "openai_batch", "model": "gpt-5.2", "prompt": "two_question",
                                    "reasoning_effort": "low", **keys}
        return cfg

    validate_config(config_with())
    validate_config(config_with(temperature=1))            # the one value a reasoning model takes
    for keys, where in (({"max_tokens": 32}, "annotators.gpt.max_tokens"),
                        ({"temperature": 0}, "annotators.gpt.temperature"),
                        ({"top_p": 0.5}, "annotators.gpt.top_p"),
                        ({"request": {"temperature": 0.2}}, "annotators.gpt.request.temperature"),
                        ({"request": {"messages": []}}, "annotators.gpt.request.messages")):
        with pytest.raises(ConfigError, match=where.replace(".", r"\.")) as e:
            validate_config(config_with(**keys))
        assert "gpt-5.2" in str(e.value) or "request" in where
    with pytest.raises(ConfigError, match=r"annotators\.gpt\.reasoning_effort"):
        cfg = tiny_config()
        cfg["annotators"]["gpt"] = {"kind": "openai", "model": "gpt-4o-mini", "prompt": "two_question",
                                    "reasoning_effort": "low"}
        validate_config(cfg)


def test_n_logprobs_and_extra_keys_reach_the_server_and_the_cache_key(tmp_path):
    template = load_prompt("holistic", PROMPTS)
    base = {"kind": "openai", "model": "gpt-4o-mini", "prompt": "holistic", "api_key_env": "X_NO_KEY"}
    plain = build_requests(ITEMS.head(2), template, base, LABELS, "hostile").custom_ids
    for extra in ({"n": 2}, {"logprobs": True, "top_logprobs": 2}, {"top_p": 0.5}, {"stop": ["}"]},
                  {"request": {"service_tier": "flex"}}):
        assert build_requests(ITEMS.head(2), template, {**base, **extra}, LABELS, "hostile").custom_ids != plain
    with OpenAITestServer(tmp_path / "server", Faults()) as server:
        spec = {**base, "base_url": server.base_url, "n": 2, "logprobs": True, "top_logprobs": 1}
        table = annotate(tmp_path, spec, ITEMS.head(4))
        with ResponseCache(tmp_path / "cache.sqlite") as cache:
            lines = cache.get_many(build_requests(ITEMS.head(4), template, spec, LABELS, "hostile").custom_ids,
                                   backend_identity(spec))
    assert (table["status"] == "ok").all() and len(lines) == 4
    body = next(iter(lines.values())).line["response"]["body"]
    assert len(body["choices"]) == 2 and body["choices"][0]["logprobs"]["content"]


# ------------------------------------------------------------------ cache identity and cost
def test_one_model_name_on_two_servers_gets_separate_cache_entries(tmp_path):
    with OpenAITestServer(tmp_path / "s1", Faults()) as one, OpenAITestServer(tmp_path / "s2", Faults()) as two:
        spec = {"kind": "openai", "model": "gpt-4o-mini", "prompt": "two_question", "api_key_env": "X_NO_KEY"}
        annotate(tmp_path, {**spec, "base_url": one.base_url})
        table = annotate(tmp_path, {**spec, "base_url": two.base_url})
        assert len(one.ledger()["billed"]) == len(two.ledger()["billed"]) == len(ITEMS)
        again = annotate(tmp_path, {**spec, "base_url": two.base_url + "/"})   # the same server
        assert len(two.ledger()["billed"]) == len(ITEMS)
    assert table.attrs["llm"]["cached"] == 0 and again.attrs["llm"]["cached"] == len(ITEMS)
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        assert len(cache) == 2 * len(ITEMS)


def test_a_runs_cost_does_not_depend_on_which_job_filled_the_cache(tmp_path):
    """An online and a batch annotator send the same bodies to one server: whichever runs first
    pays, both read the other's answers, and each prices them at its own kind's price."""
    costs: dict[str, list[float]] = {"openai": [], "openai_batch": []}
    for order in (("openai", "openai_batch"), ("openai_batch", "openai")):
        work = tmp_path / "-".join(order)
        faults = Faults(batch_seconds=0.05, prefix_cache_min_tokens=10**9)  # usage independent of order
        with OpenAITestServer(work / "server", faults) as server:
            for kind in order:
                table = annotate(work, {**GPT5, "kind": kind, "base_url": server.base_url})
                costs[kind].append(float(table["cost_usd"].sum()))
            assert len(server.ledger()["billed"]) == len(ITEMS)     # paid once, by the first
    assert costs["openai"][0] == pytest.approx(costs["openai"][1])
    assert costs["openai_batch"][0] == pytest.approx(costs["openai_batch"][1])
    assert costs["openai_batch"][0] == pytest.approx(costs["openai"][0] / 2)


def test_a_legacy_cache_is_adopted_once_by_its_executor_family(tmp_path):
    path = tmp_path / "cache.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE responses (custom_id TEXT PRIMARY KEY, line TEXT NOT NULL, "
               "executor TEXT NOT NULL, stored_at REAL NOT NULL)")
    line = ok_line("c1", {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1}})
    db.execute("INSERT INTO responses VALUES (?, ?, ?, 0)", ("c1", json.dumps(line), "openai_batch"))
    db.commit()
    db.close()
    with ResponseCache(path) as cache:
        assert cache.get_many(["c1"], "vllm some/model x") == {}            # another family
        assert set(cache.get_many(["c1"], "openai http://a/v1")) == {"c1"} and cache.adopted_legacy == 1
        assert cache.get_many(["c1"], "openai http://b/v1") == {}          # not shared with a second server
        assert set(cache.get_many(["c1"], "openai http://a/v1")) == {"c1"}


def test_identical_replicates_are_a_config_error():
    cfg = tiny_config()
    llm = {"kind": "openai", "model": "gpt-4o-mini", "prompt": "two_question", "temperature": 0.7}
    cfg["annotators"].update(llm=dict(llm), llm_again={**llm, "kind": "openai_batch", "replicate_of": "llm"})
    with pytest.raises(ConfigError, match=r"annotators\.llm_again\.replicate_of: its requests are identical"):
        validate_config(cfg)
    cfg["annotators"]["llm_again"]["seed"] = 1
    validate_config(cfg)


# ------------------------------------------------------------------ never twice under concurrency
def _job(spec: dict[str, Any], tmp: str, out: str) -> None:
    table = annotate(Path(tmp), spec)
    table.to_parquet(out)


@pytest.mark.parametrize("kind", ["openai", "openai_batch"])
def test_two_concurrent_runs_on_one_cache_pay_nothing_twice(tmp_path, kind):
    with OpenAITestServer(tmp_path / "server", Faults(batch_seconds=0.5, rate_slow=0.3, slow_seconds=0.05)) as server:
        spec = {**GPT5, "kind": kind, "base_url": server.base_url, "concurrency": 2}
        ctx = mp.get_context("spawn")
        outs = [tmp_path / f"job{i}.parquet" for i in range(2)]
        jobs = [ctx.Process(target=_job, args=(spec, str(tmp_path), str(out))) for out in outs]
        for job in jobs:
            job.start()
        for job in jobs:
            job.join(120)
            assert job.exitcode == 0
        billed = server.ledger()["billed"]
    assert len(billed) == len(ITEMS) and max(Counter(b["body_hash"] for b in billed).values()) == 1
    a, b = (pd.read_parquet(o) for o in outs)
    assert (a["status"] == "ok").all() and (b["status"] == "ok").all()
    pd.testing.assert_frame_equal(a, b)                                # the same labels and costs
    stats = [a.attrs["llm"], b.attrs["llm"]]
    assert sorted(s["sent"] for s in stats)[0] < len(ITEMS)          # one job waited and read
    assert sum(s["sent"] for s in stats) == len(ITEMS)


def test_requests_that_timed_out_after_sending_are_counted(tmp_path):
    faults = Faults(seed=4, rate_slow=0.3, slow_seconds=1.0, transient_attempts=1)
    with OpenAITestServer(tmp_path / "server", faults) as server:
        spec = {**GPT5, "kind": "openai", "base_url": server.base_url, "timeout": 0.4, "concurrency": 8}
        table = annotate(tmp_path, spec)
        time.sleep(1.2)                                      # the slow answers get billed meanwhile
        ledger = server.ledger()
    slow = [f for f in ledger["faults"] if f["fault"] == "slow"]
    assert slow and (table["status"] == "ok").all()          # retried after the timeout
    assert table.attrs["llm"]["maybe_billed_timeouts"] == len(slow) == table.attrs["llm"]["maybe_billed"]
    assert sum(b["slow"] for b in ledger["billed"]) == len(slow)   # billed without an answer


def test_a_job_killed_with_requests_in_flight_leaves_a_count_behind(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        cache.register("otherhost:1:dead")
        cache.reserve(["a", "b", "c"], "openai x", "otherhost:1:dead")
        cache.mark_sent(["a", "b"], "openai x", "otherhost:1:dead")
        cache._conn.execute("UPDATE owners SET heartbeat = 0")    # a job that stopped beating
        with InFlight(cache, "openai x", log=lambda m: None) as flight:
            mine, theirs = flight.claim(["a", "b", "c", "d"])
        assert mine == {"a", "b", "c", "d"} and not theirs and cache.lost_in_flight == 2


# ------------------------------------------------------------------ declaring is not paying, retries
def test_only_used_or_listed_annotators_are_annotated():
    cfg = tiny_config()
    cfg["annotators"]["declared"] = {"kind": "openai_batch", "model": "gpt-5.2", "prompt": "holistic"}
    cfg["annotators"]["mix"] = {"kind": "mixture", "members": ["noisy", "crowd"]}
    cfg["annotators"]["candidate"] = {"kind": "simulated", "seed": 9}
    cfg["conditions"]["noisy_full"]["annotator"] = "mix"
    cfg["agreement"] = {"annotators": ["candidate"]}
    validate_config(cfg)
    targets = annotation_targets(cfg)
    assert "declared" not in targets and "noisy" not in cfg["conditions"].values()
    assert targets["noisy"] == ["condition noisy_full", "agreement"]     # a mixture member
    assert targets["candidate"] == ["agreement"]


def test_retry_token_grows_only_with_transient_failures(tmp_path):
    table = tmp_path / "a.parquet"
    assert read_token(table) == 0 and record_failures(table, {}) == 0 and not Path(f"{table}.retry").exists()
    assert record_failures(table, {"i1": "timeout: no answer", "i2": "http_400: bad"}) == 1
    assert read_token(table) == 1
    assert record_failures(table, {"i2": "http_400: bad"}) == 0 and read_token(table) == 1
    assert record_failures(table, {"i3": "batch_expired: x"}) == 1 and read_token(table) == 2
    assert is_transient("http_429") and not is_transient("unsupported_parameter")
