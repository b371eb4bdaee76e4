"""task ner: `llmal plan` for the NER LLM annotators, and cache_mode on the NER annotate path,
both checked against the loopback server."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import yaml

from llmal.cli import main
from llmal.tasks.ner.data import prepare_ner
from llmal.tasks.registry import task_named

TYPES = ["PER", "ORG", "LOC", "DATE"]
PRICES = {"gpt-test": {"input": 1.0, "output": 2.0, "batch_discount": 0.5}}
DATASET = {"name": "plan_ner", "kind": "demo", "task": "ner", "n_items": 120, "seed": 2}
SPLIT = {"test": 0.2, "dev": 0.1, "seed": 0}


def _config(tmp_path: Path, base_url: str) -> Path:
    common = {"kind": "openai", "model": "gpt-test", "prompt": "ner", "base_url": base_url,
              "max_retries": 1, "backoff_base": 0.01}
    cfg = {"task": "ner", "dataset": DATASET, "labels": {"names": TYPES}, "split": SPLIT,
           "cache_dir": str(tmp_path / "cache"),
           "annotators": {"human": {"kind": "human", "mode": "gold"},
                          "pair": {**common, "sentences_per_prompt": 2},
                          "knn": {**common, "kind": "openai_batch", "limit": 40,
                                  "demonstrations": {"k": 2, "pool_size": 8}}},
           "agreement": {"annotators": ["pair"]},
           "encoders": {"tfidf": {"kind": "tfidf"}}, "recipes": {"crf": {"kind": "crf"}},
           "conditions": {"human_random": {"annotator": "human", "sampler": "random"}},
           "prices": PRICES, "seeds": [0]}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in out.splitlines() if line.startswith(("pair ", "knn "))}


def _annotate(tmp_path, spec, config_extra=None):
    from llmal.annotate.run import annotate

    items, split = prepare_ner(DATASET, {"names": TYPES}, SPLIT, cache_dir=tmp_path)
    config = {"labels": {"names": TYPES}, "prices": PRICES, "cache_dir": str(tmp_path / "cache"),
              **(config_extra or {})}
    return annotate(items, split, spec, config, name="pair", task=task_named("ner"), log=lambda m: None)


def test_plan_estimates_the_ner_requests_the_server_is_sent(tmp_path, capsys):
    from openai_server import Faults, OpenAITestServer

    from llmal.llm.tokens import PER_MESSAGE, REPLY_PRIMING
    from llmal.tasks.ner.llm import response_format

    with OpenAITestServer(tmp_path / "server", Faults()) as server:
        path = _config(tmp_path, server.base_url)
        assert main(["plan", "--configfile", str(path)]) == 0
        out = capsys.readouterr().out
        spec = yaml.safe_load(path.read_text())["annotators"]["pair"]
        table = _annotate(tmp_path, spec)
        billed = server.ledger()["billed"]
    rows = _rows(out)
    assert "120 sentences" in out and set(rows) == {"pair", "knn"}
    pair, knn = rows["pair"], rows["knn"]
    assert pair[3] == "ner" and knn[3] == "ner"
    # pool + dev of 120 sentences, two per request (duplicates sent once), as the server saw
    assert int(pair[4]) == len(table) == 95
    assert int(pair[5]) == len(billed) == table["request_id"].nunique() == 48
    assert int(knn[4]) == 40 and int(knn[5]) <= 40
    # input: the server counts the messages' characters / 4; the plan adds the chat overhead
    # and the response schema of every request
    sent = sum(e["usage"]["prompt_tokens"] for e in billed)
    schema = len(json.dumps(response_format(TYPES, 2), separators=(",", ":"))) / 4
    overhead = 2 * PER_MESSAGE + REPLY_PRIMING
    planned = int(pair[6].replace(",", ""))
    assert sent + len(billed) * (overhead + schema - 2) <= planned <= sent + len(billed) * (overhead + schema + 2)
    # output: the gold entities' answers; the server's "model" tags every capitalised word
    # after the first, so its answers are of the same order, not equal
    out_planned = int(pair[7].replace(",", ""))
    out_billed = sum(e["usage"]["completion_tokens"] for e in billed)
    assert 0.5 * out_billed < out_planned < 2 * out_billed
    # dollars at the price table ($1 / $2 per million tokens); knn is a batch annotator
    assert float(pair[8]) == pytest.approx((planned * 1.0 + out_planned * 2.0) / 1e6, abs=1e-4)
    assert float(knn[9]) == pytest.approx(float(knn[8]) / 2, abs=1e-4)
    # k-NN demonstrations make every knn request longer than a pair request per sentence
    assert int(knn[6].replace(",", "")) / int(knn[5]) > planned / int(pair[5]) / 2
    assert "pair: $" in out and "for agreement" in out
    assert "JSON of the gold entities" in out


@pytest.mark.parametrize("mode,journal", [(None, "wal"), ("network", "delete")])
def test_ner_annotate_path_honours_cache_mode(tmp_path, mode, journal):
    from openai_server import Faults, OpenAITestServer

    with OpenAITestServer(tmp_path / "server", Faults()) as server:
        spec = {"kind": "openai", "model": "gpt-test", "prompt": "ner", "base_url": server.base_url,
                "max_retries": 1, "backoff_base": 0.01, "limit": 10}
        table = _annotate(tmp_path, spec, {"cache_mode": mode} if mode else None)
    assert (table["status"] == "ok").all() and len(table) == 10
    conn = sqlite3.connect(tmp_path / "cache" / "responses.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == journal
    assert conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == table["request_id"].nunique() > 0
    conn.close()
