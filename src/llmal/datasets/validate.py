"""Check an items table before any stage uses it; fail fast with messages a user can act on.

Each message names the file (`where`), the column and the first few offending rows. Row numbers
count data rows from 1 in the order of the input file (the header is not a row), so "row 17" is
the 17th record; the item id is given too.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from llmal.contracts import ANNOTATOR_PREFIX, ITEM_COLUMNS
from llmal.datasets.errors import DatasetError, describe_offenders, is_blank  # noqa: F401 (re-exported)

MIN_TEST_PER_CLASS = 30  # fewer gold test items of a class: its scores are noise (a warning)


def _count(n: int) -> str:
    return f"{n} row has" if n == 1 else f"{n} rows have"


def validate_items(df: pd.DataFrame, *, label_names: Sequence[str], where: str,
                   allow_unknown_gold: bool = False) -> None:
    """Raise DatasetError on the first problem found in an items table (contract in tables.py).

    Checks, in this order: required columns present; no empty or whitespace-only text; ids
    unique; gold an index into `label_names` (-1, "unknown", only with allow_unknown_gold);
    every annotator label (ann_* columns) an index into `label_names` or missing.
    """
    missing = [c for c in ITEM_COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(f"{where}: missing required column(s) {missing}; "
                           f"the table has {list(df.columns)}")
    if len(df) == 0:
        raise DatasetError(f"{where}: the dataset has no rows")

    empty = df["text"].map(is_blank).astype(bool)
    if empty.any():
        raise DatasetError(f"{where}: {_count(int(empty.sum()))} empty text (column 'text'), "
                           f"first at {describe_offenders(df, empty)} (whitespace and invisible "
                           "characters such as zero-width spaces count as empty)")

    ids = df["id"].astype(str)
    blank_id = df["id"].isna() | ids.str.strip().eq("")
    if blank_id.any():
        raise DatasetError(f"{where}: {_count(int(blank_id.sum()))} an empty id (column 'id'), "
                           f"first at {describe_offenders(df, blank_id)}")
    dup = ids.duplicated(keep=False)
    if dup.any():
        first_dup = ids[ids.duplicated()].iloc[0]
        raise DatasetError(f"{where}: duplicate id {first_dup!r} (column 'id'); "
                           f"{int(ids.duplicated().sum())} duplicate(s) in all, at "
                           f"{describe_offenders(df, dup)}")

    n_labels = len(label_names)
    gold = pd.to_numeric(df["gold"], errors="coerce")
    if not allow_unknown_gold:
        unknown = df["gold"].isna() | (gold == -1).fillna(False).astype(bool)
        if unknown.any():
            raise DatasetError(f"{where}: {_count(int(unknown.sum()))} no gold label (column "
                               f"'gold' is empty or -1), first at {describe_offenders(df, unknown)}")
    allowed_low = -1 if allow_unknown_gold else 0
    bad_gold = gold.isna() | (gold < allowed_low) | (gold >= n_labels) | (gold % 1 != 0)
    if bad_gold.any():
        raise DatasetError(
            f"{where}: {_count(int(bad_gold.sum()))} a gold label outside the label set "
            f"{list(label_names)} (column 'gold', expected indices 0..{n_labels - 1}), "
            f"first at {describe_offenders(df, bad_gold, 'gold')}")

    known = gold[gold >= 0]
    if len(known) and known.nunique() < 2:
        only = label_names[int(known.iloc[0])] if 0 <= int(known.iloc[0]) < n_labels else known.iloc[0]
        raise DatasetError(f"{where}: every item has the gold label {only!r} (column 'gold'): a "
                           "single-class dataset cannot train or evaluate a classifier; check "
                           "dataset.columns.gold and dataset.label_map")

    for col in (c for c in df.columns if c.startswith(ANNOTATOR_PREFIX)):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = (df[col].notna() & values.isna()) | (values < 0) | (values >= n_labels) | (values % 1 != 0)
        bad = bad.fillna(False).astype(bool)
        if bad.any():
            raise DatasetError(
                f"{where}: {_count(int(bad.sum()))} an annotator label outside the label set "
                f"{list(label_names)} (column {col!r}), first at {describe_offenders(df, bad, col)}")


def check_split(split: pd.DataFrame, where: str, need_test: bool = True) -> None:
    """A usable split has pool items (to learn from) and test items (to score on); without gold
    (an agreement-only study, `need_test` false) pool items are enough."""
    counts = split["split"].value_counts()
    needed = (("pool", "nothing to learn from"), ("test", "nothing to evaluate on"))
    for name, why in needed if need_test else needed[:1]:
        if int(counts.get(name, 0)) == 0:
            raise DatasetError(
                f"{where}: the split has no {name} items ({why}); split counts: "
                f"{ {k: int(v) for k, v in counts.items()} }; check the split column values "
                "(dataset.columns.split, dataset.split_map), dataset.files[].split or the split "
                "fractions")


def small_test_classes(items: pd.DataFrame, split: pd.DataFrame, label_names: Sequence[str],
                       minimum: int = MIN_TEST_PER_CLASS) -> dict[str, int]:
    """label name -> gold test items, for the classes with fewer than `minimum` of them."""
    test_ids = set(split.loc[split["split"] == "test", "id"].astype(str))
    gold = items.loc[items["id"].astype(str).isin(test_ids), "gold"].astype(int)
    counts = gold.value_counts()
    return {name: int(counts.get(k, 0)) for k, name in enumerate(label_names)
            if int(counts.get(k, 0)) < minimum}
