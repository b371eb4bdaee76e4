"""The aggregation stage on synthetic run directories written to the per-run contract."""
from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from llmal.contracts import ContractError
from llmal.report import html as report
from llmal.report import tables as render
from llmal.report.files import write_aggregate
from llmal.results import aggregate
from llmal.results.runs import RunFileError, collect_runs
from llmal.results.settings import AggregateSettings
from llmal.results.stats import holm, paired_comparison

LABELS = ["not_hostile", "hostile"]
POS = 1

# test items: topic -> (gold-positive count, gold-negative count)
TOPIC_ITEMS = {"border_control": (4, 6), "labour_market": (2, 4), "": (2, 2)}

CONFIG = {
    "dataset": {"name": "demo", "kind": "demo", "n_items": 3000},
    "labels": {"names": LABELS, "positive": "hostile"},
    "annotators": {"crowd": {"kind": "human"}, "llm_sim": {"kind": "simulated"}},
    "encoders": {"tfidf": {"kind": "tfidf"}, "minilm": {"kind": "sentence_transformer"}},
    "conditions": {"human_al": {"annotator": "crowd", "sampler": "entropy"},
                   "llm_al": {"annotator": "llm_sim", "sampler": "entropy"},
                   "llm_full": {"annotator": "llm_sim", "sampler": "full"}},
    "seeds": [0, 1, 2],
}


