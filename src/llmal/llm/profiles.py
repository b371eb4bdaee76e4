"""Request profiles per model family: which body keys a chat-completion request may carry.

  chat       max_tokens, temperature (default 0), top_p, logprobs/top_logprobs (gpt-4o, Llama, Qwen...)
  reasoning  max_completion_tokens (reasoning tokens count against it), reasoning_effort, no
             temperature/top_p/logprobs: OpenAI's GPT-5 family and o-series reject them (HTTP 400)

The profile follows from the model name (`reasoning_model`), or the annotator key
`request_profile` overrides it (e.g. a reasoning model served by vLLM under another name).
This module imports nothing heavy: the config check uses it at plan time.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

PROFILES = ("chat", "reasoning")
# gpt-5, gpt-5.2, gpt-5-mini, o1, o3-mini, o4-mini, openai/gpt-5 ...; not gpt-4o, not gpt-5-chat-latest
_REASONING = re.compile(r"^(?:[\w.-]+/)?(?:gpt-5(?![-.]?chat)|o[1-9])(?:$|[-.:@])", re.IGNORECASE)

DEFAULT_TEMPERATURE = 0.0
DEFAULT_MAX_TOKENS = 64
DEFAULT_MAX_COMPLETION_TOKENS = 4096
DEFAULT_SEED = 0
# optional sampling keys copied into the body only when the annotator sets them
OPTIONAL_BODY_KEYS = ("top_p", "logprobs", "top_logprobs", "n", "stop")
# what the reasoning profile cannot send (the API answers 400), and the value it would accept
FORBIDDEN_IN_REASONING = {"max_tokens": None, "temperature": 1, "top_p": 1, "logprobs": None,
                          "top_logprobs": None}
# body keys llmal writes itself; a `request:` block may not replace them
RESERVED_BODY_KEYS = ("model", "messages", "response_format")
# backends whose requests take `n` (several completions per request); the others get `samples:
# N` as N requests with seeds seed, seed+1, ... (llama.cpp and the vLLM executors read one)
N_KINDS = ("openai", "openai_batch")
# assumed reasoning tokens per request for `llmal plan` when `reasoning_allowance` is not set
EFFORT_ALLOWANCE = {"minimal": 0, "none": 0, "low": 256, "medium": 1024, "high": 4096}
DEFAULT_EFFORT_ALLOWANCE = 1024


def reasoning_model(model: str) -> bool:
    """True for model names of OpenAI's reasoning families (GPT-5, o1, o3, o4...)."""
    return bool(_REASONING.match(model.strip()))


def request_profile(spec: Mapping[str, Any]) -> str:
    """'chat' or 'reasoning': the annotator key `request_profile`, else by model name."""
    chosen = spec.get("request_profile")
    if chosen in PROFILES:
        return str(chosen)
    return "reasoning" if reasoning_model(str(spec.get("model", ""))) else "chat"


