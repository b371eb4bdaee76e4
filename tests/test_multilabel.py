"""Task multilabel below the workflow: label columns in both shapes through every reader, the
annotators, the one-vs-rest head's thresholds, the strategies' formulas, the metrics and the
agreement statistics (the Snakemake run of the demo grid is tests/test_workflow_multilabel.py)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from llmal.datasets.errors import DatasetError
from llmal.tasks.multilabel import agreement as ag
from llmal.tasks.multilabel.annotators import annotate_human, annotate_precomputed, annotate_simulated
from llmal.tasks.multilabel.data import prepare_multilabel
from llmal.tasks.multilabel.demo import DEMO_LABELS, generate_multilabel_demo
from llmal.tasks.multilabel.labels import names_of, to_indicator
from llmal.tasks.multilabel.learner import tune_threshold
from llmal.tasks.multilabel.metrics import multilabel_metrics
from llmal.tasks.multilabel.mixture import aggregate_per_label
from llmal.tasks.multilabel.strategies import mean_bernoulli_entropy, separation_margin

NAMES = ["hostile", "insult", "threat"]
LABELS = {"names": NAMES}
SPLIT = {"test": 0.2, "dev": 0.1, "seed": 0}


def _records(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    Y = (rng.random((n, 3)) < [0.4, 0.3, 0.1]).astype(int)
    Y[0] = [0, 0, 0]                       # the empty set
    Y[1] = [1, 1, 1]
    coder = Y.copy()
    coder[::7, 0] ^= 1                    # a coder who disagrees now and then
    texts = [f'comment {i}, with "quotes", a comma' + ("\nand a second line" if i % 9 == 0 else "")
             for i in range(n)]
    return pd.DataFrame({
        "id": [f"c{i}" for i in range(n)], "text": texts,
        "labels": ["|".join(NAMES[k] for k in range(3) if y[k]) for y in Y],
        "coder_a": ["|".join(NAMES[k] for k in range(3) if y[k]) or "none" for y in coder],
        **{f"is_{name}": Y[:, k] for k, name in enumerate(NAMES)},
        **{f"a_{name}": coder[:, k] for k, name in enumerate(NAMES)},
    }), Y, coder


LIST_COLUMNS = {"id": "id", "text": "text", "gold": "labels", "annotators": ["coder_a"]}
ZERO_ONE_COLUMNS = {"id": "id", "text": "text", "gold": {n: f"is_{n}" for n in NAMES},
                    "annotators": {"coder_a": {n: f"a_{n}" for n in NAMES}}}


def _write(df: pd.DataFrame, path, fmt: str) -> int:
    """Write `df` and count its records back from the file with the format's own library."""
    if fmt == "csv":
        df.to_csv(path, index=False)
        with open(path, newline="") as f:
            return sum(1 for _ in csv.reader(f)) - 1
    if fmt == "tsv":
        df.assign(text=df["text"].str.replace("\n", " ")).to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE)
        with open(path, newline="") as f:
            return sum(1 for _ in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)) - 1
    if fmt == "jsonl":
        df.to_json(path, orient="records", lines=True)
        return sum(1 for line in open(path) if line.strip())
    df.to_parquet(path, index=False)
    return len(pd.read_parquet(path))


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
@pytest.mark.parametrize("columns", [LIST_COLUMNS, ZERO_ONE_COLUMNS], ids=["list", "zero_one"])
def test_both_label_shapes_load_every_record_of_every_format(tmp_path, fmt, columns):
    df, Y, coder = _records()
    path = tmp_path / f"data.{fmt}"
    n_file = _write(df, path, fmt)
    items, split = prepare_multilabel({"name": "x", "kind": "file", "path": str(path), "columns": columns},
                                      LABELS, SPLIT, cache_dir=tmp_path)
    assert len(items) == n_file == len(df) == len(split)
    got = items.set_index("id")
    assert (to_indicator(got.loc[df["id"], "gold"], 3) == Y).all()
    assert (to_indicator(got.loc[df["id"], "ann_coder_a"].astype("int64"), 3) == coder).all()
    assert got.loc["c0", "gold"] == 0 and names_of(got.loc["c1", "gold"], NAMES) == NAMES


