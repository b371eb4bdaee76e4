"""The data stage: synthetic demo, loaders, validation, splits, GAHD and verified downloads."""
from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmal.contracts import ITEM_COLUMNS
from llmal.datasets.download import fetch_verified, sha256_file
from llmal.datasets.loaders import load_table, map_columns
from llmal.datasets.split import assign_split, texts_shared_with_test
from llmal.datasets.validate import DatasetError, validate_items
from llmal.tasks.classification import demo as demo_module
from llmal.tasks.classification.demo import TOPICS, describe_demo, generate_demo
from llmal.tasks.classification.gahd import GAHD_SHA256, load_gahd
from llmal.tasks.classification.prepare import prepare_dataset

LABELS = ["not_hostile", "hostile"]
LABELS_CFG = {"names": LABELS, "positive": "hostile"}
SPLIT_CFG = {"test": 0.2, "dev": 0.1, "seed": 0}
# the shared read-only copy next to the project (never committed into it)
GAHD_CSV = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gahd"
            / "gahd_disaggregated.csv")
needs_gahd = pytest.mark.skipif(not GAHD_CSV.exists(), reason="GAHD copy not present")


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return generate_demo(3000, 0)


# --- synthetic demo -------------------------------------------------------------------------

def test_demo_is_deterministic_in_seed():
    a, b = generate_demo(300, 5), generate_demo(300, 5)
    pd.testing.assert_frame_equal(a, b)
    assert a.to_csv(index=False).encode() == b.to_csv(index=False).encode()
    other = generate_demo(300, 6)
    assert (other["text"] != a["text"]).mean() > 0.9
    assert not other["gold"].equals(a["gold"]) or not other["topic"].equals(a["topic"])


def test_demo_follows_the_items_contract(demo):
    assert list(demo.columns[:5]) == ITEM_COLUMNS
    assert demo["id"].iloc[0] == "demo-00001" and demo["id"].is_unique
    assert set(demo["source"]) == {"synthetic"}
    assert set(demo["gold"]) == {0, 1} and demo["gold"].dtype == "int64"
    for col in ("ann_a1", "ann_a2", "ann_a3"):
        assert str(demo[col].dtype) == "Int64" and demo[col].notna().all()
    assert demo["meta_ambiguity"].between(0, 1).all()
    validate_items(demo, label_names=LABELS, where="demo")


def test_demo_topics_and_hostile_rates(demo):
    assert set(demo["topic"]) == set(TOPICS)
    rate = demo.groupby("topic")["gold"].mean()
    assert 0.22 <= demo["gold"].mean() <= 0.36
    # hostility about other things in `unrelated` chatter is not positive
    assert rate["unrelated"] == 0.0
    assert (demo.loc[demo["topic"] == "unrelated", "meta_style"] == "hostile_other").sum() > 50
    assert min(rate["border_control"], rate["crime"]) > max(rate["labour_market"],
                                                           rate["culture_religion"])


def test_demo_annotators_disagree_more_on_ambiguous_items(demo):
    labels = demo[["ann_a1", "ann_a2", "ann_a3"]].astype(int).to_numpy()
    disagree = labels.min(axis=1) != labels.max(axis=1)
    tercile = pd.qcut(demo["meta_ambiguity"].rank(method="first"), 3, labels=False).to_numpy()
    by_tercile = [disagree[tercile == k].mean() for k in range(3)]
    assert by_tercile[0] < by_tercile[1] < by_tercile[2]
    assert by_tercile[2] > 2.5 * by_tercile[0]
    # a1 over-flags hostility, a2 misses some: different biases, all better than chance
    assert demo["ann_a1"].mean() > demo["ann_a2"].mean() + 0.03
    for col in ("ann_a1", "ann_a2", "ann_a3"):
        assert 0.7 < (demo[col] == demo["gold"]).mean() < 0.97


def test_demo_texts_vary(demo):
    assert demo["text"].nunique() > 0.97 * len(demo)
    normalised = (demo["text"].str.lower().str.replace(r"@\S+|#\S+|[^\w\s]", "", regex=True)
                  .str.split().str.join(" "))
    assert normalised.nunique() > 0.85 * len(demo)


