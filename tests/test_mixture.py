"""The mixture annotator (S1): majority vote, Dawid-Skene, mean; costs, answers, config checks, DAG."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import snakemake, tiny_config, write_config

from llmal.annotate.run import annotate
from llmal.config import ConfigError, validate_config
from llmal.contracts import check_annotations, make_annotations
from llmal.results.agreement import replicate_groups
from llmal.tasks.classification.mixture import (
    NO_LABEL,
    annotate_mixture,
    dawid_skene,
    majority_posterior,
    mean_posterior,
    member_votes,
    pick_labels,
)
from llmal.tasks.registry import task_named

NAMES = ["neg", "pos"]
THREE = ["a", "b", "c"]


def table(labels, *, cost=0.0, status=None, ids=None, model="m", answers=None):
    """An annotation table: labels None -> status invalid unless `status` says otherwise."""
    ids = ids or [f"i{k}" for k in range(len(labels))]
    status = status or ["ok" if lab is not None else "invalid" for lab in labels]
    return make_annotations({"id": ids, "label": pd.array(labels, dtype="Int64"), "status": status,
                             "cost_usd": cost, "model": model, "input_tokens": 10,
                             **({"answers": answers} if answers is not None else {})})


def answers_of(df):
    return [json.loads(a) for a in df["answers"]]


# --------------------------------------------------------------------------------------------
# majority vote


def test_majority_vote_labels_ties_and_missing_votes():
    members = {
        "x": table([1, 0, 1, None, 0], cost=0.10),
        "y": table([1, 0, 0, None, None], cost=0.01, status=["ok", "ok", "ok", "failed", "invalid"]),
        "z": table([0, 0, None, None, None], cost=0.001, ids=["i0", "i1", "i2", "i3", "i5"]),
    }
    out = annotate_mixture(members, {"method": "majority"}, NAMES)
    check_annotations(out)
    assert out["id"].tolist() == ["i0", "i1", "i2", "i3", "i4", "i5"]   # union, first-seen order
    by_id = out.set_index("id")
    assert by_id.loc["i0", "label"] == 1 and by_id.loc["i1", "label"] == 0
    assert by_id.loc["i2", "label"] in (0, 1) and by_id.loc["i2", "status"] == "ok"   # 1-1 tie
    for nobody in ("i3", "i5"):                                                       # no votes
        assert by_id.loc[nobody, "status"] == "failed" and pd.isna(by_id.loc[nobody, "label"])
    ans = dict(zip(out["id"], answers_of(out)))
    assert ans["i0"]["members"] == {"x": "pos", "y": "pos", "z": "neg"}
    assert ans["i0"]["n_votes"] == 3 and ans["i0"]["n_agree"] == 2
    assert ans["i0"]["posterior"] == {"neg": pytest.approx(1 / 3, abs=1e-6), "pos": pytest.approx(2 / 3, abs=1e-6)}
    assert ans["i1"]["rejected_by_all"] == ["pos"] and ans["i0"]["rejected_by_all"] == []
    assert ans["i2"]["tie"] is True and ans["i0"]["tie"] is False
    assert ans["i3"]["member_status"] == {"x": "invalid", "y": "failed", "z": "invalid"}
    assert ans["i4"]["member_status"]["z"] == "missing" and ans["i5"]["member_status"]["x"] == "missing"
    assert ans["i5"]["posterior"] is None and ans["i5"]["rejected_by_all"] == []
    assert set(out["model"]) == {"mixture:majority(x,y,z)"} and set(out["raw"]) == {""}


def test_costs_and_tokens_are_the_sum_over_members_who_were_asked():
    members = {"x": table([1, None, 0], cost=0.10), "y": table([1, 1, 0], cost=0.02),
               "z": table([0], cost=0.003, ids=["i2"])}
    out = annotate_mixture(members, {"method": "dawid_skene"}, NAMES).set_index("id")
    # invalid answers were paid for too; an item a member never saw costs it nothing
    assert out["cost_usd"].to_dict() == pytest.approx({"i0": 0.12, "i1": 0.12, "i2": 0.123})
    assert out["input_tokens"].to_dict() == {"i0": 20, "i1": 20, "i2": 30}


def test_ties_are_broken_per_item_stably_or_made_invalid():
    n = 400
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, n)
    members = {"x": table(a.tolist()), "y": table((1 - a).tolist())}          # every item a tie
    out = annotate_mixture(members, {"method": "majority", "seed": 3}, NAMES)
    assert (out["status"] == "ok").all()
    share = out["label"].astype(int).mean()
    assert 0.4 < share < 0.6                                    # not always the first label
    again = annotate_mixture(members, {"method": "majority", "seed": 3}, NAMES)
    assert again["label"].equals(out["label"])
    subset = {k: v.iloc[100:250] for k, v in members.items()}  # a subset keeps each item's label
    sub = annotate_mixture(subset, {"method": "majority", "seed": 3}, NAMES)
    assert sub["label"].tolist() == out["label"].iloc[100:250].tolist()
    other = annotate_mixture(members, {"method": "majority", "seed": 4}, NAMES)
    assert not other["label"].equals(out["label"])
    strict = annotate_mixture(members, {"method": "majority", "on_tie": "invalid"}, NAMES)
    assert (strict["status"] == "invalid").all() and strict["label"].isna().all()
    assert all(a["posterior"] == {"neg": 0.5, "pos": 0.5} for a in answers_of(strict))


def test_min_votes_marks_thin_items_failed():
    members = {"x": table([1, 0, None]), "y": table([1, None, None]), "z": table([1, None, 0])}
    out = annotate_mixture(members, {"method": "majority", "min_votes": 2}, NAMES)
    assert out["status"].tolist() == ["ok", "failed", "failed"]
    assert out["label"].tolist()[0] == 1 and out["label"].isna().tolist() == [False, True, True]


def test_rejected_by_all_lists_labels_no_member_chose():
    members = {"x": table([0, 0, 2]), "y": table([0, 1, 2]), "z": table([0, 1, None])}
    out = annotate_mixture(members, {"method": "majority"}, THREE)
    assert [a["rejected_by_all"] for a in answers_of(out)] == [["b", "c"], ["c"], ["a", "b"]]
    assert [a["n_agree"] for a in answers_of(out)] == [3, 2, 2]


# --------------------------------------------------------------------------------------------
# Dawid-Skene and mean


def planted(n=3000, seed=0, priors=(0.5, 0.3, 0.2), accs=(0.9, 0.85, 0.40, 0.38, 0.36), missing=0.1):
    """True classes and the labels of annotators with known symmetric confusion matrices
    (accuracy accs[j], errors spread evenly over the other classes); NO_LABEL where missing."""
    rng = np.random.default_rng(seed)
    k = len(priors)
    true = rng.choice(k, n, p=list(priors))

    def confusion(acc):
        c = np.full((k, k), (1 - acc) / (k - 1))
        np.fill_diagonal(c, acc)
        return c

    cum = [np.cumsum(confusion(a), axis=1) for a in accs]
    labels = np.stack([(rng.random(n)[:, None] > c[true]).sum(axis=1) for c in cum], axis=1)
    labels[rng.random(labels.shape) < missing] = NO_LABEL
    return true, labels, np.array(accs)


def oracle_labels(labels, priors, accs):
    """Bayes-optimal labels under the true parameters: the ceiling of any aggregation."""
    k = len(priors)
    log_post = np.tile(np.log(priors), (labels.shape[0], 1))
    for j, acc in enumerate(accs):
        c = np.full((k, k), (1 - acc) / (k - 1))
        np.fill_diagonal(c, acc)
        seen = labels[:, j] != NO_LABEL
        log_post[seen] += np.log(c[:, labels[seen, j]]).T
    return log_post.argmax(axis=1)


@pytest.mark.parametrize("priors, accs, slack", [
    ((0.6, 0.4), (0.9, 0.85, 0.55, 0.5, 0.45), 0.02),              # 2 good, 3 near-random
    ((0.5, 0.3, 0.2), (0.9, 0.85, 0.40, 0.38, 0.36), 0.06),        # 3 classes: 1/3 is random
])
def test_dawid_skene_recovers_the_good_annotators_and_beats_majority(priors, accs, slack):
    true, labels, accs = planted(n=3000, seed=0, priors=priors, accs=accs)
    k = len(priors)
    ids = [f"i{i}" for i in range(len(true))]
    majority, _ = pick_labels(majority_posterior(labels, k), ids, 0)
    ds = dawid_skene(labels, k)
    by_ds, _ = pick_labels(ds.posterior, ids, 0)
    acc_majority, acc_ds = np.mean(majority == true), np.mean(by_ds == true)
    acc_oracle = np.mean(oracle_labels(labels, priors, accs) == true)
    assert acc_ds > acc_majority + 0.10, (acc_ds, acc_majority)
    assert acc_ds >= acc_oracle - slack, (acc_ds, acc_oracle)
    estimated = np.einsum("k,jkk->j", ds.priors, ds.confusion)   # P(member right)
    assert np.abs(estimated - accs).max() < 0.07, estimated
    assert estimated[:2].min() > 0.75 > 0.6 > estimated[2:].max()
    assert np.abs(ds.priors - priors).max() < 0.06
    assert np.allclose(ds.posterior.sum(axis=1), 1.0)


def test_dawid_skene_leaves_items_without_votes_unlabelled_and_stops_on_tolerance():
    labels = np.array([[0, 0, 1], [1, 1, NO_LABEL], [NO_LABEL, NO_LABEL, NO_LABEL], [1, 1, 1]])
    ds = dawid_skene(labels, 2, tol=1e-3)
    assert np.isnan(ds.posterior[2]).all() and not np.isnan(ds.posterior[[0, 1, 3]]).any()
    assert ds.converged and ds.n_iter < 100
    assert ds.posterior[3, 1] > 0.9 and ds.posterior[0, 0] > 0.5
    one_pass = dawid_skene(labels, 2, max_iter=1)
    assert one_pass.n_iter == 1


def test_mixture_table_by_dawid_skene_matches_the_em():
    true, labels, _ = planted(n=600, seed=1, priors=(0.6, 0.4), accs=(0.9, 0.8, 0.6, 0.55, 0.5), missing=0.0)
    members = {f"m{j}": table([int(v) for v in labels[:, j]]) for j in range(labels.shape[1])}
    out = annotate_mixture(members, {"method": "dawid_skene", "max_iter": 50, "tol": 1e-8}, NAMES,
                           log=lambda s: None)
    ds = dawid_skene(labels, 2, max_iter=50, tol=1e-8)
    expect, _ = pick_labels(ds.posterior, out["id"].tolist(), 0)
    assert out["label"].astype(int).tolist() == expect.tolist()
    post = np.array([[a["posterior"]["neg"], a["posterior"]["pos"]] for a in answers_of(out)])
    assert np.allclose(post, ds.posterior, atol=1e-6)
    assert set(out["model"]) == {"mixture:dawid_skene(m0,m1,m2,m3,m4)"}


def test_mean_of_hard_labels_is_the_vote_share_and_uses_a_mixture_members_posterior():
    members = {"x": table([1, 0, 1]), "y": table([1, 1, None]), "z": table([0, 1, None])}
    votes = member_votes(members, NAMES)
    assert np.allclose(mean_posterior(votes.soft), majority_posterior(votes.labels, 2), equal_nan=True)
    inner = annotate_mixture({"x": members["x"], "y": members["y"]}, {"method": "majority"}, NAMES)
    outer = annotate_mixture({"inner": inner, "z": members["z"]}, {"method": "mean"}, NAMES)
    post = [a["posterior"]["pos"] for a in answers_of(outer)]
    # i0: inner (1, 1) -> 1.0, z 0 -> 0.5; i1: inner (0, 1) -> 0.5, z 1 -> 0.75; i2: inner x=1 alone
    assert post == pytest.approx([0.5, 0.75, 1.0])


def test_a_member_label_outside_the_label_set_is_named():
    with pytest.raises(ValueError, match="member 'x'.*i1"):
        annotate_mixture({"x": table([0, 5]), "y": table([0, 1])}, {"method": "majority"}, NAMES)


def test_annotate_dispatches_a_mixture_over_pool_and_dev_only():
    items = pd.DataFrame({"id": ["i0", "i1", "i2"], "text": "t", "gold": [1, 0, 1], "topic": "", "source": "s"})
    split = pd.DataFrame({"id": ["i0", "i1", "i2"], "split": ["pool", "dev", "test"]})
    spec = {"kind": "mixture", "members": ["x", "y"], "method": "majority"}
    members = {"x": table([1, 0, 1], cost=0.5), "y": table([1, 0, 0], cost=0.25)}
    out = annotate(items, split, spec, {"labels": {"names": NAMES, "positive": "pos"}}, name="mix", task=task_named(None),
                   member_tables=members)
    assert out["id"].tolist() == ["i0", "i1"] and out["cost_usd"].tolist() == [0.75, 0.75]
    with pytest.raises(ValueError, match="mix.*'y'"):
        annotate(items, split, spec, {"labels": {"names": NAMES, "positive": "pos"}}, name="mix", task=task_named(None),
                 member_tables={"x": members["x"]})


# --------------------------------------------------------------------------------------------
# config


def base_config():
    config = tiny_config()
    config["annotators"].update({
        "sim_b": {"kind": "simulated", "error": {"hostile": 0.2}, "seed": 4},
        "mix": {"kind": "mixture", "members": ["crowd", "noisy", "sim_b"], "method": "dawid_skene"},
    })
    return config


def test_mixture_config_is_valid_and_filled_with_defaults():
    config = validate_config(base_config())
    mix = config["annotators"]["mix"]
    assert mix["min_votes"] == 1 and mix["on_tie"] == "hash" and mix["cost"] == "sum" and mix["max_iter"] == 100


@pytest.mark.parametrize("mutate, words", [
    (lambda a: a["mix"]["members"].append("mix"), "annotators.mix.members: a mixture cannot contain itself"),
    (lambda a: a["mix"]["members"].append("ghost"), "annotators.mix.members: 'ghost' is not an annotator"),
    (lambda a: a.update(mix2={"kind": "mixture", "members": ["mix", "crowd"]}) or a["mix"]["members"].append("mix2"),
     "annotators.mix.members: mixtures form a cycle: mix -> mix2 -> mix"),
    (lambda a: a["mix"].update(min_votes=4), "annotators.mix.min_votes: 4 is more than the 3 members"),
    (lambda a: a["mix"].update(method="median"), "annotators.mix.method"),
    (lambda a: a["mix"].update(weights=[1, 2]), "weights"),
    (lambda a: a["mix"].update(members=["crowd"]), "annotators.mix.members"),
    (lambda a: a["sim_b"].update(replicate_of="sim_b"),
     "annotators.sim_b.replicate_of: an annotator cannot be a replicate of itself"),
    (lambda a: a["sim_b"].update(replicate_of="nope"), "annotators.sim_b.replicate_of: 'nope' is not an annotator"),
    (lambda a: a["sim_b"].update(replicate_of="noisy") or a["noisy"].update(replicate_of="sim_b"),
     "replicate_of forms a cycle"),
])
def test_mixture_and_replicate_errors_name_the_key(mutate, words):
    config = base_config()
    mutate(config["annotators"])
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert words in str(err.value)


def test_replicate_groups_follow_chains_to_their_root():
    annotators = {"a": {"kind": "simulated"}, "b": {"kind": "simulated", "replicate_of": "a"},
                  "c": {"kind": "simulated", "replicate_of": "b"}, "d": {"kind": "human"}}
    assert replicate_groups(annotators) == {"a": ["a", "b", "c"]}


# --------------------------------------------------------------------------------------------
# the DAG


@pytest.fixture(scope="module")
def mixture_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("mixture_dag")
    config = tiny_config(seeds=[0])
    config["annotators"] = {
        "crowd": {"kind": "human", "mode": "sample", "cost_per_label": 0.1},
        "sim_a": {"kind": "simulated", "error": {"hostile": 0.1, "not_hostile": 0.05},
                  "cost_per_label": 0.001, "seed": 1},
        "sim_a2": {"kind": "simulated", "error": {"hostile": 0.1, "not_hostile": 0.05},
                   "cost_per_label": 0.001, "seed": 2, "replicate_of": "sim_a"},
        "sim_b": {"kind": "simulated", "error": {"hostile": 0.4, "not_hostile": 0.3},
                  "cost_per_label": 0.002, "seed": 3, "invalid_rate": 0.1},
        "sim_c": {"kind": "simulated", "error": {"hostile": 0.45, "not_hostile": 0.35},
                  "cost_per_label": 0.004, "seed": 5},
        "mix": {"kind": "mixture", "members": ["sim_a", "sim_b", "sim_c"], "method": "dawid_skene"},
    }
    config["conditions"] = {"mix_full": {"annotator": "mix", "sampler": "full"}}
    # sim_a2, a replicate no condition uses, is annotated because the agreement table lists it;
    # mix_full is lazy (its aggregation is fitted on what it acquires), so the whole-pool mixture
    # table exists only because the agreement table lists mix too
    config["agreement"] = {"annotators": ["sim_a2", "mix"]}
    write_config(work, config)
    snakemake(work)
    return work / "results" / "tiny"


def test_dag_builds_the_mixture_from_its_members(mixture_run):
    res = mixture_run
    mix = pd.read_parquet(res / "annotations" / "mix.parquet")
    check_annotations(mix)
    members = {m: pd.read_parquet(res / "annotations" / f"{m}.parquet").set_index("id")
               for m in ("sim_a", "sim_b", "sim_c")}
    split = pd.read_parquet(res / "data" / "split.parquet")
    assert set(mix["id"]) == set(split.loc[split["split"].isin(["pool", "dev"]), "id"])
    assert mix["cost_usd"].to_numpy() == pytest.approx(np.full(len(mix), 0.007))
    assert set(mix["model"]) == {"mixture:dawid_skene(sim_a,sim_b,sim_c)"}
    first = json.loads(mix["answers"].iloc[0])
    item = mix["id"].iloc[0]
    for m, t in members.items():
        expect = None if t.loc[item, "status"] != "ok" else ["not_hostile", "hostile"][int(t.loc[item, "label"])]
        assert first["members"][m] == expect
    items = pd.read_parquet(res / "data" / "items.parquet").set_index("id")
    gold = items.loc[mix["id"], "gold"].to_numpy()
    acc_mix = np.mean(mix["label"].astype(int).to_numpy() == gold)
    b = members["sim_b"].loc[mix["id"]]
    acc_b = np.mean(b["label"].to_numpy(dtype=float, na_value=np.nan)[b["status"] == "ok"] == gold[b["status"] == "ok"])
    assert acc_mix > acc_b + 0.2            # DS leans on the accurate member
    runs = pd.read_csv(res / "runs" / "mix_full" / "tfidf" / "seed0" / "rounds.csv")
    # a lazy mixture: every member asked about every pool item (full) and dev item, once
    assert runs["cost_al"].iloc[-1] == pytest.approx(0.007 * (split["split"] == "pool").sum())
    assert runs["cost_dev"].iloc[-1] == pytest.approx(0.007 * (split["split"] == "dev").sum())


def test_dag_writes_the_agreement_table_for_every_annotator(mixture_run):
    res = mixture_run
    table = pd.read_csv(res / "tables" / "annotators.csv").set_index("annotator")
    assert list(table.index) == ["crowd", "sim_a", "sim_a2", "sim_b", "sim_c", "mix"]
    assert table.loc["crowd", "cost_ratio"] == pytest.approx(1.0)
    assert table.loc["sim_b", "malformed_rate"] == pytest.approx(0.1, abs=0.04)
    assert table.loc["sim_a", "kappa"] > table.loc["sim_c", "kappa"]
    assert table.loc["mix", "kind"] == "mixture"
    assert table.loc["sim_a", "replicate_group"] == "sim_a" == table.loc["sim_a2", "replicate_group"]
    assert 0.7 < table.loc["sim_a", "self_consistency"] < 1.0
    pool = table.loc["crowd", "pool_cost_usd"] / 0.1
    assert table.loc["sim_a", "saving_usd"] == pytest.approx((0.1 - 0.001) * pool)
    kappa = pd.read_csv(res / "tables" / "pairwise_kappa.csv").set_index("annotator")
    assert kappa.shape == (6, 6) and kappa.loc["sim_a", "sim_a"] == pytest.approx(1.0)
    summary = json.loads((res / "tables" / "agreement.json").read_text())
    # real raters only: crowd samples one of several people per item, the mixtures aggregate
    assert summary["fleiss_annotators"] == ["sim_a", "sim_a2", "sim_b", "sim_c"]
    assert summary["best_by_dev_kappa"] in ("sim_a", "sim_a2", "mix")
    assert "Fleiss" in (res / "tables" / "annotators.md").read_text()
    html = (res / "report.html").read_text()
    assert "Annotator agreement" in html and "Pairwise Cohen" in html


def test_changing_a_member_plans_the_mixture_again(mixture_run):
    work = mixture_run.parents[1]
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["annotators"]["sim_c"]["seed"] = 6
    write_config(work, config)
    try:
        plan = snakemake(work, "-n", "results/tiny/annotations/mix.parquet").stdout
        assert re.search(r"^annotate\s+2\s*$", plan, re.M), plan          # sim_c, then the mixture
        assert "annotator=sim_c" in plan and "annotator=mix" in plan and "annotator=sim_a" not in plan
    finally:
        config["annotators"]["sim_c"]["seed"] = 5
        write_config(work, config)
