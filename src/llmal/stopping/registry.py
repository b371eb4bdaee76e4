"""Names of the stopping criteria, their options with defaults, and what each reads.

Imports nothing heavy (no numpy): config validation reads it while Snakemake plans the DAG.
What a criterion reads:
- "stop_set": the current model's class probabilities on the run's stop set (a fixed sample of
  the pool drawn once per run, never test; Bloodgood & Vijay-Shanker 2009);
- "dev_f1": the round's macro F1 against the dev labels bought from the condition's annotator
  (rounds.csv `dev_f1_macro`; needs `al.dev_labels: true`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

STOP_MODES = ("stop", "record")
DEFAULT_STOP_SET = 1000      # items of the stop set (fewer when the pool is smaller)
DEFAULT_STOP_SEED = 0


@dataclass(frozen=True)
class CriterionInfo:
    reads: str                       # "stop_set" | "dev_f1"
    defaults: Mapping[str, Any]      # option -> default
    description: str


CRITERIA: dict[str, CriterionInfo] = {
    "stabilizing_predictions": CriterionInfo(
        "stop_set", {"window": 3, "kappa": 0.99},
        "Bloodgood & Vijay-Shanker 2009: Cohen's kappa between the stop-set predictions of "
        "consecutive rounds; stops when the mean of the last `window` kappas is >= `kappa` "
        "(small-text KappaAverage)"),
    "overall_uncertainty": CriterionInfo(
        "stop_set", {"threshold": 0.05},
        "Zhu, Wang & Hovy 2008: the mean normalised entropy of the stop-set probabilities is "
        "below `threshold` (small-text OverallUncertainty)"),
    "classification_change": CriterionInfo(
        "stop_set", {"threshold": 0.0},
        "Zhu, Wang & Hovy 2008: at most a share `threshold` of the stop-set predictions changed "
        "since the previous round (small-text ClassificationChange)"),
    "max_confidence": CriterionInfo(
        "stop_set", {"threshold": 0.001},
        "Zhu, Wang & Hovy 2008: the most uncertain stop-set item's normalised entropy is at "
        "most `threshold`"),
    "dev_f1_plateau": CriterionInfo(
        "dev_f1", {"window": 3, "min_delta": 0.005},
        "the dev macro F1 (labels already bought) of the last `window` rounds is never more "
        "than `min_delta` above the best of the rounds before them"),
}


def criterion_names() -> list[str]:
    """Every criterion name, in registry order."""
    return list(CRITERIA)


def criterion_options(name: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The criterion's options: its defaults, updated by the ones given."""
    return {**CRITERIA[name].defaults, **dict(given or {})}


def configured_stops(config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Condition -> its `al.stop` (the condition's own, else the global one) for the conditions
    whose runs check stopping criteria: those with a query strategy (`full` has one round)."""
    out: dict[str, Mapping[str, Any]] = {}
    for name, cond in (config.get("conditions") or {}).items():
        stop = {**(config.get("al") or {}), **(cond.get("al") or {})}.get("stop")
        if stop and cond.get("sampler") != "full":
            out[str(name)] = stop
    return out
