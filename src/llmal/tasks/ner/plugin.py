"""The NER task behind the Task protocol (llmal.tasks.base)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.llm.cost import price_for
from llmal.llm.executors import LLM_KINDS
from llmal.llm.prompts import PROMPTS_DIR
from llmal.llm.tokens import make_counter
from llmal.models import build_classifier
from llmal.tasks.base import AgreementUnit, fit_ids
from llmal.tasks.ner import annotators as ner_annotators
from llmal.tasks.ner.agreement import token_agreement_unit
from llmal.tasks.ner.capabilities import CAPABILITIES
from llmal.tasks.ner.crf import CRFTagger
from llmal.tasks.ner.data import prepare_ner
from llmal.tasks.ner.demo import NER_DEMO_TYPES
from llmal.tasks.ner.llm import annotate_ner_with_llm
from llmal.tasks.ner.mixture import annotate_ner_mixture
from llmal.tasks.ner.plan import plan_rows
from llmal.tasks.ner.strategies import SEQUENCE_STRATEGIES
from llmal.tasks.ner.task import NERTask


class NamedEntities:
    name = "ner"
    capabilities = CAPABILITIES

    # --- data ---------------------------------------------------------------------------
    def prepare(self, dataset: Mapping[str, Any], labels: Mapping[str, Any], split: Mapping[str, Any],
                *, cache_dir: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
        return prepare_ner(dataset, labels, split, cache_dir=cache_dir)

    def run_task(self, items: pd.DataFrame, split: pd.DataFrame, labels: Mapping[str, Any]) -> NERTask:
        return NERTask(items, split, labels["names"])

    # --- learners -------------------------------------------------------------------------
    def build_learner(self, recipe: dict[str, Any], encoder: dict[str, Any], *, texts: Mapping[str, str],
                      features: Any, n_classes: int, seed: int, run_task: Any) -> Any:
        kind = recipe["kind"]
        if kind == "crf":
            return CRFTagger(run_task.tokens, run_task.tag_names, recipe=recipe, seed=seed, features=features)
        if kind == "finetune":
            from llmal.tasks.ner.transformer import TransformerTagger  # torch: optional, heavy
            return TransformerTagger(run_task.tokens, run_task.tag_names, encoder=encoder, recipe=recipe,
                                     seed=seed)
        return build_classifier(recipe, encoder, texts=texts, features=features, n_classes=n_classes, seed=seed,
                                fit_ids=fit_ids(run_task, encoder))

    # --- annotators -------------------------------------------------------------------------
    def annotate(self, todo: pd.DataFrame, spec: dict[str, Any], config: Mapping[str, Any], *, name: str,
                 demonstrations: tuple[Any, Any], log: Callable[[str], None]) -> pd.DataFrame:
        types = [str(t) for t in config["labels"]["names"]]
        if spec["kind"] == "human":
            return ner_annotators.annotate_ner_human(todo, spec)
        if spec["kind"] == "simulated":
            return ner_annotators.annotate_ner_simulated(todo, spec, types)
        if spec["kind"] in LLM_KINDS:
            embeddings, demo_pool = demonstrations
            cache_dir = Path(config.get("cache_dir", ".llmal-cache"))
            return annotate_ner_with_llm(
                todo, spec=spec, types=types, prices=config.get("prices") or {},
                cache_path=cache_dir / "responses.sqlite", state_dir=cache_dir / "batches" / name,
                embeddings=embeddings, demo_pool=demo_pool, log=log, name=name,
                cache_mode=str(config.get("cache_mode") or "local"))
        raise ValueError(f"annotators.{name}.kind: {spec['kind']!r} cannot annotate sentences (task ner)")

    def aggregate_mixture(self, tables: Mapping[str, pd.DataFrame], spec: Mapping[str, Any],
                          labels: Mapping[str, Any], *, gold: Mapping[str, int] | None,
                          log: Callable[[str], None]) -> pd.DataFrame:
        return annotate_ner_mixture(tables, spec)

    def mixture_gold_ids(self, spec: Mapping[str, Any], dev_ids: Sequence[str]) -> list[str]:
        return []   # entity-level majority vote fits nothing on gold

    def lazy_llm(self, name: str, spec: Mapping[str, Any], by_id: pd.DataFrame, llm: Mapping[str, Any], *,
                 demonstrations: tuple[Any, Any], cache_dir: Path, state_dir: Path, quote_sample: int,
                 log: Callable[[str], None]) -> tuple[Callable[[list[str]], pd.DataFrame],
                                                      Callable[[list[str]], np.ndarray]]:
        """(fetch, quote) of a lazy LLM oracle of sentences. Its price per sentence before anything
        is bought is llmal plan's (the rendered requests of a sample of the sentences asked
        about, with the gold entities as the answer)."""
        feats, demo_pool = demonstrations
        types = [str(t) for t in llm["labels"]["names"]]
        asked = {k: v for k, v in spec.items() if k != "limit"}
        price = price_for(str(spec["model"]), str(spec["kind"]), llm.get("prices"))

        def fetch(ids: list[str]) -> pd.DataFrame:
            return annotate_ner_with_llm(by_id.loc[ids].reset_index(drop=True), spec=asked, types=types,
                                         prices=llm.get("prices") or {}, cache_path=cache_dir / "responses.sqlite",
                                         state_dir=state_dir, embeddings=feats, demo_pool=demo_pool, log=log,
                                         name=name, cache_mode=str(llm.get("cache_mode") or "local"))

        def quote(ids: list[str]) -> np.ndarray:
            row, = plan_rows(name, spec, by_id.loc[ids[:quote_sample]].reset_index(drop=True), llm["labels"],
                             price=price, counter=make_counter(spec), demo_pool=demo_pool,
                             prompts_dir=PROMPTS_DIR)
            return np.full(len(ids), row.usd_per_item)

        return fetch, quote

    # --- plan, agreement, results -----------------------------------------------------------
    plan_rows = staticmethod(plan_rows)   # llmal plan's rows of one annotator (Task.plan_rows)

    def agreement_unit(self, annotations: Mapping[str, pd.DataFrame], items: pd.DataFrame, split: pd.DataFrame,
                       labels: Mapping[str, Any], *, splits: Sequence[str]) -> AgreementUnit:
        # the agreement table at token level (token-level Fleiss' kappa, S2) plus entity F1
        return token_agreement_unit(annotations, items, split, labels["names"], splits=splits)

    def summary_classes(self, label_names: Sequence[str]) -> list[str]:
        return list(label_names[:-1])   # the last label, "O", is no entity

    def example(self) -> dict[str, Any]:
        return {"dataset": {"name": "example", "kind": "demo", "task": "ner", "n_items": 300, "seed": 3},
                "labels": {"names": list(NER_DEMO_TYPES)},
                "split": {"test": 0.25, "dev": 0.1, "seed": 0},
                "noisy": {"kind": "simulated", "seed": 4,
                          "entity_error": {t: {"missed": 0.3, "spurious": 0.1} for t in NER_DEMO_TYPES}},
                "encoder": {"kind": "tfidf", "max_features": 3000, "min_df": 1},
                "recipe": {"kind": "crf"},
                "strategies": list(SEQUENCE_STRATEGIES)}


TASK = NamedEntities()
