"""Dollar cost of LLM annotation from the price table in the config and the usage each response reports.

Config (dollars per 1M tokens):
    prices:
      gpt-4o-mini: {input: 0.15, cached_input: 0.075, output: 0.60, batch_discount: 0.5}

Cached input tokens are part of `prompt_tokens` in OpenAI usage and are billed at `cached_input`
(default: `input`). `batch_discount` multiplies what the Batch API (executor openai_batch) costs.
Models run on your own hardware (executors local, vllm) cost 0 unless the table prices them; a
model sent to a paid API must be in the table, so no bill is ever silently counted as zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

PER_TOKENS = 1_000_000
DEFAULT_BATCH_DISCOUNT = 0.5
SELF_HOSTED_KINDS = ("local", "vllm")
BATCH_KINDS = ("openai_batch",)


class PriceError(ValueError):
    """No usable price; the message names the model and the config key."""


@dataclass(frozen=True)
class Price:
    input: float
    cached_input: float
    output: float
    batch_discount: float = DEFAULT_BATCH_DISCOUNT

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0,
             batch: bool = False) -> float:
        cached = min(max(cached_tokens, 0), input_tokens)
        dollars = ((input_tokens - cached) * self.input + cached * self.cached_input
                   + output_tokens * self.output) / PER_TOKENS
        return dollars * (self.batch_discount if batch else 1.0)


FREE = Price(0.0, 0.0, 0.0, 1.0)


def price_from_config(model: str, entry: Any) -> Price:
    where = f"prices.{model}"
    if not isinstance(entry, Mapping):
        raise PriceError(f"{where}: expected a mapping with input and output (dollars per 1M tokens)")
    for key in ("input", "output"):
        if key not in entry:
            raise PriceError(f"{where}.{key}: missing (dollars per 1M tokens)")
    values = {}
    for key in ("input", "cached_input", "output", "batch_discount"):
        if key in entry:
            v = entry[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise PriceError(f"{where}.{key}: {v!r} is not a non-negative number")
            values[key] = float(v)
    if values.get("batch_discount", 0.0) > 1:
        raise PriceError(f"{where}.batch_discount: {values['batch_discount']} is above 1")
    return Price(input=values["input"], cached_input=values.get("cached_input", values["input"]),
                 output=values["output"],
                 batch_discount=values.get("batch_discount", DEFAULT_BATCH_DISCOUNT))


def price_for(model: str, kind: str, prices: Mapping[str, Any] | None) -> Price:
    """The price of `model` as used by an executor of `kind`."""
    prices = prices or {}
    if model in prices:
        return price_from_config(model, prices[model])
    if kind in SELF_HOSTED_KINDS:
        return FREE
    known = sorted(prices)
    raise PriceError(
        f"no price for model {model!r} (executor {kind}): add it to the config key `prices`, e.g. "
        f"prices: {{{model}: {{input: ..., output: ..., cached_input: ..., batch_discount: 0.5}}}} "
        f"in dollars per 1M tokens (a self-hosted server: zeros). Priced models: {known}")


def is_batch(executor_kind: str) -> bool:
    return executor_kind in BATCH_KINDS
