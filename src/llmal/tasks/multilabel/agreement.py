"""The agreement unit of task multilabel: one unit per (item, label) decision, and per-label
columns per annotator.

llmal.results.agreement builds its table on the units: item i becomes "i#<label>" for every
label, with gold and answers 1 (present) or 0 (absent), so accuracy, macro-F1 and Cohen's κ of
the base table are over label decisions (an item's cost sits on its first unit: a request or a
human item is paid once). The columns added per annotator, against gold over the items of
`splits` both have: `kappa_<label>` (Cohen's κ), `alpha_<label>` (Krippendorff's α, nominal, by
the `krippendorff` package) and `alpha_masi` (Krippendorff's α over whole label sets with the
MASI distance, Passonneau 2006). The summary (the agreement summary's `task` entry) adds, among the dataset's human coders (ann_*
columns), Fleiss' κ and Krippendorff's α per label and α-MASI over label sets.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import annotator_columns, make_annotations
from llmal.tasks.base import AgreementUnit
from llmal.tasks.multilabel.labels import to_indicator

DECISIONS = ["absent", "present"]


def masi_distance(a: int, b: int) -> float:
    """1 - Jaccard × monotonicity of two label sets (as integers); two empty sets agree."""
    if a == b:
        return 0.0
    inter, union = bin(a & b).count("1"), bin(a | b).count("1")
    m = 2 / 3 if (a & b) in (a, b) else (1 / 3 if inter else 0.0)
    return 1.0 - (inter / union) * m


def alpha(units: Sequence[Sequence[Any]], distance: Callable[[Any, Any], float]) -> float:
    """Krippendorff's α of the pairable values (units with two or more values) under
    `distance`: 1 - D_o / D_e (Krippendorff 2011, "Computing Krippendorff's alpha-reliability")."""
    units = [list(u) for u in units if len(u) >= 2]
    values = [v for u in units for v in u]
    n = len(values)
    if n < 2:
        return float("nan")
    d_o = sum(sum(distance(a, b) for i, a in enumerate(u) for j, b in enumerate(u) if i != j) / (len(u) - 1)
              for u in units) / n
    counts = pd.Series(values).value_counts()
    vals, c = counts.index.tolist(), counts.to_numpy(dtype=float)
    d_e = sum(c[i] * c[j] * distance(vals[i], vals[j]) for i in range(len(vals)) for j in range(len(vals))
              if i != j) / (n * (n - 1))
    return float("nan") if d_e == 0 else float(1 - d_o / d_e)


def krippendorff_nominal(data: np.ndarray) -> float:
    """The `krippendorff` package's nominal α of (raters, units) data (NaN = missing)."""
    import krippendorff   # the package the issue names; imported where it is used

    usable = (~np.isnan(data)).sum(axis=0) >= 2
    if usable.sum() == 0 or np.unique(data[:, usable][~np.isnan(data[:, usable])]).size < 2:
        return float("nan")
    return float(krippendorff.alpha(reliability_data=data[:, usable], level_of_measurement="nominal"))


def fleiss_binary(y: np.ndarray, given: np.ndarray) -> float:
    """Fleiss' κ of one label among raters (items every rater labelled): y, given (n, raters)."""
    full = given.all(axis=1)
    if full.sum() == 0 or given.shape[1] < 2:
        return float("nan")
    y = y[full].astype(float)
    m = y.shape[1]
    pos = y.sum(axis=1)
    counts = np.stack([m - pos, pos], axis=1)
    p_j = counts.sum(axis=0) / counts.sum()
    p_i = ((counts ** 2).sum(axis=1) - m) / (m * (m - 1))
    p_e = (p_j ** 2).sum()
    return float("nan") if p_e == 1 else float((p_i.mean() - p_e) / (1 - p_e))


