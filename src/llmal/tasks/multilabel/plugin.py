"""The multi-label task behind the Task protocol (llmal.tasks.base)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.llm.cost import price_for
from llmal.llm.executors import LLM_KINDS
from llmal.llm.prompts import PROMPTS_DIR
from llmal.llm.tokens import make_counter
from llmal.tasks.base import AgreementUnit, fit_ids
from llmal.tasks.draws import learned_gold_ids
from llmal.tasks.multilabel.agreement import multilabel_agreement_unit
from llmal.tasks.multilabel.annotators import annotate_human, annotate_precomputed, annotate_simulated
from llmal.tasks.multilabel.capabilities import CAPABILITIES
from llmal.tasks.multilabel.data import prepare_multilabel
from llmal.tasks.multilabel.demo import DEMO_LABELS
from llmal.tasks.multilabel.learner import OneVsRestHead
from llmal.tasks.multilabel.llm import annotate_multilabel_with_llm
from llmal.tasks.multilabel.mixture import aggregate_per_label
from llmal.tasks.multilabel.plan import plan_rows
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
        if recipe["kind"] == "finetune":
            from llmal.tasks.multilabel.finetune import FineTuneMultiLabel  # torch: optional, heavy
            return FineTuneMultiLabel(texts, encoder=encoder, recipe=recipe, n_labels=run_task.n_labels,
                                      seed=seed)
        if recipe["kind"] != "logistic":
            raise ValueError(f"recipe kind {recipe['kind']!r}: task multilabel trains a one-vs-rest "
                             "logistic head (kind logistic) or a fine-tuned sigmoid head (kind finetune)")
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
        if spec["kind"] in LLM_KINDS:
            cache_dir = Path(config.get("cache_dir", ".llmal-cache"))
            return annotate_multilabel_with_llm(
                todo, spec=spec, labels=names, prices=config.get("prices") or {},
                cache_path=cache_dir / "responses.sqlite", state_dir=cache_dir / "batches" / name, log=log,
                name=name, cache_mode=str(config.get("cache_mode") or "local"))
        raise ValueError(f"annotators.{name}.kind: {spec['kind']!r} cannot annotate label sets "
                         "(task multilabel: human, simulated, precomputed, an LLM kind, mixture)")

    def aggregate_mixture(self, tables: Mapping[str, pd.DataFrame], spec: Mapping[str, Any],
                          labels: Mapping[str, Any], *, gold: Mapping[str, int] | None,
                          log: Callable[[str], None]) -> pd.DataFrame:
        return aggregate_per_label(tables, spec, [str(n) for n in labels["names"]], gold=gold)

    def mixture_gold_ids(self, spec: Mapping[str, Any], dev_ids: Sequence[str]) -> list[str]:
        """The dev items whose gold label sets a learned mixture is fitted on (none for other methods)."""
        return learned_gold_ids(dict(spec), list(dev_ids))

    def lazy_llm(self, name: str, spec: Mapping[str, Any], by_id: pd.DataFrame, llm: Mapping[str, Any], *,
                 demonstrations: tuple[Any, Any], cache_dir: Path, state_dir: Path, quote_sample: int,
                 log: Callable[[str], None]) -> tuple[Callable[[list[str]], pd.DataFrame],
                                                      Callable[[list[str]], np.ndarray]]:
        """(fetch, quote) of a lazy LLM oracle of label sets: annotate the given ids; before
        anything is bought, the price per item llmal plan gives a sample of them."""
        names = [str(n) for n in llm["labels"]["names"]]
        asked = {k: v for k, v in spec.items() if k != "limit"}
        price = price_for(str(spec["model"]), str(spec["kind"]), llm.get("prices"))

        def fetch(ids: list[str]) -> pd.DataFrame:
            return annotate_multilabel_with_llm(
                by_id.loc[ids].reset_index(drop=True), spec=asked, labels=names, prices=llm.get("prices") or {},
                cache_path=cache_dir / "responses.sqlite", state_dir=state_dir, log=log, name=name,
                cache_mode=str(llm.get("cache_mode") or "local"))

        def quote(ids: list[str]) -> np.ndarray:
            row, = plan_rows(name, spec, by_id.loc[ids[:quote_sample]].reset_index(drop=True), llm["labels"],
                             price=price, counter=make_counter(spec), demo_pool=None, prompts_dir=PROMPTS_DIR)
            return np.full(len(ids), row.usd_per_item)

        return fetch, quote

    plan_rows = staticmethod(plan_rows)   # llmal plan's rows of one annotator (Task.plan_rows)

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
