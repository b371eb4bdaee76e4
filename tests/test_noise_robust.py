"""Noise-robust training inside the AL loop: annotation discrepancy (S1), learning to reweight (S3)."""
from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from al_helpers import simulate_table as simulate
from conftest import snakemake, tiny_config, write_config

from llmal.config import ConfigError, run_spec, validate_config
from llmal.contracts import make_annotations
from llmal.engine.noise_robust import (
    NO_PREDICTION,
    TrainingOptions,
    discrepancy_weights,
    draw_meta_set,
    negative_mask,
    rejected_classes,
    soft_targets,
)
from llmal.models.encoders import Features
from llmal.models.logistic import LogisticHead
from llmal.tasks.classification.mixture import annotate_mixture

torch = pytest.importorskip("torch")

from llmal.models.finetune import FineTuneClassifier  # noqa: E402
from llmal.models.reweight import meta_example_weights  # noqa: E402
from llmal.models.tiny import make_tiny_bert  # noqa: E402
from llmal.models.training import complementary_label_loss  # noqa: E402

NAMES = ["neg", "pos"]


def noisy_world(n=1000, seed=0, miss=0.4, false_alarm=0.05):
    """Two Gaussian blobs; an annotator who misses `miss` of the positives and flags
    `false_alarm` of the negatives (asymmetric noise). 250 test, 100 dev, the rest pool."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 5)) + gold[:, None] * 1.5
    ids = np.array([f"i{k:04d}" for k in range(n)])
    items = pd.DataFrame({"id": ids, "text": "t", "gold": gold, "topic": "a", "source": "s"})
    split = pd.DataFrame({"id": ids, "split": np.where(np.arange(n) < 250, "test",
                                                        np.where(np.arange(n) < 350, "dev", "pool"))})
    u = rng.random(n)
    labels = np.where(gold == 1, np.where(u < miss, 0, 1), np.where(u < false_alarm, 1, 0))
    ann = make_annotations({"id": ids[250:], "label": pd.Series(labels[250:], dtype="Int64"),
                            "status": "ok", "cost_usd": 0.01})
    return items, split, ann, Features(ids, X)


class Recording:
    """A real LogisticHead that keeps what each fit received and a copy of each fitted model."""

    def __init__(self, head):
        self.head, self.n_classes = head, head.n_classes
        self.fits: list[dict] = []
        self.snapshots: list[LogisticHead] = []

    def fit(self, ids, labels, *, sample_weight=None, dev=None):
        self.fits.append({"ids": list(ids), "labels": np.asarray(labels),
                          "weights": None if sample_weight is None else np.asarray(sample_weight)})
        self.head.fit(ids, labels, sample_weight=sample_weight, dev=dev)
        self.snapshots.append(copy.deepcopy(self.head))
        return self

    def predict_proba(self, ids):
        return self.head.predict_proba(ids)

    def info(self):
        return self.head.info()


def run(training=None, *, seed=0, settings=None, world_seed=0, record=False):
    items, split, ann, feats = noisy_world(seed=world_seed)
    clf = LogisticHead(feats, recipe={"C": 1.0}, n_classes=2, seed=seed)
    clf = Recording(clf) if record else clf
    res = simulate(items=items, split=split, annotations=ann, classifier=clf, sampler="random",
                   settings=settings or {"initial": 20, "batch": 20, "rounds": 3},
                   label_names=NAMES, positive="pos", seed=seed, training=training,
                   log=lambda m: None)
    return res, clf


# --- annotation discrepancy -------------------------------------------------------------

def test_discrepancy_weights_are_alpha_exactly_where_label_and_prediction_disagree():
    w = discrepancy_weights(np.array([0, 1, 1, 0, 2]), np.array([NO_PREDICTION, 1, 0, 1, 2]), 0.25)
    np.testing.assert_array_equal(w, [1.0, 1.0, 0.25, 0.25, 1.0])
    with pytest.raises(ValueError, match="shape"):
        discrepancy_weights(np.array([0, 1]), np.array([0]), 0.5)


def test_al_loop_downweights_items_the_previous_round_model_disagreed_with():
    res, clf = run({"discrepancy_alpha": 0.5}, record=True)
    rounds, queried = res.rounds, res.queried
    assert len(clf.fits) == 4
    assert clf.fits[0]["weights"].tolist() == [1.0] * 20       # round 0: no model yet
    expected_total = 0
    for rnd in range(1, 4):
        fit = clf.fits[rnd]
        weight_of = dict(zip(fit["ids"], fit["weights"]))
        label_of = dict(zip(fit["ids"], fit["labels"]))
        for earlier in range(rnd + 1):
            new = queried.loc[queried["round"] == earlier, "id"].tolist()
            if earlier == 0:
                assert all(weight_of[i] == 1.0 for i in new)
                continue
            # the prediction of the model fitted in the round before the item was queried
            pred = clf.snapshots[earlier - 1].predict_proba(new).argmax(axis=1)
            expected = np.where(pred != np.array([label_of[i] for i in new]), 0.5, 1.0)
            np.testing.assert_array_equal([weight_of[i] for i in new], expected)
        expected_total = int((fit["weights"] == 0.5).sum())
        assert rounds.loc[rnd, "n_downweighted"] == expected_total
    assert rounds["n_downweighted"].iloc[0] == 0 and expected_total > 0
    assert rounds["n_downweighted"].is_monotonic_increasing  # weights stick to items


def test_discrepancy_changes_training_on_a_planted_noisy_annotator():
    settings = {"initial": 40, "batch": 40, "rounds": 4}
    plain, _ = run(None, settings=settings)
    robust, _ = run({"discrepancy_alpha": 0.5}, settings=settings)
    assert "n_downweighted" not in plain.rounds
    assert robust.rounds["n_downweighted"].iloc[-1] > 0
    # same queries (random sampler, same seed), different training from round 1 on
    pd.testing.assert_series_equal(plain.queried["id"], robust.queried["id"])
    assert plain.rounds["f1_macro"].iloc[0] == robust.rounds["f1_macro"].iloc[0]
    assert not np.allclose(plain.predictions["prob"], robust.predictions["prob"])
    # alpha = 1 is plain training
    ones, _ = run({"discrepancy_alpha": 1.0}, settings=settings)
    np.testing.assert_allclose(ones.predictions["prob"], plain.predictions["prob"])
    assert (ones.rounds["n_downweighted"] == 0).all()


# --- learning to reweight ----------------------------------------------------------------

def _blobs(n, rng, shift=1.5):
    y = rng.integers(0, 2, n)
    return (torch.tensor(rng.normal(size=(n, 4)) + (2 * y - 1)[:, None] * shift,
                         dtype=torch.float32), torch.tensor(y))


def test_meta_weights_single_out_flipped_labels_on_a_linear_model():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    X, y = _blobs(64, rng)
    flipped = torch.tensor(rng.random(64) < 0.25)
    noisy = torch.where(flipped, 1 - y, y)
    meta_X, meta_y = _blobs(16, rng)
    model = torch.nn.Linear(4, 2)
    before = [p.detach().clone() for p in model.parameters()]
    w = meta_example_weights(model, {"input": X}, noisy, {"input": meta_X}, meta_y)
    assert w.shape == (64,) and (w >= 0).all()
    assert float(w.sum()) == pytest.approx(1.0)
    assert float(w[flipped].mean()) < 0.2 * float(w[~flipped].mean())
    # the model is left as it was (no parameter change, no gradients)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())
    # a meta set that disagrees with every label gives all-zero weights, not NaN
    w_none = meta_example_weights(model, {"input": X}, y, {"input": meta_X}, 1 - meta_y)
    assert torch.isfinite(w_none).all()


FILLER = "the a of and people city today said about news street weather week school".split()
CUES = (["welcome", "thanks", "support"], ["hate", "vermin", "invaders"])


def _texts(n, seed, prefix):
    rng = np.random.default_rng(seed)
    texts, labels = {}, []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(FILLER, size=rng.integers(3, 9)))
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(CUES[label])))
        texts[f"{prefix}{i}"] = " ".join(words)
        labels.append(label)
    return texts, np.array(labels)


def _finetune(texts, model, seed=0, epochs=6, lr=5e-3):
    return FineTuneClassifier(
        texts, encoder={"kind": "transformer", "model": str(model), "max_length": 16,
                        "batch_size": 16, "lr": lr, "epochs": epochs},
        recipe={"kind": "finetune", "warmup_ratio": 0.1}, n_classes=2, seed=seed)


@pytest.fixture(scope="module")
def text_task(tmp_path_factory):
    """A tiny BERT 'pretrained' on a clean sample of the task (body only; each classifier adds
    a fresh head), as learning to reweight needs informative representations: from a random
    init the meta gradient only sees the class prior and weights whole classes per batch."""
    train, y = _texts(64, 1, "tr")
    meta, y_meta = _texts(16, 2, "me")
    pre, y_pre = _texts(96, 7, "pre")
    texts = {**train, **meta, **pre}
    scratch = make_tiny_bert(tmp_path_factory.mktemp("bert"), list(texts.values()),
                             vocab_size=120, hidden=32, layers=1, heads=2, seed=0)
    teacher = _finetune(texts, scratch, epochs=12, lr=1e-2).fit(list(pre), y_pre)
    body = tmp_path_factory.mktemp("pretrained")
    teacher.model.base_model.save_pretrained(body)
    teacher.tokenizer.save_pretrained(body)
    return {"texts": texts, "train": (list(train), y), "meta": (list(meta), y_meta), "bert": body}


def test_finetune_reweighting_gives_flipped_labels_less_weight(text_task):
    ids, y = text_task["train"]
    flipped = np.zeros(len(y), dtype=bool)
    flipped[np.random.default_rng(3).choice(len(y), 12, replace=False)] = True
    noisy = np.where(flipped, 1 - y, y)
    clf = _finetune(text_task["texts"], text_task["bert"], epochs=3, lr=1e-3)
    clf.fit(ids, noisy, meta=text_task["meta"])
    w = clf.last_meta_weights
    assert w is not None and w.shape == (len(ids),) and np.isfinite(w).all()
    assert w[flipped].mean() < 0.5 * w[~flipped].mean()
    info = clf.info()
    assert info["n_meta"] == 16 and 0 < info["meta_zero_weight_share"] < 1
    # without a meta set the same fit trains plainly and records no meta weights
    clf.fit(ids, noisy)
    assert clf.last_meta_weights is None


def text_world(text_task):
    """The text task's train and meta items as one dataset: 24 test, 40 pool, 16 dev items."""
    ids, y = text_task["train"]
    meta_ids, y_meta = text_task["meta"]
    all_ids = ids + meta_ids
    gold = np.concatenate([y, y_meta])
    items = pd.DataFrame({"id": all_ids, "text": [text_task["texts"][i] for i in all_ids],
                          "gold": gold, "topic": "a", "source": "s"})
    split = pd.DataFrame({"id": all_ids, "split": ["test"] * 24 + ["pool"] * 40 + ["dev"] * 16})
    return all_ids, gold, items, split


