"""LLM annotation core: prompts, rules, demonstrations, requests, parsing, cost, cache, orchestration."""
from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmal.contracts import ANNOTATION_COLUMNS, annotation_cost
from llmal.llm.cache import ResponseCache
from llmal.llm.cost import FREE, PriceError, price_for
from llmal.llm.demonstrations import DemonstrationError, draw_demo_pool, knn_demonstrations
from llmal.llm.executors import make_executor
from llmal.llm.executors.base import error_line, ok_line
from llmal.llm.fetch import counts, sample_items
from llmal.llm.parse import parse_answer_text, parse_chat_body, usage_of
from llmal.llm.prompts import Demonstration, PromptError, load_prompt
from llmal.llm.requests import build_requests, chat_body, custom_id_of, read_jsonl, write_jsonl
from llmal.tasks.classification.llm import annotate_with_llm

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "config" / "prompts"
LABELS = ["not_hostile", "hostile"]
SPEC = {"kind": "local", "model": "test-model", "prompt": "two_question", "temperature": 0,
        "max_tokens": 32, "seed": 0}


def write_template(dirpath: Path, name: str, body: str) -> Path:
    path = dirpath / f"{name}.yaml"
    path.write_text(f"name: {name}\n" + body, encoding="utf-8")
    return path


THREE_Q = """
system: sys
questions:
  - {name: a, text: "Question A?", choices: ["yes", "no"]}
  - {name: b, text: "Question B?", choices: ["yes", "no"]}
  - {name: c, text: "Question C?", choices: ["yes", "no", "unsure"]}
positive_if:
  any:
    - all: {a: "yes", b: "yes"}
    - {c: "yes"}
user_template: "{demonstrations}Text: {text}\\n{questions}\\nReply {answer_format}"
"""


# -- prompts ------------------------------------------------------------------------------

def test_shipped_templates_render_questions_text_and_schema():
    two = load_prompt("two_question", PROMPTS)
    hol = load_prompt("holistic", PROMPTS)
    assert two.question_names == ["migration", "hostile"]
    assert hol.question_names == ["hostile"]
    msgs = two.render_messages("Die sollen alle raus!")
    assert [m["role"] for m in msgs] == ["system", "user"]
    system, user = msgs[0]["content"], msgs[1]["content"]
    assert '"""Die sollen alle raus!"""' in user and user.endswith('"""Die sollen alle raus!"""')
    # the questions and answer format are in the static prefix, before the item (provider caching)
    assert '"migration"' in system and '"hostile"' in system and "{" not in system.split("form")[0]
    assert "migration" not in user and "{text}" not in user
    assert two.render_messages("Anderer Text")[0] == msgs[0]          # the same for every item
    with_codebook = two.render_messages("Die sollen alle raus!", guidelines="CODEBOOK: ...")
    assert with_codebook[0]["content"].endswith("CODEBOOK: ...") and with_codebook[1] == msgs[1]
    schema = two.response_schema()
    assert schema["required"] == ["migration", "hostile"]
    assert schema["properties"]["hostile"]["enum"] == ["yes", "no"]
    assert schema["additionalProperties"] is False
    assert two.hash != hol.hash and len(two.hash) == 16


def test_prompt_hash_is_stable_and_follows_content_not_comments(tmp_path):
    write_template(tmp_path, "p", THREE_Q)
    h1 = load_prompt("p", tmp_path).hash
    assert load_prompt("p", tmp_path).hash == h1
    (tmp_path / "p.yaml").write_text("# a comment\n" + (tmp_path / "p.yaml").read_text())
    assert load_prompt("p", tmp_path).hash == h1
    write_template(tmp_path, "p", THREE_Q.replace("Question A?", "Question A changed?"))
    assert load_prompt("p", tmp_path).hash != h1


def test_demonstrations_are_rendered_with_label_texts():
    two = load_prompt("two_question", PROMPTS)
    demos = [Demonstration("Ausländer raus", 1), Demonstration("Schönes Wetter", 0)]
    user = two.render_messages("Neuer Text", demos, LABELS, "hostile")[1]["content"]
    assert user.index("Ausländer raus") < user.index("Schönes Wetter") < user.index("Neuer Text")
    assert "AND is hostile towards them" in user          # positive label text
    assert "or is not hostile towards them" in user       # negative label text
    assert user.startswith("Annotated example comments:")


