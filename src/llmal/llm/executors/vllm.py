"""The `vllm` executor: an open-weight model through vLLM, on the same batch JSONL.

mode "run_batch": `vllm run-batch -i requests.jsonl -o responses.jsonl --model MODEL` in a
subprocess. vLLM reads OpenAI batch lines and honours the JSON-schema `response_format` of each
body, and writes OpenAI batch output lines, which are normalised and handed to the store together.

mode "offline" (default): the in-process `vllm.LLM` chat API. Each body's answer schema becomes
a structured-output constraint: a `choice` over every possible answer object when there are at
most MAX_CHOICES of them (the two-question interface has 4), else a JSON schema. Results are
turned into OpenAI chat-completion bodies with usage from vLLM's token ids.

Spec keys: model, mode, seed, engine_args (mapping passed to `vllm.LLM(...)`, or as
`--key value` flags to run-batch), chunk_size (offline requests per `LLM.chat` call; 512).
vLLM needs a GPU and is not a dependency of llmal: install it where it runs.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from llmal.llm.executors.base import RequestLine, ResponseLine, Store, error_line, ok_line, store_all
from llmal.llm.requests import read_jsonl, write_jsonl

MAX_CHOICES = 64
DEFAULT_CHUNK = 512
MODES = ("offline", "run_batch")


class VLLMError(RuntimeError):
    """vLLM is missing or failed; the message says what to install or which log to read."""


def structured_constraint(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """{"choice": [...]} or {"json": schema} for a body's JSON-schema response_format."""
    fmt = body.get("response_format")
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
        return None
    schema = (fmt.get("json_schema") or {}).get("schema")
    if not isinstance(schema, Mapping):
        return None
    props = schema.get("properties") or {}
    enums = [p.get("enum") if isinstance(p, Mapping) else None for p in props.values()]
    n = 1
    for e in enums:
        n = n * len(e) if isinstance(e, list) and e else MAX_CHOICES + 1
    if props and n <= MAX_CHOICES and list(schema.get("required") or []) == list(props):
        names = list(props)
        choices = [json.dumps(dict(zip(names, combo)), ensure_ascii=False)
                   for combo in itertools.product(*enums)]  # type: ignore[arg-type]
        return {"choice": choices}
    return {"json": dict(schema)}


