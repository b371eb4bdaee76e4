"""The figures of the aggregate tables, drawn paper-ready (PNG at 200 dpi and SVG with editable text).

Figures are drawn on `matplotlib.figure.Figure` objects directly (no pyplot, no global state, no
display needed: the Agg and SVG backends render them). Each condition keeps one colour in every
figure (`condition_colors`).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib
import matplotlib.text
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

FIGURE_NAMES = ("learning_curve", "learning_curve_cost", "fpfn", "errors_by_topic", "aulc", "confusion")
FIGURE_FORMATS = ("png", "svg", "pdf")   # pdf: one paper column wide (PAPER_COLUMN_IN)
FIGURE_FILES = tuple(f"{n}.{ext}" for n in FIGURE_NAMES for ext in FIGURE_FORMATS)
PAPER_COLUMN_IN = 3.5      # the width of one column of a two-column paper (ACL, IEEE), inches
PAPER_TEXT_IN = 7.0        # the full text width, for figures whose panels do not fit one column
# drawn too where the learning-curve table has tokens (task ner: rounds.csv's n_tokens)
TOKEN_FIGURE_FILES = tuple(f"learning_curve_tokens.{ext}" for ext in FIGURE_FORMATS)
PNG_DPI = 200
MAX_TOPICS = 20          # the heatmap shows at most this many topics (largest error share first)
LOG_X_SPAN = 100.0       # cost axis turns logarithmic when costs span this factor or more
LEGEND_ROOM_IN = 0.6     # inches _panels adds below the panels for a legend

STYLE = {
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
    "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6,
    "lines.linewidth": 1.6, "svg.fonttype": "none", "svg.hashsalt": "llmal",
    "font.family": "sans-serif",
}

METRIC_LABELS = {"f1_macro": "F1 (macro)", "accuracy": "Accuracy", "soft_ce": "Soft cross-entropy",
                 "soft_brier": "Soft Brier score"}


def condition_colors(conditions: Sequence[str]) -> dict[str, tuple]:
    """One colour per condition, in the given order (tab10, tab20 beyond ten conditions)."""
    cmap = matplotlib.colormaps["tab10" if len(conditions) <= 10 else "tab20"]
    return {c: cmap(i % cmap.N) for i, c in enumerate(conditions)}


def bar_colors(bars: Sequence[str], colors: dict[str, tuple]) -> dict[str, tuple]:
    """The colour of each bar: its condition's (a bar "condition [class]" of a task without a
    positive class belongs to `condition`), so a condition has one colour in every figure."""
    out = {}
    for bar in bars:
        owner = max((c for c in colors if bar == c or bar.startswith(c + " [")), key=len, default=None)
        out[bar] = colors[owner] if owner is not None else condition_colors(list(bars))[bar]
    return out


def metric_label(metric: str) -> str:
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    for prefix, name in (("f1_", "F1"), ("precision_", "Precision"), ("recall_", "Recall")):
        if metric.startswith(prefix):
            return f"{name} ({metric[len(prefix):]})"
    return metric


def draw_all(curve: pd.DataFrame, fpfn: pd.DataFrame, topics: pd.DataFrame, out_dir: Path, *,
             conditions: Sequence[str], metric: str = "f1_macro", log_x: bool = False,
             degenerate: Iterable[tuple[str, str]] = (), aulc: pd.DataFrame | None = None,
             strategy_of: dict[str, str] | None = None,
             annotator_of: dict[str, str] | None = None,
             fpfn_conditions: Sequence[str] | None = None) -> dict[str, Path]:
    """Draw every figure of FIGURE_FILES (and TOKEN_FIGURE_FILES where `curve` has tokens) into
    `out_dir`; return {file name: path}.

    log_x: logarithmic label axis; degenerate: (condition, encoder) rows drawn apart in the
    FP/FN figure; aulc: llmal.results.comparisons.aulc_summary, drawn by strategy and annotator;
    `fpfn_conditions`: the bars of the FP/FN and topic figures when they are not the conditions
    (one per condition and class without a positive class)."""
    out_dir = Path(out_dir)
    colors = condition_colors(conditions)
    bars = list(fpfn_conditions) if fpfn_conditions is not None else list(conditions)
    paths: list[Path] = []
    paths += learning_curve_figure(curve, out_dir / "learning_curve", colors=colors, x="n_labels",
                                   metric=metric, log_x=log_x)
    paths += learning_curve_figure(curve, out_dir / "learning_curve_cost", colors=colors, x="cost_total", metric=metric)
    if "n_tokens_mean" in curve.columns:
        paths += learning_curve_figure(curve, out_dir / "learning_curve_tokens", colors=colors,
                                       x="n_tokens", metric=metric, log_x=log_x)
    paths += fpfn_figure(fpfn, out_dir / "fpfn", colors=bar_colors(bars, colors), degenerate=set(degenerate))
    paths += errors_by_topic_figure(topics, out_dir / "errors_by_topic", conditions=bars)
    aulc = aulc if aulc is not None else pd.DataFrame(columns=["condition", "encoder"])
    paths += aulc_figure(aulc, out_dir / "aulc", strategy_of=strategy_of or {},
                         annotator_of=annotator_of or {})
    return {p.name: p for p in paths}


def learning_curve_figure(curve: pd.DataFrame, out_base: Path, *, colors: dict[str, tuple],
                          x: str = "n_labels", metric: str = "f1_macro",
                          log_x: bool = False) -> list[Path]:
    """The figure of draw_learning_curve, saved as PNG and SVG."""
    with matplotlib.rc_context(STYLE):
        return _save(draw_learning_curve(curve, colors=colors, x=x, metric=metric, log_x=log_x),
                     out_base)


def draw_learning_curve(curve: pd.DataFrame, *, colors: dict[str, tuple], x: str = "n_labels",
                        metric: str = "f1_macro", log_x: bool = False) -> Figure:
    """Mean `metric` per round against mean labels (x="n_labels"), mean tokens of the
    sentences bought (x="n_tokens", task ner) or mean dollars spent (x="cost_total"), ±1 sd
    band over seeds; one panel per encoder. A one-round condition (the full pool) is a dashed
    horizontal reference line across the panel, not a lone point; the x axis is logarithmic
    with `log_x`, and for dollars whenever they span two orders. The legend of the conditions
    sits below the panels in as many columns as fit the figure's width (llmal.report.figures._legend_below)."""
    encoders = list(dict.fromkeys(curve["encoder"]))
    with matplotlib.rc_context(STYLE):
        fig, axes = _panels(len(encoders), width=3.8, height=3.0, sharey=True)
        log_x = log_x or (x == "cost_total" and _spans_orders(curve[f"{x}_mean"]))
        for ax, enc in zip(axes, encoders):
            de = curve[curve["encoder"] == enc]
            for cond, color in colors.items():
                g = de[de["condition"] == cond].sort_values("round")
                if g.empty:
                    continue
                xs = g[f"{x}_mean"].to_numpy(float)
                ys = g[f"{metric}_mean"].to_numpy(float)
                sd = np.nan_to_num(g[f"{metric}_sd"].to_numpy(float))
                if len(g) == 1:
                    ax.axhline(ys[0], color=color, linestyle="--", linewidth=1.2, label=cond)
                    ax.annotate(f"{cond}: one round at {xs[0]:,.4g}", (1.0, ys[0]),
                                xycoords=("axes fraction", "data"), xytext=(-2, 2),
                                textcoords="offset points", ha="right", va="bottom",
                                fontsize=7.5, color=color)
                    if sd[0] > 0:
                        ax.axhspan(ys[0] - sd[0], ys[0] + sd[0], color=color, alpha=0.12,
                                   linewidth=0)
                else:
                    ax.plot(xs, ys, marker="o", ms=3, color=color, label=cond)
                    ax.fill_between(xs, ys - sd, ys + sd, color=color, alpha=0.18, linewidth=0)
            ax.set_title(f"Encoder: {enc}")
            if x == "cost_total":
                ax.set_xlabel("Cost (US$, cumulative: labels, dev, gold sets)")
                if log_x:
                    _set_log_x(ax, curve[f"{x}_mean"])
                ax.xaxis.set_major_formatter(FuncFormatter(_dollars))
            else:
                ax.set_xlabel("Tokens of the sentences acquired (count)" if x == "n_tokens"
                              else "Sentences acquired (count)" if "n_tokens_mean" in curve.columns
                              else "Labels acquired (count)")   # a curve with tokens: task ner
                if log_x:
                    _set_log_x(ax, curve[f"{x}_mean"])
        axes[0].set_ylabel(f"{metric_label(metric)}, test set")
        _legend_below(fig, axes, colors)
        return fig


