"""LLM executors by kind; each takes batch-JSONL request lines and hands back response lines.

Backends are imported only when an annotator of that kind runs, so a pipeline without vLLM or
llama.cpp installed still plans and runs everything else.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from llmal.llm.executors.base import Executor

EXECUTOR_KINDS = ("openai", "openai_batch", "vllm", "local")
LLM_KINDS = EXECUTOR_KINDS   # an annotator of one of these kinds is an LLM


def make_executor(spec: Mapping[str, Any], *, state_dir: Path) -> Executor:
    """The executor for an LLM annotator spec (dispatch on spec['kind'])."""
    kind = spec.get("kind")
    if kind == "openai":
        from llmal.llm.executors.openai_online import OpenAIOnlineExecutor  # openai
        return OpenAIOnlineExecutor(spec)
    if kind == "openai_batch":
        from llmal.llm.executors.openai_batch import OpenAIBatchExecutor  # openai
        return OpenAIBatchExecutor(spec, state_dir=Path(state_dir))
    if kind == "vllm":
        from llmal.llm.executors.vllm import VLLMExecutor  # vllm: optional
        return VLLMExecutor(spec, state_dir=Path(state_dir))
    if kind == "local":
        from llmal.llm.executors.local import LocalGGUFExecutor  # llama_cpp (and tqdm.auto -> pandas)
        return LocalGGUFExecutor(spec)
    raise ValueError(f"annotator key 'kind': {kind!r} is not an LLM executor (one of {EXECUTOR_KINDS})")
