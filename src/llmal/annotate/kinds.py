"""Annotator kinds as the annotate stage sees them: which are replayed from tables, which are
LLMs, and the tree of annotators a mixture or a routed annotator stands on."""
from __future__ import annotations

from typing import Any, Mapping

from llmal.llm.executors import LLM_KINDS

TABLE_KINDS = ("human", "simulated", "precomputed")   # replayed from their tables in every mode
LAZY_BY_DEFAULT = (*LLM_KINDS, "mixture", "routed")
COMPOSED_KINDS = ("mixture", "routed")   # annotators made of other annotators


def mixture_members(spec: Mapping[str, Any]) -> list[str]:
    """The annotators a mixture aggregates (empty for every other kind)."""
    return list(spec.get("members") or []) if spec.get("kind") == "mixture" else []


def member_annotators(spec: Mapping[str, Any]) -> list[str]:
    """The annotators this one is made of: a mixture's members, a routed annotator's primary and
    fallback (in that order); empty for every other kind."""
    if spec.get("kind") == "routed":
        return [str(spec["primary"]), str(spec["fallback"])]
    return mixture_members(spec)


def annotator_tree(annotators: Mapping[str, Any], name: str) -> list[str]:
    """The annotator and, for a mixture or a routed annotator, every member below it (each once,
    breadth first)."""
    out: list[str] = []
    stack = [name]
    while stack:
        who = stack.pop(0)
        if who in out:
            continue
        out.append(who)
        stack += member_annotators(annotators[who])
    return out
