"""Routed annotators (kind: routed) on planted cases: a simulated LLM whose errors concentrate on
its low-confidence items, humans as the fallback, and what routing buys and costs."""
import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from llmal.annotate.routing import route_reasons, routed_table, routing_summary
from llmal.annotate.run import annotate
from llmal.config import ConfigError, validate_config
from llmal.contracts import make_annotations
from llmal.engine.loop import simulate
from llmal.engine.oracle import GoldSource, TableOracle
from llmal.engine.routed import RoutedOracle
from llmal.engine.schedule import Schedule
from llmal.models.encoders import Features
from llmal.models.logistic import LogisticHead
from llmal.tasks.classification.simulated import annotate_simulated
from llmal.tasks.classification.task import ClassificationTask
from llmal.tasks.registry import task_named

NAMES = ["neg", "pos"]
LLM_PRICE, HUMAN_PRICE = 0.001, 0.05


def world(n=3000, seed=0):
    """Items with gold, features that separate the classes, and a test/dev/pool split."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 2, n)
    ids = [f"i{k:04d}" for k in range(n)]
    X = rng.normal(size=(n, 4)) + gold[:, None] * 1.5
    items = pd.DataFrame({"id": ids, "text": ids, "gold": gold, "topic": "", "source": "s"})
    split = pd.DataFrame({"id": ids, "split": np.where(np.arange(n) < 500, "test",
                                                        np.where(np.arange(n) < 600, "dev", "pool"))})
    return items, split, Features(np.array(ids), X)


def simulated_llm(items, signal):
    """Over-flags: 25 % of negatives called positive (FP), 5 % of positives missed (FN)."""
    return annotate_simulated(items, {"seed": 1, "error": {"neg": 0.25, "pos": 0.05},
                                      "confidence": {"signal": signal}, "cost_per_label": LLM_PRICE}, NAMES)


def humans(items):
    return task_named(None).annotate(items, {"kind": "human", "mode": "gold", "cost_per_label": HUMAN_PRICE},
                                     {"labels": {"names": NAMES}}, name="crowd", demonstrations=(None, None),
                                     log=lambda m: None)


def fp_fn(labels, gold):
    return int(((labels == 1) & (gold == 0)).sum()), int(((labels == 0) & (gold == 1)).sum())


def test_the_simulated_llms_errors_concentrate_on_its_low_confidence_items():
    items, _, _ = world()
    llm = simulated_llm(items, signal=2.0)
    conf = np.array([max(eval(c)["label"].values()) for c in llm["probs"]])   # noqa: S307 (our JSON)
    wrong = llm["label"].astype(int).to_numpy() != items["gold"].to_numpy()
    assert 0.1 < wrong.mean() < 0.2
    low = conf <= np.quantile(conf, 0.2)
    assert wrong[low].mean() > 3 * wrong[~low].mean()        # informative ...
    assert wrong[~low].any()                                 # ... but imperfect
    noise = simulated_llm(items, signal=0.0)
    conf0 = np.array([max(eval(c)["label"].values()) for c in noise["probs"]])  # noqa: S307
    assert abs(np.corrcoef(conf0, wrong)[0, 1]) < 0.05        # signal 0: says nothing


def test_routing_the_least_confident_fifth_to_humans_removes_most_errors_at_its_exact_price():
    items, split, feats = world()
    llm, crowd = simulated_llm(items, signal=2.0), humans(items)
    gold = items["gold"].to_numpy()
    # the annotate rule's table: the whole table routed at once
    table = routed_table(llm, crowd, route_reasons(llm, {"fallback_share": 0.2}),
                         primary_name="llm", fallback_name="crowd")
    before, after = llm["label"].astype(int).to_numpy(), table["label"].astype(int).to_numpy()
    errors_before, errors_after = int((before != gold).sum()), int((after != gold).sum())
    assert errors_after < 0.3 * errors_before                 # most errors removed
    fp0, fn0 = fp_fn(before, gold)
    fp1, fn1 = fp_fn(after, gold)
    assert fp0 > 3 * fn0 and fp1 < 0.3 * fp0                  # the over-flagging is what goes
    assert f1_score(gold, after, average="macro") > f1_score(gold, before, average="macro") + 0.08
    assert routing_summary(table) == {"routed_share": 0.2, "routed": 600, "reasons": {"fallback_share": 600}}
    assert set(table.loc[table["route"] != "", "source"]) == {"crowd"}
    assert table["cost_usd"].sum() == pytest.approx(3000 * LLM_PRICE + 600 * HUMAN_PRICE)

    # an AL run routes each round's purchase; the ledger pays the LLM for every label and the
    # crowd for exactly a fifth of them
    task = ClassificationTask(items, split, NAMES, "pos")
    results = {}
    for name, oracle in {
        "llm": TableOracle("llm", llm),
        "routed": RoutedOracle("routed", TableOracle("llm", llm), TableOracle("crowd", crowd),
                               {"fallback_share": 0.2}),
    }.items():
        results[name] = simulate(task=task, oracle=oracle, gold=GoldSource({}, 0.0), sampler="random", seed=0,
                                 classifier=LogisticHead(feats, recipe={}, n_classes=2, seed=0),
                                 schedule=Schedule(initial=100, batch=50, rounds=4), log=lambda m: None)
    res = results["routed"]
    ledger = res.ledger
    n_bought = 100 + 100 + 4 * 50                              # dev + initial + 4 rounds
    by_source = ledger.groupby("source")["cost_usd"].agg(["count", "sum"])
    assert by_source.loc["llm", "count"] == n_bought
    assert by_source.loc["crowd", "count"] == n_bought // 5   # 40 of round 0's 200, 10 of each 50
    assert res.rounds["cost_total"].iloc[-1] == pytest.approx(n_bought * LLM_PRICE + 0.2 * n_bought * HUMAN_PRICE)
    assert res.info["oracle"]["routed_share"] == pytest.approx(0.2)
    bought = res.queried.set_index("id")["label"].astype(int)
    plain = results["llm"].queried.set_index("id")["label"].astype(int)
    g = items.set_index("id")["gold"]
    assert (bought != g[bought.index]).sum() < 0.35 * (plain != g[plain.index]).sum()
    assert res.rounds["f1_macro"].iloc[-1] > results["llm"].rounds["f1_macro"].iloc[-1]


def test_routing_on_a_pure_noise_confidence_buys_no_more_than_random_routing():
    items, _, _ = world()
    gold = items["gold"].to_numpy()
    rng = np.random.default_rng(7)
    removed = {}
    for signal in (0.0, 2.0):
        llm = simulated_llm(items, signal=signal)
        wrong = llm["label"].astype(int).to_numpy() != gold
        routed = np.array([bool(r) for r in route_reasons(llm, {"fallback_share": 0.2})])
        removed[signal] = (wrong & routed).sum() / wrong.sum()
        random_removed = [wrong[rng.choice(len(wrong), 600, replace=False)].sum() / wrong.sum()
                          for _ in range(300)]
    assert removed[0.0] <= np.quantile(random_removed, 0.975)   # noise buys what chance buys ...
    assert abs(removed[0.0] - np.mean(random_removed)) < 0.05
    assert removed[2.0] > np.quantile(random_removed, 0.999) + 0.4   # ... a real signal much more


def test_threshold_disagreement_and_failed_items_are_routed_with_their_reason():
    primary = pd.DataFrame({
        "id": ["a", "b", "c", "d", "e"], "label": [1, 0, None, 1, 0],
        "status": ["ok", "ok", "invalid", "ok", "ok"],
        "probs": ['{"label": {"neg": 0.1, "pos": 0.9}}', '{"label": {"neg": 0.55, "pos": 0.45}}', "{}",
                  '{"votes": {"neg": 0.4, "pos": 0.6}, "agreement": 0.6, "n_samples": 5}', "{}"],
    })
    primary = make_annotations(primary)
    assert route_reasons(primary, {"threshold": 0.7}) == ["", "below_threshold", "status", "disagreement",
                                                          "no_confidence"]
    assert route_reasons(primary, {"threshold": 0.5, "on_disagreement": False,
                                   "confidence_from": "probability"}) == ["", "", "status", "no_confidence",
                                                                          "no_confidence"]


def test_annotate_routes_a_precomputed_table_and_the_config_check_names_bad_keys():
    items, split, _ = world(n=800)       # 500 test, 100 dev, 200 pool
    llm, crowd = simulated_llm(items, 2.0), humans(items)
    spec = {"kind": "routed", "primary": "llm", "fallback": "crowd", "threshold": 0.8}
    out = annotate(items, split, spec, {"labels": {"names": NAMES}}, name="routed", task=task_named(None),
                   member_tables={"llm": llm, "crowd": crowd}, log=lambda m: None)
    assert len(out) == 300 and set(out["source"]) == {"llm", "crowd"}
    assert (out.loc[out["source"] == "crowd", "route"] == "below_threshold").all()

    def config(routed):
        return {"dataset": {"name": "t", "kind": "demo", "n_items": 300},
                "labels": {"names": ["not_hostile", "hostile"], "positive": "hostile"},
                "annotators": {"crowd": {"kind": "human"}, "llm": {"kind": "simulated", "confidence": {}},
                               "routed": routed},
                "encoders": {"tfidf": {"kind": "tfidf"}}, "seeds": [0],
                "conditions": {"c": {"annotator": "routed", "sampler": "random"}}}

    with pytest.raises(ConfigError, match=r"annotators\.routed\.fallback: 'nobody' is not an annotator"):
        validate_config(config({"kind": "routed", "primary": "llm", "fallback": "nobody", "threshold": 0.7}))
    with pytest.raises(ConfigError, match=r"annotators\.routed\.fallback: 'llm' is also the primary"):
        validate_config(config({"kind": "routed", "primary": "llm", "fallback": "llm"}))
    with pytest.raises(ConfigError, match=r"annotators\.routed.*threshold"):
        validate_config(config({"kind": "routed", "primary": "llm", "fallback": "crowd", "threshold": 1.5}))
    swept = validate_config(config({"kind": "routed", "primary": "llm", "fallback": "crowd",
                                    "sweep": {"threshold": [0.6, 0.75]}}))
    assert list(swept["conditions"]) == ["c-t0p6", "c-t0p75"]
    assert swept["annotators"]["routed-t0p75"]["threshold"] == 0.75
    assert swept["conditions"]["c-t0p6"]["annotator"] == "routed-t0p6"


def test_a_precomputed_routed_condition_replays_both_tables_and_routes_round_by_round():
    from llmal.engine.oracles import build_oracle

    items, split, feats = world(n=1600)
    llm, crowd = simulated_llm(items, 2.0), humans(items)
    annotators = {"llm": {"kind": "simulated"}, "crowd": {"kind": "human"},
                  "routed": {"kind": "routed", "primary": "llm", "fallback": "crowd", "fallback_share": 0.2}}
    oracle = build_oracle("routed", annotators=annotators, mode="precomputed", items=items, split=split,
                          tables={"llm": llm, "crowd": crowd}, llm={"labels": {"names": NAMES}},
                          task=task_named(None), log=lambda m: None)
    assert isinstance(oracle, RoutedOracle)
    first = oracle.acquire([f"i{k:04d}" for k in range(600, 650)])     # 50 items: 10 routed
    second = oracle.acquire([f"i{k:04d}" for k in range(620, 720)])    # 30 again (free) + 70 new: 14 routed
    assert (first.table["route"] != "").sum() == 10
    assert first.total == pytest.approx(50 * LLM_PRICE + 10 * HUMAN_PRICE)
    assert second.total == pytest.approx(70 * LLM_PRICE + 14 * HUMAN_PRICE)
    again = oracle.current([f"i{k:04d}" for k in range(600, 650)])
    pd.testing.assert_frame_equal(again, first.table)                   # a route is kept
    assert {p.source for p in second.parts} == {"llm", "crowd"}


def test_the_frontier_marks_the_pareto_front_the_cheapest_near_best_and_gain_per_dollar():
    from llmal.results.frontier import frontier_answers, frontier_table
    from llmal.results.settings import AggregateSettings

    points = {"human_al": (0.80, 60.0), "llm_al": (0.70, 0.5), "routed_al-t0p7": (0.795, 10.0),
              "routed_al-t0p9": (0.79, 30.0), "llm_random": (0.65, 0.5)}
    finals = pd.DataFrame([{"condition": c, "encoder": "tfidf", "seed": s, "f1_macro": f + d, "cost_total": cost,
                            "positive": "pos", "label_names": '["neg", "pos"]'}
                           for c, (f, cost) in points.items() for s, d in ((0, -0.01), (1, 0.01))])
    config = {"conditions": {"human_al": {"annotator": "crowd", "sampler": "entropy"},
                             "llm_al": {"annotator": "llm", "sampler": "entropy"},
                             "routed_al-t0p7": {"annotator": "r7", "sampler": "entropy"},
                             "routed_al-t0p9": {"annotator": "r9", "sampler": "entropy"},
                             "llm_random": {"annotator": "llm", "sampler": "random"}},
              "annotators": {"crowd": {"kind": "human"}, "llm": {"kind": "simulated"},
                             "r7": {"kind": "routed", "primary": "llm", "fallback": "crowd", "threshold": 0.7},
                             "r9": {"kind": "routed", "primary": "llm", "fallback": "crowd", "threshold": 0.9}},
              "labels": {"names": NAMES, "positive": "pos"}, "aggregate": {}}
    table = frontier_table(finals, config, AggregateSettings.from_config(config, finals)).set_index("condition")
    assert table["pareto"].to_dict() == {"human_al": True, "llm_al": True, "routed_al-t0p7": True,
                                         "routed_al-t0p9": False, "llm_random": False}
    assert table["cheapest_within_best"].to_dict() == {"human_al": False, "llm_al": False, "routed_al-t0p7": True,
                                                       "routed_al-t0p9": False, "llm_random": False}
    assert table.loc["routed_al-t0p7", "compared_with"] == "llm_al"
    assert table.loc["routed_al-t0p7", "metric_per_dollar"] == pytest.approx(0.095 / 9.5)
    assert table.loc["routed_al-t0p9", "metric_per_dollar"] == pytest.approx(0.09 / 29.5)
    (answer,) = frontier_answers(table.reset_index())
    assert (answer["best"], answer["cheapest_within_best"]) == ("human_al", "routed_al-t0p7")
    assert answer["pareto"] == ["llm_al", "routed_al-t0p7", "human_al"]


def test_a_sweep_over_shares_and_a_taken_name_are_reported_at_check_time():
    base = {"dataset": {"name": "t", "kind": "demo", "n_items": 300},
            "labels": {"names": ["not_hostile", "hostile"], "positive": "hostile"},
            "annotators": {"crowd": {"kind": "human"}, "llm": {"kind": "simulated", "confidence": {}},
                           "routed": {"kind": "routed", "primary": "llm", "fallback": "crowd",
                                      "sweep": {"fallback_share": [0.1, 0.25]}}},
            "encoders": {"tfidf": {"kind": "tfidf"}}, "seeds": [0],
            "conditions": {"c": {"annotator": "routed", "sampler": "random"}},
            "agreement": {"annotators": ["routed"]}}
    swept = validate_config(copy.deepcopy(base))
    assert list(swept["conditions"]) == ["c-s0p1", "c-s0p25"]
    assert swept["agreement"]["annotators"] == ["routed-s0p1", "routed-s0p25"]
    assert swept["annotators"]["routed-s0p25"]["fallback_share"] == 0.25
    taken = copy.deepcopy(base)
    taken["annotators"]["routed-s0p1"] = {"kind": "human"}
    with pytest.raises(ConfigError, match=r"annotators\.routed\.sweep\.fallback_share: expands into "
                                          r"annotator 'routed-s0p1', a name already taken"):
        validate_config(taken)
    nested = copy.deepcopy(base)
    nested["annotators"]["outer"] = {"kind": "routed", "primary": "routed", "fallback": "crowd"}
    with pytest.raises(ConfigError, match=r"annotators\.routed\.sweep: annotator 'outer' is made of it"):
        validate_config(nested)
