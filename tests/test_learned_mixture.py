"""The learned mixture (S1's MoLAM): a planted case of one good and four noisy members, its gold
set bought through the ledger, never a test item; mean and learned read recorded probabilities."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from llmal.annotate.run import annotate
from llmal.contracts import make_annotations
from llmal.engine.loop import simulate
from llmal.engine.oracle import GoldSource
from llmal.engine.oracles import build_oracle
from llmal.engine.schedule import Schedule
from llmal.models.encoders import Features
from llmal.models.logistic import LogisticHead
from llmal.results.agreement import annotator_agreement
from llmal.tasks.classification.mixture import annotate_mixture, learned_gold_ids
from llmal.tasks.classification.task import ClassificationTask
from llmal.tasks.registry import task_named

CLS = task_named(None)
NAMES = ["neutral", "critical", "hostile"]
K = len(NAMES)


def planted(n: int = 600, seed: int = 0):
    """150 test, 150 dev, 300 pool items; member `good` is right 90% of the time, the four
    `noisy` ones share a systematic error: on 60% of the items all four say (gold + 1) mod 3."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"x{k:04d}" for k in range(n)])
    gold = rng.integers(0, K, n)
    split_name = np.where(np.arange(n) < 150, "test", np.where(np.arange(n) < 300, "dev", "pool"))
    items = pd.DataFrame({"id": ids, "text": "t", "gold": gold, "topic": "", "source": "s"})
    split = pd.DataFrame({"id": ids, "split": split_name})
    visible = split_name != "test"
    shifted = rng.random(n) < 0.6
    tables = {}
    good = np.where(rng.random(n) < 0.9, gold, (gold + rng.integers(1, K, n)) % K)
    tables["good"] = make_annotations({"id": ids[visible], "label": good[visible], "cost_usd": 0.01})
    for j in range(4):
        own = np.where(rng.random(n) < 0.15, rng.integers(0, K, n), (gold + shifted) % K)
        tables[f"noisy{j}"] = make_annotations({"id": ids[visible], "label": own[visible], "cost_usd": 0.001})
    return items, split, tables


def accuracy(table: pd.DataFrame, items: pd.DataFrame, skip: set[str] = frozenset()) -> float:
    t = table[(table["status"] == "ok") & ~table["id"].isin(skip)]
    gold = items.set_index("id").loc[t["id"], "gold"].to_numpy()
    return float(np.mean(t["label"].to_numpy(dtype=int) == gold))


def mixture(method: str, **extra):
    return {"kind": "mixture", "members": ["good", "noisy0", "noisy1", "noisy2", "noisy3"],
            "method": method, "gold_size": 40, **extra}


def test_learned_beats_majority_on_one_good_and_four_noisy_members():
    items, split, tables = planted()
    config = {"labels": {"names": NAMES}}
    out = {m: annotate(items, split, mixture(m), config, name=m, member_tables=tables, task=CLS, log=lambda _m: None)
           for m in ("majority", "dawid_skene", "learned")}
    gold_ids = set(learned_gold_ids(mixture("learned"), split.loc[split["split"] == "dev", "id"].tolist()))
    acc = {m: accuracy(t, items, skip=gold_ids) for m, t in out.items()}
    assert acc["majority"] < 0.5 and acc["learned"] > 0.85
    assert acc["learned"] > acc["majority"] + 0.3
    marked = out["learned"]["answers"].str.contains('"gold_set": true', regex=False)
    assert set(out["learned"].loc[marked, "id"]) == gold_ids and len(gold_ids) == 40
    # the agreement table compares the three, scoring learned without its gold set
    specs = {**{m: mixture(m) for m in out}, **{m: {"kind": "precomputed"} for m in tables}}
    report = annotator_agreement({**out, **tables}, items, split, specs, NAMES, min_dev_items=10)
    t = report.table.set_index("annotator")
    assert t.loc["learned", "n_trained_on"] == 40 and t.loc["majority", "n_trained_on"] == 0
    assert t.loc["learned", "n_gold"] == 450 - 40 and t.loc["majority", "n_gold"] == 450
    assert t.loc["learned", "accuracy"] == pytest.approx(acc["learned"])
    assert t.loc["learned", "accuracy"] > t.loc["majority", "accuracy"] + 0.3
    assert t.loc["learned", "kappa_low"] < t.loc["learned", "kappa"] < t.loc["learned", "kappa_high"]