def test_headerless_and_several_files_load_every_record(tmp_path):
    df, Y, _ = _records()
    head, tail = df.iloc[:25], df.iloc[25:]
    n_head = _write(head[["id", "text", "labels"]], tmp_path / "train.csv", "csv")
    n_tail = _write(tail[["id", "text", "labels"]], tmp_path / "test.csv", "csv")
    items, split = prepare_multilabel({"name": "x", "kind": "file", "columns": {"id": "id", "text": "text", "gold": "labels"},
                                       "files": [{"path": str(tmp_path / "train.csv"), "split": "pool"},
                                                 {"path": str(tmp_path / "test.csv"), "split": "test"}]},
                                      LABELS, {**SPLIT, "dev": 0.0}, cache_dir=tmp_path)
    assert len(items) == n_head + n_tail == len(df)
    assert (split.set_index("id").loc[tail["id"], "split"] == "test").all()
    # header-less: columns by position (1 = first), the label list joined by ";"
    bare = tmp_path / "bare.csv"
    df.assign(labels=df["labels"].str.replace("|", ";"))[["id", "text", "labels"]].to_csv(bare, index=False, header=False)
    with open(bare, newline="") as f:
        n_file = sum(1 for _ in csv.reader(f))
    items, _ = prepare_multilabel({"name": "x", "kind": "file", "path": str(bare), "header": False, "label_sep": ";",
                                   "columns": {"id": 1, "text": 2, "gold": 3}}, LABELS, SPLIT, cache_dir=tmp_path)
    assert len(items) == n_file == len(df)
    assert (to_indicator(items.set_index("id").loc[df["id"], "gold"], 3) == Y).all()


def test_an_unknown_label_or_a_bad_cell_names_file_column_and_row(tmp_path):
    df, _, _ = _records(10)
    df.loc[3, "labels"] = "hostile|sarcasm"
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"bad.csv: column 'labels', row 4 \(id 'c3'\).*'sarcasm' is not a label"):
        prepare_multilabel({"name": "x", "kind": "file", "path": str(path), "columns": LIST_COLUMNS},
                           LABELS, SPLIT, cache_dir=tmp_path)
    df, _, _ = _records(10)
    df["is_threat"] = df["is_threat"].astype(object)
    df.loc[5, "is_threat"] = "yes"
    df.to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"column 'is_threat' \(dataset.columns.gold.threat\), row 6 \(id 'c5'\)"):
        prepare_multilabel({"name": "x", "kind": "file", "path": str(path), "columns": ZERO_ONE_COLUMNS},
                           LABELS, SPLIT, cache_dir=tmp_path)


# --- annotators -----------------------------------------------------------------------------
def _demo_pool(n: int = 3000) -> pd.DataFrame:
    return generate_multilabel_demo(n, seed=5)


def test_the_simulated_annotator_has_the_configured_rates_per_label():
    items = _demo_pool()
    rates = {"hostile": {"fp": 0.10, "fn": 0.05}, "insult": {"fp": 0.0, "fn": 0.4}, "migration": {"fp": 0.2}}
    table = annotate_simulated(items, {"label_error": rates, "seed": 3, "cost_per_label": 0.001},
                               list(DEMO_LABELS))
    G = to_indicator(items["gold"], 6)
    A = to_indicator(table["label"].astype("int64"), 6)
    for k, name in enumerate(DEMO_LABELS):
        r = rates.get(name, {})
        fp = A[G[:, k] == 0, k].mean()
        fn = 1 - A[G[:, k] == 1, k].mean()
        assert fp == pytest.approx(r.get("fp", 0.0), abs=0.025), name
        assert fn == pytest.approx(r.get("fn", 0.0), abs=0.05), name
    again = annotate_simulated(items.iloc[::-1], {"label_error": rates, "seed": 3}, list(DEMO_LABELS))
    assert again.set_index("id")["label"].equals(table.set_index("id")["label"].loc[again["id"]])


