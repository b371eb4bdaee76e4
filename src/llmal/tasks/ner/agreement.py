"""The agreement unit of task ner (S2): one unit per token, and the entity columns per annotator.

llmal.results.agreement builds its table on these units. Every sentence becomes one item per
token, labelled with the index of its BIO tag (tag_names); an annotator's answer gives every
token of a sentence it answered its tag (status ok), and every token of a sentence it could not
answer the row's status. So accuracy, macro-F1 and Cohen's κ against gold are token-level,
Fleiss' κ is token-level Fleiss' κ over the raters (S2 picks its annotator by it), and coverage /
malformed rates are shares of tokens. A sentence's cost sits on its first token (a request
shared by sentences is paid once), so costs and savings are those of the sentences. Two columns
are added: `entity_f1` (strict entity F1, micro, against gold over the sentences answered) and
`invalid_spans_per_item` (per sentence answered).
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import make_annotations
from llmal.tasks.base import AgreementUnit
from llmal.tasks.ner.data import TAGS
from llmal.tasks.ner.metrics import seqeval_scores
from llmal.tasks.ner.spans import spans_of_json, spans_to_tags, tag_names


def token_items(items: pd.DataFrame, split: pd.DataFrame, types: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    index = {t: k for k, t in enumerate(tag_names(types))}
    split_of = dict(zip(split["id"].astype(str), split["split"].astype(str)))
    ids, gold, where = [], [], []
    for sid, tags in zip(items["id"].astype(str), items[TAGS]):
        for n, tag in enumerate(json.loads(tags)):
            ids.append(f"{sid}#{n}")
            gold.append(index[tag])
            where.append(split_of[sid])
    tok = pd.DataFrame({"id": ids, "gold": gold, "text": "", "topic": "", "source": ""})
    return tok, pd.DataFrame({"id": ids, "split": where})


def token_annotations(table: pd.DataFrame, lengths: Mapping[str, int], types: Sequence[str]) -> pd.DataFrame:
    index = {t: k for k, t in enumerate(tag_names(types))}
    rows: list[dict[str, Any]] = []
    for r in table.itertuples(index=False):
        n = lengths.get(str(r.id))
        if n is None:
            continue
        tags = spans_to_tags(spans_of_json(r.spans), n) if r.status == "ok" else [None] * n
        for k, tag in enumerate(tags):
            rows.append({"id": f"{r.id}#{k}", "label": index[tag] if tag else pd.NA, "status": r.status,
                         "model": r.model, "cost_usd": float(r.cost_usd) if k == 0 else 0.0,
                         "request_id": r.request_id})
    return make_annotations(rows if rows else {"id": []})


def token_agreement_unit(annotations: Mapping[str, pd.DataFrame], items: pd.DataFrame, split: pd.DataFrame,
                         types: Sequence[str], *, splits: Sequence[str] = ("pool", "dev")) -> AgreementUnit:
    """The sentences' tokens as agreement units (labels: tag_names(types)), with the columns
    entity_f1 and invalid_spans_per_item over the sentences of `splits`."""
    tok_items, tok_split = token_items(items, split, types)
    lengths = {str(i): len(json.loads(t)) for i, t in zip(items["id"], items[TAGS])}
    tok_tables = {name: token_annotations(t, lengths, types) for name, t in annotations.items()}
    return AgreementUnit(tok_tables, tok_items, tok_split, tag_names(types), unit="tokens",
                         columns=entity_columns(annotations, items, split, types, lengths, splits))


def entity_columns(annotations: Mapping[str, pd.DataFrame], items: pd.DataFrame, split: pd.DataFrame,
                   types: Sequence[str], lengths: Mapping[str, int],
                   splits: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per annotator over the sentences of `splits` it answered: strict entity F1 (micro) against
    gold (`entity_f1`) and the mean invalid spans per sentence (`invalid_spans_per_item`)."""
    gold = dict(zip(items["id"].astype(str), (json.loads(t) for t in items[TAGS])))
    visible = set(split.loc[split["split"].isin(list(splits)), "id"].astype(str))
    f1: dict[str, float] = {}
    invalid: dict[str, float] = {}
    for name, t in annotations.items():
        ok = t[(t["status"] == "ok") & t["id"].astype(str).isin(visible)]
        pred = [spans_to_tags(spans_of_json(s), lengths[str(i)]) for i, s in zip(ok["id"], ok["spans"])]
        f1[name] = seqeval_scores([gold[str(i)] for i in ok["id"]], pred, types)["f1_micro"] if len(ok) else np.nan
        invalid[name] = float(ok["invalid_spans"].mean()) if len(ok) else np.nan
    return {"entity_f1": f1, "invalid_spans_per_item": invalid}
