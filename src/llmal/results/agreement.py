"""Annotator agreement (S2) as data: how well each annotator matches gold, the others and itself.

Per annotator table, on the pool and dev items it was asked about (test items never count):
agreement with gold (accuracy, macro-F1, Cohen's kappa) over all items with a known gold label,
and again on the dev split alone, which stands for the small gold set S2 picks its LLM annotator
with; malformed (invalid) and failed rates; coverage; cost per item and a cost-saving estimate
against a reference human annotator over the whole pool; self-consistency of annotators declared
re-annotations of one another (`replicate_of`). Across annotators: Fleiss' kappa on the items all
non-mixture annotators labelled, and a matrix of pairwise Cohen's kappa.

Accuracy, F1 and kappa are computed on the labels an annotator gave (status ok); items it could
not label are counted by the malformed and failed rates instead.

The task decides what one compared unit is (`Task.agreement_unit`: classification compares its
items, ner one unit per token) and may add columns of its own; `task_agreement` runs the table
on those units. llmal.report renders and writes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.annotate.routing import routing_summary
from llmal.contracts import annotation_cost
from llmal.label_probs import read_cell
from llmal.llm.executors import LLM_KINDS
from llmal.tasks.base import Task

NO_LABEL = -1


# --------------------------------------------------------------------------------------------
# statistics


def cohen_kappa(a: np.ndarray, b: np.ndarray, n_classes: int | None = None) -> float:
    """Cohen's kappa of two label vectors (same length, integer labels); NaN when undefined
    (no items, or chance agreement 1 because both raters used one and the same label)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.shape != b.shape:
        raise ValueError(f"cohen_kappa: label vectors differ in length ({a.size} vs {b.size})")
    if a.size == 0:
        return float("nan")
    k = int(n_classes if n_classes is not None else max(a.max(), b.max()) + 1)
    confusion = np.zeros((k, k))
    np.add.at(confusion, (a, b), 1.0)
    n = confusion.sum()
    observed = np.trace(confusion) / n
    expected = float(confusion.sum(axis=1) @ confusion.sum(axis=0)) / n**2
    if np.isclose(expected, 1.0):
        return float("nan")
    return float((observed - expected) / (1.0 - expected))


KAPPA_Z = 1.959964  # 95% normal interval


def kappa_interval(a: np.ndarray, b: np.ndarray, n_classes: int, z: float = KAPPA_Z) -> tuple[float, float]:
    """An analytic 95% confidence interval of Cohen's kappa: kappa +- z * SE with the large-sample
    (non-null) standard error of Fleiss, Cohen & Everitt (1969); (NaN, NaN) when kappa is
    undefined. Clipped to [-1, 1]."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    kappa = cohen_kappa(a, b, n_classes)
    if a.size < 2 or np.isnan(kappa):
        return float("nan"), float("nan")
    probs = np.zeros((n_classes, n_classes))
    np.add.at(probs, (a, b), 1.0)
    probs /= a.size
    rows, cols = probs.sum(axis=1), probs.sum(axis=0)
    pe = float(rows @ cols)
    term_a = float((np.diag(probs) * (1 - (rows + cols) * (1 - kappa)) ** 2).sum())
    term_b = probs * (cols[:, None] + rows[None, :]) ** 2
    np.fill_diagonal(term_b, 0.0)
    term_b_sum = (1 - kappa) ** 2 * float(term_b.sum())
    term_c = (kappa - pe * (1 - kappa)) ** 2
    var = max((term_a + term_b_sum - term_c) / (1 - pe) ** 2 / a.size, 0.0)
    half = z * float(np.sqrt(var))
    return max(-1.0, kappa - half), min(1.0, kappa + half)


def rating_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(items, raters) labels -> (items, n_classes) counts of the raters giving each label
    (NO_LABEL counts for none)."""
    counts = np.zeros((labels.shape[0], n_classes))
    for k in range(n_classes):
        counts[:, k] = np.sum(labels == k, axis=1)
    return counts


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from an (items, categories) matrix of rating counts, the same number of
    raters (at least 2) per item; NaN when there are no items or chance agreement is 1."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] == 0:
        return float("nan")
    raters = counts.sum(axis=1)
    if not np.allclose(raters, raters[0]) or raters[0] < 2:
        raise ValueError("fleiss_kappa needs the same number (>= 2) of ratings for every item")
    r = raters[0]
    per_item = ((counts**2).sum(axis=1) - r) / (r * (r - 1))
    p_bar = per_item.mean()
    shares = counts.sum(axis=0) / (counts.shape[0] * r)
    p_e = float((shares**2).sum())
    if np.isclose(p_e, 1.0):
        return float("nan")
    return float((p_bar - p_e) / (1.0 - p_e))


