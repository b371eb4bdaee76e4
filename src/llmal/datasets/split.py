"""Assign every item to pool, dev or test (results/{ds}/data/split.parquet).

Either the dataset's own split (the `meta_split` column that map_columns fills from
dataset.columns.split) or a random split stratified by gold label. Both are deterministic.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from llmal.contracts import SPLITS
from llmal.datasets.loaders import SPLIT_COLUMN
from llmal.datasets.validate import DatasetError


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def _stratified_take(gold: np.ndarray, candidates: np.ndarray, n_take: int,
                     rng: np.random.Generator) -> np.ndarray:
    """`n_take` positions from `candidates`, each gold class in proportion to its share there.

    Quotas are rounded by largest remainder, so the total is exact and no class is starved by
    per-class rounding.
    """
    labels, counts = np.unique(gold[candidates], return_counts=True)  # sorted: fixed draw order
    if n_take <= 0 or len(candidates) == 0:
        return np.array([], dtype=int)
    n_take = min(n_take, len(candidates))
    exact = n_take * counts / counts.sum()
    quota = np.floor(exact).astype(int)
    remainder_order = np.argsort(-(exact - quota), kind="stable")
    quota[remainder_order[: n_take - quota.sum()]] += 1
    chosen = [rng.permutation(candidates[gold[candidates] == label])[:k]
              for label, k in zip(labels, quota)]
    return np.sort(np.concatenate(chosen))


def duplicate_groups(texts: pd.Series) -> np.ndarray:
    """A group number per item: items whose texts are equal after normalising whitespace and
    case share one (numbered in order of first appearance)."""
    keys = texts.astype(str).str.replace(r"\s+", " ", regex=True).str.strip().str.casefold()
    return pd.factorize(keys)[0]


def assign_split(items: pd.DataFrame, *, test: float, dev: float, seed: int,
                 use_column: bool = True, log=print) -> pd.DataFrame:
    """Return a table (id, split) in the items' order. Exact duplicate texts (after normalising
    whitespace and case) always share one split, so no test text is also seen in pool or dev.

    With use_column and a `meta_split` column, the dataset's own split is kept, except that a
    text found in several splits goes wholly to test if any copy is there, else to dev (logged);
    if it has no dev items and dev > 0, a stratified `dev` fraction of all items is moved from
    pool to dev.
    Otherwise round(test * n) items go to test and round(dev * n) to dev, each stratified by
    gold label, the rest to pool; then every copy of a text follows its first copy (logged).
    """
    for name, value in (("split.test", test), ("split.dev", dev)):
        if not 0.0 <= value < 1.0:
            raise DatasetError(f"{name} must be in [0, 1), got {value}")
    if test + dev >= 1.0:
        raise DatasetError(f"split.test + split.dev must be below 1 (leaving a pool), "
                           f"got {test} + {dev}")
    rng = np.random.default_rng(seed)
    group = duplicate_groups(items["text"]) if "text" in items else np.arange(len(items))
    n_groups = int(group.max()) + 1 if len(group) else 0
    gold = items["gold"].to_numpy()
    n = len(items)

    if use_column and SPLIT_COLUMN in items.columns:
        split = items[SPLIT_COLUMN].astype(object).to_numpy().copy()
        bad = ~pd.Series(split).isin(SPLITS).to_numpy()
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise DatasetError(f"items: {SPLIT_COLUMN} of row {pos + 1} (id {items['id'].iloc[pos]!r})"
                               f" is {split[pos]!r}, not one of {SPLITS}")
        # a text in several splits goes wholly to the strongest: test, then dev, then pool
        rank = {"pool": 0, "dev": 1, "test": 2}
        strongest = np.zeros(n_groups, dtype=int)
        np.maximum.at(strongest, group, np.array([rank[x] for x in split], dtype=int))
        unified = np.array(["pool", "dev", "test"], dtype=object)[strongest][group]
        _log_moved(int((unified != split).sum()), "test before dev before pool", log)
        split = unified
        if dev > 0 and not (split == "dev").any():
            pool = np.flatnonzero(split == "pool")
            split[_stratified_take(gold, pool, _round_half_up(dev * n), rng)] = "dev"
            split = _follow_first(split, group, log)
    else:
        split = np.full(n, "pool", dtype=object)
        split[_stratified_take(gold, np.arange(n), _round_half_up(test * n), rng)] = "test"
        # dev is a fraction of all items, drawn from what test left
        rest = np.flatnonzero(split == "pool")
        split[_stratified_take(gold, rest, _round_half_up(dev * n), rng)] = "dev"
        split = _follow_first(split, group, log)
    return pd.DataFrame({"id": items["id"].astype(str).to_numpy(), "split": split.astype(str)})


def _follow_first(split: np.ndarray, group: np.ndarray, log) -> np.ndarray:
    """Every copy of a text takes the split its first copy was drawn into."""
    _, first = np.unique(group, return_index=True)
    unified = split[first][group]
    _log_moved(int((unified != split).sum()), "the split of its first copy", log)
    return unified


def _log_moved(moved: int, rule: str, log) -> None:
    if moved:
        log(f"split: {moved} item(s) moved to the split of an exact duplicate text ({rule}), "
            "so no text is in two splits")


def texts_shared_with_test(items: pd.DataFrame, split: pd.DataFrame) -> int:
    """Test items whose text (normalised as for duplicates) also occurs in pool or dev: 0 for
    every split this module makes."""
    group = pd.Series(duplicate_groups(items["text"]), index=items["id"].astype(str))
    where = split.assign(id=split["id"].astype(str)).set_index("id")["split"]
    test = where.index[where == "test"]
    seen = set(group.loc[where.index[where != "test"]])
    return int(group.loc[test].isin(seen).sum())
