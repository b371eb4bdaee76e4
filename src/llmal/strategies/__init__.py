"""Query strategies for active learning: one class each, one signature (`query(ctx, k)`).

`registry` names them and what they need (it imports nothing heavy, so config validation can
use it while planning); `base` holds the context protocol, the strategy base class,
`make_strategy`, `ArrayContext` and `linear_grad_embeddings`; `catalog` the strategies. The
names below load `base` (and numpy) only when first used.
"""
from __future__ import annotations

from typing import Any

from llmal.strategies.registry import STRATEGY_NEEDS, strategy_names

_FROM_BASE = ("ArrayContext", "QueryContext", "Strategy", "linear_grad_embeddings", "make_strategy")

__all__ = [*_FROM_BASE, "STRATEGY_NEEDS", "strategy_names"]


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        from llmal.strategies import base
        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