def write_run(root: Path, condition: str, encoder: str, seed: int, *, f1: float,
              errors: dict[str, tuple[int, int]], n_rounds: int = 3, cost_per_label: float = 0.1,
              soft_ce: float = 0.5) -> Path:
    """A run directory with `n_rounds` rounds whose last one has macro-F1 `f1` and whose test
    predictions have errors[topic] = (FP, FN)."""
    d = root / "runs" / condition / encoder / f"seed{seed}"
    d.mkdir(parents=True)
    rows, k = [], 0
    for topic, (n_pos, n_neg) in TOPIC_ITEMS.items():
        fp, fn = errors.get(topic, (0, 0))
        for i in range(n_pos):
            rows.append({"id": f"t{k}", "gold": POS, "pred": 0 if i < fn else POS, "topic": topic})
            k += 1
        for i in range(n_neg):
            rows.append({"id": f"t{k}", "gold": 0, "pred": POS if i < fp else 0, "topic": topic})
            k += 1
    preds = pd.DataFrame(rows)
    preds["prob"] = np.where(preds["pred"] == POS, 0.8, 0.2)
    preds[["id", "prob", "pred", "gold", "topic"]].to_parquet(d / "predictions.parquet", index=False)
    g, p = preds["gold"] == POS, preds["pred"] == POS
    tp, fp, fn, tn = int((g & p).sum()), int((~g & p).sum()), int((g & ~p).sum()), int((~g & ~p).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    rounds = []
    for r in range(n_rounds):
        n_labels = 40 * (r + 1)
        rounds.append({
            "round": r, "n_labels": n_labels, "n_train": n_labels - 2, "cost_al": n_labels * cost_per_label,
            "cost_dev": 0.0, "cost_gold": 0.0, "cost_total": n_labels * cost_per_label,
            "f1_macro": f1 - 0.05 * (n_rounds - 1 - r), "accuracy": 0.9,
            "precision_not_hostile": 0.9, "recall_not_hostile": 0.9, "f1_not_hostile": 0.9,
            "precision_hostile": prec, "recall_hostile": rec, "f1_hostile": 0.7,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn, "soft_ce": soft_ce, "soft_brier": 0.2, "seconds": 1.5,
        })
    pd.DataFrame(rounds).to_csv(d / "rounds.csv", index=False)
    n_last = rounds[-1]["n_labels"]
    pd.DataFrame({"id": [f"p{k}" for k in range(n_last)], "round": 0, "purpose": "initial",
                  "source": annot_name(condition), "status": "ok",
                  "cost_usd": cost_per_label}).to_parquet(d / "ledger.parquet", index=False)
    pd.DataFrame({"id": ["p1"], "round": [0], "label": pd.array([1], dtype="Int64"),
                  "status": ["ok"]}).to_parquet(d / "queried.parquet", index=False)
    annot = annot_name(condition)
    meta = {"condition": condition, "encoder": encoder, "seed": seed, "dataset": "demo",
            "annotator": annot, "sampler": "entropy", "recipe": "linear", "config_hash": "abc123",
            "versions": {"llmal": "0.1.0", "numpy": np.__version__}, "device": "cpu",
            "timings": {"total": 4.5}, "final": rounds[-1], "label_names": LABELS, "positive": "hostile"}
    (d / "run.json").write_text(json.dumps(meta))
    return d


def annot_name(condition):
    return CONFIG["conditions"].get(condition, {}).get("annotator", "x")


# known numbers: human_al F1 0.80/0.82/0.84, llm_al F1 0.85/0.86/0.90, llm_full F1 0.70 (x3)
F1 = {"human_al": [0.80, 0.82, 0.84], "llm_al": [0.85, 0.86, 0.90], "llm_full": [0.70, 0.70, 0.70]}
# FP, FN per topic; human_al seeds give total FP 2/3/4 and FN 1/1/1
ERRORS = {
    "human_al": [{"border_control": (2, 1)}, {"border_control": (2, 1), "labour_market": (1, 0)},
                 {"border_control": (3, 0), "": (1, 1)}],
    "llm_al": [{"border_control": (1, 0)}] * 3,
    "llm_full": [{"labour_market": (2, 2)}] * 3,
}
COST = {"human_al": 0.12, "llm_al": 0.0004, "llm_full": 0.0004}


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("results")
    dirs = []
    for enc in ("tfidf", "minilm"):
        for cond in CONFIG["conditions"]:
            for seed in (0, 1, 2):
                n_rounds = 1 if cond == "llm_full" else 3
                dirs.append(write_run(root, cond, enc, seed, f1=F1[cond][seed], errors=ERRORS[cond][seed],
                                      n_rounds=n_rounds, cost_per_label=COST[cond]))
    return root, dirs


@pytest.fixture(scope="module")
def aggregated(grid) -> tuple[Path, dict[str, Path]]:
    root, dirs = grid
    written = write_aggregate(aggregate.build_tables(dirs, CONFIG), root / "tables", root / "figures")
    return root, written


def test_collect_runs_reads_every_run(grid):
    _, dirs = grid
    rounds, finals, preds = collect_runs([d / "run.json" for d in dirs])  # files name their run dir
    assert len(finals) == 18
    assert len(rounds) == 2 * 3 * (3 + 3 + 1)
    assert len(preds) == 18 * sum(a + b for a, b in TOPIC_ITEMS.values())
    row = finals[(finals.condition == "human_al") & (finals.encoder == "tfidf") & (finals.seed == 1)].iloc[0]
    assert row["f1_macro"] == pytest.approx(0.82)
    assert row["fp"] == 3 and row["fn"] == 1 and row["n_rounds"] == 3
    assert row["recall_pos"] == pytest.approx(7 / 8)


def test_summary_mean_and_sd_are_exact(grid):
    _, dirs = grid
    _, finals, _ = collect_runs(dirs)
    s = aggregate.summary_table(finals, AggregateSettings.from_config(CONFIG))
    assert list(s["encoder"]) == ["tfidf"] * 3 + ["minilm"] * 3      # config order
    assert list(s["condition"][:3]) == ["human_al", "llm_al", "llm_full"]
    h = s[(s.condition == "human_al") & (s.encoder == "tfidf")].iloc[0]
    assert h["n_seeds"] == 3
    assert h["f1_macro_mean"] == pytest.approx(0.82, abs=1e-12)
    assert h["f1_macro_sd"] == pytest.approx(0.02, abs=1e-12)
    assert h["fp_mean"] == pytest.approx(3.0) and h["fp_sd"] == pytest.approx(1.0)
    assert h["fn_mean"] == pytest.approx(1.0) and h["fn_sd"] == pytest.approx(0.0)
    assert h["n_labels_mean"] == 120 and h["n_train_mean"] == 118
    assert h["cost_total_mean"] == pytest.approx(120 * 0.12)
    assert h["soft_ce_mean"] == pytest.approx(0.5)
    llm = s[(s.condition == "llm_al") & (s.encoder == "tfidf")].iloc[0]
    assert llm["f1_macro_mean"] == pytest.approx(0.87)
    assert llm["f1_macro_sd"] == pytest.approx(np.std([0.85, 0.86, 0.90], ddof=1))


def test_summary_markdown_and_latex_formatting(aggregated):
    root, _ = aggregated
    md = (root / "tables" / "summary.md").read_text()
    assert "| Encoder | Condition | Seeds | F1 (macro) | F1 (hostile) |" in md
    human_row = next(line for line in md.splitlines() if "| tfidf | human_al |" in line)
    assert "0.820 ± 0.020" in human_row
    assert "3.0 ± 1.0" in human_row                       # FP
    assert "14.40 ± 0.00" in human_row                    # cost in dollars
    llm_row = next(line for line in md.splitlines() if "| tfidf | llm_al |" in line)
    assert "**0.870 ± 0.026**" in llm_row                 # best F1 per encoder in bold
    assert "0.0480 ± 0.0000" in llm_row                   # 3 significant digits of a dollar amount
    full_row = next(line for line in md.splitlines() if "| tfidf | llm_full |" in line)
    assert "**0.0160**" in full_row                       # cheapest in bold
    assert "| llm_full | 1 |" in full_row                 # identical repeats count once, no sd
    assert "**0.700" not in md                            # F1 (hostile) ties everywhere: no bold

    tex = (root / "tables" / "summary.tex").read_text()
    for token in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\caption{"):
        assert token in tex
    assert r"human\_al" in tex and "human_al" not in tex.replace(r"human\_al", "")
    assert r"$0.820 \pm 0.020$" in tex
    assert r"$\mathbf{0.870} \pm 0.026$" in tex
    body = tex.split(r"\midrule", 1)[1]
    assert body.count(r"\\") == 6                          # one line per condition x encoder
    csv = pd.read_csv(root / "tables" / "summary.csv")
    assert {"f1_macro_mean", "f1_macro_sd", "n_seeds", "cost_total_mean"} <= set(csv.columns)


def test_learning_curve_table(aggregated):
    root, _ = aggregated
    lc = pd.read_csv(root / "tables" / "learning_curve.csv")
    h = lc[(lc.condition == "human_al") & (lc.encoder == "minilm")].sort_values("round")
    assert list(h["round"]) == [0, 1, 2]
    assert list(h["n_labels_mean"]) == [40, 80, 120]
    assert h["f1_macro_mean"].tolist() == pytest.approx([0.72, 0.77, 0.82])
    assert h["f1_macro_sd"].tolist() == pytest.approx([0.02] * 3)
    assert h["cost_total_mean"].tolist() == pytest.approx([4.8, 9.6, 14.4])
    full = lc[(lc.condition == "llm_full") & (lc.encoder == "minilm")]
    assert len(full) == 1 and full["n_seeds"].iloc[0] == 3


def test_significance_matches_scipy_on_a_clear_difference(tmp_path):
    rng = np.random.default_rng(3)
    ref = 0.75 + rng.normal(0, 0.02, 10)
    better = ref + 0.04 + rng.normal(0, 0.004, 10)
    same = ref + rng.normal(0, 0.01, 10)
    dirs = []
    for seed in range(10):
        dirs.append(write_run(tmp_path, "human_al", "tfidf", seed, f1=ref[seed], errors={}))
        dirs.append(write_run(tmp_path, "llm_al", "tfidf", seed, f1=better[seed], errors={}))
        dirs.append(write_run(tmp_path, "llm_full", "tfidf", seed, f1=same[seed], errors={}))
    _, finals, _ = collect_runs(dirs)
    sig = aggregate.significance_table(finals, AggregateSettings.from_config(CONFIG)).set_index("condition")
    assert set(sig.index) == {"llm_al", "llm_full"} and (sig["reference"] == "human_al").all()
    b = sig.loc["llm_al"]
    assert b["n_pairs"] == 10
    assert b["p_wilcoxon"] == pytest.approx(sps.wilcoxon(better, ref).pvalue, rel=1e-9)
    assert b["p_wilcoxon"] == pytest.approx(2 / 2 ** 10)          # all ten differences positive
    assert b["wilcoxon_method"] == "exact"
    assert b["p_ttest"] == pytest.approx(sps.ttest_rel(better, ref).pvalue, rel=1e-9)
    assert b["mean_diff"] == pytest.approx(np.mean(better - ref))
    half = sps.t.ppf(0.975, 9) * np.std(better - ref, ddof=1) / math.sqrt(10)
    assert (b["ci_low"], b["ci_high"]) == pytest.approx((np.mean(better - ref) - half, np.mean(better - ref) + half))
    assert b["ci_low"] > 0
    s = sig.loc["llm_full"]
    assert s["p_wilcoxon"] == pytest.approx(sps.wilcoxon(same, ref).pvalue, rel=1e-9)
    # Holm over two comparisons: the smaller p doubles, the larger stays >= it
    ps = sig["p_ttest"].to_numpy()
    assert sig["p_ttest_holm"].min() == pytest.approx(min(1.0, 2 * ps.min()))
    assert sig["p_ttest_holm"].max() == pytest.approx(max(min(1.0, 2 * ps.min()), ps.max()))
    md = render.significance_markdown(sig.reset_index())
    assert "| tfidf | llm_al | human_al | 10 |" in md and "0.002" in md


def test_significance_constant_shift_and_degenerate_cases():
    ref = np.linspace(0.70, 0.79, 10)
    res = paired_comparison(ref + 0.05, ref)
    assert res.p_wilcoxon == pytest.approx(sps.wilcoxon(ref + 0.05, ref).pvalue)
    assert res.p_wilcoxon == pytest.approx(2 / 2 ** 10)
    assert math.isnan(res.p_ttest) and "constant difference" in res.as_dict()["note"]
    one = paired_comparison([0.8], [0.7])
    assert math.isnan(one.p_wilcoxon) and math.isnan(one.p_ttest) and math.isnan(one.ci_low)
    assert "at least 2" in one.as_dict()["note"]
    same = paired_comparison([0.8, 0.7, 0.9], [0.8, 0.7, 0.9])
    assert math.isnan(same.p_wilcoxon) and "identical" in same.as_dict()["note"]
    few = paired_comparison([0.81, 0.92, 0.73], [0.8, 0.9, 0.7])
    assert few.p_wilcoxon == pytest.approx(0.25) and "cannot go below 0.25" in few.as_dict()["note"]


def test_significance_with_one_seed_gives_nan_and_note(tmp_path):
    dirs = [write_run(tmp_path, c, "tfidf", 0, f1=f, errors={}) for c, f in
            (("human_al", 0.8), ("llm_al", 0.9))]
    _, finals, _ = collect_runs(dirs)
    sig = aggregate.significance_table(finals, AggregateSettings.from_config(CONFIG))
    row = sig.iloc[0]
    assert row["n_pairs"] == 1 and row["mean_diff"] == pytest.approx(0.1)
    for col in ("p_wilcoxon", "p_wilcoxon_holm", "p_ttest", "p_ttest_holm", "ci_low"):
        assert math.isnan(row[col]), col
    assert "at least 2" in row["note"]
    assert "–" in render.significance_markdown(sig)


def test_holm_adjustment_is_monotonic_and_bounded():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.20, 0.005])
    adj = holm(p)
    assert math.isnan(adj[3])
    valid = ~np.isnan(p)
    assert (adj[valid] >= p[valid]).all() and (adj[valid] <= 1).all()
    order = np.argsort(p[valid])
    assert (np.diff(adj[valid][order]) >= 0).all()
    # by hand, m = 5: 0.005*5, 0.01*4, 0.03*3, max(0.09, 0.04*2), max(0.09, 0.20)
    assert adj[valid].tolist() == pytest.approx([0.04, 0.09, 0.09, 0.20, 0.025])
    assert holm([0.9, 0.8]).tolist() == pytest.approx([1.0, 1.0])     # capped at 1
    assert holm([0.3, 0.01]).tolist() == pytest.approx([0.3, 0.02])
    assert np.isnan(holm([np.nan])).all()


