"""Choice probabilities of a structured answer from the completion's token logprobs.

For each question of the template, the answer value in the JSON content is located (the string
after `"<question>":`) and the tokens that spell it are walked. At every token the alternatives
of `top_logprobs` that lead to another choice (their text, appended to the value read so far, is
a prefix of exactly one other choice, compared case-insensitively with its closing quote) add
that choice the probability of reaching this point times their own probability; the sampled
token continues the walk until only the chosen value fits. The masses are then normalised over
the choices, so alternatives outside `top_logprobs` are spread proportionally; with
`top_logprobs` at least the number of choices nothing is left out. Alternatives that fit several
choices at once, or none, are ignored. Without any logprobs for the value: None.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

from llmal.llm.prompts import Question


def _fits(choice: str, text: str) -> bool:
    closed = (choice + '"').casefold()
    text = text.casefold()
    return closed.startswith(text) or text.startswith(closed)


def _token_offsets(tokens: Sequence[Mapping[str, Any]], content: str) -> list[tuple[int, int]] | None:
    spans, pos = [], 0
    for tok in tokens:
        piece = str(tok.get("token", ""))
        spans.append((pos, pos + len(piece)))
        pos += len(piece)
    joined = "".join(str(t.get("token", "")) for t in tokens)
    return spans if joined == content else None


def value_probabilities(tokens: Sequence[Mapping[str, Any]], spans: Sequence[tuple[int, int]],
                        start: int, chosen: str, choices: Sequence[str]) -> dict[str, float] | None:
    """Probabilities of `choices` for the value that starts at char `start` (see module doc)."""
    mass = {c: 0.0 for c in choices}
    first = next((t for t, (a, b) in enumerate(spans) if a <= start < b), None)
    if first is None:
        return None
    reach, read = 1.0, ""          # probability of the sampled path so far, value text so far
    for t in range(first, len(tokens)):
        a, _ = spans[t]
        tok = tokens[t]
        piece = str(tok.get("token", ""))
        skip = max(0, start - a)   # the first token may begin before the value
        own = str(piece[skip:])
        logprob = tok.get("logprob")
        if not isinstance(logprob, (int, float)):
            return None
        for alt in tok.get("top_logprobs") or []:
            text = str(alt.get("token", ""))
            if text == piece or not text.startswith(piece[:skip]) or not isinstance(alt.get("logprob"), (int, float)):
                continue
            cont = read + text[skip:]
            fitting = [c for c in choices if _fits(c, cont)]
            if len(fitting) == 1 and fitting[0].casefold() != chosen.casefold():
                mass[fitting[0]] += reach * math.exp(float(alt["logprob"]))
        reach *= math.exp(float(logprob))
        read += own
        alive = [c for c in choices if _fits(c, read)]
        if len(alive) <= 1 or read.casefold().startswith((chosen + '"').casefold()):
            break
    key = next(c for c in choices if c.casefold() == chosen.casefold())
    mass[key] += reach
    total = sum(mass.values())
    return {c: m / total for c, m in mass.items()} if total > 0 else None


def choice_probabilities(choice: Mapping[str, Any] | None, answers: Mapping[str, str],
                         questions: Sequence[Question]) -> dict[str, dict[str, float]] | None:
    """question -> choice -> probability of one completion choice, for the questions whose
    value its logprobs cover; None when it has no usable logprobs."""
    if not isinstance(choice, Mapping):
        return None
    logprobs = choice.get("logprobs")
    message = choice.get("message") if isinstance(choice.get("message"), Mapping) else {}
    content = message.get("content") if isinstance(message, Mapping) else None
    tokens = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    if not isinstance(content, str) or not isinstance(tokens, list) or not tokens:
        return None
    spans = _token_offsets(tokens, content)
    if spans is None:
        return None
    out: dict[str, dict[str, float]] = {}
    for q in questions:
        if q.name not in answers:
            continue
        m = re.search(r'"%s"\s*:\s*"' % re.escape(q.name), content)
        if m is None:
            continue
        probs = value_probabilities(tokens, spans, m.end(), answers[q.name], q.choices)
        if probs is not None:
            out[q.name] = probs
    return out or None
