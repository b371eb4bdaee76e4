"""Per-round time of an AL run as the pool grows (issue 22): random, entropy, kmeans and coreset
with the linear head, at 27,790, 277,902 and 1,000,000 items.

    PYTHONPATH=src python benchmarks/round_growth.py [--sizes 27790 277902 1000000] [--dim 64]

SYNTHETIC data: a two-class Gaussian mixture of `--dim`-dimensional dense features (20 clusters),
a 70/10/20 pool/dev/test split and an annotator that answers gold. Each run is the real engine
(llmal.engine.loop.simulate with llmal.models.logistic.LogisticHead and the strategy's class):
530 initial labels, then `--rounds` rounds of 530. A round's seconds (rounds.csv's `seconds`:
query the pool, buy, fit, predict the test split) are the median over rounds 1.. of one run;
`exponent` is the log-log slope between two sizes (1: linear in the pool, 2: quadratic). Each
cell is the fastest of `--repeat` runs (other work on a shared machine only ever adds time).
Threads are limited to --threads (default 1, what Snakemake gives a linear-head job) before numpy
loads.
"""
from __future__ import annotations

import argparse
import math
import os
import time


def synthetic(n: int, dim: int, np, pd):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(20, dim)).astype(np.float32)
    cluster = rng.integers(0, 20, n)
    X = (centers[cluster] + rng.normal(scale=1.5, size=(n, dim))).astype(np.float32)
    gold = ((cluster % 2 == 0) ^ (rng.random(n) < 0.1)).astype(np.int64)
    ids = np.array([f"i{k}" for k in range(n)])
    part = rng.random(n)
    split = np.where(part < 0.2, "test", np.where(part < 0.3, "dev", "pool"))
    items = pd.DataFrame({"id": ids, "text": "", "gold": gold})
    split_df = pd.DataFrame({"id": ids, "split": split})
    annotations = pd.DataFrame({"id": ids, "label": pd.array(gold, dtype="Int64"), "status": "ok",
                                "cost_usd": 0.0})
    keep = split != "test"
    return items, split_df, annotations[keep].reset_index(drop=True), ids, X


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[27_790, 277_902, 1_000_000])
    ap.add_argument("--strategies", nargs="+", default=["random", "entropy", "kmeans", "coreset"])
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (1: what a linear-head job gets)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per cell; the fastest is kept (shared machines)")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import numpy as np
    import pandas as pd

    from llmal.engine.loop import simulate
    from llmal.engine.oracle import GoldSource, TableOracle
    from llmal.engine.schedule import Schedule
    from llmal.models.encoders import Features
    from llmal.models.logistic import LogisticHead
    from llmal.tasks.classification.task import ClassificationTask

    print(f"{args.dim}-d dense features, 530 initial + {args.rounds} rounds of 530, linear head, "
          f"{args.threads} threads; median seconds of one AL round")
    table: dict[str, list[float]] = {s: [] for s in args.strategies}
    for n in args.sizes:
        start = time.perf_counter()
        items, split, annotations, ids, X = synthetic(n, args.dim, np, pd)
        features = Features(ids, X)
        task = ClassificationTask(items, split, ["neg", "pos"], "pos")
        made = time.perf_counter() - start
        for name in args.strategies:
            best = math.inf
            for _ in range(args.repeat):
                head = LogisticHead(features, recipe={"kind": "logistic", "class_weight": "balanced"},
                                    n_classes=2, seed=0, fit_ids=task.ids["pool"] + task.ids["dev"])
                result = simulate(task=task, oracle=TableOracle("gold", annotations),
                                  gold=GoldSource({}, 0.0), classifier=head, sampler=name, seed=0,
                                  buy_dev=False, log=lambda _: None,
                                  schedule=Schedule.from_settings({"initial": 530, "batch": 530,
                                                                   "rounds": args.rounds}))
                best = min(best, float(result.rounds["seconds"].iloc[1:].median()))
            table[name].append(best)
        print(f"  {n:>9,} items: data made in {made:.1f} s", flush=True)
    header = f"| strategy | " + " | ".join(f"{n:,}" for n in args.sizes) + " | " + " | ".join(
        f"exponent {a:,}→{b:,}" for a, b in zip(args.sizes, args.sizes[1:])) + " |"
    print("\n" + header)
    print("|" + "---|" * (1 + 2 * len(args.sizes) - 1))
    for name, times in table.items():
        slopes = [math.log(t2 / t1) / math.log(n2 / n1)
                  for (t1, t2), (n1, n2) in zip(zip(times, times[1:]), zip(args.sizes, args.sizes[1:]))]
        print(f"| {name} | " + " | ".join(f"{t:.3f} s" for t in times) + " | "
              + " | ".join(f"{s:.2f}" for s in slopes) + " |")


if __name__ == "__main__":
    main()
