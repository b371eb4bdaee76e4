"""`llmal plan` for task multilabel: tokens and dollars of its LLM annotators before anything is
sent. The requests are those llmal.tasks.multilabel.llm sends (one per distinct text); input
tokens are the rendered messages and the response schema (llmal.llm.tokens), output tokens the
answer a correct annotator writes (the JSON of the item's gold label set) plus one end token and
the reasoning allowance, at most the output allowance, times `n`; the system message and the
schema are the static prefix a provider's prompt cache may serve (llmal.llm.plan_rows)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from llmal.llm.cost import Price
from llmal.llm.plan_rows import PlanRow, cached_per_request
from llmal.llm.profiles import output_allowance, reasoning_allowance
from llmal.llm.prompts import load_guidelines
from llmal.llm.tokens import TokenCounter
from llmal.tasks.multilabel.labels import names_of
from llmal.tasks.multilabel.llm import MultiLabelPrompt, load_multilabel_prompt, multilabel_requests


def plan_rows(name: str, spec: Mapping[str, Any], items: pd.DataFrame, labels: Mapping[str, Any], *,
              price: Price, counter: TokenCounter, demo_pool: Any, prompts_dir: Path,
              compare: Sequence[str] = (), targets: Sequence[str] = ()) -> list[PlanRow]:
    """The one row of a multi-label LLM annotator (its own template; `compare` is ignored)."""
    prompt = load_multilabel_prompt(str(spec.get("prompt", "multilabel_questions")), prompts_dir)
    return [estimate(name, spec, prompt, items, [str(n) for n in labels["names"]], price, counter,
                     load_guidelines(spec, prompts_dir), targets)]


def gold_answer(prompt: MultiLabelPrompt, gold: int, labels: Sequence[str]) -> str:
    chosen = names_of(max(int(gold), 0), labels)
    if prompt.answer == "questions":
        return json.dumps({n: "yes" if n in chosen else "no" for n in labels})
    return json.dumps({"labels": chosen})


def estimate(name: str, spec: Mapping[str, Any], prompt: MultiLabelPrompt, items: pd.DataFrame,
             labels: Sequence[str], price: Price, counter: TokenCounter, guidelines: str = "",
             targets: Sequence[str] = ()) -> PlanRow:
    lines, cids = multilabel_requests(items, spec, labels, prompt, guidelines)
    gold_of = dict(zip(cids, items["gold"].astype(int)))
    schema = counter.text(json.dumps(prompt.response_format(labels), separators=(",", ":")))
    n = int(spec.get("n") or 1)
    reasoning = reasoning_allowance(spec)
    input_tokens = output_tokens = reasoning_tokens = 0
    for cid, line in lines.items():
        input_tokens += counter.messages(line["body"]["messages"]) + schema
        answer = min(counter.text(gold_answer(prompt, gold_of[cid], labels)) + 1 + reasoning, output_allowance(spec))
        output_tokens += answer * n
        reasoning_tokens += min(reasoning, answer) * n
    prefix = counter.messages([{"role": "system", "content": prompt.system(labels, guidelines)}]) + schema
    cached = cached_per_request(prefix) * max(len(lines) - 1, 0)
    return PlanRow(name, str(spec["kind"]), str(spec["model"]), prompt.name, True, len(items), len(lines),
                   input_tokens, output_tokens, price.cost(input_tokens, output_tokens, 0, batch=False),
                   price.cost(input_tokens, output_tokens, 0, batch=True), counter.label, reasoning_tokens,
                   cached, price.cost(input_tokens, output_tokens, cached, batch=False),
                   price.cost(input_tokens, output_tokens, cached, batch=True), tuple(targets))