def fpfn_figure(fpfn: pd.DataFrame, out_base: Path, *, colors: dict[str, tuple],
                degenerate: set[tuple[str, str]] = frozenset()) -> list[Path]:  # type: ignore[assignment]
    """Grouped bars: mean FP (solid) and FN (hatched) per condition, ±1 sd; panel per encoder.

    Degenerate rows (a model predicting one class for every item) are drawn apart: grey, at
    the right, and cut at the scale of the others with their value written on the bar, so one
    such model's hundreds of errors do not flatten everyone else's bars."""
    keys = list(zip(fpfn["condition"], fpfn["encoder"]))
    is_bad = np.array([k in degenerate for k in keys], dtype=bool)
    if is_bad.any() and not is_bad.all():
        ok = fpfn[~is_bad]
        top = float(np.nanmax(np.r_[ok["fp_mean"] + np.nan_to_num(ok["fp_sd"].astype(float)),
                                    ok["fn_mean"] + np.nan_to_num(ok["fn_sd"].astype(float))]))
        cap = max(top, 1.0) * 1.25
        return _fpfn_bars(fpfn, out_base, colors=colors, degenerate=degenerate, cap=cap)
    return _fpfn_bars(fpfn, out_base, colors=colors, degenerate=set(), cap=None)


def _fpfn_bars(fpfn: pd.DataFrame, out_base: Path, *, colors: dict[str, tuple],
               degenerate: set[tuple[str, str]], cap: float | None) -> list[Path]:
    encoders = list(dict.fromkeys(fpfn["encoder"]))
    n_cond = max(1, int(fpfn.groupby("encoder")["condition"].nunique().max()))
    with matplotlib.rc_context(STYLE):
        fig, axes = _panels(len(encoders), width=max(3.2, 0.75 * n_cond + 1.4), height=3.2, sharey=True)
        width = 0.38
        for ax, enc in zip(axes, encoders):
            de = fpfn[fpfn["encoder"] == enc]
            conds = [c for c in colors if c in set(de["condition"])]
            bad = [c for c in conds if (c, enc) in degenerate]
            conds = [c for c in conds if c not in bad] + bad          # degenerate ones at the right
            de = de.set_index("condition").loc[conds]
            pos = np.arange(len(conds))
            cols = [("0.6" if c in bad else colors[c]) for c in conds]
            fp, fn = de["fp_mean"].to_numpy(float), de["fn_mean"].to_numpy(float)
            shown_fp, shown_fn = (fp, fn) if cap is None else (np.minimum(fp, cap), np.minimum(fn, cap))
            fp_sd = np.where(shown_fp < fp, 0, np.nan_to_num(de["fp_sd"].to_numpy(float)))
            fn_sd = np.where(shown_fn < fn, 0, np.nan_to_num(de["fn_sd"].to_numpy(float)))
            ax.bar(pos - width / 2, shown_fp, width, yerr=fp_sd,
                   color=cols, edgecolor=cols, capsize=2.5, error_kw={"elinewidth": 0.9})
            ax.bar(pos + width / 2, shown_fn, width, yerr=fn_sd,
                   color="white", edgecolor=cols, hatch="////", linewidth=1.0, capsize=2.5,
                   error_kw={"elinewidth": 0.9})
            for i, (real, shown) in enumerate(zip(np.r_[fp, fn], np.r_[shown_fp, shown_fn])):
                if shown < real:
                    xpos = pos[i % len(pos)] + (-width / 2 if i < len(pos) else width / 2)
                    ax.text(xpos, shown, f"{real:.0f}↑", ha="center", va="bottom", fontsize=7.5)
            ax.set_xticks(pos, [f"{c} (degenerate)" if c in bad else c for c in conds],
                          rotation=30, ha="right")
            if bad:
                ax.axvline(len(conds) - len(bad) - 0.5, color="0.5", linestyle=":", linewidth=1)
            ax.set_title(f"Encoder: {enc}")
            ax.grid(axis="x", visible=False)
            ax.set_ylim(bottom=0, top=None if cap is None else cap * 1.08)
        axes[0].set_ylabel("Test errors (count, mean over seeds)")
        fig.legend(handles=[Patch(facecolor="0.45", edgecolor="0.45", label="False positives (FP)"),
                            Patch(facecolor="white", edgecolor="0.45", hatch="////",
                                  label="False negatives (FN)")],
                   loc="outside lower center", ncol=2, frameon=False)
        return _save(fig, out_base)