def test_human_cost_is_per_item_or_per_label_decision():
    items = _demo_pool(50)
    per_item = annotate_human(items, {"mode": "gold", "cost_per_label": 0.1}, list(DEMO_LABELS))
    per_decision = annotate_human(items, {"mode": "gold", "cost_per_label": 0.1, "cost_unit": "decision"},
                                  list(DEMO_LABELS))
    assert per_item["cost_usd"].sum() == pytest.approx(5.0)
    assert per_decision["cost_usd"].sum() == pytest.approx(5.0 * 6)
    assert (per_item["label"].astype("int64") == items["gold"]).all()


def test_the_human_majority_is_per_label():
    items = pd.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "gold": [0, 0], "topic": "", "source": "",
                          "ann_1": pd.array([0b011, 0b100], dtype="Int64"),
                          "ann_2": pd.array([0b001, pd.NA], dtype="Int64"),
                          "ann_3": pd.array([0b101, pd.NA], dtype="Int64")})
    table = annotate_human(items, {"mode": "majority", "cost_per_label": 1.0}, NAMES)
    # item a: label 0 by 3/3, label 1 by 1/3, label 2 by 1/3 -> {hostile}; item b: one coder
    assert table["label"].tolist() == [0b001, 0b100]
    assert table["cost_usd"].tolist() == [3.0, 1.0]     # every coder consulted is paid
    for seed in range(6):                               # one coder per item, drawn per item
        sampled = annotate_human(items, {"mode": "sample", "seed": seed}, NAMES)["label"].tolist()
        assert sampled[0] in (0b011, 0b001, 0b101) and sampled[1] == 0b100
    picks = {annotate_human(items, {"mode": "sample", "seed": s}, NAMES)["label"].iloc[0] for s in range(12)}
    assert len(picks) >= 2


