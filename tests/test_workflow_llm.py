"""Real Snakemake runs of the DAG with LLM annotators: the OpenAI-compatible test server
(tests/openai_server.py, a subprocess) behind `openai` and `openai_batch` annotators, and the
packaged SmolLM2 GGUF behind a `local` one.

What is checked: labels equal the server's deterministic answers, costs equal what the server
billed priced with the config's `prices`, a rerun (even after deleting results/) bills nothing
because the response cache lives under `cache_dir`, a Snakemake killed with SIGKILL mid-batch
resumes without paying twice, and the API key never reaches a file or log.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pytest
from conftest import GAHD, ROOT, snakemake, tiny_config, write_config
from openai_server import Faults, expected_answer, read_ledger_file, start_subprocess

from llmal.annotate.run import items_to_annotate
from llmal.contracts import annotation_cost
from llmal.llm.cache import ResponseCache
from llmal.llm.cost import price_for
from llmal.llm.prompts import load_prompt
from llmal.llm.requests import build_requests

PROMPTS = ROOT / "config" / "prompts"
LABELS = ["not_hostile", "hostile"]
POSITIVE = "hostile"
PRICES = {"gpt-test-online": {"input": 0.15, "cached_input": 0.075, "output": 0.60},
          "gpt-test-batch": {"input": 2.50, "cached_input": 1.25, "output": 10.0, "batch_discount": 0.5}}
SECRET = "sk-llmal-TEST-5ecret-c0ffee-0123456789"
KEY_ENV = "LLMAL_WORKFLOW_TEST_KEY"


# ---------------------------------------------------------------------- helpers
class Server:
    """The test server as a subprocess; its ledger file is the bill."""

    def __init__(self, state_dir: Path, faults: Faults) -> None:
        self.state_dir = state_dir
        self.process, self.base_url = start_subprocess(state_dir, faults)

    def billed(self) -> list[dict[str, Any]]:
        return read_ledger_file(self.state_dir)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def ledger_cost(entries: list[dict[str, Any]], model: str, kind: str) -> float:
    price = price_for(model, kind, PRICES)
    return sum(price.cost(e["usage"]["prompt_tokens"], e["usage"]["completion_tokens"],
                          e["usage"]["prompt_tokens_details"]["cached_tokens"], batch=kind == "openai_batch")
               for e in entries if e["model"] == model)


def request_plan(work: Path, dataset: str, spec: dict[str, Any]):
    """The requests the annotate rule builds for `spec` (same items, same bodies)."""
    data = work / "results" / dataset / "data"
    todo = items_to_annotate(pd.read_parquet(data / "items.parquet"), pd.read_parquet(data / "split.parquet"), spec)
    template = load_prompt(spec["prompt"], PROMPTS)
    return template, build_requests(todo, template, spec, LABELS, POSITIVE)


def check_against_server(work: Path, dataset: str, name: str, spec: dict[str, Any],
                         billed: list[dict[str, Any]]) -> pd.DataFrame:
    """Every item annotated once; ok rows carry the server's answer, malformed answers are invalid."""
    table = pd.read_parquet(work / "results" / dataset / "annotations" / f"{name}.parquet")
    template, plan = request_plan(work, dataset, spec)
    assert table["id"].is_unique and sorted(table["id"]) == sorted(plan.item_ids)
    bodies = {line["custom_id"]: line["body"] for line in plan.lines}
    mine = [e for e in billed if e["model"] == spec["model"]]
    malformed = {e["body_hash"] for e in mine if e["malformed"]}
    cid_of = dict(zip(plan.item_ids, plan.custom_ids))
    assert set(table["status"]) <= {"ok", "invalid"}
    for row in table.itertuples():
        cid = cid_of[row.id]
        if cid in malformed:
            assert row.status == "invalid" and pd.isna(row.label), row
        else:
            assert row.status == "ok", row
            assert row.label == template.label_of(expected_answer(bodies[cid]), LABELS, POSITIVE), row
    assert (table["status"] == "invalid").sum() == sum(cid_of[i] in malformed for i in table["id"])
    assert {e["body_hash"] for e in mine} == set(bodies)                  # each request billed ...
    assert set(Counter(e["body_hash"] for e in mine).values()) == {1}     # ... exactly once
    assert annotation_cost(table) == pytest.approx(ledger_cost(billed, spec["model"], spec["kind"]), rel=1e-9)
    return table


