"""A label set as one integer: bit k is label k of labels.names (the `gold`, `ann_*` and
annotation `label` cells of task multilabel), and its conversions to indicator rows and names.

An int64 holds up to 62 labels; 0 is the empty set, and -1 (gold) is unknown.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

MAX_LABELS = 62
UNKNOWN = -1


def to_mask(indices: Iterable[int]) -> int:
    out = 0
    for k in indices:
        out |= 1 << int(k)
    return out


def to_indicator(masks: Sequence[int] | np.ndarray, n_labels: int) -> np.ndarray:
    """(n,) label-set integers -> (n, n_labels) 0/1 int8 rows."""
    m = np.asarray(masks, dtype=np.int64).reshape(-1, 1)
    return ((m >> np.arange(n_labels, dtype=np.int64)) & 1).astype(np.int8)


def from_indicator(rows: np.ndarray) -> np.ndarray:
    """(n, n_labels) 0/1 rows -> (n,) label-set integers."""
    rows = np.asarray(rows, dtype=np.int64)
    return (rows << np.arange(rows.shape[1], dtype=np.int64)).sum(axis=1)


def names_of(mask: int, label_names: Sequence[str]) -> list[str]:
    return [n for k, n in enumerate(label_names) if (int(mask) >> k) & 1]


def parse_label_list(value: Any, label_names: Sequence[str], sep: str, *,
                     where: str) -> int:
    """One cell holding a separator-joined list ("insult|profane"), or a JSON-like list read
    as one (["insult", "profane"]), -> its label-set integer. Names are matched exactly after
    stripping spaces; an unknown name raises ValueError naming it and `where`."""
    if isinstance(value, (list, tuple, np.ndarray)):
        parts = [str(v).strip() for v in value]
    else:
        parts = [p.strip() for p in str(value).split(sep)]
    lookup = {n: k for k, n in enumerate(label_names)}
    out = 0
    for p in parts:
        if p == "":
            continue
        if p not in lookup:
            raise ValueError(f"{where}: {p!r} is not a label (labels.names: {list(label_names)})")
        out |= 1 << lookup[p]
    return out
