"""Precomputed annotators (recorded answers brought in as they are), column-tied human experts,
kappa intervals and annotator selection; one real Snakemake run over a dozen recorded models."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import snakemake, tiny_config, write_config
from sklearn.metrics import accuracy_score, cohen_kappa_score

from llmal.annotate.run import annotate
from llmal.config import ConfigError, validate_config
from llmal.contracts import make_annotations
from llmal.label_probs import read_cell
from llmal.results.agreement import annotator_agreement, kappa_interval
from llmal.tasks.classification.precomputed import PrecomputedError, annotate_precomputed
from llmal.tasks.registry import task_named

NAMES = ["neutral", "critical_civil", "hostile"]
LETTERS = {"A": "neutral", "B": "critical_civil", "C": "hostile"}


def _items(n=12):
    ids = [f"d{k:02d}" for k in range(n)]
    items = pd.DataFrame({"id": ids, "text": "t", "gold": [k % 3 for k in range(n)], "topic": "", "source": "s"})
    split = pd.DataFrame({"id": ids, "split": ["test"] * 4 + ["dev"] * 4 + ["pool"] * (n - 8)})
    return items, split


def test_a_recorded_file_becomes_an_annotation_table(tmp_path):
    items, split = _items()
    rows = []
    for k, item in enumerate(items["id"]):
        for model, answer in (("m1", "ABC"[k % 3]), ("m2", "A")):
            rows.append({"item": item, "model": model, "answer": answer,
                         "p": json.dumps({"A": 0.7, "B": 0.2, "C": 0.1}), "usd": 0.002, "tin": 50, "tout": 2})
    rows[10 * 2]["answer"] = "The answer is B"      # malformed: kept as raw, status invalid
    rows[11 * 2]["answer"] = ""                      # no answer recorded: failed
    rows.append({"item": "not-in-data", "model": "m1", "answer": "A", "p": "", "usd": 0, "tin": 0, "tout": 0})
    path = tmp_path / "answers.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    spec = {"kind": "precomputed", "file": str(path), "select": {"model": "m1"}, "label_map": LETTERS,
            "columns": {"id": "item", "label": "answer", "probs": "p", "cost_usd": "usd",
                        "input_tokens": "tin", "output_tokens": "tout"}}
    logged = []
    table = annotate(items, split, spec, {"labels": {"names": NAMES}}, name="m1", task=task_named(None), log=logged.append)
    t = table.set_index("id")
    assert set(t.index) == set(split.loc[split["split"] != "test", "id"])      # never test items
    assert t.loc["d10", "status"] == "invalid" and t.loc["d10", "raw"] == "The answer is B"
    assert t.loc["d11", "status"] == "failed" and pd.isna(t.loc["d11", "label"])
    ok = t[t["status"] == "ok"]
    assert (ok["label"] == [int(i[1:]) % 3 for i in ok.index]).all()
    assert read_cell(ok["probs"].iloc[0])["label"] == pytest.approx({"neutral": 0.7, "critical_civil": 0.2, "hostile": 0.1})
    assert (t["cost_usd"] == 0.002).all() and (t["input_tokens"] == 50).all() and (t["output_tokens"] == 2).all()
    assert "5 row(s) for ids outside the pool and dev items" in logged[-1]   # 4 test + 1 unknown
    with pytest.raises(PrecomputedError, match="more than once.*select"):
        annotate_precomputed(items, {**spec, "select": {}}, NAMES, name="m1")
    with pytest.raises(PrecomputedError, match=r"annotators\.m1\.columns: .*no column\(s\) \['nope'\]"):
        annotate_precomputed(items, {**spec, "columns": {"id": "item", "label": "nope"}}, NAMES, name="m1")


def test_answers_from_dataset_columns_and_per_label_probability_columns():
    items, split = _items()
    items["meta_gpt"] = ["neutral", "HOSTILE", "2", "maybe"] * 3
    items["p_hostile"] = 0.9
    items["p_neutral"] = 0.1
    spec = {"kind": "precomputed", "columns": {"label": "gpt", "probs": {"hostile": "p_hostile", "neutral": "p_neutral"}}}
    t = annotate(items, split, spec, {"labels": {"names": NAMES}}, name="gpt", task=task_named(None)).set_index("id")
    assert t.loc["d04", "label"] == 0 and t.loc["d05", "label"] == 2 and t.loc["d06", "label"] == 2
    assert t.loc["d07", "status"] == "invalid" and t.loc["d07", "raw"] == "maybe"
    assert read_cell(t.loc["d04", "probs"])["label"]["hostile"] == pytest.approx(0.9)


def test_precomputed_config_errors_name_the_key(tmp_path):
    cfg = tiny_config()
    cfg["annotators"]["rec"] = {"kind": "precomputed", "file": str(tmp_path / "missing.csv"), "columns": {"label": "a"}}
    with pytest.raises(ConfigError, match=r"annotators\.rec\.file: .* does not exist"):
        validate_config(cfg)
    (tmp_path / "x.csv").write_text("id,a\n1,A\n")
    cfg["annotators"]["rec"] = {"kind": "precomputed", "file": str(tmp_path / "x.csv"), "columns": {"label": "a"},
                                "label_map": {"A": "nonsense"}}
    with pytest.raises(ConfigError, match=r"annotators\.rec\.label_map\.A"):
        validate_config(cfg)
    cfg["annotators"]["rec"] = {"kind": "precomputed", "file": str(tmp_path / "x.csv"), "columns": {}}
    with pytest.raises(ConfigError, match=r"annotators\.rec\.columns"):
        validate_config(cfg)


def test_kappa_interval_matches_a_bootstrap_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 400)
    pred = np.where(rng.random(400) < 0.7, gold, rng.integers(0, 3, 400))
    low, high = kappa_interval(gold, pred, 3)
    boot = []
    for _ in range(2000):
        idx = rng.integers(0, 400, 400)
        boot.append(cohen_kappa_score(gold[idx], pred[idx]))
    se_analytic = (high - low) / (2 * 1.959964)
    assert se_analytic == pytest.approx(np.std(boot), rel=0.1)
    assert low < cohen_kappa_score(gold, pred) < high
    small_low, small_high = kappa_interval(gold[:40], pred[:40], 3)
    assert small_high - small_low > 2.5 * (high - low)
    assert all(np.isnan(kappa_interval(gold[:1], pred[:1], 3)))


def test_selection_needs_enough_dev_items():
    """A `limit` annotator right on its 6 dev items does not beat a good one with 60."""
    n = 200
    ids = [f"s{k:03d}" for k in range(n)]
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, n)
    items = pd.DataFrame({"id": ids, "text": "t", "gold": gold, "topic": "", "source": "s"})
    split = pd.DataFrame({"id": ids, "split": ["dev"] * 60 + ["pool"] * 140})
    good = np.where(rng.random(n) < 0.85, gold, 1 - gold)
    lucky = [0, 1, 2, 3, 4, 5, 100, 101]
    tables = {"good": make_annotations({"id": ids, "label": good}),
              "lucky": make_annotations({"id": [ids[i] for i in lucky], "label": gold[lucky]})}
    specs = {"good": {"kind": "precomputed"}, "lucky": {"kind": "precomputed"}}
    loose = annotator_agreement(tables, items, split, specs, ["a", "b"], min_dev_items=1).summary
    strict = annotator_agreement(tables, items, split, specs, ["a", "b"], min_dev_items=30)
    assert loose["best_by_dev_kappa"] == "lucky"
    assert strict.summary["best_by_dev_kappa"] == "good" and strict.summary["too_few_dev_items"] == ["lucky"]
    t = strict.table.set_index("annotator")
    assert t.loc["lucky", "dev_n"] == 6 and t.loc["lucky", "dev_kappa"] == 1.0
    assert t.loc["good", "dev_kappa_low"] < t.loc["good", "dev_kappa"] < t.loc["good", "dev_kappa_high"]
    assert "not selectable" in __import__("llmal.report.tables", fromlist=["x"]).agreement_markdown(strict).lower()


def test_agreement_reports_self_consistency_of_samples():
    items, split = _items()
    visible = split.loc[split["split"] != "test", "id"].tolist()
    cells = [{"votes": {"neutral": 0.7, "hostile": 0.3}, "n_samples": 10, "n_valid": 10, "agreement": 0.7},
             {"votes": {"neutral": 1.0}, "n_samples": 10, "n_valid": 10, "agreement": 1.0}] * 4
    table = make_annotations({"id": visible, "label": 0, "probs": cells})
    report = annotator_agreement({"llm": table}, items, split, {"llm": {"kind": "openai"}}, NAMES)
    row = report.table.iloc[0]
    assert row["replicate_group"] == "10 samples" and row["self_consistency_n"] == 8
    assert row["self_consistency"] == pytest.approx(0.85)


# ------------------------------------------------------------------ the real DAG
@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory):
    """The demo's 3-class task; a file in the style of real recorded answers: a dozen models'
    letter answers (A/B/C, some malformed) for every pool and dev item, one row per model and
    item; a Dawid-Skene mixture over them; two experts tied to the demo's annotator columns."""
    work = tmp_path_factory.mktemp("recorded")
    config = tiny_config(seeds=[0])
    config["dataset"] = {"name": "tiny", "kind": "demo", "n_items": 400, "seed": 1, "classes": 3}
    config["labels"] = {"names": NAMES}
    config["annotators"] = {"expert1": {"kind": "human", "column": "a1", "cost_per_label": 0.1},
                            "expert2": {"kind": "human", "column": "a2", "cost_per_label": 0.1}}
    config["conditions"] = {"experts": {"annotator": "expert1", "sampler": "random"}}
    config["al"] = {"initial": 30, "batch": 30, "rounds": 1}
    write_config(work, config)
    snakemake(work, "results/tiny/data/items.parquet", "results/tiny/data/split.parquet")
    items = pd.read_parquet(work / "results/tiny/data/items.parquet")
    split = pd.read_parquet(work / "results/tiny/data/split.parquet")
    visible = items[items["id"].isin(split.loc[split["split"] != "test", "id"])]
    rng = np.random.default_rng(7)
    rows = []
    for j in range(12):
        accuracy = 0.45 + 0.04 * j
        for item, gold in zip(visible["id"], visible["gold"]):
            if rng.random() < 0.04:
                answer = rng.choice(["Answer: B", "I cannot decide", "D"])
            else:
                answer = "ABC"[gold if rng.random() < accuracy else rng.integers(0, 3)]
            rows.append({"item_id": item, "model": f"model{j:02d}", "answer": answer,
                         "cost": 0.0001 * (j + 1)})
    pd.DataFrame(rows).to_csv(work / "recorded.tsv", sep="\t", index=False)
    models = [f"model{j:02d}" for j in range(12)]
    for m in models:
        config["annotators"][m] = {"kind": "precomputed", "file": str(work / "recorded.tsv"),
                                   "select": {"model": m}, "label_map": LETTERS,
                                   "columns": {"id": "item_id", "label": "answer", "cost_usd": "cost"}}
    config["annotators"]["ds"] = {"kind": "mixture", "members": models, "method": "dawid_skene"}
    config["conditions"]["ds_al"] = {"annotator": "ds", "sampler": "random"}
    config["agreement"] = {"annotators": [*models, "ds", "expert2"]}
    write_config(work, config)
    snakemake(work)
    return work, models, pd.DataFrame(rows)


