"""Applying the JSON schema (workflow/schemas/config.schema.yaml): defaults filled in, schema errors.

The schema is the single description of every key; llmal.config adds the checks a schema cannot
express. Nothing heavy is imported: the Snakefile calls this while planning.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from llmal.config.sweep import expand_sweeps, sweep_problems

ROOT = Path(__file__).resolve().parents[3]
SCHEMA_PATH = ROOT / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The config is wrong; the message names the key."""


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _validator_with_defaults() -> type:
    base = jsonschema.Draft202012Validator

    def set_defaults(validator, properties, instance, schema):  # type: ignore[no-untyped-def]
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def _best_error(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    # deepest error first: "conditions.x.sampler: 'foo' is not one of ..." beats "conditions: ..."
    return max(errors, key=lambda e: (len(e.absolute_path), -len(e.context or [])))


def apply_schema(config: dict[str, Any]) -> tuple[list[jsonschema.ValidationError], dict[str, set[str]]]:
    """Fill the schema's defaults into `config` in place and return (its schema errors, the
    annotator keys the user wrote). A condition's `al` keeps only the keys it sets; a routed
    annotator's `sweep` is expanded (llmal.config.sweep)."""
    explicit = _explicit_annotator_keys(config)   # before the schema fills in defaults
    overrides = _condition_al_overrides(config)
    errors = list(_validator_with_defaults()(load_schema()).iter_errors(config))
    if not errors:
        for name, keys in overrides.items():
            # a condition's `al` overrides the global settings key by key: the schema's defaults
            # must not fill it, or `al: {budget_usd: 5}` would reset initial/batch/rounds to 50/50/10
            config["conditions"][name]["al"] = keys
        if not sweep_problems(config):   # else config_problems reports them, naming the keys
            expand_sweeps(config)
    return errors, explicit


def _condition_al_overrides(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The keys each condition's `al` block sets itself (before defaults are filled in)."""
    conditions = config.get("conditions")
    if not isinstance(conditions, dict):
        return {}
    return {str(n): dict(c["al"]) for n, c in conditions.items()
            if isinstance(c, dict) and isinstance(c.get("al"), dict)}


# ---------------------------------------------------------------- LLM request parameters
def _explicit_annotator_keys(config: dict[str, Any]) -> dict[str, set[str]]:
    annotators = config.get("annotators")
    if not isinstance(annotators, dict):
        return {}
    return {str(n): set(s) for n, s in annotators.items() if isinstance(s, dict)}

