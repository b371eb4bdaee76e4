"""Per-item random numbers that depend only on (seed, purpose, item id).

An annotator's answer for an item must not change when the set of items around it changes
(a subset, another order), as a real annotator's would not; so draws are hashed per item
instead of taken from one stream.
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterable, Mapping, Sequence

import numpy as np


def uniform_per_item(ids: Iterable[str], seed: int, purpose: str) -> np.ndarray:
    out = []
    for item_id in ids:
        digest = hashlib.blake2b(f"{seed}\x1f{purpose}\x1f{item_id}".encode(), digest_size=8).digest()
        out.append(int.from_bytes(digest, "little") / 2**64)
    return np.asarray(out, dtype=np.float64)


def draw_meta_ids(dev_ids: Sequence[str], *, size: int, seed: int) -> list[str]:
    """`size` dev items (all when fewer), in dev order: the clean meta set, chosen before its
    gold labels are bought (through the run's ledger)."""
    if len(dev_ids) == 0:
        raise ValueError("training.reweight: the split has no dev item to draw the gold meta set from")
    n = min(size, len(dev_ids))
    chosen = np.sort(np.random.default_rng(seed).choice(len(dev_ids), size=n, replace=False))
    return [str(dev_ids[i]) for i in chosen]


DEFAULT_GOLD_SIZE = 50   # a learned mixture's gold set (mixtures' gold_size)


def learned_gold_ids(spec: Mapping[str, Any], dev_ids: Sequence[str]) -> list[str]:
    """The gold set of a `learned` mixture (any task): `gold_size` dev items drawn with
    `gold_seed`, in dev order (the same draw in the AL loop, which buys their gold labels, and
    in `annotate`); none for another method."""
    if spec.get("method") != "learned":
        return []
    if not len(dev_ids):
        raise ValueError("mixture method learned: the split has no dev item to draw the gold set from")
    return draw_meta_ids(list(dev_ids), size=int(spec.get("gold_size", DEFAULT_GOLD_SIZE)),
                         seed=int(spec.get("gold_seed", 0)))
