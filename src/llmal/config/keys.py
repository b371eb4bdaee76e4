"""Every key of the config schema as a dotted name, and the key reference page built from them.

`config_keys()` walks workflow/schemas/config.schema.yaml: `properties` give a key, a map of named
entries (annotators, encoders, conditions, ...) gives the placeholder `<name>`, a list of objects
gives `[]`, and the `if kind == ...: then` branches give the kinds a key applies to. The docs'
key reference (docs/keys.md) is `keys_markdown()`; regenerate it with
`python -m llmal.config.keys > docs/keys.md` after changing the schema.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator

from llmal.config.schema import load_schema

PLACEHOLDER = "<name>"


@dataclass
class Key:
    dotted: str
    description: str = ""
    type: str = ""
    default: Any = None
    kinds: list[str] = field(default_factory=list)   # the `kind` values it applies to ([] = any)


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"].removeprefix("#/").split("/")
        target: Any = root
        for part in ref:
            target = target[part]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        node = merged
    return node


def _type_of(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " | ".join(str(v) for v in node["enum"])
    if "const" in node:
        return str(node["const"])
    t = node.get("type")
    if isinstance(t, list):
        return " or ".join(t)
    if t:
        return str(t)
    for key in ("oneOf", "anyOf", "allOf"):
        if key in node:
            return " or ".join(filter(None, (_type_of(n) for n in node[key] if isinstance(n, dict))))
    return ""


def _kinds_of(cond: dict[str, Any]) -> list[str]:
    kind = cond.get("properties", {}).get("kind", {})
    if "const" in kind:
        return [str(kind["const"])]
    return [str(k) for k in kind.get("enum", [])]


def _walk(node: Any, prefix: str, root: dict[str, Any], kinds: list[str]) -> Iterator[Key]:
    node = _resolve(node, root)
    if not isinstance(node, dict):
        return
    for name, sub in (node.get("properties") or {}).items():
        sub = _resolve(sub, root)
        dotted = f"{prefix}.{name}" if prefix else name
        if isinstance(sub, dict) and sub:
            yield Key(dotted, " ".join(str(sub.get("description", "")).split()), _type_of(sub),
                      sub.get("default"), list(kinds))
            yield from _walk(sub, dotted, root, [])
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _walk(extra, f"{prefix}.{PLACEHOLDER}", root, [])
    if node.get("type") == "array" or "items" in node:
        yield from _walk(node.get("items"), f"{prefix}[]", root, [])
    for key in ("allOf", "oneOf", "anyOf"):
        for branch in node.get(key) or []:
            branch = _resolve(branch, root)
            if isinstance(branch, dict) and "if" in branch:
                yield from _walk(branch.get("then"), prefix, root, _kinds_of(branch["if"]))
            else:
                yield from _walk(branch, prefix, root, kinds)


def config_keys(schema: dict[str, Any] | None = None) -> list[Key]:
    """Every key of the schema once, in schema order, with the kinds it applies to."""
    schema = schema or load_schema()
    keys: dict[str, Key] = {}
    for key in _walk(schema, "", schema, []):
        if key.dotted.endswith(".kind") and not key.type:
            continue   # `kind: {}` repeated inside a branch: the key itself is listed once
        seen = keys.get(key.dotted)
        if seen is None:
            keys[key.dotted] = key
            continue
        seen.kinds += [k for k in key.kinds if k not in seen.kinds]
        if not seen.description:
            seen.description, seen.type, seen.default = key.description, key.type, key.default
    return list(keys.values())


def key_pattern(dotted: str) -> re.Pattern[str]:
    """How a dotted key may be written in prose: `<name>` may be any `<...>` or an actual name,
    `[]` may be left out."""
    parts = []
    for part in dotted.split("."):
        part = re.escape(part.replace("[]", "")) + r"(?:\[\])?"
        parts.append(part.replace(re.escape(PLACEHOLDER), r"(?:<[^>.\s]+>|[A-Za-z0-9_-]+)"))
    return re.compile(r"(?<![\w.])" + r"\.".join(parts) + r"(?![\w])")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def keys_markdown(keys: list[Key] | None = None) -> str:
    keys = keys if keys is not None else config_keys()
    out = ["# Configuration keys", "",
           "Every key of `workflow/schemas/config.schema.yaml`, generated from it by",
           "`python -m llmal.config.keys > docs/keys.md` (a test checks that this page is current).",
           f"`{PLACEHOLDER}` stands for a name you choose (an annotator, encoder, recipe, condition,",
           "model or label); `[]` for each entry of a list. A key listed for some kinds only is",
           "accepted only with those kinds. [Configuration](configuration.md) explains how the",
           "keys work together.", ""]
    section = None
    for key in keys:
        top = key.dotted.split(".")[0].split("[")[0]
        if top != section:
            section = top
            out += ["", f"## {top}", "", "| key | kinds | type | default | what |", "|---|---|---|---|---|"]
        default = "" if key.default is None else f"`{json.dumps(key.default)}`"
        kinds = ", ".join(key.kinds)
        out.append(f"| `{key.dotted}` | {_cell(kinds)} | {_cell(key.type)} | {_cell(default)} | "
                   f"{_cell(key.description)} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(keys_markdown())
