"""Dispatch one configured annotator over the items it may see: pool and dev (and the splits agreement.splits compares; AL runs never buy test labels)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.annotate.kinds import member_annotators
from llmal.annotate.routing import route_reasons, routed_table
from llmal.llm.demonstrations import demo_pool_of
from llmal.llm.executors import LLM_KINDS
from llmal.models.encoders import load_features
from llmal.tasks.base import Task

ANNOTATED_SPLITS = ("pool", "dev")   # what the AL runs may buy labels of


def annotated_splits(config: Mapping[str, Any]) -> list[str]:
    """The splits an annotator labels: pool and dev, plus the splits the agreement tables compare
    annotators on (agreement.splits; test items only when asked there, and never sold to an AL run)."""
    asked = (config.get("agreement") or {}).get("splits") or []
    return [*ANNOTATED_SPLITS, *(s for s in asked if s not in ANNOTATED_SPLITS)]


def items_to_annotate(items: pd.DataFrame, split: pd.DataFrame, spec: dict[str, Any],
                      splits: Sequence[str] = ANNOTATED_SPLITS) -> pd.DataFrame:
    """The items of `splits` (pool and dev by default); with `limit`, a seeded sample of them
    (same seed, same sample)."""
    visible = set(split.loc[split["split"].isin(list(splits)), "id"])
    chosen = items[items["id"].isin(visible)]
    limit = spec.get("limit")
    if limit is not None and limit < len(chosen):
        rng = np.random.default_rng(int(spec.get("seed", 0)))
        keep = np.sort(rng.choice(len(chosen), size=int(limit), replace=False))
        chosen = chosen.iloc[keep]
    return chosen.reset_index(drop=True)


def annotate(items: pd.DataFrame, split: pd.DataFrame, spec: dict[str, Any], config: dict[str, Any],
             *, name: str, task: Task, embeddings_path: str | Path | None = None,
             member_tables: Mapping[str, pd.DataFrame] | None = None,
             log: Callable[[str], None] = print) -> pd.DataFrame:
    """`member_tables` (member name -> annotation table) are a mixture's inputs; other kinds
    ignore them. `task` decides what an answer is (a class, entity spans, ...)."""
    if spec["kind"] in ("mixture", "routed"):
        members = member_annotators(spec)
        missing = [m for m in members if m not in (member_tables or {})]
        if missing:
            raise ValueError(f"annotator {name!r}: no annotation table for member(s) {missing}")
        visible = set(split.loc[split["split"].isin(annotated_splits(config)), "id"].astype(str))
        tables = {m: member_tables[m][member_tables[m]["id"].astype(str).isin(visible)]  # type: ignore[index]
                  for m in members}
        if spec["kind"] == "routed":   # the whole table is routed at once (AL runs route per round)
            primary, fallback = members
            reasons = route_reasons(tables[primary].reset_index(drop=True), spec)
            log(f"{name}: {sum(map(bool, reasons))} of {len(reasons)} items routed to {fallback}")
            return routed_table(tables[primary], tables[fallback], reasons,
                                primary_name=primary, fallback_name=fallback)
        gold = mixture_gold(items, split, spec, task) if spec.get("method") == "learned" else None
        return task.aggregate_mixture(tables, spec, config["labels"], gold=gold, log=log)
    todo = items_to_annotate(items, split, spec, annotated_splits(config))
    demonstrations = (demonstration_inputs(items, split, spec, embeddings_path) if spec["kind"] in LLM_KINDS
                      else (None, None))
    return task.annotate(todo, spec, config, name=name, demonstrations=demonstrations, log=log)


def mixture_gold(items: pd.DataFrame, split: pd.DataFrame, spec: dict[str, Any], task: Task) -> dict[str, int]:
    """The gold labels of a learned mixture's gold set: drawn from the dev split only (the same
    draw the AL loop buys through its ledger), never a test item; items without gold are left out."""
    dev_ids = split.loc[split["split"] == "dev", "id"].astype(str).tolist()
    chosen = task.mixture_gold_ids(spec, dev_ids)
    gold = items.assign(id=items["id"].astype(str)).set_index("id").loc[chosen, "gold"].astype(int)
    return {i: int(g) for i, g in gold.items() if g >= 0}


def demonstration_inputs(items: pd.DataFrame, split: pd.DataFrame, spec: dict[str, Any],
                         embeddings_path: str | Path | None) -> tuple[Any, pd.DataFrame | None]:
    """An LLM annotator's k-NN demonstration inputs: (ids, dense embeddings) and its gold pool,
    or (None, None) without `demonstrations`."""
    if not spec.get("demonstrations"):
        return None, None
    feats = load_features(embeddings_path)
    return (feats.ids, feats.dense), demonstration_pool(items, split, spec["demonstrations"])


def demonstration_pool(items: pd.DataFrame, split: pd.DataFrame, demos: dict[str, Any]) -> pd.DataFrame:
    """The small gold pool drawn from the dev split (S3), stratified by gold class (every class
    gets its share, at least one item where it can): the only human gold an LLM annotator sees.
    An AL run buys these gold labels through its ledger (purpose `demonstrations`)."""
    dev_ids = set(split.loc[split["split"] == "dev", "id"].astype(str))
    dev = items[items["id"].astype(str).isin(dev_ids)].sort_values("id")
    return demo_pool_of(dev, demos)
