"""The default grid, run once for this module: its tables equal the golden copies, the report's
Findings section says only what its tables say, and Snakemake's own report holds the marked
results with their captions.

One cold run of config/config.yaml (about 4 minutes on 2 cores) is shared by the tests here.
"""
from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as sps

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "demo_tables"


def _snakemake(work: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2",
                          "--configfile", "config.yaml", *args], cwd=work, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return res


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("default_grid")
    shutil.copy(ROOT / "config" / "config.yaml", work / "config.yaml")
    _snakemake(work)
    return work


def test_default_grid_tables_equal_the_golden_copies(grid):
    tables = grid / "results" / "demo" / "tables"
    differ = [p.name for p in sorted(GOLDEN.iterdir()) if (tables / p.name).read_bytes() != p.read_bytes()]
    assert differ == []
    assert {p.name for p in tables.iterdir()} == {p.name for p in GOLDEN.iterdir()}


# ------------------------------------------------------------------ Findings against tables/
def findings_section(report: str) -> str:
    start = report.index('<h2 id="findings">')
    return report[start:report.index("<h2", start + 5)]


def _row(df: pd.DataFrame, keys: dict) -> pd.Series:
    mask = np.ones(len(df), dtype=bool)
    for k, v in keys.items():
        if k in ("seeds", "holm_family"):
            continue
        mask &= (df[k].astype(type(v)) == v).to_numpy() if not isinstance(v, float) else np.isclose(df[k], v)
    rows = df[mask]
    assert len(rows) == 1, (keys, len(rows))
    return rows.iloc[0]


def _paired(aulc: pd.DataFrame, cond: str, other: str, enc: str, seeds: list[int], column: str):
    x = aulc[(aulc.condition == cond) & (aulc.encoder == enc)].set_index("seed").loc[seeds, column].to_numpy()
    y = aulc[(aulc.condition == other) & (aulc.encoder == enc)].set_index("seed").loc[seeds, column].to_numpy()
    return x, y


def _wilcoxon_p(d: np.ndarray) -> float:
    d = np.round(d, 10)
    d = d[d != 0]
    return float(sps.wilcoxon(d, method="exact").pvalue)


def _holm(p: list[float]) -> list[float]:
    order = np.argsort(p, kind="stable")
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def expected_value(src: dict, tables: Path) -> float:
    kind, row = src["kind"], src["row"]
    if kind == "cell":
        return float(_row(pd.read_csv(tables / src["table"]), row)[src["column"]])
    if kind == "ratio":
        df = pd.read_csv(tables / src["table"])
        a, b = _row(df, row), _row(df, src["other"])
        return (a["cost_total_mean"] / a["n_labels_mean"]) / (b["cost_total_mean"] / b["n_labels_mean"])
    if kind == "min_p":
        n = (_row(pd.read_csv(tables / src["table"]), row)["n_pairs"] if src["table"] == "matched_budget.csv"
             else len(row["seeds"]))
        return min(1.0, 2.0 / 2.0 ** int(n))
    aulc = pd.read_csv(tables / "aulc.csv")
    x, y = _paired(aulc, row["condition"], src["other"]["condition"], row["encoder"], row["seeds"], src["column"])
    d = x - y
    half = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    if kind == "aulc_p_holm":
        raw = []
        for pair in row["holm_family"]:
            c, r = pair.split(">")
            xx, yy = _paired(aulc, c, r, row["encoder"], row["seeds"], src["column"])
            raw.append(_wilcoxon_p(xx - yy))
        return _holm(raw)[row["holm_family"].index(f"{row['condition']}>{src['other']['condition']}")]
    return {"aulc_mean": x.mean(), "aulc_mean_other": y.mean(), "aulc_diff": d.mean(),
            "aulc_ci_low": d.mean() - half, "aulc_ci_high": d.mean() + half, "aulc_n": len(d)}[kind]


