"""Entity spans and BIO tags of one sentence, and the conversions between them.

A span is (start, end, type) over token positions, `end` exclusive. Tags are BIO strings
("O", "B-PER", "I-PER"); the tag set of a task is `tag_names(types)`: "O", then B-/I- of every
declared entity type in order (index 0 is always "O").

`spans_to_tags` and `tags_to_spans` are exact inverses for valid input; `check_tags` names the
first problem of a tag sequence (an I- tag that does not continue a B-/I- of the same type, an
unknown type, a malformed tag), so readers can point at the file and line.
"""
from __future__ import annotations

import json
from typing import Iterable, Sequence

Span = tuple[int, int, str]


class SpanError(ValueError):
    """A tag sequence or span list is malformed; the message says where."""


def tag_names(types: Sequence[str]) -> list[str]:
    return ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]


def check_tags(tags: Sequence[str], types: Sequence[str]) -> tuple[int, str] | None:
    """(position, problem) of the first invalid tag, or None when the sequence is valid BIO."""
    known = set(types)
    prev = "O"
    for n, tag in enumerate(tags):
        if tag != "O":
            prefix, sep, typ = tag.partition("-")
            if not sep or prefix not in ("B", "I") or not typ:
                return n, f"tag {tag!r} is not O, B-<type> or I-<type>"
            if typ not in known:
                return n, f"unknown entity type {typ!r} in tag {tag!r} (declared: {list(types)})"
            if prefix == "I" and prev[2:] != typ:
                return n, (f"tag {tag!r} follows {prev!r}: an I- tag must continue a B- or I- "
                           f"of the same type")
        prev = tag
    return None


def tags_to_spans(tags: Sequence[str]) -> list[Span]:
    """Spans of a valid BIO sequence (check_tags first)."""
    spans: list[Span] = []
    start, typ = -1, ""
    for n, tag in enumerate(list(tags) + ["O"]):
        if start >= 0 and not (tag.startswith("I-") and tag[2:] == typ):
            spans.append((start, n, typ))
            start = -1
        if tag.startswith("B-"):
            start, typ = n, tag[2:]
    return spans


def spans_to_tags(spans: Iterable[Span], n_tokens: int) -> list[str]:
    tags = ["O"] * n_tokens
    for start, end, typ in sorted(spans):
        if not 0 <= start < end <= n_tokens:
            raise SpanError(f"span ({start}, {end}) outside a sentence of {n_tokens} tokens")
        if any(t != "O" for t in tags[start:end]):
            raise SpanError(f"span ({start}, {end}, {typ}) overlaps another span")
        tags[start] = f"B-{typ}"
        for i in range(start + 1, end):
            tags[i] = f"I-{typ}"
    return tags


def spans_json(spans: Iterable[Span]) -> str:
    """The annotation table's `spans` cell: a JSON list of [start, end, type], sorted."""
    return json.dumps([[int(s), int(e), str(t)] for s, e, t in sorted(spans)], ensure_ascii=False)


def spans_of_json(text: str) -> list[Span]:
    if not text:
        return []
    return [(int(s), int(e), str(t)) for s, e, t in json.loads(text)]


def find_span(tokens: Sequence[str], words: Sequence[str], taken: Sequence[Span]) -> tuple[int, int] | None:
    """Where `words` (a span's text split on whitespace) occurs in `tokens`.

    The rule for repeated strings: the leftmost occurrence that overlaps no span already placed
    for this answer; an answer naming the same string twice thus labels its first two
    occurrences, in order. None when the string does not occur (or every occurrence is taken)."""
    k = len(words)
    if k == 0:
        return None
    for start in range(len(tokens) - k + 1):
        if list(tokens[start:start + k]) == list(words):
            end = start + k
            if not any(start < e and s < end for s, e, _ in taken):
                return start, end
    return None
