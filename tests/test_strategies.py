"""Query strategies: each must pick a planted item (the most uncertain, the farthest, the
densest cluster's centre, ...), return distinct positions, and break ties at random."""
import subprocess
import sys

import numpy as np
import pytest

from llmal.strategies import strategy_names
from llmal.strategies.base import ArrayContext, linear_grad_embeddings
from llmal.strategies.catalog import STRATEGY_CLASSES, make_strategy
from llmal.strategies.registry import STRATEGY_NEEDS


def ids(n, prefix="c"):
    return np.array([f"{prefix}{i}" for i in range(n)], dtype=object)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def confident_probs(n, seed=0, C=3):
    """Every row sure of one class (p >= 0.9)."""
    rng = np.random.default_rng(seed)
    P = np.full((n, C), 0.0)
    top = rng.integers(C, size=n)
    P[np.arange(n), top] = rng.uniform(0.9, 0.99, n)
    rest = (1 - P[np.arange(n), top])[:, None] / (C - 1)
    return np.where(P > 0, P, rest)


def blobs(sizes, spread=0.05, dim=8, seed=0, scale=5.0):
    """Clusters of the given sizes around well separated centres; row 0 of each cluster
    sits exactly on its centre. Returns (X, cluster of each row, index of each centre row)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim)) * scale
    X, label, first = [], [], []
    for c, size in enumerate(sizes):
        first.append(sum(sizes[:c]))
        pts = centres[c] + spread * rng.normal(size=(size, dim))
        pts[0] = centres[c]
        X.append(pts)
        label += [c] * size
    return np.concatenate(X), np.array(label), np.array(first)


def test_registry_lists_every_strategy_class_with_its_needs():
    assert len(strategy_names()) >= 12
    assert list(STRATEGY_CLASSES) == strategy_names()
    for name, cls in STRATEGY_CLASSES.items():
        assert cls.needs == STRATEGY_NEEDS[name]
        assert make_strategy(name).name == name
    with pytest.raises(ValueError, match="unknown query strategy 'nope'"):
        make_strategy("nope")
    with pytest.raises(TypeError):
        make_strategy("entropy", passes=3)


def test_registry_imports_no_numpy():
    code = ("import sys; import llmal.strategies.registry, llmal.strategies; "
            "assert 'numpy' not in sys.modules, 'numpy imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["least_confidence", "entropy", "margin"])
def test_uncertainty_picks_the_planted_uncertain_item_first(name):
    P = confident_probs(50)
    P[17] = [0.36, 0.33, 0.31]
    ctx = ArrayContext(ids(50), probs_=P)
    assert make_strategy(name).query(ctx, 3)[0] == 17


def test_least_confidence_entropy_and_margin_disagree_where_they_should():
    P = confident_probs(20)
    P[3] = [0.5, 0.5, 0.0]     # margin 0 (a tie), top class 0.5, entropy log 2
    P[5] = [0.4, 0.3, 0.3]     # margin 0.1, top class 0.4, entropy 1.09 > log 2
    ctx = ArrayContext(ids(20), probs_=P)
    assert make_strategy("margin").query(ctx, 1)[0] == 3
    assert make_strategy("least_confidence").query(ctx, 1)[0] == 5
    assert make_strategy("entropy").query(ctx, 1)[0] == 5


def test_ties_are_broken_at_random_by_the_context_rng():
    P = np.full((200, 2), 0.5)
    picks = {tuple(make_strategy("entropy").query(ArrayContext(ids(200), probs_=P,
                                                               rng=np.random.default_rng(s)), 5))
             for s in range(5)}
    assert len(picks) == 5
    again = make_strategy("entropy").query(ArrayContext(ids(200), probs_=P,
                                                        rng=np.random.default_rng(0)), 5)
    assert tuple(again) in picks


def test_random_is_seeded_and_distinct():
    a = make_strategy("random").query(ArrayContext(ids(100), rng=np.random.default_rng(1)), 30)
    b = make_strategy("random").query(ArrayContext(ids(100), rng=np.random.default_rng(1)), 30)
    assert np.array_equal(a, b) and len(set(a)) == 30


def test_kmeans_takes_the_centre_of_every_cluster_largest_first():
    X, _, centre_rows = blobs([10, 40, 25])
    ctx = ArrayContext(ids(len(X)), embedding_matrix=X)
    picked = make_strategy("kmeans", normalize=False).query(ctx, 3)
    assert picked.tolist() == [centre_rows[1], centre_rows[2], centre_rows[0]]


def test_coreset_picks_the_point_farthest_from_the_labelled_set():
    rng = np.random.default_rng(0)
    lab = rng.normal(size=(5, 4))
    cand = lab[rng.integers(5, size=40)] + 0.01 * rng.normal(size=(40, 4))
    cand[23] = [9.0, -9.0, 9.0, 9.0]
    cand[11] = [-9.0, 9.0, -9.0, -9.0]
    X = np.concatenate([cand, lab])
    ctx = ArrayContext(ids(40), ids(5, "l"), embedding_matrix=X)
    picked = make_strategy("coreset", normalize=False).query(ctx, 2)
    assert set(picked) == {23, 11}
    # the second pick is the one farthest from labelled + first pick
    d_first = np.linalg.norm(cand - cand[picked[0]], axis=1)
    assert d_first[picked[1]] > 10


def test_coreset_without_labels_spreads_over_clusters():
    X, cluster, _ = blobs([30, 30, 30, 30])
    ctx = ArrayContext(ids(len(X)), embedding_matrix=X)
    picked = make_strategy("coreset").query(ctx, 4)
    assert sorted(cluster[picked]) == [0, 1, 2, 3]


def test_badge_starts_at_the_largest_gradient_and_spreads():
    X, cluster, _ = blobs([30, 30, 30], spread=0.2)
    P = confident_probs(len(X), C=2)
    P[42] = [0.5, 0.5]                      # uncertain ...
    X[42] *= 3.0                            # ... and a large feature norm: the largest gradient
    ctx = ArrayContext(ids(len(X)), probs_=P, embedding_matrix=X)
    picked = make_strategy("badge").query(ctx, 3)
    assert picked[0] == 42
    assert len(set(picked)) == 3
    everything = make_strategy("badge").query(ctx, len(X) + 5)
    assert sorted(everything) == list(range(len(X)))


def test_linear_grad_embeddings_compact_form_keeps_the_geometry():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 6))
    for C in (2, 4):
        P = softmax(rng.normal(size=(30, C)))
        full = linear_grad_embeddings(X, P, compact=False)
        expect = (P - np.eye(C)[P.argmax(axis=1)])[:, :, None] * X[:, None, :]
        np.testing.assert_allclose(full, expect.reshape(30, -1), rtol=1e-5, atol=1e-6)
        compact = linear_grad_embeddings(X, P)
        assert compact.shape == (30, (C - 1) * 6)
        gram_full = full.astype(np.float64) @ full.T.astype(np.float64)
        gram_compact = compact.astype(np.float64) @ compact.T.astype(np.float64)
        np.testing.assert_allclose(gram_compact, gram_full, rtol=1e-4, atol=1e-5)


def test_bald_prefers_disagreement_over_plain_uncertainty():
    n, T = 30, 8
    mc = np.tile(confident_probs(n, C=2), (T, 1, 1))
    mc[:, 4] = [0.5, 0.5]                                   # uncertain, but every pass agrees
    mc[:, 9] = np.where(np.arange(T)[:, None] % 2 == 0, [0.95, 0.05], [0.05, 0.95])
    ctx = ArrayContext(ids(n), mc_probs_=lambda passes: mc[:passes])
    assert make_strategy("bald", passes=T).query(ctx, 1)[0] == 9
    assert make_strategy("entropy").query(ArrayContext(ids(n), probs_=mc.mean(axis=0)), 1)[0] in (4, 9)


def test_cal_picks_the_candidate_its_labelled_neighbours_disagree_with():
    X, cluster, _ = blobs([20, 20], spread=0.1)
    lab_rows = np.array([1, 2, 3, 21, 22, 23])
    cand_rows = np.setdiff1d(np.arange(40), lab_rows)
    P = np.where(cluster[:, None] == 0, [0.9, 0.1], [0.1, 0.9])
    P[15] = [0.15, 0.85]          # in cluster 0, but predicted like cluster 1
    ctx = ArrayContext(ids(40)[cand_rows], ids(40)[lab_rows], probs_=P[cand_rows],
                       labelled_probs_=P[lab_rows], embedding_matrix=X[np.r_[cand_rows, lab_rows]])
    picked = make_strategy("cal", neighbours=3).query(ctx, 1)
    assert cand_rows[picked[0]] == 15


def test_noise_stability_picks_the_least_stable_candidate_first():
    n, T = 25, 6
    P = confident_probs(n, C=2)
    rng = np.random.default_rng(0)
    jitter = 1e-4 * rng.normal(size=(T, n, 1)) * np.array([1, -1])
    jitter[:, 13] *= 500                                    # item 13 moves most under noise
    perturbed = np.clip(P[None] + jitter, 0, 1)
    ctx = ArrayContext(ids(n), probs_=P, perturbed_probs_=lambda passes, scale: perturbed)
    picked = make_strategy("noise_stability", passes=T).query(ctx, 3)
    assert picked[0] == 13 and len(set(picked)) == 3


def test_typiclust_takes_the_densest_cluster_then_uncovered_ones():
    X, cluster, centre_rows = blobs([12, 60, 20], spread=0.3)
    ctx = ArrayContext(ids(len(X)), embedding_matrix=X)
    first = make_strategy("typiclust", normalize=False).query(ctx, 1)[0]
    assert cluster[first] == 1                    # the largest cluster
    # its most typical member: nearer the centre than most of the cluster
    d = np.linalg.norm(X - X[centre_rows[1]], axis=1)
    assert d[first] <= np.quantile(d[cluster == 1], 0.2)
    # with a label in each big cluster (|L| + k = 3 clusters), the small uncovered one is next
    lab = centre_rows[1:] + 1
    cand = np.setdiff1d(np.arange(len(X)), lab)
    ctx = ArrayContext(ids(len(X))[cand], ids(len(X))[lab], embedding_matrix=X[np.r_[cand, lab]])
    picked = make_strategy("typiclust", normalize=False).query(ctx, 1)
    assert cluster[cand[picked[0]]] == 0


def test_margin_kmeans_is_uncertain_and_diverse():
    X, cluster, _ = blobs([40, 40, 40], spread=0.1)
    P = confident_probs(len(X), C=2)
    uncertain = np.r_[np.flatnonzero(cluster == 0)[:6], np.flatnonzero(cluster == 2)[:3]]
    P[uncertain] = [0.52, 0.48]
    ctx = ArrayContext(ids(len(X)), probs_=P, embedding_matrix=X)
    picked = make_strategy("margin_kmeans", prefilter=4).query(ctx, 2)
    assert set(picked) <= set(uncertain)
    assert sorted(cluster[picked]) == [0, 2]      # one per uncertain group, not two from the larger


@pytest.mark.parametrize("name", strategy_names())
def test_every_strategy_returns_k_distinct_positions_or_all_candidates(name):
    rng = np.random.default_rng(3)
    n, T = 60, 4
    X = rng.normal(size=(70, 5))
    P = softmax(rng.normal(size=(70, 3)))
    mc = softmax(rng.normal(size=(T, n, 3)))
    ctx = dict(candidates=ids(n), labelled=ids(10, "l"), probs_=P[:n], labelled_probs_=P[n:],
               embedding_matrix=X, mc_probs_=lambda passes: mc,
               perturbed_probs_=lambda passes, scale: mc)
    picked = make_strategy(name).query(ArrayContext(**ctx), 7)
    assert len(picked) == 7 and len(set(picked)) == 7 and picked.min() >= 0 and picked.max() < n
    assert sorted(make_strategy(name).query(ArrayContext(**ctx), 100)) == list(range(n))
    assert make_strategy(name).query(ArrayContext(**ctx), 0).size == 0


def test_array_context_names_what_it_lacks():
    ctx = ArrayContext(ids(5))
    with pytest.raises(ValueError, match="no probs"):
        make_strategy("entropy").query(ctx, 2)
    with pytest.raises(ValueError, match="no embeddings"):
        make_strategy("kmeans").query(ctx, 2)


def test_model_context_serves_every_logistic_strategy_and_names_what_is_missing():
    from llmal.models.encoders import Features
    from llmal.models.logistic import LogisticHead
    from llmal.strategies.model_context import ModelContext

    rng = np.random.default_rng(0)
    X, cluster, _ = blobs([60, 60], spread=0.5, dim=6)
    all_ids = ids(len(X))
    clf = LogisticHead(Features(all_ids.astype(str), X), recipe={}, n_classes=2, seed=0)
    lab = rng.choice(len(X), 20, replace=False)
    clf.fit(list(all_ids[lab]), cluster[lab])
    cand = np.setdiff1d(np.arange(len(X)), lab)
    for name in strategy_names():
        ctx = ModelContext(clf, all_ids[cand], all_ids[lab], rng=np.random.default_rng(1), seed=1)
        if name == "bald":
            with pytest.raises(ValueError, match="no mc_dropout_proba"):
                make_strategy(name).query(ctx, 5)
            continue
        picked = make_strategy(name).query(ctx, 5)
        assert len(set(picked)) == 5
    ctx = ModelContext(clf, all_ids[cand], all_ids[lab], rng=np.random.default_rng(1), seed=1)
    np.testing.assert_allclose(ctx.grad_embeddings(),
                               linear_grad_embeddings(X[cand], clf.predict_proba(list(all_ids[cand]))),
                               rtol=1e-5, atol=1e-6)
    assert ctx.probs() is ctx.probs()                       # computed once per round


def test_nearest_blocks_many_centres_and_keeps_the_first_on_ties(monkeypatch):
    """Many centres (nearest_distinct's candidates) are read in blocks of CENTER_BLOCK: the
    memory traffic stays linear in their number, and the answer is the brute-force argmin."""
    from llmal.strategies import geometry as geo

    monkeypatch.setattr(geo, "BLOCK_ELEMENTS", 4096)
    monkeypatch.setattr(geo, "CENTER_BLOCK", 64)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    centers = rng.normal(size=(1000, 8)).astype(np.float32)
    centers[700] = centers[5]          # a tie across blocks: the first centre wins
    X[0] = centers[5]
    idx, dist = geo.nearest(X, centers)
    brute = ((X[:, None, :].astype(np.float64) - centers[None, :, :]) ** 2).sum(axis=2)
    assert idx.tolist() == brute.argmin(axis=1).tolist()
    assert idx[0] == 5
    np.testing.assert_allclose(dist, brute.min(axis=1), atol=1e-4)
