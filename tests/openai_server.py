"""An OpenAI-compatible HTTP server for tests: chat completions, files and batches, with faults.

It runs on 127.0.0.1 (stdlib ThreadingHTTPServer) either in a thread of the test process
(`OpenAITestServer(...).start()`) or as a subprocess:

    python tests/openai_server.py --port 0 --state DIR [--rate-429 0.1 ...]

which prints one line `READY <base_url>` on stdout and writes `<state>/base_url`.

The "model" answers deterministically from the request: for every property of the JSON schema
in `response_format` it picks a value (from the property's enum, or a boolean) by hashing the
last user message with the property name. `expected_answer(body)` gives that answer, so a test
can check that no item was mislabelled (a list of enum values gets each value by hash). Every
answer reports usage. Every billed answer goes to
a ledger (memory and `<state>/ledger.jsonl`, append-only), readable at GET /_ledger.

It emulates the rules of reasoning models (GPT-5 family, o-series, by model name): `max_tokens`,
`temperature`/`top_p` other than 1 and `logprobs` are rejected with HTTP 400 (online and in
batch lines), `usage.completion_tokens_details.reasoning_tokens` grows with `reasoning_effort`
and is part of `completion_tokens`; other models reject `reasoning_effort`. It honours `n`
(n choices, n times the completion tokens) and `logprobs`/`top_logprobs` (each enum question has
a distribution over its options, choice_distribution: temperature 0 answers its argmax, a
temperature > 0 draws per choice and request seed, and the logprobs of an answer value list the
options with their log-probabilities), and reports
`prompt_tokens_details.cached_tokens` for a prompt prefix (everything before the last user
message) it has seen before for that model, like a provider's prompt cache.

Faults are deterministic given `seed`: transient ones (429 with Retry-After, 500, slow
responses) are decided per (request hash, attempt number) so a retry can succeed; malformed
answers and permanent failures are decided per request hash. A cut-off answer (`rate_cutoff`)
is billed like any answer but its 200 body cannot be read: half of them (by request hash) are
JSON cut in the middle with a matching Content-Length, the others announce the full length and
close the connection early. Batches are processed by a background thread, take
`batch_seconds`, and the first `batch_expire_first` batches expire with only
`batch_expire_fraction` of their requests done (the rest in the error file, code
`batch_expired`). `batch_create_rate_500` (per batch, by its creation number) and
`upload_rate_500` (per upload, by its number) answer 500 *after* the batch or file was made, as a
real service can: a client that simply posts again has two of them. GET /v1/files lists the
uploads newest first, in pages, like GET /v1/batches.
"""
from __future__ import annotations

import argparse
import email.parser
import email.policy
import hashlib
import itertools
import json
import math
import queue
import re
import signal
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

JsonDict = dict[str, Any]

MALFORMED_KINDS = ("not_json", "wrong_keys", "wrong_value")


@dataclass
class Faults:
    """Fault injection settings. Rates are probabilities per request (or per attempt)."""

    seed: int = 0
    rate_429: float = 0.0          # transient: 429 with Retry-After / retry-after-ms
    rate_500: float = 0.0          # transient: 500
    rate_slow: float = 0.0         # transient: answer after `slow_seconds`
    slow_seconds: float = 0.0
    rate_cutoff: float = 0.0       # transient: a billed 200 whose body is cut off
    transient_attempts: int = 2    # transient faults only hit attempts 0..transient_attempts-1
    retry_after: float = 0.05      # seconds announced with a 429
    rate_fail: float = 0.0         # permanent: every attempt of that request gets a 500
    rate_malformed: float = 0.0    # answer is not the JSON the schema asks for
    api_key: str | None = None     # when set, requests need `Authorization: Bearer <api_key>`
    batch_seconds: float = 0.3     # processing time of one batch
    batch_create_delay: float = 0.0  # the batch exists before POST /v1/batches answers
    batch_expire_first: int = 0    # the first N batches created expire ...
    batch_expire_fraction: float = 0.5  # ... with this fraction of their requests done
    batch_rate_500: float = 0.0    # transient per (custom_id, attempt): 500 line in error file
    batch_create_rate_500: float = 0.0  # POST /v1/batches creates the batch, then answers 500
    upload_rate_500: float = 0.0   # POST /v1/files stores the file, then answers 500
    no_file_list: int = 0          # 1: GET /v1/files answers 404, like a server that cannot list
    prefix_cache_min_tokens: int = 64  # a repeated prefix this long is cached (OpenAI: 1024) ...
    prefix_cache_block: int = 16       # ... in blocks of this many tokens (OpenAI: 128)
    planted: str = ""              # JSON {substring: content}: a request whose last user message
                                   # contains the substring is answered with that content verbatim

    @classmethod
    def from_args(cls, ns: argparse.Namespace) -> "Faults":
        return cls(**{f.name: getattr(ns, f.name) for f in fields(cls)})


