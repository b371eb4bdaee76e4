"""Paper-ready figures of the aggregate tables (PNG at 200 dpi and SVG with editable text).

Figures are drawn on `matplotlib.figure.Figure` objects directly (no pyplot, no global state, no
display needed: the Agg and SVG backends render them). Each condition keeps one colour in every
figure (`condition_colors`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

FIGURE_FILES = ("learning_curve.png", "learning_curve.svg", "learning_curve_cost.png",
                "learning_curve_cost.svg", "fpfn.png", "fpfn.svg", "errors_by_topic.png",
                "errors_by_topic.svg", "confusion.png", "confusion.svg")  # confusion: llmal.confusion
PNG_DPI = 200
MAX_TOPICS = 20          # the heatmap shows at most this many topics (largest error share first)
LOG_X_SPAN = 100.0       # cost axis turns logarithmic when costs span this factor or more

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


def metric_label(metric: str) -> str:
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    for prefix, name in (("f1_", "F1"), ("precision_", "Precision"), ("recall_", "Recall")):
        if metric.startswith(prefix):
            return f"{name} ({metric[len(prefix):]})"
    return metric


def draw_all(curve: pd.DataFrame, fpfn: pd.DataFrame, topics: pd.DataFrame, out_dir: Path, *,
             conditions: Sequence[str], metric: str = "f1_macro",
             fpfn_conditions: Sequence[str] | None = None) -> dict[str, Path]:
    """Draw every figure of FIGURE_FILES into `out_dir`; return {file name: path}.
    `fpfn_conditions`: the bars of the FP/FN and topic figures when they are not the conditions
    (one per condition and class without a positive class)."""
    out_dir = Path(out_dir)
    colors = condition_colors(conditions)
    bars = list(fpfn_conditions) if fpfn_conditions is not None else list(conditions)
    paths: list[Path] = []
    paths += learning_curve_figure(curve, out_dir / "learning_curve", colors=colors, x="n_labels", metric=metric)
    paths += learning_curve_figure(curve, out_dir / "learning_curve_cost", colors=colors, x="cost_usd", metric=metric)
    paths += fpfn_figure(fpfn, out_dir / "fpfn", colors=condition_colors(bars))
    paths += errors_by_topic_figure(topics, out_dir / "errors_by_topic", conditions=bars)
    return {p.name: p for p in paths}


def learning_curve_figure(curve: pd.DataFrame, out_base: Path, *, colors: dict[str, tuple],
                          x: str = "n_labels", metric: str = "f1_macro") -> list[Path]:
    """Mean `metric` per round against mean labels (x="n_labels") or mean dollars spent
    (x="cost_usd"), ±1 sd band over seeds; one panel per encoder."""
    encoders = list(dict.fromkeys(curve["encoder"]))
    with matplotlib.rc_context(STYLE):
        fig, axes = _panels(len(encoders), width=3.8, height=3.0, sharey=True)
        log_x = x == "cost_usd" and _spans_orders(curve[f"{x}_mean"])
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
                    ax.errorbar(xs, ys, yerr=sd, fmt="D", color=color, ms=5, capsize=3, label=cond)
                else:
                    ax.plot(xs, ys, marker="o", ms=3, color=color, label=cond)
                    ax.fill_between(xs, ys - sd, ys + sd, color=color, alpha=0.18, linewidth=0)
            ax.set_title(f"Encoder: {enc}")
            if x == "cost_usd":
                ax.set_xlabel("Annotation cost (US$, cumulative)")
                if log_x:
                    _set_log_x(ax, curve[f"{x}_mean"])
                ax.xaxis.set_major_formatter(FuncFormatter(_dollars))
            else:
                ax.set_xlabel("Labels acquired (count)")
        axes[0].set_ylabel(f"{metric_label(metric)}, test set")
        _legend_below(fig, axes, colors)
        return _save(fig, out_base)


def fpfn_figure(fpfn: pd.DataFrame, out_base: Path, *, colors: dict[str, tuple]) -> list[Path]:
    """Grouped bars: mean FP (solid) and FN (hatched) per condition, ±1 sd; panel per encoder."""
    encoders = list(dict.fromkeys(fpfn["encoder"]))
    n_cond = max(1, int(fpfn.groupby("encoder")["condition"].nunique().max()))
    with matplotlib.rc_context(STYLE):
        fig, axes = _panels(len(encoders), width=max(3.2, 0.75 * n_cond + 1.4), height=3.2, sharey=True)
        width = 0.38
        for ax, enc in zip(axes, encoders):
            de = fpfn[fpfn["encoder"] == enc]
            conds = [c for c in colors if c in set(de["condition"])]
            de = de.set_index("condition").loc[conds]
            pos = np.arange(len(conds))
            cols = [colors[c] for c in conds]
            ax.bar(pos - width / 2, de["fp_mean"], width, yerr=np.nan_to_num(de["fp_sd"].to_numpy(float)),
                   color=cols, edgecolor=cols, capsize=2.5, error_kw={"elinewidth": 0.9})
            ax.bar(pos + width / 2, de["fn_mean"], width, yerr=np.nan_to_num(de["fn_sd"].to_numpy(float)),
                   color="white", edgecolor=cols, hatch="////", linewidth=1.0, capsize=2.5,
                   error_kw={"elinewidth": 0.9})
            ax.set_xticks(pos, conds, rotation=30, ha="right")
            ax.set_title(f"Encoder: {enc}")
            ax.grid(axis="x", visible=False)
            ax.set_ylim(bottom=0)
        axes[0].set_ylabel("Test errors (count, mean over seeds)")
        fig.legend(handles=[Patch(facecolor="0.45", edgecolor="0.45", label="False positives (FP)"),
                            Patch(facecolor="white", edgecolor="0.45", hatch="////",
                                  label="False negatives (FN)")],
                   loc="outside lower center", ncol=2, frameon=False)
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


# --------------------------------------------------------------------------------------------


def _panels(n: int, *, width: float, height: float, sharey: bool) -> tuple[Figure, list]:
    n = max(1, n)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows + 0.6), layout="constrained")
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
    fig.legend([handles[c] for c in labels], labels, loc="outside lower center",
               ncol=min(len(labels), 5) or 1, frameon=False, title="Condition")


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
    png, svg = out_base.with_suffix(".png"), out_base.with_suffix(".svg")
    fig.savefig(png, dpi=PNG_DPI, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None})
    return [png, svg]
