"""task: ner with a fine-tuned transformer tagger (recipe kind finetune): first-subtoken labels,
valid BIO decoding, early stopping on the annotator's dev sentences, learning to reweight with a
gold meta set (S3), and the tiny BERT through the real DAG on CPU."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import snakemake, write_config

from llmal.models.losses import IGNORE_INDEX
from llmal.models.tiny import make_tiny_bert
from llmal.tasks.ner.demo import NER_DEMO_TYPES, generate_ner_demo
from llmal.tasks.ner.metrics import seqeval_scores
from llmal.tasks.ner.spans import check_tags, tag_names
from llmal.tasks.ner.transformer import TransformerTagger, allowed_transitions, viterbi

TYPES = list(NER_DEMO_TYPES)
TAGS = tag_names(TYPES)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    sentences = generate_ner_demo(500, seed=0)
    tokens = {str(n): list(s.tokens) for n, s in enumerate(sentences)}
    tags = {str(n): list(s.tags) for n, s in enumerate(sentences)}
    model = make_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny", [" ".join(t) for t in tokens.values()],
                           vocab_size=160, hidden=64, layers=2, heads=2)
    return tokens, tags, str(model)


def tagger(demo, **encoder) -> TransformerTagger:
    tokens, _, model = demo
    settings = {"kind": "transformer", "model": model, "epochs": 8, "lr": 1e-3, "batch_size": 16, **encoder}
    return TransformerTagger(tokens, TAGS, encoder=settings, recipe={"kind": "finetune", "patience": 3}, seed=0)


def labels(tags, ids) -> np.ndarray:
    out = np.empty(len(ids), dtype=object)
    for n, i in enumerate(ids):
        out[n] = tags[i]
    return out


def test_each_word_is_labelled_on_its_first_sub_token(demo):
    tokens, _, _ = demo
    t = tagger(demo)
    # a word the small vocabulary splits into several pieces
    item = next(i for i, words in tokens.items()
                if any(len(t.tokenizer.tokenize(w)) > 1 for w in words))
    ids = t.pieces.get([item])[0]
    first = t.pieces.first([item])[0]
    words = tokens[item]
    assert len(first) == len(words) and (first >= 1).all()     # position 0 is [CLS]
    assert (np.diff(first) > 0).all()
    for w, (start, end) in zip(words, zip(first, list(first[1:]) + [len(ids) - 1])):
        pieces = t.tokenizer.convert_ids_to_tokens(ids[start:end].tolist())
        assert "".join(p.removeprefix("##") for p in pieces) == w.lower()
    row = t.pieces.token_labels([item], [list(range(1, len(words) + 1))])[0]
    assert row[first].tolist() == list(range(1, len(words) + 1))
    rest = np.setdiff1d(np.arange(len(ids)), first)
    assert len(rest) > 2 and (row[rest] == IGNORE_INDEX).all()   # [CLS], [SEP], later pieces


def test_words_cut_off_at_max_length_are_predicted_o_and_counted(demo):
    tokens, tags, _ = demo
    t = tagger(demo, max_length=6, epochs=1)
    long = [i for i, words in tokens.items() if len(words) > 8][:20]
    t.fit(long, labels(tags, long))
    out = t.predict_proba(long[:3])
    for item, m, best in zip(long, out.marginals, out.best):
        first = t.pieces.first([item])[0]
        assert m.shape == (len(tokens[item]), len(TAGS))
        assert (m[first < 0, 0] == 1.0).all() and all(best[k] == "O" for k in np.flatnonzero(first < 0))
    assert t.info()["unseen_words"] > 0


def test_decoding_gives_valid_bio_and_its_log_probability():
    start, trans = allowed_transitions(TAGS)
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = rng.dirichlet(np.full(len(TAGS), 0.3), size=12)
        m[0] = 0.01
        m[0, TAGS.index("I-PER")] = 0.91                  # argmax would start with I-PER
        path, score = viterbi(np.log(m), start, trans)
        seq = [TAGS[j] for j in path]
        assert check_tags(seq, TYPES) is None
        assert score == pytest.approx(np.log(m[np.arange(12), path]).sum())
        # no valid sequence scores higher (checked against random valid sequences)
        for _ in range(20):
            other = [int(rng.integers(len(TAGS)))]
            for _ in range(11):
                choices = [j for j in range(len(TAGS)) if trans[other[-1], j]]
                other.append(int(rng.choice(choices)))
            if start[other[0]]:
                assert np.log(m[np.arange(12), other]).sum() <= score + 1e-9


def test_tagger_learns_and_stops_early_on_dev(demo):
    tokens, tags, _ = demo
    ids = list(tokens)
    train, dev, test = ids[:300], ids[300:350], ids[350:]
    t = tagger(demo, epochs=15)
    t.fit(train, labels(tags, train), dev=(dev, labels(tags, dev)))
    info = t.info()
    assert info["device"] == "cpu" and info["dev_metric"] == "entity_f1_micro" and info["n_dev"] == 50
    # the weights of the best dev epoch are the ones kept
    dev_f1 = seqeval_scores([tags[i] for i in dev], t.predict_proba(dev).best, TYPES)["f1_micro"]
    assert dev_f1 == pytest.approx(info["best_dev_f1"]) == pytest.approx(max(info["dev_f1_per_epoch"]))
    out = t.predict_proba(test)
    f1 = seqeval_scores([tags[i] for i in test], out.best, TYPES)["f1_micro"]
    assert f1 > 0.8, f1
    assert all(check_tags(seq, TYPES) is None for seq in out.best)
    assert t.embed(test[:4]).shape == (4, 64)
    # a refit starts again from the pretrained weights: same data, same seed, same tagger
    before = out.best_logprob.copy()
    t.fit(train, labels(tags, train), dev=(dev, labels(tags, dev)))
    np.testing.assert_allclose(t.predict_proba(test).best_logprob, before, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("meta_batch_size", [None, 8])
def test_learning_to_reweight_down_weights_sentences_with_missed_entities(demo, meta_batch_size, monkeypatch):
    tokens, tags, _ = demo
    ids = list(tokens)
    train, meta = ids[:300], ids[300:340]
    bad = {i for i in train if int(i) % 2 and any(t != "O" for t in tags[i])}
    noisy = labels(tags, train)
    for n, i in enumerate(train):
        if i in bad:
            noisy[n] = ["O"] * len(tags[i])                # the annotator missed every entity
    tokens_, _, model = demo
    t = TransformerTagger(tokens_, TAGS, seed=0,
                          encoder={"kind": "transformer", "model": model, "epochs": 8, "lr": 1e-3, "batch_size": 16},
                          recipe={"kind": "finetune", "meta_batch_size": meta_batch_size})
    drawn = []
    from llmal.models import training
    original = training.MetaBatches.__call__

    def spy(self):   # one meta mini-batch of that size per step, in shuffled turns
        batch = original(self)
        drawn.append(len(batch.labels))
        return batch
    monkeypatch.setattr(training.MetaBatches, "__call__", spy)
    t.fit(train, noisy, meta=(meta, labels(tags, meta)))
    weights = t.last_meta_weights
    assert (set(drawn) == {8} and len(drawn) == t.info()["steps"]) if meta_batch_size else not drawn
    is_bad = np.array([i in bad for i in train])
    assert len(bad) > 100
    assert weights[is_bad].mean() < 0.6 * weights[~is_bad].mean()
    assert t.info()["n_meta"] == 40


# ---------------------------------------------------------------- through the real DAG
def test_tiny_bert_tagger_fine_tunes_in_the_dag_on_cpu(tmp_path):
    import yaml
    from conftest import ROOT
    config = yaml.safe_load((ROOT / "config" / "ner_demo.yaml").read_text())
    config["dataset"].update(name="tiny_ner_ft", n_items=300)
    sentences = generate_ner_demo(300, seed=0)
    model = make_tiny_bert(tmp_path / "tiny-bert", [" ".join(s.tokens) for s in sentences],
                           vocab_size=160, hidden=64, layers=2, heads=2)
    config["encoders"] = {"tinybert": {"kind": "transformer", "model": str(model), "max_length": 64,
                                       "batch_size": 8, "lr": 2.0e-3, "epochs": 12}}
    config["recipes"] = {"ft": {"kind": "finetune", "patience": 3}}
    config["al"] = {"initial": 20, "batch": 20, "rounds": 2}
    config["gold_cost_per_label"] = 0.05
    config["conditions"] = {
        "human_mte": {"annotator": "human", "sampler": "mean_token_entropy"},
        "llm_kmeans": {"annotator": "llm_sim", "sampler": "kmeans"},
        "llm_random_l2r": {"annotator": "llm_sim", "sampler": "random",
                           "training": {"reweight": {"meta_size": 12}}},
    }
    config["aggregate"] = {"metric": "f1_micro", "reference": "human_mte"}
    config["seeds"] = [0]
    write_config(tmp_path, config)
    snakemake(tmp_path)
    res = tmp_path / "results" / "tiny_ner_ft"
    for cond in config["conditions"]:
        run_dir = res / "runs" / cond / "tinybert" / "seed0"
        run = json.loads((run_dir / "run.json").read_text())
        training = run["training"]
        assert run["device"] == "cpu" and training["task"] == "ner"
        assert training["model_class"] == "BertForTokenClassification" and training["fits"] == 3
        assert training["n_dev"] > 0 and 1 <= training["epochs_run"] <= 12  # early stopping on dev
        rounds = pd.read_csv(run_dir / "rounds.csv")
        assert rounds["n_labels"].tolist() == [20, 40, 60] and rounds["epochs_run"].between(1, 12).all()
        # the test scores are seqeval's on the stored tag sequences
        pred = pd.read_parquet(run_dir / "predictions.parquet")
        sentences_ = pred.drop_duplicates("sentence")
        f1 = seqeval_scores([json.loads(g) for g in sentences_["gold_tags"]],
                            [json.loads(p) for p in sentences_["pred_tags"]], TYPES)["f1_micro"]
        assert f1 == pytest.approx(rounds["f1_micro"].iloc[-1])
    # from 60 gold sentences the tiny random-init BERT learns (the noisy-LLM conditions need more)
    final = pd.read_csv(res / "runs" / "human_mte" / "tinybert" / "seed0" / "rounds.csv")["f1_micro"].iloc[-1]
    assert final > 0.5
    ledger = pd.read_parquet(res / "runs" / "llm_random_l2r" / "tinybert" / "seed0" / "ledger.parquet")
    meta = ledger[ledger["purpose"] == "meta"]
    assert len(meta) == 12 and meta["cost_usd"].sum() == pytest.approx(12 * 0.05)
    run = json.loads((res / "runs" / "llm_random_l2r" / "tinybert" / "seed0" / "run.json").read_text())
    assert run["training"]["n_meta"] == 12 and run["costs"]["cost_gold"] == pytest.approx(0.6)
    summary = pd.read_csv(res / "tables" / "summary.csv")
    assert set(summary["condition"]) == set(config["conditions"])
    assert (res / "report.html").exists()
    # the fine-tuning job asks for a GPU (used when one is present)
    plan = snakemake(tmp_path, "results/tiny_ner_ft/runs/human_mte/tinybert/seed0/run.json",
                     "--forcerun", "al_run", "-n", "-p")
    assert "gpu=1" in plan.stdout


# ---------------------------------------------------------------- config errors at plan time
def ner_transformer_config() -> dict:
    import yaml
    from conftest import ROOT
    config = yaml.safe_load((ROOT / "config" / "ner_demo.yaml").read_text())
    config["encoders"]["bert"] = {"kind": "transformer", "model": "bert-base-cased"}
    config["recipes"]["ft"] = {"kind": "finetune"}
    config["conditions"] = {"c": {"annotator": "llm_sim", "sampler": "least_confidence", "recipe": "ft"}}
    config["aggregate"] = {"metric": "f1_micro"}
    return config


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c["recipes"]["ft"].update(class_weight="balanced"), "recipes.ft.class_weight"),
    (lambda c: c["conditions"]["c"].update(training={"discrepancy_alpha": 0.5}),
     "conditions.c.training.discrepancy_alpha"),
    (lambda c: c["conditions"]["c"].update(training={"reweight": {"meta_set": "demonstrations"}}),
     "conditions.c.training.reweight.meta_set"),
    (lambda c: c["conditions"]["c"].update(sampler="badge"), "conditions.c.sampler"),
    (lambda c: c["conditions"]["c"].update(encoders=["tfidf"]), "conditions.c.encoders"),
])
def test_ner_transformer_config_errors_name_the_key(mutate, key):
    from llmal.config import ConfigError, validate_config

    config = ner_transformer_config()
    validate_config(ner_transformer_config())          # the valid one passes
    mutate(config)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_config(config)


def test_demonstration_pool_is_the_meta_set_and_is_paid_once(demo, tmp_path):
    """S3 (LLMaAA): learning to reweight with the annotator's gold demonstration pool as the meta
    set; the pool is bought once (purpose demonstrations), its reuse as meta costs nothing."""
    from llmal.engine.loop import simulate
    from llmal.engine.oracle import GoldSource, TableOracle
    from llmal.engine.schedule import Schedule
    from llmal.tasks.ner.annotators import annotate_ner_human
    from llmal.tasks.ner.data import prepare_ner
    from llmal.tasks.ner.task import NERTask

    items, split = prepare_ner({"kind": "demo", "task": "ner", "n_items": 200, "seed": 3}, {"names": TYPES}, {},
                               cache_dir=tmp_path)
    task = NERTask(items, split, TYPES)
    demos = task.ids["dev"][:16]
    oracle = TableOracle("human", annotate_ner_human(items, {"cost_per_token": 0.001}), demos)
    _, _, model = demo
    tagger = TransformerTagger(task.tokens, task.tag_names, recipe={"kind": "finetune"}, seed=0,
                               encoder={"kind": "transformer", "model": model, "epochs": 2, "lr": 1e-3})
    res = simulate(task=task, oracle=oracle, gold=GoldSource(task.gold(task.ids["pool"] + task.ids["dev"]), 0.25),
                   classifier=tagger, sampler="least_confidence", seed=0, buy_dev=False,
                   training={"reweight": {"meta_set": "demonstrations"}},
                   schedule=Schedule(initial=20, batch=10, rounds=1), log=lambda m: None)
    ledger = res.ledger
    shown = ledger[ledger["purpose"] == "demonstrations"]
    meta = ledger[ledger["purpose"] == "meta"]
    assert sorted(shown["id"]) == sorted(meta["id"]) == sorted(demos)
    assert shown["cost_usd"].sum() == pytest.approx(16 * 0.25) and meta["cost_usd"].sum() == 0
    assert res.info["n_meta"] == 16 and tagger.info()["n_meta"] == 16
    assert res.rounds["cost_gold"].iloc[-1] == pytest.approx(16 * 0.25)
