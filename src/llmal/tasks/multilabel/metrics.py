"""Evaluation of label sets against human gold, and the rows of predictions.parquet.

rounds.csv metrics (scikit-learn's definitions, zero_division=0): f1_micro, precision_micro,
recall_micro, f1_macro (mean over every label), hamming_loss, subset_accuracy, accuracy (= 1 -
hamming_loss, the share of right label decisions), per label precision_/recall_/f1_/fp_/fn_
<label>, fp and fn over all labels, and soft_ce/soft_brier: the per-label Bernoulli
cross-entropy and Brier score against the share of human coders who gave the label (items no
coder labelled left out; NaN without coders).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

NONE = "none"   # the "label absent" class of the per-(item, label) prediction rows


def multilabel_metrics(Y: np.ndarray, P: np.ndarray, label_names: Sequence[str]) -> dict[str, float]:
    """Y, P: (n, n_labels) 0/1 gold and predicted rows."""
    from sklearn.metrics import f1_score, hamming_loss, precision_recall_fscore_support

    Y, P = np.asarray(Y, dtype=np.int64), np.asarray(P, dtype=np.int64)
    out: dict[str, float] = {}
    p, r, f, _ = precision_recall_fscore_support(Y, P, average="micro", zero_division=0)
    out.update(precision_micro=float(p), recall_micro=float(r), f1_micro=float(f))
    out["f1_macro"] = float(f1_score(Y, P, average="macro", zero_division=0))
    out["hamming_loss"] = float(hamming_loss(Y, P))
    out["accuracy"] = 1.0 - out["hamming_loss"]
    out["subset_accuracy"] = float(np.mean(np.all(Y == P, axis=1))) if len(Y) else float("nan")
    ps, rs, fs, _ = precision_recall_fscore_support(Y, P, average=None, zero_division=0,
                                                    labels=list(range(len(label_names))))
    fp = ((P == 1) & (Y == 0)).sum(axis=0)
    fn = ((P == 0) & (Y == 1)).sum(axis=0)
    for k, name in enumerate(label_names):
        out[f"precision_{name}"], out[f"recall_{name}"], out[f"f1_{name}"] = float(ps[k]), float(rs[k]), float(fs[k])
        out[f"fp_{name}"], out[f"fn_{name}"] = float(fp[k]), float(fn[k])
    out["fp"], out["fn"] = float(fp.sum()), float(fn.sum())
    return out


def soft_label_metrics(share: np.ndarray, coded: np.ndarray, probs: np.ndarray,
                       eps: float = 1e-7) -> dict[str, float]:
    """Per-label Bernoulli cross-entropy and Brier score of `probs` against the coders' share
    (n, n_labels), over the items with at least one coder (`coded`)."""
    if not coded.any():
        return {"soft_ce": float("nan"), "soft_brier": float("nan")}
    t, p = share[coded], np.clip(np.asarray(probs)[coded], eps, 1 - eps)
    ce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    return {"soft_ce": float(ce.mean()), "soft_brier": float(((p - t) ** 2).mean())}


def prediction_rows(ids: Sequence[str], topics: Sequence[str], Y: np.ndarray, P: np.ndarray,
                    probs: np.ndarray, label_names: Sequence[str]) -> pd.DataFrame:
    """predictions.parquet of a multi-label run: one row per (test item, label), id
    "<item>:<label>", `item` and `label` apart; gold/pred = the label's index when present
    (predicted), else len(label_names) (NONE), so the per-class FP/FN tables of the aggregate
    are per label; prob = the label's probability; topic = the item's topic."""
    n, k = np.shape(Y)
    none = len(label_names)
    idx = np.arange(k)[None, :].repeat(n, axis=0)
    frame = pd.DataFrame({
        "id": [f"{i}:{name}" for i in ids for name in label_names],
        "prob": np.asarray(probs, dtype=np.float64).reshape(-1),
        "pred": np.where(np.asarray(P) == 1, idx, none).reshape(-1),
        "gold": np.where(np.asarray(Y) == 1, idx, none).reshape(-1),
        "topic": np.repeat(np.asarray(topics, dtype=object), k),
        "item": np.repeat(np.asarray(ids, dtype=object), k),
        "label": np.tile(np.asarray(label_names, dtype=object), n),
    })
    return frame.astype({"pred": "int64", "gold": "int64", "topic": str, "item": str, "label": str})


def indicator_from_rows(rows: pd.DataFrame, label_names: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(items, gold rows, predicted rows) back from prediction_rows' table."""
    items = list(dict.fromkeys(rows["item"].astype(str)))
    pos = {i: n for n, i in enumerate(items)}
    col = {name: k for k, name in enumerate(label_names)}
    Y = np.zeros((len(items), len(label_names)), dtype=np.int8)
    P = np.zeros_like(Y)
    r = rows["item"].map(pos).to_numpy()
    c = rows["label"].map(col).to_numpy()
    Y[r, c] = (rows["gold"].to_numpy() == c)
    P[r, c] = (rows["pred"].to_numpy() == c)
    return items, Y, P


