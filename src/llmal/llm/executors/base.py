"""The executor interface: batch-JSONL requests in, batch-JSONL responses out.

Request line (OpenAI batch input format):
    {"custom_id": "<sha256 of the body>", "method": "POST", "url": "/v1/chat/completions",
     "body": {...chat completion request...}}
Response line (OpenAI batch output format):
    {"id": "...", "custom_id": "...",
     "response": {"status_code": 200, "request_id": "...", "body": {...chat completion...}} | null,
     "error": {"code": "...", "message": "..."} | null}

An executor sends what it is given and hands every response line to `store` the moment it has
it; the caller writes it to the response cache right away, so a crash loses nothing that was
paid for. Executors never see the cache: the caller only gives them requests not cached yet.

Lines that arrive together (a downloaded batch output file, a vLLM chunk) go through
`store_all(store, lines)`: when the store offers a `many(lines)` method (the caller's cache
store does) they are written in one transaction, else `store` gets them one by one. An executor
treats them as stored once `store_all` returns, and only then records that it has them (e.g.
marks a batch collected), so a crash in between costs a re-download, never an answer.
A plain callable stays a valid store: `many` is optional.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Protocol, Sequence

RequestLine = dict[str, Any]
ResponseLine = dict[str, Any]
Store = Callable[[ResponseLine], None]


class Executor(Protocol):
    name: str

    def run(self, requests: Sequence[RequestLine], store: Store) -> None:
        """Send `requests`; one response line per request (success or error) goes to `store`,
        by `store(line)` or, for lines that arrive together, `store_all(store, lines)`."""


def store_all(store: Store, lines: Sequence[ResponseLine]) -> None:
    """Hand `lines` to `store` together: through `store.many` when it has one, else one by one."""
    if not lines:
        return
    many = getattr(store, "many", None)
    if callable(many):
        many(lines)
    else:
        for line in lines:
            store(line)


def compact_json(obj: Any) -> str:
    """`obj` as one line of JSON, UTF-8 text kept as is: how request and response lines are written."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def error_line(custom_id: str, code: str, message: str) -> ResponseLine:
    return {"id": None, "custom_id": custom_id, "response": None,
            "error": {"code": code, "message": message}}


def ok_line(custom_id: str, body: dict[str, Any], request_id: str = "") -> ResponseLine:
    return {"id": None, "custom_id": custom_id,
            "response": {"status_code": 200, "request_id": request_id, "body": body},
            "error": None}