@pytest.mark.parametrize("body, fragment", [
    (THREE_Q.replace('["yes", "no"]}\n  - {name: b', '[yes, no]}\n  - {name: b'), "quote yes/no"),
    (THREE_Q.replace("Reply {answer_format}", "Reply {answer}"), "unknown placeholder {answer}"),
    (THREE_Q.replace('{c: "yes"}', '{d: "yes"}'), "'d' is not a question"),
    (THREE_Q.replace('{c: "yes"}', '{c: "maybe"}'), "'maybe' is not a choice"),
    (THREE_Q.replace("Text: {text}", "Text:"), "must contain {text}"),
    (THREE_Q + "extra_key: 1\n", "extra_key: unknown key"),
    (THREE_Q.replace("positive_if:", "other:"), "other: unknown key"),
])
def test_template_errors_name_file_and_key(tmp_path, body, fragment):
    path = write_template(tmp_path, "bad", body)
    with pytest.raises(PromptError) as e:
        load_prompt("bad", tmp_path)
    assert str(path) in str(e.value) and fragment in str(e.value)


def test_missing_template_lists_known_ones(tmp_path):
    with pytest.raises(PromptError, match=r"nosuch.yaml: no such prompt template.*holistic"):
        load_prompt("nosuch", PROMPTS)


def test_n_question_rule_matches_its_truth_table(tmp_path):
    write_template(tmp_path, "three", THREE_Q)
    t = load_prompt("three", tmp_path)
    for a, b, c in itertools.product(["yes", "no"], ["yes", "no"], ["yes", "no", "unsure"]):
        expected = (a == "yes" and b == "yes") or c == "yes"
        label = t.label_of({"a": a, "b": b, "c": c}, LABELS, "hostile")
        assert label == (1 if expected else 0), (a, b, c)
    # the positive label may come first in the label names
    assert t.label_of({"a": "no", "b": "no", "c": "yes"}, ["hate", "none"], "hate") == 0


def test_two_question_positive_only_if_both_yes():
    t = load_prompt("two_question", PROMPTS)
    got = {(m, h): t.label_of({"migration": m, "hostile": h}, LABELS, "hostile")
           for m in ("yes", "no") for h in ("yes", "no")}
    assert got == {("yes", "yes"): 1, ("yes", "no"): 0, ("no", "yes"): 0, ("no", "no"): 0}


def test_label_from_maps_answers_and_unmapped_answer_gives_no_label(tmp_path):
    write_template(tmp_path, "multi", """
questions:
  - {name: cls, text: "Which class?", choices: [neutral, offensive, hate, unsure]}
label_from: {question: cls, map: {neutral: none, offensive: offensive, hate: hate}}
user_template: "{text}"
""")
    t = load_prompt("multi", tmp_path)
    names = ["none", "offensive", "hate"]
    t.check_labels(names, "hate")
    assert t.label_of({"cls": "hate"}, names, "hate") == 2
    assert t.label_of({"cls": "unsure"}, names, "hate") is None
    with pytest.raises(PromptError, match="is not a label"):
        t.check_labels(["a", "b"], "a")
    two = load_prompt("two_question", PROMPTS)
    with pytest.raises(PromptError, match="exactly two labels"):
        two.check_labels(names, "hate")


# -- demonstrations ----------------------------------------------------------------------

def _embedding_fixture():
    # 2-d unit vectors at known angles: similarity order is known exactly
    angles = {"q": 0, "p1": 8, "p2": 20, "p3": 30, "p4": 100, "p5": 170, "q2": 90, "p6": 30}
    ids = list(angles)
    mat = np.array([[np.cos(np.radians(a)), np.sin(np.radians(a))] for a in angles.values()]) * 3.0
    return ids, mat


def test_knn_picks_most_similar_first_and_never_the_item_itself():
    ids, mat = _embedding_fixture()
    pool = ["p5", "p4", "p3", "p2", "p1"]
    labels = [0, 1, 0, 1, 1]
    got = knn_demonstrations(["q", "q2", "p2"], pool, labels, ids, mat, k=3)
    assert got["q"] == ["p1", "p2", "p3"]
    assert got["q2"] == ["p4", "p3", "p2"]
    assert got["p2"] == ["p3", "p1", "p4"]  # itself excluded
    assert knn_demonstrations(["q", "q2", "p2"], pool, labels, ids, mat, k=3) == got
    # p6 and p3 have the same embedding: the one listed first in the pool wins the tie
    assert knn_demonstrations(["q"], ["p6", "p3"], [0, 0], ids, mat, k=1)["q"] == ["p6"]
    assert knn_demonstrations(["q"], ["p3", "p6"], [0, 0], ids, mat, k=1)["q"] == ["p3"]


