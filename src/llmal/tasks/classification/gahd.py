"""The GAHD dataset (German Adversarial Hate speech Dataset), read locally or downloaded once.

Goldzycher, Röttger, Schneider (NAACL 2024), CC BY 4.0. The pinned file is
gahd_disaggregated.csv at commit 2a4e919 of github.com/jagol/gahd; it is downloaded into the
cache directory and checked against its sha256 before use. GAHD's labels are 0 = not hate
speech, 1 = hate speech; its `source` (dynabench | translation | news | contrastive) becomes the
topic, its official split (train/dev/test) becomes pool/dev/test, and the slash-separated
`annotator_labels` ("1/0/1") become ann_1..ann_4 by position.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from llmal.datasets.download import fetch_verified
from llmal.datasets.loaders import load_table, map_columns

GAHD_URL = ("https://raw.githubusercontent.com/jagol/gahd/"
            "2a4e919d5208d99a885824c63583d898d02ca1a1/gahd_disaggregated.csv")
GAHD_SHA256 = "e9cf8c06c572419a127f868bc45d41e00a0c0e04fe35b5f1ad9dc6e514f3703c"
GAHD_FILENAME = "gahd_disaggregated.csv"
GAHD_LABEL_NAMES = ("not_hate", "hate")
GAHD_COLUMNS = {
    "id": "gahd_id", "text": "text", "gold": "label", "annotators": "annotator_labels",
    "topic": "source", "split": "split", "meta": ["round", "model_prediction", "expert_labels"],
}
GAHD_SPLIT_MAP = {"train": "pool", "dev": "dev", "test": "test"}
GAHD_SOURCE = "gahd"


def gahd_file(path: str | Path | None, cache_dir: str | Path, *, url: str = GAHD_URL,
              sha256: str = GAHD_SHA256) -> Path:
    """The local GAHD csv: `path` when given, else the verified download in `cache_dir`."""
    if path is not None:
        return Path(path)
    return fetch_verified(url, Path(cache_dir) / GAHD_FILENAME, sha256)


def load_gahd(path: str | Path | None, cache_dir: str | Path, *,
              label_names: Sequence[str] = GAHD_LABEL_NAMES, url: str = GAHD_URL,
              sha256: str = GAHD_SHA256) -> pd.DataFrame:
    """GAHD as an items table (not yet validated). `label_names` must have two entries: index 0
    is "not hate speech", index 1 "hate speech"."""
    csv = gahd_file(path, cache_dir, url=url, sha256=sha256)
    df = load_table(csv, format="csv", string_columns=("gahd_id", "annotator_labels"))
    return map_columns(df, GAHD_COLUMNS, source=GAHD_SOURCE, label_names=label_names,
                       annotator_sep="/", split_map=GAHD_SPLIT_MAP, where=str(csv))
