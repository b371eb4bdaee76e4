"""simulate_table: an AL run that replays one annotation table of a classification task, for
tests that drive the loop without files."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import pandas as pd

from llmal.engine.loop import ALResult, simulate
from llmal.engine.oracle import GoldSource, TableOracle
from llmal.engine.schedule import Schedule
from llmal.models.base import Classifier
from llmal.tasks.classification.task import ClassificationTask


def simulate_table(*, items: pd.DataFrame, split: pd.DataFrame, annotations: pd.DataFrame,
                   classifier: Classifier, sampler: str, settings: dict[str, Any],
                   label_names: Sequence[str], positive: str | None, seed: int,
                   training: dict[str, Any] | None = None, gold_price: float = 0.0,
                   buy_dev: bool = False, log: Callable[[str], None] = print) -> ALResult:
    """A run that replays one annotation table (what `annotation: precomputed` does)."""
    task = ClassificationTask(items, split, label_names, positive)
    gold = GoldSource(task.gold(task.ids["pool"] + task.ids["dev"]), gold_price)
    return simulate(task=task, oracle=TableOracle("annotator", annotations), gold=gold,
                    classifier=classifier, sampler=sampler, seed=seed, training=training, log=log,
                    buy_dev=buy_dev or bool(getattr(classifier, "uses_dev", False)),
                    stop=settings.get("stop"),
                    schedule=Schedule.from_settings(settings, full=sampler == "full"))
