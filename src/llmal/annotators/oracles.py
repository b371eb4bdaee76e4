"""Build the oracle of one AL run from its annotator's spec (llmal.engine.oracle).

- `annotation: precomputed`: the annotator's own annotation table, replayed (TableOracle).
- `annotation: lazy` (the default for LLM annotators and mixtures): an LLM annotator is asked
  about the acquired items only, through the executors and the response cache (one call, one
  Batch API batch, per acquisition); a mixture asks its members' oracles and fits its
  aggregation on what it has acquired. Human and simulated members are always replayed from
  their tables: their answers do not depend on what else was asked.
A member shared by several mixtures of one run is one oracle object, asked and paid once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from llmal.config import LLM_KINDS, PROMPTS_DIR, TABLE_KINDS
from llmal.engine.oracle import LazyOracle, MixtureOracle, Oracle, TableOracle

QUOTE_SAMPLE = 20   # items rendered to estimate an LLM's price per item before it is asked


def build_oracle(name: str, *, annotators: Mapping[str, Any], mode: str, items: pd.DataFrame,
                 split: pd.DataFrame, tables: Mapping[str, pd.DataFrame], llm: Mapping[str, Any],
                 embeddings: Mapping[str, Any] | None = None, state_dir: Path | None = None,
                 log: Callable[[str], None] = print) -> Oracle:
    """`tables`: annotation tables by annotator name (the annotator's own when precomputed; the
    human/simulated members' when lazy). `llm`: labels, prices and cache_dir. `embeddings`:
    features by encoder name, for k-NN demonstrations. `state_dir`: this run's Batch API state."""
    if mode == "precomputed":   # the table was made with the demonstrations its LLMs were shown
        return TableOracle(name, _table(tables, name), demonstration_ids(annotators, name, items, split),
                           gold=aggregator_gold_ids(annotators, name, split))
    built: dict[str, Oracle] = {}

    def make(who: str) -> Oracle:
        if who in built:
            return built[who]
        spec = annotators[who]
        kind = spec["kind"]
        if kind in TABLE_KINDS:
            oracle: Oracle = TableOracle(who, _table(tables, who))
        elif kind in LLM_KINDS:
            oracle = _llm_oracle(who, spec, items, split, llm, embeddings or {}, state_dir, log)
        elif kind == "mixture" and llm.get("task") == "ner":
            from llmal.ner.mixture import annotate_ner_mixture

            oracle = MixtureOracle(who, {m: make(m) for m in spec["members"]},
                                   lambda t, s=spec, gold=None: annotate_ner_mixture(t, s))
        elif kind == "mixture":
            from llmal.annotators.mixture import annotate_mixture, learned_gold_ids

            labels = llm["labels"]["names"]
            oracle = MixtureOracle(
                who, {m: make(m) for m in spec["members"]},
                lambda t, s=spec, gold=None: annotate_mixture(t, s, labels, log=lambda _m: None, gold=gold),
                gold=learned_gold_ids(spec, _dev_ids(split)))
        else:
            raise ValueError(f"annotators.{who}.kind: {kind!r} has no oracle")
        built[who] = oracle
        return oracle

    return make(name)


def demonstration_ids(annotators: Mapping[str, Any], name: str, items: pd.DataFrame,
                      split: pd.DataFrame) -> list[str]:
    """The gold demonstration pools of every LLM annotator in `name`'s tree, each item once."""
    from llmal.annotators.run import demonstration_pool
    from llmal.config import annotator_tree

    out: list[str] = []
    for who in annotator_tree(dict(annotators), name):
        spec = annotators[who]
        if spec["kind"] in LLM_KINDS and spec.get("demonstrations"):
            pool = demonstration_pool(items, split, dict(spec["demonstrations"]))
            out += [i for i in pool["id"].astype(str) if i not in out]
    return out


def _dev_ids(split: pd.DataFrame) -> list[str]:
    return split.loc[split["split"] == "dev", "id"].astype(str).tolist()


def aggregator_gold_ids(annotators: Mapping[str, Any], name: str, split: pd.DataFrame) -> list[str]:
    """The gold sets of every learned mixture in `name`'s tree, each item once (dev items)."""
    from llmal.annotators.mixture import learned_gold_ids
    from llmal.config import annotator_tree

    out: list[str] = []
    for who in annotator_tree(dict(annotators), name):
        if annotators[who]["kind"] == "mixture":
            out += [i for i in learned_gold_ids(annotators[who], _dev_ids(split)) if i not in out]
    return out


def _table(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    if name not in tables:
        raise ValueError(f"annotator {name!r}: no annotation table among the run's inputs")
    return tables[name]


def _llm_oracle(name: str, spec: Mapping[str, Any], items: pd.DataFrame, split: pd.DataFrame,
                llm: Mapping[str, Any], embeddings: Mapping[str, Any], state_dir: Path | None,
                log: Callable[[str], None]) -> LazyOracle:
    from llmal.annotators.run import demonstration_pool, items_to_annotate
    from llmal.llm.annotate import annotate_with_llm

    labels = llm["labels"]
    visible = items_to_annotate(items, split, dict(spec))
    by_id = items.assign(id=items["id"].astype(str)).set_index("id", drop=False)
    asked = {k: v for k, v in spec.items() if k != "limit"}   # the sample is the oracle's `visible`
    demo_pool, feats = None, None
    if spec.get("demonstrations"):
        demo_pool = demonstration_pool(items, split, dict(spec["demonstrations"]))
        encoder = spec["demonstrations"].get("encoder") or next(iter(embeddings), None)
        if encoder not in embeddings:
            raise ValueError(f"annotators.{name}.demonstrations: no embeddings of encoder {encoder!r}")
        feats = (embeddings[encoder].ids, embeddings[encoder].dense)
    cache_dir = Path(llm.get("cache_dir") or ".llmal-cache")
    state = Path(state_dir) / name if state_dir is not None else cache_dir / "batches" / name

    if llm.get("task") == "ner":
        return _ner_llm_oracle(name, spec, by_id, visible, llm, feats, demo_pool, cache_dir, state, log)

    def fetch(ids: list[str]) -> pd.DataFrame:
        return annotate_with_llm(
            by_id.loc[ids].reset_index(drop=True), spec=asked, label_names=labels["names"],
            positive=labels.get("positive"), prompts_dir=PROMPTS_DIR, prices=llm.get("prices") or {},
            cache_path=cache_dir / "responses.sqlite", state_dir=state, embeddings=feats,
            demo_pool=demo_pool, log=log, name=name, cache_mode=str(llm.get("cache_mode") or "local"))

    def quote(ids: list[str]) -> np.ndarray:
        return np.full(len(ids), _price_per_item(name, spec, by_id.loc[ids[:QUOTE_SAMPLE]], labels, llm,
                                                 demo_pool))

    return LazyOracle(name, fetch, quote, visible=set(visible["id"].astype(str)),
                      demonstrations=[] if demo_pool is None else demo_pool["id"].astype(str).tolist())


def _ner_llm_oracle(name: str, spec: Mapping[str, Any], by_id: pd.DataFrame, visible: pd.DataFrame,
                    llm: Mapping[str, Any], feats: Any, demo_pool: pd.DataFrame | None,
                    cache_dir: Path, state: Path, log: Callable[[str], None]) -> LazyOracle:
    """An LLM annotator of sentences (task ner), asked about the acquired sentences only. Its
    price per sentence before anything is bought is llmal plan's (llmal.ner.plan: the rendered
    requests of a sample of the sentences asked about, with the gold entities as the answer);
    afterwards the mean of what was paid."""
    from llmal.llm.cost import price_for
    from llmal.ner.llm import annotate_ner_with_llm

    types = [str(t) for t in llm["labels"]["names"]]
    asked = {k: v for k, v in spec.items() if k != "limit"}
    price = price_for(str(spec["model"]), str(spec["kind"]), llm.get("prices"))

    def fetch(ids: list[str]) -> pd.DataFrame:
        return annotate_ner_with_llm(by_id.loc[ids].reset_index(drop=True), spec=asked, types=types,
                                     prices=llm.get("prices") or {}, cache_path=cache_dir / "responses.sqlite",
                                     state_dir=state, embeddings=feats, demo_pool=demo_pool, log=log, name=name,
                                     cache_mode=str(llm.get("cache_mode") or "local"))

    def quote(ids: list[str]) -> np.ndarray:
        from llmal.llm.prompts import load_guidelines
        from llmal.llm.tokens import make_counter
        from llmal.ner.llm import load_ner_prompt
        from llmal.ner.plan import estimate_ner, stand_in_demonstrations

        row = estimate_ner(name, spec, load_ner_prompt(str(spec.get("prompt", "ner")), PROMPTS_DIR),
                           by_id.loc[ids[:QUOTE_SAMPLE]].reset_index(drop=True), types, price,
                           make_counter(spec), stand_in_demonstrations(demo_pool, spec.get("demonstrations")),
                           load_guidelines(spec, PROMPTS_DIR))
        return np.full(len(ids), row.usd_per_item)

    return LazyOracle(name, fetch, quote, visible=set(visible["id"].astype(str)),
                      demonstrations=[] if demo_pool is None else demo_pool["id"].astype(str).tolist())


def _price_per_item(name: str, spec: Mapping[str, Any], sample: pd.DataFrame, labels: Mapping[str, Any],
                    llm: Mapping[str, Any], demo_pool: pd.DataFrame | None) -> float:
    """The planned price of one item (rendered requests, the longest answer): llmal plan's estimate."""
    from llmal.llm.cost import price_for
    from llmal.llm.plan import estimate, fixed_demonstrations
    from llmal.llm.prompts import load_prompt
    from llmal.llm.tokens import make_counter

    template = load_prompt(str(spec["prompt"]), PROMPTS_DIR)
    price = price_for(str(spec["model"]), str(spec["kind"]), llm.get("prices"))
    demos = fixed_demonstrations(demo_pool, spec.get("demonstrations")) if demo_pool is not None else []
    row = estimate(name, spec, template, sample.reset_index(drop=True), labels["names"],
                   labels.get("positive"), price, make_counter(spec), demos)
    return row.usd_per_item