def test_al_loop_passes_the_dev_gold_meta_set_to_finetuning(text_task):
    meta_ids, y_meta = text_task["meta"]
    all_ids, gold, items, split = text_world(text_task)
    role = split["split"].to_numpy()
    # the annotator labels dev all wrong: the meta set must come from gold, not from it
    noisy = np.where(role == "dev", 1 - gold, gold)
    ann = make_annotations({"id": all_ids[24:], "label": pd.Series(noisy[24:], dtype="Int64"),
                            "status": "ok", "cost_usd": 0.0})
    clf = _finetune(text_task["texts"], text_task["bert"], epochs=2, lr=1e-3)
    received = []
    real_fit = clf.fit
    clf.fit = lambda *a, **kw: (received.append(kw.get("meta")), real_fit(*a, **kw))[1]
    res = simulate(items=items, split=split, annotations=ann, classifier=clf, sampler="random",
                   settings={"initial": 20, "batch": 20, "rounds": 1}, label_names=NAMES,
                   positive="pos", seed=0, training={"reweight": {"meta_size": 8, "seed": 1}},
                   log=lambda m: None)
    assert res.info["n_meta"] == 8 and clf.info()["n_meta"] == 8
    assert len(res.rounds) == 2 and clf.last_meta_weights.shape == (40,)
    expected_ids, expected_gold = draw_meta_set(meta_ids, y_meta, size=8, seed=1)
    assert len(received) == 2
    for got_ids, got_labels in received:
        assert got_ids == expected_ids
        np.testing.assert_array_equal(got_labels, expected_gold)   # gold, not the annotator's


