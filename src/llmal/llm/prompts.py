"""Prompt interfaces: templates under config/prompts/<name>.yaml rendered into chat messages.

Template keys (all strings unless noted):
  name                  must equal the file name without .yaml
  description           free text (optional)
  system                the system message; placeholders {questions}, {answer_format},
                        {guidelines}: everything here is the same for every item, so it forms
                        the prefix providers cache (put the questions here, the item last)
  questions             list of {name, text, choices: [str, ...]}; one request asks all of them
                        and the model answers with one JSON object {name: choice, ...}
  positive_if           a rule (see rules.py) -> the positive label if it holds, else the other
                        label (binary label sets only)
  label_from            alternative to positive_if: {question: NAME, map: {choice: label name}};
                        a choice missing from `map` (e.g. "unsure") makes the item invalid
  user_template         the user message; placeholders {text} (required), {questions},
                        {answer_format}, {demonstrations}

Guidelines (a codebook, annotator key `guidelines`) go where the system message says
{guidelines}, else at its end: in the cacheable prefix, before any item text.
  demonstration_header  line before the k-NN demonstrations (optional)
  demonstration_format  one demonstration; placeholders {text}, {label} (optional)
  demonstration_labels  label name, or "positive"/"negative", -> text shown as {label}
                        (default the label name)

The prompt hash is the sha256 of the template's canonical JSON (YAML comments do not count), so
editing a template changes every request body and thus every cache key.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from llmal.llm.rules import Rule, RuleError, parse_rule

# the shipped prompt interfaces (config/prompts/<name>.yaml); a template may also be given by path
PROMPTS_DIR = Path(__file__).resolve().parents[3] / "config" / "prompts"

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
QUESTION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
USER_PLACEHOLDERS = {"text", "questions", "answer_format", "demonstrations"}
DEMO_PLACEHOLDERS = {"text", "label"}
SYSTEM_PLACEHOLDERS = {"questions", "answer_format", "guidelines"}
KNOWN_KEYS = {"name", "description", "system", "questions", "positive_if", "label_from",
              "user_template", "demonstration_header", "demonstration_format",
              "demonstration_labels"}
HASH_CHARS = 16


class PromptError(ValueError):
    """A template is wrong or cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class Question:
    name: str
    text: str
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Demonstration:
    """One in-context example: a text and its gold label (index into the label names)."""
    text: str
    label: int


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    path: Path
    system: str
    questions: tuple[Question, ...]
    user_template: str
    positive_if: Rule | None
    label_from: tuple[str, dict[str, str]] | None
    demonstration_header: str
    demonstration_format: str
    demonstration_labels: dict[str, str]
    hash: str
    content: dict[str, Any] = field(repr=False)

    @property
    def question_names(self) -> list[str]:
        return [q.name for q in self.questions]

    # -- structured output ---------------------------------------------------------------
    def response_schema(self) -> dict[str, Any]:
        """JSON schema of the answer object: exactly the questions, each one of its choices."""
        return {
            "type": "object",
            "properties": {q.name: {"type": "string", "enum": list(q.choices)} for q in self.questions},
            "required": self.question_names,
            "additionalProperties": False,
        }

    def response_format(self) -> dict[str, Any]:
        """OpenAI `response_format` (strict JSON schema); vLLM and llama.cpp read it too."""
        return {"type": "json_schema",
                "json_schema": {"name": f"{self.name}_answer", "strict": True,
                                "schema": self.response_schema()}}

    # -- rendering -----------------------------------------------------------------------
    def answer_format(self) -> str:
        parts = [f'"{q.name}": ' + "|".join(f'"{c}"' for c in q.choices) for q in self.questions]
        return "{" + ", ".join(parts) + "}"

    def questions_block(self) -> str:
        lines = []
        for q in self.questions:
            options = " or ".join(f'"{c}"' for c in q.choices)
            lines.append(f'- "{q.name}": {q.text} (answer {options})')
        return "\n".join(lines)

    def demonstration_label(self, label: int, label_names: Sequence[str], positive: str) -> str:
        name = label_names[label]
        if name in self.demonstration_labels:
            return self.demonstration_labels[name]
        role = "positive" if name == positive else "negative"
        return self.demonstration_labels.get(role, name)

    def render_demonstrations(self, demos: Sequence[Demonstration], label_names: Sequence[str],
                              positive: str) -> str:
        if not demos:
            return ""
        blocks = [_fill(self.demonstration_format,
                        {"text": d.text, "label": self.demonstration_label(d.label, label_names, positive)})
                  for d in demos]
        header = f"{self.demonstration_header}\n\n" if self.demonstration_header else ""
        return header + "\n\n".join(blocks) + "\n\n"

    def render_system(self, guidelines: str = "") -> str:
        """The system message: the same for every item (the cacheable prefix)."""
        system = _fill(self.system, {"questions": self.questions_block(),
                                     "answer_format": self.answer_format(),
                                     "guidelines": guidelines})
        if guidelines and "{guidelines}" not in self.system:
            system = f"{system}\n\n{guidelines}" if system else guidelines
        return system

    def render_messages(self, text: str, demonstrations: Sequence[Demonstration] = (),
                        label_names: Sequence[str] = (), positive: str = "",
                        guidelines: str = "") -> list[dict[str, str]]:
        """The chat messages for one item (demonstrations need label_names and positive)."""
        user = _fill(self.user_template, {
            "text": text,
            "questions": self.questions_block(),
            "answer_format": self.answer_format(),
            "demonstrations": self.render_demonstrations(demonstrations, label_names, positive),
        })
        messages = []
        system = self.render_system(guidelines)
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": user})
        return messages

    # -- answers -> label ----------------------------------------------------------------
    def check_labels(self, label_names: Sequence[str], positive: str | None) -> None:
        """Fail early if the combination rule cannot produce labels of this label set
        (positive_if needs a positive class; label_from works without one)."""
        if self.positive_if is not None and not positive:
            raise PromptError(f"{self.path}: positive_if needs labels.positive (a two-class task); "
                              "use label_from for a task without a positive class")
        if positive and positive not in label_names:
            raise PromptError(f"{self.path}: positive label {positive!r} is not in {list(label_names)}")
        if self.positive_if is not None and len(label_names) != 2:
            raise PromptError(f"{self.path}: positive_if needs exactly two labels, the label set is "
                              f"{list(label_names)}; use label_from for more labels")
        if self.label_from is not None:
            for choice, label in self.label_from[1].items():
                if label not in label_names:
                    raise PromptError(f"{self.path}: label_from.map.{choice}: {label!r} is not a "
                                      f"label (labels: {list(label_names)})")

    def label_of(self, answers: Mapping[str, str], label_names: Sequence[str], positive: str) -> int | None:
        """Label index for validated answers; None when the answer maps to no label."""
        if self.positive_if is not None:
            pos = list(label_names).index(positive)
            return pos if self.positive_if.holds(answers) else 1 - pos
        assert self.label_from is not None
        question, mapping = self.label_from
        label = mapping.get(answers[question])
        return None if label is None else list(label_names).index(label)


