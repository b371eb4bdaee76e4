"""The run spec: everything one AL run depends on, and nothing else (the al_run rule's param, so its
rerun trigger, and the spec of run.json)."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from llmal.annotate.kinds import annotator_tree
from llmal.config.grid import al_settings, annotation_mode, recipe_of, reference_annotator, run_demo_encoders
from llmal.llm.executors import LLM_KINDS
from llmal.tasks.registry import spec_task_key


def gold_price(config: dict[str, Any]) -> float:
    """Dollars per human gold label: gold_cost_per_label, else the human reference's price."""
    if config.get("gold_cost_per_label") is not None:
        return float(config["gold_cost_per_label"])
    ref = reference_annotator(config)
    if ref and ref in config["annotators"]:
        return float(config["annotators"][ref].get("cost_per_label", 0.0))
    return 0.0


def run_spec(config: dict[str, Any], condition: str, encoder: str) -> dict[str, Any]:
    """Everything one AL run depends on, and nothing else: its params, and so its rerun trigger."""
    cond = config["conditions"][condition]
    recipe_name, recipe = recipe_of(config, condition)
    # `training` only when set, so conditions without it keep their spec (and their results)
    training = {"training": cond["training"]} if cond.get("training") else {}
    annotators = config["annotators"]
    mode = annotation_mode(config, condition)
    tree = annotator_tree(annotators, cond["annotator"])
    llms = [a for a in tree if annotators[a]["kind"] in LLM_KINDS]
    # gold labels a run buys: the reweighting meta set, the demonstration pools of its LLMs
    buys_gold = "reweight" in (cond.get("training") or {}) or any(
        annotators[a].get("demonstrations") for a in llms) or any(
        annotators[a].get("method") == "learned" for a in tree)
    lazy: dict[str, Any] = {}
    if mode == "lazy" and llms:
        models = {str(annotators[a]["model"]) for a in llms}
        lazy = {"prices": {m: p for m, p in (config.get("prices") or {}).items() if m in models},
                "cache_dir": config.get("cache_dir", ".llmal-cache"),
                **({"cache_mode": config["cache_mode"]} if config.get("cache_mode", "local") != "local" else {}),
                "demo_encoders": {e: config["encoders"][e] for e in run_demo_encoders(config, condition)}}
    return {
        **training,
        "condition": condition,
        "annotator": cond["annotator"],
        "annotator_spec": annotators[cond["annotator"]],
        "annotation": mode,
        "annotators": {a: annotators[a] for a in tree},
        **({"llm": lazy} if lazy else {}),
        **({"gold_cost_per_label": gold_price(config)} if buys_gold else {}),
        "sampler": cond["sampler"],
        "al": al_settings(config, condition),
        "recipe": recipe_name,
        "recipe_spec": recipe,
        "encoder": encoder,
        "encoder_spec": config["encoders"][encoder],
        "labels": config["labels"],
        **spec_task_key(config),
    }


def spec_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]

