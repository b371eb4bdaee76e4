"""Stopping criteria (llmal.stopping, `al.stop`): a planted case per criterion where it must fire at
a known round, parity with small-text 1.4.1's criteria where it has the same one, the criteria
inside the AL loop (record and stop modes, the stop set) and the config checks."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from test_al import run
from test_check import _demo

from llmal.config.check import check_config, errors
from llmal.stopping.criteria import Observation, cohen_kappa, make_criterion, normalised_entropy
from llmal.stopping.monitor import StopMonitor
from llmal.stopping.registry import CRITERIA


def first_round(criterion, observations) -> int | None:
    """The first round at which `criterion` says stop, over a list of Observations."""
    for obs in observations:
        if criterion.check(obs).stop:
            return obs.round
    return None


def onehot(pred, C=2, sharp=0.9):
    """Probabilities whose argmax is `pred`, with `sharp` on the predicted class."""
    P = np.full((len(pred), C), (1 - sharp) / (C - 1))
    P[np.arange(len(pred)), pred] = sharp
    return P


# --------------------------------------------------------------------------------------------
# planted cases: each criterion fires at a known round


def test_stabilizing_predictions_fires_after_window_kappas_of_agreement():
    rng = np.random.default_rng(0)
    fixed = rng.integers(0, 2, 200)
    # rounds 0-4: unrelated predictions (kappa near 0); from round 5 on the same predictions
    preds = [rng.integers(0, 2, 200) for _ in range(5)] + [fixed] * 6
    obs = [Observation(r, onehot(p)) for r, p in enumerate(preds)]
    # kappa(5 vs 4) ~ 0, kappa(6 vs 5) = kappa(7 vs 6) = kappa(8 vs 7) = 1: the mean of the last
    # three reaches 1 >= 0.99 at round 8, not before
    assert first_round(make_criterion("stabilizing_predictions"), obs) == 8
    assert first_round(make_criterion("stabilizing_predictions", window=1), obs) == 6
    # 0.6 is reached by mean(~0, 1, 1) at round 7
    assert first_round(make_criterion("stabilizing_predictions", kappa=0.6), obs) == 7


def test_cohen_kappa_by_hand():
    a = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    b = np.array([0, 1, 1, 1, 0, 0, 1, 0])
    # p_o = 6/8; marginals a: 4/4, b: 4/4 -> p_e = 0.5; kappa = (0.75 - 0.5) / 0.5
    assert cohen_kappa(a, b, 2) == pytest.approx(0.5)
    assert cohen_kappa(np.zeros(5, int), np.zeros(5, int), 2) == 1.0   # 0/0 case: identical
    assert cohen_kappa(np.zeros(4, int), np.ones(4, int), 2) == 0.0


def test_overall_uncertainty_fires_when_the_mean_entropy_drops_below_the_threshold():
    # every item at probability p of its class; p grows each round
    sharp = [0.6, 0.7, 0.8, 0.9, 0.99, 0.999]
    ents = [float(normalised_entropy(onehot(np.zeros(10, int), sharp=s)).mean()) for s in sharp]
    # binary entropy in bits (= entropy / log 2): H(0.9) = 0.469, H(0.99) = 0.081, H(0.999) = 0.011
    assert ents[3] == pytest.approx(0.4690, abs=1e-4) and ents[4] == pytest.approx(0.0808, abs=1e-4)
    assert ents[5] == pytest.approx(0.0114, abs=1e-4)
    obs = [Observation(r, onehot(np.zeros(10, int), sharp=s)) for r, s in enumerate(sharp)]
    assert first_round(make_criterion("overall_uncertainty", threshold=0.1), obs) == 4
    obs = [Observation(r, onehot(np.zeros(10, int), sharp=s)) for r, s in enumerate(sharp)]
    assert first_round(make_criterion("overall_uncertainty"), obs) == 5    # H(0.999) = 0.011


def test_classification_change_fires_at_the_first_round_without_changes():
    base = np.zeros(100, int)
    preds = []
    for changed in (30, 10, 3, 1, 0, 0):   # items whose prediction flips against the round before
        nxt = (preds[-1] if preds else base).copy()
        nxt[:changed] = 1 - nxt[:changed]
        preds.append(nxt)
    obs = lambda: [Observation(r, onehot(p)) for r, p in enumerate(preds)]   # noqa: E731
    assert first_round(make_criterion("classification_change"), obs()) == 4
    assert first_round(make_criterion("classification_change", threshold=0.03), obs()) == 2
    assert first_round(make_criterion("classification_change", threshold=0.01), obs()) == 3


def test_max_confidence_waits_for_the_most_uncertain_item():
    rounds = []
    for r in range(6):
        P = onehot(np.zeros(50, int), sharp=0.99999)
        P[r % 50] = [0.5, 0.5] if r < 4 else [0.9999, 0.0001]   # one uncertain item until round 4
        rounds.append(Observation(r, P))
    crit = make_criterion("max_confidence", threshold=0.01)
    verdicts = [crit.check(o) for o in rounds]
    assert [v.stop for v in verdicts] == [False] * 4 + [True] * 2
    assert verdicts[0].value == pytest.approx(1.0)     # a 50/50 item: normalised entropy 1


def test_dev_f1_plateau_fires_after_window_rounds_without_min_delta():
    f1 = [0.5, 0.6, 0.7, 0.72, 0.722, 0.723, 0.724, 0.75]
    obs = [Observation(r, dev_f1=v) for r, v in enumerate(f1)]
    # round 5: best of [.72 .722 .723] - best of [.5 .6 .7] = 0.023; round 6: .724 - .72 = 0.004
    assert first_round(make_criterion("dev_f1_plateau"), obs) == 6
    crit = make_criterion("dev_f1_plateau", window=2, min_delta=0.01)
    values = [crit.check(o).value for o in obs]
    assert np.isnan(values[:2]).all() and values[2] == pytest.approx(0.2)  # [.6 .7] vs [.5]
    assert values[4] == pytest.approx(0.022)   # [.72 .722] vs [.5 .6 .7]
    crit = make_criterion("dev_f1_plateau", window=2, min_delta=0.01)
    assert first_round(crit, [Observation(r, dev_f1=v) for r, v in enumerate(f1)]) == 5


def test_unknown_option_is_an_error_naming_it():
    with pytest.raises(TypeError, match=r"'stabilizing_predictions' takes no options \['kapa'\]"):
        make_criterion("stabilizing_predictions", kapa=0.9)
    with pytest.raises(ValueError, match="unknown stopping criterion 'nope'"):
        make_criterion("nope")


# --------------------------------------------------------------------------------------------
# parity with small-text 1.4.1 (small_text.stopping_criteria), on the same predictions


def _sequences(n_seq=40, n_rounds=12, n=60, C=3):
    """Random probability sequences that settle: each round, a shrinking share of items takes a
    new random distribution, and the rest keep theirs."""
    for s in range(n_seq):
        rng = np.random.default_rng(s)
        P = rng.dirichlet(np.ones(C) * rng.uniform(0.05, 2.0), size=n)
        seq = []
        for r in range(n_rounds):
            move = rng.random(n) < max(0.0, 0.5 - 0.06 * r)
            P = P.copy()
            P[move] = rng.dirichlet(np.ones(C) * rng.uniform(0.05, 2.0), size=int(move.sum()))
            seq.append(P)
        yield C, seq


def _compare(ours_factory, theirs_factory, call):
    compared = fired = 0
    for C, seq in _sequences():
        ours, theirs = ours_factory(), theirs_factory(C)
        for r, P in enumerate(seq):
            want = bool(call(theirs, P))
            assert ours.check(Observation(r, P)).stop == want, (r, C)
            compared += 1
            fired += want
    assert fired > 20 and compared - fired > 20     # both verdicts occur


@pytest.mark.parametrize("window,kappa", [(3, 0.99), (2, 0.8), (1, 0.5)])
def test_parity_stabilizing_predictions_with_small_text_kappa_average(window, kappa):
    from small_text.stopping_criteria import KappaAverage
    _compare(lambda: make_criterion("stabilizing_predictions", window=window, kappa=kappa),
             lambda C: KappaAverage(C, window_size=window, kappa=kappa),
             lambda crit, P: crit.stop(predictions=P.argmax(axis=1)))


@pytest.mark.parametrize("threshold", [0.0, 0.05, 0.2])
def test_parity_classification_change_with_small_text(threshold):
    from small_text.stopping_criteria import ClassificationChange
    _compare(lambda: make_criterion("classification_change", threshold=threshold),
             lambda C: ClassificationChange(C, threshold=threshold),
             lambda crit, P: crit.stop(predictions=P.argmax(axis=1)))


@pytest.mark.parametrize("threshold", [0.62, 0.7, 0.78])
def test_parity_overall_uncertainty_with_small_text(threshold):
    from small_text.stopping_criteria import OverallUncertainty
    _compare(lambda: make_criterion("overall_uncertainty", threshold=threshold),
             lambda C: OverallUncertainty(C, threshold=threshold),
             lambda crit, P: crit.stop(proba=P, indices_stopping=np.arange(len(P))))


def test_small_text_has_no_max_confidence_nor_dev_plateau():
    """Where small-text has no such criterion, the planted tests above are the check."""
    import small_text.stopping_criteria as st
    assert not {"MaxConfidence", "DevF1Plateau"} & set(dir(st))
    assert set(CRITERIA) == {"stabilizing_predictions", "overall_uncertainty",
                             "classification_change", "max_confidence", "dev_f1_plateau"}


# --------------------------------------------------------------------------------------------
# in the AL loop


STOP = {"criteria": {"stabilizing_predictions": {}, "classification_change": {"threshold": 0.01},
                     "overall_uncertainty": {"threshold": 0.3}}}
SCHEDULE = {"initial": 20, "batch": 10, "rounds": 12}


def test_record_mode_changes_nothing_and_records_where_each_fired():
    plain = run("entropy", SCHEDULE)
    rec = run("entropy", {**SCHEDULE, "stop": {**STOP, "mode": "record"}})
    cols = [c for c in plain.rounds.columns if c not in ("seconds", "train_seconds")]
    assert rec.rounds[cols].equals(plain.rounds[cols])           # same run, with new columns
    assert rec.queried.equals(plain.queried) and rec.predictions.equals(plain.predictions)
    stopping = rec.info["stopping"]
    assert stopping["mode"] == "record" and stopping["stop_set"] == 800   # the pool is smaller
    for name, first in stopping["first_fired"].items():
        fired = rec.rounds[f"stop_{name}"].astype(bool)
        assert first is not None and first == int(rec.rounds["round"][fired].iloc[0])
        assert not fired[rec.rounds["round"] < first].any()
    assert rec.info["stop_reason"] == "completed"


def test_stop_mode_ends_the_run_where_record_mode_says_it_fires():
    rec = run("entropy", {**SCHEDULE, "stop": {**STOP, "mode": "record"}})
    first = min(r for r in rec.info["stopping"]["first_fired"].values() if r is not None)
    assert 0 < first < SCHEDULE["rounds"]
    stop = run("entropy", {**SCHEDULE, "stop": {**STOP, "mode": "stop"}})
    assert stop.rounds["round"].tolist() == list(range(first + 1))
    assert stop.info["stop_reason"] == "stop_criterion" and stop.rounds["stop"].iloc[-1] == "stop_criterion"
    assert "a stopping criterion of al.stop fired" in stop.info["stop_message"]
    name = [n for n, r in rec.info["stopping"]["first_fired"].items() if r == first][0]
    assert f"fired: {name}" in stop.info["stop_message"]
    same = [c for c in rec.rounds.columns if c not in ("seconds", "train_seconds", "stop")]
    assert stop.rounds[same].equals(rec.rounds[same].iloc[:first + 1])


def test_the_stop_set_is_a_seeded_sample_of_the_pool_never_test():
    pool = [f"p{i}" for i in range(5000)]
    a = StopMonitor.from_settings({"criteria": {"stabilizing_predictions": {}}}, pool)
    b = StopMonitor.from_settings({"criteria": {"stabilizing_predictions": {}}, "seed": 0}, pool)
    c = StopMonitor.from_settings({"criteria": {"stabilizing_predictions": {}}, "seed": 1,
                                   "stop_set": 300}, pool)
    assert a.stop_ids == b.stop_ids and len(a.stop_ids) == 1000 and set(a.stop_ids) <= set(pool)
    assert len(c.stop_ids) == 300 and c.stop_ids != a.stop_ids[:300]
    only_dev = StopMonitor.from_settings({"criteria": {"dev_f1_plateau": {}}}, pool)
    assert only_dev.stop_ids == []                       # nothing to predict on
    seen = []
    mon = StopMonitor.from_settings({"criteria": {"max_confidence": {}}, "stop_set": 50}, pool)
    mon.observe(0, lambda ids: seen.append(list(ids)) or np.full((len(ids), 2), 0.5), float("nan"))
    assert seen == [mon.stop_ids]


def test_full_runs_check_no_criterion():
    res = run("full", {"stop": {"criteria": {"stabilizing_predictions": {}}}})
    assert "stopping" not in res.info and not any(c.startswith("stop_") for c in res.rounds.columns)


# --------------------------------------------------------------------------------------------
# config checks


def _problems(tmp_path, change):
    cfg = _demo(tmp_path)
    change(cfg)
    return [str(p) for p in errors(check_config(copy.deepcopy(cfg), "c.yaml", data=False))]


def test_valid_stop_config_has_no_error(tmp_path):
    def change(cfg):
        cfg["al"]["stop"] = {"mode": "record", "criteria": {"stabilizing_predictions": {"window": 2},
                                                            "dev_f1_plateau": {}}}
    assert _problems(tmp_path, change) == []


@pytest.mark.parametrize("stop,key", [
    ({"criteria": {"stabilizing": {}}}, r"al\.stop\.criteria: Additional properties .*'stabilizing'"),
    ({"criteria": {"stabilizing_predictions": {"kappa": 1.5}}},
     r"al\.stop\.criteria\.stabilizing_predictions\.kappa: 1\.5 is greater than the maximum of 1"),
    ({"criteria": {"overall_uncertainty": {"treshold": 0.1}}},
     r"al\.stop\.criteria\.overall_uncertainty: Additional properties .*'treshold'"),
    ({"mode": "halt", "criteria": {"max_confidence": {}}}, r"al\.stop\.mode: 'halt' is not one of"),
    ({"criteria": {}}, r"al\.stop\.criteria: \{\} should be non-empty"),
    ({"mode": "stop"}, r"al\.stop: 'criteria' is a required property"),
])
def test_schema_errors_name_the_key(tmp_path, stop, key):
    def change(cfg):
        cfg["al"]["stop"] = stop
    problems = _problems(tmp_path, change)
    assert any(__import__("re").search(key, p) for p in problems), problems


def test_dev_plateau_needs_dev_labels_and_full_has_no_rounds(tmp_path):
    def change(cfg):
        cfg["al"]["stop"] = {"criteria": {"dev_f1_plateau": {}}}
        cfg["conditions"]["human_al"]["al"] = {"dev_labels": False}
        cfg["conditions"]["noisy_full"]["al"] = {"stop": {"criteria": {"max_confidence": {}}}}
    problems = _problems(tmp_path, change)
    assert any("al.stop.criteria.dev_f1_plateau: condition human_al buys no dev labels" in p
               for p in problems), problems
    assert any("conditions.noisy_full.al.stop: condition noisy_full has sampler full" in p
               for p in problems), problems
    assert len(problems) == 2


def test_ner_accepts_the_dev_plateau_only(repo_root):
    import yaml
    cfg = yaml.safe_load((repo_root / "config" / "ner_demo.yaml").read_text())
    cfg["al"]["stop"] = {"criteria": {"dev_f1_plateau": {}}}
    assert errors(check_config(copy.deepcopy(cfg), "ner.yaml", data=False)) == []
    cfg["al"]["stop"] = {"criteria": {"stabilizing_predictions": {}, "dev_f1_plateau": {}}}
    problems = [str(p) for p in errors(check_config(copy.deepcopy(cfg), "ner.yaml", data=False))]
    assert problems and all("al.stop.criteria.stabilizing_predictions: task ner cannot check "
                            "stabilizing_predictions" in p for p in problems), problems
    assert any("it can: ['dev_f1_plateau']" in p for p in problems)