def aulc_figure(aulc: pd.DataFrame, out_base: Path, *, strategy_of: dict[str, str],
                annotator_of: dict[str, str]) -> list[Path]:
    """Normalised AULC over labels by strategy (x) and annotator (bar colour), ±1 sd over runs;
    one panel per encoder. One-round conditions (the full pool) are dashed lines in their
    annotator's colour."""
    encoders = list(dict.fromkeys(aulc["encoder"])) or [""]
    frame = aulc.assign(strategy=[strategy_of.get(c, c) for c in aulc["condition"]],
                        annotator=[annotator_of.get(c, c) for c in aulc["condition"]])
    # two conditions of one annotator and strategy (e.g. another training recipe): one bar each
    twice = frame.duplicated(["encoder", "annotator", "strategy"], keep=False)
    frame.loc[twice, "strategy"] = frame.loc[twice, "strategy"] + " (" + frame.loc[twice, "condition"] + ")"
    annotators = list(dict.fromkeys(frame["annotator"]))
    cmap = matplotlib.colormaps["tab10"]
    acolor = {a: cmap(i % 10) for i, a in enumerate(annotators)}
    with matplotlib.rc_context(STYLE):
        curves = frame[~frame["single_round"].astype(bool)] if len(frame) else frame
        strategies = list(dict.fromkeys(curves["strategy"])) if len(curves) else []
        fig, axes = _panels(len(encoders), width=max(3.6, 0.55 * len(strategies) * max(1, len(annotators)) + 1.6),
                            height=3.2, sharey=True)
        width = 0.8 / max(1, len(annotators))
        for ax, enc in zip(axes, encoders):
            de = frame[frame["encoder"] == enc]
            for j, ann in enumerate(annotators):
                da = de[(de["annotator"] == ann) & ~de["single_round"].astype(bool)]
                da = da.set_index("strategy").reindex(strategies)
                pos = np.arange(len(strategies)) - 0.4 + width * (j + 0.5)
                ax.bar(pos, da["aulc_labels_mean"].to_numpy(float), width,
                       yerr=np.nan_to_num(da["aulc_labels_sd"].to_numpy(float)),
                       color=acolor[ann], capsize=2, error_kw={"elinewidth": 0.8})
                for v in de[(de["annotator"] == ann) & de["single_round"].astype(bool)]["aulc_labels_mean"]:
                    ax.axhline(float(v), color=acolor[ann], linestyle="--", linewidth=1.1)
            ax.set_xticks(np.arange(len(strategies)), strategies, rotation=30, ha="right")
            ax.set_title(f"Encoder: {enc}" if enc else "No runs")
            ax.grid(axis="x", visible=False)
            vals = de["aulc_labels_mean"].to_numpy(float)
            if np.isfinite(vals).any():
                lo = float(np.nanmin(vals - np.nan_to_num(de["aulc_labels_sd"].to_numpy(float))))
                ax.set_ylim(bottom=max(0.0, lo - 0.05))
        axes[0].set_ylabel("AULC over labels (normalised)")
        handles = [Patch(facecolor=acolor[a], label=a) for a in annotators]
        if handles:
            _fitted_legend(fig, handles, [h.get_label() for h in handles], max_cols=4)
        return _save(fig, out_base)


