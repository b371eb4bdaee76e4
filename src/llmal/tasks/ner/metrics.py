"""Entity-level evaluation of sequence labelling (task: ner).

Scores are seqeval's strict mode over IOB2 tags (an entity counts only when its boundaries and
type both match): precision, recall and F1 per declared type, micro over all entities, and
macro = the mean F1 over the types that occur in the gold test tags. Errors per type follow the
same strict matching, on entity rows: one row per distinct (sentence, start, end) that is a gold
or a predicted entity, with its gold and predicted type (or "O"). FN of a type = its gold
entities not predicted exactly (missed, cut at a wrong boundary, or given another type); FP =
predicted entities of that type that are not gold ones (spurious, wrong boundary, wrong type).
"""
from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
import pandas as pd

from llmal.tasks.ner.spans import tags_to_spans

NONE = "O"   # the "no entity" class of entity rows


def seqeval_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                   types: Sequence[str]) -> dict[str, float]:
    """rounds.csv metrics of one evaluation: f1_micro, precision_micro, recall_micro, f1_macro,
    precision_/recall_/f1_/tp_/fp_/fn_<type>, fp, fn (all types), accuracy (token level)."""
    from seqeval.metrics.v1 import precision_recall_fscore_support
    from seqeval.scheme import IOB2

    gold, pred = [list(g) for g in gold], [list(q) for q in pred]
    kw: dict[str, Any] = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    out: dict[str, float] = {}
    p, r, f, _ = precision_recall_fscore_support(gold, pred, average="micro", **kw)
    out.update(precision_micro=float(p), recall_micro=float(r), f1_micro=float(f))
    counts = type_counts(gold, pred, types)
    found = sorted({t for t in types if counts[t]["tp"] + counts[t]["fp"] + counts[t]["fn"] > 0})
    per = dict.fromkeys(types, (0.0, 0.0, 0.0))
    if found:   # seqeval orders its per-type arrays by sorted type name
        ps, rs, fs, _ = precision_recall_fscore_support(gold, pred, average=None, **kw)
        per.update({t: (float(a), float(b), float(c)) for t, a, b, c in zip(found, ps, rs, fs)})
    for t in types:
        out[f"precision_{t}"], out[f"recall_{t}"], out[f"f1_{t}"] = per[t]
        for k in ("tp", "fp", "fn"):
            out[f"{k}_{t}"] = float(counts[t][k])
    present = [t for t in types if counts[t]["tp"] + counts[t]["fn"] > 0]
    out["f1_macro"] = float(np.mean([per[t][2] for t in present])) if present else 0.0
    out["fp"] = float(sum(counts[t]["fp"] for t in types))
    out["fn"] = float(sum(counts[t]["fn"] for t in types))
    n_tokens = sum(len(g) for g in gold)
    out["accuracy"] = (sum(a == b for g, q in zip(gold, pred) for a, b in zip(g, q)) / n_tokens
                       if n_tokens else float("nan"))   # token accuracy
    return out


def type_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                types: Sequence[str]) -> dict[str, dict[str, int]]:
    """Strict TP, FP, FN per type over the entities of tags_to_spans."""
    out = {t: {"tp": 0, "fp": 0, "fn": 0} for t in types}
    for g, q in zip(gold, pred):
        gs, ps = set(tags_to_spans(g)), set(tags_to_spans(q))
        for s in gs & ps:
            out[s[2]]["tp"] += 1
        for s in ps - gs:
            out.setdefault(s[2], {"tp": 0, "fp": 0, "fn": 0})["fp"] += 1
        for s in gs - ps:
            out.setdefault(s[2], {"tp": 0, "fp": 0, "fn": 0})["fn"] += 1
    return out


def entity_rows(ids: Sequence[str], gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                types: Sequence[str]) -> pd.DataFrame:
    """predictions.parquet of an NER run: one row per gold or predicted entity (strict match),
    pred/gold = index into types + ["O"]; topic = the gold type (the predicted one for a
    spurious entity), so the errors-by-topic view is the errors by entity type; gold_tags and
    pred_tags hold the sentence's whole tag sequences (JSON) for rescoring with seqeval."""
    index = {t: k for k, t in enumerate(types)}
    none = len(types)
    rows: list[dict[str, Any]] = []
    for sid, g, p in zip(ids, gold, pred):
        gs = {(s, e): t for s, e, t in tags_to_spans(g)}
        ps = {(s, e): t for s, e, t in tags_to_spans(p)}
        if not gs and not ps:
            continue
        gj, pj = json.dumps(list(g)), json.dumps(list(p))
        for (s, e) in sorted(set(gs) | set(ps)):
            gt, pt = gs.get((s, e)), ps.get((s, e))
            rows.append({"id": f"{sid}:{s}-{e}", "pred": index.get(pt, none) if pt else none,
                         "gold": index.get(gt, none) if gt else none, "topic": gt or pt,
                         "prob": float("nan"), "sentence": sid, "start": s, "end": e,
                         "gold_tags": gj, "pred_tags": pj})
    cols = ["id", "prob", "pred", "gold", "topic", "sentence", "start", "end", "gold_tags", "pred_tags"]
    return pd.DataFrame(rows, columns=cols).astype({"pred": "int64", "gold": "int64", "start": "int64",
                                                    "end": "int64"})