def test_demo_is_learnable_but_not_trivially(demo):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    split = assign_split(demo, test=0.3, dev=0.0, seed=0, use_column=False)
    train, test = demo[split["split"].eq("pool").to_numpy()], demo[split["split"].eq("test").to_numpy()]
    vectoriser = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression(max_iter=2000, class_weight="balanced")
    model.fit(vectoriser.fit_transform(train["text"]), train["gold"])
    f1 = f1_score(test["gold"], model.predict(vectoriser.transform(test["text"])), average="macro")
    assert 0.6 < f1 < 0.97


def test_demo_says_it_is_synthetic():
    assert "SYNTHETIC" in describe_demo()
    assert "SYNTHETIC" in (demo_module.__doc__ or "")


# --- loaders and column mapping -------------------------------------------------------------

def _user_table() -> pd.DataFrame:
    return pd.DataFrame({
        "comment_id": ["007", "008", "009", "010", "011", "012"],
        "comment": ["eins", "zwei", "drei", "NA", "fünf", "sechs"],
        "label": ["hostile", "not_hostile", "hostile", "not_hostile", "not_hostile", "hostile"],
        "coder_1": [1, 0, 1, 0, 0, 1],
        "coder 2": ["hostile", None, "not_hostile", "not_hostile", "hostile", "hostile"],
        "theme": ["a", "b", "a", "b", "a", None],
        "part": ["train", "validation", "test", "train", "TRAIN", "train"],
        "platform": ["x", "y", "x", "y", "x", "y"],
    })


def _write(df: pd.DataFrame, path: Path) -> None:
    suffix = path.name.split(".", 1)[1]
    if suffix == "csv":
        df.to_csv(path, index=False)
    elif suffix == "tsv":
        df.to_csv(path, index=False, sep="\t")
    elif suffix in ("jsonl", "json"):
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    elif suffix == "array.json":
        df.to_json(path, orient="records", force_ascii=False)
    elif suffix == "parquet":
        df.to_parquet(path, index=False)


FILE_COLUMNS = {"id": "comment_id", "text": "comment", "gold": "label",
                "annotators": ["coder_1", "coder 2"], "topic": "theme", "split": "part",
                "meta": ["platform"]}


@pytest.mark.parametrize("name", ["data.csv", "data.tsv", "data.jsonl", "data.json",
                                  "data.array.json", "data.parquet"])
def test_file_dataset_is_mapped_onto_the_items_contract(tmp_path, name):
    path = tmp_path / name
    _write(_user_table(), path)
    items, split = prepare_dataset({"kind": "file", "path": str(path), "columns": FILE_COLUMNS},
                                   LABELS_CFG, SPLIT_CFG, cache_dir=tmp_path / "cache")
    assert list(items.columns) == ITEM_COLUMNS + ["ann_coder_1", "ann_coder_2", "meta_split",
                                                  "meta_platform"]
    assert items["id"].tolist() == ["007", "008", "009", "010", "011", "012"]
    assert items["text"].iloc[3] == "NA"  # a comment reading "NA" is text, not a missing value
    assert items["gold"].tolist() == [1, 0, 1, 0, 0, 1]
    assert items["ann_coder_1"].tolist() == [1, 0, 1, 0, 0, 1]
    assert items["ann_coder_2"].isna().tolist() == [False, True, False, False, False, False]
    assert items["ann_coder_2"].dropna().tolist() == [1, 0, 0, 1, 1]
    assert items["topic"].tolist() == ["a", "b", "a", "b", "a", ""]
    assert set(items["source"]) == {Path(name).stem}
    # the file's own split is used: train -> pool, validation -> dev
    assert split["split"].tolist() == ["pool", "dev", "test", "pool", "pool", "pool"]
    assert split["id"].tolist() == items["id"].tolist()


def test_unknown_suffix_and_missing_file_are_clear_errors(tmp_path):
    odd = tmp_path / "data.xlsx"
    odd.write_text("x")
    with pytest.raises(DatasetError, match=r"data\.xlsx.*suffix '\.xlsx'"):
        load_table(odd)
    with pytest.raises(DatasetError, match=r"nothere\.csv: file not found"):
        load_table(tmp_path / "nothere.csv")