def test_fpfn_and_topic_errors(aggregated):
    root, _ = aggregated
    fpfn = pd.read_csv(root / "tables" / "fpfn.csv")
    h = fpfn[(fpfn.condition == "human_al") & (fpfn.encoder == "tfidf")].iloc[0]
    assert h["fp_mean"] == pytest.approx(3.0) and h["fn_mean"] == pytest.approx(1.0)
    assert h["fp_fn_ratio"] == pytest.approx(3.0)
    assert h["fp_rate_mean"] == pytest.approx(np.mean([2 / 12, 3 / 12, 4 / 12]))
    llm = fpfn[(fpfn.condition == "llm_al") & (fpfn.encoder == "tfidf")].iloc[0]
    assert math.isinf(llm["fp_fn_ratio"])                # FP but never an FN

    topics = pd.read_csv(root / "tables" / "errors_by_topic.csv", keep_default_na=False)
    shares = topics.groupby(["condition", "encoder"])["error_share"].sum()
    assert shares.to_numpy() == pytest.approx(np.ones(len(shares)))
    h = topics[(topics.condition == "human_al") & (topics.encoder == "tfidf")].set_index("topic")
    # human_al errors over seeds: border 3+3+3 = 9, labour 1, unknown 2 (total 12)
    assert h.loc["border_control", "error_share"] == pytest.approx(9 / 12)
    assert h.loc["labour_market", "error_share"] == pytest.approx(1 / 12)
    assert h.loc["(unknown)", "error_share"] == pytest.approx(2 / 12)
    assert h.loc["border_control", "rank"] == 1 and h.loc["border_control", "top"] in (True, "True")
    assert h.loc["border_control", "fp_rate"] == pytest.approx(np.mean([2 / 6, 2 / 6, 3 / 6]))
    assert h.loc["border_control", "fn_rate"] == pytest.approx(np.mean([1 / 4, 1 / 4, 0]))
    assert h.loc["border_control", "item_share"] == pytest.approx(10 / 20)
    assert h.loc["border_control", "concentration"] == pytest.approx((9 / 12) / (10 / 20))
    md = (root / "tables" / "errors_by_topic.md").read_text()
    assert "## Topics where errors concentrate" in md
    assert "| tfidf | human_al | 1 | border_control | 10 | 75.0% | 50.0% |" in md