def test_precomputed_label_lists_are_parsed_strictly(tmp_path):
    items = pd.DataFrame({"id": [f"i{k}" for k in range(6)], "text": "t", "gold": 0, "topic": "", "source": ""})
    path = tmp_path / "answers.jsonl"
    rows = [{"id": "i0", "labels": "hostile|threat"}, {"id": "i1", "labels": "none"},
            {"id": "i2", "labels": "hostile|sarcasm"}, {"id": "i3", "labels": ""},
            {"id": "i4", "labels": ["insult"]}, {"id": "i9", "labels": "hostile"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    logged = []
    table = annotate_precomputed(items, {"file": str(path), "columns": {"label": "labels"}, "cost_per_label": 0.5},
                                 NAMES, name="rec", log=logged.append).set_index("id")
    assert table.loc["i0", "label"] == 0b101 and table.loc["i1", "label"] == 0
    assert table.loc["i2", "status"] == "invalid" and table.loc["i2", "raw"] == "hostile|sarcasm"
    assert pd.isna(table.loc["i2", "label"])
    assert table.loc["i3", "status"] == "failed" and table.loc["i3", "cost_usd"] == 0
    assert table.loc["i4", "label"] == 0b010
    assert table.loc["i5", "status"] == "failed"            # no row for it
    assert logged and "1 row(s)" in logged[0]                 # i9 is no pool/dev item


def test_a_mixture_aggregates_per_label():
    a = pd.DataFrame({"id": ["x", "y"], "label": pd.array([0b011, 0b001], dtype="Int64"), "status": "ok",
                      "cost_usd": 0.1, "model": "a"})
    b = a.assign(label=pd.array([0b010, pd.NA], dtype="Int64"), status=["ok", "invalid"])
    c = a.assign(label=pd.array([0b110, 0b100], dtype="Int64"))
    from llmal.contracts import make_annotations
    tables = {k: make_annotations(t) for k, t in {"a": a, "b": b, "c": c}.items()}
    major = aggregate_per_label(tables, {"method": "majority"}, NAMES).set_index("id")
    # x: label 0 by 1/3, label 1 by 3/3, label 2 by 1/3 -> {insult}; y: a {hostile}, c {threat}: 1/2 each, no majority
    assert major.loc["x", "label"] == 0b010 and major.loc["y", "label"] == 0
    assert major.loc["x", "cost_usd"] == pytest.approx(0.3)
    strict = aggregate_per_label(tables, {"method": "majority", "on_tie": "invalid", "min_votes": 3}, NAMES)
    assert strict.set_index("id")["status"].to_dict() == {"x": "ok", "y": "failed"}    # y: two answers
    ties = aggregate_per_label({k: tables[k] for k in "ac"}, {"method": "majority", "on_tie": "invalid"}, NAMES)
    assert ties.set_index("id")["status"].to_dict() == {"x": "invalid", "y": "invalid"}


def test_dawid_skene_per_label_trusts_the_reliable_member_and_mean_reads_llm_probabilities():
    from llmal.contracts import make_annotations

    rng = np.random.default_rng(3)
    n = 600
    Y = (rng.random((n, 3)) < [0.3, 0.2, 0.1]).astype(int)
    ids = [f"i{k}" for k in range(n)]

    def member(err_fn: float, err_fp: float, seed: int) -> pd.DataFrame:
        u = np.random.default_rng(seed).random((n, 3))
        A = np.where(Y == 1, u >= err_fn, u < err_fp).astype(int)
        return make_annotations({"id": ids, "label": (A * [1, 2, 4]).sum(axis=1), "status": "ok", "model": str(seed)})

    # one careful member, two that miss most labels and two that add many
    tables = {"good": member(0.05, 0.02, 1), "miss_a": member(0.7, 0.05, 2), "miss_b": member(0.7, 0.05, 3),
              "add_a": member(0.1, 0.45, 4), "add_b": member(0.1, 0.45, 5)}
    acc = {}
    for method in ("majority", "dawid_skene"):
        out = aggregate_per_label(tables, {"method": method}, NAMES).set_index("id").loc[ids]
        acc[method] = float((to_indicator(out["label"].astype("int64"), 3) == Y).mean())
    assert acc["dawid_skene"] > acc["majority"] + 0.015 and acc["dawid_skene"] > 0.97   # 0.977 vs 0.957

    # mean: a member's P(yes) from logprobs where it has them, its 0/1 answer elsewhere
    a = make_annotations({"id": ["x"], "label": [0b001], "status": "ok",
                          "probs": [json.dumps({"choices": {"hostile": {"yes": 0.6, "no": 0.4},
                                                            "insult": {"yes": 0.45, "no": 0.55}}})]})
    b = make_annotations({"id": ["x"], "label": [0b010], "status": "ok"})
    out = aggregate_per_label({"a": a, "b": b}, {"method": "mean"}, NAMES).set_index("id")
    probs = json.loads(out.loc["x", "probs"])["labels"]
    assert probs == pytest.approx({"hostile": 0.3, "insult": 0.725, "threat": 0.0})
    assert out.loc["x", "label"] == 0b010


# --- learner, strategies, metrics -------------------------------------------------------------
def test_a_threshold_is_tuned_to_the_best_f1_and_stays_at_the_default_without_positives():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.35, 0.3, 0.25, 0.1, 0.05])
    # p > 0.25 catches both positives and nothing else (F1 1); 0.25 is the candidate nearest 0.5 that does
    assert tune_threshold(y, p, 0.5) == 0.25
    assert tune_threshold(np.zeros(5, int), p, 0.5) == 0.5


