"""The run spec: everything one AL run depends on, and nothing else, as a frozen, typed value (RunSpec).

Its JSON (RunSpec.to_json, the dict run_spec returns) is the al_run rule's param, so its rerun
trigger, and the `spec` of run.json, hashed into its config_hash: the JSON is exactly what it was
before the spec was typed (key order included), so no result reruns. The runner rebuilds the
typed spec from the param (RunSpec.from_json).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, Mapping

from llmal.annotate.kinds import annotator_tree
from llmal.config.grid import al_settings, annotation_mode, recipe_of, reference_annotator, run_demo_encoders
from llmal.llm.executors import LLM_KINDS
from llmal.tasks.registry import spec_task_key


def freeze(value: Any) -> Any:
    """A read-only copy: mappings become MappingProxyType, lists tuples (insertion order kept)."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The plain JSON-like copy of a frozen value: dicts and lists (what toolkits serialise)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class LazyLLM:
    """What a lazy run's LLM annotators need besides their own specs: the prices of their models,
    the response cache (cache_mode only when not "local") and the encoders their k-NN
    demonstrations are ranked with."""
    prices: Mapping[str, Any]
    cache_dir: str
    demo_encoders: Mapping[str, Mapping[str, Any]]
    cache_mode: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prices", freeze(self.prices))
        object.__setattr__(self, "demo_encoders", freeze(self.demo_encoders))

    def to_json(self) -> dict[str, Any]:
        return {"prices": thaw(self.prices), "cache_dir": self.cache_dir,
                **({"cache_mode": self.cache_mode} if self.cache_mode is not None else {}),
                "demo_encoders": thaw(self.demo_encoders)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LazyLLM:
        _known_keys(cls, data, "llm")
        return cls(prices=data["prices"], cache_dir=data["cache_dir"], demo_encoders=data["demo_encoders"],
                   cache_mode=data.get("cache_mode"))


@dataclass(frozen=True)
class RunSpec:
    """One AL run (condition x encoder; the seed is the run's wildcard). The annotator, recipe,
    encoder, AL and label settings are the config's own mappings, frozen (freeze/thaw).

    training: the condition's `training` (None: not set); llm: for a lazy run with LLM
    annotators; gold_cost_per_label: only for a run that buys gold (a reweighting meta set,
    demonstration pools, a learned mixture); task: only for a task other than the default."""
    condition: str
    annotator: str
    annotator_spec: Mapping[str, Any]
    annotation: str                                 # "lazy" | "precomputed"
    annotators: Mapping[str, Mapping[str, Any]]     # the annotator's tree (itself and its members)
    sampler: str
    al: Mapping[str, Any]
    recipe: str
    recipe_spec: Mapping[str, Any]
    encoder: str
    encoder_spec: Mapping[str, Any]
    labels: Mapping[str, Any]
    training: Mapping[str, Any] | None = None
    llm: LazyLLM | None = None
    gold_cost_per_label: float | None = None
    task: str | None = None

    def __post_init__(self) -> None:
        for name in ("annotator_spec", "annotators", "al", "recipe_spec", "encoder_spec", "labels", "training"):
            object.__setattr__(self, name, freeze(getattr(self, name)))

    def __hash__(self) -> int:
        return hash(self.hash())

    def hash(self) -> str:
        """run.json's config_hash."""
        return spec_hash(self.to_json())

    def to_json(self) -> dict[str, Any]:
        """The spec as the rule's param and run.json hold it (the key order of the untyped spec)."""
        return {
            **({"training": thaw(self.training)} if self.training is not None else {}),
            "condition": self.condition,
            "annotator": self.annotator,
            "annotator_spec": thaw(self.annotator_spec),
            "annotation": self.annotation,
            "annotators": thaw(self.annotators),
            **({"llm": self.llm.to_json()} if self.llm is not None else {}),
            **({"gold_cost_per_label": self.gold_cost_per_label} if self.gold_cost_per_label is not None else {}),
            "sampler": self.sampler,
            "al": thaw(self.al),
            "recipe": self.recipe,
            "recipe_spec": thaw(self.recipe_spec),
            "encoder": self.encoder,
            "encoder_spec": thaw(self.encoder_spec),
            "labels": thaw(self.labels),
            **({"task": self.task} if self.task is not None else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        """The typed spec of a rule's param (or run.json's `spec`); a key it does not know is an error."""
        _known_keys(cls, data, "run spec")
        values = dict(data)
        if values.get("llm") is not None:
            values["llm"] = LazyLLM.from_json(values["llm"])
        return cls(**values)


def _known_keys(cls: type, data: Mapping[str, Any], what: str) -> None:
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown}")


def gold_price(config: dict[str, Any]) -> float:
    """Dollars per human gold label: gold_cost_per_label, else the human reference's price."""
    if config.get("gold_cost_per_label") is not None:
        return float(config["gold_cost_per_label"])
    ref = reference_annotator(config)
    if ref and ref in config["annotators"]:
        return float(config["annotators"][ref].get("cost_per_label", 0.0))
    return 0.0


def make_run_spec(config: dict[str, Any], condition: str, encoder: str) -> RunSpec:
    """Everything one AL run depends on, and nothing else."""
    cond = config["conditions"][condition]
    recipe_name, recipe = recipe_of(config, condition)
    # `training` only when set, so conditions without it keep their spec (and their results)
    annotators = config["annotators"]
    mode = annotation_mode(config, condition)
    tree = annotator_tree(annotators, cond["annotator"])
    llms = [a for a in tree if annotators[a]["kind"] in LLM_KINDS]
    # gold labels a run buys: the reweighting meta set, the demonstration pools of its LLMs
    buys_gold = "reweight" in (cond.get("training") or {}) or any(
        annotators[a].get("demonstrations") for a in llms) or any(
        annotators[a].get("method") == "learned" for a in tree)
    lazy = None
    if mode == "lazy" and llms:
        models = {str(annotators[a]["model"]) for a in llms}
        lazy = LazyLLM(prices={m: p for m, p in (config.get("prices") or {}).items() if m in models},
                       cache_dir=config.get("cache_dir", ".llmal-cache"),
                       cache_mode=(config["cache_mode"] if config.get("cache_mode", "local") != "local" else None),
                       demo_encoders={e: config["encoders"][e] for e in run_demo_encoders(config, condition)})
    return RunSpec(
        training=cond["training"] if cond.get("training") else None,
        condition=condition,
        annotator=cond["annotator"],
        annotator_spec=annotators[cond["annotator"]],
        annotation=mode,
        annotators={a: annotators[a] for a in tree},
        llm=lazy,
        gold_cost_per_label=gold_price(config) if buys_gold else None,
        sampler=cond["sampler"],
        al=al_settings(config, condition),
        recipe=recipe_name,
        recipe_spec=recipe,
        encoder=encoder,
        encoder_spec=config["encoders"][encoder],
        labels=config["labels"],
        task=spec_task_key(config).get("task"),
    )


def run_spec(config: dict[str, Any], condition: str, encoder: str) -> dict[str, Any]:
    """The JSON of make_run_spec: the al_run rule's param (so its rerun trigger) and run.json's spec."""
    return make_run_spec(config, condition, encoder).to_json()


def spec_hash(obj: Any) -> str:
    """The short hash of a JSON-like value (run.json's config_hash of a run spec's JSON)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]