def f1_macro(gold: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over all n_classes labels (a class absent from both counts as F1 0, as in
    llmal.tasks.classification.metrics); NaN for no items."""
    gold, pred = np.asarray(gold, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    if gold.size == 0:
        return float("nan")
    scores = []
    for c in range(n_classes):
        tp = float(np.sum((gold == c) & (pred == c)))
        denom = float(np.sum(gold == c) + np.sum(pred == c))
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def gold_scores(gold: np.ndarray, pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """n, accuracy, f1_macro, kappa and its 95% interval of labels `pred` against `gold`."""
    n = int(len(gold))
    low, high = kappa_interval(gold, pred, n_classes)
    return {"n": n, "accuracy": float(np.mean(gold == pred)) if n else float("nan"),
            "f1_macro": f1_macro(gold, pred, n_classes), "kappa": cohen_kappa(gold, pred, n_classes),
            "kappa_low": low, "kappa_high": high}


def all_agree_share(labels: np.ndarray) -> tuple[float, int]:
    """(share of rows where every column gives the same label, rows considered) over the rows
    where every column has a label (NO_LABEL elsewhere)."""
    full = (labels != NO_LABEL).all(axis=1)
    n = int(full.sum())
    if n == 0:
        return float("nan"), 0
    rows = labels[full]
    return float(np.mean((rows == rows[:, :1]).all(axis=1))), n


# --------------------------------------------------------------------------------------------
# the agreement table


@dataclass
class AgreementReport:
    table: pd.DataFrame                 # one row per annotator (columns: TABLE_COLUMNS)
    pairwise_kappa: pd.DataFrame        # annotator x annotator, Cohen's kappa on items both labelled
    pairwise_n: pd.DataFrame            # annotator x annotator, items both labelled
    summary: dict[str, Any] = field(default_factory=dict)  # Fleiss' kappa, reference, pool size, best


TABLE_COLUMNS = [
    "annotator", "kind", "model", "n", "n_ok", "coverage", "malformed_rate", "failed_rate",
    "n_gold", "accuracy", "f1_macro", "kappa", "dev_n", "dev_accuracy", "dev_f1_macro", "dev_kappa",
    "cost_usd", "cost_per_item", "pool_cost_usd", "cost_ratio", "saving_usd",
    "replicate_group", "self_consistency", "self_consistency_n",
    "kappa_low", "kappa_high", "dev_kappa_low", "dev_kappa_high", "n_trained_on",
]
DEFAULT_MIN_DEV_ITEMS = 30


def replicate_groups(annotators: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Annotators declared re-annotations of one another (`replicate_of`, followed to its root):
    root -> [root, replicates...] in config order, only groups of two or more."""
    def root(name: str) -> str:
        seen = {name}
        while annotators[name].get("replicate_of") in set(annotators) - seen:
            name = annotators[name]["replicate_of"]
            seen.add(name)
        return name

    groups: dict[str, list[str]] = {}
    for name in annotators:
        groups.setdefault(root(name), []).append(name)
    return {r: ([r] + [m for m in members if m != r]) for r, members in groups.items() if len(members) > 1}


def trained_on_gold(df: pd.DataFrame) -> np.ndarray:
    """Rows of a learned mixture's gold set (answers `gold_set`): it saw their gold labels, so
    agreement with gold leaves them out."""
    return df["answers"].astype(str).str.contains('"gold_set": true', regex=False).to_numpy()


def sample_consistency(df: pd.DataFrame) -> tuple[float, int, int]:
    """(mean agreement rate with the item's majority over its samples, items with at least two
    valid samples, samples per item) of an annotator asked `samples: N` times; (NaN, 0, 0) else."""
    if "probs" not in df.columns or not df["probs"].astype(str).str.contains('"agreement"').any():
        return float("nan"), 0, 0
    rates, sizes = [], []
    for cell in df["probs"]:
        c = read_cell(cell)
        if int(c.get("n_valid", 0) or 0) >= 2 and c.get("agreement") is not None:
            rates.append(float(c["agreement"]))
            sizes.append(int(c.get("n_samples", 0)))
    if not rates:
        return float("nan"), 0, 0
    return float(np.mean(rates)), len(rates), int(max(sizes))


def label_matrix(annotations: Mapping[str, pd.DataFrame], ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, asked): (n_items, n_annotators) label given (NO_LABEL unless status ok) and
    whether the annotator was asked about the item at all, aligned on `ids`."""
    index = pd.Index(list(ids))
    labels = np.full((len(index), len(annotations)), NO_LABEL, dtype=np.int64)
    asked = np.zeros((len(index), len(annotations)), dtype=bool)
    for j, df in enumerate(annotations.values()):
        rows = index.get_indexer(df["id"].astype(str))
        inside = rows >= 0
        asked[rows[inside], j] = True
        ok = inside & (df["status"].astype(str).to_numpy() == "ok")
        labels[rows[ok], j] = df["label"].to_numpy(dtype="float64", na_value=np.nan)[ok].astype(np.int64)
    return labels, asked


DEFAULT_SPLITS = ("pool", "dev")
KAPPA_NEAR_ZERO = 0.05  # |kappa with gold| below this: the annotator is about as good as chance


def is_real_rater(spec: Mapping[str, Any]) -> bool:
    """A rater of its own for Fleiss' kappa: an LLM, a precomputed annotator, a simulated one (the
    stand-in for an LLM in simulations; its errors are its own draws), or a human annotator tied
    to one column of the dataset. Not gold, not a majority of or sample from several people, not
    a mixture of other annotators."""
    kind = spec.get("kind")
    if kind in LLM_KINDS or kind in ("precomputed", "simulated"):
        return True
    return kind == "human" and bool(spec.get("column"))


def near_zero_kappa(table: pd.DataFrame, min_items: int = 20) -> list[str]:
    """Warnings for annotators whose kappa against gold is about 0 (chance level)."""
    out = []
    for row in table.itertuples(index=False):
        if row.n_gold >= min_items and not np.isnan(row.kappa) and abs(row.kappa) < KAPPA_NEAR_ZERO:
            out.append(f"annotator {row.annotator}: Cohen's κ against gold is {row.kappa:.3f} on "
                       f"{int(row.n_gold)} items, about chance level (a wrong label_map, a prompt "
                       "whose answers are not parsed as intended, or labels in another order?)")
    return out


def annotator_agreement(annotations: Mapping[str, pd.DataFrame], items: pd.DataFrame, split: pd.DataFrame,
                        annotators: Mapping[str, Mapping[str, Any]], label_names: Sequence[str],
                        reference: str | None = None,
                        splits: Sequence[str] = DEFAULT_SPLITS,
                        min_dev_items: int = DEFAULT_MIN_DEV_ITEMS) -> AgreementReport:
    """The agreement report of the annotation tables (annotator name -> table).

    annotators: the config's annotator specs (kind, replicate_of); reference: the human annotator
    whose cost per item the cost savings are measured against (None: no savings columns);
    splits: the splits whose items are compared (agreement.splits; test only when asked);
    min_dev_items: the dev gold items an annotator must have labelled to be selectable as
    best_by_dev_kappa (agreement.min_dev_items), so a small `limit` sample cannot win by luck.
    """
    k = len(label_names)
    names = list(annotations)
    split_of = dict(zip(split["id"].astype(str), split["split"].astype(str)))
    items = items.assign(id=items["id"].astype(str))
    visible = items[items["id"].map(split_of).isin(list(splits))]
    ids = visible["id"].tolist()
    gold = visible["gold"].to_numpy(dtype=np.int64)
    is_dev = visible["id"].map(split_of).eq("dev").to_numpy()
    pool_size = int(sum(1 for s in split_of.values() if s == "pool"))
    labels, asked = label_matrix(annotations, ids)

    rows = []
    for j, name in enumerate(names):
        df = annotations[name]
        df = df[df["id"].astype(str).isin(set(ids))]
        status = df["status"].astype(str)
        n, n_ok = len(df), int((status == "ok").sum())
        cost = annotation_cost(df)
        scored = (labels[:, j] != NO_LABEL) & (gold >= 0)
        trained = set(df.loc[trained_on_gold(df), "id"].astype(str))
        if trained:
            scored &= ~np.isin(np.asarray(ids, dtype=object), list(trained))
        every = gold_scores(gold[scored], labels[scored, j], k)
        dev = gold_scores(gold[scored & is_dev], labels[scored & is_dev, j], k)
        models = sorted({str(m) for m in df["model"].dropna() if str(m)})
        rows.append({
            "annotator": name, "kind": str((annotators.get(name) or {}).get("kind", "")),
            "model": ", ".join(models), "n": n, "n_ok": n_ok,
            "coverage": n_ok / len(ids) if ids else float("nan"),
            "malformed_rate": float((status == "invalid").mean()) if n else float("nan"),
            "failed_rate": float((status == "failed").mean()) if n else float("nan"),
            "n_gold": every["n"], "accuracy": every["accuracy"], "f1_macro": every["f1_macro"],
            "kappa": every["kappa"], "dev_n": dev["n"], "dev_accuracy": dev["accuracy"],
            "dev_f1_macro": dev["f1_macro"], "dev_kappa": dev["kappa"],
            "cost_usd": cost, "cost_per_item": cost / n if n else float("nan"),
            "kappa_low": every["kappa_low"], "kappa_high": every["kappa_high"],
            "dev_kappa_low": dev["kappa_low"], "dev_kappa_high": dev["kappa_high"],
            "n_trained_on": len(trained),
        })
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS[:18] + TABLE_COLUMNS[24:])
    table["pool_cost_usd"] = table["cost_per_item"] * pool_size
    ref_cost = float("nan")
    if reference is not None and reference in names:
        ref_cost = float(table.loc[table["annotator"] == reference, "cost_per_item"].iloc[0])
    table["cost_ratio"] = table["cost_per_item"] / ref_cost if ref_cost > 0 else float("nan")
    table["saving_usd"] = (ref_cost - table["cost_per_item"]) * pool_size

    table["replicate_group"] = ""
    table["self_consistency"] = float("nan")
    table["self_consistency_n"] = 0
    for root, group in replicate_groups({n: dict(annotators.get(n) or {}) for n in names}).items():
        cols = [names.index(g) for g in group]
        share, n_items = all_agree_share(labels[:, cols])
        mask = table["annotator"].isin(group)
        table.loc[mask, "replicate_group"] = root
        table.loc[mask, "self_consistency"] = share
        table.loc[mask, "self_consistency_n"] = n_items
    for j, name in enumerate(names):     # `samples: N`: agreement of an item's samples
        share, n_items, n_samples = sample_consistency(annotations[name])
        if n_items and not table.loc[j, "replicate_group"]:
            table.loc[j, ["replicate_group", "self_consistency", "self_consistency_n"]] = \
                [f"{n_samples} samples", share, n_items]

    kappa = pd.DataFrame(np.nan, index=names, columns=names)
    overlap = pd.DataFrame(0, index=names, columns=names)
    for a in range(len(names)):
        for b in range(len(names)):
            both = (labels[:, a] != NO_LABEL) & (labels[:, b] != NO_LABEL)
            overlap.iloc[a, b] = int(both.sum())
            kappa.iloc[a, b] = cohen_kappa(labels[both, a], labels[both, b], k)

    raters = [j for j, n in enumerate(names) if is_real_rater(annotators.get(n) or {})]
    summary: dict[str, Any] = {"fleiss_kappa": float("nan"), "fleiss_items": 0,
                               "fleiss_annotators": [names[j] for j in raters]}
    if len(raters) >= 2:
        sub = labels[:, raters]
        full = (sub != NO_LABEL).all(axis=1)
        summary.update(fleiss_kappa=fleiss_kappa(rating_counts(sub[full], k)), fleiss_items=int(full.sum()))
    candidates = table[(table["kind"] != "human") & table["dev_kappa"].notna()
                       & (table["dev_n"] >= int(min_dev_items))]
    summary.update(
        reference=reference if reference in names else None, reference_cost_per_item=ref_cost,
        pool_size=pool_size, visible_items=len(ids), gold_items=int((gold >= 0).sum()),
        dev_items=int(is_dev.sum()),
        dev_gold_items=int((is_dev & (gold >= 0)).sum()),
        best_by_dev_kappa=(str(candidates.loc[candidates["dev_kappa"].idxmax(), "annotator"])
                           if len(candidates) else None),
        asked_items={n: int(asked[:, j].sum()) for j, n in enumerate(names)},
        splits=list(splits), warnings=near_zero_kappa(table), min_dev_items=int(min_dev_items),
        too_few_dev_items=[str(a) for a in table.loc[(table["kind"] != "human") & table["dev_kappa"].notna()
                                                     & (table["dev_n"] < int(min_dev_items)), "annotator"]],
        kappa_interval="analytic 95% (Fleiss, Cohen & Everitt 1969 standard error)")
    table = table[TABLE_COLUMNS]
    routed = {n: routing_summary(annotations[n][annotations[n]["id"].astype(str).isin(set(ids))]) for n in names}
    routed = {n: r for n, r in routed.items() if r}
    if routed:   # routed annotators: the share of their items that went to the fallback
        table = table.assign(routed_share=[routed[n]["routed_share"] if n in routed else np.nan for n in names])
        summary["routed"] = routed
    return AgreementReport(table, kappa, overlap, summary)


def task_agreement(task: Task, annotations: Mapping[str, pd.DataFrame], items: pd.DataFrame,
                   split: pd.DataFrame, config: Mapping[str, Any], *,
                   reference: str | None) -> AgreementReport:
    """The agreement report of the annotation tables (annotator name -> table) over the units
    the task compares (`Task.agreement_unit`), with the columns the task adds.

    config: its `annotators`, `labels` and `agreement` (splits, min_dev_items) sections;
    reference: the human annotator savings are measured against (llmal.config.reference_annotator).
    """
    settings = config.get("agreement") or {}
    splits = settings.get("splits") or DEFAULT_SPLITS
    unit = task.agreement_unit(annotations, items, split, config["labels"], splits=splits)
    report = annotator_agreement(unit.annotations, unit.items, unit.split, config["annotators"],
                                 unit.label_names, reference=reference, splits=splits,
                                 min_dev_items=int(settings.get("min_dev_items", DEFAULT_MIN_DEV_ITEMS)))
    for column, values in unit.columns.items():
        report.table[column] = [values.get(name, np.nan) for name in report.table["annotator"]]
    if unit.unit is not None:
        report.summary["unit"] = unit.unit
    if unit.summary:   # statistics the task adds that are not per annotator
        report.summary["task"] = dict(unit.summary)
    return report
