import numpy as np
import pandas as pd
import pytest
from al_helpers import simulate_table as simulate

from llmal.contracts import make_annotations
from llmal.models.encoders import Features
from llmal.models.logistic import LogisticHead
from llmal.strategies import strategy_names
from llmal.tasks.classification.metrics import classification_metrics, soft_label_metrics

NAMES = ["neg", "pos"]


def world(n=1200, seed=0, miss=0.0, cost=0.01, invalid_every=0, pos_rate=0.5):
    """Two Gaussian blobs; an annotator who misses a share `miss` of the positives."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 2, n) if pos_rate == 0.5 else (rng.random(n) < pos_rate).astype(int)
    X = rng.normal(size=(n, 5)) + gold[:, None] * 1.5
    ids = np.array([f"i{k:04d}" for k in range(n)])
    items = pd.DataFrame({"id": ids, "text": "t", "gold": gold, "topic": rng.choice(["a", "b"], n),
                          "source": "s", "ann_1": pd.array(gold, dtype="Int64")})
    split = pd.DataFrame({"id": ids, "split": np.where(np.arange(n) < 300, "test",
                                                        np.where(np.arange(n) < 400, "dev", "pool"))})
    labels = np.where((rng.random(n) < miss) & (gold == 1), 0, gold)
    status = np.array(["ok"] * n, dtype=object)
    if invalid_every:
        status[::invalid_every] = "invalid"
    ann = make_annotations({"id": ids[300:], "label": pd.Series(labels[300:], dtype="Int64").mask(status[300:] != "ok"),
                            "status": status[300:], "cost_usd": cost})
    return items, split, ann, Features(ids, X)


def run(sampler, settings, seed=0, **kw):
    items, split, ann, feats = world(**kw)
    clf = LogisticHead(feats, recipe={"C": 1.0}, n_classes=2, seed=seed)
    return simulate(items=items, split=split, annotations=ann, classifier=clf, sampler=sampler,
                    settings=settings, label_names=NAMES, positive="pos", seed=seed, log=lambda m: None)


def test_random_sampling_schedule_and_costs():
    res = run("random", {"initial": 20, "batch": 10, "rounds": 3})
    r = res.rounds
    assert r["round"].tolist() == [0, 1, 2, 3]
    assert r["n_labels"].tolist() == [20, 30, 40, 50]
    assert r["cost_al"].tolist() == pytest.approx([0.2, 0.3, 0.4, 0.5])
    assert r["cost_total"].tolist() == pytest.approx([0.2, 0.3, 0.4, 0.5])  # linear head: no dev bought
    assert (r["cost_dev"] == 0).all() and (r["cost_gold"] == 0).all()
    assert len(res.queried) == 50 and res.queried["id"].is_unique
    assert set(res.queried["id"]).isdisjoint(res.predictions["id"])  # test never queried
    assert r["f1_macro"].iloc[-1] > 0.7
    assert res.ledger["purpose"].value_counts().to_dict() == {"initial": 20, "al": 30}
    assert res.ledger["cost_usd"].sum() == pytest.approx(r["cost_total"].iloc[-1])
    assert res.info["stop_reason"] == "completed" and r["stop"].iloc[-1] == "completed"


def test_full_sampler_trains_on_every_pool_item_once():
    res = run("full", {"initial": 20, "batch": 10, "rounds": 3})
    assert len(res.rounds) == 1 and res.rounds["n_labels"].iloc[0] == 800
    assert res.queried["id"].is_unique and len(res.queried) == 800
    assert {k: res.info[k] for k in ("n_pool", "n_dev", "n_test")} == {"n_pool": 800, "n_dev": 0, "n_test": 300}


def test_full_is_a_schedule_that_respects_both_budgets():
    by_labels = run("full", {"budget_labels": 120})
    assert by_labels.rounds["n_labels"].tolist() == [120]
    assert by_labels.info["stop_reason"] == "budget_labels"
    by_usd = run("full", {"budget_usd": 0.5})              # $0.01 a label: 50 labels, not 800
    assert by_usd.rounds["n_labels"].tolist() == [50]
    assert by_usd.rounds["cost_total"].iloc[0] == pytest.approx(0.5)
    assert by_usd.info["stop_reason"] == "budget_usd"
    # a seeded random order of the pool, not the pool's own order
    assert by_usd.queried["id"].tolist() != sorted(by_usd.queried["id"])


def test_invalid_labels_are_paid_for_but_not_trained_on():
    res = run("full", {}, invalid_every=4)
    row = res.rounds.iloc[0]
    assert row["n_labels"] == 800 and row["n_train"] == 600
    assert row["cost_total"] == pytest.approx(8.0)
    assert (res.ledger["status"] == "invalid").sum() == 200


def test_budgets_stop_the_run():
    by_labels = run("entropy", {"initial": 20, "batch": 20, "rounds": 10, "budget_labels": 55})
    assert by_labels.rounds["n_labels"].tolist() == [20, 40, 55]
    assert by_labels.info["stop_reason"] == "budget_labels"
    by_usd = run("random", {"initial": 20, "batch": 20, "rounds": 10, "budget_usd": 0.5})
    assert by_usd.rounds["cost_total"].max() <= 0.5 + 1e-9 and by_usd.rounds["n_labels"].max() == 50
    assert by_usd.info["stop_reason"] == "budget_usd"
    assert "budget_usd" in by_usd.info["stop_message"]


@pytest.mark.parametrize("sampler", ["entropy", "margin", "random"])
def test_pool_running_out_stops_every_sampler_cleanly(sampler):
    # a pool of 60 items, a schedule asking for 20 + 10 x 30
    res = run(sampler, {"initial": 20, "batch": 30, "rounds": 10}, n=460)
    assert res.rounds["n_labels"].tolist() == [20, 50, 60]
    assert res.info["stop_reason"] == "pool_exhausted"
    assert res.rounds["stop"].iloc[-1] == "pool_exhausted"


def test_initial_larger_than_the_pool_takes_the_pool_and_stops():
    res = run("entropy", {"initial": 5000, "batch": 10, "rounds": 3}, n=460)
    assert res.rounds["n_labels"].tolist() == [60]
    assert res.info["stop_reason"] == "pool_exhausted"


def test_budget_below_the_first_item_ends_with_no_labels_and_says_why():
    res = run("entropy", {"initial": 20, "batch": 10, "rounds": 3, "budget_usd": 0.001})
    assert res.rounds["n_labels"].tolist() == [0]
    assert res.info["stop_reason"] == "budget_usd"
    assert len(res.predictions) == 300 and res.ledger.empty


def test_an_annotator_without_one_valid_answer_stops_after_its_schedule():
    res = run("entropy", {"initial": 20, "batch": 10, "rounds": 3}, invalid_every=1)
    assert res.info["stop_reason"] == "no_two_classes"
    # round 0 kept buying at random, up to what the schedule allows (20 + 3 x 10)
    assert res.rounds["n_labels"].tolist() == [50] and res.rounds["n_train"].tolist() == [0]
    assert res.rounds["cost_total"].iloc[0] == pytest.approx(0.5)


def test_round_zero_buys_more_until_two_classes_are_usable():
    # 3 % positives: 8 random items rarely hold one, so round 0 goes on buying in batches of 8
    res = run("entropy", {"initial": 8, "batch": 8, "rounds": 6}, pos_rate=0.03)
    first = res.queried[res.queried["round"] == 0]
    assert len(first) > 8 and len(first) % 8 == 0
    assert first["label"].nunique() == 2 and first["label"].iloc[:-8].nunique() == 1
    assert res.rounds["n_labels"].iloc[-1] <= 8 + 6 * 8   # within the schedule's labels


def test_dev_labels_are_bought_from_the_annotator_when_the_recipe_reads_them():
    items, split, ann, feats = world(invalid_every=5)

    class EarlyStopping(LogisticHead):
        uses_dev = True
        seen_dev: list = []

        def fit(self, ids, labels, *, dev=None, **kw):
            self.seen_dev.append(dev)
            return super().fit(ids, labels, **kw)

    clf = EarlyStopping(feats, recipe={"C": 1.0}, n_classes=2, seed=0)
    res = simulate(items=items, split=split, annotations=ann, classifier=clf, sampler="random",
                   settings={"initial": 20, "batch": 10, "rounds": 1}, label_names=NAMES,
                   positive="pos", seed=0, log=lambda m: None)
    dev = res.ledger[res.ledger["purpose"] == "dev"]
    assert len(dev) == 100 and (dev["status"] == "invalid").sum() == 20   # charged whatever the status
    assert res.rounds["cost_dev"].iloc[-1] == pytest.approx(1.0)
    assert res.rounds["cost_total"].iloc[-1] == pytest.approx(1.0 + 0.3)
    ids, labels = clf.seen_dev[-1]
    assert len(ids) == 80 and set(ids) <= set(split.loc[split["split"] == "dev", "id"])


def test_same_seed_same_run_other_seed_other_queries():
    a = run("entropy", {"initial": 20, "batch": 10, "rounds": 2}, seed=1)
    b = run("entropy", {"initial": 20, "batch": 10, "rounds": 2}, seed=1)
    c = run("entropy", {"initial": 20, "batch": 10, "rounds": 2}, seed=2)
    timing = ["seconds", "train_seconds"]
    pd.testing.assert_frame_equal(a.rounds.drop(columns=timing), b.rounds.drop(columns=timing))
    assert not a.queried["id"].equals(c.queried["id"])


@pytest.mark.parametrize("strategy", [s for s in strategy_names() if s != "bald"])
def test_every_linear_head_strategy_runs_the_loop(strategy):
    res = run(strategy, {"initial": 20, "batch": 10, "rounds": 2}, n=700)
    assert res.rounds["n_labels"].tolist() == [20, 30, 40]
    assert res.queried["id"].is_unique and res.info["stop_reason"] == "completed"


def test_label_noise_hurts():
    clean = run("full", {}, miss=0.0).rounds.iloc[0]
    noisy = run("full", {}, miss=0.6).rounds.iloc[0]
    assert clean["f1_macro"] > noisy["f1_macro"] + 0.05
    assert noisy["fn"] > clean["fn"] * 1.5   # missed positives in training -> more false negatives


def test_metrics_by_hand():
    gold = np.array([1, 1, 0, 0, 0])
    probs = np.array([[0.2, 0.8], [0.7, 0.3], [0.1, 0.9], [0.9, 0.1], [0.6, 0.4]])
    m = classification_metrics(gold, probs, NAMES, positive=1)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 1, 1, 2)
    assert m["precision_pos"] == 0.5 and m["recall_pos"] == 0.5
    assert m["f1_macro"] == pytest.approx((0.5 + 2 / 3) / 2)
    s = soft_label_metrics(np.array([[1, 1], [0, 2], [0, 0]]), np.array([[0.5, 0.5], [0.5, 0.5], [1, 0]]))
    assert s["soft_ce"] == pytest.approx(np.log(2))
    assert s["soft_brier"] == pytest.approx((0 + 0.5) / 2)


def test_logistic_head_embed_and_perturbed_proba():
    import scipy.sparse as sp
    items, split, ann, feats = world(n=300)
    ids = list(feats.ids[:40])
    for C, X in ((2, feats.X), (3, feats.X)):
        y = np.arange(len(feats.ids)) % C if C == 3 else items["gold"].to_numpy()
        clf = LogisticHead(Features(feats.ids, X), recipe={}, n_classes=C, seed=0).fit(feats.ids, y)
        p = clf.predict_proba(ids)
        tiny = clf.perturbed_proba(ids, passes=3, scale=1e-7, seed=1)
        np.testing.assert_allclose(tiny, np.broadcast_to(p, tiny.shape), atol=1e-5)
        big = clf.perturbed_proba(ids, passes=3, scale=0.5, seed=1)
        assert np.abs(big - p).max() > 1e-2
        np.testing.assert_array_equal(big, clf.perturbed_proba(ids, passes=3, scale=0.5, seed=1))
    assert np.array_equal(clf.embed(ids), feats.X[:40].astype(np.float32))
    sparse = Features(feats.ids, sp.csr_matrix(np.abs(feats.X)))
    head = LogisticHead(sparse, recipe={"embed_dim": 3}, n_classes=2, seed=0)
    E = head.embed(ids)
    assert E.shape == (40, 3) and E.dtype == np.float32
    one_class = LogisticHead(feats, recipe={}, n_classes=2, seed=0).fit(ids[:5], np.zeros(5, int))
    assert one_class.perturbed_proba(ids, passes=2, scale=0.1, seed=0).shape == (2, 40, 2)


def test_the_embedding_strategies_svd_never_sees_a_test_row():
    """kmeans, coreset, typiclust, cal, badge and margin_kmeans see TF-IDF through a truncated
    SVD; it is fitted on pool and dev rows only, like the TF-IDF itself: zeroing every test row
    leaves the pool embeddings as they were (on main the SVD was fitted on all rows and they
    moved by up to 0.38). An encoder with `transductive: true` opts in to fitting on test too."""
    import scipy.sparse as sp

    from llmal.tasks.registry import task_named

    rng = np.random.default_rng(0)
    n = 120
    ids = np.array([f"i{k}" for k in range(n)])
    X = sp.random(n, 60, density=0.2, random_state=1, format="csr")
    items = pd.DataFrame({"id": ids, "text": ["t"] * n, "gold": rng.integers(0, 2, n)})
    split = pd.DataFrame({"id": ids, "split": ["pool"] * 80 + ["dev"] * 10 + ["test"] * 30})
    task = task_named("classification")
    run = task.run_task(items, split, {"names": ["a", "b"]})
    pool = run.ids["pool"]

    def embed(matrix, encoder=None):
        learner = task.build_learner({"kind": "logistic", "embed_dim": 8}, encoder or {"kind": "tfidf"},
                                     texts={}, features=Features(ids, matrix), n_classes=2, seed=0,
                                     run_task=run)
        return learner.embed(pool)

    zeroed = X.tolil()
    zeroed[90:] = 0
    np.testing.assert_allclose(embed(X), embed(zeroed.tocsr()), atol=1e-6)
    moved = np.abs(embed(X, {"kind": "tfidf", "transductive": True})
                   - embed(zeroed.tocsr(), {"kind": "tfidf", "transductive": True})).max()
    assert moved > 1e-3    # fitted on every row when the encoder opts in