# ---------------------------------------------------------------------- openai + openai_batch
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Server, dict[str, Any], str]]:
    """The tiny grid with an `openai` and an `openai_batch` annotator, run once through the DAG.

    The server wants the key from KEY_ENV, which holds a secret-looking value (test d)."""
    base = tmp_path_factory.mktemp("llm_dag")
    server = Server(base / "server", Faults(seed=21, rate_malformed=0.05, rate_429=0.05, retry_after=0.01,
                                            batch_seconds=0.2, api_key=SECRET))
    work = base / "work"
    config = tiny_config()
    common = {"prompt": "two_question", "base_url": server.base_url, "api_key_env": KEY_ENV}
    config["annotators"] = {
        "gpt": {"kind": "openai", "model": "gpt-test-online", **common, "concurrency": 4, "backoff_base": 0.01},
        "gptbatch": {"kind": "openai_batch", "model": "gpt-test-batch", **common, "poll_interval": 0.05,
                     "max_requests_per_batch": 120},
    }
    config["prices"] = PRICES
    # precomputed: the whole pool is annotated up front and replayed (the lazy path, asking about
    # queried items only, is tests/test_workflow_lazy.py)
    config["conditions"] = {"gpt_full": {"annotator": "gpt", "sampler": "full", "annotation": "precomputed"},
                            "gptbatch_al": {"annotator": "gptbatch", "sampler": "entropy",
                                            "annotation": "precomputed"}}
    config["seeds"] = [0]
    write_config(work, config)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(KEY_ENV, SECRET)
            started = time.monotonic()
            result = snakemake(work)
            print(f"LLM DAG (openai + openai_batch) first run: {time.monotonic() - started:.1f} s")
        (work / "snakemake-first-run.out").write_text(result.stdout + result.stderr)
        yield work, server, config, result.stdout + result.stderr
    finally:
        server.stop()


def test_llm_annotators_run_through_the_dag_at_the_billed_cost(served: Any) -> None:
    work, server, config, _ = served
    res = work / "results" / "tiny"
    billed = server.billed()
    gpt = check_against_server(work, "tiny", "gpt", config["annotators"]["gpt"], billed)
    batch = check_against_server(work, "tiny", "gptbatch", config["annotators"]["gptbatch"], billed)
    assert (gpt["status"] == "invalid").any() or (batch["status"] == "invalid").any()
    assert {e["kind"] for e in billed if e["model"] == "gpt-test-batch"} == {"batch"}
    assert {e["kind"] for e in billed if e["model"] == "gpt-test-online"} == {"chat"}
    for cond, rounds in (("gpt_full", 1), ("gptbatch_al", 3)):
        run_dir = res / "runs" / cond / "tfidf" / "seed0"
        assert len(pd.read_csv(run_dir / "rounds.csv")) == rounds
        assert (run_dir / "run.json").exists() and (run_dir / "predictions.parquet").exists()
    summary = pd.read_csv(res / "tables" / "summary.csv")
    assert set(summary["condition"]) == {"gpt_full", "gptbatch_al"}
    assert (res / "report.html").stat().st_size > 1000
    cache_dir = work / ".llmal-cache"
    assert (cache_dir / "responses.sqlite").exists() and (cache_dir / "batches" / "gptbatch").is_dir()


