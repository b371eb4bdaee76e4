"""The prepare stage of `task: ner`: dataset config -> items table and split table.

Items are sentences. The items contract (llmal.contracts) holds them as: `text` = the tokens joined
by single spaces, `gold` = 0 (a sentence has no class; the entity structure is the label),
`meta_tokens` = JSON list of tokens, `meta_tags` = JSON list of gold BIO tags, `meta_split` =
the file's split where files carry one. `labels.names` are the declared entity types.

dataset.kind:
  demo        the SYNTHETIC NER demo (llmal.tasks.ner.demo); keys task: ner, n_items, seed
  conll       CoNLL-style or JSONL files (llmal.tasks.ner.readers): `path`, or `files: [{path,
              split}]`; `format: conll | jsonl` (default by suffix: .jsonl/.json -> jsonl)
  masakhaner  MasakhaNER 2.0 (Adelani et al. 2022, CC BY-NC 4.0): `language` (tsn), `path`
              (a directory with train/dev/test.txt) or downloaded by URL and sha256 into the
              cache; the official train/dev/test become pool/dev/test
The dataset's own split is kept exactly (an official test file stays the test set); without
one, split.test and split.dev fractions are drawn at random, duplicate texts following their
first copy.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from llmal.contracts import ITEM_COLUMNS
from llmal.datasets.download import fetch_verified
from llmal.datasets.errors import DatasetError
from llmal.datasets.loaders import dataset_files
from llmal.datasets.split import assign_split
from llmal.tasks.ner.demo import generate_ner_demo
from llmal.tasks.ner.readers import NerDataError, Sentence, read_sentences

logger = logging.getLogger(__name__)

TOKENS, TAGS, SPLIT = "meta_tokens", "meta_tags", "meta_split"
NER_DATASET_KEYS = {
    "demo": {"name", "kind", "cache_dir", "task", "n_items", "seed", "classes"},   # classes: a schema default, unused
    "conll": {"name", "kind", "cache_dir", "path", "files", "format", "source"},
    "masakhaner": {"name", "kind", "cache_dir", "language", "path"},
}
MASAKHANER_COMMIT = "ba5843cd08aa491d5f96a5e809e71eb9ec461391"
MASAKHANER_URL = ("https://raw.githubusercontent.com/masakhane-io/masakhane-ner/"
                  f"{MASAKHANER_COMMIT}/MasakhaNER2.0/data/{{language}}/{{file}}.txt")
MASAKHANER_TYPES = ("PER", "ORG", "LOC", "DATE")
MASAKHANER_SHA256 = {
    "tsn": {"train": "67681289bce4183df1d6ea6cd1c13a537cad845ef4294b6bffb3be235e46732e",
            "dev": "237ec6ae77d97c1c6d6747ae84efddf0a31fb63766076f43e3b0cb3b302b0aba",
            "test": "495aa5fcef618b25f75a7b652e3da66c16076f5f0f6b7e4a9df1fdf97ebfa114"},
}
_OFFICIAL = {"train": "pool", "dev": "dev", "test": "test"}


def sentences_to_items(sentences: Sequence[Sentence], source: str, split: str | None = None,
                       prefix: str = "") -> pd.DataFrame:
    return pd.DataFrame({
        "id": [prefix + s.id for s in sentences],
        "text": [" ".join(s.tokens) for s in sentences],
        "gold": 0, "topic": "", "source": source,
        TOKENS: [json.dumps(list(s.tokens), ensure_ascii=False) for s in sentences],
        TAGS: [json.dumps(list(s.tags)) for s in sentences],
        **({SPLIT: split} if split else {}),
    })


def masakhaner_files(language: str, path: str | Path | None, cache_dir: str | Path) -> dict[str, Path]:
    """train/dev/test files of one MasakhaNER 2.0 language: under `path`, else downloaded once
    into the cache and checked against the pinned sha256."""
    if path is not None:
        files = {name: Path(path) / f"{name}.txt" for name in _OFFICIAL}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise DatasetError(f"dataset.path: MasakhaNER files missing: {missing}")
        return files
    if language not in MASAKHANER_SHA256:
        raise DatasetError(f"dataset.language: no pinned checksum for MasakhaNER language "
                           f"{language!r} (known: {sorted(MASAKHANER_SHA256)}); give dataset.path")
    return {name: fetch_verified(MASAKHANER_URL.format(language=language, file=name),
                                 Path(cache_dir) / "masakhaner2" / language / f"{name}.txt",
                                 MASAKHANER_SHA256[language][name]) for name in _OFFICIAL}


def load_ner_items(dataset_cfg: Mapping[str, Any], types: Sequence[str], *,
                   cache_dir: str | Path) -> tuple[pd.DataFrame, str]:
    kind = str(dataset_cfg.get("kind"))
    if kind not in NER_DATASET_KEYS:
        raise DatasetError(f"dataset.kind: {kind!r} cannot hold a sequence-labelling task "
                           f"(task: ner needs one of {sorted(NER_DATASET_KEYS)})")
    unknown = sorted(set(dataset_cfg) - NER_DATASET_KEYS[kind])
    if unknown:
        raise DatasetError(f"dataset: unknown key(s) {unknown} for kind {kind!r} with task: ner; "
                           f"allowed: {sorted(NER_DATASET_KEYS[kind])}")
    try:
        if kind == "demo":
            unknown_types = sorted(set(types) - set(MASAKHANER_TYPES))
            if unknown_types:
                raise DatasetError(f"labels.names: the NER demo has the entity types "
                                   f"{list(MASAKHANER_TYPES)}; {unknown_types} never occur")
            sents = generate_ner_demo(int(dataset_cfg.get("n_items", 2000)), int(dataset_cfg.get("seed", 0)))
            return sentences_to_items(sents, "ner_demo"), "NER demo dataset (synthetic)"
        if kind == "masakhaner":
            language = str(dataset_cfg.get("language", "tsn"))
            files = masakhaner_files(language, dataset_cfg.get("path"), cache_dir)
            parts = [sentences_to_items(read_sentences(p, types, "conll"), f"masakhaner2-{language}",
                                        _OFFICIAL[name], prefix=f"{name}:")
                     for name, p in files.items()]
            return pd.concat(parts, ignore_index=True), f"MasakhaNER 2.0 {language}"
        files = dataset_files(dataset_cfg)
        source = str(dataset_cfg.get("source") or dataset_cfg.get("name") or "ner")
        parts = []
        for path, split in files:
            sents = read_sentences(path, types, dataset_cfg.get("format"))
            prefix = f"{Path(path).stem}:" if len(files) > 1 else ""
            parts.append(sentences_to_items(sents, source, split, prefix=prefix))
        return pd.concat(parts, ignore_index=True), ", ".join(p for p, _ in files)
    except NerDataError as e:
        raise DatasetError(str(e)) from None


def ner_split(items: pd.DataFrame, split_cfg: Mapping[str, Any]) -> pd.DataFrame:
    """The dataset's own split, kept exactly; else a seeded random split (see module doc)."""
    cfg = {"test": 0.2, "dev": 0.1, "seed": 0, "use_column": True, **split_cfg}
    if SPLIT in items.columns and cfg["use_column"]:
        split = items[SPLIT].astype(str).to_numpy().copy()
        if not (split == "dev").any() and float(cfg["dev"]) > 0:
            rng = np.random.default_rng(int(cfg["seed"]))
            pool = np.flatnonzero(split == "pool")
            split[rng.choice(pool, size=int(round(float(cfg["dev"]) * len(items))), replace=False)] = "dev"
        return pd.DataFrame({"id": items["id"].astype(str), "split": split})
    return assign_split(items.drop(columns=[SPLIT], errors="ignore"), test=float(cfg["test"]),
                        dev=float(cfg["dev"]), seed=int(cfg["seed"]), use_column=False,
                        log=logger.info)


