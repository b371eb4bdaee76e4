"""`llmal plan` for classification: tokens and dollars of one LLM annotator per prompt interface.

The real requests are rendered (llmal.llm.requests, as tasks.classification.llm sends them) for
the items the annotator would label, duplicates are dropped as the executor would, input tokens
are counted with the best available counter (llmal.llm.tokens) and output tokens are the longest
possible answer object plus the reasoning allowance per request (profiles.reasoning_allowance),
times `n`. Dollars come from the config's price table; the prompt-caching columns follow
llmal.llm.plan_rows. Besides the annotator's own prompt, the plan prices the same annotator with
other interfaces (COMPARED_INTERFACES: holistic versus two questions, S0).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from llmal.llm.cost import Price
from llmal.llm.demonstrations import demo_pool_of
from llmal.llm.executors.base import compact_json
from llmal.llm.plan_rows import PlanRow, cached_per_request
from llmal.llm.profiles import output_allowance, reasoning_allowance, sample_specs
from llmal.llm.prompts import Demonstration, PromptTemplate, load_guidelines, load_prompt
from llmal.llm.requests import build_requests
from llmal.llm.tokens import TokenCounter

COMPARED_INTERFACES = ("holistic", "two_question")


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


def estimate(name: str, spec: Mapping[str, Any], template: PromptTemplate, items: pd.DataFrame,
             label_names: Sequence[str], positive: str, price: Price, counter: TokenCounter,
             demos: Sequence[Demonstration] = (), guidelines: str = "",
             targets: Sequence[str] = ()) -> PlanRow:
    """The row of annotator `name` asking `items` through `template`."""
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


def plan_rows(name: str, spec: Mapping[str, Any], items: pd.DataFrame, labels: Mapping[str, Any], *,
              price: Price, counter: TokenCounter, demo_pool: pd.DataFrame | None, prompts_dir: Path,
              compare: Sequence[str] = (), targets: Sequence[str] = ()) -> list[PlanRow]:
    """Rows of one annotator: its own prompt first, then each interface of `compare` that has a
    template in `prompts_dir`; with demonstrations, the first k of its gold pool stand in."""
    label_names, positive = [str(n) for n in labels["names"]], str(labels["positive"])
    demos = fixed_demonstrations(demo_pool, spec.get("demonstrations"))
    guidelines = load_guidelines(spec, prompts_dir)
    rows = []
    for interface in dict.fromkeys([str(spec["prompt"]), *compare]):
        if interface != spec["prompt"] and not (Path(prompts_dir) / f"{interface}.yaml").exists():
            continue
        rows.append(estimate(name, spec, load_prompt(interface, prompts_dir), items, label_names,
                             positive, price, counter, demos, guidelines, targets))
    return rows


def price_per_item(name: str, spec: Mapping[str, Any], sample: pd.DataFrame, labels: Mapping[str, Any],
                   price: Price, counter: TokenCounter, demo_pool: pd.DataFrame | None,
                   prompts_dir: Path) -> float:
    """The price of one item a lazy oracle quotes before buying: the plan's estimate of its own
    prompt over `sample` (without the guidelines, as the quote always was)."""
    demos = fixed_demonstrations(demo_pool, spec.get("demonstrations")) if demo_pool is not None else []
    row = estimate(name, spec, load_prompt(str(spec["prompt"]), prompts_dir), sample.reset_index(drop=True),
                   labels["names"], labels.get("positive"), price, counter, demos)
    return row.usd_per_item
