"""Sweeps: a routed annotator's `sweep` (one routing key, a list of values) expands into one routed
annotator per value, and every condition using it into one condition per value.

Runs after the schema has filled in defaults (llmal.config.schema.apply_schema), so every stage
downstream sees plain annotators and conditions: `annotators.routed.sweep.threshold: [0.6, 0.8]`
becomes annotators `routed-t0p6` and `routed-t0p8` (threshold 0.6 and 0.8), a condition `llm_routed`
on it becomes `llm_routed-t0p6` and `llm_routed-t0p8`, and `agreement.annotators` naming
`routed` names both. The swept annotator itself stays declared (costing nothing).
"""
from __future__ import annotations

import copy
from typing import Any

from llmal.annotate.kinds import member_annotators

SWEEP_KEYS = {"threshold": "t", "fallback_share": "s"}   # routing key -> name suffix letter


def value_tag(value: float) -> str:
    """A sweep value as it appears in a name: 0.6 -> 0p6 (names allow letters, digits, _ and -)."""
    text = f"{float(value):g}"
    return text.replace(".", "p").replace("-", "m")


def swept_names(name: str, spec: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(expanded name, routing key, value) of a routed annotator's sweep (empty without one)."""
    sweep = spec.get("sweep") or {}
    out = []
    for key, values in sweep.items():
        out += [(f"{name}-{SWEEP_KEYS[key]}{value_tag(v)}", key, float(v)) for v in values]
    return out


def sweep_problems(config: dict[str, Any]) -> list[tuple[str, str]]:
    """What a sweep cannot expand into: names already taken, or two values with one name."""
    problems: list[tuple[str, str]] = []
    annotators = config.get("annotators") or {}
    conditions = config.get("conditions") or {}
    for name, spec in annotators.items():
        expanded = swept_names(name, spec)
        seen: set[str] = set()
        for new, key, _ in expanded:
            if new in annotators or new in seen:
                problems.append((f"annotators.{name}.sweep.{key}",
                                 f"expands into annotator {new!r}, a name already taken"))
            seen.add(new)
        if expanded:
            for other, ospec in annotators.items():
                if other != name and name in member_annotators(ospec):
                    problems.append((f"annotators.{name}.sweep", f"annotator {other!r} is made of it: a swept "
                                     "annotator expands into several, so it cannot be a member, primary or fallback"))
        for cname, cond in conditions.items():
            if expanded and cond.get("annotator") == name:
                for new, key, _ in expanded:
                    cnew = cname + new[len(name):]
                    if cnew in conditions:
                        problems.append((f"conditions.{cname}", f"the sweep of annotators.{name} expands it "
                                         f"into condition {cnew!r}, a name already taken"))
    return problems


def expand_sweeps(config: dict[str, Any]) -> dict[str, list[str]]:
    """Expand every sweep in place (call sweep_problems first); returns swept annotator -> the
    annotators it expanded into."""
    annotators = config.get("annotators") or {}
    expanded: dict[str, list[str]] = {}
    for name in list(annotators):
        spec = annotators[name]
        names = swept_names(name, spec)
        if not names:
            continue
        base = {k: v for k, v in spec.items() if k != "sweep"}
        for new, key, value in names:
            one = copy.deepcopy(base)
            one[key] = value   # another routing key the annotator sets applies to every value
            annotators[new] = one
        spec.pop("sweep")
        expanded[name] = [n for n, _, _ in names]
    if not expanded:
        return expanded
    conditions = config.get("conditions") or {}
    rebuilt: dict[str, Any] = {}
    for cname, cond in conditions.items():
        names = expanded.get(cond.get("annotator"))
        if not names:
            rebuilt[cname] = cond
            continue
        for new in names:
            one = copy.deepcopy(cond)
            one["annotator"] = new
            rebuilt[cname + new[len(cond["annotator"]):]] = one
    if "conditions" in config:
        config["conditions"] = rebuilt
    agreement = config.get("agreement") or {}
    if agreement.get("annotators"):
        listed: list[str] = []
        for a in agreement["annotators"]:
            listed += [n for n in expanded.get(a, [a]) if n not in listed]
        agreement["annotators"] = listed
    aggregate = config.get("aggregate") or {}
    ref = aggregate.get("reference")
    if ref in conditions and conditions[ref].get("annotator") in expanded:
        aggregate["reference"] = ref + expanded[conditions[ref]["annotator"]][0][len(conditions[ref]["annotator"]):]
    return expanded
