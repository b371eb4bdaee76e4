"""A simulated annotator: class- and topic-conditional label noise over gold (or majority) labels,
and, with `confidence`, an LLM-like confidence in each answer that is lower on its errors.

Useful for controlled experiments: e.g. an LLM-like annotator that over-flags border-control
discourse as hostile (a topic-conditional false-positive rate) and misses some hostility.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import make_annotations
from llmal.tasks.classification.human import human_labels
from llmal.tasks.draws import uniform_per_item


def error_rates(items: pd.DataFrame, true: np.ndarray, spec: dict[str, Any],
                label_names: Sequence[str]) -> np.ndarray:
    rates = np.zeros(len(items))
    class_error = spec.get("error", {})
    topic_error = spec.get("topic_error", {})
    topics = items["topic"].astype(str).to_numpy() if "topic" in items else np.full(len(items), "")
    for k, name in enumerate(label_names):
        is_k = true == k
        rates[is_k] = float(class_error.get(name, 0.0))
        for topic, rate in topic_error.get(name, {}).items():
            rates[is_k & (topics == topic)] = float(rate)
    return rates


def annotate_simulated(items: pd.DataFrame, spec: dict[str, Any],
                       label_names: Sequence[str]) -> pd.DataFrame:
    seed = int(spec.get("seed", 0))
    true = human_labels(items, spec.get("of", "gold"), seed)
    ids = items["id"].astype(str).tolist()
    flip = uniform_per_item(ids, seed, "flip") < error_rates(items, true, spec, label_names)
    # a flipped label goes to one of the other classes, uniformly
    n_classes = len(label_names)
    shift = 1 + (uniform_per_item(ids, seed, "target") * (n_classes - 1)).astype(np.int64)
    labels = np.where(flip, (true + shift) % n_classes, true)
    invalid = uniform_per_item(ids, seed, "invalid") < float(spec.get("invalid_rate", 0.0))
    probs: Any = "{}"
    if spec.get("confidence") is not None:
        conf = simulated_confidence(ids, ~flip, float(spec["confidence"].get("signal", 2.0)), seed, n_classes)
        probs = [{} if bad else {"label": confidence_distribution(int(lab), c, label_names)}
                 for lab, c, bad in zip(labels, conf, invalid)]
    return make_annotations({
        "id": ids,
        "label": pd.Series(labels, dtype="Int64").mask(invalid),
        "status": np.where(invalid, "invalid", "ok"),
        "raw": np.where(invalid, "<simulated: no answer>", ""),
        "cost_usd": float(spec.get("cost_per_label", 0.0)),
        "model": "simulated",
        "probs": probs,
    })


def simulated_confidence(ids: Sequence[str], right: np.ndarray, signal: float, seed: int,
                         n_classes: int) -> np.ndarray:
    """An LLM-like confidence in each answer, informative but imperfect: 1/K + (1 - 1/K) x
    sigmoid(signal x (+1 right, -1 wrong) + logistic noise drawn per item from (seed, id)).
    Wrong answers get lower confidence on average; signal 0 makes it pure noise."""
    u = np.clip(uniform_per_item(list(ids), seed, "confidence"), 1e-9, 1 - 1e-9)
    z = signal * np.where(right, 1.0, -1.0) + np.log(u / (1 - u))
    return 1.0 / n_classes + (1.0 - 1.0 / n_classes) / (1.0 + np.exp(-z))


def confidence_distribution(label: int, conf: float, label_names: Sequence[str]) -> dict[str, float]:
    """The label distribution of an answer given with confidence `conf`: the rest of the mass
    shared evenly by the other labels."""
    rest = (1.0 - conf) / max(len(label_names) - 1, 1)
    return {name: round(float(conf if k == label else rest), 6) for k, name in enumerate(label_names)}
