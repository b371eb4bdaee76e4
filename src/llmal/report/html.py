"""The HTML report: one self-contained file (figures as base64 PNG, tables as HTML, inline CSS).

It reads what `llmal.report.files.write_aggregate` wrote (tables/*.csv, figures/*.png) plus the
config and the run metadata, so it can be rebuilt without touching the runs' results.
"""
from __future__ import annotations

import base64
import html
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from llmal.contracts import SPLITS, write_text
from llmal.report import tablefmt
from llmal.report import tables as render
from llmal.report.figures import metric_label
from llmal.report.findings import findings_html
from llmal.report.files import read_agreement
from llmal.report.power import power_caption, power_display
from llmal.report.stopping import stopping_caption, stopping_display
from llmal.results import comparisons as cmp
from llmal.results import settings as result_settings
from llmal.results.aggregate import summary_metrics_of
from llmal.results.findings import study_findings
from llmal.results.power import DELTA, power_table
from llmal.results.agreement import TABLE_COLUMNS as AGREEMENT_COLUMNS
from llmal.tasks.registry import capabilities_of

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#222;
max-width:1180px;margin:2em auto;padding:0 1.2em;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd;
padding-bottom:.2em}h3{font-size:1.05em;margin-top:1.4em}
.sub{color:#666;margin-top:0}
.note{background:#fff4ce;border:1px solid #e0c060;border-left:6px solid #d4a017;padding:.7em 1em;
margin:1em 0;border-radius:3px}
.caption{color:#555;font-size:.92em;margin:.3em 0 .6em}
.scroll{overflow-x:auto;width:fit-content;max-width:100%;border:1px solid #eee;margin:.4em 0 1em}
.scroll table.tbl{margin:0}
table.tbl th:first-child,table.tbl td:first-child{position:sticky;left:0;z-index:1;
background:#fff;box-shadow:inset -1px 0 0 #ddd}
table.tbl thead th:first-child{background:#f4f5f7;z-index:2}
table.tbl tr:nth-child(even) td:first-child{background:#fafafa}
img{max-width:100%}
table.tbl{border-collapse:collapse;font-size:.86em;margin:.4em 0 1em}
table.tbl th,table.tbl td{padding:.28em .6em;border-bottom:1px solid #e4e4e4;text-align:left;
white-space:nowrap}
table.tbl th{background:#f4f5f7;border-bottom:2px solid #ccc}
table.tbl thead th{white-space:normal;vertical-align:bottom}
table.tbl th.num{text-align:right}
table.kv th{text-align:left;vertical-align:top;border-bottom:1px solid #e4e4e4}
table.kv td{white-space:normal;overflow-wrap:anywhere}
table.tbl tr:nth-child(even) td{background:#fafafa}
table.tbl td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}
code{background:#f4f5f7;padding:0 .25em;border-radius:3px}
details summary{cursor:pointer;color:#345}
nav.toc{font-size:.92em;margin:1em 0 0;color:#555}nav.toc a{color:#345;margin-right:.9em;white-space:nowrap}
.finding{font-size:.92em}
.notes{color:#555;font-size:.88em;margin:-.5em 0 1em;padding-left:1.4em}
@media print{.scroll{overflow:visible}nav.toc{display:none}}
"""

DEMO_NOTE = ("Synthetic demo data. These results come from llmal's built-in synthetic dataset "
             "(dataset.kind = \"demo\"), generated to exercise the pipeline. They say nothing "
             "about real annotators or real text.")


def write_report(out_html: Path, *, config: Mapping[str, Any], tables_dir: Path, figures_dir: Path,
                 runs_meta: pd.DataFrame | Sequence[Mapping[str, Any]],
                 annotations: pd.DataFrame | None = None,
                 split_counts: Mapping[str, int] | None = None, title: str | None = None,
                 agreement_dir: Path | None = None, warnings: Sequence[str] = ()) -> Path:
    """Write the report to `out_html` and return its path.

    runs_meta: the `finals` frame of `collect_runs` or the run.json dicts of the runs.
    annotations: optional per-annotator summary (`llmal.results.aggregate.annotation_summary`).
    split_counts: optional items per split, e.g. {"pool": 2100, "dev": 300, "test": 600}.
    agreement_dir: optional folder holding what `llmal.report.files.write_agreement` wrote
    (annotators.csv, pairwise_kappa.csv, agreement.json): adds the annotator agreement section.
    Raises FileNotFoundError naming any table or figure that is missing.
    """
    tables_dir, figures_dir, out_html = Path(tables_dir), Path(figures_dir), Path(out_html)
    meta = _runs_frame(runs_meta)
    settings = result_settings.AggregateSettings.from_config(config, meta if len(meta) else None)
    dataset = config.get("dataset") or {}
    name = str(dataset.get("name", "")) or "dataset"
    positive = settings.positive or (str(meta["positive"].iloc[0]) if "positive" in meta and len(meta)
                                     and pd.notna(meta["positive"].iloc[0]) else "")
    title = title or f"llmal report: {name}"

    parts = [f"<h1>{_e(title)}</h1>",
             f'<p class="sub">Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by llmal</p>']
    if settings.demo:
        parts.append(f'<div class="note"><strong>{_e(DEMO_NOTE.split(". ")[0])}.</strong> '
                     f'{_e(DEMO_NOTE.split(". ", 1)[1])}</div>')
    label_names = [str(n) for n in (config.get("labels") or {}).get("names", [])]
    if agreement_dir is not None and (Path(agreement_dir) / "agreement.json").is_file():
        warnings = [*warnings, *(json.loads((Path(agreement_dir) / "agreement.json").read_text())
                                 .get("warnings") or [])]
    parts += [f'<div class="note"><strong>Warning.</strong> {_e(w)}</div>' for w in warnings]
    parts += _findings_section(config, settings, tables_dir)
    parts += _what_was_run(config, meta, settings, split_counts)
    caps = capabilities_of(config)
    parts += _summary_section(tables_dir, positive, label_names, entity_level=caps.entity_level,
                              columns=caps.summary_columns)
    parts += _significance_section(tables_dir)
    parts += _power_section(tables_dir, float((config.get("aggregate") or {}).get("power_delta", DELTA)))
    parts += _fair_comparison_section(config, settings, tables_dir, figures_dir)
    parts += _learning_curve_section(figures_dir, settings.metric)
    if (tables_dir / "frontier.csv").is_file():
        parts += _frontier_section(config, tables_dir, figures_dir, settings.metric)
    parts += _stopping_section(tables_dir)
    parts += _classes_section(tables_dir, figures_dir)
    parts += _errors_section(tables_dir, figures_dir, settings.top_topics)
    if annotations is not None and len(annotations):
        parts += _annotation_section(annotations)
    if agreement_dir is not None:
        parts += _agreement_section(Path(agreement_dir))
    parts += _provenance_section(meta, settings)
    parts.insert(3 if settings.demo else 2, _toc(parts))

    doc = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_e(title)}</title>"
           f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    write_text(out_html, doc)
    return out_html


# --------------------------------------------------------------------------------------------
# sections


def _findings_section(config: Mapping[str, Any], settings: result_settings.AggregateSettings,
                      tables_dir: Path) -> list[str]:
    cs = cmp.ComparisonSettings.from_config(config, settings.reference)
    findings = study_findings(config, settings, summary=_read_csv(tables_dir / "summary.csv"),
                              matched=_read_csv(tables_dir / "matched_budget.csv"),
                              aulc=_read_csv(tables_dir / "aulc.csv"), fpfn=_read_csv(tables_dir / "fpfn.csv"),
                              topics=_read_csv(tables_dir / "errors_by_topic.csv"),
                              primary_test=cs.primary_test)
    return findings_html(findings, settings.metric)


def _what_was_run(config: Mapping[str, Any], meta: pd.DataFrame, settings: result_settings.AggregateSettings,
                  split_counts: Mapping[str, int] | None) -> list[str]:
    dataset = config.get("dataset") or {}
    out = [_h2("What was run")]
    facts = [("Dataset", f"{dataset.get('name', '')} (kind: {dataset.get('kind', '')})")]
    if split_counts:
        order = [k for k in SPLITS if k in split_counts] + [k for k in split_counts if k not in SPLITS]
        facts.append(("Items per split", ", ".join(f"{k}: {int(split_counts[k]):,}" for k in order)))
    elif dataset.get("n_items"):
        facts.append(("Items", f"{int(dataset['n_items']):,}"))
    labels = config.get("labels") or {}
    if labels:
        facts.append(("Labels", f"{', '.join(map(str, labels.get('names', [])))} "
                                + (f"(positive: {labels['positive']})" if labels.get("positive")
                                   else "(no positive class)")))
    seeds = config.get("seeds") or (sorted(meta["seed"].dropna().unique().tolist()) if len(meta) else [])
    facts += [("Seeds", ", ".join(map(str, seeds))), ("Runs found", str(len(meta))),
              ("Reference condition", settings.reference),
              ("Compared metric", _metric_name(settings.metric))]
    out.append(_html_kv(facts))

    conditions = config.get("conditions") or {}
    annotators = config.get("annotators") or {}
    rows = []
    for cond in result_settings.ordered_conditions(list(conditions) + meta.get("condition", pd.Series(dtype=str)).tolist(),
                                             settings):
        spec = dict(conditions.get(cond) or {})
        run = meta[meta["condition"] == cond].iloc[0] if len(meta) and (meta["condition"] == cond).any() else None
        annot = str(spec.pop("annotator", "") or (run["annotator"] if run is not None else ""))
        kind = (annotators.get(annot) or {}).get("kind", "")
        rows.append({
            "Condition": cond, "Annotator": f"{annot} ({kind})" if kind else annot,
            "Sampler": str(spec.pop("sampler", "") or (run["sampler"] if run is not None else "")),
            "Recipe": str(spec.pop("recipe", "") or (run["recipe"] if run is not None else "")),
            "Other settings": _settings(spec),
            "Runs": int((meta["condition"] == cond).sum()) if len(meta) else 0,
        })
    out += ["<h3>Conditions</h3>", _table(pd.DataFrame(rows), numeric=["Runs"])]
    enc_rows = [{"Encoder": k, "Kind": (v or {}).get("kind", ""),
                 "Settings": _settings({a: b for a, b in (v or {}).items() if a != "kind"})}
                for k, v in (config.get("encoders") or {}).items()]
    if enc_rows:
        out += ["<h3>Encoders</h3>", _table(pd.DataFrame(enc_rows))]
    return out


def _summary_section(tables_dir: Path, positive: str, label_names: Sequence[str],
                     entity_level: bool = False,
                     columns: Sequence[tuple[str, str, int | None, str | None]] = ()) -> list[str]:
    summary = _read_csv(tables_dir / "summary.csv")
    # entity-level: strict scores (seqeval), label_names = the entity types
    metrics = summary_metrics_of(positive, label_names, entity_level, columns)
    shown, bold = render.summary_html_frame(summary, positive, metrics)
    note = f"Positive class: {_e(positive)}." if positive else "No positive class: macro and per-class scores."
    return [_h2("Summary"),
            f'<p class="caption">Final round, mean ± sd over seeds. {note} '
            "Best mean per encoder in bold (lowest for FP, FN, cost and soft cross-entropy). "
            "Cost ($) is each run's cost_total from its ledger: every label it bought (initial and "
            "AL queries, dev labels for early stopping, human gold for meta sets and k-NN "
            "demonstration pools).</p>",
            _table(shown, bold=bold, numeric=[c for c in shown.columns if c not in ("Encoder", "Condition")])]


def _significance_section(tables_dir: Path) -> list[str]:
    sig = _read_csv(tables_dir / "significance.csv")
    out = [_h2("Significance")]
    if sig.empty:
        return out + ["<p>No comparisons: only the reference condition was run.</p>"]
    shown, notes = _footnotes(render.significance_display(sig), "Note")
    out += [f'<p class="caption">{_e(render.significance_caption(str(sig["metric"].iloc[0])))}</p>',
            _table(shown, numeric=[c for c in shown.columns if c.startswith(("p ", "Δ", "Pairs"))])]
    return out + notes


def _power_section(tables_dir: Path, delta: float) -> list[str]:
    """Seeds and power from the significance table's seed variance (llmal.results.power)."""
    sig = _read_csv(tables_dir / "significance.csv")
    if sig.empty:
        return []
    table = power_table(sig, delta=delta)
    shown, notes = _footnotes(power_display(table), "Note")
    return [_h2("Seeds and power"), f'<p class="caption">{_e(power_caption(table))} '
            "The same numbers: <code>llmal power --configfile ...</code>.</p>",
            _table(shown, numeric=[c for c in shown.columns if c not in ("Encoder", "Condition", "vs")])] + notes


def _fair_comparison_section(config: Mapping[str, Any], settings: result_settings.AggregateSettings,
                             tables_dir: Path, figures_dir: Path) -> list[str]:
    """AULC per condition and the matched-budget comparisons (llmal.results.comparisons)."""
    cs = cmp.ComparisonSettings.from_config(config, settings.reference)
    aulc = cmp.aulc_summary(_read_csv(tables_dir / "aulc.csv"), settings.condition_order)
    shown = pd.DataFrame({
        "Encoder": aulc["encoder"], "Condition": aulc["condition"], "Runs": aulc["n"],
        "AULC (labels)": [tablefmt.format_mean_sd(m, s, 3) for m, s in
                          zip(aulc["aulc_labels_mean"], aulc["aulc_labels_sd"])],
        "AULC (dollars)": [tablefmt.format_mean_sd(m, s, 3) for m, s in
                           zip(aulc["aulc_cost_mean"], aulc["aulc_cost_sd"])],
        "Note": ["one round (full pool): its value" if one else "" for one in aulc["single_round"]],
    })
    if "aulc_tokens_mean" in aulc.columns:   # task ner: tokens are a budget axis too
        shown.insert(4, "AULC (tokens)", [tablefmt.format_mean_sd(m, s, 3) for m, s in
                                          zip(aulc["aulc_tokens_mean"], aulc["aulc_tokens_sd"])])
    matched = _read_csv(tables_dir / "matched_budget.csv")
    out = [_h2("Area under the learning curve"),
           f'<p class="caption">Per run, the area under test {_e(settings.metric)} over labels '
           "(and over dollars) divided by the run's own label (dollar) range: the mean score "
           "over the budget it spent. Mean ± sd over runs; deterministic repeats count once.</p>",
           _table(shown, numeric=["Runs", "AULC (labels)", "AULC (tokens)", "AULC (dollars)"]),
           _figure(figures_dir / "aulc.png", "Normalised AULC over labels by strategy and "
                   "annotator; dashed lines: full-pool conditions."),
           _h2("Matched budgets")]
    if matched.empty:
        return out + ["<p>No budget is reached by any run.</p>"]
    display = render.matched_budget_display(matched, settings.metric, markdown=False)
    bold = {(i, settings.metric) for i in cmp.matched_budget_best(matched, settings.metric)}
    caption = render.matched_budget_caption(cs, "tokens" in set(matched["budget_kind"]))
    return out + [f'<p class="caption">{_e(caption)}</p>',
                  _table(display, bold=bold, numeric=["Runs", settings.metric])]


def _frontier_section(config: Mapping[str, Any], tables_dir: Path, figures_dir: Path, metric: str) -> list[str]:
    """The cost-quality frontier (llmal.results.frontier): the answers per encoder, the figure, the table."""
    table = pd.read_csv(tables_dir / "frontier.csv", keep_default_na=False,
                        na_values={c: ["", "nan", "NaN"] for c in ("metric_mean", "cost_total_mean", "extra_metric",
                                                                   "extra_cost", "metric_per_dollar")})
    tol = float((config.get("aggregate") or {}).get("frontier_tolerance", 0.01))
    answers = render.frontier_sentences(table, tol)
    return [_h2("Cost-quality frontier"),
            *[f"<p>{_e(a)}</p>" for a in answers],
            _figure(figures_dir / "frontier.png",
                    f"Test {metric_label(metric)} against cost_total (log scale), mean over seeds: squares "
                    "buy human labels, circles machine labels, diamonds routed ones; filled markers are AL "
                    "samplers, hollow ones random or full; dashed: the Pareto front; ringed: the cheapest "
                    f"condition within {tol:g} of the best."),
            _table(render.frontier_display(table), numeric=[metric, "Cost ($)"])]


def _stopping_section(tables_dir: Path) -> list[str]:
    """Where the stopping criteria fired (tables/stopping.csv: only with al.stop)."""
    path = tables_dir / "stopping.csv"
    if not path.is_file():
        return []
    table = _read_csv(path)
    out = [_h2("When to stop")]
    if table.empty:
        return out + ["<p>No run checked a stopping criterion (every run ended in round 0).</p>"]
    shown, notes = _footnotes(stopping_display(table), "Note")
    return out + [f'<p class="caption">{_e(stopping_caption(str(table["metric"].iloc[0])))}</p>',
                  _table(shown, numeric=[c for c in shown.columns if c not in
                                         ("Encoder", "Condition", "Criterion", "Mode")])] + notes


def _learning_curve_section(figures_dir: Path, metric: str) -> list[str]:
    return [_h2("Learning curves"),
            _figure(figures_dir / "learning_curve.png",
                    f"Test {metric_label(metric)} against labels acquired; mean over seeds, band ±1 sd."),
            _figure(figures_dir / "learning_curve_cost.png",
                    f"Test {metric_label(metric)} against cumulative cost in US$ (cost_total: "
                    "labels, dev labels and gold sets) "
                    "(log scale when costs span two orders of magnitude or more)."),
            *([_figure(figures_dir / "learning_curve_tokens.png",
                       f"Test {metric_label(metric)} against the tokens of the sentences acquired "
                       "(task ner); mean over seeds, band ±1 sd.")]
              if (figures_dir / "learning_curve_tokens.png").is_file() else []),
            ]


def _errors_section(tables_dir: Path, figures_dir: Path, top_k: int) -> list[str]:
    fpfn = _read_csv(tables_dir / "fpfn.csv")
    topics = _read_csv(tables_dir / "errors_by_topic.csv")
    top = topics[topics["top"].astype(str).str.lower() == "true"]
    shown = render.fpfn_display(fpfn)
    if "class" in fpfn.columns:  # no positive class: each class against the rest
        shown.insert(2, "Class", fpfn["class"].astype(str).to_numpy())
        if "class" in topics.columns:
            top = top.assign(condition=top["condition"] + " [" + top["class"].astype(str) + "]")
    out = [_h2("False positives, false negatives and topics"),
           '<p class="caption">Final-round test errors, mean ± sd over seeds. FP/FN = ratio of the '
           "means (∞ when there are no false negatives); FP rate = FP / (FP + TN), "
           "FN rate = FN / (FN + TP), means over seeds.</p>",
           _table(shown, numeric=[c for c in shown.columns if c not in ("Encoder", "Condition")]),
           _figure(figures_dir / "fpfn.png", "Mean FP (solid) and FN (hatched) per condition; error bars ±1 sd."),
           ]
    if not _has_topics(topics):
        return out + [f"<p>{_e(render.NO_TOPIC_NOTE)}</p>"]
    out += ["<h3>Topics where errors concentrate</h3>",
           f'<p class="caption">{_e(render.errors_by_topic_caption(top_k))} '
           "– = undefined: no gold-negative (FP rate) or gold-positive (FN rate) items in the topic.</p>"]
    if len(top):
        out.append(_table(_topic_display(top), numeric=TOPIC_NUMERIC))
    else:
        out.append("<p>No test errors.</p>")
    pairs = set(zip(topics["condition"].astype(str), topics["encoder"].astype(str)))
    n_conds, n_encs = topics["condition"].nunique(), topics["encoder"].nunique()
    blank = " Blank columns: condition not run with that encoder." if len(pairs) < n_conds * n_encs else ""
    out.append(_figure(figures_dir / "errors_by_topic.png",
                       "Error rate (FP + FN) / items per topic and condition, mean over seeds." + blank))
    out.append(f"<details><summary>All topics ({len(topics):,} rows)</summary>"
               + _box(_topic_display(topics), numeric=TOPIC_NUMERIC) + "</details>")
    return out


def _has_topics(topics: pd.DataFrame) -> bool:
    return bool(len(topics)) and bool((topics["topic"].astype(str) != result_settings.UNKNOWN_TOPIC).any())


def _classes_section(tables_dir: Path, figures_dir: Path) -> list[str]:
    shown = render.per_class_display(_read_csv(tables_dir / "per_class.csv"))
    return [_h2("Classes"),
            f'<p class="caption">{_e(render.PER_CLASS_CAPTION)}</p>',
            _table(shown, numeric=["Precision", "Recall", "F1"]),
            _figure(figures_dir / "confusion.png",
                    "Confusion matrix per condition and encoder: rows gold, columns predicted; "
                    "cells = mean count over seeds, colour = share of the gold class.")]


def _annotation_section(annotations: pd.DataFrame) -> list[str]:
    a = annotations.copy()
    shown = pd.DataFrame({"Annotator": a["annotator"]})
    if "model" in a:
        shown["Model"] = a["model"]
    for col, label in (("n", "Items"), ("ok", "OK"), ("invalid", "Invalid"), ("failed", "Failed")):
        if col in a:
            shown[label] = a[col].map(tablefmt.format_count)
    if "invalid_rate" in a:
        shown["Not usable"] = a["invalid_rate"].map(tablefmt.format_percent)
    if "cost_usd" in a:
        shown["Cost ($)"] = a["cost_usd"].map(lambda v: tablefmt.format_number(v, None))
    if "cost_per_ok_label" in a:
        shown["$ per label"] = a["cost_per_ok_label"].map(lambda v: tablefmt.format_number(v, None))
    for col, label in (("input_tokens", "Input tokens"), ("cached_tokens", "Cached input"),
                       ("output_tokens", "Output tokens"), ("reasoning_tokens", "Reasoning")):
        if col in a:
            shown[label] = a[col].map(tablefmt.format_count)
    if "maybe_billed" in a and (a["maybe_billed"] > 0).any():
        shown["Possibly billed, unanswered"] = a["maybe_billed"].map(tablefmt.format_count)
    return [_h2("Annotation"),
            '<p class="caption">Per annotator over all the items it was asked to label: labels given (OK), '
            "malformed outputs (invalid) and failed requests; Not usable = (invalid + failed) / items; "
            "costs in US$. Cached input tokens (read from the provider's prompt cache) are priced at "
            "the cached-input price; reasoning tokens are part of the output tokens and priced as "
            "output. Possibly billed, unanswered = requests that timed out or were in flight when a "
            "job died: the provider may have billed them, and their cost is in no table.</p>",
            _table(shown, numeric=[c for c in shown.columns if c not in ("Annotator", "Model")])]


def _agreement_section(agreement_dir: Path) -> list[str]:
    table, kappa, summary = read_agreement(agreement_dir)
    shown = render.agreement_display(table)
    pairwise = render.pairwise_display(kappa)
    return [_h2("Annotator agreement"),
            f'<p class="caption">{_e(render.agreement_caption(summary))}</p>',
            _table(shown, numeric=[c for c in shown.columns if c in render.NUMERIC_DISPLAY]),
            f'<p class="finding">{_e(render.fleiss_sentence(summary))} '
            f"{_e(render.best_sentence(summary, table))}</p>",
            "<h3>Pairwise Cohen's κ</h3>",
            '<p class="caption">On the items both annotators labelled'
            + ("; – = undefined (too few shared items, or both annotators gave a single label "
               "throughout)" if (pairwise.iloc[:, 1:] == tablefmt.MISSING).any().any() else "") + ".</p>",
            _table(pairwise, numeric=list(pairwise.columns[1:]))] + _task_agreement(table, summary)


def _task_agreement(table: pd.DataFrame, summary: Mapping[str, Any]) -> list[str]:
    """The columns a task adds to the agreement table (per annotator, e.g. per-label κ and α),
    and its statistics that are not per annotator (the summary's `task` entry)."""
    out: list[str] = []
    extra = [c for c in table.columns if c not in AGREEMENT_COLUMNS]
    if extra:
        shown = table[["annotator"] + extra].rename(columns={"annotator": "Annotator"})
        for col in extra:
            shown[col] = [tablefmt.MISSING if pd.isna(v) else (f"{v:.3f}" if isinstance(v, float) else str(v))
                          for v in shown[col]]
        out += ["<h3>Columns of the task</h3>",
                '<p class="caption">Per annotator, against gold, on the items it answered.</p>',
                _table(shown, numeric=extra)]
    task = summary.get("task")
    if isinstance(task, Mapping) and task:
        facts = [(str(k), ", ".join(map(str, v)) if isinstance(v, list) else
                  (f"{v:.3f}" if isinstance(v, float) else str(v))) for k, v in task.items()]
        out += ["<h3>Among the dataset's raters</h3>", _html_kv(facts)]
    return out


def _provenance_section(meta: pd.DataFrame, settings: result_settings.AggregateSettings) -> list[str]:
    out = [_h2("Provenance")]
    if meta.empty:
        return out + ["<p>No run metadata.</p>"]
    facts = []
    hashes = sorted(set(meta.get("config_hash", pd.Series(dtype=str)).dropna().astype(str)) - {""})
    if len(hashes) > 3:
        facts.append(("Config hashes", f"{len(hashes)} distinct (each run's in the run list below)"))
    else:
        facts.append(("Config hash" + ("es" if len(hashes) > 1 else ""), ", ".join(hashes) or "–"))
    devices = sorted(set(meta.get("device", pd.Series(dtype=str)).astype(str)) - {""})
    facts.append(("Devices", ", ".join(devices) or "–"))
    if "seconds_total" in meta:
        facts.append(("Total AL wall time", f"{meta['seconds_total'].sum() / 60:.1f} min"))
    out.append(_html_kv(facts))
    versions: dict[str, set[str]] = {}
    for v in meta.get("versions", pd.Series(dtype=str)):
        for pkg, ver in _as_dict(v).items():
            versions.setdefault(str(pkg), set()).add(str(ver))
    if versions:
        rows = [{"Package": k, "Version": ", ".join(sorted(v))} for k, v in sorted(versions.items())]
        out += ["<h3>Versions</h3>", _table(pd.DataFrame(rows))]
    runs = _runs_display(meta, settings)
    out.append(f"<details><summary>All {len(meta)} runs</summary>"
               + _box(runs, numeric=["Seed", "Rounds", "Seconds"]) + "</details>")
    return out


# --------------------------------------------------------------------------------------------
# helpers


def _runs_frame(runs_meta: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Run metadata as a frame with at least condition/encoder/seed (finals or run.json dicts)."""
    if isinstance(runs_meta, pd.DataFrame):
        meta = runs_meta.copy()
    else:
        meta = pd.DataFrame([{k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
                              for k, v in dict(m).items()} for m in runs_meta])
    for col in ("condition", "encoder", "seed"):
        if col not in meta:
            meta[col] = pd.Series(dtype=object)
    if "timings" in meta:
        meta["seconds_total"] = [_total_seconds(_as_dict(t)) for t in meta["timings"]]
    if len(meta):
        meta = meta.sort_values(["condition", "encoder", "seed"], kind="stable").reset_index(drop=True)
    return meta


def _total_seconds(timings: Mapping[str, Any]) -> float:
    if "total" in timings and isinstance(timings["total"], (int, float)):
        return float(timings["total"])
    return float(sum(v for v in timings.values() if isinstance(v, (int, float)) and not isinstance(v, bool)))


def _as_dict(v: Any) -> dict:
    if isinstance(v, dict):
        return v
    if isinstance(v, str) and v.strip().startswith("{"):
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return {}
    return {}


TEXT_COLUMNS = ("condition", "encoder", "topic", "reference", "metric", "wilcoxon_method", "note")
NA_STRINGS = ["", "nan", "NaN", "NA", "<NA>"]


def _read_csv(path: Path) -> pd.DataFrame:
    """A table written by aggregate; names (a topic called "NA") stay strings, numbers may be NaN."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: table missing (run the aggregate stage first)")
    columns = pd.read_csv(path, nrows=0).columns
    return pd.read_csv(path, keep_default_na=False, dtype={c: str for c in columns if c in TEXT_COLUMNS},
                       na_values={c: NA_STRINGS for c in columns if c not in TEXT_COLUMNS})


def _figure(png: Path, caption: str) -> str:
    if not png.is_file():
        raise FileNotFoundError(f"{png}: figure missing (run the aggregate stage first)")
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{_e(png.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


FOLD_ROWS = 20   # a table with more rows is folded (<details>, closed)


def _box(df: pd.DataFrame, *, bold: set[tuple[int, str]] | None = None, numeric: Iterable[str] = ()) -> str:
    """A table in its own horizontal scroll box (its first column sticky)."""
    return '<div class="scroll">' + tablefmt.html_table(df, bold_cells=bold, numeric=list(numeric)) + "</div>"


def _table(df: pd.DataFrame, *, bold: set[tuple[int, str]] | None = None, numeric: Iterable[str] = ()) -> str:
    """`_box`, folded when the table is long."""
    box = _box(df, bold=bold, numeric=numeric)
    if len(df) <= FOLD_ROWS:
        return box
    return f'<details class="fold"><summary>Show all {len(df):,} rows</summary>{box}</details>'



def _html_kv(facts: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    return f'<table class="tbl kv">{rows}</table>'


def _slug(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def _h2(title: str) -> str:
    return f'<h2 id="{_slug(title)}">{_e(title)}</h2>'


def _toc(parts: Sequence[str]) -> str:
    """Links to every section heading made by `_h2`."""
    links = [f'<a href="#{m.group(1)}">{m.group(2)}</a>'
             for p in parts for m in re.finditer(r'<h2 id="([^"]+)">(.*?)</h2>', p)]
    return '<nav class="toc">Sections: ' + " ".join(links) + "</nav>"


def _metric_name(metric: str) -> str:
    label = metric_label(metric)
    return label if label == metric else f"{label} [{metric}]"


def _settings(spec: Mapping[str, Any]) -> str:
    """Config settings as 'key=value' pairs; nested mappings flattened to dotted keys."""
    return ", ".join(f"{k}={_short(v)}" for k, v in _flatten(spec))


def _flatten(spec: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in spec.items():
        if isinstance(v, Mapping) and v:
            out += _flatten(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _short(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        s = "[" + ", ".join(_short(x) for x in v) + "]"
    elif isinstance(v, Mapping):
        s = "{" + ", ".join(f"{k}={_short(x)}" for k, x in v.items()) + "}"
    elif v is None:
        s = "–"
    else:
        s = str(v)
    return s if len(s) <= 80 else s[:77] + "..."


def _footnotes(shown: pd.DataFrame, column: str) -> tuple[pd.DataFrame, list[str]]:
    """Move a column of repeated notes under the table: one sentence when every row has the same
    note, else numbered markers ([1], [2], ...) in the column and a numbered list below."""
    if column not in shown:
        return shown, []
    notes = shown[column].fillna("").astype(str).str.strip()
    distinct = list(dict.fromkeys(n for n in notes if n))
    if not distinct:
        return shown.drop(columns=[column]), []
    if len(distinct) == 1 and (notes != "").all():
        return shown.drop(columns=[column]), [f'<p class="caption">{_e(column)} (every row): {_e(distinct[0])}.</p>']
    shown = shown.copy()
    shown[column] = [f"[{distinct.index(n) + 1}]" if n else "" for n in notes]
    items = "".join(f"<li>{_e(n)}</li>" for n in distinct)
    return shown, [f'<ol class="notes">{items}</ol>']


TOPIC_NUMERIC = ["Rank", "Items", "Share of errors", "Share of items", "Concentration", "FP rate", "FN rate"]


def _topic_display(topics: pd.DataFrame) -> pd.DataFrame:
    """`render.errors_by_topic_display` with whole item counts shown without decimals."""
    shown = render.errors_by_topic_display(topics)
    n = pd.to_numeric(topics["n_items"], errors="coerce").reset_index(drop=True)
    if n.dropna().map(float.is_integer).all():
        shown["Items"] = n.map(tablefmt.format_count)
    return shown


RUN_COLUMNS = {"encoder": "Encoder", "condition": "Condition", "seed": "Seed", "annotator": "Annotator",
               "sampler": "Sampler", "recipe": "Recipe", "device": "Device", "config_hash": "Config hash",
               "n_rounds": "Rounds", "seconds_total": "Seconds"}


def _runs_display(meta: pd.DataFrame, settings: result_settings.AggregateSettings) -> pd.DataFrame:
    """One row per run, in table order (encoder, then condition as configured, then seed)."""
    encoders = list(dict.fromkeys(meta["encoder"].astype(str)))
    encoders = [e for e in settings.encoder_order if e in encoders] + sorted(
        e for e in encoders if e not in settings.encoder_order)
    enc = {e: i for i, e in enumerate(encoders)}
    cond = {c: i for i, c in enumerate(result_settings.ordered_conditions(meta["condition"].astype(str), settings))}
    order = sorted(range(len(meta)), key=lambda i: (enc.get(str(meta["encoder"].iloc[i]), 0),
                                                    cond.get(str(meta["condition"].iloc[i]), 0),
                                                    _sort_key(meta["seed"].iloc[i])))
    rows = meta.iloc[order].reset_index(drop=True)
    shown = pd.DataFrame({label: rows[col] for col, label in RUN_COLUMNS.items() if col in rows})
    if "Seconds" in shown:
        shown["Seconds"] = shown["Seconds"].map(lambda v: tablefmt.format_number(v, 1))
    for col in ("Seed", "Rounds"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: tablefmt.MISSING if tablefmt.is_missing(v) else str(int(v)))
    return shown


def _sort_key(v: Any) -> tuple[int, float, str]:
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def _e(text: Any) -> str:
    return html.escape(str(text))