def test_knn_balanced_takes_both_classes():
    ids, mat = _embedding_fixture()
    pool, labels = ["p1", "p2", "p3", "p4", "p5"], [1, 1, 1, 0, 0]
    got = knn_demonstrations(["q"], pool, labels, ids, mat, k=2, balanced=True)["q"]
    assert got == ["p1", "p4"]
    got4 = knn_demonstrations(["q"], pool, labels, ids, mat, k=4, balanced=True)["q"]
    assert got4 == ["p1", "p2", "p4", "p5"]


def test_knn_missing_embedding_names_the_id():
    ids, mat = _embedding_fixture()
    with pytest.raises(DemonstrationError, match="'zz'"):
        knn_demonstrations(["zz"], ["p1"], [1], ids, mat, k=1)


def test_demo_pool_is_stratified_seeded_and_gold_only():
    cands = pd.DataFrame({"id": [f"i{n:03d}" for n in range(100)], "text": "t",
                          "gold": [1] * 20 + [0] * 75 + [-1] * 5})
    a = draw_demo_pool(cands, 10, seed=3)
    assert len(a) == 10 and (a["gold"] >= 0).all()
    assert sorted(a["gold"].value_counts().to_dict().items()) == [(0, 8), (1, 2)]
    assert a.equals(draw_demo_pool(cands, 10, seed=3))
    assert not a["id"].equals(draw_demo_pool(cands, 10, seed=4)["id"])


# -- requests -----------------------------------------------------------------------------

def test_custom_id_is_hash_of_body_independent_of_key_order():
    t = load_prompt("two_question", PROMPTS)
    body = chat_body(t, SPEC, "Text")
    reordered = dict(reversed(list(body.items())))
    assert custom_id_of(body) == custom_id_of(reordered)
    assert len(custom_id_of(body)) == 64
    for change in ({"temperature": 0.7}, {"max_tokens": 33}, {"seed": 1}, {"model": "other"}):
        assert custom_id_of(chat_body(t, {**SPEC, **change}, "Text")) != custom_id_of(body)
    hol = load_prompt("holistic", PROMPTS)
    assert custom_id_of(chat_body(hol, SPEC, "Text")) != custom_id_of(body)


def test_build_requests_sends_duplicate_texts_once_and_roundtrips_jsonl(tmp_path):
    t = load_prompt("two_question", PROMPTS)
    items = pd.DataFrame({"id": ["a", "b", "c"], "text": ["x", "y", "x"]})
    plan = build_requests(items, t, SPEC, LABELS, "hostile")
    assert len(plan.lines) == 2
    assert plan.custom_ids[0] == plan.custom_ids[2] != plan.custom_ids[1]
    line = plan.lines[0]
    assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
    assert line["custom_id"] == custom_id_of(line["body"])
    assert line["body"]["response_format"]["json_schema"]["strict"] is True
    path = tmp_path / "req.jsonl"
    write_jsonl(plan.lines, path)
    assert read_jsonl(path) == plan.lines
    path.write_text(path.read_text() + "{broken\n")
    with pytest.raises(ValueError, match=r"req.jsonl:3: not valid JSON"):
        read_jsonl(path)


# -- parsing ------------------------------------------------------------------------------

