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
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

RequestLine = dict[str, Any]
ResponseLine = dict[str, Any]
Store = Callable[[ResponseLine], None]


class Executor(Protocol):
    name: str

    def run(self, requests: Sequence[RequestLine], store: Store) -> None:
        """Send `requests`; call `store(line)` once per response line (success or error)."""


def error_line(custom_id: str, code: str, message: str) -> ResponseLine:
    return {"id": None, "custom_id": custom_id, "response": None,
            "error": {"code": code, "message": message}}


def ok_line(custom_id: str, body: dict[str, Any], request_id: str = "") -> ResponseLine:
    return {"id": None, "custom_id": custom_id,
            "response": {"status_code": 200, "request_id": request_id, "body": body},
            "error": None}