def test_mean_entropy_and_max_margin_by_hand():
    P = np.array([[0.5, 0.5], [0.9, 0.2], [0.6, 0.45]])
    h = lambda p: -(p * np.log(p) + (1 - p) * np.log(1 - p))  # noqa: E731
    assert mean_bernoulli_entropy(P) == pytest.approx([(h(0.5) + h(0.5)) / 2, (h(0.9) + h(0.2)) / 2,
                                                       (h(0.6) + h(0.45)) / 2])
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    # row 1: predicted {0} (0.9), not {1} (0.2): logit(0.9) - logit(0.2); row 0: nothing predicted
    # (0.5 is not above 0.5): 0 - logit(0.5) = 0; row 2: logit(0.6) - logit(0.45)
    assert separation_margin(P) == pytest.approx([0.0, logit(0.9) - logit(0.2), logit(0.6) - logit(0.45)])
    # with thresholds (0.8, 0.1): row 1 predicts both, margin = min of the two distances - 0
    t = np.array([0.8, 0.1])
    assert separation_margin(P[1:2], t)[0] == pytest.approx(min(logit(0.9) - logit(0.8), logit(0.2) - logit(0.1)))


def test_metrics_match_scikit_learn_definitions():
    from sklearn.metrics import f1_score, hamming_loss

    rng = np.random.default_rng(1)
    Y = (rng.random((80, 3)) < 0.3).astype(int)
    P = np.where(rng.random((80, 3)) < 0.2, 1 - Y, Y)
    m = multilabel_metrics(Y, P, NAMES)
    assert m["f1_micro"] == pytest.approx(f1_score(Y, P, average="micro"))
    assert m["f1_macro"] == pytest.approx(f1_score(Y, P, average="macro"))
    assert m["hamming_loss"] == pytest.approx(hamming_loss(Y, P))
    assert m["subset_accuracy"] == pytest.approx(np.mean((Y == P).all(axis=1)))
    assert m["fp_insult"] == ((P[:, 1] == 1) & (Y[:, 1] == 0)).sum()
    assert m["fn"] == ((P == 0) & (Y == 1)).sum()


# --- agreement --------------------------------------------------------------------------------
def test_masi_distance_by_hand():
    assert ag.masi_distance(0b011, 0b011) == 0.0
    assert ag.masi_distance(0, 0) == 0.0
    assert ag.masi_distance(0b001, 0b011) == pytest.approx(1 - 0.5 * 2 / 3)      # subset
    assert ag.masi_distance(0b011, 0b110) == pytest.approx(1 - (1 / 3) * (1 / 3))  # overlap
    assert ag.masi_distance(0b001, 0b010) == 1.0                                # disjoint


def test_alpha_with_the_nominal_distance_equals_the_krippendorff_package():
    import krippendorff

    rng = np.random.default_rng(2)
    data = rng.integers(0, 3, size=(3, 40)).astype(float)
    data[rng.random(data.shape) < 0.2] = np.nan
    units = [[int(v) for v in col if not np.isnan(v)] for col in data.T]
    ours = ag.alpha(units, lambda a, b: float(a != b))
    assert ours == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def test_fleiss_kappa_per_label_by_hand():
    # 4 items, 3 raters: positives per item 3, 0, 2, 1
    y = np.array([[1, 1, 1], [0, 0, 0], [1, 1, 0], [1, 0, 0]])
    p_i = np.array([1, 1, 1 / 3, 1 / 3])
    p_pos = 6 / 12
    expected = (p_i.mean() - (p_pos ** 2 + (1 - p_pos) ** 2)) / (1 - (p_pos ** 2 + (1 - p_pos) ** 2))
    assert ag.fleiss_binary(y, np.ones_like(y, dtype=bool)) == pytest.approx(expected)