FAULT_HELP = {
    'rate_429': 'transient: 429 with Retry-After / retry-after-ms',
    'rate_500': 'transient: 500',
    'rate_slow': 'transient: answer after `slow_seconds`',
    'rate_cutoff': 'transient: a billed 200 whose body is cut off',
    'transient_attempts': 'transient faults only hit attempts 0..transient_attempts-1',
    'retry_after': 'seconds announced with a 429',
    'rate_fail': 'permanent: every attempt of that request gets a 500',
    'rate_malformed': 'answer is not the JSON the schema asks for',
    'api_key': 'when set, requests need `Authorization: Bearer <api_key>`',
    'batch_seconds': 'processing time of one batch',
    'batch_create_delay': 'the batch exists before POST /v1/batches answers',
    'batch_expire_first': 'the first N batches created expire ...',
    'batch_expire_fraction': '... with this fraction of their requests done',
    'batch_rate_500': 'transient per (custom_id, attempt): 500 line in error file',
    'batch_create_rate_500': 'POST /v1/batches creates the batch, then answers 500',
    'upload_rate_500': 'POST /v1/files stores the file, then answers 500',
    'no_file_list': '1: GET /v1/files answers 404, like a server that cannot list',
    'prefix_cache_min_tokens': 'a repeated prefix this long is cached (OpenAI: 1024) ...',
    'prefix_cache_block': '... in blocks of this many tokens (OpenAI: 128)',
    'planted': 'JSON {substring: content}: answers planted verbatim for matching requests',
}


