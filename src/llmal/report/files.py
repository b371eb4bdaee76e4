"""Writing the rendered result files: the aggregate's tables/*.{csv,md,tex} and figures/*, the agreement tables.

The tables come as data from llmal.results (`aggregate.build_tables`,
`agreement.annotator_agreement`); here they are rendered (llmal.report.tables, .figures) and
written, and the agreement files read back for the HTML page.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llmal.contracts import write_json, write_text
from llmal.report import figures
from llmal.report.stopping import stopping_markdown
from llmal.report import tables as render
from llmal.results.aggregate import AggregateTables
from llmal.results.agreement import TABLE_COLUMNS, AgreementReport
from llmal.results.confusion import CLASS_COLUMN, flatten_classes

TABLE_FILES = ("summary.csv", "summary.md", "summary.tex", "learning_curve.csv", "significance.csv",
               "significance.md", "fpfn.csv", "errors_by_topic.csv", "errors_by_topic.md",
               "aulc.csv", "matched_budget.csv", "matched_budget.md",
               "confusion.csv", "confusion.md", "per_class.csv", "per_class.md")
STOPPING_FILES = ("stopping.csv", "stopping.md")   # with al.stop only
AGREEMENT_FILES = ("annotators.csv", "annotators.md", "pairwise_kappa.csv", "agreement.json")


def write_aggregate(tables: AggregateTables, out_tables: Path | str, out_figures: Path | str) -> dict[str, Path]:
    """Write every table (TABLE_FILES, and STOPPING_FILES where runs checked stopping criteria)
    under `out_tables` and every figure (`llmal.report.figures.FIGURE_FILES`) under
    `out_figures`; return {"tables/<name>" | "figures/<name>": path}."""
    out_tables, out_figures = Path(out_tables), Path(out_figures)
    t = tables
    written: dict[str, Path] = {}

    def put(name: str, text: str) -> None:
        path = out_tables / name
        write_text(path, text)
        written[f"tables/{name}"] = path

    put("summary.csv", t.summary.to_csv(index=False))
    put("summary.md", render.summary_markdown(t.summary, t.positive, t.metrics))
    put("summary.tex", render.summary_latex(t.summary, t.positive, metrics=t.metrics))
    put("learning_curve.csv", t.learning_curve.to_csv(index=False))
    put("significance.csv", t.significance.to_csv(index=False))
    put("significance.md", render.significance_markdown(t.significance))
    put("fpfn.csv", t.fpfn.to_csv(index=False))
    put("errors_by_topic.csv", t.errors_by_topic.to_csv(index=False))
    put("errors_by_topic.md", render.errors_by_topic_markdown(t.errors_by_topic, t.settings.top_topics)
        if t.with_topics else render.NO_TOPIC_NOTE + "\n")
    put("aulc.csv", t.aulc.to_csv(index=False))
    put("matched_budget.csv", t.matched_budget.to_csv(index=False))
    put("matched_budget.md", render.matched_budget_markdown(t.matched_budget, t.comparison))
    put("confusion.csv", t.confusion.to_csv(index=False))
    put("confusion.md", render.confusion_markdown(t.confusion, t.label_names))
    put("per_class.csv", t.per_class.to_csv(index=False))
    put("per_class.md", render.per_class_markdown(t.per_class))
    if t.stopping is not None:   # only where a condition checks stopping criteria (al.stop)
        put("stopping.csv", t.stopping.to_csv(index=False))
        put("stopping.md", stopping_markdown(t.stopping))

    if CLASS_COLUMN in t.fpfn.columns:   # no positive class: one bar per condition and class
        fpfn, bars = flatten_classes(t.fpfn)
        topics, _ = flatten_classes(t.errors_by_topic)
    else:
        fpfn, topics, bars = t.fpfn, t.errors_by_topic, t.conditions
    drawn = figures.draw_all(t.learning_curve, fpfn, topics, out_figures, conditions=t.conditions,
                             metric=t.settings.metric, fpfn_conditions=bars, log_x=t.comparison.log_x,
                             degenerate=t.degenerate, aulc=t.aulc_summary, strategy_of=t.strategy_of,
                             annotator_of=t.annotator_of)
    if not t.with_topics:
        drawn.update({p.name: p for p in figures.placeholder_figure(out_figures / "errors_by_topic",
                                                                    render.NO_TOPIC_NOTE)})
    drawn.update({p.name: p for p in figures.confusion_figure(t.confusion, out_figures / "confusion",
                                                              t.label_names)})
    if t.frontier is not None:   # the cost-quality frontier (routed conditions, or aggregate.frontier)
        put("frontier.csv", t.frontier.to_csv(index=False))
        put("frontier.md", render.frontier_markdown(t.frontier))
        drawn.update({p.name: p for p in figures.frontier_figure(t.frontier, out_figures / "frontier",
                                                                 metric=t.settings.metric)})
    for name, path in drawn.items():
        written[f"figures/{name}"] = path
    return written


def write_agreement(report: AgreementReport, out_dir: str | Path) -> dict[str, Path]:
    """annotators.csv, annotators.md, pairwise_kappa.csv and agreement.json under `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in AGREEMENT_FILES}
    write_text(paths["annotators.csv"], report.table.to_csv(index=False))
    write_text(paths["annotators.md"], render.agreement_markdown(report))
    write_text(paths["pairwise_kappa.csv"], report.pairwise_kappa.reset_index(names="annotator").to_csv(index=False))
    summary = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in report.summary.items()}
    summary["pairwise_items"] = report.pairwise_n.to_dict()
    write_json(summary, paths["agreement.json"])
    return paths


def read_agreement(tables_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(table, pairwise kappa matrix, summary) as written by `write_agreement`."""
    d = Path(tables_dir)
    for name in ("annotators.csv", "pairwise_kappa.csv", "agreement.json"):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name}: missing (run the agreement rule first)")
    table = pd.read_csv(d / "annotators.csv", keep_default_na=False,
                        dtype={"annotator": str, "kind": str, "model": str, "replicate_group": str},
                        na_values={c: ["", "nan", "NaN"] for c in [*TABLE_COLUMNS, "routed_share"]
                                   if c not in ("annotator", "kind", "model", "replicate_group")})
    kappa = pd.read_csv(d / "pairwise_kappa.csv", dtype={"annotator": str}).set_index("annotator")
    kappa.index.name = None
    return table, kappa, json.loads((d / "agreement.json").read_text())
