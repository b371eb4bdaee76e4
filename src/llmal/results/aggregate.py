"""The aggregate stage's tables as data: summary, learning curves, significance, errors, fair comparisons.

`build_tables` reads the run directories (`llmal.results.runs.collect_runs`) and builds every
table as a DataFrame; llmal.report renders and writes them. Every table builder is a plain
function of DataFrames so tests reach it without files.

Conventions of the tables:
- mean and sd are over seeds; sd is the sample standard deviation (ddof=1), NaN for one seed;
- "pos" columns refer to the positive class named in the config (`labels.positive`);
- rows follow the order of `conditions` and `encoders` in the config.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from llmal.contracts import annotation_cost
from llmal.results import comparisons as cmp
from llmal.results import confusion
from llmal.results.errors import errors_by_topic_table, fpfn_table
from llmal.results.frontier import frontier_table
from llmal.results.runs import collect_runs
from llmal.results.settings import (
    MEANINGLESS_WHEN,
    SUMMARY_METRICS,
    AggregateSettings,
    Metric,
    groups,
    mean_sd,
    ordered,
    require_metric,
)
from llmal.results.stats import holm, paired_comparison
from llmal.results.stopping import stop_table
from llmal.stopping.registry import configured_stops
from llmal.tasks.registry import capabilities_of

# --------------------------------------------------------------------------------------------
# tables


def summary_table(finals: pd.DataFrame, settings: AggregateSettings,
                  metrics: Sequence[Metric] = SUMMARY_METRICS) -> pd.DataFrame:
    """Per condition × encoder over seeds: n_seeds and `<metric>_mean`, `<metric>_sd`."""
    rows = []
    for (cond, enc), g in groups(finals, settings):
        row: dict[str, Any] = {"condition": cond, "encoder": enc, "n_seeds": int(g["seed"].nunique())}
        for m in metrics:
            vals = pd.to_numeric(g[m.column], errors="coerce") if m.column in g else pd.Series(dtype=float)
            row[f"{m.column}_mean"], row[f"{m.column}_sd"] = mean_sd(vals)
        rows.append(row)
    return pd.DataFrame(rows)


def summary_best(summary: pd.DataFrame, metrics: Sequence[Metric] = SUMMARY_METRICS) -> set[tuple[int, str]]:
    """(row position, metric column) of the best mean per encoder, ties included.

    Nothing is marked for an encoder with a single condition, nor where all conditions tie.
    """
    best: set[tuple[int, str]] = set()
    if "degenerate" in summary.columns:  # a model predicting one class is never "best"
        summary_ok = summary[~summary["degenerate"].astype(bool)]
    else:
        summary_ok = summary
    for _, g in summary_ok.groupby("encoder", sort=False):
        if len(g) < 2:
            continue
        for m in metrics:
            if m.better is None:
                continue
            vals = g[f"{m.column}_mean"].astype(float)
            flag = MEANINGLESS_WHEN.get(m.column)
            if flag in g.columns:  # FP = 0 of a model that never says positive is no merit
                vals = vals.where(~g[flag].astype(bool))
            if vals.isna().all():
                continue
            if math.isclose(vals.max(), vals.min(), rel_tol=1e-9, abs_tol=1e-12):
                continue  # all tied: nobody is best
            target = vals.max() if m.better == "max" else vals.min()
            for pos, v in zip(g.index, vals):
                if not math.isnan(v) and math.isclose(v, target, rel_tol=1e-9, abs_tol=1e-12):
                    best.add((summary.index.get_loc(pos), m.column))
    return best


def learning_curve_table(rounds: pd.DataFrame, settings: AggregateSettings) -> pd.DataFrame:
    """Per condition × encoder × round: n_seeds and mean/sd of n_labels, cost_total, f1_macro
    (and of the configured metric when it is another column, and of n_tokens where the runs
    count tokens: task ner)."""
    cols = ["n_labels", "cost_total", "f1_macro"]
    if "n_tokens" in rounds.columns:
        cols.insert(1, "n_tokens")
    if settings.metric not in cols:
        require_metric(rounds, settings.metric, "rounds.csv")
        cols.append(settings.metric)
    rows = []
    for (cond, enc), g in groups(rounds, settings):
        for rnd, gr in g.groupby("round", sort=True):
            row: dict[str, Any] = {"condition": cond, "encoder": enc, "round": int(rnd),
                                   "n_seeds": int(gr["seed"].nunique())}
            for c in cols:
                row[f"{c}_mean"], row[f"{c}_sd"] = mean_sd(gr[c])
            rows.append(row)
    return pd.DataFrame(rows)


def significance_table(finals: pd.DataFrame, settings: AggregateSettings,
                       confidence: float = 0.95) -> pd.DataFrame:
    """Each condition against the reference, per encoder, paired by seed, on `settings.metric`.

    Holm's correction runs over the comparisons within one encoder, separately for the
    Wilcoxon and the t-test p-values.
    """
    metric = settings.metric
    require_metric(finals, metric, "the final rounds")
    ref = settings.reference
    rows = []
    for enc in ordered(finals["encoder"].unique(), settings.encoder_order):
        fe = finals[finals["encoder"] == enc]
        ref_vals = fe[fe["condition"] == ref].set_index("seed")[metric].astype(float)
        enc_rows = []
        for cond in ordered(fe["condition"].unique(), settings.condition_order):
            if cond == ref:
                continue
            vals = fe[fe["condition"] == cond].set_index("seed")[metric].astype(float)
            common = sorted(set(vals.index) & set(ref_vals.index))
            res = paired_comparison(vals.loc[common].to_numpy(), ref_vals.loc[common].to_numpy(), confidence)
            d = res.as_dict()
            extra = []
            if ref_vals.empty:
                extra.append(f"reference {ref!r} has no runs for encoder {enc!r}")
            unpaired = sorted(set(vals.index) ^ set(ref_vals.index))
            if unpaired and not ref_vals.empty:
                extra.append(f"seeds without a partner dropped: {unpaired}")
            d["note"] = "; ".join(extra + ([d["note"]] if d["note"] else []))
            enc_rows.append({"encoder": enc, "condition": cond, "reference": ref, "metric": metric, **d})
        for kind in ("wilcoxon", "ttest"):
            adj = holm([r[f"p_{kind}"] for r in enc_rows])
            for r, a in zip(enc_rows, adj):
                r[f"p_{kind}_holm"] = float(a)
        rows.extend(enc_rows)
    columns = ["encoder", "condition", "reference", "metric", "n_pairs", "mean_reference",
               "mean_condition", "mean_diff", "sd_diff", "ci_low", "ci_high", "wilcoxon_stat",
               "p_wilcoxon", "p_wilcoxon_holm", "wilcoxon_method", "wilcoxon_min_p", "t_stat",
               "p_ttest", "p_ttest_holm", "note"]
    return pd.DataFrame(rows, columns=columns)


def annotation_summary(annotations: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per annotator (name -> annotation table): n, ok/invalid/failed counts, invalid rate,
    tokens and dollars (total and per label given)."""
    rows = []
    for name, df in annotations.items():
        n = int(len(df))
        status = df["status"].astype(str) if "status" in df else pd.Series(["ok"] * n)
        ok = int((status == "ok").sum())
        cost = annotation_cost(df) if "cost_usd" in df else 0.0
        models = sorted({str(m) for m in df.get("model", pd.Series(dtype=str)).dropna() if str(m)})
        rows.append({
            "annotator": name, "model": ", ".join(models), "n": n, "ok": ok,
            "invalid": int((status == "invalid").sum()), "failed": int((status == "failed").sum()),
            "invalid_rate": (n - ok) / n if n else float("nan"), "cost_usd": cost,
            "cost_per_ok_label": cost / ok if ok else float("nan"),
            **{c: int(pd.to_numeric(df[c], errors="coerce").fillna(0).sum())
               for c in ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens") if c in df},
            # an LLM annotator's run statistics (annotate_with_llm, kept in the parquet's attrs)
            "maybe_billed": int((df.attrs.get("llm") or {}).get("maybe_billed", 0)),
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# every table of the aggregate stage


@dataclass(frozen=True)
class AggregateTables:
    """Every table of the aggregate stage as data, and what rendering them needs to know.

    llmal.report.files.write_aggregate writes them (csv, md, tex) and draws the figures."""

    settings: AggregateSettings
    comparison: cmp.ComparisonSettings
    label_names: list[str]              # of the predictions (task ner: the types, then "O")
    positive: str                       # "" without a positive class
    metrics: tuple[Metric, ...]         # the summary's columns
    conditions: list[str]               # in table order
    summary: pd.DataFrame
    learning_curve: pd.DataFrame
    significance: pd.DataFrame
    fpfn: pd.DataFrame                  # with a `class` column without a positive class
    errors_by_topic: pd.DataFrame       # the same
    aulc: pd.DataFrame
    aulc_summary: pd.DataFrame
    matched_budget: pd.DataFrame
    confusion: pd.DataFrame
    per_class: pd.DataFrame
    with_topics: bool                   # whether any test item has a topic
    degenerate: frozenset[tuple[str, str]]   # (condition, encoder) of one-class models
    strategy_of: dict[str, str]         # condition -> its sampler
    annotator_of: dict[str, str]        # condition -> its annotator
    frontier: pd.DataFrame | None = None   # llmal.results.frontier (aggregate.frontier, or routed conditions)
    stopping: pd.DataFrame | None = None   # where the stopping criteria fired (al.stop), else None


def build_tables(run_dirs: Iterable[Path | str], config: Mapping[str, Any], *,
                 frontier: bool = False) -> AggregateTables:
    """Every table of the aggregate stage from the run directories; `frontier`: with the
    cost-quality frontier (llmal.config.frontier.frontier_enabled decides)."""
    entity_level = capabilities_of(config).entity_level
    rounds, finals, preds = collect_runs(run_dirs)
    settings = AggregateSettings.from_config(config, finals)
    label_names = [str(n) for n in json.loads(finals["label_names"].iloc[0])]
    positive = settings.positive or (str(finals["positive"].iloc[0])
                                     if finals["positive"].notna().iloc[0] else "")
    fair = fair_comparisons(rounds, finals, preds, config, settings)
    finals = fair.finals  # deterministic repeats counted once
    # entity-level tasks: the classes are the entity types (the last label, "O", is no entity),
    # and the rows of predictions.parquet are entities (FP = spurious, FN = missed, per type)
    classes = label_names[:-1] if entity_level else label_names
    metrics = summary_metrics_of(positive, classes, entity_level, capabilities_of(config).summary_columns)
    if positive:
        summary = fair.summary_marks(summary_table(finals, settings)).merge(
            confusion.degenerate_predictions(finals, settings), on=["condition", "encoder"], how="left")
        fpfn = fpfn_table(finals, settings)
        topics = errors_by_topic_table(preds, finals, settings)
    else:  # any number of classes: FP/FN and topic errors per class, one against the rest
        summary = fair.summary_marks(summary_table(finals, settings, metrics))
        fpfn = confusion.per_class_fpfn(finals, preds, settings, classes)
        topics = confusion.per_class_topics(preds, finals, settings, classes)
    conds = config.get("conditions") or {}
    return AggregateTables(
        settings=settings, comparison=fair.settings, label_names=label_names, positive=positive,
        metrics=metrics, conditions=ordered(finals["condition"].unique(), settings.condition_order),
        summary=summary, learning_curve=learning_curve_table(rounds, settings),
        significance=significance_table(finals, settings), fpfn=fpfn, errors_by_topic=topics,
        aulc=fair.aulc, aulc_summary=cmp.aulc_summary(fair.aulc, settings.condition_order),
        matched_budget=fair.matched, confusion=confusion.confusion_table(preds, settings, label_names),
        per_class=confusion.per_class_table(finals, settings, classes),
        with_topics=confusion.has_topics(preds), degenerate=fair.degenerate,
        strategy_of={c: str(v.get("sampler", "")) for c, v in conds.items()},
        annotator_of={c: str(v.get("annotator", "")) for c, v in conds.items()},
        frontier=frontier_table(finals, config, settings) if frontier else None,
        stopping=(stop_table(rounds, finals, settings.metric, settings.condition_order)
                  if configured_stops(config) else None))


def summary_metrics_of(positive: str, classes: Sequence[str], entity_level: bool,
                       columns: Sequence[tuple[str, str, int | None, str | None]] = ()) -> tuple[Metric, ...]:
    """The summary's columns: SUMMARY_METRICS with a positive class, else the task's own
    `columns` (Capabilities.summary_columns, "{label}" once per class), else those of
    ner_summary_metrics for entity-level tasks or of llmal.results.confusion.summary_metrics."""
    if positive:
        return SUMMARY_METRICS
    if columns:
        return tuple(Metric(c.replace("{label}", n), h.replace("{label}", n), d, b)
                     for c, h, d, b in columns for n in (classes if "{label}" in c else [""]))
    return ner_summary_metrics(classes) if entity_level else confusion.summary_metrics(classes)


@dataclass(frozen=True)
class FairComparisons:
    """llmal.results.comparisons applied to the runs (see fair_comparisons)."""

    settings: cmp.ComparisonSettings
    finals: pd.DataFrame                # deterministic repeats counted once
    summary_marks: Callable[[pd.DataFrame], pd.DataFrame]
    aulc: pd.DataFrame
    matched: pd.DataFrame
    degenerate: frozenset[tuple[str, str]]


def fair_comparisons(rounds: pd.DataFrame, finals: pd.DataFrame, preds: pd.DataFrame,
                     config: Mapping[str, Any], settings: AggregateSettings) -> FairComparisons:
    """llmal.results.comparisons for build_tables: finals with deterministic repeats counted once,
    a function marking the summary (degenerate rows, optional bootstrap CI), the AULC and
    matched-budget tables, and the degenerate (condition, encoder) pairs."""
    cs = cmp.ComparisonSettings.from_config(config, settings.reference)
    groups = cmp.deterministic_groups(preds, rounds, cmp.training_sets(finals))
    degenerate = cmp.degenerate_runs(preds)
    bad = degenerate.groupby(["condition", "encoder"])["degenerate"].any()
    boot = cmp.bootstrap_f1_ci(cmp.collapse_deterministic(preds, groups), cs.bootstrap) \
        if cs.bootstrap > 0 else None

    def summary_marks(summary: pd.DataFrame) -> pd.DataFrame:
        keys = list(zip(summary["condition"], summary["encoder"]))
        summary = summary.assign(degenerate=[bool(bad.get(k, False)) for k in keys])
        if boot is not None:
            summary = summary.merge(boot, on=["condition", "encoder"], how="left")
        return summary

    return FairComparisons(
        settings=cs, finals=cmp.collapse_deterministic(finals, groups), summary_marks=summary_marks,
        aulc=cmp.aulc_table(rounds, settings.metric, groups),
        matched=cmp.matched_budget_table(rounds, cs, groups),
        degenerate=frozenset(k for k, v in bad.items() if v))


def ner_summary_metrics(types: Sequence[str]) -> tuple[Metric, ...]:
    """The summary columns of task ner: entity-level strict micro P/R/F1, macro F1, F1 per type."""
    return (Metric("f1_micro", "Entity F1 (micro)", 3, "max"),
            Metric("precision_micro", "Precision (micro)", 3, "max"),
            Metric("recall_micro", "Recall (micro)", 3, "max"),
            Metric("f1_macro", "Entity F1 (macro)", 3, "max"),
            *(Metric(f"f1_{t}", f"F1 ({t})", 3, "max") for t in types),
            Metric("fp", "FP (spurious)", 1, "min"), Metric("fn", "FN (missed)", 1, "min"),
            Metric("n_labels", "Sentences", 0, None), Metric("n_tokens", "Tokens", 0, None),
            Metric("n_train", "Trained on", 0, None),
            Metric("cost_total", "Cost ($)", None, "min"))

