"""The `local` executor: a GGUF model in-process through llama-cpp-python.

Each request's JSON-schema `response_format` becomes a llama.cpp grammar, so the model can only
emit an answer object of the right shape. Responses are OpenAI chat-completion bodies with usage
(tokens counted by llama.cpp), so parsing, caching and cost are the same as for any API.

Spec keys: model (GGUF path or packaged alias such as smollm2-135m-instruct-gguf), n_ctx (2048),
n_threads (llama.cpp default), seed (0; also sent per request), temperature and max_tokens come
from each request body.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from tqdm.auto import tqdm

from llmal.hub import resolve_model
from llmal.llm.executors.base import RequestLine, Store, error_line, ok_line

DEFAULT_N_CTX = 2048


class LocalExecutorError(RuntimeError):
    """The model cannot be loaded; the message names the spec key at fault."""


def grammar_schema(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request asks the answer to follow, or None for free text."""
    fmt = body.get("response_format")
    if not isinstance(fmt, Mapping):
        return None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return dict(schema) if isinstance(schema, Mapping) else None
    if fmt.get("type") == "json_object":
        schema = fmt.get("schema")
        return dict(schema) if isinstance(schema, Mapping) else {"type": "object"}
    return None


def import_llama() -> Any:
    """Import llama_cpp, with passive OpenMP waiting unless the user chose otherwise.

    llama.cpp's OpenMP threads spin while they wait by default, which starves them when parallel
    jobs share the cores. The setting only counts before OpenMP starts, so every llmal import
    of llama_cpp goes through here."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import llama_cpp
    except ImportError as e:
        raise LocalExecutorError("executor 'local' needs llama-cpp-python "
                                 f"(pip install llama-cpp-python): {e}") from None
    return llama_cpp


class LocalGGUFExecutor:
    name = "local"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if "model" not in spec:
            raise LocalExecutorError("annotator key 'model' is missing (a GGUF path or packaged alias)")
        self.model_name = str(spec["model"])
        self.n_ctx = int(spec.get("n_ctx") or DEFAULT_N_CTX)
        self.n_threads = int(spec["n_threads"]) if spec.get("n_threads") else None
        self.seed = int(spec.get("seed", 0))
        self.calls = 0  # completions run by this executor (the tests count cache hits with it)
        self._llm: Any = None
        self._grammars: dict[str, Any] = {}

    def _load(self) -> Any:
        if self._llm is not None:
            return self._llm
        Llama = import_llama().Llama
        path = resolve_model(self.model_name)
        if not Path(path).is_file():
            raise LocalExecutorError(f"annotator key 'model': {self.model_name!r} is neither a GGUF "
                                     "file nor a packaged alias (see llmal.hub)")
        kwargs: dict[str, Any] = {"model_path": path, "n_ctx": self.n_ctx, "seed": self.seed,
                                  "verbose": False}
        if self.n_threads:
            kwargs["n_threads"] = self.n_threads
        self._llm = Llama(**kwargs)
        return self._llm

    def _grammar(self, schema: dict[str, Any]) -> Any:
        LlamaGrammar = import_llama().LlamaGrammar
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def complete(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Run one chat-completion body; returns an OpenAI-shaped response body."""
        llm = self._load()
        schema = grammar_schema(body)
        kwargs: dict[str, Any] = {
            "messages": list(body["messages"]),
            "temperature": float(body.get("temperature", 0.0)),
            "max_tokens": int(body.get("max_tokens", 64)),
            "seed": int(body.get("seed", self.seed)),
        }
        if schema is not None:
            kwargs["grammar"] = self._grammar(schema)
        self.calls += 1
        out = dict(llm.create_chat_completion(**kwargs))
        out["model"] = self.model_name
        return out

    def run(self, requests: Sequence[RequestLine], store: Store) -> None:
        self._load()  # a model that cannot load is a config error, not a per-request failure
        for line in tqdm(requests, desc=f"local {self.model_name}", file=sys.stderr,
                         mininterval=5, disable=len(requests) < 2):
            cid = line["custom_id"]
            try:
                body = self.complete(line["body"])
            except Exception as e:  # one bad request (e.g. prompt above n_ctx) must not stop the rest
                store(error_line(cid, "local_error", f"{type(e).__name__}: {e}"))
                continue
            store(ok_line(cid, body, request_id=str(body.get("id", ""))))
