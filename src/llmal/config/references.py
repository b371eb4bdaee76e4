"""Cross references a schema cannot express: every name a config uses (annotators, members, encoders,
recipes, prompts, conditions) exists and fits where it is used; a study has what its conditions need."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from llmal.annotate.kinds import member_annotators
from llmal.config.grid import FEATURE_ENCODERS, RECIPE_ENCODERS, _recipes, condition_encoders
from llmal.config.task_rules import task_problems
from llmal.llm.executors import LLM_KINDS
from llmal.llm.prompts import PROMPTS_DIR
from llmal.strategies.registry import STRATEGY_NEEDS, missing_needs
from llmal.tasks.registry import capabilities_of


def reference_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    """Every cross-reference problem of a schema-valid config, as (key, message) pairs."""
    problems: list[tuple[str, str]] = []

    def fail(key: str, msg: str) -> None:
        problems.append((key, msg))

    labels = config["labels"]
    if labels.get("positive") is not None and labels["positive"] not in labels["names"]:
        fail("labels.positive", f"{labels['positive']!r} is not in labels.names {labels['names']}")
    annotators, encoders = config["annotators"], config["encoders"]
    recipes = _recipes(config)
    for name, spec in annotators.items():
        if spec["kind"] == "mixture":
            _check_mixture(name, spec, annotators, fail)
        if spec["kind"] == "routed":
            _check_routed(name, spec, annotators, fail)
        if "replicate_of" in spec:
            _check_replicate(name, spec, annotators, fail)
        if spec["kind"] == "simulated":
            for key in ("error", "topic_error"):
                for label in spec.get(key, {}):
                    if label not in labels["names"]:
                        fail(f"annotators.{name}.{key}.{label}", f"unknown label (labels.names: {labels['names']})")
        if spec["kind"] == "precomputed" and spec.get("file") and not Path(spec["file"]).exists():
            fail(f"annotators.{name}.file", f"{spec['file']} does not exist")
        if spec["kind"] == "precomputed":
            for raw, target in (spec.get("label_map") or {}).items():
                if target not in labels["names"] and not (isinstance(target, int) and not isinstance(
                        target, bool) and 0 <= target < len(labels["names"])):
                    fail(f"annotators.{name}.label_map.{raw}", f"{target!r} is not a label "
                         f"(labels.names: {labels['names']})")
        if spec["kind"] in LLM_KINDS:
            prompt = spec["prompt"]
            if prompt.endswith((".yaml", ".yml")):
                if not Path(prompt).exists():
                    fail(f"annotators.{name}.prompt", f"template file {prompt} does not exist")
            elif not (PROMPTS_DIR / f"{prompt}.yaml").exists():
                known = sorted(p.stem for p in PROMPTS_DIR.glob("*.yaml"))
                fail(f"annotators.{name}.prompt", f"no template {prompt!r} in {PROMPTS_DIR} (known: {known})")
            demos = spec.get("demonstrations")
            if demos and "encoder" in demos:
                enc = demos["encoder"]
                if enc not in encoders or encoders[enc]["kind"] not in FEATURE_ENCODERS:
                    fail(f"annotators.{name}.demonstrations.encoder",
                         f"{enc!r} is not a feature encoder (tfidf or sentence_transformer) in encoders")
    for cname, cond in config["conditions"].items():
        key = f"conditions.{cname}"
        if cond["annotator"] not in annotators:
            fail(f"{key}.annotator", f"{cond['annotator']!r} is not an annotator (known: {sorted(annotators)})")
        recipe = cond.get("recipe", next(iter(recipes)))
        if recipe not in recipes:
            fail(f"{key}.recipe", f"{recipe!r} is not a recipe (known: {sorted(recipes)})")
            continue
        usable = RECIPE_ENCODERS[recipes[recipe]["kind"]]
        bad_encoder = False
        for enc in cond.get("encoders", []):
            if enc not in encoders:
                fail(f"{key}.encoders", f"{enc!r} is not an encoder (known: {sorted(encoders)})")
                bad_encoder = True
            elif encoders[enc]["kind"] not in usable:
                fail(f"{key}.encoders", f"encoder {enc!r} ({encoders[enc]['kind']}) cannot be used by "
                     f"recipe {recipe!r} ({recipes[recipe]['kind']} needs one of {list(usable)})")
                bad_encoder = True
        if not bad_encoder and not condition_encoders(config, cname):
            fail(key, f"no encoder fits recipe {recipe!r} (needs one of {list(usable)})")
        if capabilities_of(config).samplers is None:   # the strategy registry's (task_problems: a task's own list)
            _check_strategy(key, cond["sampler"], recipe, recipes[recipe]["kind"], fail)
        for option, what in (("reweight", "learning to reweight"),):
            if option in (cond.get("training") or {}) and recipes[recipe]["kind"] != "finetune":
                fail(f"{key}.training.{option}",
                     f"{what} needs a recipe of kind finetune; recipe {recipe!r} is "
                     f"{recipes[recipe]['kind']!r}")
        reweight = (cond.get("training") or {}).get("reweight") or {}
        if (reweight.get("meta_set") == "demonstrations" and cond["annotator"] in annotators
                and not annotators[cond["annotator"]].get("demonstrations")):
            fail(f"{key}.training.reweight.meta_set",
                 f"annotator {cond['annotator']!r} has no demonstrations pool to serve as the meta set")
    problems += task_problems(config, recipes)
    problems += study_problems(config)
    ref = (config.get("aggregate") or {}).get("reference")
    if ref is not None and ref not in config["conditions"]:
        fail("aggregate.reference", f"{ref!r} is not a condition")
    human = (config.get("agreement") or {}).get("reference")
    if human is not None and human not in annotators:
        fail("agreement.reference", f"{human!r} is not an annotator (known: {sorted(annotators)})")
    for listed in (config.get("agreement") or {}).get("annotators") or []:
        if listed not in annotators:
            fail("agreement.annotators", f"{listed!r} is not an annotator (known: {sorted(annotators)})")
    return problems


def agreement_only(config: dict[str, Any]) -> bool:
    """A study that asks only for agreement tables: no conditions (so no AL runs, no gold)."""
    return not config.get("conditions")


def study_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    """Conditions need gold, encoders and seeds; without conditions (an agreement-only study)
    agreement.annotators must name what to compare, and gold is optional."""
    if agreement_only(config):
        if not (config.get("agreement") or {}).get("annotators"):
            return [("conditions", "no conditions: give at least one, or, for an agreement-only "
                     "study, list the annotators to compare in agreement.annotators")]
        return []
    out = []
    dataset = config["dataset"]
    if dataset.get("kind") == "file" and not (dataset.get("columns") or {}).get("gold"):
        out.append(("dataset.columns.gold", "the conditions train and score against gold: name "
                    "the gold column (only an agreement-only study, without conditions, needs none)"))
    if not config.get("encoders"):
        out.append(("encoders", "the conditions need at least one encoder"))
    if not config.get("seeds"):
        out.append(("seeds", "the conditions need seeds, e.g. seeds: [0, 1, 2]"))
    if (config.get("split") or {}).get("test") == 0:
        out.append(("split.test", "0 leaves the conditions no test items to be scored on (only an "
                    "agreement-only study, without conditions, may set 0)"))
    return out


def _check_strategy(key: str, sampler: str, recipe: str, kind: str, fail: Any) -> None:
    """A query strategy needs model outputs its recipe kind must be able to supply."""
    if sampler not in STRATEGY_NEEDS:
        return  # `full` is a schedule; unknown names are the schema's business
    missing = missing_needs(sampler, kind)
    if missing:
        fail(f"{key}.sampler",
             f"strategy {sampler!r} needs {', '.join(sorted(STRATEGY_NEEDS[sampler]))}; recipe "
             f"{recipe!r} ({kind}) cannot supply {', '.join(sorted(missing))}"
             + (" (a linear head has no dropout: use a finetune recipe)"
                if "dropout" in missing else ""))


def _check_mixture(name: str, spec: dict[str, Any], annotators: dict[str, Any], fail: Any) -> None:
    key = f"annotators.{name}.members"
    for member in spec["members"]:
        if member == name:
            fail(key, f"a mixture cannot contain itself ({name!r})")
            return
        if member not in annotators:
            fail(key, f"{member!r} is not an annotator (known: {sorted(annotators)})")
            return
    cycle = _mixture_cycle(name, annotators)
    if cycle:
        fail(key, f"mixtures form a cycle: {' -> '.join(cycle)}")
    if int(spec.get("min_votes", 1)) > len(spec["members"]):
        fail(f"annotators.{name}.min_votes",
             f"{spec['min_votes']} is more than the {len(spec['members'])} members")


def _check_routed(name: str, spec: dict[str, Any], annotators: dict[str, Any], fail: Any) -> None:
    for role in ("primary", "fallback"):
        who = spec[role]
        if who == name:
            fail(f"annotators.{name}.{role}", f"a routed annotator cannot route to itself ({name!r})")
            return
        if who not in annotators:
            fail(f"annotators.{name}.{role}", f"{who!r} is not an annotator (known: {sorted(annotators)})")
            return
    if spec["primary"] == spec["fallback"]:
        fail(f"annotators.{name}.fallback", f"{spec['fallback']!r} is also the primary: routing to it "
             "would ask the same annotator twice")
        return
    cycle = _mixture_cycle(name, annotators)
    if cycle:
        fail(f"annotators.{name}.primary", f"annotators form a cycle: {' -> '.join(cycle)}")


def _mixture_cycle(start: str, annotators: dict[str, Any]) -> list[str] | None:
    """A path start -> ... -> start through mixture members (a routed annotator's primary and
    fallback), or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for member in member_annotators(annotators.get(node) or {}):
            if member == start:
                return path + [member]
            if member not in seen and member in annotators:
                seen.add(member)
                stack.append((member, path + [member]))
    return None


def _check_replicate(name: str, spec: dict[str, Any], annotators: dict[str, Any], fail: Any) -> None:
    key = f"annotators.{name}.replicate_of"
    target = spec["replicate_of"]
    if target == name:
        fail(key, f"an annotator cannot be a replicate of itself ({name!r})")
        return
    if target not in annotators:
        fail(key, f"{target!r} is not an annotator (known: {sorted(annotators)})")
        return
    chain = [name]
    while "replicate_of" in annotators[chain[-1]]:
        nxt = annotators[chain[-1]]["replicate_of"]
        if nxt in chain:
            fail(key, f"replicate_of forms a cycle: {' -> '.join(chain + [nxt])}")
            return
        if nxt not in annotators:
            break
        chain.append(nxt)

