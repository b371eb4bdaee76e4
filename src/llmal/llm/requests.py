"""Batch-JSONL request lines: one chat-completion request per item.

The body holds everything that decides the answer (model, rendered messages with the codebook,
response format, and the sampling keys of the model's request profile: profiles.py); its sha256
over canonical JSON is the `custom_id` (the batch line's id). The response cache keys an answer
by the custom_id and the backend that gave it (backend.py). Identical bodies (e.g. duplicate
texts) get one custom_id and are sent once.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from llmal.llm.executors.base import RequestLine, compact_json
from llmal.llm.profiles import DEFAULT_MAX_TOKENS, sampling_body
from llmal.llm.prompts import Demonstration, PromptTemplate, canonical_json

CHAT_URL = "/v1/chat/completions"
__all__ = ["DEFAULT_MAX_TOKENS", "build_requests", "chat_body", "custom_id_of", "request_line"]


def custom_id_of(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def request_line(body: dict[str, Any]) -> RequestLine:
    return {"custom_id": custom_id_of(body), "method": "POST", "url": CHAT_URL, "body": body}


def chat_body(template: PromptTemplate, spec: Mapping[str, Any], text: str,
              demonstrations: Sequence[Demonstration] = (), label_names: Sequence[str] = (),
              positive: str = "", guidelines: str = "") -> dict[str, Any]:
    return {
        "model": str(spec["model"]),
        "messages": template.render_messages(text, demonstrations, label_names, positive, guidelines),
        "response_format": template.response_format(),
        **sampling_body(spec),
    }


@dataclass(frozen=True)
class RequestPlan:
    """Unique request lines, and the custom_id each item maps to (same order as the items)."""
    lines: list[RequestLine]
    item_ids: list[str]
    custom_ids: list[str]


def build_requests(items: pd.DataFrame, template: PromptTemplate, spec: Mapping[str, Any],
                   label_names: Sequence[str], positive: str,
                   demonstrations: Mapping[str, Sequence[Demonstration]] | None = None,
                   guidelines: str = "") -> RequestPlan:
    """One request per item (columns id, text); duplicates of a body are kept once."""
    for col in ("id", "text"):
        if col not in items.columns:
            raise KeyError(f"items table has no column {col!r}")
    lines: dict[str, RequestLine] = {}
    item_ids: list[str] = []
    custom_ids: list[str] = []
    for item_id, text in zip(items["id"].astype(str), items["text"]):
        if not isinstance(text, str):
            raise ValueError(f"item {item_id!r}: text is {type(text).__name__}, not a string")
        demos = demonstrations.get(item_id, ()) if demonstrations else ()
        line = request_line(chat_body(template, spec, text, demos, label_names, positive, guidelines))
        lines.setdefault(line["custom_id"], line)
        item_ids.append(item_id)
        custom_ids.append(line["custom_id"])
    return RequestPlan(list(lines.values()), item_ids, custom_ids)


def write_jsonl(lines: Iterable[Mapping[str, Any]], path: str | Path) -> None:
    """Write atomically (tmp file + rename), one JSON object per line, UTF-8."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(compact_json(line) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL file; a bad line raises an error naming the file and line number."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{n}: expected a JSON object per line")
            out.append(obj)
    return out
