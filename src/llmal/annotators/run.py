"""Dispatch one configured annotator over the items it may see (pool and dev, never test)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from llmal.config import LLM_KINDS, PROMPTS_DIR
from llmal.tables import make_annotations


def items_to_annotate(items: pd.DataFrame, split: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """Pool and dev items; with `limit`, a seeded sample of them (same seed, same sample)."""
    visible = set(split.loc[split["split"].isin(["pool", "dev"]), "id"])
    chosen = items[items["id"].isin(visible)]
    limit = spec.get("limit")
    if limit is not None and limit < len(chosen):
        rng = np.random.default_rng(int(spec.get("seed", 0)))
        keep = np.sort(rng.choice(len(chosen), size=int(limit), replace=False))
        chosen = chosen.iloc[keep]
    return chosen.reset_index(drop=True)


def annotate(items: pd.DataFrame, split: pd.DataFrame, spec: dict[str, Any], config: dict[str, Any],
             *, name: str, embeddings_path: str | Path | None = None,
             member_tables: Mapping[str, pd.DataFrame] | None = None,
             log: Callable[[str], None] = print, task: str | None = None) -> pd.DataFrame:
    """`member_tables` (member name -> annotation table) are a mixture's inputs; other kinds
    ignore them. `task`: ner annotates sentences with entity spans (llmal.ner)."""
    labels = config["labels"]
    kind = spec["kind"]
    if kind == "mixture":
        missing = [m for m in spec["members"] if m not in (member_tables or {})]
        if missing:
            raise ValueError(f"annotator {name!r}: no annotation table for member(s) {missing}")
        visible = set(split.loc[split["split"].isin(["pool", "dev"]), "id"].astype(str))
        tables = {m: member_tables[m][member_tables[m]["id"].astype(str).isin(visible)]  # type: ignore[index]
                  for m in spec["members"]}
        if task == "ner":
            from llmal.ner.mixture import annotate_ner_mixture
            return annotate_ner_mixture(tables, spec)
        from llmal.annotators.mixture import annotate_mixture

        gold = mixture_gold(items, split, spec) if spec.get("method") == "learned" else None
        return make_annotations(annotate_mixture(tables, spec, labels["names"], log=log, gold=gold))
    if task == "ner":
        return annotate_ner(items, split, spec, config, name=name, embeddings_path=embeddings_path, log=log)
    todo = items_to_annotate(items, split, spec)
    if kind == "human":
        from llmal.annotators.human import annotate_human
        table = annotate_human(todo, spec)
    elif kind == "simulated":
        from llmal.annotators.simulated import annotate_simulated
        table = annotate_simulated(todo, spec, labels["names"])
    elif kind == "precomputed":
        from llmal.annotators.precomputed import annotate_precomputed
        table = annotate_precomputed(todo, spec, labels["names"], name=name, log=log)
    elif kind in LLM_KINDS:
        from llmal.llm.annotate import annotate_with_llm

        embeddings, demo_pool = demonstration_inputs(items, split, spec, embeddings_path)
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


def mixture_gold(items: pd.DataFrame, split: pd.DataFrame, spec: dict[str, Any]) -> dict[str, int]:
    """The gold labels of a learned mixture's gold set: drawn from the dev split only (the same
    draw the AL loop buys through its ledger), never a test item; items without gold are left out."""
    from llmal.annotators.mixture import learned_gold_ids

    dev_ids = split.loc[split["split"] == "dev", "id"].astype(str).tolist()
    chosen = learned_gold_ids(spec, dev_ids)
    gold = items.assign(id=items["id"].astype(str)).set_index("id").loc[chosen, "gold"].astype(int)
    return {i: int(g) for i, g in gold.items() if g >= 0}


def annotate_ner(items: pd.DataFrame, split: pd.DataFrame, spec: dict[str, Any], config: dict[str, Any],
                 *, name: str, embeddings_path: str | Path | None = None,
                 log: Callable[[str], None] = print) -> pd.DataFrame:
    """One annotator of task ner over the sentences it may see (pool and dev)."""
    from llmal.ner import annotators as ner

    todo = items_to_annotate(items, split, spec)
    types = [str(t) for t in config["labels"]["names"]]
    if spec["kind"] == "human":
        return ner.annotate_ner_human(todo, spec)
    if spec["kind"] == "simulated":
        return ner.annotate_ner_simulated(todo, spec, types)
    if spec["kind"] in LLM_KINDS:
        from llmal.ner.llm import annotate_ner_with_llm

        embeddings, demo_pool = demonstration_inputs(items, split, spec, embeddings_path)
        cache_dir = Path(config.get("cache_dir", ".llmal-cache"))
        return annotate_ner_with_llm(
            todo, spec=spec, types=types, prices=config.get("prices") or {},
            cache_path=cache_dir / "responses.sqlite", state_dir=cache_dir / "batches" / name,
            embeddings=embeddings, demo_pool=demo_pool, log=log, name=name,
            cache_mode=str(config.get("cache_mode") or "local"))
    raise ValueError(f"annotators.{name}.kind: {spec['kind']!r} cannot annotate sentences (task ner)")


def demonstration_inputs(items: pd.DataFrame, split: pd.DataFrame, spec: dict[str, Any],
                         embeddings_path: str | Path | None) -> tuple[Any, pd.DataFrame | None]:
    """An LLM annotator's k-NN demonstration inputs: (ids, dense embeddings) and its gold pool,
    or (None, None) without `demonstrations`."""
    if not spec.get("demonstrations"):
        return None, None
    from llmal.encoders import load_features

    feats = load_features(embeddings_path)
    return (feats.ids, feats.dense), demonstration_pool(items, split, spec["demonstrations"])


def demonstration_pool(items: pd.DataFrame, split: pd.DataFrame, demos: dict[str, Any]) -> pd.DataFrame:
    """The small gold pool drawn from the dev split (S3), stratified by gold class (every class
    gets its share, at least one item where it can): the only human gold an LLM annotator sees.
    An AL run buys these gold labels through its ledger (purpose `demonstrations`)."""
    from llmal.llm.demonstrations import demo_pool_of

    dev_ids = set(split.loc[split["split"] == "dev", "id"].astype(str))
    dev = items[items["id"].astype(str).isin(dev_ids)].sort_values("id")
    return demo_pool_of(dev, demos)
