"""The classification task behind the Task protocol (llmal.tasks.base): each call hands over to
the toolkits and modules of classification (dataset readers, annotators, the LLM
client, the logistic and fine-tuned classifiers, the agreement unit)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import make_annotations
from llmal.llm.cost import price_for
from llmal.llm.executors import LLM_KINDS
from llmal.llm.prompts import PROMPTS_DIR
from llmal.llm.tokens import make_counter
from llmal.models import build_classifier
from llmal.tasks.base import AgreementUnit, fit_ids
from llmal.tasks.classification.capabilities import CAPABILITIES
from llmal.tasks.classification.human import annotate_human
from llmal.tasks.classification.llm import annotate_with_llm
from llmal.tasks.classification.mixture import annotate_mixture, learned_gold_ids
from llmal.tasks.classification.plan import plan_rows, price_per_item
from llmal.tasks.classification.precomputed import annotate_precomputed
from llmal.tasks.classification.prepare import prepare_dataset
from llmal.tasks.classification.simulated import annotate_simulated
from llmal.tasks.classification.task import ClassificationTask


class Classification:
    name = "classification"
    capabilities = CAPABILITIES

    # --- data ---------------------------------------------------------------------------
    def prepare(self, dataset: Mapping[str, Any], labels: Mapping[str, Any], split: Mapping[str, Any],
                *, cache_dir: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        return prepare_dataset(dataset, labels, split, cache_dir=cache_dir)

    def run_task(self, items: pd.DataFrame, split: pd.DataFrame, labels: Mapping[str, Any]) -> ClassificationTask:
        return ClassificationTask(items, split, labels["names"], labels.get("positive"))

    # --- learners -------------------------------------------------------------------------
    def build_learner(self, recipe: dict[str, Any], encoder: dict[str, Any], *, texts: Mapping[str, str],
                      features: Any, n_classes: int, seed: int, run_task: Any) -> Any:
        if recipe["kind"] == "crf":
            raise ValueError("the crf recipe tags sentences: it needs task: ner")
        return build_classifier(recipe, encoder, texts=texts, features=features, n_classes=n_classes, seed=seed,
                                fit_ids=fit_ids(run_task, encoder))

    # --- annotators -------------------------------------------------------------------------
    def annotate(self, todo: pd.DataFrame, spec: dict[str, Any], config: Mapping[str, Any], *, name: str,
                 demonstrations: tuple[Any, Any], log: Callable[[str], None]) -> pd.DataFrame:
        labels = config["labels"]
        kind = spec["kind"]
        if kind == "human":
            table = annotate_human(todo, spec)
        elif kind == "simulated":
            table = annotate_simulated(todo, spec, labels["names"])
        elif kind == "precomputed":
            table = annotate_precomputed(todo, spec, labels["names"], name=name, log=log)
        elif kind in LLM_KINDS:
            embeddings, demo_pool = demonstrations
            cache_dir = Path(config.get("cache_dir", ".llmal-cache"))
            table = annotate_with_llm(
                todo, spec=spec, label_names=labels["names"], positive=labels.get("positive"),
                prompts_dir=PROMPTS_DIR, prices=config.get("prices") or {},
                cache_path=cache_dir / "responses.sqlite", state_dir=cache_dir / "batches" / name,
                embeddings=embeddings, demo_pool=demo_pool, log=log, name=name,
                cache_mode=str(config.get("cache_mode") or "local"))
        else:
            raise ValueError(f"unknown annotator kind {kind!r}")
        return make_annotations(table)

    def aggregate_mixture(self, tables: Mapping[str, pd.DataFrame], spec: Mapping[str, Any],
                          labels: Mapping[str, Any], *, gold: Mapping[str, int] | None,
                          log: Callable[[str], None]) -> pd.DataFrame:
        return annotate_mixture(tables, dict(spec), labels["names"], log=log,
                                gold=None if gold is None else dict(gold))

    def mixture_gold_ids(self, spec: Mapping[str, Any], dev_ids: Sequence[str]) -> list[str]:
        """The dev items whose gold a learned mixture is fitted on (none for other methods)."""
        return learned_gold_ids(dict(spec), list(dev_ids))

    def lazy_llm(self, name: str, spec: Mapping[str, Any], by_id: pd.DataFrame, llm: Mapping[str, Any], *,
                 demonstrations: tuple[Any, Any], cache_dir: Path, state_dir: Path, quote_sample: int,
                 log: Callable[[str], None]) -> tuple[Callable[[list[str]], pd.DataFrame],
                                                      Callable[[list[str]], np.ndarray]]:
        """(fetch, quote) of a lazy LLM oracle: annotate the given ids; the planned price per item."""
        labels = llm["labels"]
        feats, demo_pool = demonstrations
        asked = {k: v for k, v in spec.items() if k != "limit"}   # the sample is the oracle's `visible`

        def fetch(ids: list[str]) -> pd.DataFrame:
            return annotate_with_llm(
                by_id.loc[ids].reset_index(drop=True), spec=asked, label_names=labels["names"],
                positive=labels.get("positive"), prompts_dir=PROMPTS_DIR, prices=llm.get("prices") or {},
                cache_path=cache_dir / "responses.sqlite", state_dir=state_dir, embeddings=feats,
                demo_pool=demo_pool, log=log, name=name, cache_mode=str(llm.get("cache_mode") or "local"))

        def quote(ids: list[str]) -> np.ndarray:
            sample = by_id.loc[ids[:quote_sample]].reset_index(drop=True)
            price = price_for(str(spec["model"]), str(spec["kind"]), llm.get("prices"))
            return np.full(len(ids), price_per_item(name, spec, sample, labels, price, make_counter(spec),
                                                    demo_pool, PROMPTS_DIR))

        return fetch, quote

    # --- plan, agreement, results -----------------------------------------------------------
    plan_rows = staticmethod(plan_rows)   # llmal plan's rows of one annotator (Task.plan_rows)

    def agreement_unit(self, annotations: Mapping[str, pd.DataFrame], items: pd.DataFrame, split: pd.DataFrame,
                       labels: Mapping[str, Any], *, splits: Sequence[str]) -> AgreementUnit:
        # the items as they are: one label per text
        return AgreementUnit(annotations, items, split, list(labels["names"]))

    def summary_classes(self, label_names: Sequence[str]) -> list[str]:
        return list(label_names)

    def example(self) -> dict[str, Any]:
        return {"dataset": {"name": "example", "kind": "demo", "n_items": 400, "seed": 1},
                "labels": {"names": ["not_hostile", "hostile"], "positive": "hostile"},
                "split": {"test": 0.25, "dev": 0.1, "seed": 0},
                "noisy": {"kind": "simulated", "seed": 4, "error": {"hostile": 0.3, "not_hostile": 0.1}},
                "encoder": {"kind": "tfidf", "max_features": 3000, "min_df": 1},
                "recipe": {"kind": "logistic"},
                "strategies": ["random", "entropy", "margin", "kmeans", "coreset", "badge"]}


TASK = Classification()
