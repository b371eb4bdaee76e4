"""`llmal plan` for task ner: tokens and dollars of the NER LLM annotators before anything is sent.

The requests are the ones llmal.tasks.ner.llm sends (`ner_requests`: the NER prompt template, the
entity-type schema, `sentences_per_prompt` sentences per request, duplicates sent once), for
the sentences the annotator would label (pool + dev, or its seeded `limit` sample). With
`demonstrations`, every request shows the first k sentences of the seeded gold pool as a
stand-in for its k-NN neighbours (same pool, so about the same length).

- Input tokens: the rendered messages and the response schema, counted as for classification
  (llmal.llm.tokens).
- Output tokens per request: the answer a correct annotator writes, i.e. the JSON of the gold
  entities of its sentences (meta_tags), plus one end token and the reasoning allowance, at most
  the output allowance (max_tokens), times `n`.
- Prompt caching: the system message and the schema are the static prefix, priced as in
  llmal.llm.plan_rows.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from llmal.llm.cost import Price
from llmal.llm.demonstrations import demo_pool_of
from llmal.llm.plan_rows import PlanRow, cached_per_request
from llmal.llm.profiles import output_allowance, reasoning_allowance
from llmal.llm.prompts import load_guidelines
from llmal.llm.tokens import TokenCounter
from llmal.tasks.ner.data import TAGS, TOKENS
from llmal.tasks.ner.llm import (
    NerPrompt,
    load_ner_prompt,
    ner_requests,
    response_format,
    shown_demonstrations,
)
from llmal.tasks.ner.spans import tags_to_spans


def plan_rows(name: str, spec: Mapping[str, Any], items: pd.DataFrame, labels: Mapping[str, Any], *,
              price: Price, counter: TokenCounter, demo_pool: pd.DataFrame | None, prompts_dir: Path,
              compare: Sequence[str] = (), targets: Sequence[str] = ()) -> list[PlanRow]:
    """The one row of an NER LLM annotator: its own NER prompt (there are no other interfaces to
    compare, so `compare` is ignored); with demonstrations, the first k of its gold pool stand in."""
    types = [str(t) for t in labels["names"]]
    return [estimate_ner(name, spec, load_ner_prompt(str(spec.get("prompt", "ner")), prompts_dir), items,
                         types, price, counter, stand_in_demonstrations(demo_pool, spec.get("demonstrations")),
                         load_guidelines(spec, prompts_dir), targets)]


def estimate_ner(name: str, spec: Mapping[str, Any], prompt: NerPrompt, sentences: pd.DataFrame,
                 types: Sequence[str], price: Price, counter: TokenCounter,
                 demos: Sequence[tuple[str, str]] = (), guidelines: str = "",
                 targets: Sequence[str] = ()) -> PlanRow:
    ids = sentences["id"].astype(str).tolist()
    tokens = {i: json.loads(t) for i, t in zip(ids, sentences[TOKENS])}
    gold = {i: tags_to_spans(json.loads(t)) for i, t in zip(ids, sentences[TAGS])}
    groups, lines, cids = ner_requests(ids, tokens, spec, types, prompt, guidelines,
                                       {i: list(demos) for i in ids} if demos else {})
    first_group: dict[str, list[str]] = {}
    for cid, group in zip(cids, groups):
        first_group.setdefault(cid, group)
    n = int(spec.get("n") or 1)
    reasoning = reasoning_allowance(spec)
    input_tokens = output_tokens = reasoning_tokens = 0
    for cid, line in lines.items():
        group = first_group[cid]
        input_tokens += counter.messages(line["body"]["messages"]) + _schema_tokens(types, len(group), counter)
        answer = min(counter.text(_gold_answer(group, tokens, gold)) + 1 + reasoning, output_allowance(spec))
        output_tokens += answer * n
        reasoning_tokens += min(reasoning, answer) * n
    per_prompt = int(spec.get("sentences_per_prompt", 1))
    prefix = (counter.messages([{"role": "system", "content": prompt.system(types, guidelines)}])
              + _schema_tokens(types, per_prompt, counter))
    cached = cached_per_request(prefix) * max(len(lines) - 1, 0)   # the first request fills the cache
    return PlanRow(name, str(spec["kind"]), str(spec["model"]), prompt.name, True, len(ids), len(lines),
                   input_tokens, output_tokens, price.cost(input_tokens, output_tokens, 0, batch=False),
                   price.cost(input_tokens, output_tokens, 0, batch=True), counter.label, reasoning_tokens,
                   cached, price.cost(input_tokens, output_tokens, cached, batch=False),
                   price.cost(input_tokens, output_tokens, cached, batch=True), tuple(targets))


def _schema_tokens(types: Sequence[str], n: int, counter: TokenCounter) -> int:
    return counter.text(json.dumps(response_format(types, n), separators=(",", ":")))


def _gold_answer(group: Sequence[str], tokens: Mapping[str, Sequence[str]],
                 gold: Mapping[str, Sequence[tuple[int, int, str]]]) -> str:
    """The answer JSON of these sentences' gold entities, in the request's answer format."""
    def entities(i: str) -> list[dict[str, str]]:
        return [{"span": " ".join(tokens[i][s:e]), "type": t} for s, e, t in gold[i]]

    obj: Any = ({"entities": entities(group[0])} if len(group) == 1 else
                {"sentences": [{"entities": entities(i)} for i in group]})
    return json.dumps(obj, ensure_ascii=False)


def stand_in_demonstrations(candidates: pd.DataFrame | None,
                            settings: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The first k sentences of the seeded gold pool drawn from `candidates`, shown as (input,
    gold answer)."""
    if not settings or candidates is None:
        return []
    pool = demo_pool_of(candidates, settings).head(int(settings["k"]))
    return list(shown_demonstrations(pool).values())