# --- LLM annotator (loopback server) ------------------------------------------------------------
def _ask_llm(tmp_path, texts, prompt, planted=None, **extra):
    from openai_server import Faults, OpenAITestServer, expected_answer

    from llmal.tasks.multilabel.llm import annotate_multilabel_with_llm

    items = pd.DataFrame({"id": [f"t{k}" for k in range(len(texts))], "text": texts})
    spec = {"kind": "openai", "model": "gpt-test", "prompt": prompt, "max_retries": 1, "backoff_base": 0.01, **extra}
    with OpenAITestServer(tmp_path / "server", Faults(planted=json.dumps(planted or {}))) as server:
        spec["base_url"] = server.base_url
        table = annotate_multilabel_with_llm(items, spec=spec, labels=NAMES,
                                             prices={"gpt-test": {"input": 1.0, "output": 2.0}},
                                             cache_path=tmp_path / "cache.sqlite", state_dir=tmp_path / "state",
                                             log=lambda m: None)
        billed = server.ledger()["billed"]
    return table.set_index("id"), billed, expected_answer   # the server's deterministic answer


@pytest.mark.parametrize("prompt", ["multilabel_questions", "multilabel_list"])
def test_llm_answers_become_label_sets_one_request_per_item(tmp_path, prompt):
    texts = [f"comment number {k} about things" for k in range(12)]
    table, billed, _ = _ask_llm(tmp_path, texts, prompt, logprobs=True, top_logprobs=2)
    assert len(billed) == 12 and (table["status"] == "ok").all()
    assert table["cost_usd"].sum() == pytest.approx(sum(1.0 * e["usage"]["prompt_tokens"] / 1e6
                                                        + 2.0 * e["usage"]["completion_tokens"] / 1e6 for e in billed))
    seen = 0
    for k, text in enumerate(texts):
        body_answer = json.loads(table.loc[f"t{k}", "raw"])
        listed = body_answer["labels"] if prompt == "multilabel_list" else [n for n in NAMES if body_answer[n] == "yes"]
        assert names_of(int(table.loc[f"t{k}", "label"]), NAMES) == [n for n in NAMES if n in listed]
        seen += len(listed)
        if prompt == "multilabel_questions":    # logprobs give each label's probability
            choices = json.loads(table.loc[f"t{k}", "probs"])["choices"]
            assert set(choices) == set(NAMES)
            for n in NAMES:
                assert choices[n]["yes"] + choices[n]["no"] == pytest.approx(1.0)
                assert (choices[n]["yes"] > 0.5) == (n in listed)
    assert 0 < seen < 12 * 3


def test_planted_malformed_llm_answers_become_invalid_rows_with_their_raw_text(tmp_path):
    texts = ["first comment", "second comment", "third comment", "fourth comment", "fifth comment"]
    planted_list = {
        texts[0]: json.dumps({"labels": ["hostile", "sarcasm"]}),       # an unknown label
        texts[1]: json.dumps({"labels": "hostile"}),                    # not a list
        texts[2]: json.dumps({"label": ["hostile"]}),                   # a missing key
        texts[3]: "hostile, insult",                                    # not JSON
        texts[4]: json.dumps({"labels": ["threat", "hostile"]}),        # well formed
    }
    table, billed, _ = _ask_llm(tmp_path, texts, "multilabel_list", planted_list)
    assert len(billed) == 5
    for k in range(4):
        row = table.loc[f"t{k}"]
        assert row["status"] == "invalid" and pd.isna(row["label"]) and row["raw"] == planted_list[texts[k]]
        assert row["cost_usd"] > 0                                       # billed all the same
    reasons = [json.loads(table.loc[f"t{k}", "answers"])["reason"] for k in range(4)]
    assert "unknown label 'sarcasm'" in reasons[0] and "not a list" in reasons[1]
    assert 'missing key "labels"' in reasons[2] and "not JSON" in reasons[3]
    assert table.loc["t4", "status"] == "ok" and table.loc["t4", "label"] == 0b101
    planted_q = {texts[0]: json.dumps({"hostile": "yes", "insult": "no"}),                  # missing threat
                 texts[1]: json.dumps({"hostile": "yes", "insult": "no", "threat": "maybe"}),
                 texts[2]: json.dumps({"hostile": "yes", "insult": "no", "threat": "no", "spam": "no"})}
    table, _, _ = _ask_llm(tmp_path / "q", texts[:3], "multilabel_questions", planted_q)
    assert (table["status"] == "invalid").all() and table["label"].isna().all()
    assert [table.loc[f"t{k}", "raw"] for k in range(3)] == [planted_q[t] for t in texts[:3]]


