"""The query-strategy interface: a context that supplies model outputs, and strategies.

A strategy sees the unlabelled candidates only through a `QueryContext`, which computes model
outputs lazily (probabilities, embeddings, gradient embeddings, MC-dropout or perturbed-weight
probabilities), so a strategy costs only what it asks for. `query(ctx, k)` returns k distinct
positions into `ctx.candidates` (fewer when fewer candidates are left), in priority order.
Ties are broken at random with `ctx.rng`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from llmal.strategies.registry import STRATEGY_NEEDS


class QueryContext(Protocol):
    candidates: np.ndarray      # object array of str ids of the unlabelled pool items
    labelled: np.ndarray        # object array of str ids already acquired (may be empty)
    rng: np.random.Generator

    def probs(self) -> np.ndarray:
        """(n_cand, C) current model probabilities of the candidates."""

    def labelled_probs(self) -> np.ndarray:
        """(n_labelled, C) current model probabilities of the labelled items (`cal`)."""

    def embeddings(self, ids: Sequence[str]) -> np.ndarray:
        """Dense (n, d) features of any pool ids (candidates or labelled)."""

    def grad_embeddings(self) -> np.ndarray:
        """(n_cand, D) last-layer gradient embeddings of the candidates (BADGE)."""

    def mc_probs(self, passes: int) -> np.ndarray:
        """(passes, n_cand, C) probabilities with dropout kept on."""

    def perturbed_probs(self, passes: int, scale: float) -> np.ndarray:
        """(passes, n_cand, C) probabilities of copies of the model with noise-perturbed head
        weights (noise norm = scale × weight norm)."""


class Strategy:
    """One query strategy. Subclasses set `name` and implement `_select(ctx, k)` for
    1 <= k <= len(ctx.candidates)."""

    name: str = ""
    needs: frozenset[str] = frozenset()

    def __init__(self, **options: Any) -> None:
        if options:
            raise TypeError(f"strategy {self.name!r} takes no options {sorted(options)}")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            cls.needs = STRATEGY_NEEDS[cls.name]

    def query(self, ctx: QueryContext, k: int) -> np.ndarray:
        k = min(int(k), len(ctx.candidates))
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        picked = np.asarray(self._select(ctx, k), dtype=np.int64)
        if picked.shape != (k,) or np.unique(picked).size != k:
            raise AssertionError(f"strategy {self.name!r} returned {picked.size} positions "
                                 f"({np.unique(picked).size} distinct), expected {k}")
        return picked

    def _select(self, ctx: QueryContext, k: int) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({opts})"


def top_k(score: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the k highest scores, highest first; equal scores in random order."""
    score = np.asarray(score, dtype=np.float64)
    n = score.size
    k = min(k, n)
    if k < n:
        # the k-th largest value; everything above it is in, ties at it are drawn at random
        kth = np.partition(score, n - k)[n - k]
        above = np.flatnonzero(score > kth)
        tied = np.flatnonzero(score == kth)
        tied = rng.permutation(tied)[:k - above.size]
        chosen = np.concatenate([above, tied])
    else:
        chosen = np.arange(n)
    order = np.lexsort((rng.random(chosen.size), -score[chosen]))
    return chosen[order]


