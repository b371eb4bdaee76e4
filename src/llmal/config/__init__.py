"""Load, validate and expand an llmal config.

The JSON schema in workflow/schemas/ is the single description of every key; this module applies
it (with defaults filled in) and adds the checks a schema cannot express, such as a condition
naming an annotator that does not exist. It imports nothing heavy: the Snakefile calls it while
planning, and `snakemake -n` on the paper-scale grid must stay fast.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml

from llmal.annotate.kinds import LAZY_BY_DEFAULT, LLM_KINDS, TABLE_KINDS, annotator_tree, mixture_members  # noqa: F401
from llmal.llm.prompts import PROMPTS_DIR  # noqa: F401 (the shipped prompts, re-exported)
from llmal.tasks.registry import spec_task_key
ROOT = Path(__file__).resolve().parents[3]
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "config.schema.yaml"

FEATURE_ENCODERS = ("tfidf", "sentence_transformer")
# crf: a tagger on token features; its encoder gives the sentence embeddings of kmeans
NER_RECIPES = ("crf", "finetune")   # a tagger on token features; token classification
RECIPE_ENCODERS = {"logistic": FEATURE_ENCODERS, "finetune": ("transformer",), "crf": FEATURE_ENCODERS}
NER_SAMPLERS = ("full", "random", "mean_token_entropy", "total_token_entropy", "least_confidence",
                "mnlp", "kmeans")
NER_ONLY_SAMPLERS = ("mean_token_entropy", "total_token_entropy", "mnlp")


class ConfigError(ValueError):
    """The config is wrong; the message names the key."""


@dataclass(frozen=True)
class Run:
    condition: str
    encoder: str
    seed: int

    def path(self, dataset: str) -> str:
        return f"results/{dataset}/runs/{self.condition}/{self.encoder}/seed{self.seed}"


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _validator_with_defaults() -> type:
    base = jsonschema.Draft202012Validator

    def set_defaults(validator, properties, instance, schema):  # type: ignore[no-untyped-def]
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def _best_error(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    # deepest error first: "conditions.x.sampler: 'foo' is not one of ..." beats "conditions: ..."
    return max(errors, key=lambda e: (len(e.absolute_path), -len(e.context or [])))


def validate_config(config: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """Validate in place against the schema (filling defaults), then raise ConfigError for the
    first of config_problems (`llmal check` and the Snakefile list them all, llmal.config.check)."""
    errors, explicit = apply_schema(config)
    if errors:
        err = _best_error(errors)
        raise ConfigError(f"{where}: {_key_path(err)}: {err.message}")
    problems = config_problems(config, explicit)
    if problems:
        key, msg = problems[0]
        raise ConfigError(f"{where}: {key}: {msg}")
    return config


def apply_schema(config: dict[str, Any]) -> tuple[list[jsonschema.ValidationError], dict[str, set[str]]]:
    """Fill the schema's defaults into `config` in place and return (its schema errors, the
    annotator keys the user wrote). A condition's `al` keeps only the keys it sets."""
    explicit = _explicit_annotator_keys(config)   # before the schema fills in defaults
    overrides = _condition_al_overrides(config)
    errors = list(_validator_with_defaults()(load_schema()).iter_errors(config))
    if not errors:
        for name, keys in overrides.items():
            # a condition's `al` overrides the global settings key by key: the schema's defaults
            # must not fill it, or `al: {budget_usd: 5}` would reset initial/batch/rounds to 50/50/10
            config["conditions"][name]["al"] = keys
    return errors, explicit


def config_problems(config: dict[str, Any], explicit: dict[str, set[str]] | None = None) -> list[tuple[str, str]]:
    """Every problem of a schema-valid config (defaults filled in) that the config alone shows,
    as (key, message) pairs: cross references, task-specific keys, LLM request settings."""
    return reference_problems(config) + llm_request_problems(config, explicit)


