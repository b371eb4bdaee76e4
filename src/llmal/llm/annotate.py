"""Annotate items with an LLM: requests -> cache -> executor -> parse -> labels and cost.

Flow: render one request per item (custom_id = hash of the body), look every custom_id up in the
response cache, send only the uncached ones (identical bodies once) through the executor, whose
every response line is written to the cache the moment it arrives, then parse all responses
strictly and price them from their reported usage. The result is an annotation table
(llmal.tables contract) with status ok / invalid / failed per item; labels are never guessed.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..tables import annotation_cost, make_annotations
from .cache import ResponseCache, is_success
from .cost import is_batch, price_for
from .demonstrations import demo_pool_of, knn_demonstrations
from .executors import make_executor
from .executors.base import Executor, ResponseLine, error_line
from .executors.openai_common import api_key_from_env, mask_secrets
from .parse import parse_chat_body, usage_of
from .prompts import Demonstration, PromptTemplate, load_prompt
from .requests import build_requests


class AnnotationError(ValueError):
    """An LLM annotator cannot run as configured; the message names the key at fault."""


def sample_items(items: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """A seeded sample of n items in their original order (all items if n is None or >= len)."""
    if n is None or n >= len(items):
        return items
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(items), size=int(n), replace=False))
    return items.iloc[idx]


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


def _redactor(spec: Mapping[str, Any]) -> Callable[[str], str]:
    """Masks the annotator's API key (as the executors send it) in logged and stored text."""
    secret = api_key_from_env(spec)
    return lambda text: mask_secrets(text, secret)