def test_al_loop_draws_the_meta_set_from_dev_gold_only():
    items, split, ann, _ = noisy_world()
    dev = split.loc[split["split"] == "dev", "id"].tolist()
    ids, gold = draw_meta_set(dev, items.set_index("id").loc[dev, "gold"].to_numpy(), size=32, seed=0)
    assert len(ids) == 32 and set(ids) <= set(dev) and ids == sorted(ids)
    assert draw_meta_set(dev, np.zeros(len(dev)), size=32, seed=0)[0] == ids   # seeded
    assert len(draw_meta_set(dev, np.zeros(len(dev)), size=500, seed=0)[0]) == len(dev)
    assert TrainingOptions.from_config({"reweight": {"meta_size": 8}}).meta_size == 8
    with pytest.raises(ValueError, match="no dev item"):
        draw_meta_set([], np.zeros(0), size=4, seed=0)


def test_logistic_recipe_refuses_a_meta_set():
    with pytest.raises(ValueError, match="training.reweight.*finetune"):
        run({"reweight": {"meta_size": 8, "seed": 0}})


# --- negative learning --------------------------------------------------------------------

def test_complementary_label_loss_is_minus_log_one_minus_p_of_rejected_classes():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    rejected = torch.tensor([[1, 0, 1], [0, 1, 0]])
    p = torch.softmax(logits, dim=-1)
    expected = torch.stack([-torch.log(1 - p[0, 0]) - torch.log(1 - p[0, 2]),
                            -torch.log(1 - p[1, 1])])
    torch.testing.assert_close(complementary_label_loss(logits, rejected), expected)
    certain = complementary_label_loss(torch.tensor([[50.0, -50.0]]), torch.tensor([[1, 0]]))
    assert torch.isfinite(certain).all() and float(certain) > 10   # clamped, not inf


