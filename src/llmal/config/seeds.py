"""Whether a config's seeds can ever make a comparison significant (a warning of `llmal check`).

The significance table tests each condition against the reference per encoder, with
aggregate.primary_test, and Holm-corrects over the comparisons of one encoder: the smallest
p-value must be below 0.05 / m. The exact Wilcoxon signed-rank p cannot go below 2 / 2**n with n
seeds, so too few seeds make every comparison non-significant before anything is run.
"""
from __future__ import annotations

from typing import Any, Mapping

from llmal.config.grid import condition_encoders
from llmal.results.min_seeds import min_seeds

ALPHA = 0.05


def holm_family_size(config: Mapping[str, Any]) -> int:
    """The most comparisons against the reference within one encoder (the significance table's
    Holm family)."""
    conditions = list(config.get("conditions") or {})
    if len(conditions) < 2:
        return 0
    reference = (config.get("aggregate") or {}).get("reference") or conditions[0]
    encoders = {c: _encoders(config, c) for c in conditions}
    per_encoder = [sum(1 for c in conditions if c != reference and enc in encoders[c])
                   for enc in encoders.get(reference, set())]
    return max(per_encoder, default=0)


def _encoders(config: Mapping[str, Any], condition: str) -> set[str]:
    try:
        return set(condition_encoders(dict(config), condition))
    except KeyError:   # an unknown recipe or encoder: its own error; count every encoder
        return set(config.get("encoders") or {})


def seed_warnings(config: Mapping[str, Any]) -> list[str]:
    m = holm_family_size(config)
    seeds = list(config.get("seeds") or [])
    if m == 0 or not seeds:
        return []
    test = str((config.get("aggregate") or {}).get("primary_test", "wilcoxon"))
    need = min_seeds(test, ALPHA, m)
    if len(seeds) >= need:
        return []
    why = (f"its exact p-value is at least 2 / 2^n = {2 / 2 ** len(seeds):.3g} with {len(seeds)} seeds"
           if test == "wilcoxon" else "a paired t-test needs two pairs")
    return [f"seeds: {len(seeds)} seed(s), but aggregate.primary_test {test} with Holm over {m} "
            f"comparison(s) per encoder needs at least {need} to reach p < {ALPHA} at all ({why}, "
            f"and Holm multiplies the smallest by {m}): no comparison can be significant. Add "
            "seeds or compare fewer conditions; `llmal power` sizes them from a pilot run"]