def test_ids_default_to_row_numbers_and_labels_may_be_indices_or_mapped():
    df = pd.DataFrame({"t": ["a", "b", "c"], "y": ["yes", "no", "YES"], "votes": ["1/0/1", "0", ""]})
    items = map_columns(df, {"text": "t", "gold": "y", "annotators": "votes"}, source="s",
                        label_names=LABELS, label_map={True: "hostile", False: "not_hostile"},
                        annotator_sep="/")
    assert items["id"].tolist() == ["1", "2", "3"]
    assert items["gold"].tolist() == [1, 0, 1]
    assert [c for c in items.columns if c.startswith("ann_")] == ["ann_1", "ann_2", "ann_3"]
    assert items["ann_1"].tolist()[:2] == [1, 0] and pd.isna(items["ann_1"].iloc[2])
    assert items["ann_3"].iloc[0] == 1 and items["ann_3"].iloc[1:].isna().all()


def test_unknown_label_value_names_column_row_and_value(tmp_path):
    df = pd.DataFrame({"id": ["a", "b"], "t": ["x", "y"], "y": ["hostile", "maybe"]})
    with pytest.raises(DatasetError, match=r"f\.csv: 1 row\(s\) in column 'y'.*row 2 \(id 'b', "
                                           r"value 'maybe'\)"):
        map_columns(df, {"id": "id", "text": "t", "gold": "y"}, source="s", label_names=LABELS,
                    where="f.csv")


def test_slash_separated_labels_without_sep_hint_at_annotator_sep():
    df = pd.DataFrame({"t": ["x"], "y": [1], "votes": ["1/0"]})
    with pytest.raises(DatasetError, match="annotator_sep"):
        map_columns(df, {"text": "t", "gold": "y", "annotators": "votes"}, source="s",
                    label_names=LABELS)


def test_mapping_names_a_missing_column_and_unknown_split_values():
    df = pd.DataFrame({"t": ["x", "y"], "y": [1, 0], "part": ["train", "holdout"]})
    with pytest.raises(DatasetError, match=r"column 'label' \(dataset\.columns\.gold\) not found"):
        map_columns(df, {"text": "t", "gold": "label"}, source="s", label_names=LABELS)
    with pytest.raises(DatasetError, match=r"split column 'part'.*row 2 .*'holdout'"):
        map_columns(df, {"text": "t", "gold": "y", "split": "part"}, source="s", label_names=LABELS)
    mapped = map_columns(df, {"text": "t", "gold": "y", "split": "part"}, source="s",
                         label_names=LABELS, split_map={"train": "pool", "holdout": "test"})
    assert mapped["meta_split"].tolist() == ["pool", "test"]


# --- validation ------------------------------------------------------------------------------

def _items(**overrides) -> pd.DataFrame:
    df = pd.DataFrame({"id": ["a", "b", "c", "d"], "text": ["eins", "zwei", "drei", "vier"],
                       "gold": [0, 1, 0, 1], "topic": "", "source": "test",
                       "ann_x": pd.array([0, 1, None, 1], dtype="Int64")})
    for col, values in overrides.items():
        df[col] = values
    return df


def test_valid_items_pass():
    validate_items(_items(), label_names=LABELS, where="data.csv")