def test_rejected_classes_reads_the_mixture_answers():
    names = ["a", "b", "c"]
    np.testing.assert_array_equal(
        rejected_classes('{"rejected_by_all": ["a", "c"]}', names, item="x"), [True, False, True])
    assert not rejected_classes("{}", names, item="x").any()
    with pytest.raises(ValueError, match="item 'x'.*unknown labels"):
        rejected_classes('{"rejected_by_all": ["zzz"]}', names, item="x")
    options = TrainingOptions.from_config({"negative_learning": {"weight": 0.1, "growth": 2.0}})
    assert options.negative_weight_at(0) == pytest.approx(0.1)
    assert options.negative_weight_at(3) == pytest.approx(0.8)


def test_negative_learning_lowers_the_rejected_class_probability(text_task):
    ids, y = text_task["train"]
    labelled, negative = ids[:16], ids[16:]
    # the negatives reject each item's true class, so the labelled items pull the other way and
    # any drop of p(rejected) is the complementary-label term's doing
    rejected = np.eye(2, dtype=bool)[y[16:]]
    plain = _finetune(text_task["texts"], text_task["bert"], epochs=5, lr=1e-2)
    plain.fit(labelled, y[:16])
    nl = _finetune(text_task["texts"], text_task["bert"], epochs=5, lr=1e-2)
    nl.fit(labelled, y[:16], negatives=(negative, rejected, 1.0))
    p_plain = plain.predict_proba(negative)[rejected].mean()
    p_nl = nl.predict_proba(negative)[rejected].mean()
    assert p_nl < p_plain - 0.1
    assert nl.info()["n_negative"] == 48 and plain.info()["n_negative"] == 0
    with pytest.raises(ValueError, match="negatives: expected a"):
        nl.fit(labelled, y[:16], negatives=(negative, rejected[:, :1], 1.0))