def test_llmal_check_names_an_unknown_label_at_plan_time(tmp_path):
    import yaml

    from llmal.config.check import check_config_file

    (tmp_path / "d.csv").write_text("id,text,labels\n1,hello there,hostile|insult\n2,fine day,\n"
                                    "3,you idiot,insult|sarcasm\n")
    config = {"task": "multilabel", "labels": LABELS,
              "dataset": {"name": "f", "kind": "file", "path": str(tmp_path / "d.csv"),
                          "columns": {"id": "id", "text": "text", "gold": "labels"}},
              "annotators": {"h": {"kind": "human", "mode": "gold"}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    errors = [f"{p.where}: {p.message}" for p in check_config_file(path, results=tmp_path / "results")
              if p.level == "error"]
    assert any("column 'labels', row 3 (id '3'): 'sarcasm' is not a label" in e for e in errors), errors


def test_thresholds_are_tuned_on_the_dev_labels_given_and_default_without():
    from llmal.models.encoders import encode, fit_mask
    from llmal.tasks.multilabel.learner import OneVsRestHead

    items = generate_multilabel_demo(900, seed=4)
    ids = items["id"].tolist()
    split = pd.DataFrame({"id": ids, "split": ["pool"] * 600 + ["dev"] * 150 + ["test"] * 150})
    enc = {"kind": "tfidf", "max_features": 2000, "min_df": 1}
    features = encode(ids, items["text"].tolist(), enc, fit_mask(ids, split, enc))
    Y = to_indicator(items["gold"], 6)
    train, dev = ids[:120], ids[600:750]
    fixed = OneVsRestHead(features, recipe={"kind": "logistic"}, n_labels=6, seed=0)
    fixed.fit(train, Y[:120], dev=(dev, Y[600:750]))
    assert (fixed.predict_proba(ids[750:]).thresholds == 0.5).all()
    tuned = OneVsRestHead(features, recipe={"kind": "logistic", "tune_thresholds": True}, n_labels=6, seed=0)
    tuned.fit(train, Y[:120], dev=(dev, Y[600:750]))
    p_dev = np.asarray(tuned.predict_proba(dev))
    expected = [tune_threshold(Y[600:750, k], p_dev[:, k], 0.5) for k in range(6)]
    assert list(tuned.thresholds) == expected and (tuned.thresholds != 0.5).any()
    # other dev labels (another annotator's) give other thresholds: they come from dev alone
    flipped = 1 - Y[600:750]
    other = OneVsRestHead(features, recipe={"kind": "logistic", "tune_thresholds": True}, n_labels=6, seed=0)
    other.fit(train, Y[:120], dev=(dev, flipped))
    assert list(other.thresholds) != expected
    out = tuned.predict_proba(ids[750:])
    assert list(out.thresholds) == expected


def test_a_learned_mixture_fits_one_model_per_label_on_the_gold_set_and_beats_majority():
    """Member `a` is reliable on labels 0 and 1 and guesses on 2 and 3, `b` the other way round,
    `c` guesses everywhere: per label, majority sides with two guessers half of the time, while a
    model per label fitted on 60 gold items learns whom to trust for that label."""
    from llmal.contracts import make_annotations
    from llmal.tasks.multilabel.plugin import TASK

    names = ["a0", "a1", "b0", "b1"]
    rng = np.random.default_rng(11)
    n = 800
    Y = (rng.random((n, 4)) < [0.4, 0.3, 0.35, 0.25]).astype(int)
    ids = [f"i{k}" for k in range(n)]

    def member(err: list[float], seed: int) -> pd.DataFrame:
        flip = np.random.default_rng(seed).random((n, 4)) < err
        A = np.where(flip, 1 - Y, Y)
        return make_annotations({"id": ids, "label": (A * [1, 2, 4, 8]).sum(axis=1), "status": "ok",
                                 "cost_usd": 0.01, "model": str(seed)})

    tables = {"a": member([0.03, 0.03, 0.45, 0.45], 1), "b": member([0.45, 0.45, 0.03, 0.03], 2),
              "c": member([0.45, 0.45, 0.45, 0.45], 3)}
    gold_ids = TASK.mixture_gold_ids({"method": "learned", "gold_size": 60, "gold_seed": 4}, ids[:200])
    assert len(gold_ids) == 60 and set(gold_ids) <= set(ids[:200])            # drawn from "dev" only
    assert TASK.mixture_gold_ids({"method": "majority"}, ids[:200]) == []
    gold = {i: int((Y[int(i[1:])] * [1, 2, 4, 8]).sum()) for i in gold_ids}
    rest = [i for i in ids if i not in gold]
    rows = [int(i[1:]) for i in rest]
    acc = {}
    for method in ("majority", "learned"):
        out = TASK.aggregate_mixture(tables, {"method": method, "gold_size": 60}, {"names": names},
                                     gold=gold if method == "learned" else None, log=print).set_index("id")
        acc[method] = (to_indicator(out.loc[rest, "label"].astype("int64"), 4) == Y[rows]).mean(axis=0)
    # learned: about the reliable member's 0.97 on every label; majority: about 0.75
    assert (acc["learned"] > 0.93).all() and (acc["learned"] > acc["majority"] + 0.1).all(), acc
    learned = TASK.aggregate_mixture(tables, {"method": "learned"}, {"names": names}, gold=gold, log=print)
    marked = learned.set_index("id")["answers"].map(lambda a: json.loads(a).get("gold_set", False))
    assert set(marked[marked].index) == set(gold_ids)                        # agreement leaves them out
    with pytest.raises(ValueError, match="gold"):
        aggregate_per_label(tables, {"method": "learned"}, names)
    # a gold set showing a label only absent: that label falls back to the members' mean
    none_of_b1 = {i: g & 0b0111 for i, g in gold.items()}
    out = aggregate_per_label(tables, {"method": "learned"}, names, gold=none_of_b1)
    mean = aggregate_per_label(tables, {"method": "mean"}, names)
    b1 = [json.loads(p)["labels"]["b1"] for p in out["probs"]]
    assert b1 == pytest.approx([json.loads(p)["labels"]["b1"] for p in mean["probs"]])


def test_agreement_leaves_out_a_learned_mixtures_gold_set():
    from llmal.contracts import make_annotations

    names = ["a0", "a1"]
    items = pd.DataFrame({"id": ["x", "y", "z"], "gold": [0b01, 0b10, 0b11]})
    split = pd.DataFrame({"id": ["x", "y", "z"], "split": ["dev", "dev", "dev"]})
    # right on the gold-set item x only; wrong on y and z
    t = make_annotations({"id": ["x", "y", "z"], "label": [0b01, 0b01, 0b00], "status": "ok",
                          "answers": ['{"gold_set": true}', "{}", "{}"]})
    units, _, _ = ag.decision_units({"mix": t}, items, split, names)
    assert units["mix"].set_index("id")["answers"].str.contains("gold_set").to_dict() == {
        "x#a0": True, "x#a1": True, "y#a0": False, "y#a1": False, "z#a0": False, "z#a1": False}
    cols = ag.annotator_columns_vs_gold({"mix": t}, items, split, names, ["dev"])
    with_x = ag.annotator_columns_vs_gold({"mix": t.assign(answers="{}")}, items, split, names, ["dev"])
    # y and z only: on label a0 the answers are the opposite of gold (0/1 vs 1/0), so κ = -1
    assert cols["kappa_a0"]["mix"] == pytest.approx(-1.0)
    assert with_x["kappa_a0"]["mix"] == pytest.approx(-0.5)   # x (right) counted: not the same table
