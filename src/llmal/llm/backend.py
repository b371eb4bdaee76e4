"""The identity of the backend that answers an annotator's requests: half of the cache key.

Two annotators with the same request body share cached answers only when the same backend
answers them:
  openai, openai_batch  "openai <base_url>"   (one server, one model behind each name: the online
                                               and the Batch API of a server share answers)
  vllm                  "vllm <model> <sha256 of engine_args>"  (quantisation, dtype, ...)
  local                 "local gguf-sha256:<hash of the model file>"  (not the alias or path:
                                               another quantisation is another backend)
The GGUF hash is computed once per (path, size, mtime) and remembered in the response cache.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from llmal.hub import resolve_model

OPENAI_API = "https://api.openai.com/v1"
FAMILY = {"openai": "openai", "openai_batch": "openai", "vllm": "vllm", "local": "local"}


def normalised_url(base_url: str | None) -> str:
    """Scheme and host lower-cased, no trailing slash; None is the OpenAI API."""
    if not base_url:
        return OPENAI_API
    parts = urlsplit(base_url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"),
                       parts.query, "")) or base_url.strip()


def family_of(kind: str) -> str:
    return FAMILY.get(kind, kind)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def backend_identity(spec: Mapping[str, Any],
                     file_hash: Callable[[str], str] | None = None) -> str:
    """The backend string of an LLM annotator spec (see the module docstring).

    `file_hash(path)` hashes a local model file (the cache's memoised one); default file_sha256."""
    kind = str(spec.get("kind"))
    family = family_of(kind)
    if family == "openai":
        return f"openai {normalised_url(spec.get('base_url'))}"
    if family == "vllm":
        engine = json.dumps(spec.get("engine_args") or {}, sort_keys=True, default=str)
        return f"vllm {spec.get('model')} {hashlib.sha256(engine.encode()).hexdigest()[:16]}"
    if family == "local":

        path = resolve_model(str(spec.get("model")))
        if not Path(path).is_file():
            return f"local {spec.get('model')}"   # the executor reports the missing model
        return f"local gguf-sha256:{(file_hash or file_sha256)(str(path))}"
    return f"{kind} {spec.get('model')}"