def test_write_aggregate_writes_exactly_the_declared_outputs(aggregated):
    root, written = aggregated
    expected = {f"tables/{n}" for n in ("summary.csv", "summary.md", "summary.tex", "learning_curve.csv",
                                        "significance.csv", "significance.md", "fpfn.csv",
                                        "errors_by_topic.csv", "errors_by_topic.md", "aulc.csv",
                                        "matched_budget.csv", "matched_budget.md", "confusion.csv",
                                        "confusion.md", "per_class.csv", "per_class.md")}
    expected |= {f"figures/{n}.{ext}" for n in ("learning_curve", "learning_curve_cost", "fpfn",
                                                "errors_by_topic", "aulc", "confusion")
                 for ext in ("png", "svg", "pdf")}
    assert set(written) == expected
    on_disk = {str(p.relative_to(root)) for p in root.glob("*/*") if p.parent.name in ("tables", "figures")}
    assert on_disk == expected                              # nothing else, no leftover .tmp
    for key, path in written.items():
        assert path == root / key and path.stat().st_size > 0
        if key.endswith(".png"):
            data = path.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
            width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
            assert width > 600 and height > 400            # 200 dpi, not a thumbnail
        if key.endswith(".svg"):
            assert ET.parse(path).getroot().tag.endswith("svg")
        if key.endswith(".pdf"):
            assert path.read_bytes()[:5] == b"%PDF-"
    svg = (root / "figures" / "learning_curve.svg").read_text()
    assert "Labels acquired" in svg and "human_al" in svg  # text kept as text (editable)
    assert "Cost (US$, cumulative" in (root / "figures" / "learning_curve_cost.svg").read_text()