def _body(content, finish="stop", refusal=None, usage=None):
    msg = {"role": "assistant", "content": content}
    if refusal is not None:
        msg["refusal"] = refusal
    body = {"choices": [{"index": 0, "message": msg, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return body


def test_parse_accepts_exact_answers_with_case_and_space_tolerance():
    qs = load_prompt("two_question", PROMPTS).questions
    p = parse_chat_body(_body(' {"hostile": " YES", "migration": "no"} \n'), qs)
    assert p.ok and p.answers == {"migration": "no", "hostile": "yes"}


@pytest.mark.parametrize("content, finish, reason", [
    ("", "stop", "empty answer"),
    (None, "stop", "empty answer"),
    ('{"migration": "yes", "hostile": "ye', "length", "truncated at max_tokens"),
    ('{"migration": "yes"}', "stop", "missing ['hostile']"),
    ('{"migration": "yes", "hostile": "no", "why": "x"}', "stop", "unexpected ['why']"),
    ('{"migration": "yes", "hostile": "maybe"}', "stop", "'maybe' is not one of"),
    ('{"migration": true, "hostile": "no"}', "stop", "is not a string"),
    ('{"migration": "yes", "migration": "no", "hostile": "no"}', "stop", "duplicate key"),
    ('```json\n{"migration": "yes", "hostile": "no"}\n```', "stop", "not a JSON object"),
    ('Answer: {"migration": "yes", "hostile": "no"}', "stop", "not a JSON object"),
    ('["yes", "no"]', "stop", "expected a JSON object"),
    ('yes', "stop", "not a JSON object"),
])
def test_parse_marks_malformed_output_invalid_and_keeps_raw(content, finish, reason):
    qs = load_prompt("two_question", PROMPTS).questions
    p = parse_chat_body(_body(content, finish), qs)
    assert not p.ok and p.answers == {}
    assert reason in p.reason
    assert p.raw == (content or "")


def test_parse_refusal_and_bodies_without_choices():
    qs = load_prompt("two_question", PROMPTS).questions
    p = parse_chat_body(_body(None, refusal="I can't help with that."), qs)
    assert (p.ok, p.reason, p.raw) == (False, "refusal", "I can't help with that.")
    assert parse_chat_body({"choices": []}, qs).reason == "response has no choices"
    assert parse_chat_body(None, qs).reason == "response has no body"
    assert not parse_answer_text("null", qs).ok


# -- cost ---------------------------------------------------------------------------------

PRICES = {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.60, "batch_discount": 0.5}}


def test_cost_from_usage_with_cached_tokens_and_batch_discount():
    usage = {"prompt_tokens": 1000, "completion_tokens": 100,
             "prompt_tokens_details": {"cached_tokens": 400}}
    n_in, n_out, n_cached = usage_of({"usage": usage})
    assert (n_in, n_out, n_cached) == (1000, 100, 400)
    price = price_for("gpt-4o-mini", "openai", PRICES)
    expected = (600 * 0.15 + 400 * 0.075 + 100 * 0.60) / 1e6
    assert price.cost(n_in, n_out, n_cached) == pytest.approx(expected)
    assert price.cost(n_in, n_out, n_cached, batch=True) == pytest.approx(expected * 0.5)
    assert usage_of({}) == (0, 0, 0)


def test_price_defaults_and_errors():
    p = price_for("m", "openai", {"m": {"input": 1.0, "output": 2.0}})
    assert p.cached_input == 1.0 and p.batch_discount == 0.5
    assert price_for("smollm", "local", {}) is FREE
    assert price_for("llama", "vllm", None) is FREE
    assert price_for("llama", "vllm", {"llama": {"input": 0.1, "output": 0.1}}).input == 0.1
    with pytest.raises(PriceError) as e:
        price_for("gpt-5-nano", "openai_batch", PRICES)
    assert "'gpt-5-nano'" in str(e.value) and "`prices`" in str(e.value)
    with pytest.raises(PriceError, match=r"prices.m.output: missing"):
        price_for("m", "openai", {"m": {"input": 1.0}})


# -- cache --------------------------------------------------------------------------------

def _ok(cid: str, content: str = '{"hostile": "yes"}') -> dict:
    return ok_line(cid, {"choices": [{"message": {"content": content}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 3}})


def test_cache_keeps_only_successes_and_first_answer_wins(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        assert cache.put(_ok("a", "first"), "openai") is True
        assert cache.put(_ok("a", "second"), "openai") is True
        assert cache.put(error_line("b", "rate_limit", "slow down"), "openai") is False
        assert cache.put({"custom_id": "c", "response": {"status_code": 500, "body": {}}, "error": None},
                         "openai") is False
        got = cache.get_many(["a", "b", "c", "a"], "openai")
        assert list(got) == ["a"] and "b" not in cache
        assert got["a"].line["response"]["body"]["choices"][0]["message"]["content"] == "first"
        assert got["a"].backend == "openai"
        assert cache.get_many(["a"], "openai http://elsewhere/v1") == {}  # another backend
        with pytest.raises(ValueError, match="without a custom_id"):
            cache.put({"response": None}, "openai")
    with ResponseCache(tmp_path / "c.sqlite") as again:  # persisted
        assert len(again) == 1
        assert again.get_many([f"x{i}" for i in range(1200)] + ["a"], "openai").keys() == {"a"}



def test_cache_put_many_is_one_all_or_nothing_transaction(tmp_path):
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        cache.put(_ok("a", "first"), "openai")
        lines = [_ok("a", "second"), _ok("b"), error_line("c", "http_500", "x"), _ok("d"), _ok("b", "again")]
        assert cache.put_many(lines, "openai") == 4          # the successes offered
        got = cache.get_many(["a", "b", "c", "d"], "openai")
        assert sorted(got) == ["a", "b", "d"]
        assert content_of_cached(got["a"]) == "first" and content_of_cached(got["b"]) == '{"hostile": "yes"}'
        with pytest.raises(ValueError, match="without a custom_id"):
            cache.put_many([_ok("e"), {"response": None}], "openai")
        assert "e" not in cache and len(cache) == 3                 # nothing of a refused call
        assert cache.put_many([], "openai") == 0


def content_of_cached(cached) -> str:
    return cached.line["response"]["body"]["choices"][0]["message"]["content"]


def _writer(path: str, worker: int, n: int) -> None:
    cache = ResponseCache(path)
    for i in range(n):
        cache.put(_ok(f"id{(worker * n // 2 + i):05d}", f"w{worker}"), "openai")
    cache.close()


def _endless_writer(path: str, ready) -> None:
    cache = ResponseCache(path)
    i = 0
    while True:
        cache.put(_ok(f"kill{i:07d}", "x" * 2000), "openai")
        i += 1
        if i == 20:
            ready.set()


def _endless_bulk_writer(path: str, ready, size: int) -> None:
    cache = ResponseCache(path)
    i = 0
    while True:
        cache.put_many([_ok(f"bulk{i + k:07d}", "x" * 2000) for k in range(size)], "openai")
        i += size
        if i == 3 * size:
            ready.set()


def test_cache_under_concurrent_writers(tmp_path):
    path = str(tmp_path / "c.sqlite")
    ctx = mp.get_context("spawn")
    n, workers = 150, 4
    procs = [ctx.Process(target=_writer, args=(path, w, n)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    expected = {f"id{i:05d}" for w in range(workers) for i in range(w * n // 2, w * n // 2 + n)}
    with ResponseCache(path) as cache:
        assert cache.integrity_ok()
        assert len(cache) == len(expected)
        assert set(cache.get_many(sorted(expected), "openai")) == expected


def kill_writer_mid_write(target, path, *args):
    """Start `target(path, ready, *args)` in a process, let it write for a moment, SIGKILL it."""
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    p = ctx.Process(target=target, args=(path, ready, *args))
    p.start()
    assert ready.wait(60)
    time.sleep(0.3)
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    assert p.exitcode == -signal.SIGKILL


def test_cache_survives_a_writer_killed_mid_write(tmp_path):
    path = str(tmp_path / "c.sqlite")
    kill_writer_mid_write(_endless_writer, path)
    with ResponseCache(path) as cache:
        assert cache.integrity_ok()
        n = len(cache)
        assert n >= 20
        got = cache.get_many([f"kill{i:07d}" for i in range(n)], "openai")
        assert len(got) == n  # every committed row complete and readable, ids contiguous
        assert all(g.line["custom_id"] == cid for cid, g in got.items())
        assert cache.put(_ok("after"), "openai") and "after" in cache
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()



def test_cache_bulk_writer_killed_mid_write_leaves_whole_batches(tmp_path):
    path = str(tmp_path / "c.sqlite")
    size = 250
    kill_writer_mid_write(_endless_bulk_writer, path, size)
    with ResponseCache(path) as cache:
        assert cache.integrity_ok()
        n = len(cache)
        assert n >= 3 * size and n % size == 0          # every batch all or nothing
        assert len(cache.get_many([f"bulk{i:07d}" for i in range(n)], "openai")) == n

# -- orchestration ------------------------------------------------------------------------

class ScriptedExecutor:
    """A deterministic in-process executor: answers by keywords in the comment.

    'boom' -> error line (HTTP failure), 'garbage' -> malformed text, 'crash' -> raises after
    the responses before it were stored (a crash mid-run). Counts what it was asked to send.
    """
    name = "scripted"

    def __init__(self, secret: str = "") -> None:
        self.sent: list[str] = []
        self.secret = secret

    def run(self, requests, store):
        for line in requests:
            text = line["body"]["messages"][-1]["content"]
            comment = text.split('"""')[-2]  # the last quoted block is the item
            self.sent.append(comment)
            if "crash" in comment:
                raise RuntimeError("executor died")
            if "boom" in comment:
                store(error_line(line["custom_id"], "server_error", f"500 with key {self.secret}"))
                continue
            if "garbage" in comment:
                content = "Sure! The answer is yes."
            else:
                mig = "yes" if "Migranten" in comment else "no"
                hos = "yes" if "raus" in comment else "no"
                content = json.dumps({"migration": mig, "hostile": hos})
            store(ok_line(line["custom_id"], {
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 10,
                          "prompt_tokens_details": {"cached_tokens": 0}}}))


ITEMS = pd.DataFrame({
    "id": ["i1", "i2", "i3", "i4", "i5", "i6"],
    "text": ["Migranten raus!", "Migranten sind willkommen", "Alle raus hier",
             "boom", "garbage", "Migranten raus!"],
})


def _annotate(tmp_path, executor, spec=None, items=ITEMS, log=None):
    return annotate_with_llm(
        items, spec=spec or {**SPEC, "kind": "openai", "model": "gpt-4o-mini"},
        label_names=LABELS, positive="hostile", prompts_dir=PROMPTS, prices=PRICES,
        cache_path=tmp_path / "cache.sqlite", state_dir=tmp_path / "state",
        log=log or (lambda m: None), name="gpt", executor=executor)


def test_annotate_statuses_labels_answers_and_cost(tmp_path):
    ex = ScriptedExecutor()
    table = _annotate(tmp_path, ex)
    assert list(table.columns) == ANNOTATION_COLUMNS
    t = table.set_index("id")
    assert t.loc["i1", "status"] == "ok" and t.loc["i1", "label"] == 1
    assert json.loads(t.loc["i1", "answers"]) == {"migration": "yes", "hostile": "yes"}
    assert t.loc["i2", "label"] == 0 and t.loc["i3", "label"] == 0   # hostile but not migration
    assert json.loads(t.loc["i3", "answers"]) == {"migration": "no", "hostile": "yes"}
    assert t.loc["i4", "status"] == "failed" and pd.isna(t.loc["i4", "label"])
    assert t.loc["i4", "cost_usd"] == 0 and "server_error" in t.loc["i4", "raw"]
    assert t.loc["i5", "status"] == "invalid" and pd.isna(t.loc["i5", "label"])
    assert t.loc["i5", "raw"] == "Sure! The answer is yes."
    assert t.loc["i5", "cost_usd"] > 0  # a malformed answer was still billed
    assert len(ex.sent) == 5  # i6 repeats i1's text: sent once
    one = (1000 * 0.15 + 10 * 0.60) / 1e6
    # i1 and i6 share one request: each row carries its full price, the table pays it once
    assert t.loc["i1", "cost_usd"] == pytest.approx(one) == t.loc["i6", "cost_usd"]
    assert t.loc["i1", "request_id"] == t.loc["i6", "request_id"] != t.loc["i2", "request_id"]
    assert annotation_cost(table) == pytest.approx(4 * one)  # the bill: 4 answered requests
    assert set(table["model"]) == {"gpt-4o-mini"}
    assert set(table["prompt_hash"]) == {load_prompt("two_question", PROMPTS).hash}
    c = counts(table)
    assert (c["n"], c["ok"], c["invalid"], c["failed"]) == (6, 4, 1, 1)


def test_rerun_sends_nothing_cached_and_retries_only_failures(tmp_path):
    first = _annotate(tmp_path, ScriptedExecutor())
    ex = ScriptedExecutor()
    lines: list[str] = []
    second = _annotate(tmp_path, ex, log=lines.append)
    assert ex.sent == ["boom"]  # the error was not cached; nothing else sent again
    pd.testing.assert_frame_equal(first, second)
    assert any("ok 4, invalid 1, failed 1 of 6" in m for m in lines)


def test_batch_discount_follows_the_executor_that_answered(tmp_path):
    spec = {**SPEC, "kind": "openai_batch", "model": "gpt-4o-mini"}
    table = _annotate(tmp_path, ScriptedExecutor(), spec=spec)
    one = (1000 * 0.15 + 10 * 0.60) / 1e6 * 0.5
    assert annotation_cost(table) == pytest.approx(4 * one)


def test_crash_mid_run_keeps_what_was_answered(tmp_path):
    items = pd.DataFrame({"id": ["a", "b", "c"], "text": ["Migranten raus!", "crash", "Hallo"]})
    with pytest.raises(RuntimeError, match="executor died"):
        _annotate(tmp_path, ScriptedExecutor(), items=items)
    ex = ScriptedExecutor()
    items2 = items.assign(text=["Migranten raus!", "Guten Tag", "Hallo"])
    table = _annotate(tmp_path, ex, items=items2)
    assert ex.sent == ["Guten Tag", "Hallo"]  # "a" was stored before the crash
    assert (table["status"] == "ok").all()


def test_secrets_never_reach_the_table_or_log(tmp_path, monkeypatch):
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("LLMAL_TEST_KEY", secret)
    spec = {**SPEC, "kind": "openai", "model": "gpt-4o-mini", "api_key_env": "LLMAL_TEST_KEY"}
    lines: list[str] = []
    table = _annotate(tmp_path, ScriptedExecutor(secret=secret), spec=spec, log=lines.append)
    assert secret not in table.to_json() and secret not in "\n".join(lines)
    assert "***" in table.set_index("id").loc["i4", "raw"]
    for f in tmp_path.glob("cache.sqlite*"):
        assert secret.encode() not in f.read_bytes()


def test_unpriced_model_fails_before_anything_is_sent(tmp_path):
    ex = ScriptedExecutor()
    with pytest.raises(PriceError, match="'gpt-9'"):
        _annotate(tmp_path, ex, spec={**SPEC, "kind": "openai", "model": "gpt-9"})
    assert ex.sent == []


def test_limit_annotates_a_seeded_sample():
    items = pd.DataFrame({"id": [f"i{n}" for n in range(50)], "text": "t"})
    a = sample_items(items, 10, seed=1)
    assert len(a) == 10 and a.equals(sample_items(items, 10, seed=1))
    assert list(a.index) == sorted(a.index)
    assert sample_items(a, 10, seed=1).equals(a)  # idempotent on an already drawn sample


def test_demonstrations_reach_the_prompt(tmp_path):
    ids = ["i1", "i2", "d1", "d2"]
    mat = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    pool = pd.DataFrame({"id": ["d1", "d2"], "text": ["Demo eins", "Demo zwei"], "gold": [1, 0]})
    ex = ScriptedExecutor()
    seen: list[dict] = []
    orig_run = ex.run

    def run(requests, store):
        seen.extend(requests)
        orig_run(requests, store)
    ex.run = run
    spec = {**SPEC, "kind": "local", "model": "m", "demonstrations": {"k": 1, "pool_size": 2}}
    annotate_with_llm(ITEMS.iloc[:2], spec=spec, label_names=LABELS, positive="hostile",
                      prompts_dir=PROMPTS, prices={}, cache_path=tmp_path / "c.sqlite",
                      state_dir=tmp_path, embeddings=(np.array(ids), mat), demo_pool=pool,
                      log=lambda m: None, executor=ex)
    users = [r["body"]["messages"][-1]["content"] for r in seen]
    assert "Demo eins" in users[0] and "Demo zwei" not in users[0]
    assert "Demo zwei" in users[1] and "Demo eins" not in users[1]


def test_make_executor_dispatches_and_rejects_unknown_kinds(tmp_path):
    assert make_executor({"kind": "local", "model": "x"}, state_dir=tmp_path).name == "local"
    assert make_executor({"kind": "vllm", "model": "x"}, state_dir=tmp_path).name == "vllm"
    with pytest.raises(ValueError, match="'human' is not an LLM executor"):
        make_executor({"kind": "human"}, state_dir=tmp_path)
