"""Query strategies over per-label probabilities (task: multilabel).

- random, kmeans, coreset: as for classification (llmal.strategies.catalog), on the head's
  embeddings;
- entropy: the mean over labels of the entropy of each label's Bernoulli (p, 1 - p), in nats
  (the sum ranks the same);
- max_margin: the max-margin uncertainty of Li & Guo (2013, the [LG13] of small-text's
  multi-label strategies): with f_k = logit(p_k) - logit(t_k) a label's signed distance from its
  decision threshold t_k, the separation min_{k predicted} f_k - max_{k not predicted} f_k
  (an empty side counts as the boundary, 0); the smallest separation is queried first.
Highest score first, ties broken at random (llmal.strategies.base.top_k).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from llmal.strategies.base import Strategy, top_k
from llmal.strategies.catalog import make_strategy

MULTILABEL_STRATEGIES = ("random", "entropy", "max_margin", "kmeans", "coreset")
EPS = 1e-12


def mean_bernoulli_entropy(P: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(P, dtype=np.float64), EPS, 1 - EPS)
    return (-(p * np.log(p) + (1 - p) * np.log(1 - p))).mean(axis=1)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p) - np.log1p(-p)


def separation_margin(P: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
    """min over predicted labels of f_k minus max over the others (module docstring)."""
    P = np.asarray(P, dtype=np.float64)
    t = np.full(P.shape[1], 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    f = _logit(P) - _logit(t)[None, :]
    pos = f > 0
    low_pos = np.where(pos, f, np.inf).min(axis=1)
    high_neg = np.where(~pos, f, -np.inf).max(axis=1)
    return np.where(np.isfinite(low_pos), low_pos, 0.0) - np.where(np.isfinite(high_neg), high_neg, 0.0)


class _LabelScore(Strategy):
    def score(self, P: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _select(self, ctx: Any, k: int) -> np.ndarray:
        return top_k(self.score(ctx.probs()), k, ctx.rng)


class MeanEntropy(_LabelScore):

    def score(self, P: np.ndarray) -> np.ndarray:
        return mean_bernoulli_entropy(P)


class MaxMargin(_LabelScore):

    def score(self, P: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
        return -separation_margin(P, thresholds)

    def _select(self, ctx: Any, k: int) -> np.ndarray:
        # the head's decision thresholds (0.5 each for a model without them)
        return top_k(self.score(ctx.probs(), getattr(ctx.classifier, "thresholds", None)), k, ctx.rng)


def make_multilabel_strategy(name: str) -> Strategy:
    if name not in MULTILABEL_STRATEGIES:
        raise ValueError(f"query strategy {name!r} is not one for multi-label classification "
                         f"(task: multilabel knows {list(MULTILABEL_STRATEGIES)})")
    if name not in ("entropy", "max_margin"):
        return make_strategy(name)
    strategy = MeanEntropy() if name == "entropy" else MaxMargin()
    strategy.name = name   # named per instance: llmal.strategies.registry lists single-label needs
    return strategy
