"""Query strategies for active learning: one class each, one signature (`query(ctx, k)`).

`registry` names them and what they need (it imports nothing heavy, so config validation can
use it while planning); `base` holds the context protocol, the strategy base class,
`ArrayContext` and `linear_grad_embeddings`; `catalog` the strategies and `make_strategy`.
"""
from llmal.strategies.registry import STRATEGY_NEEDS, strategy_names

__all__ = ["STRATEGY_NEEDS", "strategy_names"]
