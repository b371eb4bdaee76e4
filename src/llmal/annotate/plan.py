"""Estimate tokens and dollars of LLM annotation before anything is sent (`llmal plan`).

For each LLM annotator and prompt interface, the real requests are rendered for the items the
annotator would label (pool + dev, or its seeded `limit` sample), duplicates are dropped as the
executor would, input tokens are counted with the best available counter (tokens.py) and output
tokens are the longest possible answer object plus the reasoning allowance per request
(profiles.reasoning_allowance), times `n`. Dollars come from the config's price table.

Prompt caching: the static prefix (system message with questions and codebook, and the response
schema) is the same for every request. Assuming the provider caches it as OpenAI does (prompts
of at least PROMPT_CACHE_MIN tokens, cached in steps of PROMPT_CACHE_BLOCK tokens), every request
after the first reads that prefix at the `cached_input` price: the "cached" columns. Whether a
provider (or its Batch API) applies prompt caching is the config's assumption, not llmal's.
Each annotator also shows the targets that annotate it (conditions, agreement) or that none does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from llmal.annotate.run import demonstration_pool
from llmal.annotate.run import items_to_annotate
from llmal.config import LLM_KINDS
from llmal.config import annotation_targets
from llmal.llm.cost import Price
from llmal.llm.cost import is_batch
from llmal.llm.cost import price_for
from llmal.llm.demonstrations import demo_pool_of
from llmal.llm.executors.base import compact_json
from llmal.llm.profiles import output_allowance
from llmal.llm.profiles import reasoning_allowance
from llmal.llm.profiles import sample_specs
from llmal.llm.prompts import Demonstration
from llmal.llm.prompts import PromptTemplate
from llmal.llm.prompts import load_guidelines
from llmal.llm.prompts import load_prompt
from llmal.llm.requests import build_requests
from llmal.llm.tokens import TokenCounter
from llmal.llm.tokens import make_counter

COMPARED_INTERFACES = ("holistic", "two_question")
PROMPT_CACHE_MIN = 1024
PROMPT_CACHE_BLOCK = 128


@dataclass(frozen=True)
class PlanRow:
    annotator: str
    kind: str
    model: str
    interface: str
    configured: bool        # the interface the annotator's `prompt` names (else a comparison)
    n_items: int
    n_requests: int
    input_tokens: int
    output_tokens: int
    usd_online: float
    usd_batch: float
    counter: str
    reasoning_tokens: int = 0       # part of output_tokens
    cached_tokens: int = 0          # input tokens read from the provider's prompt cache, if it caches
    usd_online_cached: float | None = None
    usd_batch_cached: float | None = None
    targets: tuple[str, ...] = ()   # what annotates it: "condition NAME", "agreement"; () = nothing

    @property
    def usd(self) -> float:
        """What this annotator's executor would be billed."""
        return self.usd_batch if is_batch(self.kind) else self.usd_online

    @property
    def usd_cached(self) -> float:
        """The same with the static prefix read from the provider's prompt cache."""
        cached = self.usd_batch_cached if is_batch(self.kind) else self.usd_online_cached
        return self.usd if cached is None else cached

    @property
    def usd_per_item(self) -> float:
        return self.usd / self.n_items if self.n_items else 0.0

    @property
    def usd_cached_per_item(self) -> float:
        return self.usd_cached / self.n_items if self.n_items else 0.0


def max_answer_tokens(template: PromptTemplate, counter: TokenCounter) -> int:
    """Tokens of the longest answer object the schema allows, plus one end token."""
    longest = {q.name: max(q.choices, key=lambda c: counter.text(c)) for q in template.questions}
    return counter.text(compact_json(longest)) + 1


def fixed_demonstrations(demo_pool: pd.DataFrame | None, settings: Mapping[str, Any] | None,
                         ) -> list[Demonstration]:
    """Stand-in demonstrations for planning: the first k of the seeded gold pool.

    k-NN picks other examples per item, but of the same pool, so the token count is close."""
    if not settings or demo_pool is None or len(demo_pool) == 0:
        return []
    pool = demo_pool_of(demo_pool, settings)
    return [Demonstration(str(r.text), int(r.gold)) for r in pool.head(int(settings["k"])).itertuples()]


