"""The Task protocol: what a stage may ask of an annotation task, and its capabilities as data.

A stage (prepare, annotate, the AL engine, results, report) holds a Task and calls it; it never
asks which task it serves. Capabilities (the item noun, budget units, ...) are plain data, so a
check or a rule reads them instead of branching on a task name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence


class TaskError(ValueError):
    """The data cannot support a run (no test items, ...); the message says which."""


@dataclass(frozen=True)
class Capabilities:
    """What a task offers and accepts, as data: the config checks read it instead of asking which
    task they check (llmal.config.task_rules). Only plain values here: Snakemake plans with them.

    item_noun: what one item is called in messages and plans ("items", "sentences");
    budget_units: the axes a budget or a learning curve may count ("labels", "usd", "tokens");
    entity_level: test predictions are scored per entity (rows of predictions.parquet are
    entities, the last label name is "no entity") rather than per item.

    What it reads (dataset.kind; the demo dataset by its `task` variant):
    description: what the task is, in messages ("sequence labelling");
    data_noun: what its data holds, in messages ("sentences with entity tags");
    dataset_kinds, demo_variants: the dataset kinds it reads, and the variants of the demo dataset;
    downloaded: dataset kinds its prepare downloads when no path is given (llmal check skips them);
    checks_data_by_prepare: llmal check reads the data through the task's own prepare (split
    counts only) instead of summarising a table of items (topics, classes, columns; cached).

    What it trains and queries with:
    learner_noun, learner_does: its learner in messages ("a tagger", "tags sentences");
    recipe_kinds: the recipe kinds it trains;
    class_weights: a finetune recipe may set class_weight;
    training_options: the condition `training` keys it supports (None: every one);
    samplers: the samplers it accepts, in message order (None: full and every strategy of
    llmal.strategies.registry, each checked against what its recipe kind can supply);
    samplers_score: what its own samplers score, in messages ("tag sequences").

    What its annotators may say:
    mixture_methods: the mixture methods it aggregates with (None: every one), and
    mixture_refusal the message for another;
    label_keys: annotator keys whose names must be label names -> what such a name is;
    own_keys: keys (dotted, * = any name) that only this task reads -> what the key is for;
    another task refuses them by name instead of ignoring them;
    metrics: metric columns of its runs beyond the per-label ones and llmal.results.runs'
    ROUND_COLUMNS (what aggregate.metric may name);
    stop_criteria: the stopping criteria of llmal.stopping its runs can check (None: every one;
    the stop-set criteria need one row of class probabilities per item); summary_columns: the
    summary table's columns when the task names its own (see the field)."""
    item_noun: str
    budget_units: tuple[str, ...]
    description: str
    data_noun: str
    dataset_kinds: tuple[str, ...]
    demo_variants: tuple[str, ...]
    learner_noun: str
    learner_does: str
    recipe_kinds: tuple[str, ...]
    entity_level: bool = False
    downloaded: tuple[str, ...] = ()
    checks_data_by_prepare: bool = False
    class_weights: bool = True
    training_options: tuple[str, ...] | None = None
    samplers: tuple[str, ...] | None = None
    samplers_score: str = ""
    mixture_methods: tuple[str, ...] | None = None
    mixture_refusal: str = ""
    label_keys: tuple[tuple[str, str], ...] = ()
    own_keys: tuple[tuple[str, str], ...] = ()
    metrics: tuple[str, ...] = ()
    stop_criteria: tuple[str, ...] | None = None
    summary_columns: tuple[tuple[str, str, int | None, str | None], ...] = ()

    # summary_columns: the summary table's columns when the task names its own (else those of
    # llmal.results.aggregate.summary_metrics_of): (column, header, decimals (None: money),
    # better ("max", "min" or None)); a column "<m>_{label}" stands for one per label name.

    def reads(self, dataset: Mapping[str, Any]) -> bool:
        """Whether this task reads the dataset a config's `dataset` describes."""
        if dataset.get("kind") == "demo":
            return dataset.get("task", "hostility") in self.demo_variants
        return dataset.get("kind") in self.dataset_kinds


@dataclass(frozen=True)
class AgreementUnit:
    """What the annotator agreement table compares, as the task counts it (llmal.results.agreement
    builds the table on it): the units with their gold and split, every annotator's labels of
    them, and the columns the task adds per annotator.

    annotations: annotator -> table of units (id, label, status, model, cost_usd, request_id);
    items: id and gold of every unit; split: id -> split of every unit; label_names: the labels
    of `label` and `gold`; unit: what a unit is when it is not an item ("tokens"), named in the
    summary; columns: column -> annotator -> value, added to the table in this order; summary:
    statistic -> value the task adds that is not per annotator (e.g. among the dataset's raters),
    the agreement summary's `task` entry."""
    annotations: Mapping[str, Any]
    items: Any
    split: Any
    label_names: Sequence[str]
    unit: str | None = None
    columns: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)


