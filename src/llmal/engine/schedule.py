"""Schedule and budgets of one AL run: how many labels to ask for when, and when to stop.

- `initial` labels in round 0 (random, or the whole schedule for `full`), then `rounds` rounds
  of `batch` labels chosen by the strategy.
- `budget_labels` caps the labels bought for training (initial + al); without it the schedule
  itself (initial + rounds x batch, or the pool for `full`) is the cap.
- `budget_usd` caps everything the run pays (cost_total: training labels, dev labels, gold
  sets). A round is never started when its estimated cost would exceed what is left.
- `budget_tokens` (task ner) caps the tokens of the training sentences bought (initial + al);
  a round takes the longest prefix of its ranked sentences whose tokens still fit, as
  `budget_usd` takes the prefix whose estimated cost fits.
- `full` is a schedule, not a strategy: the pool in a seeded random order, up to the budgets,
  in one round.
The run stops cleanly at the first of: the rounds done, the pool exhausted, a budget reached,
a stopping criterion fired (`al.stop` with mode stop; llmal.stopping).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

# why a run ended (rounds.csv `stop` on the last row, run.json `stop_reason`)
COMPLETED = "completed"
POOL_EXHAUSTED = "pool_exhausted"
BUDGET_LABELS = "budget_labels"
BUDGET_USD = "budget_usd"
BUDGET_TOKENS = "budget_tokens"
SCHEDULE_USED = "schedule_used"     # round 0 needed extra labels; the schedule's total is spent
NO_TWO_CLASSES = "no_two_classes"   # round 0 never got usable labels of two classes
STOP_CRITERION = "stop_criterion"   # a stopping criterion of al.stop fired (mode stop)


@dataclass(frozen=True)
class Schedule:
    initial: int
    batch: int
    rounds: int
    budget_labels: int | None = None
    budget_usd: float | None = None
    full: bool = False
    budget_tokens: int | None = None

    @classmethod
    def from_settings(cls, s: Mapping[str, Any], *, full: bool = False) -> "Schedule":
        return cls(int(s.get("initial", 50)), int(s.get("batch", 50)), int(s.get("rounds", 10)),
                   None if s.get("budget_labels") is None else int(s["budget_labels"]),
                   None if s.get("budget_usd") is None else float(s["budget_usd"]), full,
                   None if s.get("budget_tokens") is None else int(s["budget_tokens"]))

    @property
    def n_rounds(self) -> int:
        return 0 if self.full else self.rounds

    def label_cap(self, pool_size: int) -> int:
        """Training labels the run may buy in all."""
        planned = pool_size if self.full else self.initial + self.rounds * self.batch
        return min(planned, self.budget_labels) if self.budget_labels is not None else planned

    def round_size(self, rnd: int, pool_size: int) -> int:
        if rnd == 0:
            return pool_size if self.full else self.initial
        return self.batch

    def affordable(self, estimates: np.ndarray, n_labels: int, spent: float,
                   pool_size: int, sizes: np.ndarray | None = None,
                   n_tokens: int = 0) -> tuple[int, str | None]:
        """How many of the next items (in priority order, with these estimated costs and, for
        budget_tokens, these `sizes` in tokens after `n_tokens` bought) fit every budget, and
        the budget that cut the list short (None when none did)."""
        n = len(estimates)
        cut: str | None = None
        room = self.label_cap(pool_size) - n_labels
        if room < n:
            planned = pool_size if self.full else self.initial + self.rounds * self.batch
            capped = self.budget_labels is not None and self.budget_labels <= planned
            n, cut = max(0, room), BUDGET_LABELS if capped else SCHEDULE_USED
        if self.budget_usd is not None:
            cumulative = spent + np.cumsum(np.asarray(estimates[:n], dtype=float))
            fits = int(np.searchsorted(cumulative, self.budget_usd + 1e-12, side="right"))
            if fits < n:
                n, cut = fits, BUDGET_USD
        if self.budget_tokens is not None:
            if sizes is None:
                raise ValueError("al.budget_tokens needs the tokens per item (task ner)")
            cumulative = n_tokens + np.cumsum(np.asarray(sizes[:n], dtype=np.int64))
            fits = int(np.searchsorted(cumulative, self.budget_tokens, side="right"))
            if fits < n:
                n, cut = fits, BUDGET_TOKENS
        return n, cut


def stop_message(reason: str, *, rnd: int, n_labels: int, spent: float, schedule: Schedule,
                 detail: str = "", n_tokens: int | None = None) -> str:
    what = {
        COMPLETED: "all rounds done",
        POOL_EXHAUSTED: "the pool is exhausted",
        BUDGET_LABELS: f"the label budget ({schedule.budget_labels} labels) is reached",
        SCHEDULE_USED: "the schedule's labels (initial + rounds x batch) are used up",
        BUDGET_USD: f"the next labels would exceed budget_usd ${schedule.budget_usd or 0:.4f}",
        BUDGET_TOKENS: f"the next sentence would exceed budget_tokens ({schedule.budget_tokens} tokens)",
        NO_TWO_CLASSES: "no usable labels of two classes could be bought, so no classifier can be fitted",
        STOP_CRITERION: "a stopping criterion of al.stop fired",
    }[reason]
    tokens = "" if n_tokens is None else f", {n_tokens} tokens"
    return (f"stopping after round {rnd}: {what} ({n_labels} training labels{tokens}, ${spent:.4f} spent)"
            + (f"; {detail}" if detail else ""))
