"""Label probabilities from logprobs and self-consistency by sampling, against the loopback
OpenAI-compatible test server (real HTTP, the real openai client)."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from llmal.label_probs import label_distribution, label_matrix, read_cell
from llmal.llm.logprobs import choice_probabilities
from llmal.llm.profiles import request_problems, sample_specs
from llmal.llm.prompts import Question, load_prompt
from llmal.tasks.classification.llm import annotate_with_llm

sys.path.insert(0, str(Path(__file__).parent))
from openai_server import Faults, OpenAITestServer, choice_distribution, last_user_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "config" / "prompts"
LABELS = ["not_hostile", "hostile"]
PRICES = {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.60}}
ITEMS = pd.DataFrame({"id": [f"p{n:02d}" for n in range(24)],
                      "text": [f"Kommentar {n} über Zuwanderung und Asyl" for n in range(24)]})
BASE = {"model": "gpt-4o-mini", "prompt": "two_question", "api_key_env": "LLMAL_TEST_NO_SUCH_KEY",
        "max_retries": 1, "backoff_base": 0.01, "timeout": 10, "poll_interval": 0.05}


def annotate(tmp_path: Path, spec: dict[str, Any], items: pd.DataFrame = ITEMS) -> pd.DataFrame:
    return annotate_with_llm(items, spec=spec, label_names=LABELS, positive="hostile",
                             prompts_dir=PROMPTS, prices=PRICES, cache_path=tmp_path / "cache.sqlite",
                             state_dir=tmp_path / "state", log=lambda m: None, name="gpt")


def _choice(tokens: list[tuple[str, float, list[tuple[str, float]]]]) -> dict[str, Any]:
    return {"message": {"content": "".join(t for t, _, _ in tokens)},
            "logprobs": {"content": [{"token": t, "logprob": lp,
                                      "top_logprobs": [{"token": a, "logprob": b} for a, b in alts]}
                                     for t, lp, alts in tokens]}}


def test_choice_probabilities_walk_multi_token_values_and_skip_unrelated_alternatives():
    q = Question("answer", "?", ("no", "not_sure", "yes"))
    # `"answer": "` then the value in two tokens: "n" (shared by no / not_sure), then 'o"'
    choice = _choice([('{"answer": "', -0.001, []),
                      ("n", math.log(0.7), [("n", math.log(0.7)), ("y", math.log(0.2)), ("x", math.log(0.1))]),
                      ('o"', math.log(0.6), [('o"', math.log(0.6)), ("ot", math.log(0.4))]),
                      ("}", 0.0, [])])
    probs = choice_probabilities(choice, {"answer": "no"}, [q])["answer"]
    # yes 0.2; no 0.7*0.6; not_sure 0.7*0.4; "x" fits no choice and is left out (renormalised)
    total = 0.2 + 0.42 + 0.28
    assert probs == pytest.approx({"yes": 0.2 / total, "no": 0.42 / total, "not_sure": 0.28 / total})
    assert choice_probabilities({"message": {"content": "{}"}}, {"answer": "no"}, [q]) is None


def test_label_distribution_multiplies_questions_through_the_label_rule():
    template = load_prompt("two_question", PROMPTS)
    names = template.question_names
    choices = {names[0]: {"yes": 0.8, "no": 0.2}, names[1]: {"yes": 0.5, "no": 0.5}}
    answers = {names[0]: "yes", names[1]: "yes"}
    dist = label_distribution(choices, answers, template.questions,
                              lambda a: template.label_of(a, LABELS, "hostile"), LABELS)
    assert dist == pytest.approx({"hostile": 0.4, "not_hostile": 0.6})


def test_logprobs_true_fills_probs_from_the_servers_distribution(tmp_path):
    template = load_prompt("two_question", PROMPTS)
    with OpenAITestServer(tmp_path / "server", Faults()) as server:
        spec = {**BASE, "kind": "openai", "base_url": server.base_url, "logprobs": True, "top_logprobs": 5}
        table = annotate(tmp_path, spec)
        plain = annotate(tmp_path / "plain", {**BASE, "kind": "openai", "base_url": server.base_url})
    assert (table["status"] == "ok").all()
    assert (plain["probs"] == "{}").all()                       # no logprobs asked: no probs
    names = template.question_names
    for row, text in zip(table.itertuples(), ITEMS["text"]):
        cell = read_cell(row.probs)
        rendered = template.render_messages(text, (), LABELS, "hostile")[-1]["content"]
        for q in template.questions:
            want = dict(zip(q.choices, choice_distribution(rendered, q.name, list(q.choices))))
            assert cell["choices"][q.name] == pytest.approx(want)
        p_hostile = np.prod([cell["choices"][n]["yes"] for n in names])
        assert cell["label"]["hostile"] == pytest.approx(p_hostile, abs=1e-6)
    dist = label_matrix(table["probs"].tolist(), LABELS)
    assert not np.isnan(dist).any() and np.allclose(dist.sum(axis=1), 1.0)


@pytest.mark.parametrize("kind", ["openai", "local_seeded"])
def test_samples_give_vote_shares_a_majority_and_an_agreement_rate(tmp_path, kind):
    template = load_prompt("two_question", PROMPTS)
    with OpenAITestServer(tmp_path / "server", Faults()) as server:
        spec = {**BASE, "kind": "openai", "base_url": server.base_url, "temperature": 0.7, "samples": 10}
        if kind == "local_seeded":       # a backend without `n`: ten requests with seeds 0..9
            spec = {**spec, "kind": "openai_batch"}
            specs = sample_specs({**spec, "kind": "local"})
            assert [s["seed"] for s in specs] == list(range(10)) and all("n" not in s for s in specs)
            spec = {**spec, "kind": "openai"}
            from llmal.llm import profiles
            profiles_n = profiles.N_KINDS
            profiles.N_KINDS = ()          # the openai client path, sent as a backend without n
            try:
                table = annotate(tmp_path, spec)
            finally:
                profiles.N_KINDS = profiles_n
        else:
            table = annotate(tmp_path, spec)
        billed = server.ledger()["billed"]
    n_requests = len(ITEMS) * (1 if kind == "openai" else 10)
    assert len(billed) == n_requests
    assert (table["status"] == "ok").all()
    for row in table.itertuples():
        cell = read_cell(row.probs)
        assert cell["n_samples"] == 10 == cell["n_valid"] and len(cell["samples"]) == 10
        votes = cell["votes"]
        assert sum(votes.values()) == pytest.approx(1.0)
        assert votes[LABELS[row.label]] == max(votes.values())          # the majority label
        assert cell["agreement"] == pytest.approx(max(votes.values()))
        assert cell["samples"].count(LABELS[row.label]) == round(10 * cell["agreement"])
    agreement = np.array([read_cell(c)["agreement"] for c in table["probs"]])
    assert 0.5 < agreement.mean() < 1.0                 # samples differ, but mostly agree
    if kind == "local_seeded":                           # the cost of all ten requests
        assert len(set(table["request_id"])) == len(ITEMS)
        assert table["request_id"].str.startswith("samples:").all()


def test_samples_need_a_temperature_and_exclude_n():
    assert [k for k, _ in request_problems({"model": "gpt-4o-mini", "samples": 5}, {"samples"})] == ["samples"]
    assert [k for k, _ in request_problems({"model": "gpt-4o-mini", "samples": 5, "n": 2, "temperature": 0.7},
                                           {"samples", "n", "temperature"})] == ["samples"]
    assert request_problems({"model": "gpt-4o-mini", "samples": 5, "temperature": 0.7}, {"samples"}) == []
    assert request_problems({"model": "gpt-5.2", "samples": 5}, {"samples"}) == []   # reasoning: temperature 1


def test_probs_default_keeps_old_tables_readable():
    from llmal.contracts import make_annotations

    old = pd.DataFrame({"id": ["a"], "label": [1], "status": ["ok"]})
    assert make_annotations(old)["probs"].tolist() == ["{}"]
    new = make_annotations({"id": ["a"], "label": [1], "probs": [{"label": {"hostile": 0.9, "not_hostile": 0.1}}]})
    assert json.loads(new["probs"][0])["label"]["hostile"] == 0.9
