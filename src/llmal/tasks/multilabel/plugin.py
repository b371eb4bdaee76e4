"""The multi-label task behind the Task protocol (llmal.tasks.base)."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from llmal.tasks.base import AgreementUnit, fit_ids
from llmal.tasks.multilabel.agreement import multilabel_agreement_unit
from llmal.tasks.multilabel.annotators import annotate_human, annotate_precomputed, annotate_simulated
from llmal.tasks.multilabel.capabilities import CAPABILITIES
from llmal.tasks.multilabel.data import prepare_multilabel
from llmal.tasks.multilabel.demo import DEMO_LABELS
from llmal.tasks.multilabel.learner import OneVsRestHead
from llmal.tasks.multilabel.mixture import aggregate_per_label
from llmal.tasks.multilabel.strategies import MULTILABEL_STRATEGIES
from llmal.tasks.multilabel.task import MultiLabelTask


class MultiLabel:
    name = "multilabel"
    capabilities = CAPABILITIES

    # --- data ---------------------------------------------------------------------------
    def prepare(self, dataset: Mapping[str, Any], labels: Mapping[str, Any], split: Mapping[str, Any],
                *, cache_dir: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        return prepare_multilabel(dataset, labels, split, cache_dir=cache_dir)

    def run_task(self, items: pd.DataFrame, split: pd.DataFrame, labels: Mapping[str, Any]) -> MultiLabelTask:
        return MultiLabelTask(items, split, labels["names"])

    # --- learners -------------------------------------------------------------------------
    def build_learner(self, recipe: dict[str, Any], encoder: dict[str, Any], *, texts: Mapping[str, str],
                      features: Any, n_classes: int, seed: int, run_task: Any) -> Any:
        if recipe["kind"] != "logistic":
            raise ValueError(f"recipe kind {recipe['kind']!r}: task multilabel trains the one-vs-rest "
                             "logistic head (kind logistic)")
        if features is None:
            raise ValueError("the logistic recipe needs frozen features (an embeddings file)")
        return OneVsRestHead(features, recipe=recipe, n_labels=run_task.n_labels, seed=seed,
                             fit_ids=fit_ids(run_task, encoder))

    # --- annotators -------------------------------------------------------------------------
    def annotate(self, todo: pd.DataFrame, spec: dict[str, Any], config: Mapping[str, Any], *, name: str,
                 demonstrations: tuple[Any, Any], log: Callable[[str], None]) -> pd.DataFrame:
        names = [str(n) for n in config["labels"]["names"]]
        if spec["kind"] == "human":
            return annotate_human(todo, spec, names)
        if spec["kind"] == "simulated":
            return annotate_simulated(todo, spec, names)
        if spec["kind"] == "precomputed":
            return annotate_precomputed(todo, spec, names, name=name, log=log)
        raise ValueError(f"annotators.{name}.kind: {spec['kind']!r} cannot annotate label sets "
                         "(task multilabel: human, simulated, precomputed, mixture)")

    def aggregate_mixture(self, tables: Mapping[str, pd.DataFrame], spec: Mapping[str, Any],
                          labels: Mapping[str, Any], *, gold: Mapping[str, int] | None,
                          log: Callable[[str], None]) -> pd.DataFrame:
        return aggregate_per_label(tables, spec, [str(n) for n in labels["names"]])

    def mixture_gold_ids(self, spec: Mapping[str, Any], dev_ids: Sequence[str]) -> list[str]:
        return []   # per-label majority and mean fit nothing on gold

    def plan_rows(self, name: str, spec: Mapping[str, Any], items: Any, labels: Mapping[str, Any], *,
                  price: Any, counter: Any, demo_pool: Any, prompts_dir: Any, compare: Sequence[str] = (),
                  targets: Sequence[str] = ()) -> list[Any]:
        return []   # no LLM annotator of label sets yet: nothing to price

    # --- plan, agreement, results -----------------------------------------------------------
    def agreement_unit(self, annotations: Mapping[str, pd.DataFrame], items: pd.DataFrame, split: pd.DataFrame,
                       labels: Mapping[str, Any], *, splits: Sequence[str]) -> AgreementUnit:
        return multilabel_agreement_unit(annotations, items, split, [str(n) for n in labels["names"]],
                                         splits=splits)

    def summary_classes(self, label_names: Sequence[str]) -> list[str]:
        return list(label_names[:-1])   # the last label, "none", is "label absent"

    def example(self) -> dict[str, Any]:
        return {"dataset": {"name": "example", "kind": "demo", "task": "multilabel", "n_items": 500, "seed": 2},
                "labels": {"names": list(DEMO_LABELS)},
                "split": {"test": 0.25, "dev": 0.1, "seed": 0},
                "noisy": {"kind": "simulated", "seed": 4,
                          "label_error": {n: {"fp": 0.05, "fn": 0.3} for n in DEMO_LABELS}},
                "encoder": {"kind": "tfidf", "max_features": 3000, "min_df": 1},
                "recipe": {"kind": "logistic"},
                "strategies": list(MULTILABEL_STRATEGIES)}


TASK = MultiLabel()
