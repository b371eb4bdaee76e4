"""LLM annotators of classification: prompt template -> requests -> responses -> labels and cost.

One request per item (llmal.llm.requests: the template's questions and answer schema, k-NN
demonstrations from the gold pool, custom_id = hash of the body; `samples: N` asks N times),
fetched through the task-free machinery of llmal.llm.fetch (response cache, in-flight
reservations, executor). Then every response is parsed strictly (llmal.llm.parse: the
template's questions, their choices) and mapped to a label by the template, and priced from its
reported usage with the annotator's own price and executor kind. The result is an annotation
table (llmal.contracts contract) with status ok / invalid / failed per item; labels are never
guessed.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.label_probs import label_distribution, sample_summary
from llmal.llm.cache import is_success
from llmal.llm.cost import is_batch, price_for
from llmal.llm.demonstrations import demo_pool_of, knn_demonstrations
from llmal.llm.executors.base import Executor, ResponseLine
from llmal.llm.fetch import (
    LLMRunStats,
    fetch_responses,
    finish_table,
    redactor,
    report_problems,
    sample_items,
)
from llmal.llm.logprobs import choice_probabilities
from llmal.llm.parse import ParsedAnswer, parse_chat_body, parse_chat_choices, reasoning_tokens_of, usage_of
from llmal.llm.profiles import sample_specs
from llmal.llm.prompts import Demonstration, PromptTemplate, load_guidelines, load_prompt
from llmal.llm.requests import RequestPlan, build_requests


class AnnotationError(ValueError):
    """An LLM annotator cannot run as configured; the message names the key at fault."""


def choose_demonstrations(items: pd.DataFrame, settings: Mapping[str, Any],
                          embeddings: tuple[np.ndarray, np.ndarray] | None,
                          demo_pool: pd.DataFrame | None, where: str) -> dict[str, list[Demonstration]]:
    """k-NN demonstrations per item id from the gold pool (settings: k, pool_size, seed, balanced)."""
    if embeddings is None or demo_pool is None:
        raise AnnotationError(f"{where}.demonstrations: needs embeddings and a gold demonstration "
                              "pool (the caller passes embeddings= and demo_pool=)")
    k = int(settings["k"])
    pool = demo_pool_of(demo_pool, settings)
    ids, matrix = embeddings
    neighbours = knn_demonstrations(items["id"].astype(str).tolist(), pool["id"].astype(str).tolist(),
                                    pool["gold"].astype(int).tolist(), [str(i) for i in ids],
                                    np.asarray(matrix), k, bool(settings.get("balanced", False)))
    by_id = {str(r.id): Demonstration(str(r.text), int(r.gold)) for r in pool.itertuples()}
    return {item: [by_id[d] for d in demos] for item, demos in neighbours.items()}


def annotate_with_llm(items: pd.DataFrame, *, spec: Mapping[str, Any], label_names: Sequence[str],
                      positive: str, prompts_dir: Path, prices: Mapping[str, Any] | None,
                      cache_path: Path, state_dir: Path,
                      embeddings: tuple[np.ndarray, np.ndarray] | None = None,
                      demo_pool: pd.DataFrame | None = None, log: Callable[[str], None] = print,
                      name: str | None = None, executor: Executor | None = None,
                      lease_s: float | None = None, cache_mode: str = "local") -> pd.DataFrame:
    """The annotation table of `items` (columns id, text) by the LLM annotator `spec`.

    `executor` replaces the one `spec['kind']` names (for tests and custom backends). Costs are
    priced from `prices` and the annotator's own kind (batch discount for openai_batch) for
    cached and fresh answers alike, so a label costs the same whenever it is read. What the call
    did (sent, cached, waited for other jobs, possibly billed) is `table.attrs["llm"]`
    (LLMRunStats.as_dict()).
    """
    name = name or str(spec.get("model", "llm"))
    where = f"annotators.{name}"
    kind = str(spec.get("kind"))
    for key in ("kind", "model", "prompt"):
        if key not in spec:
            raise AnnotationError(f"{where}.{key}: missing")
    model = str(spec["model"])
    template = load_prompt(str(spec["prompt"]), prompts_dir)
    template.check_labels(label_names, positive)
    price = price_for(model, kind, prices)  # before anything is sent: no unpriced bill
    redact = redactor(spec)
    guidelines = load_guidelines(spec, prompts_dir)

    items = sample_items(items, spec.get("limit"), int(spec.get("seed", 0)))
    demos = None
    if spec.get("demonstrations"):
        demos = choose_demonstrations(items, spec["demonstrations"], embeddings, demo_pool, where)
    plans = [build_requests(items, template, s, label_names, positive, demos, guidelines)
             for s in sample_specs(spec)]
    plan = RequestPlan(list({line["custom_id"]: line for p in plans for line in p.lines}.values()),
                       plans[0].item_ids, [cid for p in plans for cid in p.custom_ids])
    stats = LLMRunStats(items=len(plan.item_ids), requests=len(plan.lines))
    responses = fetch_responses(plan.lines, plan.custom_ids, spec, stats, cache_path=cache_path,
                                state_dir=state_dir, name=name, what=f"{len(plan.item_ids)} items",
                                prompt=f"{template.name}@{template.hash}", log=log,
                                executor=executor, lease_s=lease_s,
                                cache_mode=cache_mode)

    rows = [_row(item_id, cid, responses[cid], template, label_names, positive, price,
                 is_batch(kind), model, redact)
            for item_id, cid in zip(plan.item_ids, plans[0].custom_ids)]
    if int(spec.get("samples") or 1) > 1:
        rows = [_sampled_row(row, [responses[p.custom_ids[i]] for p in plans], template, label_names,
                             positive, price, is_batch(kind), redact)
                for i, row in enumerate(rows)]
    table = finish_table(rows, stats, name=name, log=log)
    reasons = Counter(r["_reason"] for r in rows if r["_reason"])
    if reasons:
        log(f"{name}: not ok because " + "; ".join(f"{n}x {r}" for r, n in reasons.most_common(5)))
    report_problems(stats, name=name, log=log)
    return table


def _row(item_id: str, cid: str, line: ResponseLine, template: PromptTemplate,
         label_names: Sequence[str], positive: str, price: Any, batch: bool, model: str,
         redact: Callable[[str], str]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": item_id, "label": pd.NA, "answers": {}, "model": model,
                           "prompt_hash": template.hash, "input_tokens": 0, "output_tokens": 0,
                           "cached_tokens": 0, "reasoning_tokens": 0, "cost_usd": 0.0,
                           "request_id": cid, "_reason": ""}
    if not is_success(line):
        err = line.get("error") or {}
        response_part = line.get("response") or {}
        code = err.get("code") or f"http_{response_part.get('status_code', '?')}"
        message = err.get("message") or json.dumps(response_part.get("body"), ensure_ascii=False)
        row.update(status="failed", raw=redact(f"{code}: {message}"), _reason=f"failed ({code})")
        return row  # nothing billed for a request that got no answer
    body = line["response"]["body"]
    n_in, n_out, n_cached = usage_of(body)
    # completion_tokens include the reasoning tokens: they are priced as output
    row.update(input_tokens=n_in, output_tokens=n_out, cached_tokens=n_cached,
               reasoning_tokens=reasoning_tokens_of(body),
               # the full price: duplicate texts share this request and pay it once (tables.annotation_cost)
               cost_usd=price.cost(n_in, n_out, n_cached, batch=batch))
    parsed = parse_chat_body(body, template.questions)
    row["raw"] = redact(parsed.raw)
    if not parsed.ok:
        row.update(status="invalid", _reason=parsed.reason)
        return row
    row["answers"] = parsed.answers
    label = template.label_of(parsed.answers, label_names, positive)
    if label is None:
        row.update(status="invalid", _reason="the answer maps to no label")
        return row
    row.update(status="ok", label=label)
    row["probs"] = answer_probs(body["choices"][0], parsed.answers, template, label_names, positive)
    return row


def answer_probs(choice: Any, answers: Mapping[str, str], template: PromptTemplate,
                 label_names: Sequence[str], positive: str) -> dict[str, Any]:
    """The probs cell of one parsed completion choice: per-question choice probabilities from its
    logprobs and the label distribution they imply ({} without logprobs)."""
    choices = choice_probabilities(choice, answers, template.questions)
    if not choices:
        return {}
    label = label_distribution(choices, answers, template.questions,
                               lambda a: template.label_of(a, label_names, positive), label_names)
    return {"choices": choices, **({"label": label} if label else {})}


def _sampled_row(first: dict[str, Any], lines: Sequence[ResponseLine], template: PromptTemplate,
                 label_names: Sequence[str], positive: str, price: Any, batch: bool,
                 redact: Callable[[str], str]) -> dict[str, Any]:
    """One item asked N times (`samples`): the majority label over the samples that gave one
    (a tie goes to the label sampled first), the vote shares and the agreement rate in `probs`,
    tokens and cost summed over the item's requests (each priced in full, like any request)."""
    row = dict(first)
    success = [line for line in lines if is_success(line)]
    if len(lines) > 1:
        row["request_id"] = custom_id_group([str(line.get("custom_id")) for line in lines])
        row.update(input_tokens=0, output_tokens=0, cached_tokens=0, reasoning_tokens=0, cost_usd=0.0)
        for line in success:
            body = line["response"]["body"]
            n_in, n_out, n_cached = usage_of(body)
            row["input_tokens"] += n_in
            row["output_tokens"] += n_out
            row["cached_tokens"] += n_cached
            row["reasoning_tokens"] += reasoning_tokens_of(body)
            row["cost_usd"] += price.cost(n_in, n_out, n_cached, batch=batch)
    if not success:
        return row
    parsed: list[tuple[Any, ParsedAnswer]] = []
    for line in success:
        body = line["response"]["body"]
        parsed += parse_chat_choices(body, template.questions) if len(lines) == 1 else \
            [(body["choices"][0] if body.get("choices") else None, parse_chat_body(body, template.questions))]
    labels = [template.label_of(p.answers, label_names, positive) if p.ok else None for _, p in parsed]
    summary = sample_summary(labels, label_names)
    valid = [(c, p, lab) for (c, p), lab in zip(parsed, labels) if lab is not None]
    row["raw"] = redact(parsed[0][1].raw if parsed else "")
    if not valid:
        row.update(status="invalid", label=pd.NA, answers={}, probs=summary,
                   _reason=row["_reason"] or "no sample maps to a label")
        return row
    counts = Counter(lab for _, _, lab in valid)
    top = max(counts.values())
    label = next(lab for _, _, lab in valid if counts[lab] == top)
    choice, answer, _ = next(v for v in valid if v[2] == label)
    probs = answer_probs(choice, answer.answers, template, label_names, positive)
    row.update(status="ok", label=label, _reason="",
               answers=answer.answers,
               probs={**probs, **summary, "samples": [None if lab is None else label_names[lab] for lab in labels]})
    return row


def custom_id_group(custom_ids: Sequence[str]) -> str:
    """One request id for an item asked in several requests (rows of duplicate texts share it)."""
    return "samples:" + hashlib.sha256("|".join(custom_ids).encode()).hexdigest()
