"""llmal's strategies against small-text's (the reference AL library for text) on the same
fixed probabilities and embeddings.

small-text is a test extra (`pip install -e .[test]`; its core needs no torch). Where the two
differ by design, the test says how (docs/strategies.md repeats it):
- small-text returns an unordered top-n (argpartition); llmal returns priority order, so
  selections are compared as sets;
- kmeans: small-text's KMeans has no seed; on well separated clusters both must find the same
  centre items. llmal orders them by cluster size and fits on a sample above 20,000 items;
- cal: small-text's public query looks for neighbours among all items (unlabelled ones and the
  candidate itself included), Margatina et al. among the labelled ones, as llmal does; the test
  runs small-text's scoring with a labelled-only neighbour index;
- badge: small-text's gradient embedding is −p ⊗ x (its one-hot term is lost) and the raw x for
  two classes, and it seeds with scikit-learn's greedy k-means++; llmal uses (p − e_ŷ) ⊗ x and
  plain D² sampling from the largest gradient. The test pins the embedding relation.
"""
import numpy as np
import pytest

from llmal.strategies.base import ArrayContext, linear_grad_embeddings
from llmal.strategies.catalog import make_strategy

st = pytest.importorskip("small_text.query_strategies")


class FixedClassifier:
    """small-text's classifier interface, answering with fixed probabilities."""

    def __init__(self, probs, mc=None):
        self.probs, self.mc = probs, mc

    def predict_proba(self, dataset, dropout_sampling=1):
        if dropout_sampling > 1:
            return self.mc                         # (n, passes, C)
        return self.probs


def ids(n, prefix="c"):
    return np.array([f"{prefix}{i}" for i in range(n)], dtype=object)


def random_probs(n, C, seed):
    z = np.random.default_rng(seed).normal(size=(n, C)) * 2
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("ours,theirs", [("least_confidence", "LeastConfidence"),
                                         ("entropy", "PredictionEntropy"),
                                         ("margin", "BreakingTies")])
@pytest.mark.parametrize("C", [2, 4])
def test_uncertainty_strategies_match_small_text(ours, theirs, C):
    n, k = 500, 25
    P = random_probs(n, C, seed=C)
    unlabelled = np.arange(n)
    ref = getattr(st, theirs)().query(FixedClassifier(P), np.arange(n), unlabelled,
                                      np.array([], dtype=int), np.array([], dtype=int), n=k)
    got = make_strategy(ours).query(ArrayContext(ids(n), probs_=P), k)
    assert set(got) == set(ref)


def test_greedy_coreset_matches_small_text_in_order():
    from small_text.query_strategies.coresets import greedy_coreset
    rng = np.random.default_rng(0)
    n_u, n_l, k = 400, 20, 15
    X = rng.normal(size=(n_u + n_l, 16))
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    ref = greedy_coreset(Xn, np.arange(n_u), np.arange(n_u, n_u + n_l), k,
                         distance_metric="euclidean", normalized=True)
    got = make_strategy("coreset").query(
        ArrayContext(ids(n_u), ids(n_l, "l"), embedding_matrix=X), k)
    assert got.tolist() == ref.tolist()


def test_embedding_kmeans_finds_the_same_centre_items_as_small_text():
    rng = np.random.default_rng(1)
    k, per, dim = 6, 40, 12
    centres = rng.normal(size=(k, dim)) * 4
    X = np.concatenate([c + 0.05 * rng.normal(size=(per, dim)) for c in centres])
    np.random.seed(0)  # small-text's KMeans draws from numpy's global generator
    ref = st.EmbeddingKMeans(normalize=True).sample(None, None, np.arange(len(X)),
                                                    np.array([], dtype=int), None, k, X)
    got = make_strategy("kmeans").query(ArrayContext(ids(len(X)), embedding_matrix=X), k)
    assert set(got) == set(ref)


def test_cal_scores_match_small_text_with_labelled_neighbours():
    from sklearn.neighbors import NearestNeighbors
    rng = np.random.default_rng(2)
    n_l, n_u, C, k, nb = 60, 300, 3, 20, 5
    X = rng.normal(size=(n_l + n_u, 10))
    P = random_probs(n_l + n_u, C, seed=3)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    # small-text indexes neighbours into the full arrays: labelled items first, so the
    # neighbour indices of an index over the labelled rows are their full-array rows
    cal = st.ContrastiveActiveLearning(k=nb, batch_size=10 ** 6)
    index = NearestNeighbors(n_neighbors=nb).fit(Xn[:n_l])
    ref = cal._contrastive_active_learning(np.arange(n_l + n_u), Xn, P,
                                           np.arange(n_l, n_l + n_u), index, k)
    ctx = ArrayContext(ids(n_u), ids(n_l, "l"), probs_=P[n_l:], labelled_probs_=P[:n_l],
                       embedding_matrix=np.concatenate([X[n_l:], X[:n_l]]))
    got = make_strategy("cal", neighbours=nb).query(ctx, k)
    assert set(got) == set(ref)


def test_bald_matches_small_text():
    rng = np.random.default_rng(4)
    n, T, C, k = 300, 10, 3, 20
    z = rng.normal(size=(n, 1, C)) + rng.normal(size=(n, T, C)) * rng.uniform(0, 2, (n, 1, 1))
    mc = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)      # (n, passes, C) as small-text
    ref = st.BALD(dropout_samples=T).query(FixedClassifier(None, mc), np.arange(n), np.arange(n),
                                           np.array([], dtype=int), None, n=k)
    ctx = ArrayContext(ids(n), mc_probs_=lambda passes: mc.transpose(1, 0, 2)[:passes])
    got = make_strategy("bald", passes=T).query(ctx, k)
    assert set(got) == set(ref)


def test_badge_embeddings_differ_from_small_text_only_by_its_missing_one_hot_term():
    pytest.importorskip("torch")
    from small_text.integrations.pytorch.query_strategies import BADGE
    rng = np.random.default_rng(5)
    n, d = 50, 7
    X = rng.normal(size=(n, d))
    P3 = random_probs(n, 3, seed=6)
    theirs = BADGE(num_classes=3).get_badge_embeddings(X, P3)
    ours = linear_grad_embeddings(X, P3, compact=False)
    one_hot = np.eye(3)[P3.argmax(axis=1)]
    np.testing.assert_allclose(ours, -theirs - (one_hot[:, :, None] * X[:, None, :]).reshape(n, -1),
                               rtol=1e-5, atol=1e-6)
    P2 = random_probs(n, 2, seed=7)
    assert np.array_equal(BADGE(num_classes=2).get_badge_embeddings(X, P2), X)
