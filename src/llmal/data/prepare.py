"""The prepare stage: dataset config -> items table and split table, read and split by the task."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from llmal.tasks.base import Task


def prepare(task: Task, dataset: Mapping[str, Any], labels: Mapping[str, Any], split: Mapping[str, Any], *,
            cache_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The task reads the dataset into its items (its own label structure), validates them and
    assigns each to pool, dev or test (llmal.datasets.split)."""
    return task.prepare(dataset, labels, split, cache_dir=cache_dir)