def canonical_hash(body: Any) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def uniform(seed: int, *parts: object) -> float:
    """A deterministic number in [0, 1) from the seed and the parts."""
    key = "|".join([str(seed), *map(str, parts)]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2.0**64


def _message_text(message: JsonDict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def last_user_text(body: JsonDict) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _message_text(message)
    return ""


def schema_properties(body: JsonDict) -> dict[str, JsonDict] | None:
    response_format = body.get("response_format") or {}
    if response_format.get("type") != "json_schema":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema") or {}
    properties = schema.get("properties")
    return properties if isinstance(properties, dict) else None


def choice_distribution(text: str, name: str, options: list[Any]) -> list[float]:
    """The "model's" distribution over one enum question's options: the hashed pick gets
    0.55..0.95 of the mass, the others share the rest. Its argmax is the temperature-0 answer;
    at temperature > 0 answers are drawn from it, and logprobs report it."""
    u = uniform(0, "answer", text, name)
    best = int(u * len(options))
    top = 0.55 + 0.4 * uniform(0, "confidence", text, name)
    rest = (1.0 - top) / max(1, len(options) - 1)
    return [top if i == best else rest for i in range(len(options))] if len(options) > 1 else [1.0]


def sampling(body: JsonDict) -> bool:
    """Answers are drawn (not argmax) when the request asks for temperature > 0."""
    t = body.get("temperature")
    return isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0


def ner_inputs(text: str) -> list[list[str]]:
    """The sentences of an NER prompt (llmal.tasks.ner.llm): the text after the last "Input:" up to
    "Output:", one sentence, or several numbered "[1] ..." lines; split on whitespace."""
    part = text.rsplit("Input:", 1)[-1].split("Output:", 1)[0].strip()
    lines = [ln.strip() for ln in part.splitlines() if ln.strip()]
    if lines and all(re.match(r"^\[\d+\] ", ln) for ln in lines):
        return [ln.split("] ", 1)[1].split() for ln in lines]
    return [part.split()]


def ner_entities(tokens: list[str], types: list[str]) -> list[JsonDict]:
    """The "model's" entities: every capitalised token after the first, its type by hash."""
    return [{"span": tok, "type": types[int(uniform(0, "ner", tok) * len(types))]}
            for n, tok in enumerate(tokens) if n > 0 and tok[:1].isupper()]


def expected_answer(body: JsonDict, index: int = 0) -> JsonDict | str:
    """The deterministic well-formed answer: a JSON object for a json_schema request, else text.

    At temperature 0 (or none) the argmax of each question's distribution; at temperature > 0
    choice `index` is a draw seeded by (text, request seed, index), so `n` choices and requests
    with other seeds differ. An NER schema (`entities`, or `sentences` of entities) gets
    ner_entities of each sentence."""
    text = last_user_text(body)
    properties = schema_properties(body)
    if properties is not None and set(properties) in ({"entities"}, {"sentences"}):
        ents = properties.get("entities") or properties["sentences"]["items"]["properties"]["entities"]
        types = list(ents["items"]["properties"]["type"]["enum"])
        found = [{"entities": ner_entities(tokens, types)} for tokens in ner_inputs(text)]
        return found[0] if "entities" in properties else {"sentences": found}
    if properties is None:
        return "yes" if uniform(0, "text", text) < 0.5 else "no"
    answer: JsonDict = {}
    for name, prop in properties.items():
        u = uniform(0, "answer", text, name)
        if isinstance(prop, dict) and prop.get("enum"):
            options = list(prop["enum"])
            dist = choice_distribution(text, name, options)
            if sampling(body):
                draw = uniform(0, "sample", text, name, body.get("seed"), index)
                pick = next((i for i, c in enumerate(itertools.accumulate(dist)) if draw < c), len(options) - 1)
            else:
                pick = max(range(len(options)), key=dist.__getitem__)
            answer[name] = options[pick]
        elif isinstance(prop, dict) and prop.get("type") == "array" and (prop.get("items") or {}).get("enum"):
            # a list of enum values (task multilabel's {"labels": [...]}): each option by hash
            answer[name] = [o for o in prop["items"]["enum"] if uniform(0, "member", text, name, o) < 0.3]
        elif isinstance(prop, dict) and prop.get("type") == "boolean":
            answer[name] = u < 0.5
        elif isinstance(prop, dict) and prop.get("type") in ("number", "integer"):
            answer[name] = int(u * 10)
        else:
            answer[name] = "yes" if u < 0.5 else "no"
    return answer


def malformed_kind(faults: Faults, body_hash: str) -> str | None:
    if uniform(faults.seed, "malformed", body_hash) >= faults.rate_malformed:
        return None
    return MALFORMED_KINDS[int(uniform(faults.seed, "malformed-kind", body_hash) * 3)]


def answer_content(body: JsonDict, malformed: str | None, index: int = 0) -> str:
    answer = expected_answer(body, index)
    if malformed is None:
        return answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
    if malformed == "not_json":
        return "I think the answer is probably yes, but it depends on the context."
    if malformed == "wrong_keys":
        if isinstance(answer, dict):
            return json.dumps({f"{key}_answer": value for key, value in answer.items()})
        return json.dumps({"answer": answer})
    # wrong_value: well-formed JSON with a value outside the enum
    if isinstance(answer, dict):
        return json.dumps({key: "maybe" for key in answer})
    return "maybe"


REASONING_MODEL = re.compile(r"^(?:[\w.-]+/)?(?:gpt-5(?![-.]?chat)|o[1-9])(?:$|[-.:@])", re.IGNORECASE)
# reasoning tokens per answer by effort (the default effort is medium), plus a per-request jitter
REASONING_BY_EFFORT = {"minimal": 0, "none": 0, "low": 48, "medium": 192, "high": 768}
# the rules of OpenAI's reasoning models: these keys give HTTP 400 (value None: any value)
REASONING_REJECTS = {"max_tokens": None, "temperature": 1, "top_p": 1, "logprobs": None,
                     "top_logprobs": None}


def is_reasoning_model(model: Any) -> bool:
    return isinstance(model, str) and bool(REASONING_MODEL.match(model))


def tokens_of(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def reasoning_tokens_for(body: JsonDict, body_hash: str) -> int:
    if not is_reasoning_model(body.get("model")):
        return 0
    base = REASONING_BY_EFFORT.get(str(body.get("reasoning_effort") or "medium"), 192)
    return base + int(uniform(0, "reasoning", body_hash) * base / 2) if base else 0


def usage_for(body: JsonDict, content: str, body_hash: str, cached: int = 0, n: int = 1) -> JsonDict:
    prompt_chars = sum(len(_message_text(m)) for m in body.get("messages") or [] if isinstance(m, dict))
    prompt_tokens = max(1, math.ceil(prompt_chars / 4))
    reasoning = reasoning_tokens_for(body, body_hash) * n
    completion_tokens = tokens_of(content) * n + reasoning
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": min(cached, prompt_tokens)},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def prefix_text(body: JsonDict) -> str:
    """The part of the prompt before the last user message: what a provider caches."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=len(messages))
    return "".join(_message_text(m) for m in messages[:last_user])


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def logprobs_of(content: str, top: int, body: JsonDict | None = None) -> JsonDict:
    """Token logprobs of `content`. A JSON answer is split into tokens at its strings (`"`,
    the string, `"`), and at each answer value `top_logprobs` lists the question's options with
    the log of their probability (choice_distribution); other content is split every 4 chars
    with a flat logprob."""
    def entry(piece: str, logprob: float, alternatives: list[tuple[str, float]]) -> JsonDict:
        alts = alternatives or [(piece, logprob)]
        return {"token": piece, "logprob": logprob, "bytes": list(piece.encode()),
                "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())}
                                 for t, lp in alts][:max(top, 0)]}

    properties = schema_properties(body or {}) or {}
    try:
        parsed = json.loads(content)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict) or not properties:
        pieces = [content[i:i + 4] for i in range(0, len(content), 4)] or [""]
        return {"content": [entry(p, -0.01, []) for p in pieces], "refusal": None}
    text = last_user_text(body or {})
    tokens: list[JsonDict] = []
    pos, key = 0, None
    for m in _STRING.finditer(content):
        if m.start() > pos:
            tokens.append(entry(content[pos:m.start()], -0.0001, []))
        inner = m.group()[1:-1]
        before = content[:m.start()].rstrip()
        tokens.append(entry('"', -0.0001, []))
        prop = properties.get(key) if key is not None and before.endswith(":") else None
        if isinstance(prop, dict) and prop.get("enum") and inner:
            options = list(prop["enum"])
            dist = choice_distribution(text, str(key), options)
            alts = sorted(((o, math.log(p)) for o, p in zip(options, dist)), key=lambda a: -a[1])
            own = dict(alts).get(inner, -0.0001)
            tokens.append(entry(inner, own, alts))
            key = None
        elif inner:
            tokens.append(entry(inner, -0.0001, []))
            key = inner if not before.endswith(":") else None
        tokens.append(entry('"', -0.0001, []))
        pos = m.end()
    if pos < len(content):
        tokens.append(entry(content[pos:], -0.0001, []))
    return {"content": tokens, "refusal": None}


def chat_completion(body: JsonDict, content: str, usage: JsonDict, malformed: str | None = None) -> JsonDict:
    """The completion: `n` choices; at temperature > 0 choice i > 0 is its own draw."""
    n = int(body.get("n") or 1)
    contents = [content] + [content if malformed or not sampling(body) else answer_content(body, None, i)
                            for i in range(1, n)]
    top = int(body.get("top_logprobs") or 0)
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [{
            "index": i,
            "message": {"role": "assistant", "content": c, "refusal": None},
            "logprobs": logprobs_of(c, top, body) if body.get("logprobs") else None,
            "finish_reason": "stop",
        } for i, c in enumerate(contents)],
        "usage": usage,
        "system_fingerprint": "fp_llmal_test",
    }


def request_error(body: Any) -> str | None:
    """Why a chat request is invalid (a 400), or None."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "You must provide a model parameter."
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array."
    if is_reasoning_model(body["model"]):
        for key, accepted in REASONING_REJECTS.items():
            if key not in body or (accepted is not None and body[key] == accepted):
                continue
            if key == "max_tokens":
                return ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                        "Use 'max_completion_tokens' instead.")
            if accepted is not None:
                return (f"Unsupported value: '{key}' does not support {body[key]} with this model. "
                        f"Only the default ({accepted}) value is supported.")
            return f"Unsupported parameter: '{key}' is not supported with this model."
    elif "reasoning_effort" in body:
        return "Unrecognized request argument supplied: reasoning_effort"
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
        return f"Invalid 'n': {n!r}; expected an integer from 1 to 128."
    return None


class ServerState:
    """Everything the server knows: files, batches, the ledger, attempt counts."""

    def __init__(self, state_dir: Path, faults: Faults) -> None:
        self.state_dir = state_dir
        self.faults = faults
        self.files_dir = state_dir / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.files: dict[str, JsonDict] = {}
        self.batches: dict[str, JsonDict] = {}
        self.batch_order: list[str] = []
        self.batch_custom_ids: dict[str, list[str]] = {}
        self.attempts: dict[str, int] = {}
        self.batch_attempts: dict[str, int] = {}
        self.uploads = 0                               # POST /v1/files answered so far
        self.billed: list[JsonDict] = []
        self.faults_log: list[JsonDict] = []
        self.arrivals: list[JsonDict] = []
        self.ledger_file = open(state_dir / "ledger.jsonl", "a", encoding="utf-8")
        self.work: queue.Queue[str | None] = queue.Queue()
        self.stopping = threading.Event()
        self.prefixes: set[tuple[str, str]] = set()   # (model, prefix) seen: provider prompt cache

    def answer(self, body: JsonDict, body_hash: str) -> tuple[str, str | None, JsonDict]:
        """(content, malformed kind, usage) of one billed answer; a repeated prefix is cached."""
        malformed = malformed_kind(self.faults, body_hash)
        content = answer_content(body, malformed)
        user = last_user_text(body)
        for key, planted in (json.loads(self.faults.planted) if self.faults.planted else {}).items():
            if key in user:
                content, malformed = planted, "planted"
                break
        prefix = prefix_text(body)
        key = (str(body.get("model")), prefix)
        with self.lock:
            seen = key in self.prefixes
            self.prefixes.add(key)
        tokens = len(prefix) // 4
        block = max(1, self.faults.prefix_cache_block)
        cached = tokens // block * block if seen and tokens >= self.faults.prefix_cache_min_tokens else 0
        return content, malformed, usage_for(body, content, body_hash, cached, int(body.get("n") or 1))

    # ---- ledger
    def bill(self, entries: list[JsonDict]) -> None:
        with self.lock:
            if self.ledger_file.closed:
                return
            self.billed.extend(entries)
            self.ledger_file.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries))
            self.ledger_file.flush()

    def ledger(self) -> JsonDict:
        with self.lock:
            return {
                "billed": list(self.billed),
                "faults": list(self.faults_log),
                "arrivals": list(self.arrivals),
                "batches": [
                    {**self.batches[b], "custom_ids": self.batch_custom_ids.get(b, [])}
                    for b in self.batch_order
                ],
                "files": [{k: f[k] for k in ("id", "filename", "purpose")} for f in self.files.values()],
            }

    # ---- files
    def add_file(self, content: bytes, filename: str, purpose: str) -> JsonDict:
        file_id = "file-" + uuid.uuid4().hex[:24]
        (self.files_dir / file_id).write_bytes(content)
        obj = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
               "filename": filename, "purpose": purpose, "status": "processed", "status_details": None}
        with self.lock:
            self.files[file_id] = obj
        return obj

    def file_content(self, file_id: str) -> bytes | None:
        with self.lock:
            if file_id not in self.files:
                return None
        return (self.files_dir / file_id).read_bytes()