def test_report_is_self_contained_with_tables_images_and_demo_note(aggregated, grid):
    root, _ = aggregated
    _, dirs = grid
    _, finals, _ = collect_runs(dirs)
    annotations = aggregate.annotation_summary({
        "llm_sim": pd.DataFrame({"id": ["a", "b", "c", "d"], "status": ["ok", "ok", "invalid", "failed"],
                                 "cost_usd": [0.001, 0.001, 0.001, 0.0], "model": ["gpt-x"] * 4}),
    })
    assert annotations.iloc[0][["n", "ok", "invalid", "failed"]].tolist() == [4, 2, 1, 1]
    out = report.write_report(root / "report.html", config=CONFIG, tables_dir=root / "tables",
                              figures_dir=root / "figures", runs_meta=finals, annotations=annotations,
                              split_counts={"test": 600, "pool": 2100, "dev": 300})
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "Synthetic demo data" in page and 'class="note"' in page
    # learning curves (2), AULC, confusion matrix, FP/FN, errors by topic
    assert page.count("data:image/png;base64,") == 6
    assert "Matched budgets" in page and "Area under the learning curve" in page
    assert "<strong>0.870 ± 0.026</strong>" in page and "0.820 ± 0.020" in page
    for heading in ("What was run", "Summary", "Significance", "Learning curves",
                    "Topics where errors concentrate", "Annotation", "Provenance"):
        assert f">{heading}<" in page, heading
    assert "pool: 2,100, dev: 300, test: 600" in page and "abc123" in page and "border_control" in page
    assert "crowd (human)" in page and "gpt-x" in page
    assert "src=\"http" not in page and "<link" not in page  # nothing fetched from outside
    # runs_meta may also be the run.json dicts; no demo note for a real dataset
    metas = [json.loads((d / "run.json").read_text()) for d in dirs]
    real = {**CONFIG, "dataset": {"name": "gahd", "kind": "gahd"}}
    page2 = report.write_report(root / "report2.html", config=real, tables_dir=root / "tables",
                                figures_dir=root / "figures", runs_meta=metas).read_text()
    assert "Synthetic demo data" not in page2 and "Annotation<" not in page2 and "numpy" in page2


