"""The default grid's tables against their golden copies (issue 18, invariant 3).

The default grid (config/config.yaml, what `bin/demo` runs: synthetic demo data, 51 AL runs and
the local SmolLM2 annotator) writes results/demo/tables/ (csv, md, tex, agreement.json). Their
golden copies in tests/golden/demo_tables/ were made by main at 763a51e; this script prints a
unified diff for every table that differs (and names tables added or gone) and exits 1 then.

Deterministic: two cold runs of the grid in two fresh copies (different directories, no
response cache) gave byte-identical tables, so every column of every table is compared; none is
excluded. What does vary between runs is outside tables/: report.html (its "Generated" time and
the per-run seconds), run.json (timings, host, versions) and the figures' PNG bytes.

Too slow for the test suite (3 to 4.5 minutes on 2 shared cores, against ~7 s for
tests/test_golden.py), so the redesign runs it before and after:
    .venv/bin/python benchmarks/golden_tables.py --run            # a cold grid in a fresh copy
    .venv/bin/python benchmarks/golden_tables.py --results results/demo   # tables already made
    .venv/bin/python benchmarks/golden_tables.py --run --write    # only for an intended change

--run copies the working tree of --tree (default this checkout; tracked files and untracked ones
git does not ignore, so uncommitted changes count) into a temporary directory, links its .venv,
runs `snakemake --cores N` there with the copy's src/ first on PYTHONPATH, prints the grid's wall
time and compares its tables with this checkout's golden copies.

Side by side timing (suite and default grid, old and new main alternating), see
benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "demo_tables"
DATASET = "demo"   # dataset.name of config/config.yaml


def tree_files(root: Path) -> list[str]:
    """Tracked files and untracked ones git does not ignore, as they are in the working tree."""
    out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                          "--exclude-standard"], capture_output=True, check=True).stdout
    return sorted({p for p in out.decode().split("\0") if p and (root / p).is_file()})


def run_grid(tree: Path, cores: int, keep: bool) -> Path:
    """A cold default grid in a fresh copy of the working tree `tree`; the path of its tables."""
    work = Path(tempfile.mkdtemp(prefix="llmal-golden-grid-"))
    for rel in tree_files(tree):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(tree / rel, work / rel)
    (work / ".venv").symlink_to((tree / ".venv").resolve())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(p for p in (str(work / "src"), os.environ.get("PYTHONPATH")) if p)}
    start = time.perf_counter()
    res = subprocess.run([str(work / ".venv" / "bin" / "snakemake"), "--cores", str(cores)], cwd=work,
                         env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        sys.exit(f"the default grid failed ({res.returncode}) in {work}:\n{res.stderr[-4000:]}")
    print(f"default grid: {seconds:.1f} s wall with --cores {cores} in {work}"
          + ("" if keep else " (removed afterwards)"))
    return work / "results" / DATASET / "tables"


def compare(tables: Path, golden: Path = GOLDEN) -> list[str]:
    """One message (with a unified diff) per table that differs from its golden copy."""
    problems = []
    names = sorted({p.name for p in golden.iterdir()} | {p.name for p in tables.iterdir() if p.is_file()})
    for name in names:
        want, got = golden / name, tables / name
        if not got.exists():
            problems.append(f"{name}: not made any more")
        elif not want.exists():
            problems.append(f"{name}: a new table without a golden copy")
        elif want.read_bytes() != got.read_bytes():
            diff = difflib.unified_diff(want.read_text(encoding="utf-8").splitlines(),
                                        got.read_text(encoding="utf-8").splitlines(),
                                        f"golden/{name}", f"now/{name}", lineterm="")
            problems.append(f"{name}: differs\n" + "\n".join(diff))
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", action="store_true", help="run the default grid in a fresh copy")
    source.add_argument("--results", type=Path, help="a results/demo directory made already")
    parser.add_argument("--tree", type=Path, default=ROOT,
                        help="with --run: the checkout whose grid runs (default this one; e.g. old main)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the fresh copy of --run")
    parser.add_argument("--write", action="store_true",
                        help="replace the golden copies (an intended change only; say which in the note)")
    args = parser.parse_args()
    tables = run_grid(args.tree.resolve(), args.cores, args.keep) if args.run else args.results / "tables"
    try:
        if args.write:
            shutil.rmtree(GOLDEN, ignore_errors=True)
            GOLDEN.mkdir(parents=True)
            for p in sorted(tables.iterdir()):
                shutil.copy2(p, GOLDEN / p.name)
            print(f"wrote {len(list(GOLDEN.iterdir()))} golden tables to {GOLDEN.relative_to(ROOT)}")
            return 0
        problems = compare(tables)
        for message in problems:
            print(message)
        golden = sorted(GOLDEN.iterdir())
        same = sum((tables / p.name).is_file() and (tables / p.name).read_bytes() == p.read_bytes() for p in golden)
        print(f"{same} of {len(golden)} tables identical to {GOLDEN.relative_to(ROOT)}"
              + (f"; {len(problems)} problem(s)" if problems else ""))
        return 1 if problems else 0
    finally:
        if args.run and not args.keep:
            shutil.rmtree(tables.parents[2], ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
