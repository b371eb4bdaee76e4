"""Human and simulated annotators of sentences (task: ner); both write the annotation table
with `label` = 0 and the entity `spans` of every ok row (llmal.contracts).

- human: the gold spans (mode gold), or a per-annotator span column `meta_spans_<column>` of
  the dataset (JSON [[start, end, type], ...]; a sentence without it gets status failed).
- simulated: per-type noise over gold spans, drawn per item from (seed, id) so an answer never
  depends on which other items were asked: for an entity of type T, `missed` drops it,
  `wrong_type` gives it another declared type, `boundary` moves one edge by one token; then
  `spurious` adds, per type, an entity of one or two tokens on tokens outside every entity
  with that probability per sentence. `invalid_rate` gives sentences with no usable answer.
Cost: `cost_per_label` per sentence plus `cost_per_token` per token (human cost per token).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import META_PREFIX, make_annotations, safe_column_name
from llmal.tasks.ner.data import TAGS, TOKENS
from llmal.tasks.ner.spans import Span, spans_json, tags_to_spans

ERROR_KINDS = ("missed", "wrong_type", "boundary", "spurious")


def _rng(seed: int, item: str) -> np.random.Generator:
    digest = hashlib.blake2b(f"{seed}\x1fner\x1f{item}".encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def item_costs(items: pd.DataFrame, spec: Mapping[str, Any]) -> np.ndarray:
    n_tokens = items[TOKENS].map(lambda t: len(json.loads(t))).to_numpy(float)
    return float(spec.get("cost_per_label", 0.0)) + float(spec.get("cost_per_token", 0.0)) * n_tokens


def gold_spans(items: pd.DataFrame) -> list[list[Span]]:
    return [tags_to_spans(json.loads(t)) for t in items[TAGS]]


def annotate_ner_human(items: pd.DataFrame, spec: Mapping[str, Any]) -> pd.DataFrame:
    column = spec.get("column")
    costs = item_costs(items, spec)
    if column:
        col = META_PREFIX + "spans_" + safe_column_name(column)
        if col not in items.columns:
            raise ValueError(f"annotator column {column!r}: the dataset has no span column {col!r}")
        given = items[col].fillna("").astype(str)
        ok = given != ""
        spans = [spans_json([tuple(s) for s in json.loads(g)]) if g else "" for g in given]
        model = f"human:{column}"
    else:
        ok = pd.Series(True, index=items.index)
        spans = [spans_json(s) for s in gold_spans(items)]
        model = "human:gold"
    return make_annotations({
        "id": items["id"].astype(str), "label": pd.Series(0, index=items.index, dtype="Int64").where(ok),
        "status": np.where(ok, "ok", "failed"), "spans": spans, "cost_usd": costs, "model": model})


def noisy_spans(tokens: Sequence[str], gold: Sequence[Span], types: Sequence[str],
                rates: Mapping[str, Mapping[str, float]], rng: np.random.Generator) -> list[Span]:
    """One simulated answer: gold spans with per-type misses, type and boundary errors, then
    spurious entities; never overlapping, always inside the sentence."""
    n = len(tokens)
    out: list[Span] = []
    for start, end, typ in gold:
        r = rates.get(typ, {})
        if rng.random() < float(r.get("missed", 0.0)):
            continue
        if len(types) > 1 and rng.random() < float(r.get("wrong_type", 0.0)):
            others = [t for t in types if t != typ]
            typ = others[int(rng.integers(len(others)))]
        if rng.random() < float(r.get("boundary", 0.0)):
            moves = [(start - 1, end), (start + 1, end), (start, end - 1), (start, end + 1)]
            moves = [(s, e) for s, e in moves if 0 <= s < e <= n]
            start, end = moves[int(rng.integers(len(moves)))]
        out.append((start, end, typ))
    kept: list[Span] = []
    for s in sorted(out):        # a boundary move may touch the next entity: keep the first
        if not kept or s[0] >= kept[-1][1]:
            kept.append(s)
    for typ in types:
        if rng.random() < float(rates.get(typ, {}).get("spurious", 0.0)):
            free = [i for i in range(n) if not any(s <= i < e for s, e, _ in kept)]
            if free:
                i = free[int(rng.integers(len(free)))]
                end = i + 2 if i + 1 in free and rng.random() < 0.3 else i + 1
                kept.append((i, end, typ))
    return sorted(kept)


def annotate_ner_simulated(items: pd.DataFrame, spec: Mapping[str, Any],
                           types: Sequence[str]) -> pd.DataFrame:
    seed = int(spec.get("seed", 0))
    rates = spec.get("entity_error") or {}
    invalid_rate = float(spec.get("invalid_rate", 0.0))
    ids = items["id"].astype(str).tolist()
    spans, status = [], []
    for item, tokens, gold in zip(ids, (json.loads(t) for t in items[TOKENS]), gold_spans(items)):
        rng = _rng(seed, item)
        if rng.random() < invalid_rate:
            spans.append("")
            status.append("invalid")
            continue
        spans.append(spans_json(noisy_spans(tokens, gold, types, rates, rng)))
        status.append("ok")
    ok = np.array(status) == "ok"
    return make_annotations({
        "id": ids, "label": pd.Series(np.zeros(len(ids), dtype=np.int64), dtype="Int64").where(ok),
        "status": status, "spans": spans, "raw": np.where(ok, "", "<simulated: no answer>"),
        "cost_usd": item_costs(items, spec), "model": "simulated"})
