"""The aggregation stage: build the result tables from the run directories and write them.

Run directories are read by `llmal.run_results.collect_runs` (re-exported here).
`aggregate_all` is the single entry point the Snakemake rule calls; every table builder is a
plain function of DataFrames so tests reach it without files.

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
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from llmal import tablefmt
from llmal.run_results import RunFileError, collect_runs  # noqa: F401  (re-exported)
from llmal.stats import EXACT_PERMUTATION_MAX_N, EXACT_WILCOXON_MAX_N, holm, paired_comparison
from llmal.tables import ContractError, annotation_cost, write_text
from llmal.tasks.registry import capabilities_of

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


# summary column -> flag column (llmal.confusion.degenerate_predictions) under which it is not ranked
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


# --------------------------------------------------------------------------------------------
# tables


def summary_table(finals: pd.DataFrame, settings: AggregateSettings,
                  metrics: Sequence[Metric] = SUMMARY_METRICS) -> pd.DataFrame:
    """Per condition × encoder over seeds: n_seeds and `<metric>_mean`, `<metric>_sd`."""
    rows = []
    for (cond, enc), g in _groups(finals, settings):
        row: dict[str, Any] = {"condition": cond, "encoder": enc, "n_seeds": int(g["seed"].nunique())}
        for m in metrics:
            vals = pd.to_numeric(g[m.column], errors="coerce") if m.column in g else pd.Series(dtype=float)
            row[f"{m.column}_mean"], row[f"{m.column}_sd"] = _mean_sd(vals)
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


def summary_markdown(summary: pd.DataFrame, positive: str,
                     metrics: Sequence[Metric] = SUMMARY_METRICS) -> str:
    shown = _summary_display(summary, positive, metrics, style="markdown")
    note = (f"Mean ± sd over seeds of the final round; {_positive_note(positive)}. "
            "Best per encoder in bold; rows marked degenerate (a model that predicts one "
            "class for every test item) are never bold. Deterministic repeats (identical test "
            "predictions for every seed) count once: 1 seed, no sd.\n\n")
    return note + tablefmt.markdown_table(shown)


def summary_latex(summary: pd.DataFrame, positive: str, *,
                  metrics: Sequence[Metric] = SUMMARY_METRICS, label: str = "tab:summary") -> str:
    """A booktabs table (needs \\usepackage{booktabs}); best mean per encoder in bold."""
    best = summary_best(summary, metrics)
    ncols = 3 + len(metrics)
    head = ["Encoder", "Condition", "Seeds"] + [tablefmt.escape_latex(m.label.format(pos=positive))
                                               for m in metrics]
    lines = [
        "% generated by llmal.aggregate; requires \\usepackage{booktabs}",
        "\\begin{table*}[t]",
        "\\centering",
        "\\small",
        "\\setlength{\\tabcolsep}{4pt}",
        "\\begin{tabular}{ll" + "r" * (ncols - 2) + "}",
        "\\toprule",
        " & ".join(head) + " \\\\",
        "\\midrule",
    ]
    prev_enc = None
    for i, row in enumerate(summary.itertuples(index=False)):
        r = row._asdict()
        enc = r["encoder"]
        if prev_enc is not None and enc != prev_enc:
            lines.append("\\midrule")
        cells = [tablefmt.escape_latex(enc) if enc != prev_enc else "",
                 tablefmt.escape_latex(r["condition"]), str(int(r["n_seeds"]))]
        prev_enc = enc
        for m in metrics:
            cells.append(tablefmt.latex_mean_sd(r[f"{m.column}_mean"], r[f"{m.column}_sd"],
                                                _decimals(m, r[f"{m.column}_mean"]),
                                                bold=(i, m.column) in best))
        lines.append(" & ".join(cells) + " \\\\")
    caption = (f"Final-round results, mean $\\pm$ sd over seeds. "
               f"{_upper_first(tablefmt.escape_latex(_positive_note(positive)))}. Best mean per encoder in bold "
               f"(lowest for FP, FN, cost and soft cross-entropy).")
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{caption}}}", f"\\label{{{label}}}",
              "\\end{table*}"]
    return "\n".join(lines) + "\n"


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _positive_note(positive: str) -> str:
    return f"positive class: {positive}" if positive else "no positive class (macro and per-class scores)"


def summary_html_frame(summary: pd.DataFrame, positive: str,
                       metrics: Sequence[Metric] = SUMMARY_METRICS) -> tuple[pd.DataFrame, set[tuple[int, str]]]:
    """The summary as display strings plus the (row, display column) cells to set in bold."""
    shown = _summary_display(summary, positive, metrics, style="plain")
    best = {(i, m.label.format(pos=positive)) for i, col in summary_best(summary, metrics)
            for m in metrics if m.column == col}
    return shown, best


def _summary_display(summary: pd.DataFrame, positive: str, metrics: Sequence[Metric], style: str) -> pd.DataFrame:
    best = summary_best(summary, metrics)
    conditions = summary["condition"].astype(str)
    if "degenerate" in summary.columns:
        conditions = conditions.where(~summary["degenerate"].astype(bool),
                                      conditions + " (degenerate)")
    out = pd.DataFrame({"Encoder": summary["encoder"], "Condition": conditions,
                        "Seeds": summary["n_seeds"].astype(int)})
    for m in metrics:
        cells = []
        for i, (mean, sd) in enumerate(zip(summary[f"{m.column}_mean"], summary[f"{m.column}_sd"])):
            text = tablefmt.format_mean_sd(mean, sd, _decimals(m, mean))
            if style == "markdown" and (i, m.column) in best:
                text = f"**{text}**"
            cells.append(text)
        out[m.label.format(pos=positive)] = cells
    return out.reset_index(drop=True)


def _decimals(m: Metric, mean: float) -> int | None:
    if m.decimals == 0 and not tablefmt.is_missing(mean) and not float(mean).is_integer():
        return 1
    return m.decimals


def learning_curve_table(rounds: pd.DataFrame, settings: AggregateSettings) -> pd.DataFrame:
    """Per condition × encoder × round: n_seeds and mean/sd of n_labels, cost_total, f1_macro
    (and of the configured metric when it is another column, and of n_tokens where the runs
    count tokens: task ner)."""
    cols = ["n_labels", "cost_total", "f1_macro"]
    if "n_tokens" in rounds.columns:
        cols.insert(1, "n_tokens")
    if settings.metric not in cols:
        _require_metric(rounds, settings.metric, "rounds.csv")
        cols.append(settings.metric)
    rows = []
    for (cond, enc), g in _groups(rounds, settings):
        for rnd, gr in g.groupby("round", sort=True):
            row: dict[str, Any] = {"condition": cond, "encoder": enc, "round": int(rnd),
                                   "n_seeds": int(gr["seed"].nunique())}
            for c in cols:
                row[f"{c}_mean"], row[f"{c}_sd"] = _mean_sd(gr[c])
            rows.append(row)
    return pd.DataFrame(rows)


def significance_table(finals: pd.DataFrame, settings: AggregateSettings,
                       confidence: float = 0.95) -> pd.DataFrame:
    """Each condition against the reference, per encoder, paired by seed, on `settings.metric`.

    Holm's correction runs over the comparisons within one encoder, separately for the
    Wilcoxon and the t-test p-values.
    """
    metric = settings.metric
    _require_metric(finals, metric, "the final rounds")
    ref = settings.reference
    rows = []
    for enc in _ordered(finals["encoder"].unique(), settings.encoder_order):
        fe = finals[finals["encoder"] == enc]
        ref_vals = fe[fe["condition"] == ref].set_index("seed")[metric].astype(float)
        enc_rows = []
        for cond in _ordered(fe["condition"].unique(), settings.condition_order):
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


def significance_display(sig: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """The significance table as display strings (Markdown and HTML)."""
    metric = str(sig["metric"].iloc[0]) if len(sig) else ""
    ci = f"{int(round(confidence * 100))}% CI"
    return pd.DataFrame({
        "Encoder": sig["encoder"], "Condition": sig["condition"], "vs": sig["reference"],
        "Pairs": sig["n_pairs"].astype(int),
        f"Δ {metric} [{ci}]": [_diff_ci(m, lo, hi) for m, lo, hi in zip(sig["mean_diff"], sig["ci_low"], sig["ci_high"])],
        "p Wilcoxon": sig["p_wilcoxon"].map(tablefmt.format_p),
        "p Wilcoxon (Holm)": sig["p_wilcoxon_holm"].map(tablefmt.format_p),
        "p t-test": sig["p_ttest"].map(tablefmt.format_p),
        "p t-test (Holm)": sig["p_ttest_holm"].map(tablefmt.format_p),
        "Note": sig["note"].fillna(""),
    }).reset_index(drop=True)


def significance_caption(metric: str) -> str:
    return (f"Paired by seed: condition − reference on final-round {metric}, mean difference with a "
            "t-based 95% CI. Wilcoxon signed-rank test, zero differences dropped: exact p up to "
            f"{EXACT_WILCOXON_MAX_N} pairs, exhaustive permutation with tied differences up to "
            f"{EXACT_PERMUTATION_MAX_N} pairs, normal approximation beyond (method in "
            "significance.csv); paired t-test; Holm correction across the comparisons within "
            "each encoder. Final rounds may sit at different budgets: matched_budget.md compares "
            "conditions at common budgets.")


def significance_markdown(sig: pd.DataFrame, confidence: float = 0.95) -> str:
    if sig.empty:
        return "No comparisons: only the reference condition was run.\n"
    return (significance_caption(str(sig["metric"].iloc[0])) + "\n\n"
            + tablefmt.markdown_table(significance_display(sig, confidence)))


def _diff_ci(mean: float, lo: float, hi: float) -> str:
    if tablefmt.is_missing(mean):
        return tablefmt.MISSING
    s = f"{mean:+.3f}"
    if not tablefmt.is_missing(lo):
        s += f" [{lo:+.3f}, {hi:+.3f}]"
    return s


def fpfn_table(finals: pd.DataFrame, settings: AggregateSettings) -> pd.DataFrame:
    """Per condition × encoder: mean/sd of FP and FN, FP/FN ratio (of the means), and mean
    false-positive rate FP/(FP+TN) and false-negative rate FN/(FN+TP)."""
    rows = []
    for (cond, enc), g in _groups(finals, settings):
        fp, fn = g["fp"].astype(float), g["fn"].astype(float)
        fp_mean, fp_sd = _mean_sd(fp)
        fn_mean, fn_sd = _mean_sd(fn)
        rows.append({
            "condition": cond, "encoder": enc, "n_seeds": int(g["seed"].nunique()),
            "fp_mean": fp_mean, "fp_sd": fp_sd, "fn_mean": fn_mean, "fn_sd": fn_sd,
            "fp_fn_ratio": _ratio(fp_mean, fn_mean),
            "fp_rate_mean": _mean_sd(_safe_div(fp, fp + g["tn"].astype(float)))[0],
            "fn_rate_mean": _mean_sd(_safe_div(fn, fn + g["tp"].astype(float)))[0],
        })
    return pd.DataFrame(rows)


def errors_by_topic_table(predictions: pd.DataFrame, finals: pd.DataFrame,
                          settings: AggregateSettings) -> pd.DataFrame:
    """Per condition × encoder × topic, from the final-round test predictions.

    fp_rate = FP / items whose gold is not positive; fn_rate = FN / items whose gold is positive;
    error_rate = (FP + FN) / items; each first per seed, then the mean over seeds.
    error_share = the topic's FP + FN summed over seeds / all FP + FN of that condition × encoder
    (so shares sum to 1 whenever there is any error); item_share likewise for test items;
    concentration = error_share / item_share (above 1: more errors than the topic's size implies).
    rank orders topics by error_share (1 = most); top marks the first `settings.top_topics`.
    """
    pos_idx = finals.set_index(KEYS)["positive_index"]
    p = predictions.join(pos_idx, on=KEYS)
    gold_pos = p["gold"] == p["positive_index"]
    pred_pos = p["pred"] == p["positive_index"]
    p = p.assign(topic=p["topic"].replace("", UNKNOWN_TOPIC), n=1, n_gold_pos=gold_pos.astype(int),
                 n_gold_neg=(~gold_pos).astype(int), fp=(pred_pos & ~gold_pos).astype(int),
                 fn=(~pred_pos & gold_pos).astype(int))
    per_seed = p.groupby(KEYS + ["topic"], sort=False)[["n", "n_gold_pos", "n_gold_neg", "fp", "fn"]].sum()
    per_seed = per_seed.reset_index()
    per_seed["fp_rate"] = _safe_div(per_seed["fp"], per_seed["n_gold_neg"])
    per_seed["fn_rate"] = _safe_div(per_seed["fn"], per_seed["n_gold_pos"])
    per_seed["error_rate"] = _safe_div(per_seed["fp"] + per_seed["fn"], per_seed["n"])
    rows = []
    for (cond, enc), g in _groups(per_seed, settings):
        total_err = float((g["fp"] + g["fn"]).sum())
        total_n = float(g["n"].sum())
        part = []
        for topic, gt in g.groupby("topic", sort=True):
            err = float((gt["fp"] + gt["fn"]).sum())
            item_share = float(gt["n"].sum()) / total_n if total_n else float("nan")
            share = err / total_err if total_err else float("nan")
            part.append({
                "condition": cond, "encoder": enc, "topic": topic, "n_seeds": int(gt["seed"].nunique()),
                "n_items": float(gt["n"].mean()), "fp_mean": float(gt["fp"].mean()),
                "fn_mean": float(gt["fn"].mean()), "fp_rate": float(gt["fp_rate"].mean()),
                "fn_rate": float(gt["fn_rate"].mean()), "error_rate": float(gt["error_rate"].mean()),
                "error_share": share, "item_share": item_share,
                "concentration": _ratio(share, item_share),
            })
        part.sort(key=lambda r: (-(r["error_share"] if not math.isnan(r["error_share"]) else -1), r["topic"]))
        for rank, r in enumerate(part, start=1):
            r["rank"] = rank
            r["top"] = bool(rank <= settings.top_topics and r["error_share"] > 0)
        rows.extend(part)
    columns = ["condition", "encoder", "topic", "rank", "top", "n_seeds", "n_items", "fp_mean", "fn_mean",
               "fp_rate", "fn_rate", "error_rate", "error_share", "item_share", "concentration"]
    return pd.DataFrame(rows, columns=columns)


def errors_by_topic_display(topics: pd.DataFrame) -> pd.DataFrame:
    """The errors-by-topic table as display strings (Markdown and HTML)."""
    return pd.DataFrame({
        "Encoder": topics["encoder"], "Condition": topics["condition"], "Rank": topics["rank"].astype(int),
        "Topic": topics["topic"], "Items": topics["n_items"].map(lambda v: tablefmt.format_number(v, 0 if float(v).is_integer() else 1)),
        "Share of errors": topics["error_share"].map(tablefmt.format_percent),
        "Share of items": topics["item_share"].map(tablefmt.format_percent),
        "Concentration": topics["concentration"].map(lambda v: tablefmt.format_number(v, 2)),
        "FP rate": topics["fp_rate"].map(lambda v: tablefmt.format_number(v, 3)),
        "FN rate": topics["fn_rate"].map(lambda v: tablefmt.format_number(v, 3)),
    }).reset_index(drop=True)


def errors_by_topic_caption(top_k: int) -> str:
    return (f"Top {top_k} topics by share of all test errors (FP + FN, pooled over seeds) per "
            "condition × encoder. Concentration = share of errors / share of test items; "
            "rates are means over seeds (FP rate among gold-negative, FN rate among gold-positive "
            "items of the topic).")


def errors_by_topic_markdown(topics: pd.DataFrame, top_k: int) -> str:
    top = topics[topics["top"]]
    out = ["## Topics where errors concentrate\n", errors_by_topic_caption(top_k) + "\n",
           tablefmt.markdown_table(errors_by_topic_display(top)) if len(top) else "No errors.\n",
           "\n## All topics\n", tablefmt.markdown_table(errors_by_topic_display(topics))]
    return "\n".join(out)


def fpfn_display(fpfn: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "Encoder": fpfn["encoder"], "Condition": fpfn["condition"], "Seeds": fpfn["n_seeds"].astype(int),
        "FP": [tablefmt.format_mean_sd(m, s, 1) for m, s in zip(fpfn["fp_mean"], fpfn["fp_sd"])],
        "FN": [tablefmt.format_mean_sd(m, s, 1) for m, s in zip(fpfn["fn_mean"], fpfn["fn_sd"])],
        "FP/FN": fpfn["fp_fn_ratio"].map(lambda v: tablefmt.format_number(v, 2)),
        "FP rate": fpfn["fp_rate_mean"].map(lambda v: tablefmt.format_number(v, 3)),
        "FN rate": fpfn["fn_rate_mean"].map(lambda v: tablefmt.format_number(v, 3)),
    }).reset_index(drop=True)


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
# entry point

TABLE_FILES = ("summary.csv", "summary.md", "summary.tex", "learning_curve.csv", "significance.csv",
               "significance.md", "fpfn.csv", "errors_by_topic.csv", "errors_by_topic.md",
               "aulc.csv", "matched_budget.csv", "matched_budget.md",
               "confusion.csv", "confusion.md", "per_class.csv", "per_class.md")


def aggregate_all(run_dirs: Iterable[Path | str], config: Mapping[str, Any], out_tables: Path,
                  out_figures: Path) -> dict[str, Path]:
    """Write every table (TABLE_FILES) under `out_tables` and every figure
    (`llmal.figures.FIGURE_FILES`) under `out_figures`; return {"tables/<name>" |
    "figures/<name>": path}."""
    from llmal import confusion, figures  # matplotlib is only imported when figures are drawn

    out_tables, out_figures = Path(out_tables), Path(out_figures)
    entity_level = capabilities_of(config).entity_level
    rounds, finals, preds = collect_runs(run_dirs)
    settings = AggregateSettings.from_config(config, finals)
    label_names = [str(n) for n in json.loads(finals["label_names"].iloc[0])]
    positive = settings.positive or (str(finals["positive"].iloc[0])
                                     if finals["positive"].notna().iloc[0] else "")
    fair = fair_comparisons(rounds, finals, preds, config, settings)
    finals = fair["finals"]  # deterministic repeats counted once
    conditions = _ordered(finals["condition"].unique(), settings.condition_order)
    if positive:
        metrics: Sequence[Metric] = SUMMARY_METRICS
        summary = fair["summary_marks"](summary_table(finals, settings)).merge(
            confusion.degenerate_predictions(finals, settings), on=["condition", "encoder"], how="left")
        fpfn = fpfn_table(finals, settings)
        topics = errors_by_topic_table(preds, finals, settings)
        fpfn_fig, topics_fig, fig_conditions = fpfn, topics, conditions
    else:  # any number of classes: FP/FN and topic errors per class, one against the rest
        # entity-level tasks: the classes are the entity types (the last label, "O", is no entity),
        # and the rows of predictions.parquet are entities (FP = spurious, FN = missed, per type)
        classes = label_names[:-1] if entity_level else label_names
        metrics = ner_summary_metrics(classes) if entity_level else \
            confusion.summary_metrics(label_names)
        summary = fair["summary_marks"](summary_table(finals, settings, metrics))
        fpfn = confusion.per_class_fpfn(finals, preds, settings, classes)
        topics = confusion.per_class_topics(preds, finals, settings, classes)
        fpfn_fig, fig_conditions = confusion.flatten_classes(fpfn)
        topics_fig, _ = confusion.flatten_classes(topics)
    curve = learning_curve_table(rounds, settings)
    sig = significance_table(finals, settings)
    conf = confusion.confusion_table(preds, settings, label_names)
    per_class = confusion.per_class_table(
        finals, settings, label_names[:-1] if entity_level else label_names)
    with_topics = confusion.has_topics(preds)

    written: dict[str, Path] = {}

    def put(name: str, text: str) -> None:
        path = out_tables / name
        write_text(path, text)
        written[f"tables/{name}"] = path

    put("summary.csv", summary.to_csv(index=False))
    put("summary.md", summary_markdown(summary, positive, metrics))
    put("summary.tex", summary_latex(summary, positive, metrics=metrics))
    put("learning_curve.csv", curve.to_csv(index=False))
    put("significance.csv", sig.to_csv(index=False))
    put("significance.md", significance_markdown(sig))
    put("fpfn.csv", fpfn.to_csv(index=False))
    put("errors_by_topic.csv", topics.to_csv(index=False))
    put("errors_by_topic.md", errors_by_topic_markdown(topics, settings.top_topics) if with_topics
        else NO_TOPIC_NOTE + "\n")
    put("aulc.csv", fair["aulc"].to_csv(index=False))
    put("matched_budget.csv", fair["matched"].to_csv(index=False))
    put("matched_budget.md", fair["matched_md"])
    put("confusion.csv", conf.to_csv(index=False))
    put("confusion.md", confusion.confusion_markdown(conf, label_names))
    put("per_class.csv", per_class.to_csv(index=False))
    put("per_class.md", confusion.per_class_markdown(per_class))

    drawn = figures.draw_all(curve, fpfn_fig, topics_fig, out_figures, conditions=conditions,
                             metric=settings.metric, fpfn_conditions=fig_conditions,
                             **fair["figure_args"])
    if not with_topics:
        drawn.update({p.name: p for p in confusion.placeholder_figure(out_figures / "errors_by_topic",
                                                                      NO_TOPIC_NOTE)})
    drawn.update({p.name: p for p in confusion.confusion_figure(conf, out_figures / "confusion", label_names)})
    for name, path in drawn.items():
        written[f"figures/{name}"] = path
    return written


def fair_comparisons(rounds: pd.DataFrame, finals: pd.DataFrame, preds: pd.DataFrame,
                     config: Mapping[str, Any], settings: AggregateSettings) -> dict[str, Any]:
    """llmal.comparisons for aggregate_all: finals with deterministic repeats counted once,
    a function marking the summary (degenerate rows, optional bootstrap CI), the AULC and
    matched-budget tables, and the extra figure arguments."""
    from llmal import comparisons as cmp

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

    aulc = cmp.aulc_table(rounds, settings.metric, groups)
    matched = cmp.matched_budget_table(rounds, cs, groups)
    conds = config.get("conditions") or {}
    return {
        "finals": cmp.collapse_deterministic(finals, groups), "summary_marks": summary_marks,
        "aulc": aulc, "matched": matched, "matched_md": cmp.matched_budget_markdown(matched, cs),
        "figure_args": {
            "log_x": cs.log_x, "degenerate": {k for k, v in bad.items() if v},
            "aulc": cmp.aulc_summary(aulc, settings.condition_order),
            "strategy_of": {c: str(v.get("sampler", "")) for c, v in conds.items()},
            "annotator_of": {c: str(v.get("annotator", "")) for c, v in conds.items()}},
    }


NO_TOPIC_NOTE = "No topic column in the dataset: no errors-by-topic view."


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


# --------------------------------------------------------------------------------------------
# helpers


def ordered_conditions(values: Iterable[str], settings: AggregateSettings) -> list[str]:
    return _ordered(values, settings.condition_order)


def _ordered(values: Iterable[str], preferred: Sequence[str]) -> list[str]:
    vals = list(dict.fromkeys(str(v) for v in values))
    known = [v for v in preferred if v in vals]
    return known + sorted(v for v in vals if v not in preferred)


def _groups(df: pd.DataFrame, settings: AggregateSettings):
    """(condition, encoder), sub-frame in table order: encoder-major, then condition."""
    for enc in _ordered(df["encoder"].unique(), settings.encoder_order):
        de = df[df["encoder"] == enc]
        for cond in _ordered(de["condition"].unique(), settings.condition_order):
            yield (cond, enc), de[de["condition"] == cond]


def _mean_sd(values: pd.Series) -> tuple[float, float]:
    v = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    if v.empty:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) >= 2 else float("nan")


def _ratio(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return float("nan")
    if b == 0:
        return float("nan") if a == 0 else float("inf")
    return a / b


def _safe_div(a: pd.Series, b: pd.Series) -> pd.Series:
    a, b = a.astype(float), b.astype(float)
    return (a / b.where(b != 0)).astype(float)


def _require_metric(df: pd.DataFrame, metric: str, where: str) -> None:
    if metric not in df.columns:
        numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
        raise ContractError(f"config key aggregate.metric: {metric!r} is not a column of {where} "
                            f"(numeric columns: {numeric})")
