"""Evaluation against human gold: F1, per-class precision/recall, FP/FN, soft-label metrics."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def classification_metrics(gold: np.ndarray, probs: np.ndarray, label_names: Sequence[str],
                           positive: int | None) -> dict[str, float]:
    """f1_macro, accuracy, precision_/recall_/f1_<label> for every label, and with a `positive`
    class index tp/fp/fn/tn against it; positive=None (no positive class, any number of
    classes) leaves the positive-class counts out."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    gold = np.asarray(gold, dtype=np.int64)
    pred = probs.argmax(axis=1)
    labels = list(range(len(label_names)))
    p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    out: dict[str, float] = {
        "f1_macro": float(np.mean(f)),
        "accuracy": float(accuracy_score(gold, pred)),
    }
    for k, name in enumerate(label_names):
        out[f"precision_{name}"] = float(p[k])
        out[f"recall_{name}"] = float(r[k])
        out[f"f1_{name}"] = float(f[k])
    if positive is None:
        return out
    is_pos, said_pos = gold == positive, pred == positive
    out.update(tp=int(np.sum(is_pos & said_pos)), fp=int(np.sum(~is_pos & said_pos)),
               fn=int(np.sum(is_pos & ~said_pos)), tn=int(np.sum(~is_pos & ~said_pos)))
    return out


def soft_label_metrics(human: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> dict[str, float]:
    """Cross-entropy and Brier score against the human label distribution.

    `human` is an (n, n_classes) matrix of annotator vote counts; items nobody labelled
    (all-zero rows) are left out. NaN when no item has votes.
    """
    votes = human.sum(axis=1)
    keep = votes > 0
    if not keep.any():
        return {"soft_ce": float("nan"), "soft_brier": float("nan")}
    target = human[keep] / votes[keep, None]
    p = np.clip(probs[keep], eps, 1.0)
    return {"soft_ce": float(np.mean(-(target * np.log(p)).sum(axis=1))),
            "soft_brier": float(np.mean(((probs[keep] - target) ** 2).sum(axis=1)))}


def vote_counts(annotator_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n_annotators) labels -> (n, n_classes) vote counts; any value that is not a class
    index (NaN, or a NO_LABEL of -1) is no vote."""
    counts = np.zeros((annotator_labels.shape[0], n_classes))
    for k in range(n_classes):
        counts[:, k] = np.sum(annotator_labels == k, axis=1)
    return counts
