"""A mixture of label-set annotators, aggregated per label:
- `majority`: a label is in the set when more than half of the members who answered give it (a
  tie leaves it out; with `on_tie: invalid` an item with a tied label is status invalid);
- `mean`: when the mean of the members' probabilities of the label exceeds 0.5; a member's
  probability is P(yes) from its logprobs where its row has them (probs choices,
  llmal.tasks.multilabel.llm), else its 0/1 answer;
- `dawid_skene`: per label, the binary Dawid–Skene model (each member's sensitivity and
  specificity and the label's prevalence by EM from the per-label majority, at most `max_iter`
  iterations, stopping when no posterior moves more than `tol`) over the members' answers; the
  label is in the set when its posterior exceeds 0.5.
An item fewer than `min_votes` members answered is status failed. The row's probs hold each
label's aggregated probability ({"labels": {label: p}}); its cost is the members' costs together.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import make_annotations
from llmal.tasks.multilabel.labels import from_indicator, names_of, to_indicator
from llmal.tasks.multilabel.llm import label_probability

METHODS = ("majority", "mean", "dawid_skene")


def member_answers(tables: Mapping[str, pd.DataFrame], ids: Sequence[str], names: Sequence[str],
                   with_probs: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(answers (members, items, labels) as 0/1 or probabilities, answered (members, items),
    cost per item)."""
    pos = {i: k for k, i in enumerate(ids)}
    n = len(names)
    answers = np.zeros((len(tables), len(ids), n))
    answered = np.zeros((len(tables), len(ids)), dtype=bool)
    cost = np.zeros(len(ids))
    for m, t in enumerate(tables.values()):
        rows = t["id"].astype(str).map(pos).to_numpy()
        np.add.at(cost, rows, t["cost_usd"].to_numpy(float))
        ok = (t["status"] == "ok").to_numpy()
        given = to_indicator(t.loc[ok, "label"].to_numpy(dtype=np.int64), n).astype(float)
        if with_probs and "probs" in t.columns:
            for r, cell in enumerate(t.loc[ok, "probs"].astype(str)):
                for k, p in ((names.index(a), p) for a, p in label_probability(cell, names).items()):
                    given[r, k] = p
        answers[m, rows[ok]] = given
        answered[m, rows[ok]] = True
    return answers, answered, cost


def dawid_skene_binary(votes: np.ndarray, answered: np.ndarray, iterations: int = 100,
                       tol: float = 1e-6) -> np.ndarray:
    """Posterior P(label present) per item of one label: votes, answered (members, items)."""
    n_ans = answered.sum(axis=0)
    post = np.where(n_ans > 0, (votes * answered).sum(axis=0) / np.maximum(n_ans, 1), 0.5)
    eps = 1e-6
    for _ in range(iterations):
        prior = np.clip(post.mean(), eps, 1 - eps)
        pos = (answered * post).sum(axis=1)
        neg = (answered * (1 - post)).sum(axis=1)
        sens = np.clip(((votes * answered) * post).sum(axis=1) / np.maximum(pos, eps), eps, 1 - eps)
        spec = np.clip((((1 - votes) * answered) * (1 - post)).sum(axis=1) / np.maximum(neg, eps), eps, 1 - eps)
        log1 = np.log(prior) + (answered * (votes * np.log(sens)[:, None]
                                           + (1 - votes) * np.log(1 - sens)[:, None])).sum(axis=0)
        log0 = np.log(1 - prior) + (answered * ((1 - votes) * np.log(spec)[:, None]
                                               + votes * np.log(1 - spec)[:, None])).sum(axis=0)
        new = 1.0 / (1.0 + np.exp(log0 - log1))
        if np.abs(new - post).max(initial=0.0) <= tol:
            post = new
            break
        post = new
    return post


def aggregate_per_label(tables: Mapping[str, pd.DataFrame], spec: Mapping[str, Any],
                        names: Sequence[str]) -> pd.DataFrame:
    method = str(spec.get("method", "majority"))
    if method not in METHODS:
        raise ValueError(f"mixture method {method!r}: task multilabel aggregates per label by {list(METHODS)}")
    names = list(names)
    ids = list(dict.fromkeys(i for t in tables.values() for i in t["id"].astype(str)))
    answers, answered, cost = member_answers(tables, ids, names, with_probs=method == "mean")
    n_answered = answered.sum(axis=0)
    share = (answers * answered[:, :, None]).sum(axis=0) / np.maximum(n_answered, 1)[:, None]
    if method == "dawid_skene":
        share = np.stack([dawid_skene_binary(answers[:, :, k], answered, int(spec.get("max_iter", 100)),
                                             float(spec.get("tol", 1e-6))) for k in range(len(names))], axis=1)
    chosen = share > 0.5
    status = np.where(n_answered >= max(int(spec.get("min_votes", 1)), 1), "ok", "failed")
    if method == "majority" and spec.get("on_tie") == "invalid":
        status = np.where((status == "ok") & np.isclose(share, 0.5).any(axis=1), "invalid", status)
    labels = pd.Series(from_indicator(chosen), dtype="Int64").mask(status != "ok")
    return make_annotations({
        "id": ids, "label": labels, "status": status,
        "answers": ["{}" if pd.isna(v) else json.dumps({"labels": names_of(int(v), names)}) for v in labels],
        "probs": [json.dumps({"labels": dict(zip(names, map(float, s)))}) for s in share],
        "cost_usd": cost, "model": f"mixture:{method}({','.join(tables)})",
    })
