"""k-NN in-context demonstrations from a small gold pool (LLMaAA, S3).

For every item to annotate, the k pool items whose encoder embeddings are most similar (cosine)
are shown to the LLM with their gold labels. An item is never its own demonstration. Selection is
deterministic: ties go to the pool item listed first.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

QUERY_CHUNK = 4096
DEFAULT_POOL_SIZE = 32


class DemonstrationError(ValueError):
    """Demonstrations cannot be chosen; the message names the id or setting at fault."""


def draw_demo_pool(candidates: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A class-stratified seeded sample of `size` rows with a known gold label (gold >= 0).

    `candidates` has columns id, text, gold (e.g. the dev split). Each class gets a share
    proportional to its frequency, at least one item where possible; order of the result is by id.
    """
    known = candidates[candidates["gold"] >= 0]
    if len(known) == 0:
        raise DemonstrationError("no candidate for the demonstration pool has a gold label")
    if size >= len(known):
        return known.sort_values("id").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    counts = known["gold"].value_counts().sort_index()
    quota = np.floor(counts / counts.sum() * size).astype(int).clip(lower=1)
    quota = np.minimum(quota, counts)
    while quota.sum() > size:  # the floor of one per class can overshoot
        quota[quota.idxmax()] -= 1
    leftovers = size - int(quota.sum())
    for label in counts.sort_values(ascending=False).index:
        if leftovers == 0:
            break
        extra = min(leftovers, int(counts[label] - quota[label]))
        quota[label] += extra
        leftovers -= extra
    picked = []
    for label, n in quota.items():
        rows = known[known["gold"] == label].sort_values("id")
        idx = rng.choice(len(rows), size=int(n), replace=False)
        picked.append(rows.iloc[np.sort(idx)])
    return pd.concat(picked).sort_values("id").reset_index(drop=True)


def demo_pool_of(candidates: pd.DataFrame, settings: Mapping[str, Any]) -> pd.DataFrame:
    """The gold pool an annotator's `demonstrations` settings (pool_size, seed) draw from `candidates`."""
    return draw_demo_pool(candidates, int(settings.get("pool_size", DEFAULT_POOL_SIZE)),
                          int(settings.get("seed", 0)))


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return m / norms


def _rows_of(ids: Sequence[str], index: dict[str, int], what: str) -> np.ndarray:
    missing = [i for i in ids if i not in index]
    if missing:
        raise DemonstrationError(f"{what} id {missing[0]!r} has no embedding "
                                 f"({len(missing)} missing in all)")
    return np.array([index[i] for i in ids], dtype=np.int64)


def knn_demonstrations(query_ids: Sequence[str], pool_ids: Sequence[str], pool_labels: Sequence[int],
                       embedding_ids: Sequence[str], embeddings: np.ndarray, k: int,
                       balanced: bool = False) -> dict[str, list[str]]:
    """Map each query id to the ids of its k demonstrations, most similar first.

    balanced=False: plain top-k by cosine similarity.
    balanced=True: each label gets k // n_labels slots (the labels whose best match is closest
    take the remainder); a label with too few pool items leaves its slots to the others.
    """
    if k < 1:
        raise DemonstrationError(f"k must be at least 1, got {k}")
    if len(pool_ids) != len(pool_labels):
        raise DemonstrationError("pool_ids and pool_labels differ in length")
    if len(set(pool_ids)) != len(pool_ids):
        raise DemonstrationError("the demonstration pool has duplicate ids")
    ids = [str(i) for i in embedding_ids]
    if len(ids) != len(embeddings):
        raise DemonstrationError(f"{len(ids)} embedding ids but {len(embeddings)} embedding rows")
    index = {i: n for n, i in enumerate(ids)}
    pool_ids = [str(i) for i in pool_ids]
    pool_vecs = _unit_rows(embeddings[_rows_of(pool_ids, index, "pool")])
    labels = np.asarray(pool_labels)
    pool_pos = {p: n for n, p in enumerate(pool_ids)}
    query_ids = [str(q) for q in query_ids]
    rows = _rows_of(query_ids, index, "item")
    out: dict[str, list[str]] = {}
    for start in range(0, len(query_ids), QUERY_CHUNK):
        chunk = query_ids[start:start + QUERY_CHUNK]
        sims = _unit_rows(embeddings[rows[start:start + QUERY_CHUNK]]) @ pool_vecs.T
        for qi, qid in enumerate(chunk):
            s = sims[qi].copy()
            if qid in pool_pos:
                s[pool_pos[qid]] = -np.inf
            order = np.argsort(-s, kind="stable")
            if qid in pool_pos:
                order = order[order != pool_pos[qid]]
            pick = _balanced(order, labels, k) if balanced else order[:k]
            out[qid] = [pool_ids[j] for j in pick]
    return out


def _balanced(order: np.ndarray, labels: np.ndarray, k: int) -> list[int]:
    classes: list = []
    for j in order:  # classes in order of their best match
        if labels[j] not in classes:
            classes.append(labels[j])
    if not classes:
        return []
    quota = {c: k // len(classes) + (1 if n < k % len(classes) else 0) for n, c in enumerate(classes)}
    chosen: list[int] = []
    taken = {c: 0 for c in classes}
    for j in order:
        if taken[labels[j]] < quota[labels[j]]:
            chosen.append(int(j))
            taken[labels[j]] += 1
    if len(chosen) < k:  # some class ran out: fill with the best of the rest
        already = set(chosen)
        rest = [int(j) for j in order if int(j) not in already]
        chosen += rest[:k - len(chosen)]
    chosen_set = set(chosen)
    return [int(j) for j in order if int(j) in chosen_set]