def linear_grad_embeddings(X: np.ndarray, probs: np.ndarray, *, compact: bool = True,
                           block: int = 8192) -> np.ndarray:
    """BADGE's gradient embedding for a softmax (or logistic) head, in closed form.

    The gradient of the cross-entropy at the predicted label ŷ with respect to the head's
    weights is g = (p − e_ŷ) ⊗ x. With `compact=False` that is the (n, C·d) matrix, class-major.
    Since p − e_ŷ sums to zero, it lies in the (C−1)-dimensional subspace orthogonal to the
    all-ones vector; `compact=True` (default) expresses it in an orthonormal basis of that
    subspace, an (n, (C−1)·d) matrix with exactly the same norms and pairwise distances (for two
    classes: √2 (p₀ − e_ŷ,₀) x, half the size). float32, filled block by block.
    """
    X = np.asarray(X)
    probs = np.asarray(probs, dtype=np.float64)
    n, d = X.shape
    if probs.ndim != 2 or probs.shape[0] != n:
        raise ValueError(f"probs must be ({n}, C), got {probs.shape}")
    C = probs.shape[1]
    a = probs.copy()
    a[np.arange(n), probs.argmax(axis=1)] -= 1.0
    if compact and C > 1:
        a = a @ _sum_zero_basis(C)               # (n, C-1), same inner products
    width = a.shape[1]
    out = np.empty((n, width * d), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        out[start:stop] = (a[start:stop, :, None] * X[start:stop, None, :]).reshape(stop - start, -1)
    return out


def _sum_zero_basis(C: int) -> np.ndarray:
    """(C, C−1) orthonormal basis of the vectors whose entries sum to zero."""
    # QR of [1, I] gives an orthonormal basis whose first column spans the all-ones vector
    q, _ = np.linalg.qr(np.concatenate([np.ones((C, 1)), np.eye(C)[:, :C - 1]], axis=1))
    return q[:, 1:]


@dataclass
class ArrayContext:
    """A QueryContext from precomputed arrays (tests, benchmarks).

    `embedding_matrix` has one row per id of `embedding_ids` (default: the candidates followed
    by the labelled items). Each model output is an array or a callable returning it (called at
    most once per argument); asking for one that was not given is an error naming it.
    """

    candidates: np.ndarray
    labelled: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    probs_: np.ndarray | Callable[[], np.ndarray] | None = None
    labelled_probs_: np.ndarray | Callable[[], np.ndarray] | None = None
    embedding_matrix: np.ndarray | None = None
    embedding_ids: np.ndarray | None = None
    grad_embeddings_: np.ndarray | Callable[[], np.ndarray] | None = None
    mc_probs_: np.ndarray | Callable[[int], np.ndarray] | None = None
    perturbed_probs_: np.ndarray | Callable[[int, float], np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.candidates = np.asarray(self.candidates, dtype=object)
        self.labelled = np.asarray(self.labelled, dtype=object)
        self._row: dict[str, int] | None = None
        self._cache: dict[Any, np.ndarray] = {}

    def probs(self) -> np.ndarray:
        return self._get("probs", self.probs_)

    def labelled_probs(self) -> np.ndarray:
        return self._get("labelled_probs", self.labelled_probs_)

    def grad_embeddings(self) -> np.ndarray:
        if self.grad_embeddings_ is None and self.embedding_matrix is not None \
                and self.probs_ is not None:
            return self._cache.setdefault("grad", linear_grad_embeddings(
                self.embeddings(self.candidates), self.probs()))
        return self._get("grad_embeddings", self.grad_embeddings_)

    def mc_probs(self, passes: int) -> np.ndarray:
        return self._get("mc_probs", self.mc_probs_, passes)

    def perturbed_probs(self, passes: int, scale: float) -> np.ndarray:
        return self._get("perturbed_probs", self.perturbed_probs_, passes, scale)

    def embeddings(self, ids: Sequence[str]) -> np.ndarray:
        if self.embedding_matrix is None:
            raise ValueError("this query context has no embeddings")
        if self._row is None:
            ids_all = (np.concatenate([self.candidates, self.labelled])
                       if self.embedding_ids is None else self.embedding_ids)
            if len(ids_all) != len(self.embedding_matrix):
                raise ValueError(f"{len(self.embedding_matrix)} embedding rows for "
                                 f"{len(ids_all)} ids")
            self._row = {str(i): r for r, i in enumerate(ids_all)}
        try:
            rows = np.fromiter((self._row[str(i)] for i in ids), dtype=np.int64, count=len(ids))
        except KeyError as e:
            raise KeyError(f"id {e.args[0]!r} has no embedding row") from None
        return self.embedding_matrix[rows]

    def _get(self, what: str, source: Any, *args: Any) -> np.ndarray:
        if source is None:
            raise ValueError(f"this query context has no {what}")
        if not callable(source):
            return np.asarray(source)
        key = (what, *args)
        if key not in self._cache:
            self._cache[key] = np.asarray(source(*args))
        return self._cache[key]
