"""Glue shared by the thin scripts/*.py rule entry points: logging and provenance."""
from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def logged(log_path: str | Path) -> Iterator[None]:
    """Send stdout and stderr (progress bars, warnings, tracebacks) to the rule's log file."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as fh:
        old = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = fh
        try:
            yield
        except BaseException:
            import traceback
            traceback.print_exc(file=fh)
            raise
        finally:
            sys.stdout, sys.stderr = old


def log_executors() -> None:
    """Send llmal's own `logging` (batch ids, resumed batches, retries) to the rule's log."""
    import logging

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("llmal").setLevel(logging.INFO)


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version()}
    for pkg in ("llmal", "numpy", "pandas", "scikit-learn", "torch", "transformers",
                "sentence-transformers", "snakemake", "openai", "llama_cpp_python"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    out["git_commit"] = git_commit()
    return out


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        res = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() or None
