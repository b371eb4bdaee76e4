import copy
import re
from pathlib import Path

import pytest
import yaml

from llmal.config import ConfigError, expand_runs, load_config, run_spec, validate_config

ROOT = Path(__file__).resolve().parents[1]


def default():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "config").glob("*.yaml")))
def test_every_shipped_config_is_valid(name):
    config = load_config(ROOT / "config" / name)
    assert list(expand_runs(config))


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "config").glob("*.yaml")))
def test_run_spec_is_typed_frozen_and_writes_the_same_json(name):
    """RunSpec.to_json is the dict run_spec gives (the rule's param, run.json's spec), key order
    included, so its hash and run.json stay what they were; RunSpec.from_json reads it back."""
    import dataclasses
    import json

    from llmal.config import RunSpec, make_run_spec, spec_hash

    config = load_config(ROOT / "config" / name)
    for run in expand_runs(config):
        data = run_spec(config, run.condition, run.encoder)
        typed = RunSpec.from_json(data)
        assert typed == make_run_spec(config, run.condition, run.encoder)
        assert json.dumps(typed.to_json()) == json.dumps(data)          # order and values
        assert RunSpec.from_json(json.loads(json.dumps(data))) == typed   # as run.json reads back
        assert typed.hash() == spec_hash(data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        typed.sampler = "random"
    with pytest.raises(TypeError):
        typed.recipe_spec["kind"] = "finetune"
    with pytest.raises(ValueError, match="unknown keys"):
        RunSpec.from_json({**data, "seed": 0})


def test_paper_scale_config_expands_to_280_runs():
    config = load_config(ROOT / "config" / "hakimi2026.yaml")
    runs = list(expand_runs(config))
    assert len(runs) == 280
    assert len({r.condition for r in runs}) == 7
    assert len({r.encoder for r in runs}) == 4
    assert len({r.seed for r in runs}) == 10


def test_defaults_are_filled_in():
    config = validate_config(default())
    assert config["cache_dir"] == ".llmal-cache"
    assert config["annotators"]["crowd"]["seed"] == 0
    assert config["encoders"]["tfidf"]["min_df"] == 2


@pytest.mark.parametrize("mutate, key, words", [
    (lambda c: c.update(bogus=1), "(top level)", "bogus"),
    (lambda c: c["conditions"]["human_al"].update(samplr="random"), "conditions.human_al", "samplr"),
    (lambda c: c["al"].update(batch="fifty"), "al.batch", "not of type 'integer'"),
    (lambda c: c["conditions"]["human_al"].update(sampler="magic"), "conditions.human_al.sampler", "magic"),
    (lambda c: c["annotators"]["crowd"].update(mode="median"), "annotators.crowd.mode", "median"),
    (lambda c: c["encoders"]["tfidf"].update(model="x"), "encoders.tfidf", "model"),
    (lambda c: c.update(seeds=[]), "seeds", "should be non-empty"),
])
def test_schema_errors_name_the_key(mutate, key, words):
    config = default()
    mutate(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert key in str(err.value)
    assert words in str(err.value)


@pytest.mark.parametrize("mutate, words", [
    (lambda c: c["conditions"]["human_al"].update(annotator="nobody"), "conditions.human_al.annotator: 'nobody' is not an annotator"),
    (lambda c: c["conditions"]["human_al"].update(encoders=["bert"]), "'bert' is not an encoder"),
    (lambda c: c["conditions"]["human_al"].update(recipe="deep"), "'deep' is not a recipe"),
    (lambda c: c["labels"].update(positive="angry"), "labels.positive"),
    (lambda c: c["annotators"]["llm_sim"]["error"].update(angry=0.1), "annotators.llm_sim.error.angry"),
    (lambda c: c.update(aggregate={"reference": "nope"}), "aggregate.reference"),
])
def test_cross_reference_errors_name_the_key(mutate, words):
    config = default()
    mutate(config)
    with pytest.raises(ConfigError, match=words.replace(".", r"\.").replace("'", "'")):
        validate_config(config)


def test_finetune_recipe_rejects_feature_encoder():
    config = default()
    config["recipes"]["ft"] = {"kind": "finetune"}
    config["conditions"]["human_al"].update(recipe="ft", encoders=["tfidf"])
    with pytest.raises(ConfigError, match="cannot be used by recipe 'ft'"):
        validate_config(config)


def test_run_spec_changes_only_with_what_the_run_depends_on():
    config = validate_config(default())
    before = run_spec(config, "human_al", "tfidf")
    other = copy.deepcopy(config)
    other["conditions"]["llm_full"]["sampler"] = "random"   # another condition
    other["encoders"]["minilm"]["batch_size"] = 8          # another encoder
    assert run_spec(validate_config(other), "human_al", "tfidf") == before
    other["al"]["batch"] = 7
    assert run_spec(validate_config(other), "human_al", "tfidf") != before


def test_schema_sampler_enum_is_full_plus_the_strategy_registry():
    from llmal.config import load_schema
    from llmal.strategies.registry import strategy_names
    from llmal.tasks.ner.capabilities import CAPABILITIES as NER
    from llmal.tasks.ner.strategies import SEQUENCE_STRATEGIES
    ner_only = [s for s in NER.samplers if s != "full" and s not in strategy_names()]
    enum = load_schema()["properties"]["conditions"]["additionalProperties"]["properties"]["sampler"]["enum"]
    assert enum == ["full"] + strategy_names() + ner_only   # then the task ner ones
    assert list(NER.samplers) == ["full", *SEQUENCE_STRATEGIES]   # the capabilities list the strategies


def test_strategy_the_recipe_cannot_serve_is_a_config_error():
    config = default()
    config["conditions"]["human_al"].update(sampler="bald")
    config["conditions"]["human_al"].pop("recipe", None)
    config.pop("recipes", None)                      # the default linear head
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    msg = str(err.value)
    assert "conditions.human_al.sampler" in msg and "'bald' needs dropout" in msg
    assert "cannot supply dropout" in msg
    for ok in ("badge", "coreset", "noise_stability", "cal", "full"):
        config = default()
        config["conditions"]["human_al"].update(sampler=ok)
        validate_config(config)
    config = default()
    config["recipes"] = {"ft": {"kind": "finetune"}}
    config["encoders"] = {"bert": {"kind": "transformer", "model": "x"}}
    for cond in config["conditions"].values():
        cond.pop("encoders", None)
        cond["recipe"] = "ft"
    config["conditions"]["human_al"]["sampler"] = "bald"
    validate_config(config)


def test_a_condition_al_block_overrides_only_the_keys_it_names():
    """`al: {budget_usd: 5}` on a condition keeps the global schedule (the schema's defaults
    once filled it in and silently reset initial/batch/rounds to 50/50/10)."""
    config = default()
    config["al"] = {"initial": 30, "batch": 20, "rounds": 4}
    config["conditions"]["human_al"]["al"] = {"budget_usd": 5.0}
    config = validate_config(config)
    spec = run_spec(config, "human_al", "tfidf")
    assert spec["al"] == {"initial": 30, "batch": 20, "rounds": 4, "dev_labels": True, "budget_usd": 5.0}
    assert config["conditions"]["human_al"]["al"] == {"budget_usd": 5.0}


@pytest.mark.parametrize("key, value, task", [
    ("annotators.crowd.cost_per_token", 0.01, None), ("annotators.noisy.entity_error", {"hostile": {"missed": 0.1}}, None),
    ("al.budget_tokens", 500, None), ("aggregate.token_budgets", [100], None),
    ("annotators.noisy.error", {"PER": 0.1}, "ner"), ("annotators.noisy.topic_error", {"PER": {"t": 0.1}}, "ner"),
    ("labels.positive", "PER", "ner")])
def test_keys_of_the_other_task_are_refused_by_name(key, value, task):
    """config.TASK_KEYS: a key only the other task reads would be silently ignored."""
    from conftest import tiny_config

    config = tiny_config()
    if task == "ner":
        config.update(task="ner", dataset={"name": "n", "kind": "demo", "task": "ner", "n_items": 100},
                      labels={"names": ["PER", "ORG"]}, recipes={"crf": {"kind": "crf"}},
                      conditions={"noisy_random": {"annotator": "noisy", "sampler": "random"}})
        config["annotators"]["noisy"] = {"kind": "simulated"}
    node = config
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    with pytest.raises(ConfigError, match=re.escape(key) + ": .*(it needs task: ner|task ner does not read it)"):
        validate_config(config)


def test_config_and_the_capabilities_plan_without_pandas_or_numpy():
    """The Snakefile imports llmal.config (and through the registry every task's capabilities)
    while planning: nothing there may pull in pandas or numpy."""
    import subprocess
    import sys

    code = ("import sys; import llmal.config, llmal.config.check, llmal.config.cluster, llmal.tasks.registry; "
            "heavy = sorted({'pandas', 'numpy', 'torch'} & set(sys.modules)); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_task_rules_read_capabilities_not_task_names(monkeypatch):
    """config.task_rules takes what a task accepts from its capabilities: a task registered with
    other data is checked by that data, and its name comes from the registry, not the code."""
    import dataclasses

    from llmal.config import task_rules
    from llmal.tasks import registry

    toy = dataclasses.replace(registry.CAPABILITIES["ner"], description="toy tagging", data_noun="toy sentences",
                              dataset_kinds=("conll",), demo_variants=(), recipe_kinds=("crf",),
                              samplers=("full", "random"), learner_noun="a toy tagger",
                              own_keys=(("annotators.*.toy_knob", "a toy knob"),))
    monkeypatch.setitem(registry.CAPABILITIES, "toy", toy)
    config = validate_config(default())
    recipes = config.get("recipes") or {"linear": {"kind": "logistic"}}
    config["annotators"]["crowd"]["toy_knob"] = 3
    assert task_rules.task_key_problems(config) == [("annotators.crowd.toy_knob", "a toy knob: it needs task: toy")]
    config["task"] = "toy"
    problems = task_rules.task_problems(config, recipes)
    assert problems[0] == ("task", f"dataset 'demo' (task {config['dataset']['task']}) holds no toy sentences "
                                   "(use conll)")
    assert any(k.endswith(".recipe") and m.startswith("task toy trains a toy tagger: recipe") for k, m in problems)
    assert ("conditions.human_al.sampler",
            "'entropy' is not a strategy for toy tagging (task toy: ['full', 'random'])") in problems
    assert ("labels.positive", "the positive class of a binary text classification (task ner scores entities "
            "of every type): task toy does not read it; remove it") in problems