def sampling_body(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The body keys besides model/messages/response_format, as the annotator's profile sends them.

    For the chat profile the keys of earlier llmal versions (temperature, max_tokens, seed) keep
    their values, so existing cache entries stay valid; optional keys appear only when set."""
    body: dict[str, Any] = {}
    if request_profile(spec) == "reasoning":
        body["max_completion_tokens"] = int(spec.get("max_completion_tokens")
                                            or DEFAULT_MAX_COMPLETION_TOKENS)
        if spec.get("reasoning_effort"):
            body["reasoning_effort"] = str(spec["reasoning_effort"])
    else:
        body["temperature"] = float(spec.get("temperature", DEFAULT_TEMPERATURE))
        if spec.get("max_completion_tokens"):
            body["max_completion_tokens"] = int(spec["max_completion_tokens"])
        else:
            body["max_tokens"] = int(spec.get("max_tokens", DEFAULT_MAX_TOKENS))
        if spec.get("reasoning_effort"):
            body["reasoning_effort"] = str(spec["reasoning_effort"])
    body["seed"] = int(spec.get("seed", DEFAULT_SEED))
    for key in OPTIONAL_BODY_KEYS:
        if spec.get(key) is not None:
            body[key] = spec[key]
    body.update(dict(spec.get("request") or {}))
    return body


def output_allowance(spec: Mapping[str, Any]) -> int:
    """The most completion tokens one request may bill (max_completion_tokens or max_tokens)."""
    return int(sampling_body(spec).get("max_completion_tokens")
               or sampling_body(spec).get("max_tokens") or DEFAULT_MAX_TOKENS)


def reasoning_allowance(spec: Mapping[str, Any]) -> int:
    """Reasoning tokens per request `llmal plan` assumes: `reasoning_allowance`, else by effort."""
    if spec.get("reasoning_allowance") is not None:
        return int(spec["reasoning_allowance"])
    if request_profile(spec) != "reasoning":
        return 0
    effort = str(spec.get("reasoning_effort") or "medium")
    return EFFORT_ALLOWANCE.get(effort, DEFAULT_EFFORT_ALLOWANCE)


def request_problems(spec: Mapping[str, Any], explicit: set[str]) -> list[tuple[str, str]]:
    """(key, message) for every body key the annotator's model would reject, or that clashes.

    `explicit`: the annotator keys the user wrote (schema defaults are not the user's doing)."""
    problems: list[tuple[str, str]] = []
    model = str(spec.get("model", ""))
    request = dict(spec.get("request") or {})
    if request_profile(spec) == "reasoning":
        for key, accepted in FORBIDDEN_IN_REASONING.items():
            for where, value in ((key, spec.get(key) if key in explicit else None),
                                 (f"request.{key}", request.get(key))):
                if value is None or (accepted is not None and value == accepted):
                    continue
                hint = {"max_tokens": "use max_completion_tokens (it also bounds the reasoning "
                                      "tokens)",
                        "temperature": "remove it (only the default 1 is accepted)"}.get(
                    key, "remove it")
                problems.append((where, f"{value!r} is rejected by reasoning model {model!r} "
                                        f"(request profile reasoning): {hint}"))
    elif spec.get("reasoning_effort") and "request_profile" not in explicit:
        problems.append(("reasoning_effort", f"model {model!r} is not known as a reasoning model; "
                                             "set request_profile: reasoning to send it anyway"))
    if spec.get("top_logprobs") is not None and not spec.get("logprobs"):
        problems.append(("top_logprobs", "needs logprobs: true"))
    samples = int(spec.get("samples") or 1)
    if samples > 1:
        if spec.get("n") is not None:
            problems.append(("samples", "set either samples or n (samples sends n itself where "
                                        "the backend has it)"))
        if request_profile(spec) == "chat" and float(spec.get("temperature", DEFAULT_TEMPERATURE)) <= 0:
            problems.append(("samples", f"{samples} samples at temperature 0 would all give the "
                                        "same answer: set temperature > 0 (S1 uses 0.7)"))
    for key in request:
        if key in RESERVED_BODY_KEYS:
            problems.append((f"request.{key}", "llmal writes this body key itself"))
        elif key in explicit and key in (*OPTIONAL_BODY_KEYS, "temperature", "max_tokens",
                                         "max_completion_tokens", "seed", "reasoning_effort"):
            problems.append((f"request.{key}", f"also set as annotator key {key!r}; set it once"))
    return problems


def sample_specs(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request specs of one annotator: itself, or for `samples: N` one spec with n: N (where
    the backend has `n`) or N specs with seeds seed .. seed+N-1."""
    n = int(spec.get("samples") or 1)
    if n <= 1:
        return [dict(spec)]
    if str(spec.get("kind")) in N_KINDS:
        return [{**spec, "n": n}]
    seed = int(spec.get("seed", 0))
    return [{**spec, "seed": seed + i} for i in range(n)]
