"""Selection time of every query strategy: 100 queries from pools of 10,000 and 100,000 items.

    PYTHONPATH=src python benchmarks/strategies.py [--sizes 10000 100000] [--only kmeans ...]

Synthetic data: 384-dimensional Gaussian-mixture embeddings (20 clusters), two classes with
logistic-head probabilities, 200 labelled items. MC-dropout and perturbed-weight probabilities
are precomputed arrays, so the times are the strategies' own work (the model's forward passes
are not included); BADGE's time includes building the gradient embeddings in closed form
(`linear_grad_embeddings`). Threads are limited to --threads (default 2) before numpy loads.
Target: every strategy at most 10 s at 100,000.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--labelled", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="*", default=None, help="strategy names (default all)")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import numpy as np

    from llmal.strategies import strategy_names
    from llmal.strategies.base import ArrayContext, linear_grad_embeddings
    from llmal.strategies.catalog import make_strategy

    names = args.only or strategy_names()
    print(f"{args.k} queries, {args.dim}-d embeddings, {args.labelled} labelled, "
          f"{args.threads} threads; seconds per strategy")
    print(f"{'strategy':<18}" + "".join(f"{n:>12,}" for n in args.sizes))
    times: dict[str, list[float]] = {n: [] for n in names}
    for size in args.sizes:
        ctx_args = synthetic(size, args.dim, args.labelled, np)
        for name in names:
            ctx = ArrayContext(**ctx_args, rng=np.random.default_rng(0),
                               grad_embeddings_=(lambda a=ctx_args: linear_grad_embeddings(
                                   a["embedding_matrix"][:size], a["probs_"])))
            start = time.perf_counter()
            picked = make_strategy(name).query(ctx, args.k)
            times[name].append(time.perf_counter() - start)
            assert len(np.unique(picked)) == args.k
    slow = []
    for name in names:
        print(f"{name:<18}" + "".join(f"{t:>12.2f}" for t in times[name]))
        if times[name][-1] > 10:
            slow.append(name)
    if slow:
        print(f"over 10 s at {args.sizes[-1]:,}: {', '.join(slow)}")
    return 0


def synthetic(size: int, dim: int, n_labelled: int, np) -> dict:
    rng = np.random.default_rng(size)
    n = size + n_labelled
    centres = rng.normal(size=(20, dim)).astype(np.float32)
    X = centres[rng.integers(20, size=n)] + 0.8 * rng.normal(size=(n, dim)).astype(np.float32)
    w = rng.normal(size=dim) / np.sqrt(dim)
    z = X @ w
    p1 = 1.0 / (1.0 + np.exp(-z))
    P = np.stack([1 - p1, p1], axis=1)
    ids = np.array([f"i{i}" for i in range(n)], dtype=object)

    def noisy(passes: int, scale: float = 0.5) -> np.ndarray:
        zz = z[None, :size] + scale * rng.normal(size=(passes, size))
        q = 1.0 / (1.0 + np.exp(-zz))
        return np.stack([1 - q, q], axis=-1)

    return dict(candidates=ids[:size], labelled=ids[size:], probs_=P[:size],
                labelled_probs_=P[size:], embedding_matrix=X,
                mc_probs_=lambda passes: noisy(passes),
                perturbed_probs_=lambda passes, scale: noisy(passes, 0.01))


if __name__ == "__main__":
    sys.exit(main())
