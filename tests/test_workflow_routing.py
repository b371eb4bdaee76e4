"""A lazy routed condition through the real DAG: an LLM primary on the loopback OpenAI server, a
fallback (a human crowd, or a dearer LLM) for the items whose logprob confidence is below the
threshold. Each item is sent once to the LLM, the fallback is charged only for the routed items,
and the server's bill plus the human cost is the run's ledger. Then config/routing_demo.yaml
end to end."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from conftest import snakemake, tiny_config, write_config
from openai_server import Faults, read_ledger_file, start_subprocess
from test_workflow_llm import PRICES, ledger_cost

RUN = "results/routing/runs/routed_al/tfidf/seed0"
HUMAN = 0.1


@pytest.mark.parametrize("fallback", ["crowd", "strong"])
def test_lazy_routed_condition_pays_the_llm_once_per_item_and_the_fallback_only_where_routed(
        tmp_path: Path, fallback: str) -> None:
    """The fallback is a human crowd, or a dearer LLM on the same server (another model)."""
    server_dir = tmp_path / "server"
    process, base_url = start_subprocess(server_dir, Faults(seed=2))
    try:
        work = tmp_path / "work"
        config = tiny_config(dataset={"name": "routing", "kind": "demo", "n_items": 600, "seed": 3})
        config["annotators"] = {
            "crowd": {"kind": "human", "mode": "gold", "cost_per_label": HUMAN},
            "llm": {"kind": "openai", "model": "gpt-test-online", "prompt": "holistic", "base_url": base_url,
                    "logprobs": True, "top_logprobs": 5, "concurrency": 4},
            "strong": {"kind": "openai", "model": "gpt-test-batch", "prompt": "two_question",
                       "base_url": base_url, "concurrency": 4},
            "routed": {"kind": "routed", "primary": "llm", "fallback": fallback, "threshold": 0.75},
        }
        config["prices"] = PRICES
        config["al"] = {"initial": 40, "batch": 40, "rounds": 3}
        config["conditions"] = {"routed_al": {"annotator": "routed", "sampler": "entropy"}}
        config["seeds"] = [0]
        write_config(work, config)
        snakemake(work, RUN + "/run.json", env_extra={"OPENAI_API_KEY": "sk-test"})

        server = read_ledger_file(server_dir)
        billed = [e for e in server if e["model"] == "gpt-test-online"]
        ledger = pd.read_parquet(work / RUN / "ledger.parquet")
        rounds = pd.read_csv(work / RUN / "rounds.csv")
        info = json.loads((work / RUN / "run.json").read_text())
        items = pd.read_parquet(work / "results" / "routing" / "data" / "items.parquet").set_index("id")
        llm, routed = ledger[ledger["source"] == "llm"], ledger[ledger["source"] == fallback]
        assert set(ledger["source"]) == {"llm", fallback}
        # every item bought was asked of the LLM once; the fallback labelled a part of them
        assert llm["id"].is_unique and routed["id"].is_unique
        n_dev = int((pd.read_parquet(work / "results" / "routing" / "data" / "split.parquet")["split"] == "dev").sum())
        assert len(llm) == 40 + 3 * 40 + n_dev
        assert set(routed["id"]) < set(llm["id"]) and 0 < len(routed) < len(llm)
        assert Counter(e["body_hash"] for e in server).most_common(1)[0][1] == 1      # nothing twice
        assert len(billed) == items.loc[llm["id"], "text"].nunique()                  # one request per text
        routing = info["data"]["oracle"]
        assert routing["routed"] == len(routed) and routing["items"] == len(llm)
        assert set(routing["reasons"]) <= {"below_threshold", "status", "no_confidence"}
        assert routing["reasons"].get("below_threshold", 0) > 0
        # the bill: the server's charges for the primary + the fallback's for the routed items = the ledger
        primary_bill = ledger_cost(server, "gpt-test-online", "openai")
        assert llm["cost_usd"].sum() == pytest.approx(primary_bill, rel=1e-9)
        if fallback == "crowd":
            fallback_bill = HUMAN * len(routed)
            assert not [e for e in server if e["model"] == "gpt-test-batch"]
        else:   # the dearer LLM was asked about the routed items only, each text once
            strong = [e for e in server if e["model"] == "gpt-test-batch"]
            assert len(strong) == items.loc[routed["id"], "text"].nunique()
            fallback_bill = ledger_cost(server, "gpt-test-batch", "openai")
        assert routed["cost_usd"].sum() == pytest.approx(fallback_bill, rel=1e-9)
        assert rounds["cost_total"].iloc[-1] == pytest.approx(primary_bill + fallback_bill, rel=1e-9)
        # no annotation table of either LLM was made up front: they were asked during the run only
        made = {p.stem for p in (work / "results" / "routing" / "annotations").glob("*.parquet")}
        assert made == ({"crowd"} if fallback == "crowd" else set())
        print(f"fallback {fallback}: {len(llm)} labels from the LLM ({len(billed)} requests, ${primary_bill:.6f}), "
              f"{len(routed)} routed (${fallback_bill:.4f}); ledger ${ledger['cost_usd'].sum():.6f}")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_routing_demo_runs_to_a_report_with_the_frontier_and_its_pareto_front(tmp_path: Path) -> None:
    """config/routing_demo.yaml through the real DAG (one seed, a smaller synthetic dataset)."""
    import yaml
    from conftest import ROOT

    config = yaml.safe_load((ROOT / "config" / "routing_demo.yaml").read_text())
    config["dataset"]["n_items"] = 1000
    config["seeds"] = [0]
    work = tmp_path / "demo"
    write_config(work, config)
    snakemake(work)
    out = work / "results" / "routing_demo"
    frontier = pd.read_csv(out / "tables" / "frontier.csv", keep_default_na=False)
    swept = [f"routed_{s}-t{t}" for s in ("random", "al") for t in ("0p7", "0p8", "0p9")]
    assert list(frontier["condition"]) == ["human_random", "human_al", "llm_random", "llm_al", *swept]
    assert set(frontier["role"]) == {"human", "machine", "routed"}
    assert frontier["pareto"].astype(str).eq("True").any() and frontier["cheapest_within_best"].astype(str).eq("True").sum() >= 1
    best = frontier["metric_mean"].astype(float).max()
    cheap = frontier[frontier["cheapest_within_best"].astype(str) == "True"]
    assert (cheap["metric_mean"].astype(float) >= best - 0.01 - 1e-12).all()
    # a point is on the front exactly when nothing is as good for less
    for _, r in frontier.iterrows():
        dominated = ((frontier["metric_mean"] >= r["metric_mean"]) & (frontier["cost_total_mean"] <= r["cost_total_mean"])
                     & ((frontier["metric_mean"] > r["metric_mean"]) | (frontier["cost_total_mean"] < r["cost_total_mean"]))).any()
        assert str(r["pareto"]) == str(not dominated)
    routed = frontier[frontier["role"] == "routed"]
    assert set(routed["compared_with"]) == {"llm_random", "llm_al"}
    # a higher threshold routes more items to the crowd, so it costs more
    for sampler in ("random", "al"):
        costs = [float(frontier.loc[frontier["condition"] == f"routed_{sampler}-t{t}", "cost_total_mean"].iloc[0])
                 for t in ("0p7", "0p8", "0p9")]
        assert costs == sorted(costs) and costs[0] > float(
            frontier.loc[frontier["condition"] == f"llm_{sampler}", "cost_total_mean"].iloc[0])
    for name in ("frontier.png", "frontier.svg"):
        assert (out / "figures" / name).stat().st_size > 0
    html = (out / "report.html").read_text()
    assert "Cost-quality frontier" in html and "the cheapest condition within 0.01" in html
    agreement = pd.read_csv(out / "tables" / "annotators.csv")
    shares = agreement.set_index("annotator")["routed_share"]
    assert 0 < shares["llm_then_crowd-t0p7"] < shares["llm_then_crowd-t0p8"] < shares["llm_then_crowd-t0p9"] < 1
    # each routed run pays the LLM for every label and the crowd for the routed ones only
    run = out / "runs" / "routed_al-t0p8" / "tfidf" / "seed0"
    ledger = pd.read_parquet(run / "ledger.parquet")
    info = json.loads((run / "run.json").read_text())
    assert (ledger["source"] == "crowd").sum() == info["data"]["oracle"]["routed"] > 0
    assert (ledger["source"] == "llm_sim").sum() == info["data"]["oracle"]["items"]
    assert ledger.loc[ledger["source"] == "crowd", "cost_usd"].sum() == pytest.approx(0.10 * info["data"]["oracle"]["routed"])
    # the stop-round table: stabilizing predictions in record mode, one row per condition
    stopping = pd.read_csv(out / "tables" / "stopping.csv")
    assert set(stopping["criterion"]) == {"stabilizing_predictions"} and set(stopping["mode"]) == {"record"}
    assert sorted(stopping["condition"]) == sorted(frontier["condition"])
    rounds = pd.read_csv(run / "rounds.csv")
    fired = rounds.loc[rounds["stop_stabilizing_predictions"].astype(bool), "round"]
    assert info["stopping"]["mode"] == "record" and len(rounds) == config["al"]["rounds"] + 1
    if len(fired):   # the table's round for this (one-seed) condition is the first round the criterion said stop
        row = stopping[stopping["condition"] == "routed_al-t0p8"].iloc[0]
        assert float(row["round_mean"]) == fired.iloc[0] == info["stopping"]["first_fired"]["stabilizing_predictions"]
    assert "When to stop" in html
    # Snakemake's own report files the frontier and the stop table under "5. Cost and quality"
    import zipfile
    snakemake(work, "--report", "report.zip")
    with zipfile.ZipFile(work / "report.zip") as z:
        names = z.namelist()
        page = z.read(next(n for n in names if n.endswith("report/report.html"))).decode()
    assert {"frontier.png", "frontier.csv", "stopping.csv"} <= {n.rsplit("/", 1)[-1] for n in names if "/data/raw/" in n}
    assert "5. Cost and quality" in page
    for stem in ("frontier", "frontier_table", "stopping"):
        words = (ROOT / "workflow" / "report" / f"{stem}.rst").read_text().split()[:6]
        # the caption's opening words before any rst markup (``literal`` renders as <tt>)
        opening = " ".join(words[:next((k for k, w in enumerate(words) if "`" in w), len(words))])
        assert len(opening.split()) >= 3
        # the page embeds captions as JSON strings: "–" may appear as \u2013
        assert opening in page or json.dumps(opening)[1:-1] in page, (stem, opening)