def prepare_ner(dataset_cfg: Mapping[str, Any], labels_cfg: Mapping[str, Any],
                split_cfg: Mapping[str, Any], *, cache_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    types = [str(t) for t in labels_cfg["names"]]
    items, where = load_ner_items(dataset_cfg, types, cache_dir=cache_dir)
    dup = items["id"].duplicated()
    if dup.any():
        raise DatasetError(f"{where}: duplicate sentence id {items.loc[dup, 'id'].iloc[0]!r}")
    split = ner_split(items, split_cfg)
    counts = split["split"].value_counts()
    if not counts.get("test", 0):
        raise DatasetError(f"{where}: no test sentences")
    logger.info("%s: %d sentences, %d tokens; split %s", where, len(items),
                int(items[TOKENS].map(lambda t: len(json.loads(t))).sum()), counts.to_dict())
    cols = ITEM_COLUMNS + [c for c in items.columns if c not in ITEM_COLUMNS]
    return items[cols].reset_index(drop=True), split


def sentence_tokens(items: pd.DataFrame) -> dict[str, list[str]]:
    return dict(zip(items["id"].astype(str), (json.loads(t) for t in items[TOKENS])))


def sentence_tags(items: pd.DataFrame) -> dict[str, list[str]]:
    return dict(zip(items["id"].astype(str), (json.loads(t) for t in items[TAGS])))
