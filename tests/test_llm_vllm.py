"""The vllm executor without vLLM: constraint and response conversion, the run-batch file contract,
and clear errors where vLLM is missing. (vLLM itself needs a GPU; see the report.)"""
from __future__ import annotations

import importlib.util
import json
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from llmal.llm.executors.vllm import (
    VLLMError,
    VLLMExecutor,
    chat_body_from_output,
    cli_flags,
    normalise_batch_output,
    sampling_kwargs,
    structured_constraint,
)
from llmal.llm.parse import parse_chat_body, usage_of
from llmal.llm.prompts import load_prompt
from llmal.llm.requests import build_requests, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "config" / "prompts"
SPEC = {"kind": "vllm", "model": "some/model", "prompt": "two_question", "max_tokens": 32}
HAS_VLLM = importlib.util.find_spec("vllm") is not None


def _requests(texts=("Text eins", "Text zwei")):
    import pandas as pd
    t = load_prompt("two_question", PROMPTS)
    items = pd.DataFrame({"id": [f"i{n}" for n in range(len(texts))], "text": list(texts)})
    return t, build_requests(items, t, SPEC, ["not_hostile", "hostile"], "hostile").lines


def test_small_answer_spaces_become_a_choice_constraint_that_parses():
    t, lines = _requests()
    c = structured_constraint(lines[0]["body"])
    assert set(c) == {"choice"} and len(c["choice"]) == 4
    for choice in c["choice"]:  # every allowed output is a valid answer
        assert parse_chat_body({"choices": [{"message": {"content": choice}}]}, t.questions).ok
    answers = {tuple(json.loads(x).items()) for x in c["choice"]}
    assert (("migration", "yes"), ("hostile", "no")) in answers


def test_large_answer_spaces_use_the_json_schema():
    schema = {"type": "object", "required": [f"q{i}" for i in range(7)], "additionalProperties": False,
              "properties": {f"q{i}": {"type": "string", "enum": ["yes", "no"]} for i in range(7)}}
    body = {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}}
    assert structured_constraint(body) == {"json": schema}  # 2**7 = 128 > MAX_CHOICES
    assert structured_constraint({"messages": []}) is None


def test_sampling_kwargs_follow_the_body():
    assert sampling_kwargs({"temperature": 0, "max_tokens": 12, "seed": 3}) == \
        {"temperature": 0.0, "max_tokens": 12, "seed": 3}


def test_request_output_becomes_an_openai_body_with_usage():
    out = SimpleNamespace(prompt_token_ids=list(range(57)), outputs=[SimpleNamespace(
        text='{"migration": "no", "hostile": "no"}', token_ids=[1, 2, 3, 4, 5], finish_reason="stop")])
    body = chat_body_from_output(out, "some/model", "c" * 64)
    assert usage_of(body) == (57, 5, 0)
    t = load_prompt("two_question", PROMPTS)
    assert parse_chat_body(body, t.questions).answers == {"migration": "no", "hostile": "no"}


def test_run_batch_output_lines_are_normalised():
    body = {"choices": [{"message": {"content": "{}"}}]}
    ok = normalise_batch_output({"id": "x", "custom_id": "a",
                                 "response": {"status_code": 200, "request_id": "r", "body": body},
                                 "error": None})
    assert ok["response"]["body"] == body and ok["error"] is None
    bad = normalise_batch_output({"id": "x", "custom_id": "b", "error": None, "response": {
        "status_code": 400, "request_id": "r", "body": {"object": "error", "message": "too long"}}})
    assert bad["response"] is None and bad["error"] == {"code": "http_400", "message": "too long"}
    gone = normalise_batch_output({"custom_id": "c", "response": None, "error": "engine died"})
    assert gone["error"]["message"] == "engine died"


def test_cli_flags():
    assert cli_flags({"max_model_len": 4096, "enforce_eager": True, "quantization": None,
                      "trust_remote_code": False}) == ["--max-model-len", "4096", "--enforce-eager"]


def test_missing_vllm_command_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    ex = VLLMExecutor({**SPEC, "mode": "run_batch"}, state_dir=tmp_path)
    with pytest.raises(VLLMError, match="needs the `vllm` command"):
        ex.run(_requests()[1], lambda line: None)


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed")
def test_missing_vllm_package_is_a_clear_error(tmp_path):
    ex = VLLMExecutor(SPEC, state_dir=tmp_path)
    with pytest.raises(VLLMError, match="needs the vllm package"):
        ex.run(_requests()[1], lambda line: None)


def test_bad_mode_is_rejected(tmp_path):
    with pytest.raises(VLLMError, match="'mode'"):
        VLLMExecutor({**SPEC, "mode": "server"}, state_dir=tmp_path)


STAND_IN = """#!{python}
# Stands in for the `vllm` CLI to check llmal's side of the run-batch file contract only:
# arguments, input file, output file. It answers the first request and drops the second.
import json, sys
args = sys.argv[1:]
assert args[0] == "run-batch", args
inp, out = args[args.index("-i") + 1], args[args.index("-o") + 1]
json.dump(args, open(out + ".args", "w"))
lines = [json.loads(l) for l in open(inp)]
with open(out, "w") as f:
    first = lines[0]
    f.write(json.dumps({{"id": "b1", "custom_id": first["custom_id"], "error": None, "response": {{
        "status_code": 200, "request_id": "r1", "body": {{
            "choices": [{{"index": 0, "finish_reason": "stop", "message": {{"role": "assistant",
                "content": json.dumps({{"migration": "yes", "hostile": "no"}})}}}}],
            "usage": {{"prompt_tokens": 100, "completion_tokens": 9}}}}}}}}) + "\\n")
"""


def test_run_batch_file_contract_with_a_stand_in_command(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "vllm"
    exe.write_text(STAND_IN.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bindir))
    ex = VLLMExecutor({**SPEC, "mode": "run_batch", "seed": 5,
                       "engine_args": {"max_model_len": 2048}}, state_dir=tmp_path / "state")
    t, lines = _requests()
    got: list[dict] = []
    ex.run(lines, got.append)
    assert [g["custom_id"] for g in got] == [lines[0]["custom_id"], lines[1]["custom_id"]]
    assert parse_chat_body(got[0]["response"]["body"], t.questions).ok
    assert got[1]["response"] is None and got[1]["error"]["code"] == "missing"
    inp = next((tmp_path / "state" / "vllm").glob("*.requests.jsonl"))
    assert read_jsonl(inp) == lines
    args = json.loads(next((tmp_path / "state" / "vllm").glob("*.args")).read_text())
    assert args[args.index("--model") + 1] == "some/model"
    assert args[args.index("--seed") + 1] == "5" and "--max-model-len" in args
