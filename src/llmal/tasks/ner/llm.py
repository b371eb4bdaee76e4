"""LLM annotators of sentences (task: ner): request -> cache -> executor -> strict span parsing.

Requests go through the same path as every LLM annotator (llmal.llm: batch-JSONL request lines
whose custom_id is the hash of the body, the response cache under the backend identity, the
executors of `kind`, prices from usage). The prompt template (config/prompts/ner.yaml, or a
.yaml path) has a system message, k-NN demonstrations from the gold pool (S3) and the input;
the JSON schema of `response_format` asks for `{"entities": [{"span": str, "type": enum}]}`,
the type constrained to the declared entity types. With `sentences_per_prompt: n` (S2: 2) n
sentences share one request, numbered "[1] ...", and the answer is
`{"sentences": [{"entities": [...]}, ...]}` with one entry per sentence in order; every row of
that request carries its request_id and full price (paid once, llmal.contracts.annotation_cost).

Strict parsing, nothing coerced:
- an answer that is not that JSON object (not JSON, missing or extra keys, a wrong number of
  sentences, entities that are not a list) makes every sentence of the request `invalid`;
- an entity that is not {span: string, type: string}, a type outside the declared ones, a span
  whose words do not occur in the sentence, or a span overlapping one placed before it is an
  invalid span: dropped, and counted in the row's `invalid_spans`; the row stays ok with the
  valid spans, and the raw answer is kept in `raw`.
Alignment: a span's text is split on whitespace and matched against the sentence's tokens,
exactly (case and punctuation included). Repeated strings: the leftmost occurrence that no span
of this answer holds yet, so naming a string twice labels its first two occurrences in order.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from llmal.llm.cache import is_success
from llmal.llm.cost import is_batch, price_for
from llmal.llm.demonstrations import demo_pool_of, knn_demonstrations
from llmal.llm.fetch import (
    LLMRunStats,
    fetch_responses,
    finish_table,
    redactor,
    report_problems,
    sample_items,
)
from llmal.llm.parse import reasoning_tokens_of, usage_of
from llmal.llm.profiles import sampling_body
from llmal.llm.prompts import PROMPTS_DIR, canonical_json, load_guidelines
from llmal.llm.requests import request_line
from llmal.tasks.ner.data import TAGS, TOKENS
from llmal.tasks.ner.spans import Span, find_span, spans_json, tags_to_spans


class NerPrompt:
    def __init__(self, content: Mapping[str, Any], path: Path) -> None:
        for key in ("system", "user_template", "demonstration_format"):
            if not isinstance(content.get(key), str):
                raise ValueError(f"{path}: NER prompt template needs a string `{key}`")
        self.name = str(content.get("name") or path.stem)
        self.content = dict(content)
        self.hash = hashlib.sha256(canonical_json(self.content).encode()).hexdigest()[:12]

    def system(self, types: Sequence[str], guidelines: str) -> str:
        desc = self.content.get("type_descriptions") or {}
        listed = "\n".join(f"- {t}: {desc[t]}" if t in desc else f"- {t}" for t in types)
        return self.content["system"].replace("{types}", listed).replace("{guidelines}", guidelines).strip()

    def user(self, inputs: Sequence[str], demos: Sequence[tuple[str, str]]) -> str:
        shown = ""
        if demos:
            fmt = self.content["demonstration_format"]
            shown = "\n\n".join([str(self.content.get("demonstration_header", "Examples:"))] +
                                [fmt.replace("{input}", i).replace("{output}", o) for i, o in demos]) + "\n\n"
        text = inputs[0] if len(inputs) == 1 else "\n".join(f"[{n + 1}] {s}" for n, s in enumerate(inputs))
        return self.content["user_template"].replace("{demonstrations}", shown).replace("{input}", text)


def load_ner_prompt(name: str, prompts_dir: Path = PROMPTS_DIR) -> NerPrompt:
    path = Path(name) if name.endswith((".yaml", ".yml")) else Path(prompts_dir) / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"NER prompt template {path} does not exist")
    return NerPrompt(yaml.safe_load(path.read_text(encoding="utf-8")), path)


def entities_schema(types: Sequence[str]) -> dict[str, Any]:
    return {"type": "array", "items": {
        "type": "object", "additionalProperties": False, "required": ["span", "type"],
        "properties": {"span": {"type": "string"}, "type": {"type": "string", "enum": list(types)}}}}


def response_format(types: Sequence[str], n: int) -> dict[str, Any]:
    ents = {"type": "object", "additionalProperties": False, "required": ["entities"],
            "properties": {"entities": entities_schema(types)}}
    schema = ents if n == 1 else {
        "type": "object", "additionalProperties": False, "required": ["sentences"],
        "properties": {"sentences": {"type": "array", "minItems": n, "maxItems": n, "items": ents}}}
    return {"type": "json_schema", "json_schema": {"name": "entities", "strict": True, "schema": schema}}


def answer_json(tokens: Sequence[str], spans: Sequence[Span]) -> str:
    """How a gold sentence's entities are shown in a demonstration."""
    return json.dumps({"entities": [{"span": " ".join(tokens[s:e]), "type": t} for s, e, t in spans]},
                      ensure_ascii=False)