@pytest.mark.parametrize("change, message", [
    (lambda df: df.drop(columns=["gold"]), r"data\.csv: missing required column\(s\) \['gold'\]"),
    (lambda df: df.assign(text=["eins", "  ", "drei", None]),
     r"data\.csv: 2 rows have empty text \(column 'text'\), first at row 2 \(id 'b'\), row 4 \(id 'd'\)"),
    (lambda df: df.assign(id=["a", "b", "a", "c"]),
     r"data\.csv: duplicate id 'a' \(column 'id'\).*row 1 \(id 'a'\), row 3 \(id 'a'\)"),
    (lambda df: df.assign(gold=[0, 2, 1, 7]),
     r"data\.csv: 2 rows have a gold label outside the label set \['not_hostile', 'hostile'\] "
     r"\(column 'gold'.*row 2 \(id 'b', value 2\), row 4 \(id 'd', value 7\)"),
    (lambda df: df.assign(gold=[0, -1, 1, 1]),
     r"data\.csv: 1 row has no gold label \(column 'gold' is empty or -1\), first at row 2 \(id 'b'\)"),
    (lambda df: df.assign(ann_x=pd.array([0, 1, 5, None], dtype="Int64")),
     r"data\.csv: 1 row has an annotator label outside the label set .*column 'ann_x'.*"
     r"row 3 \(id 'c', value 5\)"),
])
def test_validation_failures_name_file_column_and_row(change, message):
    with pytest.raises(DatasetError, match=message):
        validate_items(change(_items()), label_names=LABELS, where="data.csv")


def test_validation_lists_only_the_first_few_offenders():
    df = pd.DataFrame({"id": [str(i) for i in range(10)], "text": [""] * 10, "gold": 0,
                       "topic": "", "source": "s"})
    with pytest.raises(DatasetError, match=r"10 rows have empty text.*row 3 \(id '2'\) and 7 more"):
        validate_items(df, label_names=LABELS, where="d.csv")