def test_recorded_models_are_one_agreement_row_each(recorded_run):
    work, models, rows = recorded_run
    res = work / "results" / "tiny"
    table = pd.read_csv(res / "tables" / "annotators.csv").set_index("annotator")
    items = pd.read_parquet(res / "data" / "items.parquet").set_index("id")
    assert set(models) <= set(table.index) and "ds" in table.index
    for m in models:
        mine = rows[rows["model"] == m]
        valid = mine[mine["answer"].isin(list(LETTERS))]
        pred = valid["answer"].map({k: NAMES.index(v) for k, v in LETTERS.items()})
        gold = items.loc[valid["item_id"], "gold"].to_numpy()
        assert table.loc[m, "accuracy"] == pytest.approx(accuracy_score(gold, pred))
        assert table.loc[m, "malformed_rate"] == pytest.approx(1 - len(valid) / len(mine))
        ann = pd.read_parquet(res / "annotations" / f"{m}.parquet").set_index("id")
        bad = mine[~mine["answer"].isin(list(LETTERS))]
        assert (ann.loc[bad["item_id"], "status"] == "invalid").all()
        assert (ann.loc[bad["item_id"], "raw"].to_numpy() == bad["answer"].to_numpy()).all()
    # Dawid-Skene over the twelve runs and leans on the better ones
    assert table.loc["ds", "accuracy"] > table.loc[models, "accuracy"].median()
    rounds = pd.read_csv(res / "runs" / "ds_al" / "tfidf" / "seed0" / "rounds.csv")
    assert rounds["cost_total"].iloc[-1] > 0


