"""What every result table shares: run keys, the summary metric catalogue, aggregate settings, grouping.

The run keys, the summary metric catalogue, the aggregate settings of a config, and the grouping
and mean ± sd helpers (data only; formatting lives in llmal.report.tablefmt)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

import pandas as pd

from llmal.contracts import ContractError

KEYS = ["condition", "encoder", "seed"]
UNKNOWN_TOPIC = "(unknown)"


@dataclass(frozen=True)
class Metric:
    """A column of the summary table: how to name, format and rank it."""

    column: str
    label: str                 # may contain {pos}, the positive class name
    decimals: int | None       # None: money formatting (about three significant digits)
    better: str | None         # "max" | "min" | None (never bold)


SUMMARY_METRICS: tuple[Metric, ...] = (
    Metric("f1_macro", "F1 (macro)", 3, "max"),
    Metric("f1_pos", "F1 ({pos})", 3, "max"),
    Metric("precision_pos", "Precision ({pos})", 3, "max"),
    Metric("recall_pos", "Recall ({pos})", 3, "max"),
    Metric("fp", "FP", 1, "min"),
    Metric("fn", "FN", 1, "min"),
    Metric("n_labels", "Labels", 0, None),
    Metric("n_train", "Trained on", 0, None),
    Metric("cost_total", "Cost ($)", None, "min"),
    Metric("soft_ce", "Soft CE", 3, "min"),
)


# summary column -> flag column (llmal.results.confusion.degenerate_predictions) under which it is not ranked
MEANINGLESS_WHEN = {"fp": "never_positive", "fn": "never_negative"}


@dataclass(frozen=True)
class AggregateSettings:
    """The `aggregate` section of the config, with defaults filled in."""

    reference: str
    metric: str = "f1_macro"
    top_topics: int = 3
    condition_order: tuple[str, ...] = ()
    encoder_order: tuple[str, ...] = ()
    positive: str = ""
    demo: bool = False
    dataset: str = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any], finals: pd.DataFrame | None = None) -> "AggregateSettings":
        conditions = tuple((config.get("conditions") or {}).keys())
        encoders = tuple((config.get("encoders") or {}).keys())
        agg = config.get("aggregate") or {}
        reference = agg.get("reference")
        if reference is None:
            if conditions:
                reference = conditions[0]
            elif finals is not None and len(finals):
                reference = str(finals["condition"].iloc[0])
            else:
                reference = ""
        if conditions and reference not in conditions:
            raise ContractError(f"config key aggregate.reference: {reference!r} is not a condition "
                                f"(conditions: {list(conditions)})")
        top = agg.get("top_topics", 3)
        if not isinstance(top, int) or top < 1:
            raise ContractError(f"config key aggregate.top_topics: expected a positive integer, got {top!r}")
        dataset = config.get("dataset") or {}
        return cls(reference=str(reference), metric=str(agg.get("metric", "f1_macro")), top_topics=top,
                   condition_order=conditions, encoder_order=encoders,
                   positive=str((config.get("labels") or {}).get("positive", "")),
                   demo=dataset.get("kind") == "demo", dataset=str(dataset.get("name", "")))


def ordered_conditions(values: Iterable[str], settings: AggregateSettings) -> list[str]:
    return ordered(values, settings.condition_order)


def ordered(values: Iterable[str], preferred: Sequence[str]) -> list[str]:
    vals = list(dict.fromkeys(str(v) for v in values))
    known = [v for v in preferred if v in vals]
    return known + sorted(v for v in vals if v not in preferred)


def groups(df: pd.DataFrame, settings: AggregateSettings) -> Iterator[tuple[tuple[str, str], pd.DataFrame]]:
    """(condition, encoder), sub-frame in table order: encoder-major, then condition."""
    for enc in ordered(df["encoder"].unique(), settings.encoder_order):
        de = df[df["encoder"] == enc]
        for cond in ordered(de["condition"].unique(), settings.condition_order):
            yield (cond, enc), de[de["condition"] == cond]


def mean_sd(values: pd.Series) -> tuple[float, float]:
    v = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    if v.empty:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) >= 2 else float("nan")


def ratio(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return float("nan")
    if b == 0:
        return float("nan") if a == 0 else float("inf")
    return a / b


def safe_div(a: pd.Series, b: pd.Series) -> pd.Series:
    a, b = a.astype(float), b.astype(float)
    return (a / b.where(b != 0)).astype(float)


def require_metric(df: pd.DataFrame, metric: str, where: str) -> None:
    if metric not in df.columns:
        numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
        raise ContractError(f"config key aggregate.metric: {metric!r} is not a column of {where} "
                            f"(numeric columns: {numeric})")