def test_learned_mixture_never_reads_test_items():
    items, split, tables = planted()
    config = {"labels": {"names": NAMES}}
    spec = mixture("learned")
    full = annotate(items, split, spec, config, name="m", member_tables=tables, task=CLS, log=lambda _m: None)
    test_ids = set(split.loc[split["split"] == "test", "id"])
    scrambled = items.copy()
    scrambled.loc[scrambled["id"].isin(test_ids), "gold"] = (scrambled["gold"] + 1) % K
    without_test = items[~items["id"].isin(test_ids)]
    for other in (scrambled, without_test):
        again = annotate(other, split, spec, config, name="m", member_tables=tables, task=CLS, log=lambda _m: None)
        pd.testing.assert_frame_equal(full, again)
    # member tables with rows for test items: those rows are dropped before aggregation
    leaky = {m: make_annotations(pd.concat([t, make_annotations({"id": sorted(test_ids), "label": 0})]))
             for m, t in tables.items()}
    assert not set(annotate(items, split, spec, config, name="m", member_tables=leaky, task=CLS,
                            log=lambda _m: None)["id"]) & test_ids
    assert set(learned_gold_ids(spec, split.loc[split["split"] == "dev", "id"].tolist())) <= \
        set(split.loc[split["split"] == "dev", "id"])
    with pytest.raises(ValueError, match="gold labels"):
        annotate_mixture(tables, spec, NAMES, log=lambda _m: None)        # no gold: no fit


def test_al_run_buys_the_gold_set_through_the_ledger():
    items, split, tables = planted()
    specs = {"learned": mixture("learned"), **{m: {"kind": "precomputed"} for m in tables}}
    oracle = build_oracle("learned", annotators=specs, mode="lazy", items=items, split=split, task=CLS,
                          tables=tables, llm={"labels": {"names": NAMES}})
    task = ClassificationTask(items, split, NAMES, None)
    gold = GoldSource(task.gold(task.ids["pool"] + task.ids["dev"]), 0.5)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(items), 4)) + items["gold"].to_numpy()[:, None]
    clf = LogisticHead(Features(items["id"].to_numpy(), X), recipe={}, n_classes=K, seed=0)
    res = simulate(task=task, oracle=oracle, gold=gold, classifier=clf, sampler="random",
                   schedule=Schedule.from_settings({"initial": 30, "batch": 30, "rounds": 1}, full=False),
                   seed=0, buy_dev=False, log=lambda m: None)
    ledger = res.ledger
    meta = ledger[ledger["purpose"] == "meta"]
    want = learned_gold_ids(specs["learned"], task.ids["dev"])
    assert meta.loc[meta["source"] == "gold", "id"].tolist() == want
    assert meta.loc[meta["source"] == "gold", "cost_usd"].sum() == pytest.approx(0.5 * 40)
    # the members' answers on the gold set are bought too (1 good at 0.01 + 4 noisy at 0.001)
    assert meta.loc[meta["source"] == "learned", "cost_usd"].sum() == pytest.approx(40 * 0.014)
    assert set(ledger["id"]) & set(task.ids["test"]) == set()
    assert res.info["n_aggregator_gold"] == 40
    assert res.rounds["cost_gold"].iloc[-1] == pytest.approx(20 + 40 * 0.014)
    # the oracle's labels come from the learned fit: mostly right on what it bought
    q = res.queried
    gold_of = items.set_index("id")["gold"]
    assert np.mean(q["label"].to_numpy(dtype=int) == gold_of.loc[q["id"]].to_numpy()) > 0.8


def test_mean_and_learned_use_recorded_probabilities():
    ids = [f"i{k}" for k in range(4)]
    confident = make_annotations({"id": ids, "label": [0, 0, 1, 1],
                                  "probs": [{"label": {"neutral": 0.9, "critical": 0.1}}] * 2
                                  + [{"label": {"critical": 0.55, "neutral": 0.45}}] * 2})
    hard = make_annotations({"id": ids, "label": [1, 1, 0, 0]})
    out = annotate_mixture({"a": confident, "b": hard}, {"method": "mean"}, NAMES, log=lambda _m: None)
    post = [json.loads(a)["posterior"] for a in out["answers"]]
    assert post[0]["neutral"] == pytest.approx((0.9 + 0.0) / 2) and post[0]["critical"] == pytest.approx(0.55)
    assert out["label"].tolist()[:2] == [1, 1]                 # 0.55 critical beats 0.45 neutral
    assert post[2]["neutral"] == pytest.approx((0.45 + 1.0) / 2)
    member_mean = json.loads(out["answers"][0])["member_mean"]
    assert member_mean["hostile"] == 0.0 and member_mean["neutral"] == pytest.approx(0.45)
    # learned: features carry the probabilities, so two items with equal hard votes but
    # different confidence are told apart
    learned = annotate_mixture({"a": confident, "b": hard}, {"method": "learned"}, NAMES,
                               log=lambda _m: None, gold={"i0": 0, "i1": 0, "i2": 1, "i3": 1})
    assert learned["label"].tolist() == [0, 0, 1, 1]
