"""What the provider bills against what llmal reports, under faults and SIGKILLs (issue 17).

A batch is never created twice: the server answers 500 to 30 % of batch creates and uploads
*after* making them, and the annotating process is killed right after a create returns, before
it records the batch id; after the rerun the server billed every request exactly once, and each
row of the annotation table costs what the server billed for its request.

Online runs under 429/500, slow answers (client timeouts), cut-off 200 bodies and SIGKILLs while
requests are in flight: each run's answered requests plus its `maybe_billed` are at least what
the server billed for it, and a run that was never killed reports exactly its own extra bills,
none of the killed run's, although it shared the response cache with it.

In the cache: a killed attempt's unanswered requests count for its own run once per report,
stay recorded until a report is written, and a cache from before labels keeps its answers.
"""
from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_openai_executors import (
    MODEL,  # noqa: F401
    PRICES,
    check_resumed_run,
    collect,
    item_custom_ids,
    request_lines,
    run_pipeline,
    start_server,
    synthetic_items,
)

from llmal.llm.cache import ResponseCache
from llmal.llm.cost import price_for
from llmal.llm.executors.base import ok_line
from llmal.llm.executors.openai_online import OpenAIOnlineExecutor
from llmal.llm.fetch import LLMRunStats, count_unanswered, send_once, settle_after_report
from llmal.llm.inflight import InFlight

ONLINE_FAULTS = dict(rate_429=0.1, rate_500=0.1, retry_after=0.01, rate_slow=0.1, slow_seconds=0.8,
                     rate_cutoff=0.12, transient_attempts=2)


def batch_spec(server: Any) -> dict[str, Any]:
    """Batches of 20 requests, polled fast."""
    return {"kind": "openai_batch", "model": MODEL, "prompt": "two_question", "base_url": server.base_url,
            "poll_interval": 0.05, "max_requests_per_batch": 20}


def billed_per_request(billed: list[dict[str, Any]], cids: set[str]) -> Counter:
    return Counter(e["body_hash"] for e in billed if e["body_hash"] in cids)


def test_batch_creates_answered_500_and_a_kill_after_create_bill_each_request_once(
        start_server: Any, tmp_path: Path) -> None:
    server = start_server(seed=23, batch_seconds=0.1, batch_create_rate_500=0.3, upload_rate_500=0.3)
    items = synthetic_items(200, seed=23)
    spec = batch_spec(server)
    assert run_pipeline(tmp_path, items, spec, kill_after=("batches", 4)) == -signal.SIGKILL
    assert not (tmp_path / "table.parquet").exists()
    assert run_pipeline(tmp_path, items, spec) == 0

    ledger = server.ledger()
    faults = Counter(f["fault"] for f in ledger["faults"])
    print(f"{len(ledger['batches'])} batches for 10 chunks, {len(ledger['billed'])} bills for "
          f"{len(set(item_custom_ids(items).values()))} requests, faults {dict(faults)}")
    assert faults["create_500"] >= 3 and faults["upload_500"] >= 2, faults
    check_resumed_run(server, tmp_path, items, n_batches=10)   # each request in one batch, billed once
    uploads = Counter(f["filename"] for f in ledger["files"] if f["purpose"] == "batch")
    assert len(uploads) == 10 and set(uploads.values()) == {1}, "an input file was uploaded twice"
    # request by request: a row costs what the server billed for its request, nothing is unbilled
    price = price_for(MODEL, "openai_batch", PRICES)
    bill = {e["custom_id"]: price.cost(e["usage"]["prompt_tokens"], e["usage"]["completion_tokens"],
                                       e["usage"]["prompt_tokens_details"]["cached_tokens"], batch=True)
            for e in ledger["billed"]}
    table = pd.read_parquet(tmp_path / "table.parquet")
    cids = item_custom_ids(items)
    assert {cids[i] for i in table["id"]} == set(bill)
    for row in table.itertuples():
        assert row.cost_usd == pytest.approx(bill[cids[row.id]], rel=1e-12), row
    assert table.attrs["llm"]["maybe_billed"] == 0
    log = (tmp_path / "driver.log").read_text()
    assert "found batch" in log and "looking it up on the server" in log


def test_batch_killed_between_upload_and_recording_it_finds_its_file(start_server: Any, tmp_path: Path) -> None:
    """Killed right after an upload returned: the rerun submits that chunk under its own key,
    with the file it finds by name; nothing is uploaded or billed twice."""
    server = start_server(seed=5, batch_seconds=0.1)
    items = synthetic_items(60, seed=5)
    spec = batch_spec(server)
    assert run_pipeline(tmp_path, items, spec, kill_after=("files", 2)) == -signal.SIGKILL
    assert len(server.ledger()["batches"]) == 1
    assert run_pipeline(tmp_path, items, spec) == 0
    check_resumed_run(server, tmp_path, items, n_batches=3)
    uploads = Counter(f["filename"] for f in server.ledger()["files"] if f["purpose"] == "batch")
    assert len(uploads) == 3 and set(uploads.values()) == {1}
    assert "submitting it now" in (tmp_path / "driver.log").read_text()