def parse_entities(entities: Any, tokens: Sequence[str], types: Sequence[str]) -> tuple[list[Span], list[str]]:
    """(valid spans, one reason per invalid span) of one sentence's entity list (module doc)."""
    spans: list[Span] = []
    bad: list[str] = []
    for ent in entities:
        if not isinstance(ent, dict) or set(ent) != {"span", "type"} or \
                not isinstance(ent.get("span"), str) or not isinstance(ent.get("type"), str):
            bad.append(f"not a {{span, type}} object: {json.dumps(ent, ensure_ascii=False)[:60]}")
            continue
        if ent["type"] not in types:
            bad.append(f"unknown type {ent['type']!r}")
            continue
        words = ent["span"].split()
        at = find_span(tokens, words, [])
        if at is None:
            bad.append(f"span {ent['span']!r} is not in the sentence")
            continue
        placed = find_span(tokens, words, spans)
        if placed is None:
            bad.append(f"span {ent['span']!r} overlaps another span")
            continue
        spans.append((placed[0], placed[1], ent["type"]))
    return sorted(spans), bad


def parse_answer(content: str, n: int) -> tuple[list[Any] | None, str]:
    """The entity lists of the n sentences of one answer, or (None, reason): an invalid answer."""
    try:
        obj = json.loads(content)
    except (json.JSONDecodeError, TypeError) as e:
        return None, f"not JSON ({getattr(e, 'msg', e)})"
    if n == 1:
        if not isinstance(obj, dict) or set(obj) != {"entities"} or not isinstance(obj["entities"], list):
            return None, 'expected {"entities": [...]}'
        return [obj["entities"]], ""
    if not isinstance(obj, dict) or set(obj) != {"sentences"} or not isinstance(obj["sentences"], list):
        return None, 'expected {"sentences": [...]}'
    if len(obj["sentences"]) != n:
        return None, f"{len(obj['sentences'])} sentences answered, {n} asked"
    out = []
    for s in obj["sentences"]:
        if not isinstance(s, dict) or set(s) != {"entities"} or not isinstance(s["entities"], list):
            return None, 'a sentence is not {"entities": [...]}'
        out.append(s["entities"])
    return out, ""


def _content(body: Any) -> str | None:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def annotate_ner_with_llm(items: pd.DataFrame, *, spec: Mapping[str, Any], types: Sequence[str],
                          prices: Mapping[str, Any] | None, cache_path: Path, state_dir: Path,
                          embeddings: tuple[np.ndarray, np.ndarray] | None = None,
                          demo_pool: pd.DataFrame | None = None, log: Callable[[str], None] = print,
                          name: str | None = None, executor: Any = None,
                          prompts_dir: Path = PROMPTS_DIR, cache_mode: str = "local") -> pd.DataFrame:
    """The annotation table of `items` (sentences: id, meta_tokens) by the LLM annotator `spec`;
    `cache_mode` (the config's top-level key): local, or network for a cache on a cluster
    filesystem (llmal.llm.cache)."""
    name = name or str(spec.get("model", "llm"))
    prompt = load_ner_prompt(str(spec.get("prompt", "ner")), prompts_dir)
    price = price_for(str(spec["model"]), str(spec["kind"]), prices)
    guidelines = load_guidelines(spec, prompts_dir)
    items = sample_items(items, spec.get("limit"), int(spec.get("seed", 0))).reset_index(drop=True)
    ids = items["id"].astype(str).tolist()
    tokens = {i: json.loads(t) for i, t in zip(ids, items[TOKENS])}
    demos = _demonstrations(ids, spec, embeddings, demo_pool)
    groups, lines, group_cid = ner_requests(ids, tokens, spec, types, prompt, guidelines, demos)
    stats = LLMRunStats(items=len(ids), requests=len(lines))
    responses = fetch_responses(list(lines.values()), group_cid, spec, stats, cache_path=cache_path,
                                state_dir=state_dir, name=name, what=f"{len(ids)} sentences",
                                prompt=f"{prompt.name}@{prompt.hash}", log=log, executor=executor,
                                cache_mode=cache_mode)
    redact = redactor(spec)
    rows: list[dict[str, Any]] = []
    for group, cid in zip(groups, group_cid):
        rows += _rows(group, cid, responses[cid], tokens, types, price, is_batch(str(spec["kind"])),
                      str(spec["model"]), prompt.hash, redact)
    table = finish_table(rows, stats, name=name, log=log,
                         note=f"; {sum(int(r.get('invalid_spans', 0)) for r in rows)} invalid spans")
    report_problems(stats, name=name, log=log)
    return table


