"""What the configured task accepts (its dataset, recipes, samplers, training options, mixtures and
keys), read from the capabilities each task declares (llmal.tasks.<task>.capabilities).

No task is named here. Under the default task, a thing only another task reads names that task
("it needs task: ner"); under a task the config names, that task refuses it and says what it takes.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

from llmal.strategies.registry import STRATEGY_NEEDS
from llmal.tasks.base import Capabilities
from llmal.tasks.registry import CAPABILITIES, DEFAULT, task_name

# condition `training` key -> what it is, in messages
TRAINING_OPTIONS = {"reweight": "learning to reweight"}


def samplers_of(caps: Capabilities) -> tuple[str, ...]:
    """The samplers a task accepts: its own list, or `full` and the strategy registry."""
    return caps.samplers if caps.samplers is not None else ("full", *STRATEGY_NEEDS)


def _owner(accepts: Callable[[Capabilities], bool]) -> tuple[str, Capabilities] | None:
    """The first registered task whose capabilities `accepts`."""
    return next(((n, c) for n, c in CAPABILITIES.items() if accepts(c)), None)


def _refused(key: str, name: str, refusal: str, accepts: Callable[[Capabilities], bool],
             needs: Callable[[str, Capabilities], str]) -> list[tuple[str, str]]:
    """What a task does not take: a task the config names refuses it (`refusal`); under the
    default task it names the task that takes it (`needs`), if one does."""
    if name != DEFAULT:
        return [(key, refusal)]
    owner = _owner(accepts)
    return [(key, needs(*owner))] if owner else []


def _one_of(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def dataset_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The dataset must be one the task reads (dataset.kind, the demo's variant)."""
    name = task_name(config)
    caps = CAPABILITIES[name]
    ds = config["dataset"]
    if caps.reads(ds):
        return []
    kind = ds["kind"]
    what = f"dataset {kind!r}" + (f" (task {ds.get('task')})" if kind == "demo" else "")
    if name != DEFAULT:
        readable = [f"demo with task: {v}" for v in caps.demo_variants] + list(caps.dataset_kinds)
        return [("task", f"{what} holds no {caps.data_noun} (use {_one_of(readable)})")]
    reader = _owner(lambda c: c.reads(ds))
    if reader is None:
        return []
    return [("dataset.kind", f"{what} is {reader[1].description}: set the top-level task: {reader[0]}")]


def task_problems(config: dict[str, Any], recipes: dict[str, Any]) -> list[tuple[str, str]]:
    """What the task allows: its dataset, recipe kinds, class weights, training options,
    samplers, the keys only it reads, its mixture methods and the label-named keys of its
    annotators."""
    name = task_name(config)
    caps = CAPABILITIES[name]
    out = dataset_problems(config)
    samplers = samplers_of(caps)
    for cname, cond in config["conditions"].items():
        rname = cond.get("recipe", next(iter(recipes)))
        rkind = (recipes.get(rname) or {}).get("kind")
        if rkind is not None and rkind not in caps.recipe_kinds:
            out += _refused(f"conditions.{cname}.recipe", name,
                            f"task {name} trains {caps.learner_noun}: recipe {rname!r} is {rkind!r}, "
                            f"not one of {list(caps.recipe_kinds)}",
                            lambda c: rkind in c.recipe_kinds,
                            lambda other, c: f"recipe {rname!r} ({rkind}) {c.learner_does}: it needs task: {other}")
        if (not caps.class_weights and rkind == "finetune"
                and (recipes[rname].get("class_weight") or "none") != "none"):
            weighs = _owner(lambda c: c.class_weights)
            out.append((f"recipes.{rname}.class_weight", f"class weights are for "
                        f"{weighs[1].description if weighs else 'other tasks'}; {caps.learner_noun} "
                        f"(task {name}) trains without them"))
        options = caps.training_options
        unsupported = sorted(set(cond.get("training") or {}) - set(options)) if options is not None else []
        if unsupported:
            out.append((f"conditions.{cname}.training.{unsupported[0]}",
                        f"task {name} supports {' and '.join(TRAINING_OPTIONS.get(o, o) for o in options)} "
                        f"only ({', '.join(f'training.{o}' for o in options)})"))
        sampler = cond["sampler"]
        if sampler not in samplers:
            out += _refused(f"conditions.{cname}.sampler", name,
                            f"{sampler!r} is not a strategy for {caps.description} (task {name}: {list(samplers)})",
                            lambda c: sampler in samplers_of(c),
                            lambda other, c: f"{sampler!r} scores {c.samplers_score}: it needs task: {other}")
    out += task_key_problems(config)
    for aname, spec in config["annotators"].items():
        if (caps.mixture_methods is not None and spec["kind"] == "mixture"
                and spec.get("method", "majority") not in caps.mixture_methods):
            out.append((f"annotators.{aname}.method", caps.mixture_refusal))
        for key, noun in caps.label_keys:
            for label in spec.get(key) or {}:
                if label not in config["labels"]["names"]:
                    out.append((f"annotators.{aname}.{key}.{label}",
                                f"unknown {noun} (labels.names: {config['labels']['names']})"))
    return out


def _keys_matching(config: dict[str, Any], pattern: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) for every key of `config` that `pattern` (* = any name) names."""
    nodes: list[tuple[str, Any]] = [("", config)]
    for part in pattern.split("."):
        nodes = [(f"{key}.{name}".lstrip("."), value) for key, node in nodes if isinstance(node, dict)
                 for name, value in node.items() if part in ("*", name)]
    yield from nodes


def task_key_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    """Keys only another task reads (its capabilities' own_keys), set (not empty) under this
    task: it would silently ignore them."""
    name = task_name(config)
    mine = {pattern for pattern, _ in CAPABILITIES[name].own_keys}
    out = []
    for other, caps in CAPABILITIES.items():
        if other == name:
            continue
        for pattern, what in caps.own_keys:
            if pattern in mine:
                continue
            for key, value in _keys_matching(config, pattern):
                if value is not None and value != {} and value != []:
                    out.append((key, f"{what}: it needs task: {other}" if name == DEFAULT else
                                f"{what}: task {name} does not read it; remove it"))
    return out
