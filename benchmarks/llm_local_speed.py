"""Seconds per item of the `local` executor (SmolLM2-135M GGUF, llama.cpp) per prompt interface,
and of a rerun served from the response cache, measured side by side on the same items.

    .venv/bin/python benchmarks/llm_local_speed.py [--items 10] [--threads 2]

Uses the synthetic demo dataset (no network). Prints s/item and the ratios
two_question / holistic and model / cache.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from llmal.config import PROMPTS_DIR
from llmal.tasks.classification.demo import generate_demo
from llmal.tasks.classification.llm import annotate_with_llm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    items = generate_demo(max(args.items, 50), seed=0).head(args.items)[["id", "text"]]
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for prompt in ("holistic", "two_question"):
            spec = {"kind": "local", "model": "smollm2-135m-instruct-gguf", "prompt": prompt,
                    "max_tokens": 32, "n_ctx": 1024, "n_threads": args.threads}
            kwargs = dict(spec=spec, label_names=["not_hostile", "hostile"], positive="hostile",
                          prompts_dir=PROMPTS_DIR, prices={}, cache_path=Path(tmp) / "c.sqlite",
                          state_dir=Path(tmp), log=lambda m: None)
            for run in ("model", "cache"):
                t0 = time.perf_counter()
                table = annotate_with_llm(items, **kwargs)
                seconds[f"{prompt}/{run}"] = (time.perf_counter() - t0) / len(items)
            ok = (table["status"] == "ok").mean()
            print(f"{prompt:13s} model {seconds[prompt + '/model']:.3f} s/item, cache "
                  f"{seconds[prompt + '/cache'] * 1000:.2f} ms/item, ok rate {ok:.0%}")
    print(f"two_question / holistic (model): "
          f"{seconds['two_question/model'] / seconds['holistic/model']:.2f}x")
    print(f"model / cache (two_question): "
          f"{seconds['two_question/model'] / seconds['two_question/cache']:.0f}x")


if __name__ == "__main__":
    main()
