"""Which unlabelled pool items to query next."""
from __future__ import annotations

import numpy as np

SAMPLERS = ("full", "random", "entropy", "margin")


def uncertainty(probs: np.ndarray, sampler: str) -> np.ndarray:
    """Higher = more informative."""
    if sampler == "entropy":
        p = np.clip(probs, 1e-12, 1.0)
        return -(p * np.log(p)).sum(axis=1)
    if sampler == "margin":
        top2 = np.sort(probs, axis=1)[:, -2:]
        return -(top2[:, 1] - top2[:, 0])
    raise ValueError(f"{sampler!r} is not an uncertainty sampler")


def select(sampler: str, candidates: np.ndarray, k: int, rng: np.random.Generator,
           probs: np.ndarray | None = None) -> np.ndarray:
    """Pick `k` of `candidates` (an array of ids); `probs` are the model's, row-aligned."""
    k = min(k, len(candidates))
    if k <= 0:
        return candidates[:0]
    if sampler == "random":
        return rng.choice(candidates, size=k, replace=False)
    if probs is None:
        raise ValueError(f"sampler {sampler!r} needs model probabilities")
    score = uncertainty(probs, sampler)
    # ties broken at random (a fresh model often gives many identical scores)
    order = np.lexsort((rng.random(len(candidates)), -score))
    return candidates[order[:k]]
