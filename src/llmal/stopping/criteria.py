"""The stopping criteria, one small class each (see registry.CRITERIA), and what they see.

After every round the AL loop hands each criterion an `Observation` (the round, the model's
probabilities on the stop set, computed once and only when asked for, and the dev macro F1);
`check(obs)` returns a `Verdict`: whether to stop, and the statistic it decided on (recorded
per round in rounds.csv). A criterion keeps its own history, so it must see every round.

Formulas follow the papers; where small-text (1.4.1, small_text.stopping_criteria) implements
the same criterion, tests/test_stopping.py checks that both stop at the same round on the same
predictions. Entropies are normalised by log(number of classes), as in small-text.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from llmal.stopping.registry import CRITERIA, criterion_options


@dataclass
class Observation:
    """What a criterion may look at after round `round`: `probs()` (n_stop_set, C) class
    probabilities of the stop set (computed at most once), and `dev_f1` (NaN without dev labels
    or a fitted model)."""
    round: int
    probs_: np.ndarray | Callable[[], np.ndarray] | None = None
    dev_f1: float = float("nan")
    _cached: np.ndarray | None = field(default=None, repr=False)

    def probs(self) -> np.ndarray:
        if self._cached is None:
            if self.probs_ is None:
                raise ValueError("this observation has no stop-set probabilities")
            self._cached = np.asarray(self.probs_() if callable(self.probs_) else self.probs_, dtype=float)
        return self._cached


@dataclass(frozen=True)
class Verdict:
    stop: bool
    value: float     # the statistic compared with the criterion's threshold (NaN: not yet)


class Criterion:
    """One stopping criterion. Subclasses set `name` and implement `check(obs)`; options are
    the registry's (unknown ones are an error naming them)."""

    name: str = ""

    def __init__(self, **options: Any) -> None:
        known = CRITERIA[self.name].defaults
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(f"stopping criterion {self.name!r} takes no options {unknown} "
                            f"(options: {sorted(known)})")
        for key, value in criterion_options(self.name, options).items():
            setattr(self, key, value)

    def check(self, obs: Observation) -> Verdict:
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={getattr(self, k)!r}" for k in CRITERIA[self.name].defaults)
        return f"{type(self).__name__}({opts})"


def normalised_entropy(P: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row divided by log(C): 0 for a certain prediction, 1 for uniform."""
    P = np.asarray(P, dtype=float)
    C = P.shape[1]
    if C < 2:
        return np.zeros(len(P))
    logs = np.log(np.where(P > 0, P, 1.0))
    return -(P * logs).sum(axis=1) / math.log(C)


def cohen_kappa(a: np.ndarray, b: np.ndarray, n_classes: int) -> float:
    """Cohen's kappa of two label vectors; 1.0 when they are identical (also when both say one
    class throughout, where the formula divides 0 by 0)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if np.array_equal(a, b):
        return 1.0
    n = a.size
    observed = float((a == b).mean())
    expected = float((np.bincount(a, minlength=n_classes) * np.bincount(b, minlength=n_classes)).sum()) / n ** 2
    return (observed - expected) / (1.0 - expected)


class _PredictionChange(Criterion):
    """Compares the stop-set predictions of consecutive rounds (the first round has no partner)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._last: np.ndarray | None = None

    def _step(self, obs: Observation) -> tuple[np.ndarray, np.ndarray | None]:
        probs = obs.probs()
        pred, last = probs.argmax(axis=1), self._last
        if last is not None and last.shape != pred.shape:
            raise ValueError(f"{self.name}: {pred.shape[0]} stop-set predictions after "
                             f"{last.shape[0]} in the round before")
        self._last = pred
        return pred, last


class StabilizingPredictions(_PredictionChange):
    name = "stabilizing_predictions"
    window: int
    kappa: float

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._kappas: list[float] = []

    def check(self, obs: Observation) -> Verdict:
        pred, last = self._step(obs)
        if last is None:
            return Verdict(False, float("nan"))
        self._kappas.append(cohen_kappa(last, pred, obs.probs().shape[1]))
        recent = self._kappas[-int(self.window):]
        mean = float(np.mean(recent))
        return Verdict(len(self._kappas) >= int(self.window) and mean >= float(self.kappa), mean)


class ClassificationChange(_PredictionChange):
    name = "classification_change"
    threshold: float

    def check(self, obs: Observation) -> Verdict:
        pred, last = self._step(obs)
        if last is None:
            return Verdict(False, float("nan"))
        changed = float((pred != last).mean())
        unchanged = int((pred == last).sum())
        return Verdict(unchanged >= pred.size * (1.0 - float(self.threshold)), changed)


class OverallUncertainty(Criterion):
    name = "overall_uncertainty"
    threshold: float

    def check(self, obs: Observation) -> Verdict:
        mean = float(normalised_entropy(obs.probs()).mean())
        return Verdict(mean < float(self.threshold), mean)


class MaxConfidence(Criterion):
    name = "max_confidence"
    threshold: float

    def check(self, obs: Observation) -> Verdict:
        worst = float(normalised_entropy(obs.probs()).max())
        return Verdict(worst <= float(self.threshold), worst)


class DevF1Plateau(Criterion):
    name = "dev_f1_plateau"
    window: int
    min_delta: float

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._f1: list[float] = []

    def check(self, obs: Observation) -> Verdict:
        self._f1.append(float(obs.dev_f1))
        w = int(self.window)
        before, recent = np.array(self._f1[:-w]), np.array(self._f1[-w:])
        if len(self._f1) <= w or np.isnan(before).all() or np.isnan(recent).all():
            return Verdict(False, float("nan"))
        gain = float(np.nanmax(recent) - np.nanmax(before))
        return Verdict(gain < float(self.min_delta), gain)


CRITERION_CLASSES: dict[str, type[Criterion]] = {c.name: c for c in (
    StabilizingPredictions, OverallUncertainty, ClassificationChange, MaxConfidence, DevF1Plateau)}
assert list(CRITERION_CLASSES) == list(CRITERIA), "registry and classes disagree"


def make_criterion(name: str, **options: Any) -> Criterion:
    if name not in CRITERION_CLASSES:
        raise ValueError(f"unknown stopping criterion {name!r} (known: {list(CRITERION_CLASSES)})")
    return CRITERION_CLASSES[name](**options)
