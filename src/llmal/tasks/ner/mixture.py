"""A mixture of sentence annotators (task ner): entity-level majority vote.

For each sentence, the members that answered (status ok) vote for their entities, an entity
being the exact (start, end, type). An entity proposed by more than half of them is kept. Kept entities that overlap are resolved by
votes, then leftmost first, so the answer is valid BIO. A sentence answered by fewer than
`min_votes` members gets status failed. Only `method: majority` exists for sentences: the
class-posterior methods of text mixtures (dawid_skene, mean, learned) have no per-entity
counterpart here, and the config check refuses them under task ner.

Cost (`cost: sum`): every member's price for the sentence. A member row shares its request's
full price with the other sentences of that request (sentences_per_prompt), so a sentence
carries its share, and the mixture's table sums to what the members paid.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any, Mapping

import numpy as np
import pandas as pd

from llmal.contracts import make_annotations
from llmal.tasks.ner.spans import Span, spans_json, spans_of_json

NER_MIXTURE_METHODS = ("majority",)


def _cost_shares(table: pd.DataFrame) -> pd.Series:
    """Each row's share of its request's price (rows of one request split it evenly)."""
    cost = table["cost_usd"].astype(float)
    if "request_id" not in table.columns:
        return cost
    request = table["request_id"].fillna("").astype(str)
    n = request.map(request[request != ""].value_counts()).fillna(1).astype(float)
    return cost / n.where(request != "", 1.0)


def majority_entities(answers: list[list[Span]], min_agree: int) -> tuple[list[Span], dict[Span, int]]:
    """The entities with at least `min_agree` votes, overlaps resolved by votes then position."""
    votes: Counter[Span] = Counter(s for spans in answers for s in set(spans))
    chosen: list[Span] = []
    for span, n in sorted(votes.items(), key=lambda sv: (-sv[1], sv[0][0], sv[0][1], sv[0][2])):
        if n < min_agree:
            break
        if all(span[1] <= c[0] or c[1] <= span[0] for c in chosen):
            chosen.append(span)
    return sorted(chosen), dict(votes)


def annotate_ner_mixture(tables: Mapping[str, pd.DataFrame], spec: Mapping[str, Any]) -> pd.DataFrame:
    """The mixture's annotation table from its members' (name -> table, in member order)."""
    method = str(spec.get("method", "majority"))
    if method not in NER_MIXTURE_METHODS:
        raise ValueError(f"a mixture of sentence annotators aggregates by {list(NER_MIXTURE_METHODS)}, "
                         f"not {method!r}")
    min_votes = int(spec.get("min_votes", 1))
    members = list(tables)
    by_member = {m: t.assign(id=t["id"].astype(str), share=_cost_shares(t)).drop_duplicates("id").set_index("id")
                 for m, t in tables.items()}
    ids = list(dict.fromkeys(i for t in by_member.values() for i in t.index))
    rows = []
    for item in ids:
        given: dict[str, list[Span]] = {}
        status: dict[str, str] = {}
        cost = 0.0
        for m, t in by_member.items():
            if item not in t.index:
                continue
            row = t.loc[item]
            status[m] = str(row["status"])
            cost += float(row["share"])
            if row["status"] == "ok":
                given[m] = spans_of_json(str(row["spans"]))
        need = len(given) // 2 + 1       # a strict majority of the members that answered
        kept, votes = majority_entities(list(given.values()), need) if given else ([], {})
        ok = len(given) >= min_votes
        rows.append({
            "id": item, "label": 0 if ok else pd.NA, "status": "ok" if ok else "failed",
            "spans": spans_json(kept) if ok else "", "invalid_spans": 0, "raw": "", "cost_usd": cost,
            "model": f"mixture:{method}({','.join(members)})",
            "answers": json.dumps({"method": method, "n_votes": len(given), "min_agree": need,
                                   "member_status": status,
                                   "members": {m: [list(s) for s in spans] for m, spans in given.items()},
                                   "votes": {f"{s[0]}:{s[1]}:{s[2]}": n for s, n in sorted(votes.items())}},
                                  sort_keys=True)})
    table = make_annotations(rows if rows else {"id": []})
    table["label"] = pd.array(np.where(table["status"] == "ok", 0, None).tolist(), dtype="Int64")
    return table
