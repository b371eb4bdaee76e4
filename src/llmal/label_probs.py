"""The `probs` column of an annotation table: what an annotator said about each label's chance.

A cell is a JSON object with any of these keys ("{}" when nothing is known):
  choices     question -> choice -> probability (an LLM answer's token logprobs, first sample)
  label       label name -> probability: the item's label distribution (from `choices` through
              the template's label rule, or a precomputed annotator's recorded probabilities)
  votes       label name -> share of the samples that gave that label (`samples: N`)
  n_samples   samples asked; n_valid: samples that gave a label
  agreement   share of the valid samples that agree with the majority label (self-consistency)

Readers here turn cells into (n, K) arrays aligned on label names; a cell without the key
gives a NaN row.
"""
from __future__ import annotations

import itertools
import json
from typing import Any, Callable, Mapping, Sequence

import numpy as np


def read_cell(cell: Any) -> dict[str, Any]:
    """A probs cell as a dict ({} for empty, missing or malformed cells)."""
    if isinstance(cell, dict):
        return cell
    if not isinstance(cell, str) or not cell.strip():
        return {}
    try:
        out = json.loads(cell)
    except json.JSONDecodeError:
        return {}
    return out if isinstance(out, dict) else {}


def distribution(mapping: Any, label_names: Sequence[str]) -> np.ndarray | None:
    """label name -> probability as a (K,) vector summing to 1 (None when absent or all 0)."""
    if not isinstance(mapping, Mapping):
        return None
    try:
        vec = np.array([float(mapping.get(name, 0.0) or 0.0) for name in label_names])
    except (TypeError, ValueError):
        return None
    if not np.isfinite(vec).all() or (vec < 0).any() or vec.sum() <= 0:
        return None
    return vec / vec.sum()


def label_matrix(cells: Sequence[Any], label_names: Sequence[str], key: str = "label") -> np.ndarray:
    """(n, K) distributions under `key` ("label" or "votes") of the cells; NaN rows where absent."""
    out = np.full((len(cells), len(label_names)), np.nan)
    for i, cell in enumerate(cells):
        vec = distribution(read_cell(cell).get(key), label_names)
        if vec is not None:
            out[i] = vec
    return out


def as_mapping(vec: np.ndarray, label_names: Sequence[str], digits: int = 6) -> dict[str, float]:
    return {name: round(float(p), digits) for name, p in zip(label_names, vec)}


def label_distribution(choice_probs: Mapping[str, Mapping[str, float]], answers: Mapping[str, str],
                       questions: Sequence[Any], label_of: Callable[[Mapping[str, str]], int | None],
                       label_names: Sequence[str]) -> dict[str, float] | None:
    """The label distribution implied by per-question choice probabilities: every combination of
    answers, with the product of their probabilities (questions treated as independent; one
    without probabilities keeps its given answer), mapped through the template's label rule.
    Combinations that map to no label (e.g. "unsure") drop out and the rest is renormalised."""
    options: list[list[tuple[str, float]]] = []
    for q in questions:
        probs = choice_probs.get(q.name)
        if probs:
            options.append([(c, float(p)) for c, p in probs.items() if p > 0])
        elif q.name in answers:
            options.append([(answers[q.name], 1.0)])
        else:
            return None
    mass = np.zeros(len(label_names))
    for combo in itertools.product(*options):
        label = label_of({q.name: c for q, (c, _) in zip(questions, combo)})
        if label is not None:
            mass[label] += float(np.prod([p for _, p in combo]))
    if mass.sum() <= 0:
        return None
    return as_mapping(mass / mass.sum(), label_names)


def sample_summary(labels: Sequence[int | None], label_names: Sequence[str]) -> dict[str, Any]:
    """votes, n_samples, n_valid and agreement of N sampled labels (None: a sample without one)."""
    given = [int(x) for x in labels if x is not None]
    counts = np.bincount(np.asarray(given, dtype=np.int64), minlength=len(label_names)) if given \
        else np.zeros(len(label_names))
    out: dict[str, Any] = {"n_samples": len(labels), "n_valid": len(given)}
    if given:
        out["votes"] = as_mapping(counts / counts.sum(), label_names)
        out["agreement"] = round(float(counts.max() / counts.sum()), 6)
    return out