def sampling_kwargs(body: Mapping[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"temperature": float(body.get("temperature", 0.0)),
                              "max_tokens": int(body.get("max_tokens", 64))}
    if "seed" in body:
        kwargs["seed"] = int(body["seed"])
    return kwargs


def chat_body_from_output(output: Any, model: str, custom_id: str) -> dict[str, Any]:
    """An OpenAI chat-completion body from a vLLM RequestOutput."""
    first = output.outputs[0]
    prompt_tokens = len(output.prompt_token_ids or [])
    completion_tokens = len(first.token_ids or [])
    return {
        "id": f"vllm-{custom_id[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": first.text},
                     "finish_reason": first.finish_reason or "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def normalise_batch_output(line: Mapping[str, Any]) -> ResponseLine:
    """A `vllm run-batch` output line as an ok line (HTTP 200 with body) or an error line."""
    cid = str(line.get("custom_id", ""))
    response = line.get("response")
    if isinstance(response, Mapping) and response.get("status_code") == 200 \
            and isinstance(response.get("body"), Mapping):
        return ok_line(cid, dict(response["body"]), str(response.get("request_id", "")))
    if isinstance(response, Mapping):
        status = response.get("status_code")
        body = response.get("body")
        message = body.get("message") if isinstance(body, Mapping) else None
        if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
            message = body["error"].get("message", message)
        return error_line(cid, f"http_{status}", str(message or body or "error response"))
    error = line.get("error")
    if isinstance(error, Mapping):
        return error_line(cid, str(error.get("code", "vllm_error")), str(error.get("message", error)))
    return error_line(cid, "vllm_error", str(error or "no response in vllm output"))


def cli_flags(engine_args: Mapping[str, Any]) -> list[str]:
    """{max_model_len: 4096, enforce_eager: true} -> ['--max-model-len', '4096', '--enforce-eager']."""
    flags: list[str] = []
    for key, value in engine_args.items():
        flag = "--" + str(key).replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is False or value is None:
            continue
        else:
            flags += [flag, json.dumps(value) if isinstance(value, (dict, list)) else str(value)]
    return flags


class VLLMExecutor:
    name = "vllm"

    def __init__(self, spec: Mapping[str, Any], *, state_dir: Path) -> None:
        self.model = str(spec["model"])
        self.mode = str(spec.get("mode", "offline"))
        if self.mode not in MODES:
            raise VLLMError(f"annotator key 'mode': {self.mode!r} is not one of {MODES}")
        self.seed = int(spec.get("seed", 0))
        self.engine_args = dict(spec.get("engine_args") or {})
        self.chunk_size = int(spec.get("chunk_size") or DEFAULT_CHUNK)
        self.state_dir = Path(state_dir) / "vllm"
        self._llm: Any = None

    def run(self, requests: Sequence[RequestLine], store: Store) -> None:
        if not requests:
            return
        if self.mode == "run_batch":
            self._run_batch(requests, store)
        else:
            self._offline(requests, store)

    # -- vllm run-batch --------------------------------------------------------------------
    def _run_batch(self, requests: Sequence[RequestLine], store: Store) -> None:

        exe = shutil.which("vllm")
        if exe is None:
            raise VLLMError("executor 'vllm' (mode run_batch) needs the `vllm` command: pip install "
                            "vllm on a machine with a supported GPU")
        tag = hashlib.sha256("".join(r["custom_id"] for r in requests).encode()).hexdigest()[:16]
        inp = self.state_dir / f"{tag}.requests.jsonl"
        out = self.state_dir / f"{tag}.responses.jsonl"
        logf = self.state_dir / f"{tag}.run-batch.log"
        write_jsonl(requests, inp)
        cmd = [exe, "run-batch", "-i", str(inp), "-o", str(out), "--model", self.model,
               "--seed", str(self.seed), *cli_flags(self.engine_args)]
        with open(logf, "w", encoding="utf-8") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        if rc != 0 or not out.exists():
            raise VLLMError(f"`vllm run-batch` exited with status {rc}; see {logf}")
        seen: set[str] = set()
        lines: list[ResponseLine] = []
        for line in read_jsonl(out):
            norm = normalise_batch_output(line)
            if norm["custom_id"] in seen:
                continue
            seen.add(norm["custom_id"])
            lines.append(norm)
        for r in requests:
            if r["custom_id"] not in seen:
                lines.append(error_line(r["custom_id"], "missing", f"no line for this request in {out}"))
        store_all(store, lines)  # one cache transaction for the whole output file

    # -- offline LLM API -------------------------------------------------------------------
    def _load(self) -> Any:
        if self._llm is None:
            try:
                from vllm import LLM
            except ImportError as e:
                raise VLLMError("executor 'vllm' (mode offline) needs the vllm package: pip install "
                                f"vllm on a machine with a supported GPU ({e})") from None
            self._llm = LLM(model=self.model, seed=self.seed, **self.engine_args)
        return self._llm

    def sampling_params(self, body: Mapping[str, Any]) -> Any:
        from vllm import SamplingParams

        kwargs = sampling_kwargs(body)
        constraint = structured_constraint(body)
        if constraint is None:
            return SamplingParams(**kwargs)
        try:  # vLLM >= 0.10.2
            from vllm.sampling_params import StructuredOutputsParams
            return SamplingParams(structured_outputs=StructuredOutputsParams(**constraint), **kwargs)
        except ImportError:  # older vLLM
            from vllm.sampling_params import GuidedDecodingParams
            return SamplingParams(guided_decoding=GuidedDecodingParams(**constraint), **kwargs)

    def _offline(self, requests: Sequence[RequestLine], store: Store) -> None:
        llm = self._load()
        for chunk in _chunks(requests, self.chunk_size):
            conversations = [list(r["body"]["messages"]) for r in chunk]
            params = [self.sampling_params(r["body"]) for r in chunk]
            try:
                outputs = llm.chat(conversations, sampling_params=params, use_tqdm=True)
            except Exception as e:  # a failed chunk is retried on the next run (nothing cached)
                store_all(store, [error_line(r["custom_id"], "vllm_error", f"{type(e).__name__}: {e}")
                                  for r in chunk])
                continue
            # the chunk's answers in one cache transaction
            store_all(store, [ok_line(r["custom_id"], chat_body_from_output(output, self.model, r["custom_id"]))
                              for r, output in zip(chunk, outputs)])


def _chunks(seq: Sequence[RequestLine], size: int) -> Iterable[Sequence[RequestLine]]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]