def _two_member_negative_run(text_task, negative_learning):
    """Two members; the second abstains on every third item, so with min_votes 2 those items
    fail. A fine-tuning AL run (20 + 20 labels) with these negative-learning settings; returns
    (ids, gold, mixture table, result, the `negatives` each fit received)."""
    all_ids, gold, items, split = text_world(text_task)
    abstain = np.arange(len(all_ids)) % 3 == 0
    first = make_annotations({"id": all_ids, "label": pd.Series(gold, dtype="Int64"), "status": "ok"})
    second = make_annotations({"id": all_ids, "label": pd.Series(gold, dtype="Int64").mask(abstain),
                               "status": np.where(abstain, "invalid", "ok")})
    ann = annotate_mixture({"m1": first, "m2": second}, {"min_votes": 2}, NAMES, log=lambda m: None)
    ann = ann[~ann["id"].isin(all_ids[:24])]
    clf = _finetune(text_task["texts"], text_task["bert"], epochs=1, lr=1e-3)
    received = []
    real_fit = clf.fit
    clf.fit = lambda *a, **kw: (received.append(kw.get("negatives")), real_fit(*a, **kw))[1]
    res = simulate(items=items, split=split, annotations=ann, classifier=clf, sampler="random",
                   settings={"initial": 20, "batch": 20, "rounds": 1}, label_names=NAMES,
                   positive="pos", seed=0, training={"negative_learning": negative_learning},
                   log=lambda m: None)
    return all_ids, gold, ann, res, received


def test_al_loop_trains_unlabelled_mixture_items_negatively(text_task):
    """Two members; the second abstains on every third item, so with min_votes 2 those items
    fail (no label) but the class the first member did not choose is rejected by all."""
    all_ids, gold, ann, res, received = _two_member_negative_run(
        text_task, {"weight": 0.2, "growth": 3.0, "rule": "rejected_by_all"})
    status = ann.set_index("id")["status"]
    for rnd, negatives in enumerate(received):
        so_far = res.queried.loc[res.queried["round"] <= rnd, "id"]
        failed = [i for i in so_far if status[i] == "failed"]
        assert failed and negatives[0] == failed
        assert negatives[2] == pytest.approx(0.2 * 3.0 ** rnd)
        position = {i: k for k, i in enumerate(all_ids)}
        np.testing.assert_array_equal(negatives[1], np.eye(2, dtype=bool)[[1 - gold[position[i]] for i in failed]])
        assert res.rounds.loc[rnd, "n_negative"] == len(failed)
        assert res.rounds.loc[rnd, "n_train"] == len(so_far) - len(failed)


# --- config -----------------------------------------------------------------------------

def _config(**training):
    config = tiny_config()
    config["conditions"]["noisy_al"] = {"annotator": "noisy", "sampler": "entropy",
                                        "training": training}
    return config


def test_training_block_is_validated_and_reaches_the_run_spec():
    config = _config(discrepancy_alpha=0.5, reweight={"meta_size": 8})
    config["recipes"] = {"ft": {"kind": "finetune"}}
    config["encoders"] = {"bert": {"kind": "transformer", "model": "some/model"}}
    config["conditions"] = {"noisy_al": config["conditions"]["noisy_al"]}
    spec = run_spec(validate_config(config), "noisy_al", "bert")
    assert spec["training"] == {"discrepancy_alpha": 0.5, "reweight": {"meta_size": 8, "seed": 0}}
    plain = validate_config(tiny_config())
    assert "training" not in run_spec(plain, "human_al", "tfidf")   # specs without it unchanged


@pytest.mark.parametrize("training, key", [
    ({"discrepancy_alpha": 1.5}, "conditions.noisy_al.training.discrepancy_alpha"),
    ({"label_smoothing": 0.1}, "conditions.noisy_al.training"),
    ({"negative_learning": {"weight": -1}}, "conditions.noisy_al.training.negative_learning.weight"),
    ({"reweight": {"meta_size": 0}}, "conditions.noisy_al.training.reweight.meta_size"),
    ({"reweight": {"meta_size": 8}}, "conditions.noisy_al.training.reweight"),  # logistic recipe
])
def test_config_errors_name_the_key(training, key):
    with pytest.raises(ConfigError) as err:
        validate_config(_config(**training))
    assert f"{key}:" in str(err.value)


# --- the real DAG -----------------------------------------------------------------------

