"""Response-cache writes: one transaction per line (`put`) vs per downloaded batch (`put_many`).

The openai_batch executor hands a whole downloaded batch file to the cache at once; this prints
seconds for N batch-output-sized lines written both ways, side by side, and the ratio.
    .venv/bin/python benchmarks/cache_bulk_writes.py [--lines 11000] [--per-batch 2000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from llmal.llm.cache import ResponseCache
from llmal.llm.executors.base import ok_line


def line(i: int) -> dict:
    content = '{"migration": "yes", "hostile": "no"}'
    return ok_line(f"{i:064x}", {"id": f"chatcmpl-{i}", "object": "chat.completion", "model": "gpt-test",
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": content}}],
                                 "usage": {"prompt_tokens": 240, "completion_tokens": 12,
                                           "prompt_tokens_details": {"cached_tokens": 0}}})


def one_by_one(path: Path, lines: list[dict]) -> float:
    with ResponseCache(path) as cache:
        start = time.perf_counter()
        for item in lines:
            cache.put(item, "openai_batch")
        return time.perf_counter() - start


def per_batch(path: Path, lines: list[dict], size: int) -> float:
    with ResponseCache(path) as cache:
        start = time.perf_counter()
        for begin in range(0, len(lines), size):
            cache.put_many(lines[begin:begin + size], "openai_batch")
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=11_000)
    parser.add_argument("--per-batch", type=int, default=2000)
    args = parser.parse_args()
    lines = [line(i) for i in range(args.lines)]
    with tempfile.TemporaryDirectory() as tmp:
        slow = one_by_one(Path(tmp) / "a.sqlite", lines)
        fast = per_batch(Path(tmp) / "b.sqlite", lines, args.per_batch)
    print(f"{args.lines} lines: put one by one {slow:.2f} s ({1000 * slow / args.lines:.2f} ms/line); "
          f"put_many per {args.per_batch} {fast:.3f} s; ratio {slow / fast:.0f}x")


if __name__ == "__main__":
    main()