def test_api_key_never_reaches_files_or_logs(served: Any) -> None:
    work, server, _, output = served
    assert server.billed(), "the server answered, so the key was sent"
    assert SECRET not in output
    secret = SECRET.encode()
    scanned = 0
    for root in (work / "results", work / ".llmal-cache", work / ".snakemake", work):
        for path in (root.rglob("*") if root != work else root.glob("*")):
            if path.is_file():
                assert secret not in path.read_bytes(), f"the API key leaked into {path}"
                scanned += 1
    # runs before the rerun test deletes results/: every file of the first run is scanned
    assert (work / "results" / "tiny" / "report.html").exists()
    logs = list((work / ".snakemake" / "log").glob("*.snakemake.log"))
    assert logs and scanned > 30


def test_rerun_after_deleting_results_bills_nothing(served: Any) -> None:
    work, server, _, _ = served
    res = work / "results" / "tiny"
    before = server.billed()
    tables = {n: pd.read_parquet(res / "annotations" / f"{n}.parquet") for n in ("gpt", "gptbatch")}
    shutil.rmtree(work / "results")
    targets = [f"results/tiny/annotations/{n}.parquet" for n in tables]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, SECRET)
        snakemake(work, *targets)
    assert server.billed() == before
    for name, table in tables.items():
        pd.testing.assert_frame_equal(pd.read_parquet(res / "annotations" / f"{name}.parquet"), table)
        log = (res / "logs" / "annotate" / f"{name}.log").read_text()
        assert re.search(r"\b(\d+) distinct requests, \1 cached, 0 to send", log), log


