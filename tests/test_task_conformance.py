"""One contract, every registered task: items, annotation tables, oracle, learner, strategies,
metrics and agreement, each through the stage code that serves every task.

A task joins the registry (llmal.tasks.registry) with a plugin and its example study
(`Task.example()`: a small dataset it generates itself, an encoder, a recipe and the strategies
it offers); nothing here names a task, so a new one runs through this file unchanged.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmal.annotate.run import annotate
from llmal.contracts import ITEM_COLUMNS, SPLITS, annotation_cost, check_annotations
from llmal.data.prepare import prepare
from llmal.engine.loop import simulate
from llmal.engine.oracle import GoldSource, TableOracle
from llmal.engine.schedule import Schedule
from llmal.models.encoders import encode, fit_mask
from llmal.results.agreement import task_agreement
from llmal.tasks.registry import CAPABILITIES, task_named

TASKS = sorted(CAPABILITIES)
HUMAN = {"kind": "human", "mode": "gold", "cost_per_label": 0.5}


@pytest.fixture(scope="module", params=TASKS)
def study(request, tmp_path_factory):
    task = task_named(request.param)
    ex = task.example()
    config = {"dataset": ex["dataset"], "labels": ex["labels"], "split": ex["split"],
              "annotators": {"human": HUMAN, "noisy": {**ex["noisy"], "cost_per_label": 0.01}}}
    items, split = prepare(task, ex["dataset"], ex["labels"], ex["split"],
                           cache_dir=tmp_path_factory.mktemp("cache"))
    tables = {name: annotate(items, split, spec, config, name=name, task=task, log=lambda m: None)
              for name, spec in config["annotators"].items()}
    ids = items["id"].astype(str).tolist()
    features = encode(ids, items["text"].tolist(), ex["encoder"], fit_mask(ids, split, ex["encoder"]))
    return task, ex, config, items, split, tables, features


def test_items_and_split_follow_the_contract(study):
    task, ex, config, items, split, *_ = study
    assert list(items.columns[:len(ITEM_COLUMNS)]) == ITEM_COLUMNS
    assert items["id"].is_unique and len(items) == ex["dataset"]["n_items"]
    assert sorted(split["id"].astype(str)) == sorted(items["id"].astype(str))
    counts = split["split"].value_counts()
    assert set(counts.index) == set(SPLITS) and counts.min() > 0
    assert task.capabilities.item_noun and "labels" in task.capabilities.budget_units


def test_annotators_write_one_annotation_table_and_never_see_test(study):
    task, ex, config, items, split, tables, _ = study
    visible = set(split.loc[split["split"].isin(["pool", "dev"]), "id"].astype(str))
    for name, table in tables.items():
        check_annotations(table, where=name)
        assert set(table["id"].astype(str)) == visible
        assert set(table["status"]) <= {"ok", "invalid", "failed"}
        ok_ids, labels = task.run_task(items, split, ex["labels"]).usable(table)
        assert len(ok_ids) == len(labels) == int((table["status"] == "ok").sum())
    assert annotation_cost(tables["human"]) == pytest.approx(0.5 * len(visible))
    # the simulated annotator is noisy: it disagrees with the human (gold) one somewhere
    both = tables["human"].merge(tables["noisy"], on="id", suffixes=("_h", "_n"))
    differs = [c for c in ("label", "spans") if f"{c}_h" in both and (both[f"{c}_h"] != both[f"{c}_n"]).any()]
    assert differs


def test_the_oracle_sells_what_the_table_holds_and_charges_it(study):
    task, ex, config, items, split, tables, _ = study
    run = task.run_task(items, split, ex["labels"])
    oracle = TableOracle("noisy", tables["noisy"])
    ids = run.ids["pool"][:7]
    bought = oracle.acquire(ids)
    assert bought.table["id"].astype(str).tolist() == ids
    assert bought.total == pytest.approx(0.07)
    assert oracle.acquire(ids).total == 0       # paid once
    with pytest.raises(Exception, match="test item"):
        run.gold(run.ids["test"][:1])


def _learner(task, ex, run, features, seed=0):
    return task.build_learner(dict(ex["recipe"]), dict(ex["encoder"]), texts={}, features=features,
                              n_classes=len(run.label_names), seed=seed, run_task=run)


def test_a_learner_trained_on_gold_beats_the_uniform_guess_on_test(study):
    task, ex, config, items, split, tables, features = study
    run = task.run_task(items, split, ex["labels"])
    ids, labels = run.usable(tables["human"])
    pool = set(run.ids["pool"])
    keep = [k for k, i in enumerate(ids) if i in pool]
    learner = _learner(task, ex, run, features)
    learner.fit([ids[k] for k in keep], labels[keep])
    out = learner.predict_proba(run.ids["test"])
    trained, uniform = run.evaluate(out), run.evaluate(run.uniform(len(run.ids["test"])))
    assert trained["f1_macro"] > uniform["f1_macro"] + 0.1
    predictions = run.predictions(out)
    assert len(predictions) and {"id", "pred", "gold"} <= set(predictions.columns)
    # the same seed fits the same learner
    again = _learner(task, ex, run, features)
    again.fit([ids[k] for k in keep], labels[keep])
    assert run.evaluate(again.predict_proba(run.ids["test"]))["f1_macro"] == trained["f1_macro"]


def test_every_strategy_of_the_task_picks_distinct_unlabelled_pool_items(study):
    task, ex, config, items, split, tables, features = study
    run = task.run_task(items, split, ex["labels"])
    ids, labels = run.usable(tables["human"])
    labelled = [i for i in ids if i in set(run.ids["pool"])][:40]
    lab = dict(zip(ids, list(labels)))
    learner = _learner(task, ex, run, features)
    learner.fit(labelled, np.array([lab[i] for i in labelled], dtype=object if labels.dtype == object else None))
    candidates = [i for i in run.ids["pool"] if i not in set(labelled)]
    for name in ex["strategies"]:
        ctx = run.query_context(learner, candidates, labelled, rng=np.random.default_rng(0), seed=0)
        picked = [candidates[k] for k in run.make_strategy(name).query(ctx, 9)]
        assert len(set(picked)) == 9 and set(picked) <= set(candidates), name


def test_an_al_run_buys_labels_through_the_ledger_and_scores_every_round(study):
    task, ex, config, items, split, tables, features = study
    run = task.run_task(items, split, ex["labels"])
    gold = GoldSource(run.gold(run.ids["pool"] + run.ids["dev"]), 0.0)
    result = simulate(task=run, oracle=TableOracle("noisy", tables["noisy"]), gold=gold,
                      classifier=_learner(task, ex, run, features), sampler=ex["strategies"][1], seed=0,
                      schedule=Schedule.from_settings({"initial": 20, "batch": 20, "rounds": 2}),
                      log=lambda m: None)
    rounds = result.rounds
    assert rounds["n_labels"].tolist() == [20, 40, 60]
    assert rounds["cost_al"].iloc[-1] == pytest.approx(0.6)
    ledger = result.ledger
    assert (ledger["purpose"].isin(["initial", "al", "dev"])).all()
    assert not set(ledger["id"].astype(str)) & set(run.ids["test"])
    assert result.rounds["f1_macro"].notna().all()


def test_agreement_compares_the_annotators_on_the_task_unit(study):
    task, ex, config, items, split, tables, _ = study
    report = task_agreement(task, tables, items, split, config, reference="human")
    table = report.table.set_index("annotator")
    assert set(table.index) == {"human", "noisy"}
    assert table.loc["human", "kappa"] == pytest.approx(1.0)
    assert table.loc["noisy", "kappa"] < 1.0
