import numpy as np
import pandas as pd
import pytest

from llmal.annotate.run import items_to_annotate
from llmal.contracts import ContractError, check_annotations, make_annotations
from llmal.tasks.classification.human import annotate_human, human_labels
from llmal.tasks.classification.simulated import annotate_simulated

NAMES = ["neg", "pos"]


def items(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 2, n)
    topics = rng.choice(["a", "b", "c"], n)
    anns = {f"ann_{k}": pd.array(np.where(rng.random(n) < 0.8, gold, 1 - gold), dtype="Int64") for k in range(3)}
    anns["ann_2"][rng.random(n) < 0.5] = pd.NA  # the third annotator saw only half the items
    return pd.DataFrame({"id": [f"i{k}" for k in range(n)], "text": "x", "gold": gold,
                         "topic": topics, "source": "t", **anns})


def test_gold_mode_copies_gold():
    df = items()
    assert (human_labels(df, "gold", 0) == df["gold"]).all()


def test_majority_of_annotator_columns():
    df = items(5)
    df[["ann_0", "ann_1", "ann_2"]] = pd.DataFrame({"ann_0": [1, 0, 1, 0, pd.NA], "ann_1": [1, 0, 0, 1, pd.NA],
                                                     "ann_2": [0, pd.NA, pd.NA, 1, pd.NA]}, dtype="Int64")
    df["gold"] = [0, 1, 0, 0, 1]
    labels = human_labels(df, "majority", 0)
    assert labels[0] == 1 and labels[1] == 0 and labels[3] == 1
    assert labels[4] == 1            # nobody labelled it: falls back to gold
    assert labels[2] in (0, 1)       # a tie: broken by the seed


def test_sampled_annotator_is_one_of_the_given_labels_and_seeded():
    df = items()
    a, b, c = human_labels(df, "sample", 0), human_labels(df, "sample", 0), human_labels(df, "sample", 1)
    assert (a == b).all() and (a != c).any()
    given = df[["ann_0", "ann_1", "ann_2"]].to_numpy(dtype="float64", na_value=np.nan)
    assert all(a[i] in given[i] for i in range(len(df)))
    # a sampled annotator disagrees with gold about as often as one annotator does (20%)
    assert 0.15 < np.mean(a != df["gold"]) < 0.25


def test_human_table_follows_contract_and_costs():
    df = items(50)
    table = annotate_human(df, {"mode": "majority", "cost_per_label": 0.25})
    check_annotations(table)
    consulted = df[[c for c in df.columns if c.startswith("ann_")]].notna().sum(axis=1).clip(lower=1)
    assert consulted.max() > 1                   # a majority pays every annotator it consulted
    assert (table["status"] == "ok").all()
    assert table["cost_usd"].tolist() == pytest.approx((0.25 * consulted).tolist())
    assert set(table["model"]) == {"human:majority"}


def test_simulated_noise_matches_configured_rates():
    df = items(20000)
    spec = {"error": {"neg": 0.1, "pos": 0.3}, "topic_error": {"neg": {"a": 0.5}}, "seed": 5,
            "invalid_rate": 0.05}
    t = annotate_simulated(df, spec, NAMES).set_index("id")
    ok = t["status"] == "ok"
    assert abs((~ok).mean() - 0.05) < 0.01
    assert t.loc[~ok, "label"].isna().all() and (t.loc[~ok, "raw"] != "").all()
    d = df.set_index("id")[ok.values]
    lab = t.loc[ok, "label"].astype(int)
    flipped = lab != d["gold"]
    assert abs(flipped[(d["gold"] == 1)].mean() - 0.3) < 0.02
    assert abs(flipped[(d["gold"] == 0) & (d["topic"] != "a")].mean() - 0.1) < 0.02
    assert abs(flipped[(d["gold"] == 0) & (d["topic"] == "a")].mean() - 0.5) < 0.03


def test_simulated_label_of_an_item_does_not_depend_on_its_neighbours():
    df = items(300)
    spec = {"error": {"neg": 0.3, "pos": 0.3}, "seed": 1}
    full = annotate_simulated(df, spec, NAMES).set_index("id")["label"]
    part = annotate_simulated(df.iloc[::-3], spec, NAMES).set_index("id")["label"]
    assert (full.loc[part.index] == part).all()


def test_items_to_annotate_excludes_test_and_samples_with_limit():
    df = items(100)
    split = pd.DataFrame({"id": df["id"], "split": ["test"] * 20 + ["dev"] * 10 + ["pool"] * 70})
    todo = items_to_annotate(df, split, {})
    assert len(todo) == 80 and not set(todo["id"]) & set(df["id"][:20])
    a = items_to_annotate(df, split, {"limit": 15, "seed": 2})
    assert len(a) == 15 and a["id"].equals(items_to_annotate(df, split, {"limit": 15, "seed": 2})["id"])


def test_contract_rejects_guessed_labels():
    with pytest.raises(ContractError, match="status is not ok"):
        make_annotations([{"id": "a", "label": 1, "status": "invalid"}])
    with pytest.raises(ContractError, match="status ok but no label"):
        make_annotations([{"id": "a", "label": None, "status": "ok"}])
    with pytest.raises(ContractError, match="duplicate id 'a'"):
        make_annotations([{"id": "a", "label": 1}, {"id": "a", "label": 0}])
