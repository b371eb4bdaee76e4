"""Oracles and the ledger: what a run may see, and that every label is paid for once, in full."""
import json

import numpy as np
import pandas as pd
import pytest

from llmal.contracts import annotation_cost, make_annotations
from llmal.datasets.split import assign_split
from llmal.engine.loop import simulate
from llmal.engine.oracle import GoldSource, LazyOracle, MixtureOracle, TableOracle
from llmal.engine.schedule import Schedule
from llmal.models.encoders import Features, encode, fit_mask
from llmal.models.logistic import LogisticHead
from llmal.tasks.classification.human import annotate_human
from llmal.tasks.classification.mixture import annotate_mixture
from llmal.tasks.classification.task import ClassificationTask

NAMES = ["neg", "pos"]


def table(ids, labels, cost=0.01, request_ids=None, status=None):
    return make_annotations({"id": list(ids), "label": pd.array(labels, dtype="Int64"),
                             "status": status or "ok", "cost_usd": cost,
                             "request_id": request_ids if request_ids is not None else ""})


def test_duplicate_texts_pay_their_one_request_once_in_full():
    # a, b and c are one text (one request); d is another
    t = table(["a", "b", "c", "d"], [1, 1, 1, 0], cost=0.3, request_ids=["r1", "r1", "r1", "r2"])
    assert annotation_cost(t) == pytest.approx(0.6)
    oracle = TableOracle("llm", t)
    assert oracle.estimate(["b", "c", "d"]).tolist() == pytest.approx([0.3, 0.0, 0.3])
    first = oracle.acquire(["b", "d"])
    assert first.charged.tolist() == pytest.approx([0.3, 0.3])      # full price, not 1/3
    later = oracle.acquire(["a", "c", "b"])                          # same request, already paid
    assert later.charged.tolist() == [0.0, 0.0, 0.0]
    assert later.table["label"].tolist() == [1, 1, 1]


def test_a_human_majority_label_costs_one_label_per_annotator_consulted():
    items = pd.DataFrame({"id": ["x", "y", "z"], "gold": [1, 0, 1],
                          "ann_1": pd.array([1, 0, None], dtype="Int64"),
                          "ann_2": pd.array([1, None, None], dtype="Int64"),
                          "ann_3": pd.array([0, 0, None], dtype="Int64")})
    majority = annotate_human(items, {"mode": "majority", "cost_per_label": 0.5})
    assert majority["cost_usd"].tolist() == pytest.approx([1.5, 1.0, 0.5])  # z: gold, one label
    sample = annotate_human(items, {"mode": "sample", "cost_per_label": 0.5})
    assert sample["cost_usd"].tolist() == pytest.approx([0.5, 0.5, 0.5])


def planted_members(n_acquired=60, n_rest=900, seed=0):
    """On the first `n_acquired` items members A and B are right and C, D guess; on the rest
    A and B guess and C, D are right. Item t0 (acquired, truth pos): A and B say pos, C and D neg."""
    rng = np.random.default_rng(seed)
    n = n_acquired + n_rest
    ids = [f"t{k}" for k in range(n)]
    truth = rng.integers(0, 2, n)
    truth[0] = 1
    votes = {}
    for name, right_first in (("A", True), ("B", True), ("C", False), ("D", False)):
        v = rng.integers(0, 2, n)
        right = np.arange(n) < n_acquired if right_first else np.arange(n) >= n_acquired
        v[right] = truth[right]
        v[0] = 1 if right_first else 0
        votes[name] = table(ids, v)
    return ids, votes


def mixture(members, spec):
    return MixtureOracle("mix", {m: TableOracle(m, t) for m, t in members.items()},
                         lambda t: annotate_mixture(t, spec, NAMES, log=lambda _m: None))


def test_mixture_oracle_fits_dawid_skene_on_acquired_items_only():
    ids, members = planted_members()
    spec = {"method": "dawid_skene"}
    oracle = mixture(members, spec)
    oracle.acquire(ids[:60])
    assert int(oracle.current(["t0"])["label"].iloc[0]) == 1    # trusts A and B: right on what it bought
    whole_pool = annotate_mixture(members, spec, NAMES, log=lambda _m: None).set_index("id")
    assert int(whole_pool.loc["t0", "label"]) == 0               # whole-pool EM trusts C and D
    # votes on items never acquired change nothing
    flipped = {m: t.assign(label=pd.array(np.where(np.arange(len(t)) >= 60, 1 - t["label"], t["label"]),
                                          dtype="Int64")) for m, t in members.items()}
    again = mixture(flipped, spec)
    again.acquire(ids[:60])
    pd.testing.assert_frame_equal(oracle.current(ids[:60]), again.current(ids[:60]))
    # and it refits when more is acquired: now C and D look reliable
    oracle.acquire(ids[60:])
    assert int(oracle.current(["t0"])["label"].iloc[0]) == 0
    assert oracle.fits == 2


