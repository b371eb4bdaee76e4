"""Annotator agreement (S2): kappas, F1, rates, costs, self-consistency, files, CLI."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_config, write_config
from sklearn.metrics import cohen_kappa_score, f1_score

from llmal import cli
from llmal.contracts import make_annotations
from llmal.report.files import read_agreement, write_agreement
from llmal.report.tables import agreement_markdown, fleiss_sentence
from llmal.results.agreement import all_agree_share, annotator_agreement, cohen_kappa, f1_macro, fleiss_kappa

NAMES = ["neg", "pos"]


@pytest.mark.parametrize("k, agree, seed", [(2, 0.8, 0), (3, 0.6, 1), (4, 0.3, 2), (2, 0.0, 3), (5, 0.95, 4)])
def test_cohen_kappa_matches_sklearn(k, agree, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, k, 500)
    b = np.where(rng.random(500) < agree, a, rng.integers(0, k, 500))
    assert cohen_kappa(a, b, k) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_cohen_kappa_degenerate_cases():
    assert np.isnan(cohen_kappa(np.array([], dtype=int), np.array([], dtype=int), 2))
    assert np.isnan(cohen_kappa(np.zeros(5, dtype=int), np.zeros(5, dtype=int), 2))   # chance agreement 1
    assert cohen_kappa(np.array([0, 1, 0, 1]), np.array([1, 0, 1, 0]), 2) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="length"):
        cohen_kappa(np.array([0, 1]), np.array([0]), 2)


def test_fleiss_kappa_hand_computed():
    # 3 items, 3 raters, 2 categories. P_i = 1, 1/3, 1 -> P = 7/9; p = (5/9, 4/9) -> P_e = 41/81;
    # kappa = (63/81 - 41/81) / (40/81) = 22/40
    assert fleiss_kappa(np.array([[3, 0], [2, 1], [0, 3]])) == pytest.approx(0.55)
    # Fleiss (1971) as reproduced on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    wiki = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                     [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert fleiss_kappa(wiki) == pytest.approx(0.20993, abs=1e-5)
    assert fleiss_kappa(np.array([[2, 0], [0, 2]])) == pytest.approx(1.0)
    assert np.isnan(fleiss_kappa(np.zeros((0, 2))))
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa(np.array([[2, 0], [1, 2]]))


def test_f1_macro_matches_sklearn_over_all_labels():
    rng = np.random.default_rng(5)
    gold, pred = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    assert f1_macro(gold, pred, 3) == pytest.approx(f1_score(gold, pred, labels=[0, 1, 2], average="macro"))
    assert f1_macro(np.array([0, 0]), np.array([0, 0]), 2) == pytest.approx(0.5)   # an absent class counts 0


def test_all_agree_share_uses_rows_every_replicate_labelled():
    labels = np.array([[0, 0, 0], [1, 1, 0], [1, -1, 1], [1, 1, 1]])
    assert all_agree_share(labels) == (pytest.approx(2 / 3), 3)


# --------------------------------------------------------------------------------------------
# the table on a hand-made dataset

IDS = [f"i{k}" for k in range(10)]
GOLD = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
SPLIT = ["pool"] * 6 + ["dev"] * 2 + ["test"] * 2


def ann(labels, cost, status=None, ids=IDS[:8]):
    status = status or ["ok" if v is not None else "invalid" for v in labels]
    return make_annotations({"id": ids, "label": pd.array(labels, dtype="Int64"), "status": status,
                             "cost_usd": cost, "model": "m"})


@pytest.fixture
def dataset():
    items = pd.DataFrame({"id": IDS, "text": "t", "gold": GOLD, "topic": "", "source": "s"})
    split = pd.DataFrame({"id": IDS, "split": SPLIT})
    annotations = {
        "human": ann(GOLD[:8], 0.5),
        # wrong on i1 and i6 (dev); invalid on i2; failed on i3; a stray test row i8 is ignored
        "llm": ann([0, 0, None, None, 0, 1, 1, 1, 1], 0.01, status=["ok", "ok", "invalid", "failed", "ok", "ok",
                                                                      "ok", "ok", "ok"], ids=IDS[:9]),
        "llm_t1": ann([0, 1, 0, 1, 1, 1, 1, 1], 0.02),
        "mix": ann([0, 1, 0, 1, 0, 1, 0, 1], 0.03),
    }
    specs = {"human": {"kind": "human", "column": "expert"}, "llm": {"kind": "openai"},
             "llm_t1": {"kind": "openai", "replicate_of": "llm"}, "mix": {"kind": "mixture"}}
    return annotations, items, split, specs


def test_agreement_table_numbers(dataset):
    annotations, items, split, specs = dataset
    report = annotator_agreement(annotations, items, split, specs, NAMES, reference="human", min_dev_items=1)
    t = report.table.set_index("annotator")
    assert list(t.index) == ["human", "llm", "llm_t1", "mix"]
    llm = t.loc["llm"]
    # asked about 8 pool/dev items (the test row is dropped): 6 ok, 1 invalid, 1 failed
    assert (llm["n"], llm["n_ok"]) == (8, 6)
    assert llm["coverage"] == pytest.approx(6 / 8)
    assert llm["malformed_rate"] == pytest.approx(1 / 8) and llm["failed_rate"] == pytest.approx(1 / 8)
    ok_ids = [0, 1, 4, 5, 6, 7]
    given = np.array([0, 0, 0, 1, 1, 1])
    gold = np.array(GOLD)[ok_ids]
    assert llm["n_gold"] == 6 and llm["accuracy"] == pytest.approx(4 / 6)
    assert llm["kappa"] == pytest.approx(cohen_kappa_score(gold, given))
    assert llm["f1_macro"] == pytest.approx(f1_score(gold, given, average="macro"))
    assert llm["dev_n"] == 2 and llm["dev_accuracy"] == pytest.approx(0.5)        # i6 wrong, i7 right
    assert t.loc["human", "kappa"] == pytest.approx(1.0) and t.loc["human", "dev_accuracy"] == 1.0
    # costs: per item asked; savings on the 6 pool items against the human's $0.50
    assert llm["cost_per_item"] == pytest.approx(0.01) and llm["pool_cost_usd"] == pytest.approx(0.06)
    assert llm["cost_ratio"] == pytest.approx(0.02) and llm["saving_usd"] == pytest.approx(0.49 * 6)
    assert t.loc["human", "saving_usd"] == pytest.approx(0.0)
    # self-consistency of llm and its replicate on the 6 items both labelled: differ on i1 and i4
    assert t.loc["llm", "replicate_group"] == "llm" == t.loc["llm_t1", "replicate_group"]
    assert t.loc["llm", "self_consistency"] == pytest.approx(4 / 6) and t.loc["llm", "self_consistency_n"] == 6
    assert t.loc["human", "replicate_group"] == "" and np.isnan(t.loc["human", "self_consistency"])
    # Fleiss' kappa leaves the mixture out and uses the items all others labelled
    s = report.summary
    assert s["fleiss_annotators"] == ["human", "llm", "llm_t1"] and s["fleiss_items"] == 6
    labels = np.array([np.array(GOLD)[ok_ids], given, np.array([0, 1, 1, 1, 1, 1])]).T
    counts = np.stack([(labels == c).sum(axis=1) for c in (0, 1)], axis=1)
    assert s["fleiss_kappa"] == pytest.approx(fleiss_kappa(counts))
    assert s["pool_size"] == 6 and s["dev_gold_items"] == 2
    assert s["best_by_dev_kappa"] == "mix"   # the only non-human annotator right on both dev items
    # pairwise kappa on items both labelled
    assert report.pairwise_kappa.loc["human", "llm"] == pytest.approx(cohen_kappa_score(gold, given))
    assert report.pairwise_n.loc["human", "llm"] == 6 and report.pairwise_n.loc["human", "mix"] == 8


def test_no_reference_means_no_savings(dataset):
    annotations, items, split, specs = dataset
    report = annotator_agreement(annotations, items, split, specs, NAMES, reference=None)
    assert report.table["saving_usd"].isna().all() and report.table["cost_ratio"].isna().all()
    assert "no human reference" in agreement_markdown(report)


def test_unknown_gold_items_are_left_out_of_gold_scores(dataset):
    annotations, items, split, specs = dataset
    items = items.assign(gold=[-1, -1, 0, 1, 0, 1, 0, 1, 0, 1])
    t = annotator_agreement(annotations, items, split, specs, NAMES).table.set_index("annotator")
    assert t.loc["llm", "n_gold"] == 4 and t.loc["llm", "n_ok"] == 6


def test_files_round_trip_and_markdown(dataset, tmp_path):
    annotations, items, split, specs = dataset
    report = annotator_agreement(annotations, items, split, specs, NAMES, reference="human")
    paths = write_agreement(report, tmp_path / "tables")
    assert sorted(p.name for p in paths.values()) == ["agreement.json", "annotators.csv", "annotators.md",
                                                       "pairwise_kappa.csv"]
    table, kappa, summary = read_agreement(tmp_path / "tables")
    pd.testing.assert_frame_equal(table, report.table, check_dtype=False)
    assert kappa.loc["llm", "human"] == pytest.approx(report.pairwise_kappa.loc["llm", "human"])
    assert summary["reference"] == "human" and summary["fleiss_items"] == 6
    md = (tmp_path / "tables" / "annotators.md").read_text()
    assert "| llm | openai | 8 | 75.0% | 12.5% | 12.5% | 0.667 |" in md
    assert "Fleiss' κ among human, llm, llm_t1 on the 6 items" in md
    assert "66.7% (llm, n=6)" in md
    with pytest.raises(FileNotFoundError, match="annotators.csv"):
        read_agreement(tmp_path)


# --------------------------------------------------------------------------------------------
# CLI


def test_cli_prints_the_table_from_existing_annotation_files(dataset, tmp_path, capsys):
    annotations, items, split, _ = dataset
    config = tiny_config()
    config["labels"] = {"names": NAMES, "positive": "pos"}
    config["annotators"] = {"human": {"kind": "human", "mode": "gold", "cost_per_label": 0.5},
                            "llm": {"kind": "simulated", "cost_per_label": 0.01},
                            "llm_t1": {"kind": "simulated", "seed": 1, "replicate_of": "llm"},
                            "never_run": {"kind": "simulated", "seed": 2}}
    config["conditions"] = {"c": {"annotator": "llm", "sampler": "full"}}
    write_config(tmp_path, config)
    res = tmp_path / "results"
    (res / "data").mkdir(parents=True)
    (res / "annotations").mkdir()
    items.to_parquet(res / "data" / "items.parquet")
    split.to_parquet(res / "data" / "split.parquet")
    for name in ("human", "llm", "llm_t1"):
        annotations[name].to_parquet(res / "annotations" / f"{name}.parquet")
    assert cli.main(["agreement", "--configfile", str(tmp_path / "config.yaml"), "--results", str(res)]) == 0
    out, err = capsys.readouterr()
    assert "| llm | simulated | 8 |" in out and "Saving $" in out and "never_run" in err
    assert cli.main(["agreement", "--configfile", str(tmp_path / "config.yaml"), "--results", str(res), "--csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert table["annotator"].tolist() == ["human", "llm", "llm_t1"]
    assert cli.main(["agreement", "--configfile", str(tmp_path / "config.yaml"),
                     "--results", str(tmp_path / "nowhere")]) == 2
    assert "items.parquet" in capsys.readouterr().err


def test_fleiss_counts_only_real_raters_and_lists_them(dataset):
    annotations, items, split, specs = dataset
    annotations = {**annotations, "gold": ann(GOLD[:8], 0.0), "crowd": ann(GOLD[:8], 0.0),
                   "sim": ann(GOLD[:8], 0.0)}
    specs = {**specs, "gold": {"kind": "human", "mode": "gold"}, "crowd": {"kind": "human"},
             "sim": {"kind": "simulated"}}
    s = annotator_agreement(annotations, items, split, specs, NAMES).summary
    assert s["fleiss_annotators"] == ["human", "llm", "llm_t1", "sim"]   # not gold, crowd, mix
    assert "Fleiss' κ among human, llm, llm_t1, sim" in fleiss_sentence(s)


def test_agreement_splits_choose_the_items(dataset):
    annotations, items, split, specs = dataset
    both = {n: ann(GOLD, 0.0, ids=IDS) for n in ("human", "llm")}
    default = annotator_agreement(both, items, split, specs, NAMES).table.set_index("annotator")
    with_test = annotator_agreement(both, items, split, specs, NAMES,
                                    splits=["pool", "dev", "test"]).table.set_index("annotator")
    assert default.loc["llm", "n"] == 8 and with_test.loc["llm", "n"] == 10
    only_test = annotator_agreement(both, items, split, specs, NAMES, splits=["test"])
    assert only_test.table.set_index("annotator").loc["llm", "n"] == 2
    assert only_test.summary["splits"] == ["test"]


def test_kappa_about_zero_against_gold_warns():
    ids = [f"i{k}" for k in range(40)]
    gold = [k % 2 for k in range(40)]
    items = pd.DataFrame({"id": ids, "text": "t", "gold": gold, "topic": "", "source": "s"})
    split = pd.DataFrame({"id": ids, "split": "pool"})
    chance = [(k // 2) % 2 for k in range(40)]   # independent of gold: kappa 0
    report = annotator_agreement({"llm": ann(chance, 0.0, ids=ids), "good": ann(gold, 0.0, ids=ids)},
                                 items, split, {"llm": {"kind": "openai"}, "good": {"kind": "openai"}}, NAMES)
    assert len(report.summary["warnings"]) == 1
    assert "annotator llm: Cohen's κ against gold is 0.000 on 40 items" in report.summary["warnings"][0]
    assert "**Warning:** annotator llm" in agreement_markdown(report)


def _two_experts_config(tmp_path, n=60):
    """Issue 17, item 14: two experts' columns, no gold column, no conditions."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2, n)
    b = np.where(rng.random(n) < 0.8, a, 1 - a)
    path = tmp_path / "experts.csv"
    pd.DataFrame({"text": [f"Kommentar {i}" for i in range(n)],
                  "expert_a": np.array(["nein", "ja"])[a], "expert_b": np.array(["nein", "ja"])[b]}
                 ).to_csv(path, index=False)
    config = {
        "dataset": {"name": "experts", "kind": "file", "path": str(path),
                    "columns": {"text": "text", "annotators": ["expert_a", "expert_b"]},
                    "label_map": {"nein": "not_hostile", "ja": "hostile"}},
        "labels": {"names": ["not_hostile", "hostile"]},
        "split": {"test": 0, "dev": 0},
        "annotators": {"a": {"kind": "human", "column": "expert_a", "cost_per_label": 0.5},
                       "b": {"kind": "human", "column": "expert_b", "cost_per_label": 0.5}},
        "agreement": {"annotators": ["a", "b"]},
    }
    return config, a, b