def test_a_server_that_cannot_list_files_gets_a_failed_upload_again(start_server: Any, tmp_path: Path) -> None:
    server = start_server(seed=23, batch_seconds=0.1, upload_rate_500=0.3, no_file_list=1)
    items = synthetic_items(60, seed=23)
    spec = batch_spec(server)
    assert run_pipeline(tmp_path, items, spec) == 0
    check_resumed_run(server, tmp_path, items, n_batches=3)
    ledger = server.ledger()
    failed_uploads = sum(f["fault"] == "upload_500" for f in ledger["faults"])
    uploads = Counter(f["filename"] for f in ledger["files"] if f["purpose"] == "batch")
    assert failed_uploads and len(uploads) == 3 and sum(uploads.values()) == 3 + failed_uploads


def arrived(server: Any, cids: set[str]) -> int:
    return sum(a["body_hash"] in cids for a in server.ledger()["arrivals"])


def test_each_online_run_reports_its_own_extra_bills_across_kills(start_server: Any, tmp_path: Path) -> None:
    server = start_server(seed=23, **ONLINE_FAULTS)
    spec = {"kind": "openai", "model": MODEL, "prompt": "two_question", "base_url": server.base_url,
            "concurrency": 6, "timeout": 0.4, "backoff_base": 0.01, "backoff_max": 0.05, "max_retries": 8}
    runs = {"A": synthetic_items(60, seed=31), "B": synthetic_items(60, seed=32)}
    cids = {run: set(item_custom_ids(items).values()) for run, items in runs.items()}
    assert not cids["A"] & cids["B"]
    # run A is killed twice while requests are in flight; run B runs in between on the same cache
    assert run_pipeline(tmp_path, runs["A"], spec, run="A",
                        kill_when=lambda: arrived(server, cids["A"]) >= 20) == -signal.SIGKILL
    assert run_pipeline(tmp_path, runs["B"], spec, run="B") == 0
    assert run_pipeline(tmp_path, runs["A"], spec, run="A",
                        kill_when=lambda: arrived(server, cids["A"]) >= 45) == -signal.SIGKILL
    assert not (tmp_path / "tableA.parquet").exists()
    assert run_pipeline(tmp_path, runs["A"], spec, run="A") == 0
    time.sleep(ONLINE_FAULTS["slow_seconds"] + 0.3)     # slow answers of killed attempts get billed

    ledger = server.ledger()
    faults = Counter(f["fault"] for f in ledger["faults"])
    assert faults["cutoff"] >= 4 and faults["slow"] >= 4 and faults["429"] and faults["500"], faults
    report = {}
    for run in runs:
        table = pd.read_parquet(tmp_path / f"table{run}.parquet")
        answered = set(table.loc[table["status"] != "failed", "request_id"])
        bill = billed_per_request(ledger["billed"], cids[run])
        assert set(bill) == answered                      # every billed request is in the table
        stats = table.attrs["llm"]
        report[run] = (len(answered), stats["maybe_billed"], sum(bill.values()), stats)
        print(f"run {run}: {len(answered)} answered + {stats['maybe_billed']} maybe billed "
              f"({stats['maybe_billed_timeouts']} timeouts, {stats.get('billed_unreadable', 0)} unreadable, "
              f"{stats['maybe_billed_lost_in_flight']} in flight at a kill) vs {sum(bill.values())} billed")
        assert len(answered) + stats["maybe_billed"] >= sum(bill.values()), (run, report[run])
    # the run never killed reports its own extra bills exactly: nothing of A's
    n_b, maybe_b, bill_b, stats_b = report["B"]
    assert n_b + maybe_b == bill_b and stats_b["maybe_billed_lost_in_flight"] == 0, report["B"]
    assert stats_b["billed_unreadable"] > 0 and stats_b["maybe_billed_timeouts"] > 0
    # A's report holds what its killed attempts left in flight
    assert report["A"][3]["maybe_billed_lost_in_flight"] > 0, report["A"]
    with ResponseCache(tmp_path / "cache.sqlite") as cache:   # reported, so settled
        assert not cache.unanswered("stateA") and not cache.unanswered("stateB")
    print({run: r[:3] for run, r in report.items()})


# ---------------------------------------------------------------------- the cache's records
BACKEND = "openai http://127.0.0.1:1/v1"


