"""Figures: every legend entry of the learning curves is inside the saved figure."""
from __future__ import annotations

import re

import matplotlib.image
import pandas as pd
import pytest

from llmal.report import figures

NER_DEMO_CONDITIONS = ["human_random", "human_mte", "human_kmeans", "llm_random", "llm_mte", "llm_kmeans"]
LONG = [f"condition_with_a_rather_long_name_{i}" for i in range(12)]


def _curve(conditions: list[str], encoders: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"condition": c, "encoder": e, "round": r, "n_labels_mean": 20.0 * (r + 1),
                          "n_tokens_mean": 190.0 * (r + 1), "f1_micro_mean": 0.5 + 0.02 * k + 0.05 * r,
                          "f1_micro_sd": 0.01}
                         for e in encoders for k, c in enumerate(conditions) for r in range(4)])


@pytest.mark.parametrize("conditions,encoders", [(NER_DEMO_CONDITIONS, ["tfidf"]),
                                                 (LONG, ["tfidf"]), (LONG[:7], ["a", "b"])])
def test_learning_curve_legend_lies_inside_the_saved_figure(tmp_path, conditions, encoders):
    curve = _curve(conditions, encoders)
    colors = figures.condition_colors(conditions)
    fig = figures.draw_learning_curve(curve, colors=colors, x="n_tokens", metric="f1_micro")
    fig.draw_without_rendering()
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == conditions
    page = fig.bbox
    for box in [legend.get_window_extent()] + [t.get_window_extent() for t in legend.get_texts()]:
        assert page.x0 - 0.5 <= box.x0 and box.x1 <= page.x1 + 0.5, (box, page)
        assert page.y0 - 0.5 <= box.y0 and box.y1 <= page.y1 + 0.5, (box, page)
    # the legend sits below the panels, not over them
    assert legend.get_window_extent().y1 <= min(ax.get_window_extent().y0 for ax in fig.axes) + 0.5
    # and the saved PNG is that figure, uncropped
    png, _, pdf = figures.learning_curve_figure(curve, tmp_path / "lc", colors=colors, x="n_tokens",
                                           metric="f1_micro")
    height, width = matplotlib.image.imread(png).shape[:2]
    want_w, want_h = fig.get_size_inches() * figures.PNG_DPI
    assert abs(width - want_w) <= 1 and abs(height - want_h) <= 1
    # the PDF is one paper column wide (its legend laid out anew, so about the PNG's aspect)
    box = [float(v) for v in re.search(rb"/MediaBox \[\s*([\d.\s]+)\]", pdf.read_bytes()).group(1).split()]
    assert abs(box[2] - figures.PAPER_COLUMN_IN * 72) < 0.5
    assert 0.7 < (box[3] / box[2]) / (want_h / want_w) < 1.5


def test_a_condition_keeps_its_colour_in_the_per_class_bars():
    colors = figures.condition_colors(["human_al", "human_al_b", "llm_al"])
    bars = ["human_al [neutral]", "human_al [hostile]", "human_al_b [neutral]", "llm_al [hostile]"]
    got = figures.bar_colors(bars, colors)
    assert got["human_al [neutral]"] == got["human_al [hostile]"] == colors["human_al"]
    assert got["human_al_b [neutral]"] == colors["human_al_b"] and got["llm_al [hostile]"] == colors["llm_al"]
    assert figures.bar_colors(["human_al", "llm_al"], colors) == {c: colors[c] for c in ("human_al", "llm_al")}
