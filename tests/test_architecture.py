"""The shape of the library, checked from its source (nothing is imported but the registry):

- no import cycles, between files or between packages, counting imports inside functions too;
- no task name compared outside llmal/tasks (stages ask the task, config checks read its
  capabilities);
- an import of an llmal module inside a function only defers a heavy dependency (torch,
  vllm, llama_cpp, matplotlib, pandas for the modules Snakemake loads while planning, ...)
  that the importing module does not load already: never a way around a cycle;
- the layers and the independence of the task packages (`.importlinter`, lint-imports);
- every package says its one responsibility in the first line of its docstring.
"""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from llmal.tasks.registry import CAPABILITIES

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "llmal"
# what a function-local import may defer: optional backends and what is heavy to import
HEAVY = {"torch", "transformers", "sentence_transformers", "vllm", "llama_cpp", "sklearn_crfsuite",
         "tiktoken", "matplotlib", "openai", "pandas", "numpy", "scipy", "sklearn", "seqeval",
         "pyarrow", "crowdkit", "huggingface_hub", "tqdm"}   # tqdm.auto loads pandas
TASK_NAMES = set(CAPABILITIES) | {"multilabel"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _target(module: str, node: ast.ImportFrom | ast.Import, alias: ast.alias) -> str:
    if isinstance(node, ast.Import):
        return alias.name
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        is_pkg = MODULES[module].name == "__init__.py"
        parts = parts[: len(parts) - node.level + (1 if is_pkg else 0)]
        base = ".".join(parts + ([node.module] if node.module else []))
    full = f"{base}.{alias.name}"
    return full if full in MODULES else base


def _imports(module: str) -> list[tuple[str, bool, int]]:
    """(imported name, inside a function?, line) of every import of `module`."""
    tree = ast.parse(MODULES[module].read_text())
    local = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                out.append((_target(module, node, alias), id(node) in local, node.lineno))
    return out


def _internal(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_import_cycles_between_files_or_packages():
    files: dict[str, set[str]] = defaultdict(set)
    packages: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for name, _, _ in _imports(module):
            target = _internal(name)
            if target and target != module:
                files[module].add(target)
                if _package(target) != _package(module):
                    packages[_package(module)].add(_package(target))
    assert _cycles(files) == []
    assert _cycles(packages) == []


def test_no_task_name_is_compared_outside_the_tasks_package():
    found = []
    for module, path in MODULES.items():
        if module.startswith("llmal.tasks"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                for side in [node.left, *node.comparators]:
                    values = [side] if not isinstance(side, (ast.Tuple, ast.List, ast.Set)) else side.elts
                    for v in values:
                        if isinstance(v, ast.Constant) and v.value in TASK_NAMES:
                            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def _heavy_at_import(module: str, seen: set[str] | None = None) -> set[str]:
    """The heavy packages importing `module` loads (its module-level imports, followed through llmal)."""
    seen = set() if seen is None else seen
    if module in seen:
        return set()
    seen.add(module)
    out = set()
    for name, local, _ in _imports(module):
        if local:
            continue
        top = name.split(".")[0]
        if top in HEAVY:
            out.add(top)
        target = _internal(name)
        if target:
            out |= _heavy_at_import(target, seen)
    # a module's package __init__ runs first
    parent = module.rpartition(".")[0]
    if parent in MODULES:
        out |= _heavy_at_import(parent, seen)
    return out


def test_function_local_llmal_imports_only_defer_a_heavy_dependency():
    bad = []
    for module in MODULES:
        already = _heavy_at_import(module)
        for name, local, line in _imports(module):
            target = _internal(name)
            if local and target:
                deferred = _heavy_at_import(target) - already
                if not deferred:
                    bad.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {target} "
                               "inside a function, deferring nothing heavy")
    assert bad == []


def test_layers_and_independent_task_packages_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is a test dependency (bin/setup installs it)"
    res = subprocess.run([lint, "--config", str(ROOT / ".importlinter")], capture_output=True, text=True,
                         cwd=ROOT, env={"PYTHONPATH": str(SRC), "PATH": str(Path(sys.executable).parent)})
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


@pytest.mark.parametrize("package", sorted(m for m, p in MODULES.items() if p.name == "__init__.py"))
def test_every_package_says_its_one_responsibility(package):
    doc = ast.get_docstring(ast.parse(MODULES[package].read_text()))
    assert doc and len(doc.splitlines()[0]) <= 160, package
