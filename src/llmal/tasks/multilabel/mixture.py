"""A mixture of label-set annotators, aggregated per label:
- `majority`: a label is in the set when more than half of the members who answered give it (a
  tie leaves it out; with `on_tie: invalid` an item with a tied label is status invalid);
- `mean`: when the mean of the members' probabilities of the label exceeds 0.5; a member's
  probability is P(yes) from its logprobs where its row has them (probs choices,
  llmal.tasks.multilabel.llm), else its 0/1 answer;
- `dawid_skene`: per label, the binary Dawid–Skene model (each member's sensitivity and
  specificity and the label's prevalence by EM from the per-label majority, at most `max_iter`
  iterations, stopping when no posterior moves more than `tol`) over the members' answers; the
  label is in the set when its posterior exceeds 0.5;
- `learned`: per label, a logistic regression (the classification task's learned mixture, S1's
  MoLAM, one stacked model per label) over each member's probability of the label (as for
  `mean`) and whether it answered, fitted on the gold label sets of `gold_size` dev items drawn
  with `gold_seed` (the same draw the AL run buys through its ledger; never a test item), `C`
  its inverse regularisation; a label the gold set shows only present or only absent gets the
  members' mean. The label is in the set when its fitted probability exceeds 0.5. Gold-set items
  are marked (`gold_set` in answers) so that agreement leaves them out.
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

METHODS = ("majority", "mean", "dawid_skene", "learned")
def learned_per_label(answers: np.ndarray, answered: np.ndarray, ids: Sequence[str],
                      gold: Mapping[str, int], spec: Mapping[str, Any], n_labels: int) -> np.ndarray:
    """(items, labels) probabilities of one logistic regression per label, each over the
    members' answers to that label and whether they answered, fitted on the gold items some
    member answered; the members' mean where a label's gold holds one value only."""
    from sklearn.linear_model import LogisticRegression

    n_ans = answered.sum(axis=0)
    mean = (answers * answered[:, :, None]).sum(axis=0) / np.maximum(n_ans, 1)[:, None]
    pos = {i: n for n, i in enumerate(ids)}
    rows = [pos[i] for i in gold if i in pos and n_ans[pos[i]] > 0]
    y = to_indicator([int(gold[ids[r]]) for r in rows], n_labels) if rows else np.zeros((0, n_labels))
    flags = answered.T.astype(float)                            # (items, members)
    out = mean.copy()
    for k in range(n_labels):
        if np.unique(y[:, k]).size < 2:
            continue
        X = np.concatenate([(answers[:, :, k] * answered).T, flags], axis=1)
        model = LogisticRegression(C=float(spec.get("C", 1.0)), max_iter=2000)
        model.fit(X[rows], y[:, k])
        out[:, k] = model.predict_proba(X)[:, 1]
    return out


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
                        names: Sequence[str], gold: Mapping[str, int] | None = None) -> pd.DataFrame:
    """`gold`: id -> gold label set (as an integer) of a `learned` mixture's gold set."""
    method = str(spec.get("method", "majority"))
    if method not in METHODS:
        raise ValueError(f"mixture method {method!r}: task multilabel aggregates per label by {list(METHODS)}")
    names = list(names)
    ids = list(dict.fromkeys(i for t in tables.values() for i in t["id"].astype(str)))
    answers, answered, cost = member_answers(tables, ids, names, with_probs=method in ("mean", "learned"))
    n_answered = answered.sum(axis=0)
    share = (answers * answered[:, :, None]).sum(axis=0) / np.maximum(n_answered, 1)[:, None]
    if method == "dawid_skene":
        share = np.stack([dawid_skene_binary(answers[:, :, k], answered, int(spec.get("max_iter", 100)),
                                             float(spec.get("tol", 1e-6))) for k in range(len(names))], axis=1)
    if method == "learned":
        if gold is None:
            raise ValueError("mixture method learned needs the gold labels of its gold set")
        share = learned_per_label(answers, answered, ids, gold, spec, len(names))
    chosen = share > 0.5
    gold_set = set(gold or {})
    status = np.where(n_answered >= max(int(spec.get("min_votes", 1)), 1), "ok", "failed")
    if method == "majority" and spec.get("on_tie") == "invalid":
        status = np.where((status == "ok") & np.isclose(share, 0.5).any(axis=1), "invalid", status)
    labels = pd.Series(from_indicator(chosen), dtype="Int64").mask(status != "ok")
    return make_annotations({
        "id": ids, "label": labels, "status": status,
        "answers": [json.dumps({**({} if pd.isna(v) else {"labels": names_of(int(v), names)}),
                                **({"gold_set": True} if i in gold_set else {})})
                    for i, v in zip(ids, labels)],
        "probs": [json.dumps({"labels": dict(zip(names, map(float, s)))}) for s in share],
        "cost_usd": cost, "model": f"mixture:{method}({','.join(tables)})",
    })
