"""task: ner — readers, spans, strict span parsing through the loopback server, seqeval
metrics, the CRF on MasakhaNER tsn, and the NER demo through real Snakemake."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, snakemake, write_config

from llmal.datasets.validate import DatasetError
from llmal.tasks.ner.data import prepare_ner, sentences_to_items
from llmal.tasks.ner.readers import NerDataError, Sentence, read_sentences
from llmal.tasks.ner.spans import find_span, spans_to_tags, tags_to_spans
from llmal.tasks.registry import task_named

TYPES = ["PER", "ORG", "LOC", "DATE"]
MASAKHANER = ROOT.parent / "shared" / "data" / "masakhaner2" / "tsn"


# ---------------------------------------------------------------- readers and spans
def test_conll_errors_name_file_and_line(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("-DOCSTART- O\n\nAnna B-PER\nSchmidt I-PER\nlives O\nin O\nBerlin B-LOC\n\nHi O\n")
    sents = read_sentences(good, TYPES)
    assert [s.tokens for s in sents] == [("Anna", "Schmidt", "lives", "in", "Berlin"), ("Hi",)]
    assert tags_to_spans(sents[0].tags) == [(0, 2, "PER"), (4, 5, "LOC")]
    bad = tmp_path / "bad.txt"
    bad.write_text("Anna B-PER\nlives O\nin I-LOC\n")
    with pytest.raises(NerDataError, match=r"bad.txt:3: .*I- tag must continue"):
        read_sentences(bad, TYPES)
    bad.write_text("x O\n\nAnna B-PERSON\n")
    with pytest.raises(NerDataError, match=r"bad.txt:3: unknown entity type 'PERSON'"):
        read_sentences(bad, TYPES)
    bad.write_text("Anna\n")
    with pytest.raises(NerDataError, match=r"bad.txt:1: expected a token and its tag"):
        read_sentences(bad, TYPES)


def test_jsonl_spans_and_errors(tmp_path):
    f = tmp_path / "s.jsonl"
    f.write_text(json.dumps({"id": "a", "tokens": ["Kofi", "met", "Acme", "Corp"],
                             "spans": [{"start": 2, "end": 4, "type": "ORG"}, [0, 1, "PER"]]}) + "\n")
    (s,) = read_sentences(f, TYPES)
    assert s.id == "a" and s.tags == ("B-PER", "O", "B-ORG", "I-ORG")
    f.write_text('{"tokens": ["a"]}\n' + json.dumps({"tokens": ["a", "b"], "spans": [[0, 2, "PER"], [1, 2, "LOC"]]}) + "\n")
    with pytest.raises(NerDataError, match=r"s.jsonl:2: .*overlaps"):
        read_sentences(f, TYPES)
    f.write_text(json.dumps({"tokens": ["a"], "spans": [[0, 1, "MISC"]]}) + "\n")
    with pytest.raises(NerDataError, match=r"s.jsonl:1: unknown entity type 'MISC'"):
        read_sentences(f, TYPES)


def test_conll_files_each_with_its_split(tmp_path):
    for name, n in (("train", 6), ("test", 3)):
        (tmp_path / f"{name}.txt").write_text("".join(f"W{i} B-PER\nx O\n\n" for i in range(n)))
    items, split = prepare_ner({"kind": "conll", "name": "x", "files": [
        {"path": str(tmp_path / "train.txt"), "split": "train"},
        {"path": str(tmp_path / "test.txt"), "split": "test"}]}, {"names": TYPES}, {"dev": 0.34}, cache_dir=tmp_path)
    assert split["split"].value_counts().to_dict() == {"pool": 3, "test": 3, "dev": 3}
    assert items["id"].iloc[0] == "train:0" and json.loads(items["meta_tags"].iloc[0]) == ["B-PER", "O"]
    (tmp_path / "test.txt").write_text("a I-PER\n")
    with pytest.raises(DatasetError, match="test.txt:1"):
        prepare_ner({"kind": "conll", "name": "x", "path": str(tmp_path / "test.txt")}, {"names": TYPES}, {},
                    cache_dir=tmp_path)


def test_repeated_strings_take_the_leftmost_free_occurrence():
    tokens = "the Red Cross and the Red Cross".split()
    assert find_span(tokens, ["Red", "Cross"], []) == (1, 3)
    assert find_span(tokens, ["Red", "Cross"], [(1, 3, "ORG")]) == (5, 7)
    assert find_span(tokens, ["Red", "Cross"], [(1, 3, "ORG"), (5, 7, "ORG")]) is None
    assert spans_to_tags([(5, 7, "ORG")], 7)[5:] == ["B-ORG", "I-ORG"]


# ---------------------------------------------------------------- LLM annotators, strict parsing
def _sentences(texts: list[str]) -> pd.DataFrame:
    return sentences_to_items([Sentence(f"s{n}", tuple(t.split()), ("O",) * len(t.split()), n)
                               for n, t in enumerate(texts)], "test")


def _annotate(server, tmp_path, items, **extra):
    from llmal.tasks.ner.llm import annotate_ner_with_llm

    spec = {"kind": "openai", "model": "gpt-test", "prompt": "ner", "base_url": server.base_url,
            "max_retries": 1, "backoff_base": 0.01, **extra}
    return annotate_ner_with_llm(items, spec=spec, types=TYPES, prices={"gpt-test": {"input": 1.0, "output": 2.0}},
                                 cache_path=tmp_path / "cache.sqlite", state_dir=tmp_path / "state",
                                 log=lambda m: None)


def test_planted_malformed_answers_become_invalid_spans_and_items(tmp_path):
    from openai_server import Faults, OpenAITestServer

    texts = ["Kofi met Acme Corp in Lagos .", "Sara left Oslo .", "Peter joined Delta .",
             "Yesterday Mei visited Kyoto and Kyoto ."]
    planted = {
        texts[0]: json.dumps({"entities": [
            {"span": "Kofi", "type": "PER"}, {"span": "Nairobi", "type": "LOC"},       # not in it
            {"span": "Acme Corp", "type": "COMPANY"},                                    # unknown type
            {"span": "Acme Corp", "type": "ORG"}, {"span": "Corp in", "type": "LOC"},  # overlap
            {"span": "Lagos", "type": "LOC", "confidence": 1}]}),                      # extra key
        texts[1]: "Sure! The entities are: Sara (PER), Oslo (LOC).",                   # not JSON
        texts[2]: json.dumps({"entities": "Peter"}),                                   # not a list
        texts[3]: json.dumps({"entities": [{"span": "Kyoto", "type": "LOC"}, {"span": "Kyoto", "type": "LOC"},
                                           {"span": "Kyoto", "type": "LOC"}]}),        # a third Kyoto
    }
    with OpenAITestServer(tmp_path / "server", Faults(planted=json.dumps(planted))) as server:
        table = _annotate(server, tmp_path, _sentences(texts)).set_index("id")
        billed = server.ledger()["billed"]
    assert len(billed) == 4
    assert table.loc["s0", "status"] == "ok" and table.loc["s0", "invalid_spans"] == 4
    assert json.loads(table.loc["s0", "spans"]) == [[0, 1, "PER"], [2, 4, "ORG"]]
    assert table.loc["s0", "raw"] == planted[texts[0]]            # the raw answer is kept
    for item in ("s1", "s2"):
        assert table.loc[item, "status"] == "invalid" and pd.isna(table.loc[item, "label"])
        assert table.loc[item, "spans"] == "" and table.loc[item, "raw"] == planted[texts[int(item[1])]]
    assert json.loads(table.loc["s3", "spans"]) == [[3, 4, "LOC"], [5, 6, "LOC"]]
    assert table.loc["s3", "invalid_spans"] == 1
    assert (table["cost_usd"] > 0).all()


def test_two_sentences_per_prompt_share_one_request(tmp_path):
    from openai_server import Faults, OpenAITestServer, ner_entities

    texts = ["Kofi met Acme Corp .", "Then Sara left Oslo .", "Peter joined Delta .", "Nobody came ."]
    planted = {"[1] Peter joined Delta .": json.dumps({"sentences": [{"entities": []}]})}  # 1 of 2
    with OpenAITestServer(tmp_path / "server", Faults(planted=json.dumps(planted))) as server:
        table = _annotate(server, tmp_path, _sentences(texts), sentences_per_prompt=2).set_index("id")
        assert len(server.ledger()["billed"]) == 2
    assert table.loc["s0", "request_id"] == table.loc["s1", "request_id"] != table.loc["s2", "request_id"]
    assert list(table["status"]) == ["ok", "ok", "invalid", "invalid"]
    want = [[n, n + 1, e["type"]] for e in ner_entities(texts[1].split(), TYPES)
            for n, tok in enumerate(texts[1].split()) if tok == e["span"]]
    assert json.loads(table.loc["s1", "spans"]) == want and want


# ---------------------------------------------------------------- metrics, CRF on MasakhaNER
def test_entity_rows_count_what_seqeval_counts():
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    from llmal.tasks.ner.metrics import entity_rows, seqeval_scores

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "O"], ["B-DATE", "O"]]
    pred = [["B-PER", "O", "O", "B-PER"], ["O", "B-ORG", "O"], ["O", "B-LOC"]]
    m = seqeval_scores(gold, pred, TYPES)
    assert m["f1_micro"] == pytest.approx(f1_score(gold, pred, mode="strict", scheme=IOB2))
    rows = entity_rows(["a", "b", "c"], gold, pred, TYPES)
    none = len(TYPES)
    for k, t in enumerate(TYPES):   # FP = predicted t where gold is not t, FN = gold t not predicted t
        assert ((rows["pred"] == k) & (rows["gold"] != k)).sum() == m[f"fp_{t}"]
        assert ((rows["gold"] == k) & (rows["pred"] != k)).sum() == m[f"fn_{t}"]
    assert m["fn_PER"] == 1 and m["fp_PER"] == 2 and m["fn_DATE"] == 1 and m["fp_LOC"] == 1
    assert set(rows.loc[rows["gold"] == none, "topic"]) == {"PER", "LOC"}   # spurious: the predicted type


@pytest.mark.skipif(not MASAKHANER.is_dir(), reason="MasakhaNER 2.0 tsn not in ../shared/data")
def test_crf_on_the_gold_full_pool_of_masakhaner_tsn():
    """The official test file is the test set; its F1 recomputed with seqeval from predictions."""
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    from llmal.engine.loop import simulate
    from llmal.engine.oracle import GoldSource, TableOracle
    from llmal.engine.schedule import Schedule
    from llmal.tasks.ner.annotators import annotate_ner_human
    from llmal.tasks.ner.crf import CRFTagger
    from llmal.tasks.ner.task import NERTask

    items, split = prepare_ner({"kind": "masakhaner", "path": str(MASAKHANER)}, {"names": TYPES}, {},
                               cache_dir="unused")
    official = (MASAKHANER / "test.txt").read_text().split("\n\n")
    assert (split["split"] == "test").sum() == len([s for s in official if s.strip()]) == 996
    task = NERTask(items, split, TYPES)
    table = annotate_ner_human(items[split["split"].isin(["pool", "dev"]).to_numpy()], {"mode": "gold"})
    result = simulate(task=task, oracle=TableOracle("human", table), gold=GoldSource({}, 0.0),
                      classifier=CRFTagger(task.tokens, task.tag_names, recipe={"max_iterations": 50}, seed=0),
                      sampler="full", schedule=Schedule(50, 50, 0, full=True), seed=0, buy_dev=False,
                      log=lambda m: None)
    final = result.rounds.iloc[-1]
    assert final["n_train"] == 3489 and 0.75 < final["f1_micro"] < 0.95
    preds = result.predictions
    by_sentence = preds.drop_duplicates("sentence")
    assert set(by_sentence["sentence"]) <= set(task.ids["test"])
    recomputed = f1_score([json.loads(t) for t in by_sentence["gold_tags"]],
                          [json.loads(t) for t in by_sentence["pred_tags"]], mode="strict", scheme=IOB2)
    assert recomputed == pytest.approx(final["f1_micro"], abs=1e-12)
    print(f"CRF on the gold full pool of MasakhaNER tsn: entity F1 (micro) {final['f1_micro']:.4f}")


# ---------------------------------------------------------------- the NER demo through Snakemake
def tiny_ner_config() -> dict:
    import yaml
    config = yaml.safe_load((ROOT / "config" / "ner_demo.yaml").read_text())
    config["dataset"].update(name="tiny_ner", n_items=300)
    config["al"] = {"initial": 15, "batch": 15, "rounds": 2}
    config["seeds"] = [0]
    return config


def test_ner_demo_end_to_end(tmp_path):
    config = tiny_ner_config()
    write_config(tmp_path, config)
    snakemake(tmp_path)
    res = tmp_path / "results" / "tiny_ner"
    summary = pd.read_csv(res / "tables" / "summary.csv")
    assert list(summary["condition"]) == list(config["conditions"])
    assert summary["f1_micro_mean"].between(0.3, 1.0).all()
    human = pd.read_parquet(res / "annotations" / "human.parquet")
    items = pd.read_parquet(res / "data" / "items.parquet").set_index("id")
    row = human.iloc[0]
    assert json.loads(row["spans"]) == [list(s) for s in tags_to_spans(json.loads(items.loc[row["id"], "meta_tags"]))]
    assert row["cost_usd"] == pytest.approx(0.01 * len(json.loads(items.loc[row["id"], "meta_tokens"])))
    for cond in config["conditions"]:
        run_dir = res / "runs" / cond / "tfidf" / "seed0"
        rounds = pd.read_csv(run_dir / "rounds.csv")
        assert len(rounds) == 3 and rounds["n_labels"].tolist() == [15, 30, 45]
        run = json.loads((run_dir / "run.json").read_text())
        assert run["label_names"] == TYPES + ["O"] and run["spec"]["task"] == "ner"
    fpfn = pd.read_csv(res / "tables" / "fpfn.csv")
    assert set(fpfn["class"]) == set(TYPES)
    assert (res / "figures" / "learning_curve.png").stat().st_size > 1000
    agreement = json.loads((res / "tables" / "agreement.json").read_text())
    assert agreement["unit"] == "tokens" and agreement["fleiss_annotators"] == ["llm_sim", "llm_sim_b"]
    assert 0.3 < agreement["fleiss_kappa"] < 1.0        # token-level Fleiss' kappa (S2)
    table = pd.read_csv(res / "tables" / "annotators.csv").set_index("annotator")
    assert table.loc["human", "entity_f1"] == 1.0 and table.loc["llm_sim", "entity_f1"] < 1.0
    report = (res / "report.html").read_text().lower()
    assert "entity f1 (micro)" in report and "synthetic" in report


def test_lazy_llm_oracle_buys_sentences_in_the_loop(tmp_path):
    """An NER LLM annotator asked during an AL run (annotation: lazy) through the loopback server:
    only the sentences bought are sent, and the ledger holds what the server billed."""
    from openai_server import Faults, OpenAITestServer

    from llmal.engine.loop import simulate
    from llmal.engine.oracle import GoldSource
    from llmal.engine.oracles import build_oracle
    from llmal.engine.schedule import Schedule
    from llmal.tasks.ner.crf import CRFTagger
    from llmal.tasks.ner.task import NERTask

    items, split = prepare_ner({"kind": "demo", "task": "ner", "n_items": 200, "seed": 3}, {"names": TYPES}, {},
                               cache_dir=tmp_path)
    task = NERTask(items, split, TYPES)
    spec = {"kind": "openai", "model": "gpt-test", "prompt": "ner", "max_retries": 1, "backoff_base": 0.01}
    prices = {"gpt-test": {"input": 1.0, "output": 2.0}}
    with OpenAITestServer(tmp_path / "server", Faults()) as server:
        spec["base_url"] = server.base_url
        oracle = build_oracle("llm", annotators={"llm": spec}, mode="lazy", items=items, split=split, tables={},
                              task=task_named("ner"), llm={"labels": {"names": TYPES}, "prices": prices,
                                   "cache_dir": str(tmp_path / "cache")}, log=lambda m: None)
        planned = oracle.estimate(task.ids["pool"][:40]).mean()   # llmal plan's price, nothing sent
        result = simulate(task=task, oracle=oracle, gold=GoldSource({}, 0.0),
                          classifier=CRFTagger(task.tokens, task.tag_names, recipe={"max_iterations": 20}, seed=0),
                          sampler="mean_token_entropy", schedule=Schedule(20, 10, 2), seed=0, buy_dev=False,
                          log=lambda m: None)
        billed = server.ledger()["billed"]
    rows = oracle.current(result.queried["id"].tolist())
    # duplicate sentences share one request, sent and paid once
    assert len(result.queried) == 40 and len(billed) == rows["request_id"].nunique() and oracle.stats()["calls"] == 3
    assert (result.queried["cost_usd"] == 0).sum() == 40 - len(billed)
    assert result.rounds["cost_total"].iloc[-1] == pytest.approx(result.ledger["cost_usd"].sum())
    assert result.ledger["cost_usd"].sum() > 0
    assert result.rounds["f1_micro"].notna().all()
    paid = result.ledger["cost_usd"].sum() / len(billed)          # per request = per sentence here
    assert 0.5 < planned / paid < 2.0, (planned, paid)


def test_self_consistency_of_re_annotations_is_token_level(tmp_path):
    """S2 also picks its annotator by consistency over re-annotations of a few sentences: three
    replicates (`replicate_of`, another seed) of one simulated annotator on 50 sentences; the
    agreement table's self_consistency is the share of those sentences' tokens all three tag alike."""
    from llmal.results.agreement import task_agreement
    from llmal.tasks.ner.annotators import annotate_ner_simulated
    from llmal.tasks.ner.plugin import TASK

    items, split = prepare_ner({"kind": "demo", "task": "ner", "n_items": 200, "seed": 5}, {"names": TYPES}, {},
                               cache_dir=tmp_path)
    asked = items[items["id"].isin(split.loc[split["split"] == "pool", "id"])].head(50)
    noise = {"PER": {"missed": 0.2, "boundary": 0.2}, "ORG": {"wrong_type": 0.3}, "DATE": {"missed": 0.3}}
    specs = {"r0": {"kind": "simulated", "entity_error": noise, "seed": 1},
             "r1": {"kind": "simulated", "entity_error": noise, "seed": 2, "replicate_of": "r0"},
             "r2": {"kind": "simulated", "entity_error": noise, "seed": 3, "replicate_of": "r0"}}
    tables = {n: annotate_ner_simulated(asked, s, TYPES) for n, s in specs.items()}
    report = task_agreement(TASK, tables, items, split, {"annotators": specs, "labels": {"names": TYPES}},
                            reference=None)
    table = report.table.set_index("annotator")
    tags = {n: [spans_to_tags([tuple(x) for x in json.loads(s)], len(json.loads(t)))
                for s, t in zip(tables[n]["spans"], asked["meta_tokens"])] for n in specs}
    same = [a == b == c for s0, s1, s2 in zip(tags["r0"], tags["r1"], tags["r2"]) for a, b, c in zip(s0, s1, s2)]
    assert table.loc["r0", "replicate_group"] == "r0" and table.loc["r2", "self_consistency_n"] == len(same)
    assert table.loc["r1", "self_consistency"] == pytest.approx(np.mean(same))
    assert 0.5 < np.mean(same) < 1.0


# ---------------------------------------------------------------- mixtures of sentence annotators
def test_ner_mixture_keeps_the_entities_a_majority_proposes():
    from llmal.contracts import make_annotations
    from llmal.tasks.ner.mixture import annotate_ner_mixture

    def table(rows):
        return make_annotations({"id": [r[0] for r in rows], "label": [0 if r[1] == "ok" else None for r in rows],
                                 "status": [r[1] for r in rows], "spans": [json.dumps(r[2]) if r[2] is not None else "" for r in rows],
                                 "cost_usd": [r[3] for r in rows], "request_id": [r[4] for r in rows], "model": "m"})
    a = table([("s1", "ok", [[0, 2, "PER"], [4, 5, "LOC"]], 0.02, "ra"), ("s2", "ok", [[1, 2, "ORG"]], 0.02, "ra")])
    b = table([("s1", "ok", [[0, 2, "PER"], [3, 5, "LOC"]], 0.01, "rb1"), ("s2", "invalid", None, 0.01, "rb2")])
    c = table([("s1", "ok", [[0, 1, "PER"], [4, 5, "LOC"]], 0.01, "rc1"), ("s2", "ok", [[1, 2, "LOC"]], 0.01, "rc2")])
    mix = annotate_ner_mixture({"a": a, "b": b, "c": c}, {"kind": "mixture"}).set_index("id")
    # s1: PER 0-2 (a, b) and LOC 4-5 (a, c) have 2 of 3 votes; LOC 3-5 and PER 0-1 one each
    assert json.loads(mix.loc["s1", "spans"]) == [[0, 2, "PER"], [4, 5, "LOC"]]
    # s2: two members answered and disagree on the type: neither has a strict majority
    assert mix.loc["s2", "status"] == "ok" and json.loads(mix.loc["s2", "spans"]) == []
    assert json.loads(mix.loc["s2", "answers"])["n_votes"] == 2
    # a's request held two sentences: each carries half its price; the table sums to the bill
    assert mix["cost_usd"].tolist() == pytest.approx([0.01 + 0.01 + 0.01, 0.01 + 0.01 + 0.01])
    assert mix["cost_usd"].sum() == pytest.approx(0.02 + 0.01 + 0.01 + 0.01 + 0.01)
    strict = annotate_ner_mixture({"a": a, "b": b, "c": c}, {"kind": "mixture", "min_votes": 3}).set_index("id")
    assert strict.loc["s2", "status"] == "failed" and strict.loc["s1", "status"] == "ok"


def test_ner_mixture_in_the_loop_and_in_the_dag(tmp_path):
    """Three simulated LLM-like annotators with independent errors and their majority vote:
    through a lazy run (each member bought once per sentence) and the DAG (precomputed table,
    agreement table); the vote beats every member against gold."""
    config = tiny_ner_config()
    noise = {"PER": {"missed": 0.2, "boundary": 0.1}, "ORG": {"missed": 0.2, "wrong_type": 0.2},
             "LOC": {"missed": 0.2, "spurious": 0.1}, "DATE": {"missed": 0.3}}
    for n in range(3):
        config["annotators"][f"sim{n}"] = {"kind": "simulated", "entity_error": noise, "seed": 20 + n,
                                           "cost_per_label": 0.001}
    config["annotators"]["vote"] = {"kind": "mixture", "members": ["sim0", "sim1", "sim2"]}
    config["agreement"] = {"annotators": ["sim0", "sim1", "sim2", "vote"]}
    config["conditions"] = {"vote_mte": {"annotator": "vote", "sampler": "mean_token_entropy"},
                            "vote_pre": {"annotator": "vote", "sampler": "random", "annotation": "precomputed"}}
    config["aggregate"] = {"metric": "f1_micro", "reference": "vote_pre"}
    write_config(tmp_path, config)
    snakemake(tmp_path)
    res = tmp_path / "results" / "tiny_ner"
    table = pd.read_csv(res / "tables" / "annotators.csv").set_index("annotator")
    assert table.loc["vote", "entity_f1"] > table.loc[["sim0", "sim1", "sim2"], "entity_f1"].max()
    for cond in config["conditions"]:
        run_dir = res / "runs" / cond / "tfidf" / "seed0"
        ledger = pd.read_parquet(run_dir / "ledger.parquet")
        queried = pd.read_parquet(run_dir / "queried.parquet")
        assert len(queried) == 45 and queried["id"].is_unique
        bought = ledger[ledger["purpose"].isin(["initial", "al"])]
        assert bought["cost_usd"].sum() == pytest.approx(3 * 0.001 * 45)   # three members, once each
        assert pd.read_csv(run_dir / "rounds.csv")["f1_micro"].iloc[-1] > 0.3
