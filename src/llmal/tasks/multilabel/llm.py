"""LLM annotators of label sets (task: multilabel): request -> cache -> executor -> strict parse.

Requests go through the path every LLM annotator takes (llmal.llm: batch-JSONL request lines
whose custom_id is the hash of the body, the response cache, the executors of `kind`, prices
from usage): ONE request per item whatever the number of labels. The template
(config/prompts/multilabel_questions.yaml or multilabel_list.yaml, or a .yaml path) declares
its answer (its combination rule):
- `questions`: one yes/no question per label, answered in one JSON object {label: "yes"|"no"};
  a label is in the set when answered "yes". Logprobs of the answers give each label's
  probability (probs: {"choices": {label: {"yes": p, "no": 1 - p}}}).
- `list`: {"labels": [label, ...]}, the set is the labels listed.
Strict parsing, nothing coerced: an answer that is not JSON, lacks a key or has another one, a
value that is not yes/no, `labels` that is not a list, an unknown or repeated label makes the row
`invalid` with the raw text kept and the reason in `answers`.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import yaml

from llmal.llm.cache import is_success
from llmal.llm.cost import is_batch, price_for
from llmal.llm.fetch import LLMRunStats, fetch_responses, finish_table, redactor, report_problems, sample_items
from llmal.llm.logprobs import choice_probabilities
from llmal.llm.parse import reasoning_tokens_of, usage_of
from llmal.llm.profiles import sampling_body
from llmal.llm.prompts import PROMPTS_DIR, Question, canonical_json, load_guidelines
from llmal.llm.requests import request_line
from llmal.tasks.multilabel.labels import names_of, to_mask

ANSWERS = ("questions", "list")
YES_NO = ("yes", "no")


class MultiLabelPrompt:
    def __init__(self, content: Mapping[str, Any], path: Path) -> None:
        for key in ("system", "user_template"):
            if not isinstance(content.get(key), str):
                raise ValueError(f"{path}: multi-label prompt template needs a string `{key}`")
        if content.get("answer") not in ANSWERS:
            raise ValueError(f"{path}: `answer` must be one of {list(ANSWERS)} (its combination rule)")
        if content["answer"] == "questions" and not isinstance(content.get("question"), str):
            raise ValueError(f"{path}: answer: questions needs a string `question` ({{label}}, {{description}})")
        self.name = str(content.get("name") or path.stem)
        self.answer = str(content["answer"])
        self.content = dict(content)
        self.hash = hashlib.sha256(canonical_json(self.content).encode()).hexdigest()[:12]

    def description(self, label: str) -> str:
        return str((self.content.get("label_descriptions") or {}).get(label) or label.replace("_", " "))

    def system(self, labels: Sequence[str], guidelines: str) -> str:
        if self.answer == "questions":
            lines = [f"- {self.content['question'].replace('{label}', n).replace('{description}', self.description(n))}"
                     for n in labels]
        else:
            lines = [f"- {n}: {self.description(n)}" for n in labels]
        return self.content["system"].replace("{labels}", "\n".join(lines)).replace("{guidelines}", guidelines).strip()

    def user(self, text: str) -> str:
        return self.content["user_template"].replace("{text}", text)

    def response_format(self, labels: Sequence[str]) -> dict[str, Any]:
        if self.answer == "questions":
            schema = {"type": "object", "additionalProperties": False, "required": list(labels),
                      "properties": {n: {"type": "string", "enum": list(YES_NO)} for n in labels}}
        else:
            schema = {"type": "object", "additionalProperties": False, "required": ["labels"],
                      "properties": {"labels": {"type": "array", "items": {"type": "string", "enum": list(labels)}}}}
        return {"type": "json_schema", "json_schema": {"name": "labels", "strict": True, "schema": schema}}


def load_multilabel_prompt(name: str, prompts_dir: Path = PROMPTS_DIR) -> MultiLabelPrompt:
    path = Path(name) if name.endswith((".yaml", ".yml")) else Path(prompts_dir) / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"multi-label prompt template {path} does not exist")
    return MultiLabelPrompt(yaml.safe_load(path.read_text(encoding="utf-8")), path)


def parse_label_answer(content: str, labels: Sequence[str], answer: str) -> tuple[int | None, dict[str, str], str]:
    """(label set, per-label yes/no answers, reason): the set is None for an invalid answer."""
    try:
        obj = json.loads(content)
    except (json.JSONDecodeError, TypeError) as e:
        return None, {}, f"not JSON ({getattr(e, 'msg', e)})"
    if not isinstance(obj, dict):
        return None, {}, "not a JSON object"
    if answer == "questions":
        missing = [n for n in labels if n not in obj]
        extra = [k for k in obj if k not in labels]
        if missing or extra:
            return None, {}, (f"missing key {missing[0]!r}" if missing else f"unknown key {extra[0]!r}")
        bad = [n for n in labels if obj[n] not in YES_NO]
        if bad:
            return None, {}, f"the answer to {bad[0]!r} is {obj[bad[0]]!r}, not yes or no"
        answers = {n: str(obj[n]) for n in labels}
        return to_mask(k for k, n in enumerate(labels) if answers[n] == "yes"), answers, ""
    if set(obj) != {"labels"}:
        return None, {}, ('missing key "labels"' if "labels" not in obj else
                          f"unknown key {sorted(set(obj) - {'labels'})[0]!r}")
    listed = obj["labels"]
    if not isinstance(listed, list):
        return None, {}, f'"labels" is not a list but {type(listed).__name__}'
    unknown = [v for v in listed if not isinstance(v, str) or v not in labels]
    if unknown:
        return None, {}, f"unknown label {unknown[0]!r}"
    if len(set(listed)) != len(listed):
        return None, {}, "a label listed twice"
    return (to_mask(labels.index(v) for v in listed),
            {n: ("yes" if n in listed else "no") for n in labels}, "")


def multilabel_requests(items: pd.DataFrame, spec: Mapping[str, Any], labels: Sequence[str],
                        prompt: MultiLabelPrompt, guidelines: str) -> tuple[dict[str, Any], list[str]]:
    """(the unique request lines by custom_id, each item's custom_id): one request per item,
    duplicate texts share one."""
    system = prompt.system(labels, guidelines)
    lines: dict[str, Any] = {}
    cids = []
    for text in items["text"].astype(str):
        body = {"model": str(spec["model"]),
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt.user(text)}],
                "response_format": prompt.response_format(labels), **sampling_body(spec)}
        line = request_line(body)
        lines.setdefault(line["custom_id"], line)
        cids.append(line["custom_id"])
    return lines, cids


def annotate_multilabel_with_llm(items: pd.DataFrame, *, spec: Mapping[str, Any], labels: Sequence[str],
                                 prices: Mapping[str, Any] | None, cache_path: Path, state_dir: Path,
                                 log: Callable[[str], None] = print, name: str | None = None,
                                 executor: Any = None, prompts_dir: Path = PROMPTS_DIR,
                                 cache_mode: str = "local") -> pd.DataFrame:
    """The annotation table of `items` (id, text) by the LLM annotator `spec`."""
    name = name or str(spec.get("model", "llm"))
    for key in ("demonstrations", "samples"):
        if spec.get(key) and not (key == "samples" and int(spec[key]) == 1):
            raise ValueError(f"annotators.{name}.{key}: not offered for task multilabel")
    prompt = load_multilabel_prompt(str(spec.get("prompt", "multilabel_questions")), prompts_dir)
    price = price_for(str(spec["model"]), str(spec["kind"]), prices)
    guidelines = load_guidelines(spec, prompts_dir)
    items = sample_items(items, spec.get("limit"), int(spec.get("seed", 0))).reset_index(drop=True)
    lines, cids = multilabel_requests(items, spec, labels, prompt, guidelines)
    stats = LLMRunStats(items=len(items), requests=len(lines))
    responses = fetch_responses(list(lines.values()), cids, spec, stats, cache_path=cache_path, state_dir=state_dir,
                                name=name, what=f"{len(items)} items", prompt=f"{prompt.name}@{prompt.hash}",
                                log=log, executor=executor, cache_mode=cache_mode)
    redact = redactor(spec)
    batch = is_batch(str(spec["kind"]))
    rows = [_row(str(i), cid, responses[cid], labels, prompt, price, batch, str(spec["model"]), redact)
            for i, cid in zip(items["id"].astype(str), cids)]
    table = finish_table(rows, stats, name=name, log=log)
    report_problems(stats, name=name, log=log)
    return table


def _row(item: str, cid: str, line: Mapping[str, Any], labels: Sequence[str], prompt: MultiLabelPrompt,
         price: Any, batch: bool, model: str, redact: Callable[[str], str]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": item, "label": pd.NA, "model": model, "prompt_hash": prompt.hash,
                           "request_id": cid, "answers": {}}
    if not is_success(dict(line)):
        err = line.get("error") or {}
        return {**row, "status": "failed", "raw": redact(f"{err.get('code') or 'failed'}: {err.get('message') or ''}")}
    body = line["response"]["body"]
    n_in, n_out, n_cached = usage_of(body)
    row.update(input_tokens=n_in, output_tokens=n_out, cached_tokens=n_cached,
               reasoning_tokens=reasoning_tokens_of(body), cost_usd=price.cost(n_in, n_out, n_cached, batch=batch))
    try:
        choice = body["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        choice, content = None, None
    if not isinstance(content, str):
        return {**row, "status": "invalid", "raw": "", "answers": {"reason": "no content"}}
    mask, answers, reason = parse_label_answer(content, labels, prompt.answer)
    if mask is None:
        return {**row, "status": "invalid", "raw": redact(content), "answers": {"reason": reason}}
    row.update(status="ok", label=mask, raw=redact(content),
               answers={"labels": names_of(mask, labels), **({"questions": answers} if prompt.answer == "questions" else {})})
    if prompt.answer == "questions":
        probs = choice_probabilities(choice, answers, [Question(n, n, YES_NO) for n in labels])
        if probs:
            row["probs"] = {"choices": probs}
    return row


def label_probability(probs_cell: str, labels: Sequence[str]) -> dict[str, float]:
    """Each label's probability in an annotation's probs cell (P(yes) of its question)."""
    choices = (json.loads(probs_cell or "{}") or {}).get("choices") or {}
    return {n: float(choices[n]["yes"]) for n in labels if isinstance(choices.get(n), dict) and "yes" in choices[n]}