def _fill(template: str, values: Mapping[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def template_path(name: str, prompts_dir: Path | str) -> Path:
    if name.endswith((".yaml", ".yml")):
        return Path(name)
    return Path(prompts_dir) / f"{name}.yaml"


def load_prompt(name: str, prompts_dir: Path | str) -> PromptTemplate:
    """Load and check config/prompts/<name>.yaml (or a path ending in .yaml)."""
    path = template_path(name, prompts_dir)
    if not path.exists():
        known = sorted(p.stem for p in Path(prompts_dir).glob("*.yaml")) if Path(prompts_dir).is_dir() else []
        raise PromptError(f"{path}: no such prompt template (known in {prompts_dir}: {known})")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise PromptError(f"{path}: not valid YAML: {e}") from None
    return parse_template(content, path)


def parse_template(content: Any, path: Path) -> PromptTemplate:
    def fail(key: str, msg: str) -> PromptError:
        return PromptError(f"{path}: {key}: {msg}")

    if not isinstance(content, dict):
        raise PromptError(f"{path}: a template is a mapping of keys")
    unknown = sorted(set(map(str, content)) - KNOWN_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown key (known: {sorted(KNOWN_KEYS)})")
    for key in ("name", "user_template", "questions"):
        if key not in content:
            raise fail(key, "missing")
    name = _string(content, "name", fail)
    if name != path.stem:
        raise fail("name", f"{name!r} must equal the file name {path.stem!r}")
    questions = _questions(content["questions"], fail)
    choices = {q.name: q.choices for q in questions}

    user_template = _string(content, "user_template", fail)
    _check_placeholders(user_template, USER_PLACEHOLDERS, "user_template", fail)
    if "{text}" not in user_template:
        raise fail("user_template", "must contain {text}")
    _check_placeholders(_string(content, "system", fail, ""), SYSTEM_PLACEHOLDERS, "system", fail)
    demo_format = _string(content, "demonstration_format", fail, "{text}\n{label}")
    _check_placeholders(demo_format, DEMO_PLACEHOLDERS, "demonstration_format", fail)
    demo_labels = content.get("demonstration_labels") or {}
    if not isinstance(demo_labels, dict) or not all(isinstance(v, str) for v in demo_labels.values()):
        raise fail("demonstration_labels", "a mapping label name (or positive/negative) -> text")

    if ("positive_if" in content) == ("label_from" in content):
        raise fail("positive_if", "give exactly one of positive_if and label_from")
    positive_if = None
    label_from = None
    if "positive_if" in content:
        try:
            positive_if = parse_rule(content["positive_if"], choices, f"{path}: positive_if")
        except RuleError as e:
            raise PromptError(str(e)) from None
    else:
        lf = content["label_from"]
        if not isinstance(lf, dict) or set(lf) != {"question", "map"} or not isinstance(lf["map"], dict):
            raise fail("label_from", "expected {question: NAME, map: {choice: label name}}")
        if lf["question"] not in choices:
            raise fail("label_from.question", f"{lf['question']!r} is not a question ({list(choices)})")
        for choice in lf["map"]:
            if choice not in choices[lf["question"]]:
                raise fail(f"label_from.map.{choice}", f"not a choice of {lf['question']!r}")
        label_from = (str(lf["question"]), {str(k): str(v) for k, v in lf["map"].items()})

    digest = hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()[:HASH_CHARS]
    return PromptTemplate(
        name=name, path=path, system=_string(content, "system", fail, ""), questions=questions,
        user_template=user_template, positive_if=positive_if, label_from=label_from,
        demonstration_header=_string(content, "demonstration_header", fail, ""),
        demonstration_format=demo_format, demonstration_labels=dict(demo_labels),
        hash=digest, content=content)


def _string(content: dict[str, Any], key: str, fail: Any, default: str | None = None) -> str:
    value = content.get(key, default)
    if not isinstance(value, str):
        raise fail(key, f"expected a string, got {type(value).__name__}")
    return value


def _questions(obj: Any, fail: Any) -> tuple[Question, ...]:
    if not isinstance(obj, list) or not obj:
        raise fail("questions", "a non-empty list of {name, text, choices}")
    out = []
    for i, q in enumerate(obj):
        key = f"questions[{i}]"
        if not isinstance(q, dict) or set(q) != {"name", "text", "choices"}:
            raise fail(key, "expected exactly the keys name, text, choices")
        if not isinstance(q["name"], str) or not QUESTION_NAME.match(q["name"]):
            raise fail(f"{key}.name", f"{q['name']!r} must match {QUESTION_NAME.pattern}")
        if q["name"] in ("all", "any", "not"):
            raise fail(f"{key}.name", f"{q['name']!r} is reserved for rules")
        if not isinstance(q["text"], str) or not q["text"].strip():
            raise fail(f"{key}.text", "a non-empty string")
        choices = q["choices"]
        if not isinstance(choices, list) or len(choices) < 2:
            raise fail(f"{key}.choices", "a list of at least two answers")
        for c in choices:
            if isinstance(c, bool):
                raise fail(f"{key}.choices", "got a boolean; quote yes/no in YAML (\"yes\")")
            if not isinstance(c, str) or not c.strip() or c != c.strip():
                raise fail(f"{key}.choices", f"{c!r}: answers are non-empty strings without outer spaces")
        if len({c.casefold() for c in choices}) != len(choices):
            raise fail(f"{key}.choices", "answers must differ (case-insensitively)")
        out.append(Question(q["name"], q["text"], tuple(choices)))
    names = [q.name for q in out]
    if len(set(names)) != len(names):
        raise fail("questions", f"duplicate question names {names}")
    return tuple(out)


def _check_placeholders(template: str, allowed: set[str], key: str, fail: Any) -> None:
    for m in PLACEHOLDER.finditer(template):
        if m.group(1) not in allowed:
            raise fail(key, f"unknown placeholder {{{m.group(1)}}} (allowed: {sorted(allowed)})")


def load_guidelines(spec: Mapping[str, Any], prompts_dir: Path | str) -> str:
    """The annotator's codebook (`guidelines: {text: ...}` or `{file: PATH}`), or "".

    A relative file is looked up as given, then under the prompts directory."""
    guidelines = spec.get("guidelines")
    if not guidelines:
        return ""
    if not isinstance(guidelines, Mapping) or len(guidelines) != 1 or not (
            set(guidelines) <= {"text", "file"}):
        raise PromptError("annotator key guidelines: give exactly one of {text: ...} or {file: PATH}")
    if "text" in guidelines:
        return str(guidelines["text"]).strip()
    path = Path(str(guidelines["file"]))
    if not path.is_absolute() and not path.exists():
        path = Path(prompts_dir) / path
    if not path.is_file():
        raise PromptError(f"annotator key guidelines.file: {guidelines['file']} does not exist "
                          f"(also looked in {prompts_dir})")
    return path.read_text(encoding="utf-8").strip()
