"""Lazy LLM annotation through the real DAG: an AL condition asks the LLM about the items it
queries and nothing else, one call (one Batch API batch) per round, and what the server billed
equals the run's ledger, also across a SIGKILL of Snakemake mid-round and a rerun."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import ROOT, snakemake, tiny_config, write_config
from openai_server import Faults, read_ledger_file, start_subprocess
from test_workflow_llm import PRICES, group_gone, ledger_cost, snakemake_cmd

from llmal.llm.cache import ResponseCache

RUN = "results/lazy/runs/{cond}/tfidf/seed0"
SCHEDULE = {"initial": 40, "batch": 40, "rounds": 8}


def lazy_config(work: Path, base_url: str, kind: str, model: str, **extra: Any) -> dict[str, Any]:
    config = tiny_config(dataset={"name": "lazy", "kind": "demo", "n_items": 1000, "seed": 3})
    config["annotators"] = {"llm": {"kind": kind, "model": model, "prompt": "two_question",
                                    "base_url": base_url, **extra}}
    config["prices"] = PRICES
    config["al"] = dict(SCHEDULE)
    config["conditions"] = {"llm_al": {"annotator": "llm", "sampler": "entropy"}}
    config["seeds"] = [0]
    write_config(work, config)
    return config


def bought(work: Path, cond: str = "llm_al") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    run = work / RUN.format(cond=cond)
    items = pd.read_parquet(work / "results" / "lazy" / "data" / "items.parquet").set_index("id")
    return pd.read_parquet(run / "ledger.parquet"), pd.read_csv(run / "rounds.csv"), items


def check_bill(work: Path, billed: list[dict[str, Any]], model: str, kind: str) -> pd.DataFrame:
    """Requests billed = the distinct texts of the items bought (initial + rounds x batch + dev),
    each billed once, and the bill priced = the ledger's total = cost_total of the last round."""
    ledger, rounds, items = bought(work)
    dev = ledger[ledger["purpose"] == "dev"]
    n_dev = int((pd.read_parquet(work / "results" / "lazy" / "data" / "split.parquet")["split"] == "dev").sum())
    assert len(dev) == n_dev > 0
    train = ledger[ledger["purpose"].isin(["initial", "al"])]
    assert len(train) == SCHEDULE["initial"] + SCHEDULE["rounds"] * SCHEDULE["batch"]
    assert ledger["id"].is_unique
    texts = items.loc[ledger["id"], "text"]
    mine = [e for e in billed if e["model"] == model]
    assert Counter(e["body_hash"] for e in mine).most_common(1)[0][1] == 1      # nothing twice
    assert len(mine) == texts.nunique()        # duplicate texts share one request, sent once
    assert ledger["cost_usd"].sum() == pytest.approx(ledger_cost(billed, model, kind), rel=1e-9)
    assert rounds["cost_total"].iloc[-1] == pytest.approx(ledger["cost_usd"].sum(), rel=1e-12)
    print(f"{kind}: {len(train)} training + {len(dev)} dev labels -> {len(mine)} requests billed, "
          f"ledger ${ledger['cost_usd'].sum():.6f}")
    return ledger


