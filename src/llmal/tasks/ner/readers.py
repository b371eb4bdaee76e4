"""Readers of sequence-labelling files: CoNLL-style columns and JSONL with tokens and spans.

CoNLL: one token per line, the token in the first column and its BIO tag in the last (columns
split on whitespace), a blank line between sentences; `-DOCSTART-` lines are skipped.
JSONL: one sentence per line, `{"id": ..., "tokens": [...], "spans": [...]}` where a span is
`{"start": i, "end": j, "type": T}` or `[i, j, T]` over token positions (end exclusive), or
`"tags": [...]` (BIO) instead of spans; `id` is optional.

Every problem raises NerDataError naming the file and line: a line without a tag, an I- tag
without a B- of its type, an unknown entity type, a span outside the sentence or overlapping
another.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from llmal.tasks.ner.spans import SpanError, check_tags, spans_to_tags


class NerDataError(ValueError):
    """A sequence-labelling file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Sentence:
    id: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    line: int          # where the sentence starts in its file (1-based)


NER_FORMATS = ("conll", "jsonl")


def detect_ner_format(path: str | Path, format: str | None = None) -> str:
    if format:
        if format not in NER_FORMATS:
            raise NerDataError(f"{path}: format {format!r} is not one of {list(NER_FORMATS)} "
                               "(task: ner)")
        return format
    return "jsonl" if Path(path).suffix.lower() in (".jsonl", ".json", ".ndjson") else "conll"


def read_sentences(path: str | Path, types: Sequence[str], format: str | None = None) -> list[Sentence]:
    path = Path(path)
    if not path.is_file():
        raise NerDataError(f"{path}: file not found")
    fmt = detect_ner_format(path, format)
    text = path.read_text(encoding="utf-8-sig")
    sentences = read_conll(text, types, str(path)) if fmt == "conll" else read_jsonl(text, types, str(path))
    if not sentences:
        raise NerDataError(f"{path}: no sentences")
    return sentences


def read_conll(text: str, types: Sequence[str], where: str) -> list[Sentence]:
    out: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []

    def close() -> None:
        if not tokens:
            return
        problem = check_tags(tags, types)
        if problem is not None:
            pos, msg = problem
            raise NerDataError(f"{where}:{lines[pos]}: {msg}")
        out.append(Sentence(str(len(out)), tuple(tokens), tuple(tags), lines[0]))
        tokens.clear(), tags.clear(), lines.clear()

    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            close()
            continue
        if line.startswith("-DOCSTART-"):
            close()
            continue
        cols = line.split()
        if len(cols) < 2:
            raise NerDataError(f"{where}:{n}: expected a token and its tag, got {raw!r}")
        tokens.append(cols[0])
        tags.append(cols[-1])
        lines.append(n)
    close()
    return out


def _span_of(obj: Any, where: str) -> tuple[int, int, str]:
    if isinstance(obj, dict):
        try:
            return int(obj["start"]), int(obj["end"]), str(obj["type"])
        except (KeyError, TypeError, ValueError):
            raise NerDataError(f"{where}: span {obj!r} needs integer start, end and a type") from None
    if isinstance(obj, (list, tuple)) and len(obj) == 3:
        return int(obj[0]), int(obj[1]), str(obj[2])
    raise NerDataError(f"{where}: span {obj!r} is neither {{start, end, type}} nor [start, end, type]")


def read_jsonl(text: str, types: Sequence[str], where: str) -> list[Sentence]:
    out: list[Sentence] = []
    known = set(types)
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        at = f"{where}:{n}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            raise NerDataError(f"{at}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("tokens"), list) or not obj["tokens"]:
            raise NerDataError(f"{at}: expected an object with a non-empty list `tokens`")
        tokens = [str(t) for t in obj["tokens"]]
        if "tags" in obj:
            tags = [str(t) for t in obj["tags"]]
            if len(tags) != len(tokens):
                raise NerDataError(f"{at}: {len(tags)} tags for {len(tokens)} tokens")
            problem = check_tags(tags, types)
            if problem is not None:
                raise NerDataError(f"{at}: token {problem[0]}: {problem[1]}")
        else:
            spans = [_span_of(s, at) for s in obj.get("spans") or []]
            for s in spans:
                if s[2] not in known:
                    raise NerDataError(f"{at}: unknown entity type {s[2]!r} (declared: {list(types)})")
            try:
                tags = spans_to_tags(spans, len(tokens))
            except SpanError as e:
                raise NerDataError(f"{at}: {e}") from None
        sid = str(obj["id"]) if obj.get("id") is not None else str(len(out))
        out.append(Sentence(sid, tuple(tokens), tuple(tags), n))
    return out
