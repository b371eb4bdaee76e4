"""Keeps `snakemake` fast where SLURM's client is installed but no controller answers.

Snakemake imports every installed executor plugin to build its command line. The SLURM plugin
(snakemake-executor-plugin-slurm 2.x) computes the help text of `--slurm-status-command` at
import, which runs `scontrol show config` (timeout 10 s): with slurmctld unreachable, every
`snakemake -n` on a workstation waits about 9-10 s for it. This guard makes that one probe
answer "unknown" (as a missing `scontrol` would) while the plugin's package is being imported,
and puts the real probe back once the import is done, so a SLURM run still reads MinJobAge
when it chooses between squeue and sacct.

It is installed by a `.pth` file that `bin/setup` writes with the `slurm` extra
(`llmal-slurm-guard.pth`: `import llmal.slurm_guard as g; g.install()`, run at interpreter
start); without the plugin it does nothing. Any surprise (another plugin version, another layout)
leaves the plugin untouched.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any, Callable

PLUGIN = "snakemake_executor_plugin_slurm"
PROBE_MODULE = f"{PLUGIN}.job_status_query"
PROBE = "get_min_job_age"


def _no_probe() -> None:
    return None


class _GuardedLoader(importlib.abc.Loader):
    """Runs the plugin package's own loader with the probe stubbed, then restores it."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        real: Callable[[], Any] | None = None
        probe_module: ModuleType | None = None
        try:   # the package object is in sys.modules with its __path__: submodules import
            probe_module = importlib.import_module(PROBE_MODULE)
            real = getattr(probe_module, PROBE, None)
            if callable(real):
                setattr(probe_module, PROBE, _no_probe)
        except Exception:
            real = None
        try:
            self.loader.exec_module(module)  # type: ignore[attr-defined]
        finally:
            if real is not None:
                for name, mod in list(sys.modules.items()):
                    if (name == PLUGIN or name.startswith(PLUGIN + ".")) and getattr(mod, PROBE, None) is _no_probe:
                        setattr(mod, PROBE, real)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != PLUGIN:
            return None
        uninstall()   # once: the real finders locate the package, the guard wraps its loader
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _GuardedLoader(spec.loader)
        return spec


_FINDER = _Finder()


def install() -> None:
    """Guard the next import of the SLURM plugin (idempotent; a no-op once it is imported)."""
    if PLUGIN in sys.modules or _FINDER in sys.meta_path:
        return
    sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