def dead_attempt(cache: ResponseCache, label: str, sent: list[str], answered: list[str] = ()) -> None:
    """What a job of run `label` killed with `sent` in flight leaves (some of them answered)."""
    owner = f"otherhost:1:{label}"
    cache.register(owner, label)
    cache.reserve(sent, BACKEND, owner)
    cache.mark_sent(sent, BACKEND, owner)
    for cid in answered:
        cache.put(ok_line(cid, {"choices": []}), BACKEND)
    with cache._transaction() as db:
        db.execute("UPDATE owners SET heartbeat = 0 WHERE owner = ?", (owner,))   # stopped beating


def test_a_killed_attempts_unanswered_requests_count_for_its_own_run_once(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        dead_attempt(cache, "runs/x", ["a", "b", "c"], answered=["c"])     # c reached the cache
        cache.record_unanswered("runs/x", BACKEND, "unreadable")
        other = LLMRunStats()
        count_unanswered(cache, "runs/y", other)          # another run sees the dead job first
        assert other.maybe_billed == 0 and cache.lost_in_flight == 2
        # the rerun of x, as an AL run: several calls inside one report, then killed before it
        for _ in range(2):
            with pytest.raises(RuntimeError), settle_after_report():
                calls = [LLMRunStats(), LLMRunStats()]
                for stats in calls:
                    count_unanswered(cache, "runs/x", stats)
                assert [s.maybe_billed for s in calls] == [3, 0]      # once per report
                raise RuntimeError("killed before run.json")
        with settle_after_report():                      # the rerun that writes its report
            stats = LLMRunStats()
            count_unanswered(cache, "runs/x", stats)
        assert (stats.maybe_billed_lost_in_flight, stats.billed_unreadable, stats.maybe_billed) == (2, 1, 3)
        assert cache.unanswered("runs/x") == {}           # settled once reported
        again = LLMRunStats()
        count_unanswered(cache, "runs/x", again)          # outside a block: settled by the call
        assert again.maybe_billed == 0


def test_a_cache_from_before_labels_keeps_its_answers(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE answers (backend TEXT NOT NULL, custom_id TEXT NOT NULL, line TEXT NOT NULL,
                                  stored_at REAL NOT NULL, PRIMARY KEY (backend, custom_id));
            CREATE TABLE inflight (backend TEXT NOT NULL, custom_id TEXT NOT NULL, owner TEXT NOT NULL,
                                   sent INTEGER NOT NULL DEFAULT 0, since REAL NOT NULL,
                                   PRIMARY KEY (backend, custom_id));
            CREATE TABLE owners (owner TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
                                 heartbeat REAL NOT NULL);
            INSERT INTO owners VALUES ('old:1:x', 'old', 1, 0);
            INSERT INTO inflight VALUES ('b', 'q', 'old:1:x', 1, 0);
        """)
        db.execute("INSERT INTO answers VALUES (?, 'a', ?, 0)", (BACKEND, json.dumps(ok_line("a", {"x": 1}))))
    with ResponseCache(path) as cache:
        assert cache.get_many(["a"], BACKEND)["a"].line["response"]["body"] == {"x": 1}
        assert cache.unanswered("batches/gpt") == {}      # an unlabelled job's count goes to no run
        cache.register("new:1:y", "batches/gpt")
    with ResponseCache(path) as cache:
        assert len(cache) == 1 and cache.integrity_ok()


def test_a_request_another_job_answered_after_this_job_read_the_cache_is_not_sent_again(start_server, tmp_path):
    """Job B reads the cache (nothing there), job A then answers the same requests and lets go
    of them, and only then does B reserve them: B must read the cache again under its
    reservation and send nothing (it sent all of them again before: 7 double bills in a
    two-seed NER run under cache_mode network)."""
    server = start_server()
    spec = {"kind": "openai", "model": MODEL, "base_url": server.base_url, "max_retries": 0}
    lines = request_lines(6)
    backend = "openai test"
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        first = collect(OpenAIOnlineExecutor(spec), lines[:4])      # job A, which then lets go
        cache.put_many([got[0] for got in first.values()], backend)
        billed_before = len(server.ledger()["billed"])
        stats, cached, fresh = LLMRunStats(), {}, {}                # job B read the cache before A
        with InFlight(cache, backend, log=lambda m: None) as flight:
            send_once(OpenAIOnlineExecutor(spec), lines, cache, backend, flight, cached, fresh, stats,
                      lambda m: None)
    billed = Counter(b["body_hash"] for b in server.ledger()["billed"])
    assert billed_before == 4 and len(billed) == 6 and set(billed.values()) == {1}   # each billed once
    assert set(cached) == {line["custom_id"] for line in lines[:4]} and set(fresh) == {
        line["custom_id"] for line in lines[4:]}
    assert stats.sent == 2 and stats.waited == 4
