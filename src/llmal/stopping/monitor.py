"""The stopping criteria of one run (`al.stop`), checked after every round on one stop set.

`StopMonitor.from_settings(al["stop"], pool)` draws the stop set once: `stop_set` items of the
pool (all of them when the pool is smaller), with its own generator seeded by `al.stop.seed`, so
the AL loop's random draws are the same with or without a stop. The set may overlap the items
the run buys later (Bloodgood & Vijay-Shanker 2009 need no labels for it); test items are never
in it. `observe` runs every criterion and returns the round's record: `stop_<name>` (whether it
says stop) and `stop_<name>_value` (its statistic). `mode: stop` ends the run at the first round
any criterion fires; `mode: record` runs on, and rounds.csv and run.json keep where each fired.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from llmal.stopping.criteria import Criterion, Observation, make_criterion
from llmal.stopping.registry import CRITERIA, DEFAULT_STOP_SEED, DEFAULT_STOP_SET, STOP_MODES


def fired_column(name: str) -> str:
    """rounds.csv's column: whether criterion `name` says stop after that round."""
    return f"stop_{name}"


def value_column(name: str) -> str:
    """rounds.csv's column: the statistic criterion `name` decided on after that round."""
    return f"stop_{name}_value"


@dataclass
class StopMonitor:
    mode: str
    criteria: dict[str, Criterion]
    stop_ids: list[str]
    first_fired: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], pool: Sequence[str]) -> StopMonitor:
        mode = str(settings.get("mode", "stop"))
        if mode not in STOP_MODES:
            raise ValueError(f"al.stop.mode: {mode!r} is not one of {list(STOP_MODES)}")
        wanted = settings.get("criteria") or {}
        if not wanted:
            raise ValueError("al.stop.criteria: name at least one stopping criterion "
                             f"(known: {list(CRITERIA)})")
        criteria = {name: make_criterion(name, **dict(opts or {})) for name, opts in wanted.items()}
        stop_ids: list[str] = []
        if any(CRITERIA[n].reads == "stop_set" for n in criteria):
            size = min(int(settings.get("stop_set", DEFAULT_STOP_SET)), len(pool))
            rng = np.random.default_rng(int(settings.get("seed", DEFAULT_STOP_SEED)))
            stop_ids = [str(pool[i]) for i in np.sort(rng.choice(len(pool), size=size, replace=False))]
        return cls(mode, criteria, stop_ids, {n: None for n in criteria})

    def observe(self, rnd: int, probs: Callable[[Sequence[str]], np.ndarray] | None,
                dev_f1: float) -> dict[str, Any]:
        """Check every criterion after round `rnd`; `probs(ids)` gives the current model's class
        probabilities. Returns the round's columns for rounds.csv."""
        obs = Observation(rnd, (lambda: probs(self.stop_ids)) if probs is not None and self.stop_ids else None,
                          dev_f1)
        row: dict[str, Any] = {}
        for name, criterion in self.criteria.items():
            verdict = criterion.check(obs)
            row[fired_column(name)] = bool(verdict.stop)
            row[value_column(name)] = verdict.value
            if verdict.stop and self.first_fired[name] is None:
                self.first_fired[name] = rnd
        return row

    def fired(self) -> list[str]:
        """The criteria that have fired so far, in config order."""
        return [n for n, r in self.first_fired.items() if r is not None]

    def ends_run(self) -> bool:
        return self.mode == "stop" and bool(self.fired())

    def summary(self) -> dict[str, Any]:
        """run.json's `stopping`: mode, stop-set size and the first round each criterion fired."""
        return {"mode": self.mode, "stop_set": len(self.stop_ids),
                "first_fired": dict(self.first_fired)}
