"""Estimate tokens and dollars of LLM annotation before anything is sent (`llmal plan`).

One orchestration for every task: each LLM annotator of a config is planned on exactly the
items the pipeline gives it (llmal.annotate.run: pool + dev, or its seeded `limit` sample) and,
with demonstrations, on its gold pool from the dev split; the task renders its real requests
for them and estimates tokens and dollars (Task.plan_rows, one PlanRow per prompt interface).
`format_plan` writes the report: the table, what annotates each annotator (its targets, or
what lazy AL runs may buy from it) and the bill, then $/item per interface.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from llmal.annotate.run import annotated_splits, demonstration_pool, items_to_annotate
from llmal.llm.cost import price_for
from llmal.llm.executors import LLM_KINDS
from llmal.llm.plan_rows import PROMPT_CACHE_BLOCK, PROMPT_CACHE_MIN, PlanRow
from llmal.llm.tokens import make_counter
from llmal.tasks.base import Task


def plan_annotators(config: Mapping[str, Any], items: pd.DataFrame, split: pd.DataFrame, task: Task,
                    prompts_dir: Path, *, targets: Mapping[str, Sequence[str]] | None = None,
                    annotator: str | None = None, compare: Iterable[str] = ()) -> list[PlanRow]:
    """Rows per LLM annotator x interface (its own prompt first, then those of `compare` that
    the task can price and that no other annotator already plans exactly as its own).

    `targets`: annotator -> what annotates it ("condition NAME", "agreement"; the caller reads
    them from the config); `annotator`: plan only this one."""
    annotators = config.get("annotators") or {}
    if annotator is not None and annotator not in annotators:
        raise KeyError(f"annotators.{annotator}: no such annotator (known: {sorted(annotators)})")
    llm = {name: spec for name, spec in annotators.items() if spec.get("kind") in LLM_KINDS}
    planned = {_plan_key(spec, str(spec.get("prompt"))) for spec in llm.values()}
    targets = targets or {}
    rows: list[PlanRow] = []
    for name, spec in llm.items():
        if annotator is not None and name != annotator:
            continue
        compared = [i for i in compare if i != spec.get("prompt")
                    and (annotator is not None or _plan_key(spec, i) not in planned)]
        demos = spec.get("demonstrations")
        rows += task.plan_rows(
            name, spec, items_to_annotate(items, split, dict(spec), annotated_splits(config)), config["labels"],
            price=price_for(str(spec["model"]), str(spec["kind"]), config.get("prices")),
            counter=make_counter(spec), prompts_dir=prompts_dir, compare=compared,
            demo_pool=demonstration_pool(items, split, dict(demos)) if demos else None,
            targets=tuple(targets.get(name, ())))
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