def errors_by_topic_figure(topics: pd.DataFrame, out_base: Path, *, conditions: Sequence[str]) -> list[Path]:
    """Heatmap of the test error rate (FP + FN) / items per topic × condition, panel per encoder.

    Topics are ordered by their mean share of errors; at most MAX_TOPICS are shown.
    """
    encoders = list(dict.fromkeys(topics["encoder"]))
    order = (topics.groupby("topic")["error_share"].mean().fillna(0)
             .sort_values(ascending=False, kind="stable"))
    shown_topics = list(order.index[:MAX_TOPICS])
    conds = [c for c in conditions if c in set(topics["condition"])]
    vmax = float(np.nanmax(topics["error_rate"].to_numpy(float))) if len(topics) else 1.0
    vmax = vmax if vmax > 0 and not math.isnan(vmax) else 1.0
    with matplotlib.rc_context({**STYLE, "axes.grid": False}):
        fig, axes = _panels(len(encoders), width=max(3.6, 0.7 * len(conds) + 2.2),
                            height=max(2.4, 0.32 * len(shown_topics) + 1.6), sharey=True)
        image = None
        for ax, enc in zip(axes, encoders):
            de = topics[topics["encoder"] == enc]
            grid = (de.pivot_table(index="topic", columns="condition", values="error_rate", aggfunc="mean")
                    .reindex(index=shown_topics, columns=conds))
            values = grid.to_numpy(float)
            image = ax.imshow(np.ma.masked_invalid(values), cmap="Reds", vmin=0, vmax=vmax, aspect="auto")
            if values.size <= 300:
                for (i, j), v in np.ndenumerate(values):
                    if not math.isnan(v):
                        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7.5,
                                color="white" if v > 0.6 * vmax else "black")
            ax.set_xticks(range(len(conds)), conds, rotation=35, ha="right")
            ax.set_yticks(range(len(shown_topics)), shown_topics)
            ax.set_title(f"Encoder: {enc}")
            for side in ("top", "right", "left", "bottom"):
                ax.spines[side].set_visible(False)
        axes[0].set_ylabel("Topic")
        if image is not None:
            cbar = fig.colorbar(image, ax=list(axes), shrink=0.85, pad=0.02)
            cbar.set_label("Error rate, (FP + FN) / items")
        if shown_topics == ["(unknown)"]:
            fig.suptitle("No topic information in the test predictions", fontsize=10)
        return _save(fig, out_base)


