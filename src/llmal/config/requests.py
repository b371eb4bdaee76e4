"""LLM request settings a schema cannot judge: body keys a model would reject, missing codebooks, URLs
and backoffs that cannot work, and replicates whose requests equal another's."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from llmal.llm.backend import family_of, normalised_url
from llmal.llm.executors import LLM_KINDS
from llmal.llm.profiles import request_problems, sampling_body
from llmal.llm.prompts import PROMPTS_DIR


def llm_request_problems(config: dict[str, Any], explicit: dict[str, set[str]] | None = None
                         ) -> list[tuple[str, str]]:
    """Body keys a model would reject (max_tokens or temperature on a reasoning model...),
    codebook files that do not exist, replicates whose requests equal another's, and
    transport settings that cannot work (a base_url that is no URL, backoff_max < backoff_base)."""
    out: list[tuple[str, str]] = []
    annotators = config["annotators"]
    for name, spec in annotators.items():
        if spec["kind"] not in LLM_KINDS:
            continue
        key = f"annotators.{name}"
        keys = (explicit or {}).get(name, set(spec))
        out += [(f"{key}.{k}", message) for k, message in request_problems(spec, keys)]
        file = (spec.get("guidelines") or {}).get("file")
        if file and not Path(file).exists() and not (PROMPTS_DIR / file).exists():
            out.append((f"{key}.guidelines.file", f"{file} does not exist (also looked in {PROMPTS_DIR})"))
        url = spec.get("base_url")
        if url is not None and not _is_http_url(str(url)):
            out.append((f"{key}.base_url", f"{url!r} is not an http(s) URL (e.g. "
                        "http://localhost:8000/v1 or https://api.openai.com/v1)"))
        if float(spec.get("backoff_max", 60)) < float(spec.get("backoff_base", 1.0)):
            out.append((f"{key}.backoff_max", f"{spec['backoff_max']} seconds is below backoff_base "
                        f"{spec.get('backoff_base', 1.0)}: the cap must be at least the first wait"))
    for name, spec in annotators.items():
        target = spec.get("replicate_of")
        if spec["kind"] in LLM_KINDS and target in annotators and \
                request_identity(spec) == request_identity(annotators[target]):
            out.append((f"annotators.{name}.replicate_of",
                        f"its requests are identical to those of {target!r} (same backend, model, "
                        "prompt and sampling keys), so every answer would come from the cache and "
                        "self-consistency would be 1 by construction; change its seed (and "
                        "temperature > 0 on a chat model)"))
    return out


def _is_http_url(url: str) -> bool:
    try:
        parts = urlparse(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in url


# what decides an LLM annotator's request bodies and backend (not retries, polling, ...)
REQUEST_KEYS = ("kind", "model", "prompt", "base_url", "engine_args", "limit", "demonstrations",
                "guidelines", "samples")


def request_identity(spec: dict[str, Any]) -> str:
    """Equal for two LLM annotators exactly when they would send the same requests to the same
    backend (the kinds openai and openai_batch count as one backend)."""
    ident = {k: spec.get(k) for k in REQUEST_KEYS}
    ident["kind"] = family_of(str(spec.get("kind")))
    if ident["kind"] == "openai":
        ident["base_url"] = normalised_url(spec.get("base_url"))
    return json.dumps({**ident, "body": sampling_body(spec)}, sort_keys=True, default=str)