class BatchWorker(threading.Thread):
    """Processes created batches one after another, like the real service (but fast)."""

    def __init__(self, state: ServerState) -> None:
        super().__init__(daemon=True, name="batch-worker")
        self.state = state

    def run(self) -> None:
        while True:
            batch_id = self.state.work.get()
            if batch_id is None or self.state.stopping.is_set():
                return
            self.process(batch_id)

    def _set(self, batch_id: str, **changes: Any) -> JsonDict:
        with self.state.lock:
            self.state.batches[batch_id].update(changes)
            return dict(self.state.batches[batch_id])

    def process(self, batch_id: str) -> None:
        state, faults = self.state, self.state.faults
        batch = self._set(batch_id, status="in_progress", in_progress_at=int(time.time()))
        raw = state.file_content(batch["input_file_id"]) or b""
        lines: list[JsonDict] = []
        for number, text in enumerate(raw.decode("utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                self._set(batch_id, status="failed", failed_at=int(time.time()), errors={
                    "object": "list",
                    "data": [{"code": "invalid_json_line", "line": number,
                              "message": f"Line {number} is not valid JSON.", "param": None}]})
                return
        custom_ids = [str(line.get("custom_id")) for line in lines]
        with state.lock:
            state.batch_custom_ids[batch_id] = custom_ids
            index = state.batch_order.index(batch_id)
        expires = index < faults.batch_expire_first
        n_done = math.floor(len(lines) * faults.batch_expire_fraction) if expires else len(lines)
        self._set(batch_id, request_counts={"total": len(lines), "completed": 0, "failed": 0})
        outputs: list[str] = []
        errors: list[str] = []
        slices = 5
        per_slice = max(1, math.ceil(len(lines) / slices))
        completed = failed = 0
        for start in range(0, max(len(lines), 1), per_slice):
            if state.stopping.wait(faults.batch_seconds / slices):
                return  # the server is shutting down: leave the batch unfinished
            with state.lock:
                cancelling = state.batches[batch_id]["status"] == "cancelling"
            billed: list[JsonDict] = []
            for position in range(start, min(start + per_slice, len(lines))):
                line = lines[position]
                custom_id = str(line.get("custom_id"))
                if position >= n_done or cancelling:
                    code = "batch_cancelled" if cancelling else "batch_expired"
                    message = ("This request was cancelled." if cancelling else
                               "This request could not be executed before the completion window expired.")
                    errors.append(json.dumps({"id": "batch_req_" + uuid.uuid4().hex[:24],
                                              "custom_id": custom_id, "response": None,
                                              "error": {"code": code, "message": message}}))
                    failed += 1
                    continue
                out, bill = self.answer_line(batch_id, line)
                if out["response"]["status_code"] == 200:
                    outputs.append(json.dumps(out, ensure_ascii=False))
                    completed += 1
                else:
                    errors.append(json.dumps(out, ensure_ascii=False))
                    failed += 1
                if bill is not None:
                    billed.append(bill)
            if billed:
                state.bill(billed)
            self._set(batch_id, request_counts={"total": len(lines), "completed": completed,
                                                "failed": failed})
        with state.lock:
            cancelled = state.batches[batch_id]["status"] == "cancelling"
        output_file = state.add_file("".join(l + "\n" for l in outputs).encode(), f"{batch_id}_output.jsonl",
                                     "batch_output") if outputs else None
        error_file = state.add_file("".join(l + "\n" for l in errors).encode(), f"{batch_id}_error.jsonl",
                                    "batch_output") if errors else None
        final = "cancelled" if cancelled else ("expired" if expires else "completed")
        now = int(time.time())
        self._set(batch_id, status=final,
                  output_file_id=output_file["id"] if output_file else None,
                  error_file_id=error_file["id"] if error_file else None,
                  **{f"{final}_at": now, "finalizing_at": now})

    def answer_line(self, batch_id: str, line: JsonDict) -> tuple[JsonDict, JsonDict | None]:
        state, faults = self.state, self.state.faults
        custom_id = str(line.get("custom_id"))
        body = line.get("body")
        request_id = "req_" + uuid.uuid4().hex[:24]
        line_id = "batch_req_" + uuid.uuid4().hex[:24]
        problem = request_error(body)
        if problem is None and line.get("url") != "/v1/chat/completions":
            problem = f"Unsupported url {line.get('url')!r}."
        if problem is not None:
            return ({"id": line_id, "custom_id": custom_id,
                     "response": {"status_code": 400, "request_id": request_id,
                                  "body": {"error": {"message": problem, "type": "invalid_request_error",
                                                     "param": None, "code": None}}},
                     "error": None}, None)
        with state.lock:
            attempt = state.batch_attempts.get(custom_id, 0)
            state.batch_attempts[custom_id] = attempt + 1
        if attempt < faults.transient_attempts and uniform(faults.seed, "batch500", custom_id, attempt) < faults.batch_rate_500:
            with state.lock:
                state.faults_log.append({"custom_id": custom_id, "attempt": attempt, "fault": "batch_500",
                                         "batch_id": batch_id, "t": time.time()})
            return ({"id": line_id, "custom_id": custom_id,
                     "response": {"status_code": 500, "request_id": request_id,
                                  "body": {"error": {"message": "The server had an error processing your request.",
                                                     "type": "server_error", "param": None, "code": None}}},
                     "error": None}, None)
        body_hash = canonical_hash(body)
        content, malformed, usage = state.answer(body, body_hash)
        completion = chat_completion(body, content, usage, malformed)
        bill = {"kind": "batch", "batch_id": batch_id, "custom_id": custom_id, "body_hash": body_hash,
                "model": body.get("model"), "usage": usage, "content": content, "malformed": malformed,
                "t": time.time()}
        return ({"id": line_id, "custom_id": custom_id,
                 "response": {"status_code": 200, "request_id": request_id, "body": completion},
                 "error": None}, bill)


