"""Build the oracle of one AL run from its annotator's spec (llmal.engine.oracle).

- `annotation: precomputed`: the annotator's own annotation table, replayed (TableOracle).
- `annotation: lazy` (the default for LLM annotators and mixtures): an LLM annotator is asked
  about the acquired items only, through the executors and the response cache (one call, one
  Batch API batch, per acquisition); a mixture asks its members' oracles and fits its
  aggregation on what it has acquired. Human and simulated members are always replayed from
  their tables: their answers do not depend on what else was asked.
A routed annotator (llmal.engine.routed) asks its primary, then its fallback for the items its rule
routes; precomputed, both replay their own tables (routing still happens round by round).
A member shared by several mixtures of one run is one oracle object, asked and paid once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from llmal.annotate.kinds import TABLE_KINDS, annotator_tree
from llmal.annotate.run import demonstration_pool, items_to_annotate
from llmal.engine.oracle import LazyOracle, MixtureOracle, Oracle, TableOracle
from llmal.engine.routed import RoutedOracle
from llmal.llm.executors import LLM_KINDS
from llmal.tasks.base import Task

QUOTE_SAMPLE = 20   # items rendered to estimate an LLM's price per item before it is asked


def build_oracle(name: str, *, annotators: Mapping[str, Any], mode: str, items: pd.DataFrame,
                 split: pd.DataFrame, tables: Mapping[str, pd.DataFrame], llm: Mapping[str, Any],
                 task: Task, embeddings: Mapping[str, Any] | None = None, state_dir: Path | None = None,
                 log: Callable[[str], None] = print) -> Oracle:
    """`tables`: annotation tables by annotator name (the annotator's own when precomputed; the
    human/simulated members' when lazy). `llm`: labels, prices and cache_dir. `embeddings`:
    features by encoder name, for k-NN demonstrations. `state_dir`: this run's Batch API state."""
    if mode == "precomputed" and annotators[name]["kind"] == "routed":
        # its primary's and fallback's tables, routed round by round during the run
        spec = annotators[name]
        return RoutedOracle(name, *(build_oracle(m, annotators=annotators, mode=mode, items=items, split=split,
                                                 tables=tables, llm=llm, task=task, embeddings=embeddings,
                                                 state_dir=state_dir, log=log)
                                    for m in (spec["primary"], spec["fallback"])), spec)
    if mode == "precomputed":   # the table was made with the demonstrations its LLMs were shown
        return TableOracle(name, _table(tables, name), demonstration_ids(annotators, name, items, split),
                           gold=aggregator_gold_ids(annotators, name, split, task))
    built: dict[str, Oracle] = {}

    def make(who: str) -> Oracle:
        if who in built:
            return built[who]
        spec = annotators[who]
        kind = spec["kind"]
        if kind in TABLE_KINDS:
            oracle: Oracle = TableOracle(who, _table(tables, who))
        elif kind in LLM_KINDS:
            oracle = _llm_oracle(who, spec, items, split, llm, embeddings or {}, state_dir, task, log)
        elif kind == "mixture":
            labels = llm["labels"]
            oracle = MixtureOracle(
                who, {m: make(m) for m in spec["members"]},
                lambda t, s=spec, gold=None: task.aggregate_mixture(t, s, labels, gold=gold, log=lambda _m: None),
                gold=task.mixture_gold_ids(spec, _dev_ids(split)))
        elif kind == "routed":
            oracle = RoutedOracle(who, make(spec["primary"]), make(spec["fallback"]), spec)
        else:
            raise ValueError(f"annotators.{who}.kind: {kind!r} has no oracle")
        built[who] = oracle
        return oracle

    return make(name)


def demonstration_ids(annotators: Mapping[str, Any], name: str, items: pd.DataFrame,
                      split: pd.DataFrame) -> list[str]:
    """The gold demonstration pools of every LLM annotator in `name`'s tree, each item once."""
    out: list[str] = []
    for who in annotator_tree(dict(annotators), name):
        spec = annotators[who]
        if spec["kind"] in LLM_KINDS and spec.get("demonstrations"):
            pool = demonstration_pool(items, split, dict(spec["demonstrations"]))
            out += [i for i in pool["id"].astype(str) if i not in out]
    return out


def _dev_ids(split: pd.DataFrame) -> list[str]:
    return split.loc[split["split"] == "dev", "id"].astype(str).tolist()


def aggregator_gold_ids(annotators: Mapping[str, Any], name: str, split: pd.DataFrame, task: Task) -> list[str]:
    """The gold sets of every learned mixture in `name`'s tree, each item once (dev items)."""
    out: list[str] = []
    for who in annotator_tree(dict(annotators), name):
        if annotators[who]["kind"] == "mixture":
            out += [i for i in task.mixture_gold_ids(annotators[who], _dev_ids(split)) if i not in out]
    return out


def _table(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    if name not in tables:
        raise ValueError(f"annotator {name!r}: no annotation table among the run's inputs")
    return tables[name]


def _llm_oracle(name: str, spec: Mapping[str, Any], items: pd.DataFrame, split: pd.DataFrame,
                llm: Mapping[str, Any], embeddings: Mapping[str, Any], state_dir: Path | None, task: Task,
                log: Callable[[str], None]) -> LazyOracle:
    visible = items_to_annotate(items, split, dict(spec))
    by_id = items.assign(id=items["id"].astype(str)).set_index("id", drop=False)
    demo_pool, feats = None, None
    if spec.get("demonstrations"):
        demo_pool = demonstration_pool(items, split, dict(spec["demonstrations"]))
        encoder = spec["demonstrations"].get("encoder") or next(iter(embeddings), None)
        if encoder not in embeddings:
            raise ValueError(f"annotators.{name}.demonstrations: no embeddings of encoder {encoder!r}")
        feats = (embeddings[encoder].ids, embeddings[encoder].dense)
    cache_dir = Path(llm.get("cache_dir") or ".llmal-cache")
    state = Path(state_dir) / name if state_dir is not None else cache_dir / "batches" / name
    fetch, quote = task.lazy_llm(name, spec, by_id, llm, demonstrations=(feats, demo_pool), cache_dir=cache_dir,
                                 state_dir=state, quote_sample=QUOTE_SAMPLE, log=log)
    return LazyOracle(name, fetch, quote, visible=set(visible["id"].astype(str)),
                      demonstrations=[] if demo_pool is None else demo_pool["id"].astype(str).tolist())