def cohen_binary(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0 or (np.unique(a).size < 2 and np.unique(b).size < 2 and (a == b).all()):
        return float("nan") if len(a) == 0 else 1.0
    return float(cohen_kappa_score(a, b, labels=[0, 1]))


def on_gold_set(t: pd.DataFrame) -> np.ndarray:
    """Rows of a learned mixture's gold set (answers `gold_set`): it saw their gold labels, so
    agreement with gold leaves them out."""
    if "answers" not in t.columns:
        return np.zeros(len(t), dtype=bool)
    return t["answers"].astype(str).str.contains('"gold_set": true', regex=False).to_numpy()


def decision_units(annotations: Mapping[str, pd.DataFrame], items: pd.DataFrame, split: pd.DataFrame,
                   names: Sequence[str]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    n = len(names)
    ids = items["id"].astype(str).tolist()
    gold = items["gold"].to_numpy(dtype=np.int64)
    Y = to_indicator(np.maximum(gold, 0), n)
    unit_ids = [f"{i}#{name}" for i in ids for name in names]
    unit_gold = np.where(np.repeat(gold < 0, n), -1, Y.reshape(-1))
    split_of = dict(zip(split["id"].astype(str), split["split"].astype(str)))
    u_items = pd.DataFrame({"id": unit_ids, "gold": unit_gold, "text": "", "topic": "", "source": ""})
    u_split = pd.DataFrame({"id": unit_ids, "split": [split_of[i] for i in ids for _ in names]})
    tables = {}
    for name, t in annotations.items():
        ok = (t["status"] == "ok").to_numpy()
        rows = to_indicator(t["label"].fillna(0).to_numpy(dtype=np.int64), n)
        tables[name] = make_annotations({
            "id": [f"{i}#{lab}" for i in t["id"].astype(str) for lab in names],
            "label": pd.Series(rows.reshape(-1), dtype="Int64").mask(~np.repeat(ok, n)),
            "status": np.repeat(t["status"].astype(str).to_numpy(), n),
            "model": np.repeat(t["model"].astype(str).to_numpy(), n),
            "cost_usd": np.stack([t["cost_usd"].to_numpy(float)] + [np.zeros(len(t))] * (n - 1), axis=1).reshape(-1),
            "request_id": np.repeat(t["request_id"].astype(str).to_numpy(), n),
            # a learned mixture's gold-set items stay marked on each of their units
            "answers": np.repeat(np.where(on_gold_set(t), '{"gold_set": true}', "{}"), n),
        }) if len(t) else make_annotations({"id": []})
    return tables, u_items, u_split


def annotator_columns_vs_gold(annotations: Mapping[str, pd.DataFrame], items: pd.DataFrame, split: pd.DataFrame,
                              names: Sequence[str], splits: Sequence[str]) -> dict[str, dict[str, float]]:
    visible = set(split.loc[split["split"].isin(list(splits)), "id"].astype(str))
    gold = items.assign(id=items["id"].astype(str)).set_index("id")["gold"]
    cols: dict[str, dict[str, float]] = {f"{m}_{lab}": {} for lab in names for m in ("kappa", "alpha")}
    cols["alpha_masi"] = {}
    for ann, t in annotations.items():
        ok = t[(t["status"] == "ok") & t["id"].astype(str).isin(visible) & ~on_gold_set(t)]
        g = gold.reindex(ok["id"].astype(str)).to_numpy(dtype=np.int64)
        keep = g >= 0
        a, g = ok["label"].to_numpy(dtype=np.int64)[keep], g[keep]
        A, G = to_indicator(a, len(names)), to_indicator(g, len(names))
        for k, lab in enumerate(names):
            cols[f"kappa_{lab}"][ann] = cohen_binary(G[:, k], A[:, k])
            cols[f"alpha_{lab}"][ann] = krippendorff_nominal(np.stack([G[:, k], A[:, k]]).astype(float))
        cols["alpha_masi"][ann] = alpha([(int(x), int(y)) for x, y in zip(g, a)], masi_distance)
    return cols


def coder_summary(items: pd.DataFrame, split: pd.DataFrame, names: Sequence[str],
                  splits: Sequence[str]) -> dict[str, Any]:
    """Among the dataset's human coders (ann_* columns) over the items of `splits`."""
    cols = annotator_columns(items)
    visible = set(split.loc[split["split"].isin(list(splits)), "id"].astype(str))
    sub = items[items["id"].astype(str).isin(visible)]
    out: dict[str, Any] = {"coders": [c.removeprefix("ann_") for c in cols]}
    if len(cols) < 2:
        return out
    given = sub[cols].notna().to_numpy()
    sets = sub[cols].fillna(0).to_numpy(dtype=np.int64)
    for k, lab in enumerate(names):
        y = (sets >> k) & 1
        out[f"fleiss_kappa_{lab}"] = fleiss_binary(y, given)
        out[f"alpha_{lab}"] = krippendorff_nominal(np.where(given, y, np.nan).T.astype(float))
    out["alpha_masi"] = alpha([[int(v) for v, g in zip(row, gv) if g] for row, gv in zip(sets, given)],
                              masi_distance)
    return out


def multilabel_agreement_unit(annotations: Mapping[str, pd.DataFrame], items: pd.DataFrame, split: pd.DataFrame,
                              names: Sequence[str], *, splits: Sequence[str]) -> AgreementUnit:
    tables, u_items, u_split = decision_units(annotations, items, split, names)
    return AgreementUnit(tables, u_items, u_split, DECISIONS, unit="label decisions",
                         columns=annotator_columns_vs_gold(annotations, items, split, names, splits),
                         summary=coder_summary(items, split, names, splits))