def test_an_agreement_only_study_needs_no_gold_and_no_conditions(tmp_path):
    from conftest import snakemake

    from llmal.config import ConfigError, validate_config
    from llmal.report.files import read_agreement

    config, a, b = _two_experts_config(tmp_path)
    write_config(tmp_path, config)
    snakemake(tmp_path)                                   # the default target: agreement tables
    results = tmp_path / "results" / "experts"
    table, kappa, summary = read_agreement(results / "tables")
    assert not (results / "runs").exists() and not (results / "report.html").exists()
    assert kappa.loc["a", "b"] == pytest.approx(cohen_kappa_score(a, b))
    assert summary["fleiss_annotators"] == ["a", "b"] and summary["fleiss_items"] == len(a)
    assert summary["gold_items"] == 0
    assert table["n_gold"].tolist() == [0, 0] and table["accuracy"].isna().all()  # no fake 1.000
    assert "No gold labels" in (results / "tables" / "annotators.md").read_text()
    items = pd.read_parquet(results / "data" / "items.parquet")
    assert (items["gold"] == -1).all()
    # conditions still need gold (and say which key), and a config with nothing to do is refused
    with pytest.raises(ConfigError, match=r"dataset\.columns\.gold: the conditions train and score"):
        validate_config({**tiny_config(), **{k: config[k] for k in ("dataset", "labels", "split")},
                         "annotators": {**tiny_config()["annotators"], **config["annotators"]}})
    with pytest.raises(ConfigError, match=r"split\.test: 0 leaves the conditions no test items"):
        validate_config({**tiny_config(), "split": {"test": 0}})
    with pytest.raises(ConfigError, match=r"conditions: no conditions: .*agreement\.annotators"):
        validate_config({**config, "agreement": {}})