def annotate_with_llm(items: pd.DataFrame, *, spec: Mapping[str, Any], label_names: Sequence[str],
                      positive: str, prompts_dir: Path, prices: Mapping[str, Any] | None,
                      cache_path: Path, state_dir: Path,
                      embeddings: tuple[np.ndarray, np.ndarray] | None = None,
                      demo_pool: pd.DataFrame | None = None, log: Callable[[str], None] = print,
                      name: str | None = None, executor: Executor | None = None) -> pd.DataFrame:
    """The annotation table of `items` (columns id, text) by the LLM annotator `spec`.

    `executor` replaces the one `spec['kind']` names (for tests and custom backends).
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
    redact = _redactor(spec)

    items = sample_items(items, spec.get("limit"), int(spec.get("seed", 0)))
    demos = None
    if spec.get("demonstrations"):
        demos = choose_demonstrations(items, spec["demonstrations"], embeddings, demo_pool, where)
    plan = build_requests(items, template, spec, label_names, positive, demos)

    cache = ResponseCache(cache_path)
    try:
        cached = cache.get_many(line["custom_id"] for line in plan.lines)
        pending = [line for line in plan.lines if line["custom_id"] not in cached]
        log(f"{name}: {len(plan.item_ids)} items, {len(plan.lines)} distinct requests, "
            f"{len(cached)} cached, {len(pending)} to send ({kind}, {model}, prompt "
            f"{template.name}@{template.hash})")
        fresh: dict[str, ResponseLine] = {}
        if pending:
            run_executor(executor or make_executor(spec, state_dir=Path(state_dir)), pending,
                         cache, kind, fresh, log=lambda m: log(f"{name}: {redact(m)}"))
    finally:
        cache.close()

    responses: dict[str, tuple[ResponseLine, str]] = {
        cid: (c.line, c.executor) for cid, c in cached.items()}
    for line in pending:
        cid = line["custom_id"]
        got = fresh.get(cid) or error_line(cid, "missing", "the executor returned no response")
        responses[cid] = (got, kind)

    rows = [_row(item_id, cid, responses[cid], template, label_names, positive, price, model, redact)
            for item_id, cid in zip(plan.item_ids, plan.custom_ids)]
    table = make_annotations(rows)
    log(f"{name}: {summary_line(table)}")
    reasons = Counter(r["_reason"] for r in rows if r["_reason"])
    if reasons:
        log(f"{name}: not ok because " + "; ".join(f"{n}x {r}" for r, n in reasons.most_common(5)))
    return table


class CacheStore:
    """The store handed to an executor: response lines go to the cache at once and into `fresh`.

    `store(line)` commits one line, `store.many(lines)` a whole batch file in one transaction.
    A successful line whose custom_id this run did not ask for (a resumed batch holding requests
    of an earlier, larger run) is cached all the same, since it was paid for and its custom_id is
    the hash of its request; other unknown lines are logged and dropped. The first answer wins.
    """

    def __init__(self, cache: ResponseCache, kind: str, wanted: set[str],
                 fresh: dict[str, ResponseLine], log: Callable[[str], None]) -> None:
        self.cache, self.kind, self.wanted, self.fresh, self.log = cache, kind, wanted, fresh, log

    def __call__(self, line: ResponseLine) -> None:
        self.many([line])

    def many(self, lines: Sequence[ResponseLine]) -> None:
        accepted: dict[str, ResponseLine] = {}
        paid_elsewhere: list[ResponseLine] = []
        for line in lines:
            cid = line.get("custom_id") if isinstance(line, dict) else None
            if cid not in self.wanted:
                if cid and is_success(line):
                    paid_elsewhere.append(line)
                else:
                    self.log(f"ignored a response line with unknown custom_id {str(cid)[:20]!r}")
                continue
            if any(cid in seen and is_success(seen[cid]) for seen in (self.fresh, accepted)):
                continue  # first answer wins, as in the cache
            accepted[cid] = line
        self.cache.put_many([*accepted.values(), *paid_elsewhere], self.kind)   # committed first
        self.fresh.update(accepted)


def run_executor(executor: Executor, pending: Sequence[dict[str, Any]], cache: ResponseCache,
                 kind: str, fresh: dict[str, ResponseLine], log: Callable[[str], None]) -> None:
    """Send `pending`; every response line goes to the cache at once and into `fresh`."""
    wanted = {line["custom_id"] for line in pending}
    executor.run(pending, CacheStore(cache, kind, wanted, fresh, log))


def _row(item_id: str, cid: str, response: tuple[ResponseLine, str], template: PromptTemplate, label_names: Sequence[str], positive: str, price: Any,
         model: str, redact: Callable[[str], str]) -> dict[str, Any]:
    line, producer = response
    row: dict[str, Any] = {"id": item_id, "label": pd.NA, "answers": {}, "model": model,
                           "prompt_hash": template.hash, "input_tokens": 0, "output_tokens": 0,
                           "cached_tokens": 0, "cost_usd": 0.0, "request_id": cid, "_reason": ""}
    if not is_success(line):
        err = line.get("error") or {}
        response_part = line.get("response") or {}
        code = err.get("code") or f"http_{response_part.get('status_code', '?')}"
        message = err.get("message") or json.dumps(response_part.get("body"), ensure_ascii=False)
        row.update(status="failed", raw=redact(f"{code}: {message}"), _reason=f"failed ({code})")
        return row  # nothing billed for a request that got no answer
    body = line["response"]["body"]
    n_in, n_out, n_cached = usage_of(body)
    row.update(input_tokens=n_in, output_tokens=n_out, cached_tokens=n_cached,
               # the full price: duplicate texts share this request and pay it once (tables.annotation_cost)
               cost_usd=price.cost(n_in, n_out, n_cached, batch=is_batch(producer)))
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
    return row


def counts(table: pd.DataFrame) -> dict[str, Any]:
    """ok / invalid / failed counts and total cost of an annotation table."""
    c = table["status"].value_counts()
    return {"n": int(len(table)), "ok": int(c.get("ok", 0)), "invalid": int(c.get("invalid", 0)),
            "failed": int(c.get("failed", 0)), "cost_usd": annotation_cost(table),
            "input_tokens": int(table["input_tokens"].sum()),
            "output_tokens": int(table["output_tokens"].sum())}


def summary_line(table: pd.DataFrame) -> str:
    c = counts(table)
    return (f"ok {c['ok']}, invalid {c['invalid']}, failed {c['failed']} of {c['n']}; "
            f"{c['input_tokens']} input + {c['output_tokens']} output tokens; "
            f"cost ${c['cost_usd']:.4f}")