def ner_requests(ids: Sequence[str], tokens: Mapping[str, Sequence[str]], spec: Mapping[str, Any],
                 types: Sequence[str], prompt: NerPrompt, guidelines: str,
                 demos: Mapping[str, Sequence[tuple[str, str]]],
                 ) -> tuple[list[list[str]], dict[str, Any], list[str]]:
    """The requests of these sentences: (groups of `sentences_per_prompt` ids, the unique request
    lines by custom_id, the custom_id of each group). A group shows the demonstrations of its
    sentences, each once. `llmal plan` renders the same requests (llmal.tasks.ner.plan)."""
    per_prompt = int(spec.get("sentences_per_prompt", 1))
    system = prompt.system(types, guidelines)
    groups = [list(ids[i:i + per_prompt]) for i in range(0, len(ids), per_prompt)]
    lines: dict[str, Any] = {}
    group_cid: list[str] = []
    for group in groups:
        shown = list(dict.fromkeys(d for i in group for d in demos.get(i, [])))   # each once
        body = {"model": str(spec["model"]),
                "messages": [{"role": "system", "content": system},
                             {"role": "user", "content": prompt.user([" ".join(tokens[i]) for i in group], shown)}],
                "response_format": response_format(types, len(group)), **sampling_body(spec)}
        line = request_line(body)
        lines.setdefault(line["custom_id"], line)
        group_cid.append(line["custom_id"])
    return groups, lines, group_cid


def shown_demonstrations(pool: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Gold sentences as demonstrations: id -> (input text, gold answer JSON)."""
    out = {}
    for r in pool.itertuples():
        toks = json.loads(getattr(r, TOKENS))
        out[str(r.id)] = (" ".join(toks), answer_json(toks, tags_to_spans(json.loads(getattr(r, TAGS)))))
    return out


def _demonstrations(ids: Sequence[str], spec: Mapping[str, Any],
                    embeddings: tuple[np.ndarray, np.ndarray] | None,
                    demo_pool: pd.DataFrame | None) -> dict[str, list[tuple[str, str]]]:
    """k-NN demonstrations per sentence from the gold pool: (input, gold output) pairs."""
    settings = spec.get("demonstrations")
    if not settings:
        return {}
    if embeddings is None or demo_pool is None:
        raise ValueError("demonstrations need embeddings and a gold demonstration pool")
    pool = demo_pool_of(demo_pool, settings)
    neighbours = knn_demonstrations(list(ids), pool["id"].astype(str).tolist(), [0] * len(pool),
                                    [str(i) for i in embeddings[0]], np.asarray(embeddings[1]),
                                    int(settings["k"]), False)
    shown = shown_demonstrations(pool)
    return {i: [shown[d] for d in ds] for i, ds in neighbours.items()}


def _rows(group: Sequence[str], cid: str, line: Mapping[str, Any], tokens: Mapping[str, list[str]],
          types: Sequence[str], price: Any, batch: bool, model: str, prompt_hash: str,
          redact: Callable[[str], str]) -> list[dict[str, Any]]:
    base = {"label": pd.NA, "model": model, "prompt_hash": prompt_hash, "request_id": cid,
            "spans": "", "invalid_spans": 0}
    if not is_success(dict(line)):
        err = line.get("error") or {}
        raw = redact(f"{err.get('code') or 'failed'}: {err.get('message') or ''}")
        return [{**base, "id": i, "status": "failed", "raw": raw} for i in group]
    body = line["response"]["body"]
    n_in, n_out, n_cached = usage_of(body)
    base.update(input_tokens=n_in, output_tokens=n_out, cached_tokens=n_cached,
                reasoning_tokens=reasoning_tokens_of(body),
                cost_usd=price.cost(n_in, n_out, n_cached, batch=batch))
    content = _content(body)
    raw = redact(content or "")
    lists, reason = parse_answer(content or "", len(group)) if content is not None else (None, "no content")
    if lists is None:
        return [{**base, "id": i, "status": "invalid", "raw": raw,
                 "answers": {"reason": reason}} for i in group]
    rows = []
    for i, entities in zip(group, lists):
        spans, bad = parse_entities(entities, tokens[i], types)
        rows.append({**base, "id": i, "status": "ok", "label": 0, "raw": raw, "spans": spans_json(spans),
                     "invalid_spans": len(bad), "answers": {"invalid_spans": bad} if bad else {}})
    return rows
