"""The combination rule of a prompt interface: per-question answers -> positive or not.

A rule is a small expression written in the template's YAML:

    {migration: "yes", hostile: "yes"}          # every listed question has that answer
    {hostile: ["yes", "probably"]}               # the answer is one of a list
    {all: [RULE, RULE, ...]}                     # all sub-rules hold ({all: {q: a, ...}} too)
    {any: [RULE, RULE, ...]}                     # at least one holds
    {not: RULE}

so "positive = yes to both" of the two-question interface is `{all: {migration: "yes",
hostile: "yes"}}` and any number of questions can be combined. Rules are checked against the
questions and their choices when the template is loaded, so a typo fails before anything is sent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Union

OPERATORS = ("all", "any", "not")


class RuleError(ValueError):
    """A rule is malformed; the message names the template file and key."""


@dataclass(frozen=True)
class AnswerIs:
    question: str
    answers: tuple[str, ...]

    def holds(self, answers: Mapping[str, str]) -> bool:
        return answers[self.question] in self.answers


@dataclass(frozen=True)
class AllOf:
    parts: tuple["Rule", ...]

    def holds(self, answers: Mapping[str, str]) -> bool:
        return all(p.holds(answers) for p in self.parts)


@dataclass(frozen=True)
class AnyOf:
    parts: tuple["Rule", ...]

    def holds(self, answers: Mapping[str, str]) -> bool:
        return any(p.holds(answers) for p in self.parts)


@dataclass(frozen=True)
class Not:
    part: "Rule"

    def holds(self, answers: Mapping[str, str]) -> bool:
        return not self.part.holds(answers)


Rule = Union[AnswerIs, AllOf, AnyOf, Not]


def parse_rule(obj: Any, choices: Mapping[str, tuple[str, ...]], where: str) -> Rule:
    """Parse `obj` into a Rule; `choices` maps each question name to its allowed answers."""
    if isinstance(obj, list):
        if not obj:
            raise RuleError(f"{where}: an empty list is not a rule")
        return AllOf(tuple(parse_rule(o, choices, f"{where}[{i}]") for i, o in enumerate(obj)))
    if not isinstance(obj, dict) or not obj:
        raise RuleError(f"{where}: a rule is a non-empty mapping, got {obj!r}")
    ops = [k for k in obj if k in OPERATORS]
    if ops:
        if len(obj) != 1:
            raise RuleError(f"{where}: an operator ({'/'.join(OPERATORS)}) must be the only key, "
                            f"got {sorted(map(str, obj))}")
        op = ops[0]
        inner = obj[op]
        if op == "not":
            return Not(parse_rule(inner, choices, f"{where}.not"))
        if isinstance(inner, dict) and not any(k in OPERATORS for k in inner):
            parts = tuple(_atom(q, a, choices, f"{where}.{op}") for q, a in inner.items())
        elif isinstance(inner, list) and inner:
            parts = tuple(parse_rule(o, choices, f"{where}.{op}[{i}]") for i, o in enumerate(inner))
        else:
            raise RuleError(f"{where}.{op}: expected a list of rules or a mapping question -> answer")
        return AllOf(parts) if op == "all" else AnyOf(parts)
    atoms = tuple(_atom(q, a, choices, where) for q, a in obj.items())
    return atoms[0] if len(atoms) == 1 else AllOf(atoms)


def _atom(question: Any, answer: Any, choices: Mapping[str, tuple[str, ...]], where: str) -> AnswerIs:
    if question not in choices:
        raise RuleError(f"{where}: {question!r} is not a question (questions: {list(choices)})")
    wanted = answer if isinstance(answer, list) else [answer]
    for a in wanted:
        if isinstance(a, bool):
            raise RuleError(f"{where}.{question}: got a boolean; quote yes/no in YAML (\"yes\")")
        if a not in choices[question]:
            raise RuleError(f"{where}.{question}: {a!r} is not a choice of {question!r} "
                            f"(choices: {list(choices[question])})")
    return AnswerIs(str(question), tuple(str(a) for a in wanted))