def cacheable_prefix_tokens(template: PromptTemplate, guidelines: str, counter: TokenCounter,
                            schema_tokens: int) -> int:
    """Tokens a provider can cache per request: the system message and the response schema."""
    system = template.render_system(guidelines)
    return (counter.messages([{"role": "system", "content": system}]) if system else 0) + schema_tokens


def cached_per_request(prefix_tokens: int) -> int:
    """What OpenAI-style prompt caching reads from its cache for a repeated prefix."""
    if prefix_tokens < PROMPT_CACHE_MIN:
        return 0
    return prefix_tokens // PROMPT_CACHE_BLOCK * PROMPT_CACHE_BLOCK


def estimate(name: str, spec: Mapping[str, Any], template: PromptTemplate, items: pd.DataFrame,
             label_names: Sequence[str], positive: str, price: Price, counter: TokenCounter,
             demos: Sequence[Demonstration] = (), guidelines: str = "",
             targets: Sequence[str] = ()) -> PlanRow:
    demo_map = {str(i): list(demos) for i in items["id"]} if demos else None
    specs = sample_specs(spec)   # `samples: N`: n = N, or N seeded requests per item
    lines = {line["custom_id"]: line for s in specs
             for line in build_requests(items, template, s, label_names, positive, demo_map,
                                        guidelines).lines}
    plan = build_requests(items, template, specs[0], label_names, positive, demo_map, guidelines)
    plan = type(plan)(list(lines.values()), plan.item_ids, plan.custom_ids)
    schema_tokens = counter.text(json.dumps(template.response_format(), separators=(",", ":")))
    input_tokens = sum(counter.messages(line["body"]["messages"]) + schema_tokens
                       for line in plan.lines)
    n = int(specs[0].get("n") or 1)
    reasoning = reasoning_allowance(spec)
    per_answer = min(max_answer_tokens(template, counter) + reasoning, output_allowance(spec))
    output_tokens = per_answer * n * len(plan.lines)
    reasoning_tokens = min(reasoning, per_answer) * n * len(plan.lines)
    cached = cached_per_request(cacheable_prefix_tokens(template, guidelines, counter, schema_tokens))
    cached_tokens = cached * max(len(plan.lines) - 1, 0)   # the first request fills the cache
    online = price.cost(input_tokens, output_tokens, 0, batch=False)
    batch = price.cost(input_tokens, output_tokens, 0, batch=True)
    return PlanRow(name, str(spec["kind"]), str(spec["model"]), template.name,
                   template.name == spec["prompt"], len(items), len(plan.lines), input_tokens,
                   output_tokens, online, batch, counter.label, reasoning_tokens, cached_tokens,
                   price.cost(input_tokens, output_tokens, cached_tokens, batch=False),
                   price.cost(input_tokens, output_tokens, cached_tokens, batch=True), tuple(targets))


def plan_annotators(config: Mapping[str, Any], items: pd.DataFrame, split: pd.DataFrame,
                    prompts_dir: Path, *, annotator: str | None = None,
                    compare: Iterable[str] = COMPARED_INTERFACES) -> list[PlanRow]:
    """Rows per LLM annotator x interface (its own prompt first, then the compared ones).

    Each annotator is planned on exactly the items the pipeline gives it (pool + dev, or its
    `limit` sample) and, with demonstrations, on its gold pool from the dev split. (A task with
    answers of its own plans its annotators itself: llmal.tasks.<task>.plugin.)"""
    annotators = config.get("annotators") or {}
    if annotator is not None and annotator not in annotators:
        raise KeyError(f"annotators.{annotator}: no such annotator (known: {sorted(annotators)})")
    labels = config["labels"]
    label_names, positive = [str(n) for n in labels["names"]], str(labels["positive"])
    rows: list[PlanRow] = []
    configured = {_plan_key(spec, str(spec.get("prompt"))) for spec in annotators.values()
                  if spec.get("kind") in LLM_KINDS}
    targets = annotation_targets(dict(config))
    for name, spec in annotators.items():
        if spec.get("kind") not in LLM_KINDS or (annotator is not None and name != annotator):
            continue
        price = price_for(str(spec["model"]), str(spec["kind"]), config.get("prices"))
        counter = make_counter(spec)
        subset = items_to_annotate(items, split, dict(spec))
        demo_settings = spec.get("demonstrations")
        demos = (fixed_demonstrations(demonstration_pool(items, split, dict(demo_settings)), demo_settings)
                 if demo_settings else [])
        interfaces = list(dict.fromkeys([str(spec["prompt"]), *compare]))
        guidelines = load_guidelines(spec, prompts_dir)
        for interface in interfaces:
            if interface != spec["prompt"] and (
                    not (Path(prompts_dir) / f"{interface}.yaml").exists()
                    or (annotator is None and _plan_key(spec, interface) in configured)):
                continue  # no such template, or another annotator already plans exactly this
            template = load_prompt(interface, prompts_dir)
            rows.append(estimate(name, spec, template, subset, label_names, positive, price,
                                 counter, demos, guidelines, targets.get(name, ())))
    return rows