def confusion_figure(conf: pd.DataFrame, out_base: Path, label_names: Sequence[str]) -> list[Path]:
    """A row-normalised heatmap per condition × encoder (PNG and SVG) of
    llmal.results.confusion.confusion_table."""
    panels = list(dict.fromkeys(zip(conf["encoder"], conf["condition"])))
    k = len(label_names)
    with matplotlib.rc_context(STYLE):
        fig, axes = _panels(len(panels), width=1.2 + 0.7 * k, height=1.0 + 0.6 * k, sharey=False)
        image = None
        for ax, (enc, cond) in zip(axes, panels):
            g = conf[(conf["encoder"] == enc) & (conf["condition"] == cond)].set_index(["gold", "pred"])
            share = np.array([[g.loc[(a, b), "share_of_gold"] for b in label_names] for a in label_names], float)
            count = np.array([[g.loc[(a, b), "count_mean"] for b in label_names] for a in label_names], float)
            image = ax.imshow(np.ma.masked_invalid(share), cmap="Blues", vmin=0, vmax=1)
            for (i, j), v in np.ndenumerate(share):
                if not math.isnan(v):
                    ax.text(j, i, f"{count[i, j]:.0f}", ha="center", va="center", fontsize=7.5,
                            color="white" if v > 0.6 else "black")
            ax.set_xticks(range(k), list(label_names), rotation=35, ha="right")
            ax.set_yticks(range(k), list(label_names))
            ax.set_xlabel("Predicted")
            ax.set_title(f"{cond} ({enc})", fontsize=9)
            ax.grid(False)
        axes[0].set_ylabel("Gold")
        if image is not None:
            fig.colorbar(image, ax=list(axes), shrink=0.85, pad=0.02).set_label("Share of the gold class")
        return _save(fig, out_base)


