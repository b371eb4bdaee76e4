"""Strict parsing of a chat-completion body into per-question answers.

The answer must be one JSON object with exactly the template's question names as keys, each
value one of that question's choices (outer whitespace and letter case are ignored). Anything
else - empty content, prose around the JSON, a markdown fence, truncated JSON, a refusal, a
missing, extra or duplicate key, an answer outside the choices - is `invalid`, with the raw text
kept and a reason; an answer is never guessed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from llmal.llm.prompts import Question


@dataclass(frozen=True)
class ParsedAnswer:
    ok: bool
    raw: str
    answers: dict[str, str] = field(default_factory=dict)
    reason: str = ""


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def parse_answer_text(text: str, questions: Sequence[Question]) -> ParsedAnswer:
    """Parse the model's text; `ok` only for an exact, complete answer object."""
    def invalid(reason: str) -> ParsedAnswer:
        return ParsedAnswer(False, text, {}, reason)

    stripped = text.strip()
    if not stripped:
        return invalid("empty answer")
    try:
        obj = json.loads(stripped, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as e:
        return invalid(f"duplicate key {e.args[0]!r}")
    except json.JSONDecodeError as e:
        return invalid(f"not a JSON object ({e.msg} at char {e.pos})")
    if not isinstance(obj, dict):
        return invalid(f"expected a JSON object, got {type(obj).__name__}")
    expected = [q.name for q in questions]
    missing = [k for k in expected if k not in obj]
    extra = sorted(k for k in obj if k not in expected)
    if missing or extra:
        return invalid(f"keys differ from the questions (missing {missing}, unexpected {extra})")
    answers: dict[str, str] = {}
    for q in questions:
        value = obj[q.name]
        if not isinstance(value, str):
            return invalid(f"{q.name}: answer {value!r} is not a string")
        by_fold = {c.casefold(): c for c in q.choices}
        choice = by_fold.get(value.strip().casefold())
        if choice is None:
            return invalid(f"{q.name}: {value!r} is not one of {list(q.choices)}")
        answers[q.name] = choice
    return ParsedAnswer(True, text, answers, "")


def parse_chat_body(body: Mapping[str, Any] | None, questions: Sequence[Question]) -> ParsedAnswer:
    """Parse an OpenAI chat-completion body (first choice)."""
    if not isinstance(body, Mapping):
        return ParsedAnswer(False, "", {}, "response has no body")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return ParsedAnswer(False, "", {}, "response has no choices")
    return parse_choice(choices[0], questions)


def parse_chat_choices(body: Mapping[str, Any] | None,
                       questions: Sequence[Question]) -> list[tuple[Any, ParsedAnswer]]:
    """(choice, parsed answer) for every choice of a body (`n` completions); one invalid entry
    for a body without choices."""
    choices = body.get("choices") if isinstance(body, Mapping) else None
    if not isinstance(choices, list) or not choices:
        return [(None, parse_chat_body(body, questions))]
    return [(c, parse_choice(c, questions) if isinstance(c, Mapping)
             else ParsedAnswer(False, "", {}, "choice is not an object")) for c in choices]


def parse_choice(choice: Mapping[str, Any], questions: Sequence[Question]) -> ParsedAnswer:
    """Parse one choice of a chat-completion body."""
    message = choice.get("message") if isinstance(choice.get("message"), Mapping) else {}
    content = message.get("content")
    refusal = message.get("refusal")
    finish = choice.get("finish_reason")
    if refusal:
        return ParsedAnswer(False, str(refusal), {}, "refusal")
    if content is not None and not isinstance(content, str):
        return ParsedAnswer(False, json.dumps(content, ensure_ascii=False), {},
                            "message content is not a string")
    text = content or ""
    parsed = parse_answer_text(text, questions)
    if not parsed.ok:
        if finish == "length":
            return ParsedAnswer(False, text, {}, f"truncated at max_tokens ({parsed.reason})")
        if finish == "content_filter":
            return ParsedAnswer(False, text, {}, "stopped by the content filter")
    return parsed


def usage_of(body: Mapping[str, Any] | None) -> tuple[int, int, int]:
    """(input, output, cached input) tokens as the response reports them; zeros if absent."""
    usage = body.get("usage") if isinstance(body, Mapping) else None
    if not isinstance(usage, Mapping):
        return 0, 0, 0
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), int(cached or 0)


def reasoning_tokens_of(body: Mapping[str, Any] | None) -> int:
    """`usage.completion_tokens_details.reasoning_tokens` (part of completion_tokens), or 0."""
    usage = body.get("usage") if isinstance(body, Mapping) else None
    details = usage.get("completion_tokens_details") if isinstance(usage, Mapping) else None
    return int((details.get("reasoning_tokens") if isinstance(details, Mapping) else 0) or 0)
