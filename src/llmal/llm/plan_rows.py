"""What `llmal plan` says of one LLM annotator and prompt interface (PlanRow), and the prompt
caching assumption both tasks price it with.

Prompt caching: the static prefix (the system message and the response schema) is the same for
every request. Assuming the provider caches it as OpenAI does (prompts of at least
PROMPT_CACHE_MIN tokens, cached in steps of PROMPT_CACHE_BLOCK tokens), every request after the
first reads that prefix at the `cached_input` price. Whether a provider (or its Batch API)
applies prompt caching is the config's assumption, not llmal's.
"""
from __future__ import annotations

from dataclasses import dataclass

from llmal.llm.cost import is_batch

PROMPT_CACHE_MIN = 1024
PROMPT_CACHE_BLOCK = 128


@dataclass(frozen=True)
class PlanRow:
    annotator: str
    kind: str
    model: str
    interface: str
    configured: bool        # the interface the annotator's `prompt` names (else a comparison)
    n_items: int
    n_requests: int
    input_tokens: int
    output_tokens: int
    usd_online: float
    usd_batch: float
    counter: str
    reasoning_tokens: int = 0       # part of output_tokens
    cached_tokens: int = 0          # input tokens read from the provider's prompt cache, if it caches
    usd_online_cached: float | None = None
    usd_batch_cached: float | None = None
    targets: tuple[str, ...] = ()   # what annotates it: "condition NAME", "agreement"; () = nothing

    @property
    def usd(self) -> float:
        """What this annotator's executor would be billed."""
        return self.usd_batch if is_batch(self.kind) else self.usd_online

    @property
    def usd_cached(self) -> float:
        """The same with the static prefix read from the provider's prompt cache."""
        cached = self.usd_batch_cached if is_batch(self.kind) else self.usd_online_cached
        return self.usd if cached is None else cached

    @property
    def usd_per_item(self) -> float:
        return self.usd / self.n_items if self.n_items else 0.0

    @property
    def usd_cached_per_item(self) -> float:
        return self.usd_cached / self.n_items if self.n_items else 0.0


def cached_per_request(prefix_tokens: int) -> int:
    """What OpenAI-style prompt caching reads from its cache for a repeated prefix."""
    if prefix_tokens < PROMPT_CACHE_MIN:
        return 0
    return prefix_tokens // PROMPT_CACHE_BLOCK * PROMPT_CACHE_BLOCK