# ---------------------------------------------------------------------- local GGUF
def test_local_gguf_annotator_through_the_dag(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    config = tiny_config()
    config["annotators"] = {"smollm": {"kind": "local", "model": "smollm2-135m-instruct-gguf",
                                       "prompt": "two_question", "limit": 8, "max_tokens": 32, "n_ctx": 1024}}
    schedule = {"initial": 4, "batch": 2, "rounds": 1}
    config["conditions"] = {"smollm_random": {"annotator": "smollm", "sampler": "random", "al": schedule,
                                              "annotation": "precomputed"},
                            "smollm_lazy": {"annotator": "smollm", "sampler": "random", "al": schedule}}
    config["seeds"] = [0]
    write_config(tmp_path, config)
    started = time.monotonic()
    run_json = "results/tiny/runs/smollm_random/tfidf/seed0/run.json"
    snakemake(tmp_path, run_json)
    print(f"local GGUF through the DAG: {time.monotonic() - started:.1f} s")
    res = tmp_path / "results" / "tiny"
    table = pd.read_parquet(res / "annotations" / "smollm.parquet")
    assert len(table) == 8 and table["id"].is_unique
    assert set(table["status"]) <= {"ok", "invalid"}
    assert (table["status"] == "ok").any()
    assert set(table.loc[table["status"] == "ok", "label"]) <= {0, 1}
    assert set(table["model"]) == {"smollm2-135m-instruct-gguf"} and (table["cost_usd"] == 0).all()
    queried = pd.read_parquet(res / "runs" / "smollm_random" / "tfidf" / "seed0" / "queried.parquet")
    split = pd.read_parquet(res / "data" / "split.parquet")
    annotated_pool = set(table["id"]) & set(split.loc[split["split"] == "pool", "id"])
    assert len(queried) > 0 and set(queried["id"]) <= annotated_pool     # pool = annotated items
    rounds = pd.read_csv(res / "runs" / "smollm_random" / "tfidf" / "seed0" / "rounds.csv")
    assert rounds["n_labels"].iloc[-1] == min(4 + 2, len(annotated_pool))
    with ResponseCache(tmp_path / ".llmal-cache" / "responses.sqlite") as cache:
        rows = len(cache)
    assert 0 < rows <= 8

    # the rerun finds every answer cached: the model is not even loaded
    (res / "annotations" / "smollm.parquet").unlink()
    snakemake(tmp_path, "results/tiny/annotations/smollm.parquet")
    log = (res / "logs" / "annotate" / "smollm.log").read_text()
    assert f"{rows} cached, 0 to send" in log, log
    with ResponseCache(tmp_path / ".llmal-cache" / "responses.sqlite") as cache:
        assert len(cache) == rows
    pd.testing.assert_frame_equal(pd.read_parquet(res / "annotations" / "smollm.parquet"), table)

    # a lazy condition of the same annotator shares the cache: what it queries is answered already
    snakemake(tmp_path, "results/tiny/runs/smollm_lazy/tfidf/seed0/run.json")
    log = (res / "runs" / "smollm_lazy" / "tfidf" / "seed0" / "log.txt").read_text()
    assert "0 to send" in log and not re.search(r"[1-9]\d* to send", log), log
    ledger = pd.read_parquet(res / "runs" / "smollm_lazy" / "tfidf" / "seed0" / "ledger.parquet")
    assert set(ledger["id"]) <= set(table["id"]) and len(ledger) >= 6
    with ResponseCache(tmp_path / ".llmal-cache" / "responses.sqlite") as cache:
        assert len(cache) == rows


# ---------------------------------------------------------------------- acceptance: GAHD, SIGKILL
def snakemake_cmd(work: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(work),
            "--configfile", str(work / "config.yaml"), "--cores", "2", *args]


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`, from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(stat.parent.name))
    return pids


def group_gone(pgid: int, timeout: float = 10.0) -> bool:
    """True once no live process of group `pgid` is left."""
    deadline = time.monotonic() + timeout
    while group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(not GAHD.exists(), reason=f"GAHD not found at {GAHD}")
def test_gahd_batch_annotation_survives_sigkill_of_snakemake(tmp_path: Path) -> None:
    """The issue's acceptance test through the real pipeline: every pool+dev GAHD item annotated
    once after a SIGKILL of the whole Snakemake process group mid-batch and a rerun; no request
    billed twice; total cost = the server's usage priced."""
    server = Server(tmp_path / "server", Faults(seed=31, batch_seconds=2.0, rate_malformed=0.03))
    try:
        work = tmp_path / "work"
        config = tiny_config(dataset={"name": "gahd", "kind": "gahd", "path": str(GAHD)})
        spec = {"kind": "openai_batch", "model": "gpt-test-batch", "prompt": "two_question",
                "base_url": server.base_url, "poll_interval": 0.1, "max_requests_per_batch": 1500}
        config["annotators"] = {"gptbatch": spec}
        config["prices"] = PRICES
        config["conditions"] = {"gptbatch_full": {"annotator": "gptbatch", "sampler": "full"}}
        config["seeds"] = [0]
        write_config(work, config)
        target = "results/gahd/annotations/gptbatch.parquet"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OPENAI_API_KEY="")
        started = time.monotonic()
        with open(tmp_path / "killed-run.out", "w") as out:
            process = subprocess.Popen(snakemake_cmd(work, target), stdout=out, stderr=subprocess.STDOUT,
                                       env=env, start_new_session=True)
            deadline = time.monotonic() + 120
            try:
                while process.poll() is None and time.monotonic() < deadline:
                    if len(server.billed()) >= 2000:
                        break
                    time.sleep(0.05)
                assert process.poll() is None, "snakemake ended before it could be killed: " + \
                    (tmp_path / "killed-run.out").read_text()[-3000:]
                n_at_kill = len(server.billed())
                assert len(group_members(process.pid)) >= 2       # snakemake and its annotate job
                os.killpg(process.pid, signal.SIGKILL)
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        assert process.returncode == -signal.SIGKILL
        assert group_gone(process.pid), "a process of the killed Snakemake (the annotate job) survived"
        assert not (work / target).exists()
        _, plan = request_plan(work, "gahd", spec)
        n_requests = len(plan.lines)
        assert 2000 <= n_at_kill < n_requests
        cache = work / ".llmal-cache" / "responses.sqlite"

        # a killed Snakemake leaves its lock behind: unlock, then run the same target again
        snakemake(work, "--unlock")
        snakemake(work, target)
        elapsed = time.monotonic() - started
        print(f"GAHD through Snakemake with SIGKILL and rerun: {elapsed:.1f} s")

        billed = server.billed()
        items = pd.read_parquet(work / "results" / "gahd" / "data" / "items.parquet")
        split = pd.read_parquet(work / "results" / "gahd" / "data" / "split.parquet")
        visible = set(split.loc[split["split"].isin(["pool", "dev"]), "id"])
        table = check_against_server(work, "gahd", "gptbatch", spec, billed)
        assert len(table) == len(visible) and set(table["id"]) == visible and len(items) > len(visible)
        assert Counter(e["custom_id"] for e in billed).most_common(1)[0][1] == 1
        assert len(billed) == n_requests
        log = (work / "results" / "gahd" / "logs" / "annotate" / "gptbatch.log").read_text()
        assert "resuming" in log
        with ResponseCache(cache) as responses:
            assert len(responses) == n_requests and responses.integrity_ok()
    finally:
        server.stop()


# ---------------------------------------------------------------------- outage, then a plain rerun
def test_rerun_after_a_server_outage_retries_exactly_the_failed_rows(tmp_path: Path) -> None:
    """A third of the requests fail (HTTP 500, retries exhausted) while the server is down for
    them; the next plain `snakemake` against the recovered server (same address) sends exactly
    those, and the one after has nothing to do. An LLM annotator that no condition uses (at an
    address where nothing listens) is declared only: it is never annotated."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outage = Server.__new__(Server)
    outage.state_dir = tmp_path / "outage"
    outage.process, outage.base_url = start_subprocess(outage.state_dir, Faults(seed=5, rate_fail=0.35), port=port)
    work = tmp_path / "work"
    config = tiny_config()
    config["annotators"]["gpt"] = {"kind": "openai", "model": "gpt-test-online", "prompt": "two_question",
                                   "base_url": outage.base_url, "max_retries": 1, "backoff_base": 0.01,
                                   "limit": 40, "api_key_env": KEY_ENV}
    config["annotators"]["unused"] = {"kind": "openai", "model": "gpt-test-online", "prompt": "holistic",
                                      "base_url": "http://127.0.0.1:9/v1", "api_key_env": KEY_ENV}
    config["prices"] = PRICES
    config["conditions"] = {"gpt_full": {"annotator": "gpt", "sampler": "full", "annotation": "precomputed"}}
    config["seeds"] = [0]
    write_config(work, config)
    table_path = work / "results" / "tiny" / "annotations" / "gpt.parquet"
    try:
        snakemake(work)
    finally:
        outage.stop()
    failed = pd.read_parquet(table_path).query("status == 'failed'")
    assert 5 <= len(failed) < 40 and not (table_path.parent / "unused.parquet").exists()
    _, plan = request_plan(work, "tiny", config["annotators"]["gpt"])
    failed_bodies = {cid for item, cid in zip(plan.item_ids, plan.custom_ids) if item in set(failed["id"])}
    assert {b["body_hash"] for b in outage.billed()}.isdisjoint(failed_bodies)

    recovered = Server.__new__(Server)
    recovered.state_dir = tmp_path / "recovered"
    recovered.process, recovered.base_url = start_subprocess(recovered.state_dir, Faults(seed=5), port=port)
    try:
        snakemake(work)
        assert {b["body_hash"] for b in recovered.billed()} == failed_bodies   # exactly the failed rows
        assert len(recovered.billed()) == len(failed_bodies)
        assert (pd.read_parquet(table_path)["status"] == "ok").all()
        dry = snakemake(work, "-n")
        assert "Nothing to be done" in dry.stdout + dry.stderr
    finally:
        recovered.stop()