def test_lazy_openai_condition_sends_only_what_it_queries(tmp_path: Path) -> None:
    server_dir = tmp_path / "server"
    process, base_url = start_subprocess(server_dir, Faults(seed=5, rate_429=0.05, retry_after=0.01,
                                                            rate_malformed=0.03))
    try:
        work = tmp_path / "work"
        lazy_config(work, base_url, "openai", "gpt-test-online", concurrency=4, backoff_base=0.01)
        snakemake(work, RUN.format(cond="llm_al") + "/run.json", env_extra={"OPENAI_API_KEY": "sk-test"})
        billed = read_ledger_file(server_dir)
        ledger = check_bill(work, billed, "gpt-test-online", "openai")
        pool = pd.read_parquet(work / "results" / "lazy" / "data" / "split.parquet")
        assert (pool["split"] == "pool").sum() > len(ledger)     # most of the pool was never sent
        assert not (work / "results" / "lazy" / "annotations" / "llm.parquet").exists()
        # a rerun (results deleted) pays nothing: every answer is cached
        (work / RUN.format(cond="llm_al") / "run.json").unlink()
        snakemake(work, RUN.format(cond="llm_al") + "/run.json", env_extra={"OPENAI_API_KEY": "sk-test"})
        assert read_ledger_file(server_dir) == billed
        again, _, _ = bought(work)
        pd.testing.assert_frame_equal(again, ledger)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_lazy_batch_condition_one_batch_per_round_and_nothing_twice_after_sigkill(tmp_path: Path) -> None:
    server_dir = tmp_path / "server"
    process, base_url = start_subprocess(server_dir, Faults(seed=6, batch_seconds=1.5))
    try:
        work = tmp_path / "work"
        lazy_config(work, base_url, "openai_batch", "gpt-test-batch", poll_interval=0.05)
        target = RUN.format(cond="llm_al") + "/run.json"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OPENAI_API_KEY="sk-test")
        with open(tmp_path / "killed.out", "w") as out:
            snake = subprocess.Popen(snakemake_cmd(work, target), stdout=out, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
            try:
                deadline = time.monotonic() + 240
                while snake.poll() is None and time.monotonic() < deadline:
                    if len({e["batch_id"] for e in read_ledger_file(server_dir)}) >= 4:
                        break          # the 4th round's batch is being answered
                    time.sleep(0.05)
                assert snake.poll() is None, (tmp_path / "killed.out").read_text()[-3000:]
                os.killpg(snake.pid, signal.SIGKILL)
            finally:
                if snake.poll() is None:
                    os.killpg(snake.pid, signal.SIGKILL)
                snake.wait()
        assert group_gone(snake.pid)
        assert not (work / target).exists()
        n_at_kill = len(read_ledger_file(server_dir))
        snakemake(work, "--unlock")
        snakemake(work, target, env_extra={"OPENAI_API_KEY": "sk-test"})
        billed = read_ledger_file(server_dir)
        assert len(billed) > n_at_kill
        check_bill(work, billed, "gpt-test-batch", "openai_batch")
        batches = Counter(e["batch_id"] for e in billed)
        assert len(batches) == 1 + SCHEDULE["rounds"]          # round 0 (dev + initial), then one per round
        log = (work / RUN.format(cond="llm_al") / "log.txt").read_text()
        assert "resuming" in log or "adopt" in log.lower(), log[-2000:]
    finally:
        process.terminate()
        process.wait(timeout=10)


def answered_requests(work: Path, cond: str, source: str) -> int:
    """Requests the run's ledger paid for: distinct texts among its answered labels."""
    ledger, _, items = bought(work, cond)
    mine = ledger[(ledger["source"] == source) & (ledger["status"] != "failed")]
    return int(items.loc[mine["id"], "text"].nunique())


def test_lazy_runs_report_their_own_maybe_billed_in_run_json_across_two_sigkills(tmp_path: Path) -> None:
    """One lazy online run on a server with 429/500, slow answers past the client's timeout and
    cut-off 200s is killed twice (the whole Snakemake group) with requests in flight; another run,
    on a server without faults, then runs on the same cache before the first is rerun. Each
    run.json's llm_maybe_billed + the requests its ledger paid >= what its server billed; the
    second run's is exactly 0, none of the first run's in-flight requests."""
    faulty_dir, clean_dir = tmp_path / "faulty", tmp_path / "clean"
    faulty, faulty_url = start_subprocess(faulty_dir, Faults(
        seed=11, rate_429=0.1, rate_500=0.1, retry_after=0.01, rate_slow=0.15, slow_seconds=0.8,
        rate_cutoff=0.1))
    clean, clean_url = start_subprocess(clean_dir, Faults(seed=12))
    try:
        work = tmp_path / "work"
        config = lazy_config(work, faulty_url, "openai", "gpt-test-online", concurrency=4, timeout=0.4,
                             backoff_base=0.01, backoff_max=0.05, max_retries=8)
        config["annotators"]["clean"] = {**config["annotators"]["llm"], "base_url": clean_url}
        config["conditions"]["clean_al"] = {"annotator": "clean", "sampler": "entropy"}
        config["al"] = {"initial": 30, "batch": 30, "rounds": 4}
        write_config(work, config)
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OPENAI_API_KEY="sk-test")
        target = {cond: RUN.format(cond=cond) + "/run.json" for cond in ("llm_al", "clean_al")}
        for kill_at in (25, 70):         # bills of the faulty run's server when Snakemake is killed
            with open(tmp_path / "killed.out", "a") as out:
                snake = subprocess.Popen(snakemake_cmd(work, target["llm_al"]), stdout=out,
                                         stderr=subprocess.STDOUT, env=env, start_new_session=True)
                try:
                    deadline = time.monotonic() + 120
                    while snake.poll() is None and time.monotonic() < deadline:
                        if len(read_ledger_file(faulty_dir)) >= kill_at:
                            break
                        time.sleep(0.02)
                    assert snake.poll() is None, (tmp_path / "killed.out").read_text()[-3000:]
                finally:
                    os.killpg(snake.pid, signal.SIGKILL)
                    snake.wait()
            assert group_gone(snake.pid) and not (work / target["llm_al"]).exists()
            snakemake(work, "--unlock")
        snakemake(work, target["clean_al"], env_extra={"OPENAI_API_KEY": "sk-test"})
        snakemake(work, target["llm_al"], env_extra={"OPENAI_API_KEY": "sk-test"})
        time.sleep(1.2)                         # slow answers of the killed attempts get billed
        report = {}
        for cond, source, server_dir in (("llm_al", "llm", faulty_dir), ("clean_al", "clean", clean_dir)):
            run = json.loads((work / RUN.format(cond=cond) / "run.json").read_text())
            report[cond] = (answered_requests(work, cond, source), run["llm_maybe_billed"],
                            len(read_ledger_file(server_dir)))
        print(report)
        paid, maybe, bill = report["llm_al"]
        assert paid + maybe >= bill > paid and maybe > 0, report
        assert report["clean_al"][1] == 0 and report["clean_al"][0] == report["clean_al"][2], report
        with ResponseCache(work / ".llmal-cache" / "responses.sqlite") as cache:
            assert not cache.unanswered("batches/runs/lazy/llm_al/tfidf/seed0/llm")   # settled
    finally:
        for process in (faulty, clean):
            process.terminate()
            process.wait(timeout=10)
