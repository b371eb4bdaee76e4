"""Task multilabel with a learned mixture (one stacked model per label) through the real
Snakemake workflow, lazily inside the AL run: the run buys its dev gold set (the gold label
sets and the members' answers on those items) through the ledger, never a test item."""
from __future__ import annotations

import pandas as pd
import pytest
from conftest import snakemake, write_config
from test_workflow_multilabel import small_demo

GOLD_SIZE = 30


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    work = tmp_path_factory.mktemp("multilabel-learned")
    config = small_demo(600, step=40, rounds=1)
    config["annotators"]["llm_sim2"] = {**config["annotators"]["llm_sim"], "seed": 8}
    config["annotators"]["mix"] = {"kind": "mixture", "members": ["llm_sim", "llm_sim2", "human"],
                                   "method": "learned", "gold_size": GOLD_SIZE}
    config["conditions"] = {"mix_random": {"annotator": "mix", "sampler": "random"}}
    config["aggregate"]["reference"] = "mix_random"
    write_config(work, config)
    snakemake(work)
    return work / "results" / config["dataset"]["name"], config


def test_a_learned_mixture_buys_its_dev_gold_set_through_the_ledger(finished):
    from llmal.tasks.draws import learned_gold_ids

    out, config = finished
    split = pd.read_parquet(out / "data" / "split.parquet")
    dev = split.loc[split["split"] == "dev", "id"].astype(str).tolist()
    gold_ids = learned_gold_ids(config["annotators"]["mix"], dev)
    assert len(gold_ids) == GOLD_SIZE
    ledger = pd.read_parquet(out / "runs" / "mix_random" / "tfidf" / "seed0" / "ledger.parquet")
    meta = ledger[ledger["purpose"] == "meta"]
    for source in ("gold", "mix"):                               # gold labels, members' answers
        bought = meta.loc[meta["source"] == source, "id"].astype(str)
        assert sorted(bought) == sorted(gold_ids), source       # each dev gold item once
    assert meta["cost_usd"].sum() > 0
    assert not set(meta["id"].astype(str)) & set(split.loc[split["split"] == "test", "id"].astype(str))
    rounds = pd.read_csv(out / "runs" / "mix_random" / "tfidf" / "seed0" / "rounds.csv")
    assert list(rounds["n_labels"]) == [40, 80]