def test_prepare_rejects_bad_file_rows_by_file_name(tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame({"id": ["x", "y"], "text": ["ok", " "], "label": [0, 1]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"mine\.csv: 1 row has empty text.*row 2 \(id 'y'\)"):
        prepare_dataset({"kind": "file", "path": str(path),
                         "columns": {"id": "id", "text": "text", "gold": "label"}},
                        LABELS_CFG, SPLIT_CFG, cache_dir=tmp_path)
    with pytest.raises(DatasetError, match=r"unknown key\(s\) \['colums'\]"):
        prepare_dataset({"kind": "file", "path": str(path), "colums": {}}, LABELS_CFG, SPLIT_CFG,
                        cache_dir=tmp_path)


# --- splits ----------------------------------------------------------------------------------

def test_random_split_is_stratified_and_deterministic(demo):
    split = assign_split(demo, test=0.2, dev=0.1, seed=3, use_column=True)
    again = assign_split(demo, test=0.2, dev=0.1, seed=3, use_column=True)
    pd.testing.assert_frame_equal(split, again)
    assert not split["split"].equals(assign_split(demo, test=0.2, dev=0.1, seed=4,
                                                  use_column=True)["split"])
    assert split["id"].tolist() == demo["id"].tolist()
    share = split["split"].value_counts(normalize=True)
    # copies of one text move together (58 of the 3,000 demo items are duplicates)
    assert share["test"] == pytest.approx(0.2, abs=0.005)
    assert share["dev"] == pytest.approx(0.1, abs=0.005)
    texts = demo["text"].str.split().str.join(" ").str.casefold()
    assert texts.groupby(split["split"].to_numpy()).apply(set).pipe(
        lambda s: not (s["test"] & (s["pool"] | s["dev"])))
    assert texts_shared_with_test(demo, split) == 0
    rate = demo["gold"].groupby(split["split"].to_numpy()).mean()
    assert rate.max() - rate.min() < 0.005  # every split keeps the hostile rate


def test_dataset_split_column_is_kept_and_dev_is_carved_when_missing():
    items = _items(meta_split=["pool", "test", "dev", "pool"])
    assert assign_split(items, test=0.2, dev=0.1, seed=0)["split"].tolist() == \
        ["pool", "test", "dev", "pool"]
    ignored = assign_split(items, test=0.25, dev=0.25, seed=0, use_column=False)
    assert sorted(ignored["split"]) == ["dev", "pool", "pool", "test"]
    # stratified: the pool keeps one item of each gold class
    assert items["gold"][ignored["split"].eq("pool").to_numpy()].tolist() == [0, 1]
    big = pd.DataFrame({"id": [str(i) for i in range(100)], "gold": [i % 2 for i in range(100)],
                        "meta_split": ["test"] * 20 + ["pool"] * 80})
    carved = assign_split(big, test=0.2, dev=0.1, seed=0)["split"]
    assert (carved == "dev").sum() == 10 and (carved[:20] == "test").all()


def test_split_fractions_are_checked():
    with pytest.raises(DatasetError, match=r"split\.test \+ split\.dev must be below 1"):
        assign_split(_items(), test=0.6, dev=0.5, seed=0, use_column=False)
    with pytest.raises(DatasetError, match=r"split\.dev must be in \[0, 1\)"):
        assign_split(_items(), test=0.2, dev=-0.1, seed=0, use_column=False)


def test_prepare_demo_returns_validated_items_and_split(tmp_path):
    items, split = prepare_dataset({"name": "demo", "kind": "demo", "n_items": 200, "seed": 1},
                                   LABELS_CFG, SPLIT_CFG, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(items, generate_demo(200, 1))
    assert split["split"].value_counts().to_dict() == {"pool": 140, "test": 40, "dev": 20}
    with pytest.raises(DatasetError, match="binary"):
        prepare_dataset({"kind": "demo"}, {"names": ["a", "b", "c"]}, SPLIT_CFG,
                        cache_dir=tmp_path)


# --- GAHD and verified downloads -------------------------------------------------------------

@needs_gahd
def test_gahd_from_a_local_copy(tmp_path):
    items = load_gahd(GAHD_CSV, tmp_path)
    split = assign_split(items, test=0.2, dev=0.1, seed=0, use_column=True)
    assert len(items) == 10_996 and items["id"].is_unique
    assert split["split"].value_counts().to_dict() == {"pool": 7701, "dev": 1649, "test": 1646}
    assert set(items["topic"]) == {"dynabench", "translation", "news", "contrastive"}
    assert [c for c in items.columns if c.startswith("ann_")] == ["ann_1", "ann_2", "ann_3", "ann_4"]
    assert items["ann_1"].notna().all()
    assert (items[["ann_2", "ann_3", "ann_4"]].notna().any(axis=1)).sum() == 1653
    assert {"meta_round", "meta_model_prediction", "meta_expert_labels"} <= set(items.columns)
    assert set(items["gold"]) == {0, 1}
    assert list(tmp_path.iterdir()) == []  # a local path is never downloaded


@needs_gahd
def test_prepare_gahd_drops_its_one_empty_text(tmp_path, caplog):
    # GAHD's dev split holds one whitespace-only text (id f4c7eaf2): dropped with a warning
    items, split = prepare_dataset({"kind": "gahd", "path": str(GAHD_CSV)}, LABELS_CFG,
                                   SPLIT_CFG, cache_dir=tmp_path)
    assert len(items) == 10_995 and "f4c7eaf2" not in set(items["id"])
    assert "f4c7eaf2" in caplog.text
    assert split["split"].value_counts().to_dict() == {"pool": 7701, "dev": 1648, "test": 1646}
    assert texts_shared_with_test(items, split) == 0    # no test text is seen in pool or dev
    with pytest.raises(DatasetError, match=r"1 row has empty text.*id 'f4c7eaf2'"):
        prepare_dataset({"kind": "gahd", "path": str(GAHD_CSV), "drop_empty_text": False},
                        LABELS_CFG, SPLIT_CFG, cache_dir=tmp_path)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test log clean
        pass


@pytest.fixture()
def serve(tmp_path):
    """Serve a directory over HTTP on 127.0.0.1; yields a function dir -> base URL."""
    servers = []

    def start(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_fetch_verified_checks_the_sha256(tmp_path, serve):
    served = tmp_path / "served"
    served.mkdir()
    payload = "gahd_id,text\n1,hallo\n".encode() * 1000
    (served / "file.csv").write_bytes(payload)
    good = hashlib.sha256(payload).hexdigest()
    url = serve(served) + "/file.csv"
    cache = tmp_path / "cache"

    bad = "0" * 64
    with pytest.raises(DatasetError) as info:
        fetch_verified(url, cache / "file.csv", bad)
    assert url in str(info.value) and bad in str(info.value) and good in str(info.value)
    assert not (cache / "file.csv").exists() and list(cache.iterdir()) == []

    dest = fetch_verified(url, cache / "file.csv", good)
    assert dest.read_bytes() == payload and sha256_file(dest) == good
    assert list(cache.iterdir()) == [dest]

    # a verified cached copy is used without any request (the file is gone from the server)
    (served / "file.csv").unlink()
    assert fetch_verified(url, cache / "file.csv", good) == dest
    # a cached copy that no longer matches is fetched again, and fails loudly here
    dest.write_bytes(b"tampered")
    with pytest.raises(DatasetError, match="cannot download"):
        fetch_verified(url, cache / "file.csv", good)


def test_fetch_verified_reads_file_urls(tmp_path):
    src = tmp_path / "src.txt"
    src.write_bytes(b"abc")
    dest = fetch_verified(src.as_uri(), tmp_path / "out" / "copy.txt",
                          hashlib.sha256(b"abc").hexdigest())
    assert dest.read_bytes() == b"abc"


@needs_gahd
def test_gahd_download_is_verified_against_the_pinned_hash(tmp_path, serve):
    base = serve(GAHD_CSV.parent)
    items = load_gahd(None, tmp_path, url=f"{base}/{GAHD_CSV.name}")
    assert len(items) == 10_996
    assert sha256_file(tmp_path / "gahd_disaggregated.csv") == GAHD_SHA256
    np.testing.assert_array_equal(items["gold"].to_numpy(),
                                  load_gahd(GAHD_CSV, tmp_path / "x")["gold"].to_numpy())


# --- three classes, relations, one expert per column ------------------------------------------

def test_three_class_demo_keeps_the_binary_texts_and_is_deterministic():
    from llmal.tasks.classification.demo import THREE_CLASS_NAMES
    binary, three = generate_demo(400, seed=2), generate_demo(400, seed=2, classes=3)
    assert three["text"].tolist() == binary["text"].tolist()
    assert (three["gold"] == 2).tolist() == (binary["gold"] == 1).tolist()
    assert set(three["gold"]) == {0, 1, 2} and len(THREE_CLASS_NAMES) == 3
    assert set(three["ann_a1"].dropna()) <= {0, 1, 2}
    pd.testing.assert_frame_equal(three, generate_demo(400, seed=2, classes=3))


def test_relation_demo_marks_both_entities_and_is_deterministic():
    from llmal.tasks.classification.relations import RELATION_NAMES, generate_relations
    df = generate_relations(300, seed=1)
    assert df["text"].str.contains(r"\[E1\].+\[/E1\]").all() and df["text"].str.contains(r"\[E2\].+\[/E2\]").all()
    assert set(df["gold"]) == set(range(len(RELATION_NAMES)))
    assert set(df["topic"]) == {"PER-ORG", "ORG-LOC", "ORG-PER"}
    pd.testing.assert_frame_equal(df, generate_relations(300, seed=1))
    items, split = prepare_dataset({"kind": "demo", "task": "relation", "n_items": 300},
                                   {"names": list(RELATION_NAMES)}, SPLIT_CFG, cache_dir=".")
    assert len(items) == 300 and set(split["split"]) == {"pool", "dev", "test"}


def test_human_annotator_tied_to_one_column_is_that_expert():
    from llmal.tasks.classification.human import annotate_human
    items = pd.DataFrame({"id": ["a", "b", "c"], "text": "t", "gold": [0, 1, 1], "topic": "",
                          "source": "s", "ann_expert1": pd.array([0, None, 1], dtype="Int64"),
                          "ann_expert2": pd.array([1, 1, 1], dtype="Int64")})
    one = annotate_human(items, {"kind": "human", "column": "expert1"})
    assert one["status"].tolist() == ["ok", "failed", "ok"]
    assert one["label"].tolist()[0] == 0 and one["label"].tolist()[2] == 1
    assert annotate_human(items, {"kind": "human", "column": "expert2"})["label"].tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="no column 'ann_expert3'"):
        annotate_human(items, {"kind": "human", "column": "expert3"})


# --- data that real users have (issue 17, items 11-13 and 16) --------------------------------

def _prepare_file(path: Path, tmp_path: Path, columns: dict, **keys) -> pd.DataFrame:
    items, _ = prepare_dataset({"kind": "file", "path": str(path), "columns": columns, **keys},
                               LABELS_CFG, SPLIT_CFG, cache_dir=tmp_path / "cache")
    return items


def test_column_oriented_json_as_pandas_writes_it_by_default_is_read(tmp_path):
    table = _user_table()
    path = tmp_path / "data.json"
    table.to_json(path, force_ascii=False)              # orient "columns": {"comment": {"0": ...}}
    assert path.read_text().startswith('{"comment_id":{"0":"007"')
    items = _prepare_file(path, tmp_path, FILE_COLUMNS)
    assert items["id"].tolist() == table["comment_id"].tolist()
    assert items["text"].tolist() == table["comment"].tolist()
    assert items["gold"].tolist() == [1, 0, 1, 0, 0, 1]
    assert items["ann_coder_2"].isna().tolist() == [False, True, False, False, False, False]
    split_path = tmp_path / "split.json"
    table.to_json(split_path, orient="split", index=False, force_ascii=False)
    assert _prepare_file(split_path, tmp_path, FILE_COLUMNS)["id"].tolist() == items["id"].tolist()


@pytest.mark.parametrize("orient", ["index", "values", "table"])
def test_other_json_orientations_are_refused_in_one_short_line_naming_them(tmp_path, orient):
    big = pd.concat([_user_table()] * 300, ignore_index=True)   # ~60 KB: none of it is echoed
    big["comment_id"] = [f"{i:05d}" for i in range(len(big))]
    path = tmp_path / "data.json"
    big.to_json(path, orient=orient, force_ascii=False)
    with pytest.raises(DatasetError) as err:
        _prepare_file(path, tmp_path, FILE_COLUMNS)
    message = str(err.value)
    assert f"orient '{orient}'" in message and "orient='records'" in message
    assert "\n" not in message and len(message) < 400
    assert "annotator_sep" not in message


def test_a_json_lines_file_holding_one_object_of_columns_names_the_orientation(tmp_path):
    path = tmp_path / "data.jsonl"
    _user_table().to_json(path, force_ascii=False)
    with pytest.raises(DatasetError, match=r"data\.jsonl: line 1: one object holding a whole table "
                                           r"\(pandas orient 'columns'\).*format: json") as err:
        _prepare_file(path, tmp_path, FILE_COLUMNS)
    assert len(str(err.value)) < 400


def test_a_json_file_that_is_no_table_says_which_json_is_read(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('"just a string"\n')
    with pytest.raises(DatasetError, match=r"data\.json: line 1: .*an array of records, JSON lines"):
        _prepare_file(path, tmp_path, FILE_COLUMNS)


def test_an_offending_value_is_shown_cut_short():
    values = pd.Series(["hostile", "x" * 20000])
    with pytest.raises(DatasetError) as err:
        map_columns(pd.DataFrame({"t": ["a", "b"], "g": values}), {"text": "t", "gold": "g"},
                    source="s", label_names=LABELS, where="f.csv")
    assert "(20,002 characters)" in str(err.value) and len(str(err.value)) < 600


def test_an_empty_header_name_suggests_a_way_that_works_and_it_does(tmp_path):
    path = tmp_path / "export.csv"
    frame = pd.DataFrame({"text": ["eins", "zwei", "drei", "vier"], "label": [1, 0, 1, 0]})
    frame.to_csv(path)                                  # pandas writes the index under ""
    assert path.read_text().startswith(",text,label\n")
    with pytest.raises(DatasetError) as err:
        _prepare_file(path, tmp_path, {"text": "text", "gold": "label"})
    message = str(err.value)
    assert "column 1 has no name" in message
    assert "dataset.header: false and dataset.skip_rows: 1" in message
    assert "'text' = 2, 'label' = 3" in message
    # the advice, followed word for word, reads every record and not the header
    items = _prepare_file(path, tmp_path, {"id": 1, "text": 2, "gold": 3}, header=False, skip_rows=1)
    assert items["text"].tolist() == ["eins", "zwei", "drei", "vier"]
    assert items["id"].tolist() == ["0", "1", "2", "3"]
    assert items["gold"].tolist() == [1, 0, 1, 0]
    # a title line skipped above such a header: the advice counts it
    titled = tmp_path / "titled.csv"
    titled.write_text("Export of 2026-01-01\n" + path.read_text())
    with pytest.raises(DatasetError, match=r"line 2 \(header\).*dataset\.skip_rows: 2"):
        load_table(titled, skip_rows=1)
    assert load_table(titled, header=False, skip_rows=2)["2"].tolist() == items["text"].tolist()
    # header: false alone makes the header line a record: its "label" is no label, and says so
    with pytest.raises(DatasetError, match=r"column '3'.*row 1.*'label'"):
        _prepare_file(path, tmp_path, {"text": 2, "gold": 3}, header=False)


def test_skip_rows_keeps_line_numbers_and_the_record_count_check(tmp_path):
    path = tmp_path / "titled.tsv"
    path.write_text("Exported 2026-01-01\ntext\tlabel\neins\t1\nzwei\t0\tzu viel\n")
    with pytest.raises(DatasetError, match=r"titled\.tsv: line 4: 3 field\(s\), but the header has 2"):
        _prepare_file(path, tmp_path, {"text": "text", "gold": "label"}, skip_rows=1)
    csv_path = tmp_path / "titled.csv"
    csv_path.write_text('Exported\n"text",label\n"a, b",1\n"c\nd",0\n')
    table = load_table(csv_path, skip_rows=1)
    assert table["text"].tolist() == ["a, b", "c\nd"] and table.attrs["lines"] == [3, 4]
    (tmp_path / "x.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(DatasetError, match=r"dataset\.skip_rows applies to csv and tsv"):
        load_table(tmp_path / "x.jsonl", skip_rows=1)


def test_a_cell_over_csv_default_field_size_limit_is_read(tmp_path):
    import csv
    limit = csv.field_size_limit()
    long_text = ("ein sehr langer Kommentar, mit Kommas und \"Zitaten\"\n" * 4000)[:200_000]
    frame = pd.DataFrame({"text": ["kurz", long_text, "auch kurz"], "label": [0, 1, 0]})
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    assert len(long_text) > 131_072
    items = _prepare_file(path, tmp_path, {"text": "text", "gold": "label"})
    assert items["text"].tolist() == frame["text"].tolist()
    assert csv.field_size_limit() == limit               # the process-wide limit is put back
    # tsv with quoting standard: the long cell is read, and a record spanning lines still fails
    tsv = tmp_path / "long.tsv"
    tsv.write_text('text\tlabel\n"' + "x" * 150_000 + '"\t1\nkurz\t0\n')
    assert len(load_table(tsv, quoting="standard")) == 2
    tsv.write_text('text\tlabel\n"' + "x" * 150_000 + '\nkurz\t0\n"\t1\n')
    with pytest.raises(DatasetError, match=r"long\.tsv: line 2: a quoted cell starting on this "
                                           r"line runs to line 4"):
        load_table(tsv, quoting="standard")


def test_default_ids_are_1_based_and_split_dev_0_leaves_every_non_test_item_in_the_pool(tmp_path):
    """Issue 17, item 16: what the docs say about ids, the `full` reference and .json files."""
    path = tmp_path / "plain.tsv"
    path.write_text("text\tlabel\n" + "".join(f"Text {i}\t{i % 2}\n" for i in range(40)))
    items, split = prepare_dataset({"kind": "file", "path": str(path),
                                    "columns": {"text": "text", "gold": "label"}},
                                   LABELS_CFG, {**SPLIT_CFG, "dev": 0}, cache_dir=tmp_path)
    assert items.loc[0, "id"] == "1" and items.loc[0, "text"] == "Text 0"
    assert set(split["split"]) == {"pool", "test"}      # `full` then trains on all but test
    docs = "\n".join(p.read_text() for p in (Path(__file__).resolve().parents[1] / "docs").glob("*.md"))
    assert "**1-based**" in docs
    assert "`sampler: full` trains on the **pool only**" in docs and "`split.dev: 0`" in docs
    assert "A `.json` file is an array of records" in docs and "JSON lines" in docs