def _openai_error(message: str, kind: str, code: str | None = None) -> JsonDict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_HTTPServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access log
        pass

    # ---- plumbing
    @property
    def state(self) -> ServerState:
        return self.server.state

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload: JsonDict | bytes, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:24])
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _authorized(self) -> bool:
        expected = self.state.faults.api_key
        if expected is None:
            return True
        given = self.headers.get("Authorization", "")
        if given == f"Bearer {expected}":
            return True
        # like a careless server, echo what was sent: clients must keep it out of their logs
        self._send(401, _openai_error(f"Incorrect API key provided: {given.removeprefix('Bearer ')}.",
                                      "invalid_request_error", "invalid_api_key"))
        return False

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/_ledger":
            return self._send(200, self.state.ledger())
        if path == "/_health":
            return self._send(200, {"ok": True})
        if not self._authorized():
            return None
        if m := re.fullmatch(r"/v1/files/([^/]+)/content", path):
            content = self.state.file_content(m.group(1))
            if content is None:
                return self._send(404, _openai_error(f"No such File object: {m.group(1)}", "invalid_request_error"))
            return self._send(200, content, content_type="application/octet-stream")
        if m := re.fullmatch(r"/v1/files/([^/]+)", path):
            with self.state.lock:
                obj = self.state.files.get(m.group(1))
            if obj is None:
                return self._send(404, _openai_error(f"No such File object: {m.group(1)}", "invalid_request_error"))
            return self._send(200, obj)
        if m := re.fullmatch(r"/v1/batches/([^/]+)", path):
            with self.state.lock:
                obj = self.state.batches.get(m.group(1))
                obj = dict(obj) if obj else None
            if obj is None:
                return self._send(404, _openai_error(f"No batch found with id '{m.group(1)}'.", "invalid_request_error"))
            return self._send(200, obj)
        if path == "/v1/batches":
            return self._list_batches(parse_qs(parts.query))
        if path == "/v1/files" and not self.state.faults.no_file_list:
            return self._list_files(parse_qs(parts.query))
        return self._send(404, _openai_error(f"Unknown path {path}", "invalid_request_error"))

    def _list_batches(self, query: dict[str, list[str]]) -> None:
        with self.state.lock:
            newest_first = [dict(self.state.batches[b]) for b in reversed(self.state.batch_order)]
        self._send_page(newest_first, query)

    def _list_files(self, query: dict[str, list[str]]) -> None:
        purpose = (query.get("purpose") or [None])[0]
        with self.state.lock:
            newest_first = [dict(f) for f in reversed(self.state.files.values())
                            if purpose is None or f["purpose"] == purpose]
        self._send_page(newest_first, query)

    def _send_page(self, newest_first: list[JsonDict], query: dict[str, list[str]]) -> None:
        """One page of a list endpoint (`limit`, `after`), newest first, as OpenAI pages them."""
        limit = max(1, min(100, int((query.get("limit") or ["20"])[0])))
        after = (query.get("after") or [None])[0]
        start = 0
        if after is not None:
            ids = [b["id"] for b in newest_first]
            start = ids.index(after) + 1 if after in ids else len(ids)
        page = newest_first[start:start + limit]
        self._send(200, {"object": "list", "data": page,
                         "first_id": page[0]["id"] if page else None,
                         "last_id": page[-1]["id"] if page else None,
                         "has_more": start + limit < len(newest_first)})

    def _fault_after_making(self, kind: str, rate: float, number: int, made: str) -> bool:
        """Whether to answer 500 although `made` (a batch or file id) now exists; logged."""
        if uniform(self.state.faults.seed, kind, number) >= rate:
            return False
        with self.state.lock:
            self.state.faults_log.append({"fault": kind, "made": made, "number": number, "t": time.time()})
        self._send(500, _openai_error("The server had an error while processing your request.", "server_error"))
        return True

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        raw = self._read_body()
        if not self._authorized():
            return None
        if path == "/v1/chat/completions":
            return self._chat(raw)
        if path == "/v1/files":
            return self._upload(raw)
        if path == "/v1/batches":
            return self._create_batch(raw)
        if m := re.fullmatch(r"/v1/batches/([^/]+)/cancel", path):
            with self.state.lock:
                batch = self.state.batches.get(m.group(1))
                if batch is not None and batch["status"] in ("validating", "in_progress"):
                    batch.update(status="cancelling", cancelling_at=int(time.time()))
                obj = dict(batch) if batch else None
            if obj is None:
                return self._send(404, _openai_error(f"No batch found with id '{m.group(1)}'.", "invalid_request_error"))
            return self._send(200, obj)
        return self._send(404, _openai_error(f"Unknown path {path}", "invalid_request_error"))

    def _chat(self, raw: bytes) -> None:
        state, faults = self.state, self.state.faults
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return self._send(400, _openai_error("We could not parse the JSON body of your request.",
                                                 "invalid_request_error"))
        problem = request_error(body)
        if problem is not None:
            return self._send(400, _openai_error(problem, "invalid_request_error"))
        body_hash = canonical_hash(body)
        now = time.time()
        with state.lock:
            attempt = state.attempts.get(body_hash, 0)
            state.attempts[body_hash] = attempt + 1
            state.arrivals.append({"body_hash": body_hash, "attempt": attempt, "t": now})
        fault = None
        if uniform(faults.seed, "fail", body_hash) < faults.rate_fail:
            fault = "fail"
        elif attempt < faults.transient_attempts:
            u = uniform(faults.seed, "transient", body_hash, attempt)
            if u < faults.rate_429:
                fault = "429"
            elif u < faults.rate_429 + faults.rate_500:
                fault = "500"
            elif u < faults.rate_429 + faults.rate_500 + faults.rate_slow:
                fault = "slow"
            elif u < faults.rate_429 + faults.rate_500 + faults.rate_slow + faults.rate_cutoff:
                fault = "cutoff"
        if fault is not None:
            with state.lock:
                state.faults_log.append({"body_hash": body_hash, "attempt": attempt, "fault": fault, "t": now,
                                         "retry_after": faults.retry_after if fault == "429" else None})
        if fault == "429":
            seconds = faults.retry_after
            return self._send(429, _openai_error("Rate limit reached for requests. Please try again later.",
                                                 "requests", "rate_limit_exceeded"),
                              headers={"retry-after-ms": str(int(seconds * 1000)),
                                       "retry-after": str(max(0, math.ceil(seconds)))})
        if fault in ("500", "fail"):
            return self._send(500, _openai_error("The server had an error while processing your request.",
                                                 "server_error"))
        if fault == "slow":
            time.sleep(faults.slow_seconds)
        content, malformed, usage = state.answer(body, body_hash)
        state.bill([{"kind": "chat", "custom_id": None, "body_hash": body_hash, "attempt": attempt,
                     "model": body.get("model"), "usage": usage, "content": content, "malformed": malformed,
                     "slow": fault == "slow", "cutoff": fault == "cutoff", "t": time.time()}])
        if fault == "cutoff":
            return self._send_cut_off(chat_completion(body, content, usage, malformed), body_hash)
        return self._send(200, chat_completion(body, content, usage, malformed))

    def _send_cut_off(self, payload: JsonDict, body_hash: str) -> None:
        """A billed 200 whose body breaks off halfway: as JSON cut short (a matching
        Content-Length), or with the full length announced and the connection closed early."""
        data = json.dumps(payload, ensure_ascii=False).encode()
        cut = data[:len(data) // 2]
        announced = len(cut) if uniform(self.state.faults.seed, "cutoff-kind", body_hash) < 0.5 else len(data)
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(announced))
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.wfile.write(cut)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _upload(self, raw: bytes) -> None:
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            return self._send(400, _openai_error("Expected multipart/form-data.", "invalid_request_error"))
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        purpose, content, filename = None, None, "upload.jsonl"
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "purpose":
                purpose = (part.get_payload(decode=True) or b"").decode().strip()
            elif name == "file":
                content = part.get_payload(decode=True) or b""
                filename = part.get_filename() or filename
        if purpose != "batch" or content is None:
            return self._send(400, _openai_error("Need a 'file' and purpose 'batch'.", "invalid_request_error"))
        made = self.state.add_file(content, filename, purpose)
        with self.state.lock:
            number = self.state.uploads
            self.state.uploads += 1
        if self._fault_after_making("upload_500", self.state.faults.upload_rate_500, number, made["id"]):
            return None
        return self._send(200, made)

    def _create_batch(self, raw: bytes) -> None:
        try:
            request = json.loads(raw)
        except json.JSONDecodeError:
            return self._send(400, _openai_error("Invalid JSON body.", "invalid_request_error"))
        input_file_id = request.get("input_file_id")
        with self.state.lock:
            known = input_file_id in self.state.files
        if not known:
            return self._send(400, _openai_error(f"No such File object: {input_file_id}", "invalid_request_error"))
        if request.get("endpoint") != "/v1/chat/completions":
            return self._send(400, _openai_error("Unsupported endpoint.", "invalid_request_error"))
        batch_id = "batch_" + uuid.uuid4().hex[:24]
        now = int(time.time())
        batch = {
            "id": batch_id, "object": "batch", "endpoint": request["endpoint"], "errors": None,
            "input_file_id": input_file_id, "completion_window": request.get("completion_window", "24h"),
            "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": now,
            "in_progress_at": None, "expires_at": now + 86400, "finalizing_at": None, "completed_at": None,
            "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": request.get("metadata"),
        }
        with self.state.lock:
            self.state.batches[batch_id] = batch
            self.state.batch_order.append(batch_id)
            number = len(self.state.batch_order) - 1
        self.state.work.put(batch_id)
        if self.state.faults.batch_create_delay:
            time.sleep(self.state.faults.batch_create_delay)
        if self._fault_after_making("create_500", self.state.faults.batch_create_rate_500, number, batch_id):
            return None
        return self._send(200, dict(batch))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: ServerState) -> None:
        super().__init__(address, Handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return   # a client killed or timed out mid-request: nothing to report
        super().handle_error(request, client_address)


class OpenAITestServer:
    """The server, run in a background thread of the calling process.

    with OpenAITestServer(tmp_path, Faults(rate_429=0.1)) as server:
        client = OpenAI(base_url=server.base_url, api_key="x")
    """

    def __init__(self, state_dir: Path, faults: Faults | None = None, port: int = 0) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state = ServerState(state_dir, faults or Faults())
        self.httpd = _HTTPServer(("127.0.0.1", port), self.state)
        self.worker = BatchWorker(self.state)
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="openai-test-server")

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "OpenAITestServer":
        self.worker.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.state.work.put(None)
        if self.worker.is_alive():
            self.worker.join(timeout=10)
        with self.state.lock:
            self.state.ledger_file.close()

    def ledger(self) -> JsonDict:
        return self.state.ledger()

    def __enter__(self) -> "OpenAITestServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_ledger_file(state_dir: Path) -> list[JsonDict]:
    """The billed entries from `<state>/ledger.jsonl` (works after the server is gone)."""
    path = state_dir / "ledger.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def start_subprocess(state_dir: Path, faults: Faults | None = None, python: str | None = None,
                     timeout: float = 30.0, port: int = 0) -> tuple["Any", str]:
    """Start `python tests/openai_server.py` as a subprocess; returns (Popen, base_url)."""
    import subprocess

    args = [python or sys.executable, str(Path(__file__).resolve()), "--port", str(port), "--state", str(state_dir)]
    for name, value in asdict(faults or Faults()).items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("READY "):
            return process, line.split(" ", 1)[1].strip()
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"openai test server did not start (state dir {state_dir})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state", type=Path, required=True, help="directory for files and ledger.jsonl")
    for f in fields(Faults):
        flag = "--" + f.name.replace("_", "-")
        kind = {"int": int, "float": float}.get(str(f.type), str)
        parser.add_argument(flag, dest=f.name, type=kind, default=f.default,
                            help=f"{FAULT_HELP.get(f.name, '')} (default {f.default})")
    return parser


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    server = OpenAITestServer(ns.state, Faults.from_args(ns), port=ns.port).start()
    (ns.state / "base_url").write_text(server.base_url + "\n", encoding="utf-8")
    print(f"READY {server.base_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