def test_missing_or_malformed_run_files_are_named(tmp_path):
    d = write_run(tmp_path, "human_al", "tfidf", 0, f1=0.8, errors={})
    (d / "predictions.parquet").unlink()
    with pytest.raises(RunFileError, match="predictions.parquet: run file missing") as e:
        collect_runs([d])
    assert str(d / "predictions.parquet") in str(e.value)

    d2 = write_run(tmp_path, "llm_al", "tfidf", 0, f1=0.8, errors={})
    (d2 / "run.json").write_text("{not json")
    with pytest.raises(RunFileError, match="not valid JSON") as e:
        collect_runs([d2])
    assert str(d2 / "run.json") in str(e.value)

    d3 = write_run(tmp_path, "llm_full", "tfidf", 0, f1=0.8, errors={})
    pd.read_csv(d3 / "rounds.csv").drop(columns=["f1_hostile", "soft_ce"]).to_csv(d3 / "rounds.csv", index=False)
    with pytest.raises(RunFileError, match=r"missing column\(s\) \['soft_ce', 'f1_hostile'\]") as e:
        collect_runs([d3])
    assert str(d3 / "rounds.csv") in str(e.value)

    d4 = write_run(tmp_path, "llm_full", "minilm", 0, f1=0.8, errors={})
    meta = json.loads((d4 / "run.json").read_text())
    meta["positive"] = "toxic"
    (d4 / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunFileError, match="positive 'toxic' is not in label_names"):
        collect_runs([d4])


def test_config_errors_name_the_key(grid):
    _, dirs = grid
    with pytest.raises(ContractError, match="aggregate.reference"):
        AggregateSettings.from_config({**CONFIG, "aggregate": {"reference": "nope"}})
    _, finals, _ = collect_runs(dirs[:3])
    bad = AggregateSettings.from_config({**CONFIG, "aggregate": {"metric": "f1_weighted"}})
    with pytest.raises(ContractError, match="aggregate.metric: 'f1_weighted'"):
        aggregate.significance_table(finals, bad)


def test_classification_metrics_without_a_positive_class():
    from llmal.tasks.classification.metrics import classification_metrics
    gold = np.array([0, 1, 2, 2])
    probs = np.eye(3)[[0, 2, 2, 1]]
    m = classification_metrics(gold, probs, ["a", "b", "c"], None)
    assert not {"tp", "fp", "fn", "tn"} & set(m)
    assert m["f1_a"] == 1.0 and m["f1_b"] == 0.0 and m["recall_c"] == 0.5
    assert m["f1_macro"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert classification_metrics(gold, probs, ["a", "b", "c"], 2)["fp"] == 1


def test_fp_zero_of_a_model_that_never_predicts_positive_is_not_best():
    from llmal.results.aggregate import summary_best
    from llmal.results.settings import SUMMARY_METRICS
    summary = pd.DataFrame({"condition": ["silent", "real"], "encoder": ["e", "e"], "n_seeds": [1, 1],
                            **{f"{m.column}_mean": [0.5, 0.7] for m in SUMMARY_METRICS},
                            **{f"{m.column}_sd": [np.nan, np.nan] for m in SUMMARY_METRICS},
                            "never_positive": [True, False], "never_negative": [False, False]})
    summary["fp_mean"] = [0.0, 4.0]
    summary["fn_mean"] = [9.0, 3.0]
    best = summary_best(summary)
    assert (0, "fp") not in best and (1, "fn") in best
