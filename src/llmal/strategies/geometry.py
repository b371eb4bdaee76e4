"""Blocked distance computations: nothing here ever holds an n × n matrix.

Squared Euclidean distances are computed as |a|² + |b|² − 2 a·b in float32 blocks of at most
`BLOCK_ELEMENTS` entries, clipped at zero.
"""
from __future__ import annotations

import numpy as np

BLOCK_ELEMENTS = 1 << 22      # entries of one distance block (16 MB in float32)
CENTER_BLOCK = 8192           # centres per block when they are many (nearest)


def as_float32(X: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(X, dtype=np.float32)


def normalize_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    X = as_float32(X)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def sq_norms(X: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", X, X, dtype=np.float64).astype(np.float32)


def sq_dists_to_point(X: np.ndarray, x_sq: np.ndarray, c: np.ndarray) -> np.ndarray:
    """(n,) squared distances of the rows of X (squared norms x_sq) to one point c."""
    return np.maximum(x_sq + float(c @ c) - 2.0 * (X @ c), 0.0)


def _rows_per_block(n_other: int) -> int:
    return max(1, BLOCK_ELEMENTS // max(1, n_other))


def min_sq_dists(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(n,) squared distance of each row of X to its nearest row of `centers` (inf if none)."""
    X, centers = as_float32(X), as_float32(centers)
    out = np.full(len(X), np.inf, dtype=np.float32)
    if len(centers) == 0:
        return out
    x_sq, c_sq = sq_norms(X), sq_norms(centers)
    c_step = min(len(centers), 4096)
    rows = _rows_per_block(c_step)
    for cs in range(0, len(centers), c_step):
        C, Cq = centers[cs:cs + c_step], c_sq[cs:cs + c_step]
        for rs in range(0, len(X), rows):
            d = x_sq[rs:rs + rows, None] + Cq[None, :] - 2.0 * (X[rs:rs + rows] @ C.T)
            np.minimum(out[rs:rs + rows], d.min(axis=1), out=out[rs:rs + rows])
    return np.maximum(out, 0.0)


def nearest(X: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of X: (index of the nearest center, squared distance)."""
    X, centers = as_float32(X), as_float32(centers)
    x_sq, c_sq = sq_norms(X), sq_norms(centers)
    rows = _rows_per_block(len(centers))
    if rows < len(X) and len(centers) > CENTER_BLOCK:
        return _nearest_blocked(X, centers, x_sq, c_sq)
    idx = np.empty(len(X), dtype=np.int64)
    dist = np.empty(len(X), dtype=np.float32)
    for rs in range(0, len(X), rows):
        d = x_sq[rs:rs + rows, None] + c_sq[None, :] - 2.0 * (X[rs:rs + rows] @ centers.T)
        idx[rs:rs + rows] = d.argmin(axis=1)
        dist[rs:rs + rows] = np.maximum(d[np.arange(len(d)), idx[rs:rs + rows]], 0.0)
    return idx, dist


def _nearest_blocked(X: np.ndarray, centers: np.ndarray, x_sq: np.ndarray,
                     c_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """nearest() when the centres are many (the candidates themselves, as in nearest_distinct):
    blocks of CENTER_BLOCK centres, so the centres are read once per block of rows rather than
    once per few rows (which made the memory traffic grow with the square of their number). On
    ties the first centre wins, as with argmin."""
    rows = _rows_per_block(CENTER_BLOCK)
    idx = np.zeros(len(X), dtype=np.int64)
    best = np.full(len(X), np.inf, dtype=np.float32)
    for rs in range(0, len(X), rows):
        Xb, xb = X[rs:rs + rows], x_sq[rs:rs + rows]
        for cs in range(0, len(centers), CENTER_BLOCK):
            d = xb[:, None] + c_sq[None, cs:cs + CENTER_BLOCK] - 2.0 * (Xb @ centers[cs:cs + CENTER_BLOCK].T)
            j = d.argmin(axis=1)
            m = d[np.arange(len(d)), j]
            better = m < best[rs:rs + rows]
            best[rs:rs + rows][better] = m[better]
            idx[rs:rs + rows][better] = cs + j[better]
    return idx, np.maximum(best, 0.0)


def knn(queries: np.ndarray, reference: np.ndarray, k: int, *,
        exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of `reference` for every query row: (indices, squared distances),
    nearest first. With `exclude_self` the queries are the reference rows themselves and each
    row's own index is skipped."""
    Q, R = as_float32(queries), as_float32(reference)
    k = min(k, len(R) - (1 if exclude_self else 0))
    if k <= 0:
        return np.zeros((len(Q), 0), np.int64), np.zeros((len(Q), 0), np.float32)
    q_sq, r_sq = sq_norms(Q), sq_norms(R)
    out_i = np.empty((len(Q), k), dtype=np.int64)
    out_d = np.empty((len(Q), k), dtype=np.float32)
    r_step = min(len(R), 8192)
    rows = _rows_per_block(r_step)
    for qs in range(0, len(Q), rows):
        qe = min(qs + rows, len(Q))
        best_i = np.zeros((qe - qs, 0), dtype=np.int64)
        best_d = np.zeros((qe - qs, 0), dtype=np.float32)
        for rs in range(0, len(R), r_step):
            re = min(rs + r_step, len(R))
            d = q_sq[qs:qe, None] + r_sq[None, rs:re] - 2.0 * (Q[qs:qe] @ R[rs:re].T)
            if exclude_self:
                own = np.arange(qs, qe)
                hit = (own >= rs) & (own < re)
                d[np.flatnonzero(hit), own[hit] - rs] = np.inf
            cand_d = np.concatenate([best_d, d], axis=1)
            cand_i = np.concatenate([best_i, np.broadcast_to(np.arange(rs, re), d.shape)], axis=1)
            if cand_d.shape[1] > k:
                part = np.argpartition(cand_d, k - 1, axis=1)[:, :k]
                cand_d = np.take_along_axis(cand_d, part, axis=1)
                cand_i = np.take_along_axis(cand_i, part, axis=1)
            best_d, best_i = cand_d, cand_i
        order = np.argsort(best_d, axis=1, kind="stable")
        out_i[qs:qe] = np.take_along_axis(best_i, order, axis=1)
        out_d[qs:qe] = np.maximum(np.take_along_axis(best_d, order, axis=1), 0.0)
    return out_i, out_d


def greedy_k_center(X: np.ndarray, k: int, min_d: np.ndarray, rng: np.random.Generator,
                    ) -> np.ndarray:
    """Greedy k-center: repeatedly take the row farthest from every center so far.

    `min_d` holds each row's squared distance to the existing centers (inf: no centers yet, so
    the first pick is drawn at random); ties go to a random one of the farthest rows.
    """
    X = as_float32(X)
    x_sq = sq_norms(X)
    min_d = np.array(min_d, dtype=np.float64)
    picked: list[int] = []
    for _ in range(k):
        best = min_d.max()
        ties = np.flatnonzero(min_d == best)
        i = int(ties[rng.integers(ties.size)]) if ties.size > 1 else int(ties[0])
        picked.append(i)
        np.minimum(min_d, sq_dists_to_point(X, x_sq, X[i]), out=min_d)
        min_d[picked] = -1.0       # never again
    return np.asarray(picked, dtype=np.int64)


def kmeans(X: np.ndarray, k: int, rng: np.random.Generator, *,
           sample_weight: np.ndarray | None = None, max_iter: int = 100,
           fit_sample: int | None = 20000) -> np.ndarray:
    """Cluster centres of k-means (scikit-learn's Lloyd, k-means++ start, one init).

    With more than `fit_sample` rows (and `fit_sample` >= k) the centres are fitted on a random
    sample of that many rows: at 100,000 × 384 a full fit takes about 10 s on 2 cores, a fit on
    20,000 rows under 2 s, and the centres of a large uniform sample barely differ.
    """
    from sklearn.cluster import KMeans

    X = as_float32(X)
    if fit_sample is not None and len(X) > fit_sample >= k:
        rows = np.sort(rng.choice(len(X), fit_sample, replace=False))
        X = X[rows]
        sample_weight = None if sample_weight is None else np.asarray(sample_weight)[rows]
    # own k-means++ seeding: scikit-learn's upcasts float32 distances block by block, which
    # made the init alone take ~20 s for 300 clusters of 10,000 × 384
    init = X[d2_seeding(X, k, rng)]
    km = KMeans(n_clusters=k, n_init=1, max_iter=max_iter, init=init,
                random_state=int(rng.integers(2**31 - 1)))
    km.fit(X, sample_weight=sample_weight)
    return km.cluster_centers_.astype(np.float32)


def d2_seeding(X: np.ndarray, k: int, rng: np.random.Generator,
               first: int | None = None) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): k distinct rows, the first `first` (or
    random), each next one drawn with probability proportional to its squared distance to the
    nearest row drawn so far; once every row coincides with a pick, any unpicked row."""
    X = as_float32(X)
    x_sq = sq_norms(X)
    k = min(k, len(X))
    picked = [int(rng.integers(len(X))) if first is None else int(first)]
    min_d = sq_dists_to_point(X, x_sq, X[picked[0]]).astype(np.float64)
    min_d[picked[0]] = 0.0
    for _ in range(k - 1):
        total = min_d.sum()
        if total > 0:
            i = int(rng.choice(len(X), p=min_d / total))
        else:
            i = int(rng.choice(np.setdiff1d(np.arange(len(X)), picked)))
        picked.append(i)
        np.minimum(min_d, sq_dists_to_point(X, x_sq, X[i]), out=min_d)
        min_d[picked] = 0.0
    return np.asarray(picked, dtype=np.int64)


def nearest_distinct(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """For each centre (in order) the row of X nearest to it, never one row twice."""
    idx, _ = nearest(centers, X)
    if np.unique(idx).size == len(idx):
        return idx
    X = as_float32(X)
    x_sq = sq_norms(X)
    taken = np.zeros(len(X), dtype=bool)
    out = np.empty(len(centers), dtype=np.int64)
    for j, c in enumerate(as_float32(centers)):
        d = sq_dists_to_point(X, x_sq, c)
        d[taken] = np.inf
        out[j] = int(d.argmin())
        taken[out[j]] = True
    return out
