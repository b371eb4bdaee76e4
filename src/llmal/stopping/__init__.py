"""Stopping criteria for active learning: one class each, one signature (`check(obs)`).

`registry` names them, their options with defaults and what each reads (it imports nothing heavy,
so config validation uses it while planning); `criteria` holds the observation a criterion sees
after a round, its verdict and the criteria; `monitor` runs the configured criteria of one run
(`al.stop`) round by round on a fixed stop set drawn from the pool.
"""
from llmal.stopping.registry import CRITERIA, criterion_names

__all__ = ["CRITERIA", "criterion_names"]
