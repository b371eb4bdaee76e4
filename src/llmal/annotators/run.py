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
             log: Callable[[str], None] = print) -> pd.DataFrame:
    """`member_tables` (member name -> annotation table) are a mixture's inputs; other kinds ignore them."""
    labels = config["labels"]
    kind = spec["kind"]
    if kind == "mixture":
        from llmal.annotators.mixture import annotate_mixture

        missing = [m for m in spec["members"] if m not in (member_tables or {})]
        if missing:
            raise ValueError(f"annotator {name!r}: no annotation table for member(s) {missing}")
        visible = set(split.loc[split["split"].isin(["pool", "dev"]), "id"].astype(str))
        tables = {m: member_tables[m][member_tables[m]["id"].astype(str).isin(visible)]  # type: ignore[index]
                  for m in spec["members"]}
        return make_annotations(annotate_mixture(tables, spec, labels["names"], log=log))
    todo = items_to_annotate(items, split, spec)
    if kind == "human":
        from llmal.annotators.human import annotate_human
        table = annotate_human(todo, spec)
    elif kind == "simulated":
        from llmal.annotators.simulated import annotate_simulated
        table = annotate_simulated(todo, spec, labels["names"])
    elif kind in LLM_KINDS:
        from llmal.encoders import load_features
        from llmal.llm.annotate import annotate_with_llm

        embeddings = demo_pool = None
        if spec.get("demonstrations"):
            feats = load_features(embeddings_path)
            embeddings = (feats.ids, feats.dense)
            demo_pool = demonstration_pool(items, split, spec["demonstrations"])
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


def demonstration_pool(items: pd.DataFrame, split: pd.DataFrame, demos: dict[str, Any]) -> pd.DataFrame:
    """The small gold pool drawn from the dev split (S3), stratified by gold class (every class
    gets its share, at least one item where it can): the only human gold an LLM annotator sees.
    An AL run buys these gold labels through its ledger (purpose `demonstrations`)."""
    from llmal.llm.demonstrations import demo_pool_of

    dev_ids = set(split.loc[split["split"] == "dev", "id"].astype(str))
    dev = items[items["id"].astype(str).isin(dev_ids)].sort_values("id")
    return demo_pool_of(dev, demos)
