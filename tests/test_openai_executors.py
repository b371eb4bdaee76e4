"""The `openai` and `openai_batch` executors against a real OpenAI-compatible server on 127.0.0.1
(tests/openai_server.py), driven through the real `openai` client, with injected faults.

What is checked: every request ends with exactly one response line; transient faults are retried
(honouring Retry-After); malformed answers end `invalid` and permanent failures `failed`, never a
guessed label; batches are split, expired requests resubmitted alone, and a pipeline killed with
SIGKILL resumes polling instead of paying again (the server's ledger shows each request billed
once, and the annotation cost equals the usage the server reported).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
from openai_server import Faults, OpenAITestServer, expected_answer, read_ledger_file, start_subprocess

from llmal.llm.cache import ResponseCache
from llmal.llm.cost import price_for
from llmal.llm.executors import make_executor
from llmal.llm.executors.openai_batch import STATE_FILE, BatchState, Chunk, OpenAIBatchExecutor
from llmal.llm.executors.openai_common import ExecutorConfigError, redact
from llmal.llm.executors.openai_online import OpenAIOnlineExecutor
from llmal.llm.fetch import counts
from llmal.llm.prompts import load_prompt
from llmal.llm.requests import build_requests
from llmal.tasks.classification.llm import annotate_with_llm

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "config" / "prompts"
GAHD = ROOT.parent / "shared" / "data" / "gahd" / "gahd_disaggregated.csv"
LABELS = ["not_hostile", "hostile"]
POSITIVE = "hostile"
MODEL = "gpt-test"
PRICES = {MODEL: {"input": 0.15, "cached_input": 0.075, "output": 0.60, "batch_discount": 0.5}}
SECRET = "sk-test-SECRET123"
WORDS = ["Grenze", "Arbeit", "Miete", "Schule", "Zuwanderung", "Regierung", "Nachbarn", "Asyl",
         "Sprache", "Steuern", "Polizei", "Zukunft", "Kinder", "Wahl", "Heimat", "Europa"]


# ---------------------------------------------------------------------- helpers
@pytest.fixture
def start_server(tmp_path: Path) -> Any:
    servers: list[OpenAITestServer] = []

    def start(**faults: Any) -> OpenAITestServer:
        server = OpenAITestServer(tmp_path / f"server{len(servers)}", Faults(**faults)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def synthetic_items(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts = [f"Kommentar {i}: " + " ".join(rng.choice(WORDS, size=8)) for i in range(n)]
    return pd.DataFrame({"id": [f"c{i:05d}" for i in range(n)], "text": texts})


def request_lines(n: int, seed: int = 0) -> list[dict[str, Any]]:
    template = load_prompt("two_question", PROMPTS)
    plan = build_requests(synthetic_items(n, seed), template, {"model": MODEL}, LABELS, POSITIVE)
    return plan.lines


def expected_labels(items: pd.DataFrame) -> dict[str, int]:
    """The label the server's deterministic model gives each item when it answers well."""
    template = load_prompt("two_question", PROMPTS)
    plan = build_requests(items, template, {"model": MODEL}, LABELS, POSITIVE)
    bodies = {line["custom_id"]: line["body"] for line in plan.lines}
    out = {}
    for item_id, cid in zip(plan.item_ids, plan.custom_ids):
        label = template.label_of(expected_answer(bodies[cid]), LABELS, POSITIVE)
        assert label is not None
        out[item_id] = label
    return out


def item_custom_ids(items: pd.DataFrame) -> dict[str, str]:
    template = load_prompt("two_question", PROMPTS)
    plan = build_requests(items, template, {"model": MODEL}, LABELS, POSITIVE)
    return dict(zip(plan.item_ids, plan.custom_ids))


def ledger_cost(entries: list[dict[str, Any]], kind: str) -> float:
    price = price_for(MODEL, kind, PRICES)
    return sum(price.cost(e["usage"]["prompt_tokens"], e["usage"]["completion_tokens"],
                          e["usage"]["prompt_tokens_details"]["cached_tokens"], batch=kind == "openai_batch")
               for e in entries)


