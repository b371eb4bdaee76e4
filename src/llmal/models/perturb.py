"""Probabilities of a linear head under Gaussian weight noise (S1's noise stability).

Each pass draws noise of the weight matrix's shape and rescales it to norm `scale` × |W| (as
Li et al.'s NoiseStability does per layer); the bias is left alone.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax


def perturbed_linear_proba(X, W: np.ndarray, b: np.ndarray, *, passes: int, scale: float,
                           seed: int, binary_logistic: bool = False) -> np.ndarray:
    """(passes, n, C) probabilities of logits X Wᵀ + b with noisy W.

    `X` may be sparse. With `binary_logistic` W has one row and the probabilities are
    [1 − σ(z), σ(z)] (scikit-learn's binary LogisticRegression); otherwise a softmax over rows.
    """
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"scale must be finite and >= 0, got {scale}")
    W = np.asarray(W, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    rng = np.random.default_rng(seed)
    w_norm = float(np.linalg.norm(W))
    n = X.shape[0]
    C = 2 if binary_logistic else W.shape[0]
    out = np.empty((passes, n, C))
    for t in range(passes):
        noise = rng.normal(size=W.shape)
        noise *= scale * w_norm / max(float(np.linalg.norm(noise)), 1e-300)
        z = np.asarray(X @ (W + noise).T) + b
        if binary_logistic:
            p1 = expit(z[:, 0])
            out[t, :, 0], out[t, :, 1] = 1.0 - p1, p1
        else:
            out[t] = softmax(z, axis=1)
    return out