def test_snakemake_run_with_discrepancy_downweighting(tmp_path):
    config = tiny_config(seeds=[0])
    config["conditions"] = {"noisy_al": {"annotator": "noisy", "sampler": "entropy",
                                         "training": {"discrepancy_alpha": 0.5}}}
    write_config(tmp_path, config)
    target = "results/tiny/runs/noisy_al/tfidf/seed0/run.json"
    snakemake(tmp_path, target)
    run_dir = tmp_path / "results" / "tiny" / "runs" / "noisy_al" / "tfidf" / "seed0"
    rounds = pd.read_csv(run_dir / "rounds.csv")
    assert rounds["n_downweighted"].tolist()[0] == 0 and rounds["n_downweighted"].iloc[-1] > 0
    run = json.loads((run_dir / "run.json").read_text())
    assert run["spec"]["training"] == {"discrepancy_alpha": 0.5}


# --- S1's negative learning rule, with the logistic recipe and with fine-tuning ----------

def test_s1_rule_masks_classes_of_negligible_mean_member_probability():
    names = ["a", "b", "c"]
    options = TrainingOptions.from_config({"negative_learning": {}})
    assert options.negative_rule == "probability" and options.negative_threshold == 0.001
    assert [options.negative_weight_at(r) for r in (0, 1, 5)] == pytest.approx([0.4, 0.46, 0.7])
    answers = json.dumps({"member_mean": {"a": 0.7, "b": 0.0005, "c": 0.2995}})
    np.testing.assert_array_equal(negative_mask(answers, "{}", 0, names, options, item="x"), [False, True, False])
    # the item's own label is never a complementary label
    np.testing.assert_array_equal(negative_mask(answers, "{}", 1, names, options, item="x"), [False, False, False])
    # no mixture: the annotator's own recorded distribution (logprobs), else nothing
    probs = json.dumps({"label": {"a": 0.0001, "b": 0.9, "c": 0.0999}})
    np.testing.assert_array_equal(negative_mask("{}", probs, 1, names, options, item="x"), [True, False, False])
    assert not negative_mask("{}", "{}", 1, names, options, item="x").any()
    strict = TrainingOptions.from_config({"negative_learning": {"threshold": 0.0}})
    assert not negative_mask(answers, "{}", 0, names, strict, item="x").any()
    with pytest.raises(ValueError, match="rule must be one of"):
        TrainingOptions.from_config({"negative_learning": {"rule": "maybe"}})


def test_softmax_regression_equals_sklearn_without_negatives():
    from sklearn.linear_model import LogisticRegression

    from llmal.models.softmax import SoftmaxRegression

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    X = rng.normal(size=(200, 4)) + np.eye(3)[y] @ rng.normal(size=(3, 4)) * 2
    ours = SoftmaxRegression(3, C=1.0, class_weight="balanced", tol=1e-9).fit(X, y)
    ref = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=2e-4)


def _three_blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(size=(n, 3)) * 1.5 + np.eye(3)[y] * 1.0
    ids = np.array([f"b{k:03d}" for k in range(n)])
    return ids, y, Features(ids, X)


def test_logistic_negative_learning_lowers_the_rejected_class_probability():
    """Planted: the complementary term rejects class 2 for 150 unlabelled items of every class;
    with it, their predicted probability of class 2 drops, and the labelled fit stays usable."""
    ids, y, feats = _three_blobs()
    labelled, negative = list(ids[:60]), list(ids[60:210])
    rejected = np.zeros((len(negative), 3), dtype=bool)
    rejected[:, 2] = True
    plain = LogisticHead(feats, recipe={}, n_classes=3, seed=0).fit(labelled, y[:60])
    nl = LogisticHead(feats, recipe={}, n_classes=3, seed=0).fit(
        labelled, y[:60], negatives=(negative, rejected, 1.0))
    p_plain = plain.predict_proba(negative)[:, 2].mean()
    p_nl = nl.predict_proba(negative)[:, 2].mean()
    assert p_nl < p_plain - 0.1
    held = list(ids[210:])
    assert np.mean(nl.predict_proba(held).argmax(1)[y[210:] != 2] == y[210:][y[210:] != 2]) > 0.5
    assert nl.perturbed_proba(held[:5], passes=2, scale=0.1, seed=0).shape == (2, 5, 3)