def _plan_key(spec: Mapping[str, Any], interface: str) -> str:
    """Everything that decides the requests of an annotator, with `interface` as its prompt."""
    keys = ("kind", "model", "limit", "seed", "temperature", "max_tokens", "demonstrations",
            "guidelines", "request_profile", "max_completion_tokens", "reasoning_effort",
            "reasoning_allowance", "n", "samples", "request")
    return json.dumps({**{k: spec.get(k) for k in keys}, "prompt": interface}, sort_keys=True, default=str)


def lazy_bound(row: PlanRow, demands: Sequence[Any], n_pool: int, n_dev: int,
               shared: bool = True) -> tuple[int, float, str]:
    """(items, dollars, explanation): the most the lazy conditions' runs can buy from the
    annotator of `row` (LazyDemand of llmal.config). A run buys at most its schedule's labels
    (the pool for `full`) plus the dev split, and pays at most its budget_usd. With one item per
    request (`shared`) the response cache answers an item a second run asks again, so no item is
    paid twice across runs; with several per request (sentences_per_prompt) a run's requests
    pair its own items, so each run is counted in full."""
    price = row.usd_per_item
    per_run_items, per_run_usd, parts = [], [], []
    for d in demands:
        items = min((n_pool if d.labels is None else min(d.labels, n_pool)) + (n_dev if d.dev else 0),
                    row.n_items)
        usd = items * price if d.budget_usd is None else min(items * price, d.budget_usd)
        per_run_items += [items] * d.runs
        per_run_usd += [usd] * d.runs
        parts.append(f"{d.condition} ({d.runs} runs x <= {items:,}"
                     + (f", <= ${d.budget_usd:,.2f} each" if d.budget_usd is not None else "") + ")")
    items = min(sum(per_run_items), row.n_items) if shared else sum(per_run_items)
    usd = min(items * price, sum(per_run_usd))
    return items, usd, ", ".join(parts)