def test_a_member_shared_by_nested_mixtures_is_asked_and_charged_once():
    ids = ["a", "b", "c"]
    calls = []

    def fetcher(name, cost):
        def fetch(asked):
            calls.append((name, list(asked)))
            return table(asked, [1] * len(asked), cost=cost)
        return fetch

    shared = LazyOracle("shared", fetcher("shared", 1.0), lambda x: np.ones(len(x)))
    other = TableOracle("other", table(ids, [0, 0, 0], cost=0.1))
    third = TableOracle("third", table(ids, [1, 1, 1], cost=0.01))
    agg = lambda t: annotate_mixture(t, {"method": "majority"}, NAMES, log=lambda _m: None)  # noqa: E731
    inner = MixtureOracle("inner", {"shared": shared, "other": other}, agg)
    outer = MixtureOracle("outer", {"inner": inner, "shared": shared, "third": third}, agg)
    assert outer.estimate(ids).tolist() == pytest.approx([2.11] * 3)  # an estimate may count it twice
    got = outer.acquire(ids)
    assert got.charged.tolist() == pytest.approx([1.11, 1.11, 1.11])
    assert calls == [("shared", ["a", "b", "c"])]


def test_lazy_oracle_sends_only_new_items_one_call_per_acquisition():
    sent = []

    def fetch(asked):
        sent.append(list(asked))
        return table(asked, [1] * len(asked), cost=0.002)

    oracle = LazyOracle("llm", fetch, lambda x: np.full(len(x), 0.005), visible={"a", "b", "c", "d"})
    assert oracle.estimate(["a", "b"]).tolist() == pytest.approx([0.005, 0.005])  # planned price
    oracle.acquire(["a", "b"])
    assert oracle.estimate(["c"]).tolist() == pytest.approx([0.002])              # price seen so far
    assert oracle.acquire(["b", "c"]).charged.tolist() == pytest.approx([0.0, 0.002])
    assert sent == [["a", "b"], ["c"]]
    with pytest.raises(ValueError, match="'e'.*limit"):
        oracle.acquire(["e"])


def world(n=600, seed=0):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 4)) + gold[:, None] * 2.0
    ids = [f"i{k:03d}" for k in range(n)]
    items = pd.DataFrame({"id": ids, "text": ids, "gold": gold, "topic": "", "source": "s"})
    split = pd.DataFrame({"id": ids, "split": np.where(np.arange(n) < 150, "test",
                                                        np.where(np.arange(n) < 250, "dev", "pool"))})
    return items, split, Features(np.array(ids), X)


def test_gold_sets_are_bought_through_the_ledger_once_per_item():
    items, split, feats = world()
    task = ClassificationTask(items, split, NAMES, "pos")
    demos = [f"i{k:03d}" for k in range(150, 166)]                       # 16 dev items
    oracle = TableOracle("sim", table(items["id"][150:], items["gold"][150:], cost=0.001), demos)
    gold = GoldSource(task.gold(task.ids["pool"] + task.ids["dev"]), 0.25)
    res = simulate(task=task, oracle=oracle, gold=gold, sampler="random", seed=0,
                   classifier=LogisticHead(feats, recipe={}, n_classes=2, seed=0),
                   schedule=Schedule(initial=20, batch=10, rounds=2), log=lambda m: None)
    ledger = res.ledger
    assert (ledger["purpose"] == "demonstrations").sum() == 16
    assert set(ledger.loc[ledger["purpose"] == "demonstrations", "source"]) == {"gold"}
    assert res.rounds["cost_gold"].iloc[-1] == pytest.approx(16 * 0.25)
    assert res.rounds["cost_dev"].iloc[-1] == pytest.approx(100 * 0.001)     # the dev split, bought
    assert res.rounds["cost_total"].iloc[-1] == pytest.approx(16 * 0.25 + 40 * 0.001 + 100 * 0.001)
    assert res.rounds["dev_f1_macro"].notna().all()
    with pytest.raises(ValueError, match="test item"):
        task.gold(["i000"])


def test_duplicate_texts_fall_into_one_split():
    texts = [f"text {k % 150}" for k in range(600)]           # every text 4 times
    texts[7] = "  TEXT   7 "                                     # same after normalising
    items = pd.DataFrame({"id": [str(k) for k in range(600)], "text": texts,
                          "gold": [k % 2 for k in range(150)] * 4})
    split = assign_split(items, test=0.2, dev=0.1, seed=0).assign(text=texts)
    key = split["text"].str.split().str.join(" ").str.casefold()
    assert (split.groupby(key)["split"].nunique() == 1).all()
    assert set(split["split"]) == {"pool", "dev", "test"}
    # a dataset's own split that puts one text in pool and test: the copy in pool moves to test
    own = items.assign(meta_split=["test" if k < 150 else "pool" for k in range(600)])
    moved = assign_split(own, test=0.2, dev=0.0, seed=0, log=lambda m: None)
    assert (moved["split"] == "test").sum() == 600                # all copies follow the test copy


def test_tfidf_fits_on_pool_and_dev_only_unless_transductive():
    ids = ["p1", "p2", "t1"]
    texts = ["alpha beta", "alpha gamma", "zeta omega"]
    split = pd.DataFrame({"id": ids, "split": ["pool", "dev", "test"]})
    spec = {"kind": "tfidf", "min_df": 1, "ngram_range": [1, 1]}
    inductive = encode(ids, texts, spec, fit_mask(ids, split, spec))
    assert inductive.X.shape[1] == 3 and inductive.X[2].nnz == 0   # test words are not features
    transductive = encode(ids, texts, {**spec, "transductive": True},
                          fit_mask(ids, split, {**spec, "transductive": True}))
    assert transductive.X.shape[1] == 5


def test_run_json_is_strict_json(tmp_path):
    from llmal.contracts import write_json

    write_json({"a": float("nan"), "b": [np.float64("inf"), 1.5]}, tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text(),
                      parse_constant=lambda c: pytest.fail(f"bare {c}")) == {"a": None, "b": [None, 1.5]}
