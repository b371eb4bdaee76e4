"""The fewest seeds at which a paired test can reach significance at all (pure arithmetic, no
pandas: `llmal check` reads it while planning)."""
from __future__ import annotations

import math

PAIRED_TESTS = ("wilcoxon", "ttest")


def wilcoxon_min_seeds(alpha: float, family_size: int = 1) -> int:
    """Fewest non-zero paired differences whose exact two-sided Wilcoxon signed-rank p (at best
    2 / 2**n, when every difference has the same sign) is below alpha / family_size, the level
    Holm's first step asks of the smallest of family_size p-values."""
    level = alpha / max(1, family_size)
    return max(1, math.floor(math.log2(2.0 / level)) + 1)


def min_seeds(test: str, alpha: float, family_size: int = 1) -> int:
    """The fewest seeds at which `test` (aggregate.primary_test) can give p < alpha after Holm
    over family_size comparisons: the exact Wilcoxon test's floor, or 2 for the paired t-test
    (with two or more pairs its p can be as small as the differences are consistent)."""
    if test not in PAIRED_TESTS:
        raise ValueError(f"unknown paired test {test!r} (known: {list(PAIRED_TESTS)})")
    return wilcoxon_min_seeds(alpha, family_size) if test == "wilcoxon" else 2