def format_plan(rows: Sequence[PlanRow], *, unit: str = "items", entity_answers: bool = False,
                lazy: Mapping[str, Sequence[Any]] | None = None,
                n_pool: int = 0, n_dev: int = 0, grouped: Iterable[str] = ()) -> str:
    """A plain-text report: one table, the targets and their bill, then $/item per interface
    (`unit`: what an item is called; `entity_answers`: answers are the gold entities). `lazy`: annotator ->
    the LazyDemand of the conditions that ask it during their runs (llmal.config.lazy_demand),
    bounded with the pool and dev sizes `n_pool`, `n_dev`; `grouped`: annotators that put several
    items in one request."""
    if not rows:
        return "no LLM annotators (kinds openai, openai_batch, vllm, local) in this config"
    header = ["annotator", "kind", "model", "interface", "items", "requests", "input tok",
              "output tok", "$ online", "$ batch", "$/item", "reasoning tok", "cached tok",
              "$ cached"]
    table = [header]
    for r in rows:
        mark = "" if r.configured else " (compare)"
        table.append([r.annotator, r.kind, r.model, r.interface + mark, f"{r.n_items:,}",
                      f"{r.n_requests:,}", f"{r.input_tokens:,}", f"{r.output_tokens:,}",
                      f"{r.usd_online:,.4f}", f"{r.usd_batch:,.4f}", f"{r.usd_per_item:.6f}",
                      f"{r.reasoning_tokens:,}", f"{r.cached_tokens:,}", f"{r.usd_cached:,.4f}"])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    configured = [r for r in rows if r.configured]
    annotated = [r for r in configured if r.targets]
    lines.append("")
    lines.append("targets (what `snakemake` annotates; $ as each executor is billed, without / with "
                 "the prompt prefix cached):")
    lazy, grouped = lazy or {}, set(grouped)
    lazy_usd = 0.0
    for r in configured:
        asked = lazy.get(r.annotator)
        if r.targets:
            lines.append(f"  {r.annotator}: ${r.usd:,.4f} / ${r.usd_cached:,.4f}  for "
                         + ", ".join(r.targets)
                         + (" (its lazy runs ask the same requests: answered from the cache)"
                            if asked and r.annotator not in grouped else ""))
        if asked and (not r.targets or r.annotator in grouped):
            shared = r.annotator not in grouped
            items, usd, how = lazy_bound(r, asked, n_pool, n_dev, shared)
            lazy_usd += usd
            lines.append(f"  {r.annotator}: asked during the AL runs (lazy) of {how}: at most "
                         f"{items:,} {unit} "
                         + ("(each paid once: the response cache is shared)" if shared else
                            "(several per request, paired within each run, so every run is counted in full: an upper bound)")
                         + f", at most ${usd:,.4f}")
        elif not r.targets:
            lines.append(f"  {r.annotator}: not annotated, $0 (no condition uses it; list it in "
                         "agreement.annotators to compare it)")
    lines.append(f"estimated bill (configured interfaces of the annotated annotators, $ as each "
                 f"executor is billed): ${sum(r.usd for r in annotated):,.4f} without prompt "
                 f"caching, ${sum(r.usd_cached for r in annotated):,.4f} with the prefix cached"
                 + (f"; plus at most ${lazy_usd:,.4f} asked during lazy AL runs" if lazy_usd else ""))
    lines.append("")
    lines.append("cost per item by prompt interface, per model and executor:")
    groups: dict[tuple[str, str], dict[str, PlanRow]] = {}
    for r in sorted(rows, key=lambda r: not r.configured):  # configured rows win
        groups.setdefault((r.model, r.kind), {}).setdefault(r.interface, r)
    for (model, kind), by_interface in groups.items():
        parts = [f"{i} ${r.usd_per_item:.6f}/item (${1000 * r.usd_per_item:.4f} per 1,000, "
                 f"${1000 * r.usd_cached_per_item:.4f} with the prefix cached; "
                 f"{(r.input_tokens + r.output_tokens) / max(r.n_items, 1):,.0f} tokens/item, "
                 f"{r.reasoning_tokens / max(r.n_items, 1):,.0f} reasoning)"
                 for i, r in sorted(by_interface.items())]
        ratio = ""
        two, hol = by_interface.get("two_question"), by_interface.get("holistic")
        if two and hol and hol.usd_per_item > 0:
            ratio = f"; two_question / holistic = {two.usd_per_item / hol.usd_per_item:.2f}x"
        lines.append(f"  {model} ({kind}): " + ", ".join(parts) + ratio)
    lines.append("")
    lines.append("token counters: " + "; ".join(
        f"{name}: {next(r.counter for r in rows if r.annotator == name)}"
        for name in dict.fromkeys(r.annotator for r in rows)))
    answer = ("the JSON of the gold entities of its sentences (what a correct annotator writes; "
              f"items are {unit})" if entity_answers else "the longest possible answer object")
    lines.append("input tokens include the chat overhead and the response schema; output tokens "
                 f"are {answer} plus the reasoning allowance per request "
                 "(annotator key reasoning_allowance, else by reasoning_effort), reasoning tokens "
                 "priced as output. 'cached' assumes the provider caches the static prefix "
                 f"(system message, codebook, schema) as OpenAI does: prompts of {PROMPT_CACHE_MIN}+ "
                 f"tokens, in {PROMPT_CACHE_BLOCK}-token steps, read at the cached_input price.")
    if any("APPROXIMATION" in r.counter for r in rows):
        lines.append("APPROXIMATION used: install the tokenizer files (TIKTOKEN_CACHE_DIR for "
                     "OpenAI models, annotator key `tokenizer` for open models) for exact counts.")
    return "\n".join(lines)