def shown(value: float, decimals: int, signed: bool) -> str:
    if not math.isfinite(value):
        return "–"
    if decimals == 0:
        return f"{value:,.0f}"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def test_findings_numbers_equal_the_tables(grid):
    results = grid / "results" / "demo"
    section = findings_section((results / "report.html").read_text())
    spans = re.findall(r'<span class="fv" data-src="([^"]+)" data-signed="(\d)">([^<]*)</span>', section)
    assert len(spans) >= 40
    kinds = set()
    for src_attr, signed, text in spans:
        src = json.loads(html.unescape(src_attr))
        kinds.add(src["kind"])
        want = shown(expected_value(src, results / "tables"), src["decimals"], signed == "1")
        assert html.unescape(text) == want, (src, text, want)
    assert {"cell", "ratio", "min_p", "aulc_diff", "aulc_p_holm"} <= kinds
    # no number outside the traced spans (names in <code>, the metric's name and '95 %' aside)
    bare = re.sub(r'<span class="fv"[^>]*>[^<]*</span>|<code>[^<]*</code>|<em class="m">[^<]*</em>|<[^>]+>',
                  " ", section).replace("95 %", "")
    assert re.findall(r"\d", bare) == []
    text = re.sub(r"<[^>]+>", "", section)
    # what the issue asks for, per encoder, in words
    assert text.count("LLM labels against the human reference: llm_al against human_random at 360 labels") == 2
    assert "AL against random under crowd: human_al against human_random" in text
    assert "AL against random under llm_sim: llm_al against llm_random" in text
    assert "cannot reach significance" in text and "FP/FN balance: crowd through human_random (the reference)" in text
    assert "Errors concentrate most on the topic" in text
    assert "smollm_random: FP 0.0, FN 164.0, FP/FN 0.00 — its model predicts one class for every test item" in text


# ------------------------------------------------------------------ Snakemake's own report
def test_snakemake_report_zip_holds_the_marked_results_with_captions(grid):
    _snakemake(grid, "--report", "report.zip")
    with zipfile.ZipFile(grid / "report.zip") as z:
        names = z.namelist()
        page = z.read(next(n for n in names if n.endswith("report/report.html"))).decode()
    files = {n.rsplit("/", 1)[-1] for n in names if "/data/raw/" in n}
    assert {"summary.csv", "significance.csv", "matched_budget.csv", "learning_curve.png",
            "learning_curve_cost.png", "fpfn.png", "fpfn.csv", "errors_by_topic.png",
            "errors_by_topic.csv", "aulc.png", "confusion.png", "annotators.csv", "report.html"} <= files
    captions = {p.stem: " ".join(p.read_text().split()[:6]) for p in (ROOT / "workflow" / "report").glob("*.rst")
                if p.stem != "workflow"}
    # the default grid routes nothing and stops nothing: the frontier's and the stop table's
    # captions belong to grids that do (the routing demo's report), and must not show up here
    absent = {"frontier", "frontier_table", "stopping"}
    for stem, opening in captions.items():
        assert (opening in page) is (stem not in absent), (stem, opening)
    assert "5. Cost and quality" not in page
    for category in ("1. Results", "2. Learning curves", "3. Errors", "4. Annotators"):
        assert category in page


# ------------------------------------------------------------------ the page in a browser
def test_report_in_headless_chromium_loads_every_image_and_fits_1280_px(grid, tmp_path):
    from chromium import ChromiumUnavailable, ensure_chromium, probe, screenshot

    try:
        chromium = ensure_chromium()
    except ChromiumUnavailable as e:
        pytest.skip(str(e))
    page = grid / "results" / "demo" / "report.html"
    result = probe(chromium, page, tmp_path, width=1280)
    assert result["images"] >= 6 and result["broken"] == []
    assert result["scrollWidth"] <= 1280, result
    shot = screenshot(chromium, page, tmp_path / "report-1280.png")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == 1280
