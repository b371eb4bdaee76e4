"""The query strategies, one small class each (see registry.STRATEGY_DESCRIPTIONS).

Formulas follow the papers; where small-text implements the same strategy the parity tests in
tests/test_strategies_parity.py compare the selections, and README.md lists where they differ.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from llmal.strategies import geometry as geo
from llmal.strategies.base import QueryContext, Strategy, top_k

EPS = 1e-12


def entropy(P: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) along the last axis."""
    P = np.clip(P, EPS, 1.0)
    return -(P * np.log(P)).sum(axis=-1)


def margin(P: np.ndarray) -> np.ndarray:
    """Gap between the two largest probabilities per row (0 for a single class)."""
    if P.shape[1] < 2:
        return np.zeros(len(P))
    top2 = np.partition(P, P.shape[1] - 2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


class _Scored(Strategy):
    """Highest score first."""

    def score(self, ctx: QueryContext) -> np.ndarray:
        raise NotImplementedError

    def _select(self, ctx: QueryContext, k: int) -> np.ndarray:
        return top_k(self.score(ctx), k, ctx.rng)


class RandomSampling(Strategy):
    name = "random"

    def _select(self, ctx: QueryContext, k: int) -> np.ndarray:
        return ctx.rng.permutation(len(ctx.candidates))[:k]


class LeastConfidence(_Scored):
    name = "least_confidence"

    def score(self, ctx: QueryContext) -> np.ndarray:
        return 1.0 - ctx.probs().max(axis=1)


class Entropy(_Scored):
    name = "entropy"

    def score(self, ctx: QueryContext) -> np.ndarray:
        return entropy(ctx.probs())


class Margin(_Scored):
    """Breaking ties (Luo et al. 2005): the smallest top-1 − top-2 gap."""
    name = "margin"

    def score(self, ctx: QueryContext) -> np.ndarray:
        return -margin(ctx.probs())


class BALD(_Scored):
    """H[mean_t p_t] − mean_t H[p_t] over MC-dropout passes (Houlsby et al. 2011, Gal et al.
    2017)."""
    name = "bald"

    def __init__(self, passes: int = 10) -> None:
        if passes < 2:
            raise ValueError(f"bald: passes must be >= 2, got {passes}")
        self.passes = int(passes)

    def score(self, ctx: QueryContext) -> np.ndarray:
        P = ctx.mc_probs(self.passes)
        return entropy(P.mean(axis=0)) - entropy(P).mean(axis=0)


class KMeansSampling(Strategy):
    """S3: k-means of the candidates' embeddings into k clusters; the candidate nearest each
    centroid, largest cluster first."""
    name = "kmeans"

    def __init__(self, normalize: bool = True, max_iter: int = 100,
                 fit_sample: int | None = 20000) -> None:
        self.normalize, self.max_iter, self.fit_sample = bool(normalize), int(max_iter), fit_sample

    def _select(self, ctx: QueryContext, k: int) -> np.ndarray:
        X = _embed(ctx, ctx.candidates, self.normalize)
        centers = geo.kmeans(X, k, ctx.rng, max_iter=self.max_iter, fit_sample=self.fit_sample)
        assign, _ = geo.nearest(X, centers)
        sizes = np.bincount(assign, minlength=k)
        order = np.lexsort((ctx.rng.random(k), -sizes))
        return geo.nearest_distinct(X, centers[order])


class Coreset(Strategy):
    """Greedy k-center (Sener & Savarese 2018): each pick is the candidate farthest from the
    labelled items and the picks before it (Euclidean, on L2-normalised embeddings by default).
    Without labelled items the first pick is random."""
    name = "coreset"

    def __init__(self, normalize: bool = True) -> None:
        self.normalize = bool(normalize)

    def _select(self, ctx: QueryContext, k: int) -> np.ndarray:
        X = _embed(ctx, ctx.candidates, self.normalize)
        if len(ctx.labelled):
            min_d = geo.min_sq_dists(X, _embed(ctx, ctx.labelled, self.normalize))
        else:
            min_d = np.full(len(X), np.inf)
        return geo.greedy_k_center(X, k, min_d, ctx.rng)


class BADGE(Strategy):
    """Ash et al. 2020: k-means++ seeding on gradient embeddings. The first pick has the largest
    gradient norm (as in the authors' code); each further one is drawn with probability
    proportional to its squared distance to the nearest pick so far (D² sampling)."""
    name = "badge"

    def _select(self, ctx: QueryContext, k: int) -> np.ndarray:
        G = geo.as_float32(ctx.grad_embeddings())
        first = top_k(geo.sq_norms(G), 1, ctx.rng)[0]
        return geo.d2_seeding(G, k, ctx.rng, first=int(first))


class NoiseStability(Strategy):
    """S1 / Li et al. 2024: perturb the head's weights `passes` times with Gaussian noise of
    norm `scale` × the weight norm; a candidate's feature is its concatenated output changes
    (p̃_t − p) / |p|; greedy k-center on those features, starting from the origin, so the first
    pick is the least stable candidate."""
    name = "noise_stability"

    def __init__(self, passes: int = 30, scale: float = 1e-3) -> None:
        if passes < 1 or scale <= 0:
            raise ValueError(f"noise_stability: passes >= 1 and scale > 0, got {passes}, {scale}")
        self.passes, self.scale = int(passes), float(scale)

    def _select(self, ctx: QueryContext, k: int) -> np.ndarray:
        p = ctx.probs()
        P = ctx.perturbed_probs(self.passes, self.scale)
        diff = (P - p[None]) / np.maximum(np.linalg.norm(p, axis=1), EPS)[None, :, None]
        F = diff.transpose(1, 0, 2).reshape(len(p), -1)
        return geo.greedy_k_center(F, k, geo.sq_norms(geo.as_float32(F)), ctx.rng)


class ContrastiveAL(_Scored):
    """Margatina et al. 2021: a candidate's score is the mean KL(p_neighbour ‖ p_candidate)
    over its `neighbours` nearest labelled items (L2-normalised embeddings), with the current
    model's predictions for both. Without labelled items: random order."""
    name = "cal"

    def __init__(self, neighbours: int = 10, normalize: bool = True) -> None:
        if neighbours < 1:
            raise ValueError(f"cal: neighbours must be >= 1, got {neighbours}")
        self.neighbours, self.normalize = int(neighbours), bool(normalize)

    def score(self, ctx: QueryContext) -> np.ndarray:
        if len(ctx.labelled) == 0:
            return np.zeros(len(ctx.candidates))
        Xc = _embed(ctx, ctx.candidates, self.normalize)
        Xl = _embed(ctx, ctx.labelled, self.normalize)
        nn, _ = geo.knn(Xc, Xl, self.neighbours)
        log_c = np.log(np.clip(ctx.probs(), EPS, 1.0))
        Pl = np.clip(ctx.labelled_probs(), EPS, 1.0)
        log_l = np.log(Pl)
        neg_entropy_l = (Pl * log_l).sum(axis=1)             # Σ p log p per labelled item
        # KL(p_j ‖ p_c) = Σ p_j log p_j − Σ p_j log p_c, averaged over the neighbours j
        cross = np.einsum("ikc,ic->ik", Pl[nn], log_c)
        return (neg_entropy_l[nn] - cross).mean(axis=1)


class TypiClust(Strategy):
    """Hacohen et al. 2022 (cold start): k-means of labelled + candidates into
    min(|L| + k, max_clusters) clusters; repeatedly take the cluster with the fewest labelled
    (or already picked) items, the largest first among equals and only clusters of at least
    `min_cluster_size` while any is left, and pick its most typical candidate: typicality =
    1 / mean distance to its `neighbours` nearest cluster members."""
    name = "typiclust"

    def __init__(self, neighbours: int = 20, max_clusters: int = 500,
                 min_cluster_size: int = 5, max_reference: int = 20000,
                 normalize: bool = True, fit_sample: int | None = 20000) -> None:
        self.neighbours, self.max_clusters = int(neighbours), int(max_clusters)
        self.fit_sample = fit_sample
        self.min_cluster_size, self.max_reference = int(min_cluster_size), int(max_reference)
        self.normalize = bool(normalize)

    def _select(self, ctx: QueryContext, k: int) -> np.ndarray:
        n_c = len(ctx.candidates)
        X = _embed(ctx, ctx.candidates, self.normalize)
        if len(ctx.labelled):
            X = np.concatenate([X, _embed(ctx, ctx.labelled, self.normalize)])
        n_clusters = max(1, min(len(ctx.labelled) + k, self.max_clusters, len(X)))
        assign, _ = geo.nearest(X, geo.kmeans(X, n_clusters, ctx.rng, fit_sample=self.fit_sample))
        sizes = np.bincount(assign, minlength=n_clusters)
        covered = np.bincount(assign[n_c:], minlength=n_clusters).astype(float)
        left = np.bincount(assign[:n_c], minlength=n_clusters)
        taken = np.zeros(n_c, dtype=bool)
        tie = ctx.rng.random(n_clusters)
        picked: list[int] = []
        for _ in range(k):
            usable = left > 0
            big = usable & (sizes >= self.min_cluster_size)
            pool = big if big.any() else usable
            cand = np.flatnonzero(pool)
            c = cand[np.lexsort((tie[cand], -sizes[cand], covered[cand]))[0]]
            members = np.flatnonzero(assign == c)
            free = members[(members < n_c)]
            free = free[~taken[free]]
            i = int(free[top_k(self._typicality(X, members, free, ctx.rng), 1, ctx.rng)[0]])
            picked.append(i)
            taken[i] = True
            left[c] -= 1
            covered[c] += 1
        return np.asarray(picked)

    def _typicality(self, X: np.ndarray, members: np.ndarray, free: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
        reference = members
        if members.size > self.max_reference:
            reference = rng.choice(members, self.max_reference, replace=False)
        if reference.size < 2:
            return np.ones(free.size)
        k = min(self.neighbours, reference.size - 1)
        # +1 neighbour: a free item is itself in the reference set at distance 0
        _, d = geo.knn(X[free], X[reference], k + 1)
        mean = np.sqrt(d[:, 1:]).mean(axis=1)
        return 1.0 / (mean + 1e-8)


class MarginKMeans(Strategy):
    """Batch-diverse uncertainty (Zhdanov 2019, "diverse mini-batch AL"): keep the
    `prefilter` × k candidates with the smallest margin, cluster their embeddings by k-means
    weighted by 1 − margin, and take the candidate nearest each centroid (heaviest cluster
    first)."""
    name = "margin_kmeans"

    def __init__(self, prefilter: int = 10, normalize: bool = True, max_iter: int = 100) -> None:
        if prefilter < 1:
            raise ValueError(f"margin_kmeans: prefilter must be >= 1, got {prefilter}")
        self.prefilter, self.normalize, self.max_iter = int(prefilter), bool(normalize), int(max_iter)

    def _select(self, ctx: QueryContext, k: int) -> np.ndarray:
        m = margin(ctx.probs())
        top = top_k(-m, min(len(m), self.prefilter * k), ctx.rng)
        X = _embed(ctx, ctx.candidates[top], self.normalize)
        weight = 1.0 - m[top] + 1e-6
        centers = geo.kmeans(X, k, ctx.rng, sample_weight=weight, max_iter=self.max_iter)
        assign, _ = geo.nearest(X, centers)
        mass = np.bincount(assign, weights=weight, minlength=k)
        order = np.lexsort((ctx.rng.random(k), -mass))
        return top[geo.nearest_distinct(X, centers[order])]


def _embed(ctx: QueryContext, ids: np.ndarray, normalize: bool) -> np.ndarray:
    X = ctx.embeddings(ids)
    return geo.normalize_rows(X) if normalize else geo.as_float32(X)


STRATEGY_CLASSES: dict[str, type[Strategy]] = {cls.name: cls for cls in (
    RandomSampling, LeastConfidence, Entropy, Margin, KMeansSampling, Coreset, BADGE, BALD,
    ContrastiveAL, NoiseStability, TypiClust, MarginKMeans)}


def make_strategy(name: str, **options: Any) -> Strategy:
    """A strategy instance by registry name; options are its keyword arguments."""
    if name not in STRATEGY_CLASSES:
        raise ValueError(f"unknown query strategy {name!r} (known: {sorted(STRATEGY_CLASSES)})")
    return STRATEGY_CLASSES[name](**options)