class RunTask(Protocol):
    """The AL engine's view of one run's data (built by Task.run_task): the split's ids, gold
    bought through the ledger, the labels an annotation table yields, evaluation against human
    gold on the test split, and the query strategies over this task's model outputs."""
    label_names: list[str]
    ids: dict[str, list[str]]

    def gold(self, ids: Sequence[str]) -> dict[str, int]: ...
    def gold_targets(self, ids: Sequence[str], gold: dict[str, int]) -> Any: ...
    def usable(self, table: Any) -> tuple[list[str], Any]: ...
    def n_usable_classes(self, labels: Any) -> int: ...
    def uniform(self, n: int) -> Any: ...
    def evaluate(self, out: Any) -> dict[str, Any]: ...
    def f1_macro(self, labels: Any, out: Any) -> float: ...
    def predictions(self, out: Any) -> Any: ...
    def make_strategy(self, name: str) -> Any: ...
    def query_context(self, classifier: Any, candidates: Sequence[str], labelled: Sequence[str], *,
                      rng: Any, seed: int) -> Any: ...


class Task(Protocol):
    """One annotation task. Implemented once per package under llmal.tasks."""
    name: str
    capabilities: Capabilities

    def prepare(self, dataset: Mapping[str, Any], labels: Mapping[str, Any], split: Mapping[str, Any],
                *, cache_dir: Any) -> tuple[Any, Any]:
        """dataset config -> (items table, split table)."""

    def run_task(self, items: Any, split: Any, labels: Mapping[str, Any]) -> Any:
        """The AL engine's view of one run's data: gold, usable labels, evaluation, strategies."""

    def build_learner(self, recipe: dict[str, Any], encoder: dict[str, Any], *, texts: Mapping[str, str],
                      features: Any, n_classes: int, seed: int, run_task: Any) -> Any:
        """The classifier a training recipe names."""

    def annotate(self, todo: Any, spec: dict[str, Any], config: Mapping[str, Any], *, name: str,
                 demonstrations: tuple[Any, Any], log: Callable[[str], None]) -> Any:
        """One annotator (not a mixture) over `todo`: its annotation table."""

    def aggregate_mixture(self, tables: Mapping[str, Any], spec: Mapping[str, Any],
                          labels: Mapping[str, Any], *, gold: Mapping[str, int] | None,
                          log: Callable[[str], None]) -> Any:
        """A mixture's annotation table from its members' tables."""

    def plan_rows(self, name: str, spec: Mapping[str, Any], items: Any, labels: Mapping[str, Any], *,
                  price: Any, counter: Any, demo_pool: Any, prompts_dir: Any, compare: Sequence[str] = (),
                  targets: Sequence[str] = ()) -> list[Any]:
        """llmal plan's rows (llmal.llm.plan_rows.PlanRow: tokens and dollars) of LLM annotator
        `name` asking `items` (the items the pipeline gives it): its own prompt first, then the
        interfaces of `compare` it can price. `price` (llmal.llm.cost) and `counter`
        (llmal.llm.tokens) are the annotator's; `demo_pool` is its gold demonstration pool (None
        without demonstrations); `targets` go into the rows as they are."""

    def agreement_unit(self, annotations: Mapping[str, Any], items: Any, split: Any, labels: Mapping[str, Any],
                       *, splits: Sequence[str]) -> AgreementUnit:
        """What the agreement table compares (its units, the annotators' labels of them) and the
        columns this task adds, computed over the items of `splits`."""

    def summary_classes(self, label_names: Sequence[str]) -> list[str]:
        """The classes the per-class tables and figures show."""

    def example(self) -> dict[str, Any]:
        """A small offline study of this task that it generates itself (dataset, labels, split,
        a noisy simulated annotator, an encoder and a recipe it trains, the strategies it
        offers): what the conformance
        suite (tests/test_task_conformance.py) runs every registered task through."""


def fit_ids(run_task: RunTask, encoder: Mapping[str, Any]) -> list[str] | None:
    """The items a learner's fitted projection of the features may learn from: pool and dev, or
    every item when the encoder opts in (`transductive: true`, as for its TF-IDF)."""
    return None if encoder.get("transductive") else run_task.ids["pool"] + run_task.ids["dev"]