def placeholder_figure(out_base: Path, text: str) -> list[Path]:
    """A small figure that says why there is nothing to draw (the file still exists)."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(4.5, 1.2))
        fig.text(0.5, 0.5, text, ha="center", va="center")
        return _save(fig, out_base)


# --------------------------------------------------------------------------------------------


def _panels(n: int, *, width: float, height: float, sharey: bool) -> tuple[Figure, list]:
    n = max(1, n)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows + LEGEND_ROOM_IN), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _legend_below(fig: Figure, axes: Iterable, colors: dict[str, tuple]) -> None:
    handles, labels = {}, []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    labels = [c for c in colors if c in handles]
    if labels:
        _fitted_legend(fig, [handles[c] for c in labels], labels, max_cols=5, title="Condition")


LEGEND_MARGIN_IN = 0.1   # inches kept free left and right of a legend below the panels


def _fitted_legend(fig: Figure, handles: Sequence, labels: Sequence[str], *, max_cols: int,
                   **kwargs) -> None:
    """A legend below the panels (constrained layout's "outside lower center") with the most
    columns, up to max_cols, that fit the figure's width, measured on the drawn legend; the
    figure widens when even one column does not fit, and grows taller by what the legend needs
    beyond the room _panels left, so no entry is ever cut off."""
    width = height = 0.0
    for ncol in range(min(max_cols, len(labels)), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False,
                            **kwargs)
        fig.draw_without_rendering()
        box = legend.get_window_extent()
        width, height = box.width / fig.dpi, box.height / fig.dpi
        if width <= fig.get_figwidth() - 2 * LEGEND_MARGIN_IN or ncol == 1:
            break
        legend.remove()
    if width > fig.get_figwidth() - 2 * LEGEND_MARGIN_IN:
        fig.set_figwidth(width + 2 * LEGEND_MARGIN_IN)
    if height > LEGEND_ROOM_IN:
        fig.set_figheight(fig.get_figheight() + height - LEGEND_ROOM_IN)


def _spans_orders(values: pd.Series) -> bool:
    v = values.to_numpy(float)
    v = v[np.isfinite(v) & (v > 0)]
    return v.size >= 2 and v.max() / v.min() >= LOG_X_SPAN


def _set_log_x(ax, values: pd.Series) -> None:
    v = values.to_numpy(float)
    if (v[np.isfinite(v)] <= 0).any():
        ax.set_xscale("symlog", linthresh=float(v[v > 0].min()))
    else:
        ax.set_xscale("log")


def _dollars(value: float, _pos: int) -> str:
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.0f}" if float(value).is_integer() else f"${value:,.2f}"
    return f"${value:.2g}"


def _save(fig: Figure, out_base: Path) -> list[Path]:
    out_base = Path(out_base)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    png, svg, pdf = (out_base.with_suffix(f".{ext}") for ext in FIGURE_FORMATS)
    fig.savefig(png, dpi=PNG_DPI, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None})
    _column_sized(fig)
    fig.savefig(pdf, metadata={"CreationDate": None, "Creator": None, "Producer": None})
    return [png, svg, pdf]


def _column_sized(fig: Figure) -> None:
    """Shrink `fig` to one paper column (PAPER_COLUMN_IN wide, same aspect), its text with it
    (not below 5 pt) and its legends laid out anew, so the PDF goes into a paper at 100 %. A
    figure whose panels would collapse at that width gets the full text width (PAPER_TEXT_IN)."""
    width, height = fig.get_size_inches()
    if width <= PAPER_COLUMN_IN:
        return
    legends = [(lg.legend_handles, [x.get_text() for x in lg.get_texts()], lg.get_title().get_text())
               for lg in fig.legends]
    for legend in list(fig.legends):
        legend.remove()
    sizes = [(text, text.get_fontsize()) for text in fig.findobj(matplotlib.text.Text)]
    for target in (PAPER_COLUMN_IN, PAPER_TEXT_IN):
        scale = min(1.0, target / width)
        for legend in list(fig.legends):
            legend.remove()
        for text, size in sizes:
            text.set_fontsize(max(5.0, size * scale))
        fig.set_size_inches(target, height * scale)
        small = max(5.0, STYLE["legend.fontsize"] * scale)
        with warnings.catch_warnings(record=True) as caught, matplotlib.rc_context(
                {"legend.fontsize": small, "legend.title_fontsize": small}):
            warnings.simplefilter("always", UserWarning)   # constrained layout giving up = too narrow
            for handles, labels, title in legends:
                _fitted_legend(fig, handles, labels, max_cols=5, **({"title": title} if title else {}))
            fig.set_size_inches(target, fig.get_figheight())
            fig.draw_without_rendering()
        if not any("constrained_layout not applied" in str(w.message) for w in caught):
            return


ROLE_MARKERS = {"human": "s", "machine": "o", "routed": "D"}


def frontier_figure(table: pd.DataFrame, out_base: Path, *, metric: str = "f1_macro") -> list[Path]:
    """The cost-quality frontier (llmal.results.frontier): one panel per encoder, every condition
    at its mean cost_total (log x) and mean test metric; marker by what labels it buys (human,
    machine, routed), filled for AL samplers and hollow for random/full; the Pareto front as a
    step line through its points, the cheapest condition near the best ringed."""
    encoders = list(dict.fromkeys(table["encoder"]))
    conditions = list(dict.fromkeys(table["condition"]))
    colors = condition_colors(conditions)
    with matplotlib.rc_context(STYLE):
        fig, axes = _panels(len(encoders), width=4.6, height=3.6, sharey=True)
        for ax, enc in zip(axes, encoders):
            g = table[table["encoder"] == enc]
            for _, r in g.iterrows():
                al = r["sampler"] not in ("random", "full")
                ax.scatter([r["cost_total_mean"]], [r["metric_mean"]], s=46, zorder=3,
                           marker=ROLE_MARKERS.get(str(r["role"]), "o"), label=r["condition"],
                           facecolors=colors[r["condition"]] if al else "none",
                           edgecolors=colors[r["condition"]], linewidths=1.4)
                if r["cheapest_within_best"]:
                    ax.scatter([r["cost_total_mean"]], [r["metric_mean"]], s=190, marker="o",
                               facecolors="none", edgecolors="black", linewidths=0.9, zorder=2)
            front = g[g["pareto"]].sort_values("cost_total_mean")
            if len(front):
                ax.step(front["cost_total_mean"], front["metric_mean"], where="post", color="black",
                        linewidth=1.0, linestyle="--", zorder=1, label="Pareto front")
            costs = g["cost_total_mean"]
            if (costs > 0).all():
                ax.set_xscale("log")
            else:
                _set_log_x(ax, costs)
            ax.xaxis.set_major_formatter(FuncFormatter(_dollars))
            ax.set_title(str(enc))
            ax.set_xlabel("cost_total (US$, log scale)")
            ax.set_ylabel(f"Test {metric_label(metric)}")
        _legend_below(fig, axes, {**colors, "Pareto front": (0, 0, 0, 1)})
        return _save(fig, out_base)