def test_two_column_tied_experts_are_two_rows_with_sklearns_kappa(recorded_run):
    work, _, _ = recorded_run
    res = work / "results" / "tiny"
    table = pd.read_csv(res / "tables" / "annotators.csv").set_index("annotator")
    kappa = pd.read_csv(res / "tables" / "pairwise_kappa.csv").set_index("annotator")
    assert {"expert1", "expert2"} <= set(table.index)
    items = pd.read_parquet(res / "data" / "items.parquet")
    split = pd.read_parquet(res / "data" / "split.parquet")
    items = items[items["id"].isin(split.loc[split["split"] != "test", "id"])]   # what they were asked
    both = items["ann_a1"].notna() & items["ann_a2"].notna()
    want = cohen_kappa_score(items.loc[both, "ann_a1"].astype(int), items.loc[both, "ann_a2"].astype(int))
    assert kappa.loc["expert1", "expert2"] == pytest.approx(want)
    for e, col in (("expert1", "ann_a1"), ("expert2", "ann_a2")):
        given = items[items[col].notna()]
        assert table.loc[e, "kappa"] == pytest.approx(cohen_kappa_score(given["gold"], given[col].astype(int)))


def test_a_header_less_answer_file_keeps_its_first_answer_with_the_datasets_reader_options(tmp_path):
    """Issue 17, item 10: header, quoting, skip_rows and encoding as for the dataset."""
    items, split = _items()
    asked = split.loc[split["split"] != "test", "id"].tolist()           # d04 ... d11
    path = tmp_path / "answers.txt"
    path.write_text("".join(f'{i}\t"{"ABC"[k % 3]}\t0.001\n' for k, i in enumerate(asked)),
                    encoding="latin-1")
    spec = {"kind": "precomputed", "file": str(path), "format": "tsv", "header": False,
            "encoding": "latin-1", "label_map": {'"A': "neutral", '"B': "critical_civil",
                                                 '"C': "hostile"},
            "columns": {"id": 1, "label": 2, "cost_usd": 3}}
    table = annotate_precomputed(items, spec, NAMES, name="rec", log=lambda _: None)
    assert table["id"].tolist() == asked                                  # d04: not a header
    assert table["status"].eq("ok").all() and table["label"].tolist() == [k % 3 for k in range(8)]
    assert table["cost_usd"].tolist() == [0.001] * 8
    # quoting: none (the tsv default) kept the literal quote; standard quoting would pair them
    with pytest.raises(Exception, match=r"answers\.txt: line 1: .*annotators\.rec\.quoting: none"):
        annotate_precomputed(items, {**spec, "quoting": "standard"}, NAMES, name="rec")
    # without header: false the first answer would be the header: its id there says so
    for columns in ({"id": 1, "label": 2}, {"id": "item", "label": "answer"}):
        with pytest.raises(PrecomputedError, match=r"the header line of .*answers\.txt holds the item "
                                                   r"id 'd04': a header-less file needs "
                                                   r"annotators\.rec\.header: false"):
            annotate_precomputed(items, {**{k: v for k, v in spec.items() if k != "header"},
                                         "columns": columns}, NAMES, name="rec")
    # numbers on a file with a header line
    named = tmp_path / "named.tsv"
    named.write_text("item\tanswer\tusd\n" + path.read_text(encoding="latin-1"))
    with pytest.raises(PrecomputedError, match=r"no column\(s\) \['1', '2'\].*columns given by "
                                               r"number need annotators\.rec\.header: false"):
        annotate_precomputed(items, {"kind": "precomputed", "file": str(named), "label_map": spec["label_map"],
                                     "columns": {"id": 1, "label": 2}}, NAMES, name="rec")
    # the keys pass the schema, the numbers included
    from llmal.config import _validator_with_defaults, load_schema
    schema_errors = list(_validator_with_defaults()(load_schema()).iter_errors(
        {**tiny_config(), "annotators": {"rec": spec}}))
    assert not [e.message for e in schema_errors if "annotators" in list(map(str, e.absolute_path))]
