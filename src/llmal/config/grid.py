"""Expanding a config into its runs (conditions x encoders x seeds) and what each run reads: its recipe,
encoders, AL settings, annotation mode, annotation tables and demonstration encoders, and which
annotators get annotated at all."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from llmal.annotate.kinds import LAZY_BY_DEFAULT, TABLE_KINDS, annotator_tree, member_annotators
from llmal.config.schema import ConfigError
from llmal.llm.executors import LLM_KINDS

FEATURE_ENCODERS = ("tfidf", "sentence_transformer")
# crf: a tagger on token features; its encoder gives the sentence embeddings of kmeans
RECIPE_ENCODERS = {"logistic": FEATURE_ENCODERS, "finetune": ("transformer",), "crf": FEATURE_ENCODERS}


@dataclass(frozen=True)
class Run:
    condition: str
    encoder: str
    seed: int

    def path(self, dataset: str) -> str:
        return f"results/{dataset}/runs/{self.condition}/{self.encoder}/seed{self.seed}"


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
    """The annotators whose annotation tables an AL run reads: its own when precomputed (a routed
    annotator's primary and fallback tables: it routes round by round during the run); the
    human and simulated ones of its tree when lazy (LLMs are asked during the run)."""
    name = config["conditions"][condition]["annotator"]
    if annotation_mode(config, condition) == "precomputed":
        spec = config["annotators"][name]
        return member_annotators(spec) if spec["kind"] == "routed" else [name]
    return [a for a in annotator_tree(config["annotators"], name)
            if config["annotators"][a]["kind"] in TABLE_KINDS]


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
            stack.extend(member_annotators(annotators[current]))

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

