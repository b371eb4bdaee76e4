"""Estimate tokens and dollars of LLM annotation before anything is sent (`llmal plan`).

For each LLM annotator and prompt interface, the real requests are rendered for the items the
annotator would label (pool + dev, or its seeded `limit` sample), duplicates are dropped as the
executor would, input tokens are counted with the best available counter (tokens.py) and output
tokens are the longest possible answer object. Dollars come from the config's price table.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from ..annotators.run import demonstration_pool, items_to_annotate
from ..config import LLM_KINDS
from .cost import Price, is_batch, price_for
from .demonstrations import demo_pool_of
from .executors.base import compact_json
from .prompts import Demonstration, PromptTemplate, load_prompt
from .requests import DEFAULT_MAX_TOKENS, build_requests
from .tokens import TokenCounter, make_counter

COMPARED_INTERFACES = ("holistic", "two_question")


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

    @property
    def usd(self) -> float:
        """What this annotator's executor would be billed."""
        return self.usd_batch if is_batch(self.kind) else self.usd_online

    @property
    def usd_per_item(self) -> float:
        return self.usd / self.n_items if self.n_items else 0.0


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


def estimate(name: str, spec: Mapping[str, Any], template: PromptTemplate, items: pd.DataFrame,
             label_names: Sequence[str], positive: str, price: Price, counter: TokenCounter,
             demos: Sequence[Demonstration] = ()) -> PlanRow:
    demo_map = {str(i): list(demos) for i in items["id"]} if demos else None
    plan = build_requests(items, template, spec, label_names, positive, demo_map)
    schema_tokens = counter.text(json.dumps(template.response_format(), separators=(",", ":")))
    input_tokens = sum(counter.messages(line["body"]["messages"]) + schema_tokens
                       for line in plan.lines)
    per_answer = min(max_answer_tokens(template, counter), int(spec.get("max_tokens", DEFAULT_MAX_TOKENS)))
    output_tokens = per_answer * len(plan.lines)
    online = price.cost(input_tokens, output_tokens, 0, batch=False)
    batch = price.cost(input_tokens, output_tokens, 0, batch=True)
    return PlanRow(name, str(spec["kind"]), str(spec["model"]), template.name,
                   template.name == spec["prompt"], len(items), len(plan.lines), input_tokens,
                   output_tokens, online, batch, counter.label)


def plan_annotators(config: Mapping[str, Any], items: pd.DataFrame, split: pd.DataFrame,
                    prompts_dir: Path, *, annotator: str | None = None,
                    compare: Iterable[str] = COMPARED_INTERFACES) -> list[PlanRow]:
    """Rows per LLM annotator x interface (its own prompt first, then the compared ones).

    Each annotator is planned on exactly the items the pipeline gives it (pool + dev, or its
    `limit` sample) and, with demonstrations, on its gold pool from the dev split."""
    annotators = config.get("annotators") or {}
    if annotator is not None and annotator not in annotators:
        raise KeyError(f"annotators.{annotator}: no such annotator (known: {sorted(annotators)})")
    labels = config["labels"]
    label_names, positive = [str(n) for n in labels["names"]], str(labels["positive"])
    rows: list[PlanRow] = []
    configured = {_plan_key(spec, str(spec.get("prompt"))) for spec in annotators.values()
                  if spec.get("kind") in LLM_KINDS}
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
        for interface in interfaces:
            if interface != spec["prompt"] and (
                    not (Path(prompts_dir) / f"{interface}.yaml").exists()
                    or (annotator is None and _plan_key(spec, interface) in configured)):
                continue  # no such template, or another annotator already plans exactly this
            template = load_prompt(interface, prompts_dir)
            rows.append(estimate(name, spec, template, subset, label_names, positive, price,
                                 counter, demos))
    return rows


def _plan_key(spec: Mapping[str, Any], interface: str) -> str:
    """Everything that decides the requests of an annotator, with `interface` as its prompt."""
    keys = ("kind", "model", "limit", "seed", "temperature", "max_tokens", "demonstrations")
    return json.dumps({**{k: spec.get(k) for k in keys}, "prompt": interface}, sort_keys=True, default=str)


def format_plan(rows: Sequence[PlanRow]) -> str:
    """A plain-text report: one table, then $/item of each interface side by side per model."""
    if not rows:
        return "no LLM annotators (kinds openai, openai_batch, vllm, local) in this config"
    header = ["annotator", "kind", "model", "interface", "items", "requests", "input tok",
              "output tok", "$ online", "$ batch", "$/item"]
    table = [header]
    for r in rows:
        mark = "" if r.configured else " (compare)"
        table.append([r.annotator, r.kind, r.model, r.interface + mark, f"{r.n_items:,}",
                      f"{r.n_requests:,}", f"{r.input_tokens:,}", f"{r.output_tokens:,}",
                      f"{r.usd_online:,.4f}", f"{r.usd_batch:,.4f}", f"{r.usd_per_item:.6f}"])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    configured = [r for r in rows if r.configured]
    lines.append("")
    lines.append(f"estimated bill (configured interfaces, $ as each executor is billed): "
                 f"${sum(r.usd for r in configured):,.4f}")
    lines.append("")
    lines.append("cost per item by prompt interface, per model and executor:")
    groups: dict[tuple[str, str], dict[str, PlanRow]] = {}
    for r in sorted(rows, key=lambda r: not r.configured):  # configured rows win
        groups.setdefault((r.model, r.kind), {}).setdefault(r.interface, r)
    for (model, kind), by_interface in groups.items():
        parts = [f"{i} ${r.usd_per_item:.6f}/item (${1000 * r.usd_per_item:.4f} per 1,000; "
                 f"{(r.input_tokens + r.output_tokens) / max(r.n_items, 1):,.0f} tokens/item)"
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
    lines.append("input tokens include the chat overhead and the response schema; output tokens "
                 "are the longest possible answer object; no prompt caching assumed.")
    if any("APPROXIMATION" in r.counter for r in rows):
        lines.append("APPROXIMATION used: install the tokenizer files (TIKTOKEN_CACHE_DIR for "
                     "OpenAI models, annotator key `tokenizer` for open models) for exact counts.")
    return "\n".join(lines)