def test_agreement_splits_decide_what_is_annotated_through_the_dag(tmp_path):
    """agreement.splits: [pool, dev, test] annotates the test items too (for agreement only) and
    compares the annotators on them: the table's n counts pool + dev + test. Without the key
    (or on main before, where the annotate rule took pool and dev only) n counts pool + dev.
    The AL runs still never see a test label: their oracle is limited to pool and dev."""
    from conftest import snakemake

    from llmal.report.files import read_agreement

    config = tiny_config()
    config["agreement"] = {"splits": ["pool", "dev", "test"], "annotators": ["noisy"]}
    config["conditions"] = {"human_al": config["conditions"]["human_al"]}
    config["seeds"] = [0]
    write_config(tmp_path, config)
    snakemake(tmp_path, "results/tiny/tables/annotators.csv", "results/tiny/runs/human_al/tfidf/seed0/run.json")
    res = tmp_path / "results" / "tiny"
    split = pd.read_parquet(res / "data" / "split.parquet")
    table, _, summary = read_agreement(res / "tables")
    table = table.set_index("annotator")
    assert summary["splits"] == ["pool", "dev", "test"]
    assert table.loc["crowd", "n"] == len(split) == table.loc["noisy", "n"]
    crowd = pd.read_parquet(res / "annotations" / "crowd.parquet")
    test_ids = set(split.loc[split["split"] == "test", "id"].astype(str))
    assert test_ids <= set(crowd["id"].astype(str))
    queried = pd.read_parquet(res / "runs" / "human_al" / "tfidf" / "seed0" / "queried.parquet")
    assert not test_ids & set(queried["id"].astype(str))
