"""A small multinomial logistic (softmax) regression with a complementary-label term, fitted
with scipy's L-BFGS: the logistic recipe's fit when S1's negative learning is on (scikit-learn's
LogisticRegression has no loss term for classes an item is known not to belong to).

Objective, with p = softmax(X W + b):
  C * ( sum_i s_i * (-log p_i[y_i])  +  lambda * sum_j sum_{c in R_j} -log(1 - p_j[c]) )
  + 0.5 * ||W||^2            (the intercept is not penalised, as in scikit-learn)
s_i = sample weight x balanced class weight; R_j = the rejected classes of negative item j.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import log_softmax

EPS = 1e-12


class SoftmaxRegression:
    def __init__(self, n_classes: int, *, C: float = 1.0, class_weight: str | None = "balanced",
                 max_iter: int = 1000, tol: float = 1e-6) -> None:
        self.n_classes, self.C, self.class_weight = n_classes, float(C), class_weight
        self.max_iter, self.tol = int(max_iter), float(tol)
        self.classes_ = np.arange(n_classes)
        self.coef_: np.ndarray | None = None
        self.intercept_: np.ndarray | None = None
        self.n_iter_ = 0

    def _weights(self, y: np.ndarray, sample_weight: np.ndarray | None) -> np.ndarray:
        s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if self.class_weight == "balanced":
            counts = np.bincount(y, minlength=self.n_classes).astype(float)
            present = counts > 0
            cw = np.zeros(self.n_classes)
            cw[present] = len(y) / (present.sum() * counts[present])
            s = s * cw[y]
        return s

    def fit(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None,
            negatives: tuple[Any, np.ndarray, float] | None = None) -> "SoftmaxRegression":
        """`negatives` = (features of the negative items, (m, K) bool mask of rejected classes,
        loss weight lambda)."""
        y = np.asarray(y, dtype=np.int64)
        k = self.n_classes
        s = self._weights(y, sample_weight)
        Y = np.zeros((len(y), k))
        Y[np.arange(len(y)), y] = 1.0
        if negatives is not None and negatives[0].shape[0]:
            Xn, mask, lam = negatives
            mask = np.asarray(mask, dtype=float)
            lam = float(lam)
        else:
            Xn, mask, lam = None, np.zeros((0, k)), 0.0
        both = sp.vstack([X, Xn]).tocsr() if Xn is not None and (sp.issparse(X) or sp.issparse(Xn)) \
            else (np.vstack([X, Xn]) if Xn is not None else X)
        n, d = len(y), X.shape[1]

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            W, b = theta[:d * k].reshape(d, k), theta[d * k:]
            Z = np.asarray(both @ W) + b
            logp = log_softmax(Z, axis=1)
            P = np.exp(logp)
            dZ = np.zeros_like(Z)
            loss = -float((s * (Y * logp[:n]).sum(axis=1)).sum())
            dZ[:n] = s[:, None] * (P[:n] - Y)
            if lam > 0:
                Pn = np.clip(P[n:], 0.0, 1.0 - 1e-9)
                loss -= lam * float((mask * np.log1p(-Pn)).sum())
                a = mask * Pn / (1.0 - Pn)
                dZ[n:] = lam * (a - Pn * a.sum(axis=1, keepdims=True))
            gW = np.asarray(both.T @ dZ) * self.C + W
            value = self.C * loss + 0.5 * float((W * W).sum())
            return value, np.concatenate([gW.ravel(), self.C * dZ.sum(axis=0)])

        theta0 = np.zeros(d * k + k)
        result = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                          options={"maxiter": self.max_iter, "gtol": self.tol})
        self.coef_ = result.x[:d * k].reshape(d, k).T.copy()
        self.intercept_ = result.x[d * k:].copy()
        self.n_iter_ = int(result.nit)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.coef_ is None or self.intercept_ is None:
            raise RuntimeError("predict_proba before fit")
        return np.exp(log_softmax(np.asarray(X @ self.coef_.T) + self.intercept_, axis=1))