def collect(executor: Any, requests: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    lines: dict[str, list[dict[str, Any]]] = {}
    executor.run(requests, lambda line: lines.setdefault(line["custom_id"], []).append(line))
    return lines


def content_of(line: dict[str, Any]) -> str:
    return line["response"]["body"]["choices"][0]["message"]["content"]


def check_table_against_server(table: pd.DataFrame, items: pd.DataFrame, billed: list[dict[str, Any]],
                               failed_ids: set[str] = frozenset()) -> None:
    """ok items carry the server's answer, malformed ones are invalid, failed ones failed."""
    assert len(table) == len(items) and set(table["id"]) == set(items["id"])
    malformed = {e["body_hash"] for e in billed if e["malformed"]}
    cids = item_custom_ids(items)
    expected = expected_labels(items)
    for row in table.itertuples():
        cid = cids[row.id]
        if row.id in failed_ids:
            assert row.status == "failed" and pd.isna(row.label), row
        elif cid in malformed:
            assert row.status == "invalid" and pd.isna(row.label), row
        else:
            assert row.status == "ok", row
            assert row.label == expected[row.id], row


# ---------------------------------------------------------------------- online executor
def test_online_recovers_transient_faults_and_honours_retry_after(start_server: Any) -> None:
    server = start_server(seed=1, rate_429=0.08, rate_500=0.07, rate_slow=0.05, slow_seconds=0.3,
                          retry_after=0.25, rate_malformed=0.05)
    requests = request_lines(300)
    executor = OpenAIOnlineExecutor({"base_url": server.base_url, "concurrency": 16,
                                     "backoff_base": 0.01, "backoff_max": 0.5, "timeout": 10})
    lines = collect(executor, requests)

    ledger = server.ledger()
    assert set(lines) == {r["custom_id"] for r in requests}
    assert all(len(v) == 1 for v in lines.values())
    assert all(v[0]["error"] is None for v in lines.values())
    faults = ledger["faults"]
    assert len(faults) >= 0.10 * len(requests)             # at least 10% of requests hit a fault
    transient = [f for f in faults if f["fault"] in ("429", "500")]
    assert executor.stats.retries == len(transient)         # each transient fault retried once
    # each request billed exactly once; what we got is what the server billed
    billed = Counter(e["body_hash"] for e in ledger["billed"])
    assert set(billed) == set(lines) and set(billed.values()) == {1}
    by_hash = {e["body_hash"]: e for e in ledger["billed"]}
    assert all(content_of(v[0]) == by_hash[cid]["content"] for cid, v in lines.items())
    assert sum(1 for e in ledger["billed"] if e["malformed"]) > 0
    # Retry-After honoured: the retry of a 429 came no sooner than the server asked
    arrivals = {(a["body_hash"], a["attempt"]): a["t"] for a in ledger["arrivals"]}
    waits = [arrivals[(f["body_hash"], f["attempt"] + 1)] - f["t"] for f in faults if f["fault"] == "429"]
    assert waits and min(waits) >= 0.25 * 0.95


def test_online_retries_timeouts(start_server: Any) -> None:
    server = start_server(seed=2, rate_slow=1.0, slow_seconds=1.5, transient_attempts=1)
    requests = request_lines(12)
    executor = OpenAIOnlineExecutor({"base_url": server.base_url, "concurrency": 12, "timeout": 0.4,
                                     "backoff_base": 0.01})
    lines = collect(executor, requests)
    assert all(len(v) == 1 and v[0]["error"] is None for v in lines.values())
    assert len(lines) == 12
    assert executor.stats.retry_reasons == {"timeout": 12}


def test_online_errors_become_error_lines(start_server: Any) -> None:
    server = start_server(seed=3, rate_fail=0.2)
    requests = request_lines(40)
    bad = {"custom_id": "no-messages", "method": "POST", "url": "/v1/chat/completions",
           "body": {"model": MODEL, "messages": []}}
    executor = OpenAIOnlineExecutor({"base_url": server.base_url, "max_retries": 2, "backoff_base": 0.01})
    lines = collect(executor, [*requests, bad])
    assert all(len(v) == 1 for v in lines.values()) and len(lines) == 41
    # a 400 is not retried: one error line, no retry counted for it
    assert lines["no-messages"][0]["error"]["code"] == "http_400"
    assert "messages" in lines["no-messages"][0]["error"]["message"]
    failing = {f["body_hash"] for f in server.ledger()["faults"] if f["fault"] == "fail"}
    assert failing, "seed 3 should make some requests fail permanently"
    for cid, (line,) in lines.items():
        if cid in failing:
            assert line["error"]["code"] == "http_500" and "3 attempts" in line["error"]["message"]
        elif cid != "no-messages":
            assert line["error"] is None
    attempts = Counter(a["body_hash"] for a in server.ledger()["arrivals"])
    assert all(attempts[cid] == 3 for cid in failing)        # 1 + max_retries


def test_online_connection_errors_are_retried_then_reported() -> None:
    import socket

    with socket.socket() as sock:              # a port on which nothing listens any more
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    executor = OpenAIOnlineExecutor({"base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 2,
                                     "backoff_base": 0.01})
    lines = collect(executor, request_lines(3))
    assert all(v[0]["error"]["code"] == "connection_error" for v in lines.values()) and len(lines) == 3
    assert executor.stats.retry_reasons == {"connection_error": 6}


def test_online_annotation_under_faults_reports_every_item(start_server: Any, tmp_path: Path) -> None:
    """>= 10% transient faults, 5% malformed, 2% permanent failures through annotate_with_llm."""
    server = start_server(seed=4, rate_429=0.06, rate_500=0.06, rate_slow=0.03, slow_seconds=0.2,
                          rate_malformed=0.05, rate_fail=0.02, retry_after=0.02)
    items = synthetic_items(400, seed=4)
    spec = {"kind": "openai", "model": MODEL, "prompt": "two_question", "base_url": server.base_url,
            "concurrency": 16, "max_retries": 3, "backoff_base": 0.01}
    table = annotate_with_llm(items, spec=spec, label_names=LABELS, positive=POSITIVE, prompts_dir=PROMPTS,
                              prices=PRICES, cache_path=tmp_path / "cache.sqlite", state_dir=tmp_path / "state",
                              log=lambda m: None)
    ledger = server.ledger()
    failing = {f["body_hash"] for f in ledger["faults"] if f["fault"] == "fail"}
    cids = item_custom_ids(items)
    failed_items = {item for item, cid in cids.items() if cid in failing}
    check_table_against_server(table, items, ledger["billed"], failed_items)
    c = counts(table)
    assert c["failed"] == len(failed_items) > 0 and c["invalid"] > 0 and c["ok"] > 0.85 * len(items)
    assert c["cost_usd"] == pytest.approx(ledger_cost(ledger["billed"], "openai"), rel=1e-12)
    n_transient = sum(f["fault"] in ("429", "500") for f in ledger["faults"])
    assert n_transient >= 0.10 * len(items)

    # a rerun sends only what failed (errors are not cached) and bills nothing twice
    before = len(ledger["billed"])
    again = annotate_with_llm(items, spec=spec, label_names=LABELS, positive=POSITIVE, prompts_dir=PROMPTS,
                              prices=PRICES, cache_path=tmp_path / "cache.sqlite",
                              state_dir=tmp_path / "state", log=lambda m: None)
    assert len(server.ledger()["billed"]) == before
    pd.testing.assert_frame_equal(again, table)


def test_server_runs_as_a_subprocess_with_faults_from_flags(tmp_path: Path) -> None:
    process, base_url = start_subprocess(tmp_path / "server", Faults(seed=11, rate_500=0.3, batch_seconds=0.1))
    try:
        assert (tmp_path / "server" / "base_url").read_text().strip() == base_url
        requests = request_lines(20)
        executor = OpenAIOnlineExecutor({"base_url": base_url, "backoff_base": 0.01})
        lines = collect(executor, requests)
        assert all(len(v) == 1 and v[0]["error"] is None for v in lines.values())
        assert executor.stats.retry_reasons.get("http_500", 0) > 0       # the flag reached the server
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    billed = read_ledger_file(tmp_path / "server")
    assert sorted(e["body_hash"] for e in billed) == sorted(lines)


def test_api_key_comes_from_env_and_never_leaks(start_server: Any, tmp_path: Path, monkeypatch: Any,
                                                 caplog: Any, capfd: Any) -> None:
    server = start_server(api_key="sk-right-KEY-000")
    monkeypatch.setenv("LLMAL_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    spec = {"base_url": server.base_url, "api_key_env": "LLMAL_TEST_KEY", "backoff_base": 0.01}
    # the server echoes the wrong key in its 401 message: the run stops with an error naming the
    # variable, and neither the error nor any log shows the key
    stored: list[dict[str, Any]] = []
    with pytest.raises(ExecutorConfigError, match="LLMAL_TEST_KEY") as online_error:
        OpenAIOnlineExecutor(spec).run(request_lines(3), stored.append)
    with pytest.raises(ExecutorConfigError, match="LLMAL_TEST_KEY") as batch_error:
        collect(OpenAIBatchExecutor({**spec, "poll_interval": 0.05}, state_dir=tmp_path / "batch"), request_lines(3))
    out, err = capfd.readouterr()
    texts = [json.dumps(stored), str(online_error.value), str(batch_error.value), caplog.text, out, err,
             repr(OpenAIOnlineExecutor(spec)), *(p.read_text(errors="replace") for p in
                                                   (tmp_path / "batch").glob("*") if p.is_file())]
    assert "SECRET123" not in "\n".join(texts)
    assert "Incorrect API key" in str(online_error.value)   # the server's message is kept, masked

    # the right key works; a missing key is an error naming the variable, except on loopback
    monkeypatch.setenv("LLMAL_TEST_KEY", "sk-right-KEY-000")
    lines = collect(OpenAIOnlineExecutor(spec), request_lines(3))
    assert all(v[0]["error"] is None for v in lines.values())
    monkeypatch.delenv("LLMAL_TEST_KEY")
    with pytest.raises(ExecutorConfigError, match="LLMAL_TEST_KEY"):
        OpenAIOnlineExecutor({"base_url": "https://api.example.org/v1", "api_key_env": "LLMAL_TEST_KEY"})
    with pytest.raises(ExecutorConfigError, match="OPENAI_API_KEY"):
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        make_executor({"kind": "openai_batch"}, state_dir=tmp_path / "s")
    OpenAIOnlineExecutor({"base_url": "http://localhost:8000/v1", "api_key_env": "LLMAL_TEST_KEY"})


def test_redact_masks_keys() -> None:
    assert redact("key sk-abc123456 and Bearer xyz", "zzzz") == "key sk-*** and Bearer ***"
    assert "hunter22" not in redact("the key is hunter22", "hunter22")


# ---------------------------------------------------------------------- batch executor
def test_batch_splits_and_resubmits_only_expired_requests(start_server: Any, tmp_path: Path) -> None:
    server = start_server(seed=5, batch_seconds=0.2, batch_expire_first=1, batch_expire_fraction=0.4,
                          batch_rate_500=0.05, rate_malformed=0.05)
    requests = request_lines(250)
    executor = OpenAIBatchExecutor({"base_url": server.base_url, "poll_interval": 0.05,
                                    "max_requests_per_batch": 100}, state_dir=tmp_path / "state")
    lines = collect(executor, requests)

    assert set(lines) == {r["custom_id"] for r in requests}
    assert all(len(v) == 1 and v[0]["error"] is None for v in lines.values())
    ledger = server.ledger()
    batches = ledger["batches"]
    first = batches[0]
    assert [len(b["custom_ids"]) for b in batches[:3]] == [100, 100, 50]
    failed_500 = {f["custom_id"] for f in ledger["faults"] if f["fault"] == "batch_500"}
    assert failed_500, "seed 5 should give some transient 500 lines"
    assert first["status"] == "expired"
    assert first["request_counts"]["completed"] == 40 - len(failed_500 & set(first["custom_ids"][:40]))
    # the resubmission holds exactly the undone requests: expired ones and batch 500 lines
    undone = set(first["custom_ids"][40:]) | failed_500
    resubmitted = {cid for b in batches[3:] for cid in b["custom_ids"]}
    assert resubmitted == undone
    billed = Counter(e["custom_id"] for e in ledger["billed"])
    assert set(billed) == set(lines) and set(billed.values()) == {1}
    assert executor.stats.resubmitted == sum(len(b["custom_ids"]) for b in batches[3:])



class BulkRecorder:
    """A store with `many`: records each call's lines; `fail_first` makes the first `many` raise
    (a crash while the cache commits a downloaded batch)."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.fail_first = fail_first

    def __call__(self, line: dict[str, Any]) -> None:
        self.calls.append([line])

    def many(self, lines: Any) -> None:
        if self.fail_first:
            self.fail_first = False
            raise OSError("disk full while committing")
        self.calls.append(list(lines))


def test_batch_hands_each_downloaded_batch_over_at_once_and_collects_only_after(
        start_server: Any, tmp_path: Path) -> None:
    server = start_server(seed=12, batch_seconds=0.1, rate_malformed=0.1)
    requests = request_lines(90, seed=12)
    spec = {"base_url": server.base_url, "poll_interval": 0.05, "max_requests_per_batch": 40}
    crashing = BulkRecorder(fail_first=True)
    with pytest.raises(OSError, match="disk full"):
        OpenAIBatchExecutor(spec, state_dir=tmp_path / "state").run(requests, crashing)
    assert crashing.calls == []
    state = BatchState(tmp_path / "state" / STATE_FILE)
    assert len(state.live(server.base_url.rstrip("/"))) == 3     # none marked collected
    state.close()

    store = BulkRecorder()
    executor = OpenAIBatchExecutor(spec, state_dir=tmp_path / "state")
    executor.run(requests, store)
    assert executor.stats.batches_resumed == 3 and executor.stats.batches_created == 0
    assert sorted(len(c) for c in store.calls) == [10, 40, 40]   # one call per batch file
    got = [line["custom_id"] for call in store.calls for line in call]
    assert sorted(got) == sorted(r["custom_id"] for r in requests)
    billed = Counter(e["custom_id"] for e in server.ledger()["billed"])
    assert set(billed) == set(got) and set(billed.values()) == {1}


def test_batch_files_stay_under_the_byte_limit(start_server: Any, tmp_path: Path) -> None:
    server = start_server(batch_seconds=0.1)
    requests = request_lines(60, seed=9)
    line_sizes = [len(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode()) + 1 for r in requests]
    limit = 20 * max(line_sizes)
    executor = OpenAIBatchExecutor({"base_url": server.base_url, "poll_interval": 0.05,
                                    "max_bytes_per_batch": limit}, state_dir=tmp_path / "state")
    lines = collect(executor, requests)
    assert len(lines) == 60 and all(v[0]["error"] is None for v in lines.values())
    batches = server.ledger()["batches"]
    assert len(batches) >= 3 and sum(len(b["custom_ids"]) for b in batches) == 60
    for batch in batches:
        with server.state.lock:
            size = server.state.files[batch["input_file_id"]]["bytes"]
        assert size <= limit


def test_server_lists_batches_newest_first_in_pages_and_cancels(start_server: Any) -> None:
    import openai

    server = start_server(batch_seconds=2.0)
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
    content = b"".join(json.dumps(r).encode() + b"\n" for r in request_lines(10))
    file = client.files.create(file=("in.jsonl", content, "application/jsonl"), purpose="batch")
    assert client.files.content(file.id).content == content
    created = [client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                     completion_window="24h", metadata={"n": str(i)}).id for i in range(7)]
    listed = [b.id for b in client.batches.list(limit=3)]       # the client follows `after` cursors
    assert listed == created[::-1]
    client.batches.cancel(created[0])
    deadline = time.monotonic() + 10
    while client.batches.retrieve(created[0]).status != "cancelled" and time.monotonic() < deadline:
        time.sleep(0.05)
    batch = client.batches.retrieve(created[0])
    assert batch.status == "cancelled" and batch.error_file_id
    errors = [json.loads(l) for l in client.files.content(batch.error_file_id).text.splitlines()]
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}


def test_batch_unknown_to_the_server_is_planned_again(start_server: Any, tmp_path: Path) -> None:
    """A remembered batch id the server does not know (another project's key, deleted)."""
    server = start_server(batch_seconds=0.1)
    requests = request_lines(30)
    (tmp_path / "state").mkdir()
    state = BatchState(tmp_path / "state" / STATE_FILE)
    state.add(server.base_url.rstrip("/"), Chunk(key="old", endpoint="/v1/chat/completions", attempt=1,
                                                 custom_ids=[r["custom_id"] for r in requests[:20]],
                                                 input_file_id="file-gone", batch_id="batch_gone",
                                                 status="in_progress", created_at=time.time()))
    state.close()
    executor = OpenAIBatchExecutor({"base_url": server.base_url, "poll_interval": 0.05},
                                   state_dir=tmp_path / "state")
    lines = collect(executor, requests)
    assert len(lines) == 30 and all(len(v) == 1 and v[0]["error"] is None for v in lines.values())
    assert executor.stats.batches_resumed == 1 and executor.stats.batches_created == 2
    assert set(Counter(e["custom_id"] for e in server.ledger()["billed"]).values()) == {1}


def test_batch_gives_up_after_max_attempts(start_server: Any, tmp_path: Path) -> None:
    server = start_server(batch_seconds=0.1, batch_expire_first=5, batch_expire_fraction=0.5)
    requests = request_lines(40)
    executor = OpenAIBatchExecutor({"base_url": server.base_url, "poll_interval": 0.05,
                                    "max_batch_attempts": 2}, state_dir=tmp_path / "state")
    lines = collect(executor, requests)
    assert len(lines) == 40 and all(len(v) == 1 for v in lines.values())
    errors = [v[0] for v in lines.values() if v[0]["error"]]
    assert len(errors) == 10 and {e["error"]["code"] for e in errors} == {"batch_expired"}
    assert len(server.ledger()["batches"]) == 2
    assert Counter(e["custom_id"] for e in server.ledger()["billed"]).most_common(1)[0][1] == 1


def test_batch_annotation_under_faults_reports_every_item(start_server: Any, tmp_path: Path) -> None:
    """10% transient 500 lines, 5% malformed, an expired batch, 2 attempts: ok / invalid / failed."""
    server = start_server(seed=10, batch_seconds=0.2, batch_rate_500=0.10, rate_malformed=0.05,
                          batch_expire_first=1, batch_expire_fraction=0.5)
    items = synthetic_items(400, seed=10)
    spec = {"kind": "openai_batch", "model": MODEL, "prompt": "two_question", "base_url": server.base_url,
            "poll_interval": 0.05, "max_requests_per_batch": 150, "max_batch_attempts": 2}
    kwargs = dict(spec=spec, label_names=LABELS, positive=POSITIVE, prompts_dir=PROMPTS, prices=PRICES,
                  cache_path=tmp_path / "cache.sqlite", state_dir=tmp_path / "state", log=lambda m: None)
    table = annotate_with_llm(items, **kwargs)
    ledger = server.ledger()
    assert sum(f["fault"] == "batch_500" for f in ledger["faults"]) >= 0.10 * len(items) * 0.8
    billed = Counter(e["custom_id"] for e in ledger["billed"])
    assert set(billed.values()) == {1}
    cids = item_custom_ids(items)
    unanswered = {item for item, cid in cids.items() if cid not in billed}
    check_table_against_server(table, items, ledger["billed"], unanswered)
    c = counts(table)
    assert c["failed"] == len(unanswered) > 0 and c["invalid"] > 0
    assert c["ok"] + c["invalid"] + c["failed"] == len(items)
    assert c["cost_usd"] == pytest.approx(ledger_cost(ledger["billed"], "openai_batch"), rel=1e-12)
    failed_raw = table.loc[table["status"] == "failed", "raw"]
    assert failed_raw.str.contains("batch_expired|http_500").all()

    # the rerun sends only the failed requests, in a new batch, and they are answered now
    n_batches = len(ledger["batches"])
    again = annotate_with_llm(items, **kwargs)
    ledger = server.ledger()
    assert {cid for b in ledger["batches"][n_batches:] for cid in b["custom_ids"]} == {cids[i] for i in unanswered}
    assert set(Counter(e["custom_id"] for e in ledger["billed"]).values()) == {1}
    assert counts(again)["failed"] < c["failed"]


DRIVER = r"""
import json, logging, os, signal, sys
from pathlib import Path
import pandas as pd
from llmal.tasks.classification.llm import annotate_with_llm
logging.basicConfig(level=logging.WARNING)
logging.getLogger("llmal").setLevel(logging.INFO)
args = json.loads(sys.argv[1])
if args.get("kill_after"):   # SIGKILL itself right after the n-th batch (or file) create returns
    from openai.resources.batches import Batches
    from openai.resources.files import Files
    what, n = args["kill_after"]
    resource = {"batches": Batches, "files": Files}[what]
    create, made = resource.create, []
    def create_then_die(self, *a, **k):
        made.append(create(self, *a, **k))
        if len(made) >= n:
            os.kill(os.getpid(), signal.SIGKILL)
        return made[-1]
    resource.create = create_then_die
items = pd.read_parquet(args["items"])
table = annotate_with_llm(items, spec=args["spec"], label_names=args["labels"], positive=args["positive"],
                          prompts_dir=Path(args["prompts"]), prices=args["prices"],
                          cache_path=Path(args["cache"]), state_dir=Path(args["state"]),
                          log=lambda m: print(m, flush=True))
table.to_parquet(args["out"])
"""


def run_pipeline(tmp_path: Path, items: pd.DataFrame, spec: dict[str, Any],
                 kill_when: Callable[[], bool] | None = None, timeout: float = 120,
                 kill_after: tuple[str, int] | None = None, run: str = "") -> int:
    """annotate_with_llm in a subprocess; SIGKILL it once `kill_when()` holds (or it kills itself
    right after its n-th batch or file create returns: `kill_after` ("batches" | "files", n)).
    Returns its exit code.
    `run` names its items, state dir and table (one run per name; all share the cache)."""
    items_path = tmp_path / f"items{run}.parquet"
    if not items_path.exists():
        items.to_parquet(items_path)
    args = {"items": str(items_path), "spec": spec, "labels": LABELS, "positive": POSITIVE,
            "prompts": str(PROMPTS), "prices": PRICES, "cache": str(tmp_path / "cache.sqlite"),
            "state": str(tmp_path / f"state{run}"), "out": str(tmp_path / f"table{run}.parquet"),
            "kill_after": kill_after}
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OPENAI_API_KEY="")
    log = open(tmp_path / f"driver{run}.log", "a")
    process = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(args)], stdout=log,
                               stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if kill_when is not None and kill_when():
                process.send_signal(signal.SIGKILL)
                return process.wait()
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
            raise AssertionError(f"driver did not finish within {timeout} s")
        return process.returncode
    finally:
        log.close()


def cached_rows(path: Path) -> int:
    """Rows in the response cache another process is writing (0 before it exists)."""
    if not path.exists():
        return 0
    import sqlite3

    try:
        with sqlite3.connect(path, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
    except sqlite3.OperationalError:  # table not created yet
        return 0


def check_resumed_run(server: OpenAITestServer, tmp_path: Path, items: pd.DataFrame, n_batches: int) -> None:
    ledger = server.ledger()
    submitted = Counter(cid for b in ledger["batches"] for cid in b["custom_ids"])
    distinct = set(item_custom_ids(items).values())
    assert set(submitted) == distinct and set(submitted.values()) == {1}, "a request reached the server twice"
    billed = Counter(e["custom_id"] for e in ledger["billed"])
    assert set(billed) == distinct and set(billed.values()) == {1}, "a request was billed twice"
    assert len(ledger["batches"]) == n_batches
    table = pd.read_parquet(tmp_path / "table.parquet")
    check_table_against_server(table, items, ledger["billed"])
    assert table["cost_usd"].sum() == pytest.approx(ledger_cost(ledger["billed"], "openai_batch"), rel=1e-9)
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        assert len(cache) == len(distinct) and cache.integrity_ok()


def test_batch_resumes_after_sigkill_without_paying_twice(start_server: Any, tmp_path: Path) -> None:
    server = start_server(seed=6, batch_seconds=0.8, rate_malformed=0.05)
    items = synthetic_items(300, seed=6)
    spec = {"kind": "openai_batch", "model": MODEL, "prompt": "two_question", "base_url": server.base_url,
            "poll_interval": 0.1, "max_requests_per_batch": 100}
    cache = tmp_path / "cache.sqlite"
    code = run_pipeline(tmp_path, items, spec, kill_when=lambda: cached_rows(cache) >= 100)
    assert code == -signal.SIGKILL
    assert not (tmp_path / "table.parquet").exists()
    assert len(server.ledger()["batches"]) == 3
    assert 100 <= cached_rows(cache) < 300                  # killed midway: some answers stored
    assert run_pipeline(tmp_path, items, spec) == 0
    check_resumed_run(server, tmp_path, items, n_batches=3)
    assert "resuming" in (tmp_path / "driver.log").read_text()


def test_resumed_batch_keeps_answers_the_new_run_did_not_ask_for(start_server: Any, tmp_path: Path) -> None:
    """Killed while its batch runs, then rerun with fewer items (a smaller `limit`, say): the
    batch's other answers were paid for, so they are cached and a later full run sends nothing."""
    server = start_server(seed=9, batch_seconds=1.5)
    items = synthetic_items(120, seed=9)
    spec = {"kind": "openai_batch", "model": MODEL, "prompt": "two_question", "base_url": server.base_url,
            "poll_interval": 0.1}
    code = run_pipeline(tmp_path, items, spec, kill_when=lambda: len(server.ledger()["batches"]) >= 1)
    assert code == -signal.SIGKILL and cached_rows(tmp_path / "cache.sqlite") == 0
    (tmp_path / "items.parquet").unlink()
    assert run_pipeline(tmp_path, items.iloc[:40], spec) == 0          # resumes the 120-request batch
    assert cached_rows(tmp_path / "cache.sqlite") == 120
    (tmp_path / "items.parquet").unlink()
    assert run_pipeline(tmp_path, items, spec) == 0
    check_resumed_run(server, tmp_path, items, n_batches=1)


def test_batch_killed_before_saving_its_batch_id_finds_it_by_metadata(start_server: Any, tmp_path: Path) -> None:
    """The batch exists on the server but the process died before it could persist the id."""
    server = start_server(seed=7, batch_seconds=0.3, batch_create_delay=1.5)
    items = synthetic_items(80, seed=7)
    spec = {"kind": "openai_batch", "model": MODEL, "prompt": "two_question", "base_url": server.base_url,
            "poll_interval": 0.1}
    code = run_pipeline(tmp_path, items, spec, kill_when=lambda: len(server.ledger()["batches"]) >= 1)
    assert code == -signal.SIGKILL
    assert run_pipeline(tmp_path, items, spec) == 0
    check_resumed_run(server, tmp_path, items, n_batches=1)
    assert "found batch" in (tmp_path / "driver.log").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not GAHD.exists(), reason=f"GAHD not found at {GAHD}")
def test_gahd_11k_items_through_batches_survive_sigkill(start_server: Any, tmp_path: Path) -> None:
    """All 10,996 GAHD items via openai_batch; SIGKILL midway; rerun: once each, cost = ledger."""
    gahd = pd.read_csv(GAHD, usecols=["gahd_id", "text"])
    items = pd.DataFrame({"id": gahd["gahd_id"].astype(str), "text": gahd["text"].astype(str)})
    assert len(items) == 10_996
    server = start_server(seed=8, batch_seconds=1.2, rate_malformed=0.05)
    spec = {"kind": "openai_batch", "model": MODEL, "prompt": "two_question", "base_url": server.base_url,
            "poll_interval": 0.2, "max_requests_per_batch": 2000}
    started = time.monotonic()
    cache = tmp_path / "cache.sqlite"
    code = run_pipeline(tmp_path, items, spec, kill_when=lambda: cached_rows(cache) >= 4000, timeout=180)
    assert code == -signal.SIGKILL
    assert 4000 <= cached_rows(cache) < len(items)
    assert run_pipeline(tmp_path, items, spec, timeout=180) == 0
    elapsed = time.monotonic() - started
    n_chunks = -(-len(set(item_custom_ids(items).values())) // 2000)
    check_resumed_run(server, tmp_path, items, n_batches=n_chunks)
    print(f"GAHD 11k batch run with SIGKILL and resume: {elapsed:.1f} s")