def _condition_al_overrides(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The keys each condition's `al` block sets itself (before defaults are filled in)."""
    conditions = config.get("conditions")
    if not isinstance(conditions, dict):
        return {}
    return {str(n): dict(c["al"]) for n, c in conditions.items()
            if isinstance(c, dict) and isinstance(c.get("al"), dict)}


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
        if config.get("task") != "ner":   # ner: task_problems checks the sequence samplers
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


def task_problems(config: dict[str, Any], recipes: dict[str, Any]) -> list[tuple[str, str]]:
    """What `task` allows: with ner, crf recipes, sequence samplers, NER datasets and the
    human/simulated/LLM annotators of llmal.ner; without it, none of those."""
    out: list[tuple[str, str]] = []
    ner = config.get("task") == "ner"
    kind = config["dataset"]["kind"]
    ner_data = kind in ("conll", "masakhaner") or (kind == "demo" and config["dataset"].get("task") == "ner")
    if ner != ner_data:
        out.append(("task" if ner else "dataset.kind",
                    f"dataset {kind!r}{' (task ' + str(config['dataset'].get('task')) + ')' if kind == 'demo' else ''} "
                    + ("holds no sentences with entity tags (use demo with task: ner, conll or masakhaner)"
                       if ner else "is sequence labelling: set the top-level task: ner")))
    for cname, cond in config["conditions"].items():
        rname = cond.get("recipe", next(iter(recipes)))
        rkind = (recipes.get(rname) or {}).get("kind")
        if ner and rkind is not None and rkind not in NER_RECIPES:
            out.append((f"conditions.{cname}.recipe", f"task ner trains a tagger: recipe {rname!r} is "
                        f"{rkind!r}, not one of {list(NER_RECIPES)}"))
        if ner and rkind == "finetune" and (recipes[rname].get("class_weight") or "none") != "none":
            out.append((f"recipes.{rname}.class_weight", "class weights are for text classification; "
                        "a tagger (task ner) trains without them"))
        unsupported = sorted(set(cond.get("training") or {}) - {"reweight"}) if ner else []
        if unsupported:
            out.append((f"conditions.{cname}.training.{unsupported[0]}",
                        "task ner supports learning to reweight only (training.reweight)"))
        if not ner and rkind == "crf":
            out.append((f"conditions.{cname}.recipe", f"recipe {rname!r} (crf) tags sentences: it needs task: ner"))
        if ner and cond["sampler"] not in NER_SAMPLERS:
            out.append((f"conditions.{cname}.sampler", f"{cond['sampler']!r} is not a strategy for "
                        f"sequence labelling (task ner: {list(NER_SAMPLERS)})"))
        if not ner and cond["sampler"] in NER_ONLY_SAMPLERS:
            out.append((f"conditions.{cname}.sampler", f"{cond['sampler']!r} scores tag sequences: it needs task: ner"))
    out += task_key_problems(config)
    if ner:
        for name, spec in config["annotators"].items():
            if spec["kind"] == "mixture" and spec.get("method", "majority") != "majority":
                out.append((f"annotators.{name}.method", "a mixture of sentence annotators (task ner) "
                            "aggregates by entity-level majority vote only (method: majority)"))
            for typ in spec.get("entity_error") or {}:
                if typ not in config["labels"]["names"]:
                    out.append((f"annotators.{name}.entity_error.{typ}",
                                f"unknown entity type (labels.names: {config['labels']['names']})"))
    return out


TOKEN_BUDGET = ("a token budget counts the tokens of sentences (for classification use budget_labels "
                "or budget_usd)")
# keys that only one task reads: key (* = any name) -> (that task, what the key is for); under
# the other task they would be silently ignored, so they are refused, naming the key
TASK_KEYS: dict[str, tuple[str, str]] = {
    "annotators.*.cost_per_token": ("ner", "a price per token of a sentence"),
    "annotators.*.entity_error": ("ner", "noise on the entities of a sentence (classification: error)"),
    "annotators.*.sentences_per_prompt": ("ner", "sentences sent in one request"),
    "al.budget_tokens": ("ner", TOKEN_BUDGET),
    "conditions.*.al.budget_tokens": ("ner", TOKEN_BUDGET),
    "aggregate.token_budgets": ("ner", "token budgets count the tokens of sentences"),
    "annotators.*.error": ("classification", "class-conditional noise on a text's label (task ner: "
                                             "entity_error)"),
    "annotators.*.topic_error": ("classification", "topic-conditional noise on a text's label "
                                                   "(task ner: entity_error)"),
    "labels.positive": ("classification", "the positive class of a binary text classification "
                                          "(task ner scores entities of every type)"),
}


def _keys_matching(config: dict[str, Any], pattern: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) for every key of `config` that `pattern` (* = any name) names."""
    nodes: list[tuple[str, Any]] = [("", config)]
    for part in pattern.split("."):
        nodes = [(f"{key}.{name}".lstrip("."), value) for key, node in nodes if isinstance(node, dict)
                 for name, value in node.items() if part in ("*", name)]
    yield from nodes


def task_key_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    """Keys of TASK_KEYS set (not empty) under the other task."""
    task = "ner" if config.get("task") == "ner" else "classification"
    out = []
    for pattern, (needs, what) in TASK_KEYS.items():
        if needs == task:
            continue
        for key, value in _keys_matching(config, pattern):
            if value is not None and value != {} and value != []:
                out.append((key, f"{what}: it needs task: ner" if needs == "ner" else
                            f"{what}: task ner does not read it; remove it"))
    return out


def _check_strategy(key: str, sampler: str, recipe: str, kind: str, fail: Any) -> None:
    """A query strategy needs model outputs its recipe kind must be able to supply."""
    from llmal.strategies.registry import STRATEGY_NEEDS
    from llmal.strategies.registry import missing_needs

    if sampler not in STRATEGY_NEEDS:
        return  # `full` is a schedule; unknown names are the schema's business
    missing = missing_needs(sampler, kind)
    if missing:
        fail(f"{key}.sampler",
             f"strategy {sampler!r} needs {', '.join(sorted(STRATEGY_NEEDS[sampler]))}; recipe "
             f"{recipe!r} ({kind}) cannot supply {', '.join(sorted(missing))}"
             + (" (a linear head has no dropout: use a finetune recipe)"
                if "dropout" in missing else ""))


# ---------------------------------------------------------------- LLM request parameters
def _explicit_annotator_keys(config: dict[str, Any]) -> dict[str, set[str]]:
    annotators = config.get("annotators")
    if not isinstance(annotators, dict):
        return {}
    return {str(n): set(s) for n, s in annotators.items() if isinstance(s, dict)}


def llm_request_problems(config: dict[str, Any], explicit: dict[str, set[str]] | None = None
                         ) -> list[tuple[str, str]]:
    """Body keys a model would reject (max_tokens or temperature on a reasoning model...),
    codebook files that do not exist, replicates whose requests equal another's, and
    transport settings that cannot work (a base_url that is no URL, backoff_max < backoff_base)."""
    from llmal.llm.profiles import request_problems

    out: list[tuple[str, str]] = []
    annotators = config["annotators"]
    for name, spec in annotators.items():
        if spec["kind"] not in LLM_KINDS:
            continue
        key = f"annotators.{name}"
        keys = (explicit or {}).get(name, set(spec))
        out += [(f"{key}.{k}", message) for k, message in request_problems(spec, keys)]
        file = (spec.get("guidelines") or {}).get("file")
        if file and not Path(file).exists() and not (PROMPTS_DIR / file).exists():
            out.append((f"{key}.guidelines.file", f"{file} does not exist (also looked in {PROMPTS_DIR})"))
        url = spec.get("base_url")
        if url is not None and not _is_http_url(str(url)):
            out.append((f"{key}.base_url", f"{url!r} is not an http(s) URL (e.g. "
                        "http://localhost:8000/v1 or https://api.openai.com/v1)"))
        if float(spec.get("backoff_max", 60)) < float(spec.get("backoff_base", 1.0)):
            out.append((f"{key}.backoff_max", f"{spec['backoff_max']} seconds is below backoff_base "
                        f"{spec.get('backoff_base', 1.0)}: the cap must be at least the first wait"))
    for name, spec in annotators.items():
        target = spec.get("replicate_of")
        if spec["kind"] in LLM_KINDS and target in annotators and \
                request_identity(spec) == request_identity(annotators[target]):
            out.append((f"annotators.{name}.replicate_of",
                        f"its requests are identical to those of {target!r} (same backend, model, "
                        "prompt and sampling keys), so every answer would come from the cache and "
                        "self-consistency would be 1 by construction; change its seed (and "
                        "temperature > 0 on a chat model)"))
    return out


def _is_http_url(url: str) -> bool:
    from urllib.parse import urlparse

    try:
        parts = urlparse(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in url


# what decides an LLM annotator's request bodies and backend (not retries, polling, ...)
REQUEST_KEYS = ("kind", "model", "prompt", "base_url", "engine_args", "limit", "demonstrations",
                "guidelines", "samples")


def request_identity(spec: dict[str, Any]) -> str:
    """Equal for two LLM annotators exactly when they would send the same requests to the same
    backend (the kinds openai and openai_batch count as one backend)."""
    from llmal.llm.backend import family_of
    from llmal.llm.backend import normalised_url
    from llmal.llm.profiles import sampling_body

    ident = {k: spec.get(k) for k in REQUEST_KEYS}
    ident["kind"] = family_of(str(spec.get("kind")))
    if ident["kind"] == "openai":
        ident["base_url"] = normalised_url(spec.get("base_url"))
    return json.dumps({**ident, "body": sampling_body(spec)}, sort_keys=True, default=str)


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


def _mixture_cycle(start: str, annotators: dict[str, Any]) -> list[str] | None:
    """A path start -> ... -> start through mixture members, or None."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for member in mixture_members(annotators.get(node) or {}):
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


def annotation_targets(config: dict[str, Any]) -> dict[str, list[str]]:
    """Annotator -> the targets that need its annotation table, for the annotators that get
    annotated: the ones precomputed conditions replay (and their mixture members, recursively),
    the human and simulated members of lazy conditions, the ones
    `agreement.annotators` lists (and theirs) and the agreement reference. Declaring an
    annotator costs nothing: one in no list is never annotated by `snakemake`."""
    annotators = config["annotators"]
    targets: dict[str, list[str]] = {}

    def need(name: str, target: str) -> None:
        stack = [name]
        while stack:
            current = stack.pop()
            if current not in annotators:
                continue
            seen = targets.setdefault(current, [])
            if target in seen:
                continue
            seen.append(target)
            stack.extend(mixture_members(annotators[current]))

    for cname in config["conditions"]:
        # a precomputed condition replays its annotator's table (a mixture's needs its members');
        # a lazy one asks its LLMs during the run and replays only its human/simulated members
        for name in run_tables(config, cname):
            need(name, f"condition {cname}")
    agreement = config.get("agreement") or {}
    for name in agreement.get("annotators") or []:
        need(name, "agreement")
    reference = reference_annotator(config)
    if reference:
        need(reference, "agreement")
    for name in list(targets):           # the agreement table compares every annotated one
        if "agreement" not in targets[name]:
            targets[name].append("agreement")
    return {name: targets[name] for name in annotators if name in targets}


def reference_annotator(config: dict[str, Any]) -> str | None:
    """The human annotator costs are compared with: agreement.reference, else the first human one."""
    ref = (config.get("agreement") or {}).get("reference")
    if ref:
        return str(ref)
    return next((n for n, s in config["annotators"].items() if s["kind"] == "human"), None)


def _recipes(config: dict[str, Any]) -> dict[str, Any]:
    """The configured training recipes; without any, one linear head on frozen features."""
    return config.get("recipes") or {"linear": {"kind": "logistic"}}


def recipe_of(config: dict[str, Any], condition: str) -> tuple[str, dict[str, Any]]:
    recipes = _recipes(config)
    name = config["conditions"][condition].get("recipe", next(iter(recipes)))
    return name, recipes[name]


def condition_encoders(config: dict[str, Any], condition: str) -> list[str]:
    cond = config["conditions"][condition]
    if "encoders" in cond:
        return list(cond["encoders"])
    _, recipe = recipe_of(config, condition)
    usable = RECIPE_ENCODERS[recipe["kind"]]
    return [e for e, spec in config["encoders"].items() if spec["kind"] in usable]


def expand_runs(config: dict[str, Any]) -> Iterator[Run]:
    for cond in config["conditions"]:
        for enc in condition_encoders(config, cond):
            for seed in config["seeds"]:
                yield Run(cond, enc, int(seed))


def al_settings(config: dict[str, Any], condition: str) -> dict[str, Any]:
    settings = dict(config.get("al") or {})
    settings.update(config["conditions"][condition].get("al") or {})
    return settings


def annotation_mode(config: dict[str, Any], condition: str) -> str:
    """lazy or precomputed: the condition's `annotation`, else the default of its annotator's kind."""
    cond = config["conditions"][condition]
    if cond.get("annotation"):
        return str(cond["annotation"])
    kind = config["annotators"][cond["annotator"]]["kind"]
    return "lazy" if kind in LAZY_BY_DEFAULT else "precomputed"


def run_tables(config: dict[str, Any], condition: str) -> list[str]:
    """The annotators whose annotation tables an AL run reads: its own when precomputed; the
    human and simulated ones of its tree when lazy (LLMs are asked during the run)."""
    name = config["conditions"][condition]["annotator"]
    if annotation_mode(config, condition) == "precomputed":
        return [name]
    return [a for a in annotator_tree(config["annotators"], name)
            if config["annotators"][a]["kind"] in TABLE_KINDS]


@dataclass(frozen=True)
class LazyDemand:
    """What the AL runs of one lazy condition may ask one of its LLM annotators: `runs` runs
    (encoders x seeds), each buying at most `labels` training items (None: the whole pool, for
    `full`) plus the dev split when `dev`, and paying at most `budget_usd` (None: no cap)."""
    condition: str
    runs: int
    labels: int | None
    dev: bool
    budget_usd: float | None


def lazy_demand(config: dict[str, Any]) -> dict[str, list[LazyDemand]]:
    """LLM annotator -> what the lazy conditions asking it during their runs may buy (llmal plan
    bounds their bill with it)."""
    out: dict[str, list[LazyDemand]] = {}
    annotators = config["annotators"]
    for cname, cond in config["conditions"].items():
        if annotation_mode(config, cname) != "lazy":
            continue
        al = al_settings(config, cname)
        full = cond["sampler"] == "full"
        labels = None if full else int(al.get("initial", 50)) + int(al.get("rounds", 10)) * int(al.get("batch", 50))
        if al.get("budget_labels") is not None:
            labels = int(al["budget_labels"]) if labels is None else min(labels, int(al["budget_labels"]))
        demand = LazyDemand(cname, len(condition_encoders(config, cname)) * len(config["seeds"]), labels,
                            bool(al.get("dev_labels", True)),
                            None if al.get("budget_usd") is None else float(al["budget_usd"]))
        for name in annotator_tree(annotators, cond["annotator"]):
            if annotators[name]["kind"] in LLM_KINDS:
                out.setdefault(name, []).append(demand)
    return out


def run_demo_encoders(config: dict[str, Any], condition: str) -> list[str]:
    """Encoders whose embeddings the lazy LLM annotators of a run rank demonstrations with."""
    if annotation_mode(config, condition) == "precomputed":
        return []
    annotators = config["annotators"]
    found = [demonstration_encoder(config, annotators[a])
             for a in annotator_tree(annotators, config["conditions"][condition]["annotator"])
             if annotators[a]["kind"] in LLM_KINDS]
    return sorted({e for e in found if e})


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


def load_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys")
    return validate_config(config, where=str(path))


def demonstration_encoder(config: dict[str, Any], spec: dict[str, Any]) -> str | None:
    """The encoder whose embeddings rank an LLM annotator's demonstrations (None: no demonstrations)."""
    demos = spec.get("demonstrations")
    if not demos:
        return None
    if "encoder" in demos:
        return demos["encoder"]
    for name, enc in config["encoders"].items():
        if enc["kind"] in FEATURE_ENCODERS:
            return name
    raise ConfigError("demonstrations need a feature encoder (tfidf or sentence_transformer) in encoders")
