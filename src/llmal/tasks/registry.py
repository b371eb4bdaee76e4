"""The registry of tasks: the only reader of a config's (or a run spec's) `task` key.

A config without `task` is text classification; a run spec carries `task` only for the other
tasks, so the spec hashes of classification runs stay what they were. Each task is a package
llmal.tasks.<name> with `capabilities.CAPABILITIES` (data, light: read while Snakemake plans)
and `plugin.TASK` (the Task, loaded when a job first asks for it).
"""
from __future__ import annotations

import importlib
from typing import Any, Mapping

from llmal.tasks.base import Capabilities, Task
from llmal.tasks.classification.capabilities import CAPABILITIES as _CLASSIFICATION
from llmal.tasks.multilabel.capabilities import CAPABILITIES as _MULTILABEL
from llmal.tasks.ner.capabilities import CAPABILITIES as _NER

DEFAULT = "classification"
CAPABILITIES: dict[str, Capabilities] = {"classification": _CLASSIFICATION, "ner": _NER,
                                         "multilabel": _MULTILABEL}


def task_name(config: Mapping[str, Any]) -> str:
    """The task of a config or run spec, by name (checked against the registered tasks)."""
    name = str(config.get("task") or DEFAULT)
    if name not in CAPABILITIES:
        raise KeyError(f"task: {name!r} is not a task (known: {sorted(CAPABILITIES)})")
    return name


def capabilities_of(config: Mapping[str, Any]) -> Capabilities:
    return CAPABILITIES[task_name(config)]


def task_named(name: str | None) -> Task:
    """The task called `name` (None: the default)."""
    key = task_name({"task": name})
    return importlib.import_module(f"llmal.tasks.{key}.plugin").TASK


def task_of(config: Mapping[str, Any]) -> Task:
    """The task of a config or run spec."""
    return task_named(task_name(config))


def spec_task_key(config: Mapping[str, Any]) -> dict[str, str]:
    """What a run spec records of the task: nothing for the default (hashes of existing
    classification runs never change), {"task": name} otherwise."""
    name = task_name(config)
    return {} if name == DEFAULT else {"task": name}