def test_al_loop_runs_s1_negative_learning_with_the_logistic_recipe():
    ids, y, feats = _three_blobs()
    items = pd.DataFrame({"id": ids, "text": "t", "gold": y, "topic": "a", "source": "s"})
    split = pd.DataFrame({"id": ids, "split": ["test"] * 80 + ["dev"] * 20 + ["pool"] * 200})
    rng = np.random.default_rng(1)
    members = {f"m{j}": make_annotations({"id": ids[80:], "label": pd.Series(
        np.where(rng.random(220) < 0.8, y[80:], rng.integers(0, 3, 220)), dtype="Int64")}) for j in range(2)}
    ann = annotate_mixture(members, {"method": "majority"}, ["a", "b", "c"], log=lambda m: None)
    head = LogisticHead(feats, recipe={}, n_classes=3, seed=0)
    received = []
    real_fit = head.fit
    head.fit = lambda *a, **kw: (received.append(kw.get("negatives")), real_fit(*a, **kw))[1]
    res = simulate(items=items, split=split, annotations=ann, classifier=head, sampler="random",
                   settings={"initial": 30, "batch": 30, "rounds": 2}, label_names=["a", "b", "c"],
                   positive=None, seed=0, training={"negative_learning": {}}, log=lambda m: None)
    assert len(received) == 3
    for rnd, negatives in enumerate(received):
        assert negatives is not None and negatives[2] == pytest.approx(0.4 + 0.06 * rnd)
        assert res.rounds.loc[rnd, "n_negative"] == len(negatives[0]) > 0
        # two hard-label members: the complementary classes are those neither chose
        table = ann.set_index("id").loc[negatives[0]]
        for (item, row), mask in zip(table.iterrows(), negatives[1]):
            chosen = {members[m].set_index("id").loc[item, "label"] for m in members}
            assert set(np.flatnonzero(mask)) == {0, 1, 2} - chosen


def test_al_loop_runs_s1_negative_learning_with_fine_tuning(text_task):
    all_ids, gold, ann, res, received = _two_member_negative_run(text_task, {"threshold": 0.001})
    position = {i: k for k, i in enumerate(all_ids)}
    for rnd, negatives in enumerate(received):
        so_far = res.queried.loc[res.queried["round"] <= rnd, "id"].tolist()
        # every bought item: both members (or the one that answered) chose gold, so 1 - gold
        # has mean member probability 0, labelled or not
        assert negatives[0] == so_far and negatives[2] == pytest.approx(0.4 + 0.06 * rnd)
        np.testing.assert_array_equal(negatives[1], np.eye(2, dtype=bool)[[1 - gold[position[i]] for i in so_far]])
        assert res.rounds.loc[rnd, "n_negative"] == len(so_far)


def test_soft_labels_train_on_the_label_distribution():
    ids, y, feats = _three_blobs()
    dist = [{"label": {"a": 0.6, "b": 0.4}} if k % 2 else {} for k in range(len(ids))]
    table = make_annotations({"id": ids, "label": y, "probs": dist})
    out_ids, out_labels, out_w = soft_targets(list(ids[:4]), y[:4], table, ["a", "b", "c"], np.array([1, 1, 0.5, 0.5]))
    assert out_ids == [ids[0], ids[1], ids[1], ids[2], ids[3], ids[3]]
    assert out_labels.tolist() == [y[0], 0, 1, y[2], 0, 1]
    assert out_w == pytest.approx([1, 0.6, 0.4, 0.5, 0.3, 0.2])
    items = pd.DataFrame({"id": ids, "text": "t", "gold": y, "topic": "a", "source": "s"})
    split = pd.DataFrame({"id": ids, "split": ["test"] * 80 + ["dev"] * 20 + ["pool"] * 200})
    head = LogisticHead(feats, recipe={}, n_classes=3, seed=0)
    res = simulate(items=items, split=split, annotations=table[table["id"].isin(ids[80:])], classifier=head,
                   sampler="random", settings={"initial": 30, "batch": 30, "rounds": 1},
                   label_names=["a", "b", "c"], positive=None, seed=0, training={"soft_labels": True},
                   log=lambda m: None)
    assert (res.rounds["n_soft_rows"] > res.rounds["n_train"]).all()
