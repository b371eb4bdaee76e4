"""Load and validate an llmal config: the schema with its defaults, then every check a schema cannot express.

The JSON schema in workflow/schemas/ is the single description of every key (config.schema);
config.references, config.task_rules and config.requests add cross references, what the task
accepts and LLM request settings; config.grid expands a config into runs and config.spec is one
run's spec. `llmal check` and the Snakefile list every problem (config.check). Nothing heavy is
imported: the Snakefile calls this while planning, and `snakemake -n` on the paper-scale grid
must stay fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from llmal.annotate.kinds import LAZY_BY_DEFAULT, TABLE_KINDS, annotator_tree, member_annotators, mixture_members
from llmal.config.grid import (
    FEATURE_ENCODERS,
    RECIPE_ENCODERS,
    LazyDemand,
    Run,
    al_settings,
    annotation_mode,
    annotation_targets,
    condition_encoders,
    demonstration_encoder,
    expand_runs,
    lazy_demand,
    recipe_of,
    reference_annotator,
    run_demo_encoders,
    run_tables,
)
from llmal.config.references import agreement_only, reference_problems, study_problems
from llmal.config.requests import REQUEST_KEYS, llm_request_problems, request_identity
from llmal.config.schema import (
    ROOT,
    SCHEMA_PATH,
    ConfigError,
    _best_error,
    _key_path,
    _validator_with_defaults,
    apply_schema,
    load_schema,
)
from llmal.config.stop_rules import stop_problems
from llmal.config.spec import LazyLLM, RunSpec, gold_price, make_run_spec, run_spec, spec_hash
from llmal.config.sweep import expand_sweeps, sweep_problems
from llmal.config.task_rules import task_key_problems, task_problems
from llmal.llm.executors import LLM_KINDS
from llmal.llm.prompts import PROMPTS_DIR


def config_problems(config: dict[str, Any], explicit: dict[str, set[str]] | None = None) -> list[tuple[str, str]]:
    """Every problem of a schema-valid config (defaults filled in) that the config alone shows,
    as (key, message) pairs: sweeps that cannot expand, cross references, task-specific keys,
    LLM request settings, stopping criteria."""
    return (sweep_problems(config) + reference_problems(config) + llm_request_problems(config, explicit)
            + stop_problems(config))


def validate_config(config: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """Validate in place against the schema (filling defaults), then raise ConfigError for the
    first of config_problems (`llmal check` and the Snakefile list them all, llmal.config.check)."""
    errors, explicit = apply_schema(config)
    if errors:
        err = _best_error(errors)
        raise ConfigError(f"{where}: {_key_path(err)}: {err.message}")
    problems = config_problems(config, explicit)
    if problems:
        key, msg = problems[0]
        raise ConfigError(f"{where}: {key}: {msg}")
    return config


def load_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys")
    return validate_config(config, where=str(path))


__all__ = [
    "ConfigError", "LazyDemand", "LazyLLM", "Run", "RunSpec", "make_run_spec", "FEATURE_ENCODERS", "LAZY_BY_DEFAULT", "LLM_KINDS",
    "PROMPTS_DIR", "RECIPE_ENCODERS", "REQUEST_KEYS", "ROOT", "SCHEMA_PATH", "TABLE_KINDS",
    "agreement_only", "al_settings", "annotation_mode", "annotation_targets", "annotator_tree",
    "apply_schema", "condition_encoders", "config_problems", "demonstration_encoder", "expand_runs",
    "gold_price", "lazy_demand", "llm_request_problems", "load_config", "load_schema", "member_annotators", "mixture_members",
    "recipe_of", "reference_annotator", "reference_problems", "request_identity",
    "run_demo_encoders", "run_spec", "run_tables", "spec_hash", "study_problems", "task_key_problems",
    "task_problems", "validate_config", "_best_error", "_key_path", "_validator_with_defaults",
]
