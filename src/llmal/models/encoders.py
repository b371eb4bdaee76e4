"""Encoders turn texts into features once per dataset; every AL run reuses the file.

File: results/{ds}/embeddings/{encoder}.npz holding `ids` and the matrix (dense `X`, or the CSR
parts `data`, `indices`, `indptr`, `shape` for TF-IDF). One file instead of `.npy` + ids keeps
rows and ids from ever drifting apart.
TF-IDF is fitted on pool and dev texts only (vocabulary and idf), then applied to every item,
so nothing of the test set shapes the features; `transductive: true` fits it on test texts too.
"""
from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import pandas as pd

import numpy as np
import scipy.sparse as sp

from llmal.hub import resolve_model


@dataclass
class Features:
    ids: np.ndarray
    X: np.ndarray | sp.csr_matrix

    def __post_init__(self) -> None:
        self._row = {str(i): k for k, i in enumerate(self.ids)}

    def rows(self, ids: Sequence[str]) -> np.ndarray | sp.csr_matrix:
        try:
            idx = [self._row[str(i)] for i in ids]
        except KeyError as e:
            raise KeyError(f"id {e.args[0]!r} has no row in the embeddings") from None
        return self.X[idx]

    @property
    def dense(self) -> np.ndarray:
        return self.X.toarray() if sp.issparse(self.X) else self.X


def save_features(features: Features, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    ids = np.asarray(features.ids, dtype=str)
    if sp.issparse(features.X):
        X = sp.csr_matrix(features.X)
        np.savez(tmp, ids=ids, data=X.data, indices=X.indices, indptr=X.indptr,
                 shape=np.asarray(X.shape))
    else:
        np.savez(tmp, ids=ids, X=np.asarray(features.X, dtype=np.float32))
    tmp.replace(path)


def load_features(path: str | Path, *, mmap: bool = True) -> Features:
    """The features of one encoder file. `mmap`: the matrix's arrays are memory-mapped from the
    file (save_features stores them uncompressed), so a run reads only the pages of the rows it
    touches and concurrent runs share them in the page cache; copy-on-write, so no run can change
    the file. Values are the same either way."""
    with np.load(path, allow_pickle=False) as z:
        names = set(z.files)
        mapped = _mapped_members(path, names - {"ids", "shape"}) if mmap else {}

        def get(name: str) -> np.ndarray:
            return mapped[name] if name in mapped else z[name]

        if "X" in names:
            return Features(z["ids"], get("X"))
        return Features(z["ids"], sp.csr_matrix((get("data"), get("indices"), get("indptr")),
                                                shape=tuple(z["shape"])))


def _mapped_members(path: str | Path, names: set[str]) -> dict[str, np.ndarray]:
    """Arrays of an .npz stored without compression, memory-mapped in place (copy-on-write);
    a compressed or object member is left out (np.load reads it)."""
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for name in names:
            info = zf.getinfo(f"{name}.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                continue
            fh.seek(info.header_offset)
            local = fh.read(30)   # the local file header: its name and extra field lengths
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(fh)
            if dtype.hasobject or int(np.prod(shape)) == 0:
                continue
            out[name] = np.memmap(fh.name, dtype=dtype, mode="c", offset=fh.tell(), shape=shape,
                                  order="F" if fortran else "C").view(np.ndarray)
    return out


def encode_tfidf(texts: Sequence[str], spec: dict[str, Any],
                 fit_on: Sequence[bool] | None = None) -> sp.csr_matrix:
    """TF-IDF of every text, fitted on the texts where `fit_on` is true (all when None)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(max_features=int(spec.get("max_features", 20000)),
                          ngram_range=tuple(spec.get("ngram_range", [1, 2])),
                          min_df=int(spec.get("min_df", 2)), sublinear_tf=True)
    texts = list(texts)
    fit_texts = texts if fit_on is None else [t for t, f in zip(texts, fit_on) if f]
    vec.fit(fit_texts)
    return vec.transform(texts).astype(np.float32).tocsr()


def encode_sentence_transformer(texts: Sequence[str], spec: dict[str, Any],
                                device: str | None = None) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    from llmal.models.torch_runtime import select_device  # torch: optional, heavy

    model = SentenceTransformer(resolve_model(spec["model"]), device=device or str(select_device()))
    return model.encode(list(texts), batch_size=int(spec.get("batch_size", 64)),
                        normalize_embeddings=bool(spec.get("normalize", True)),
                        show_progress_bar=True, convert_to_numpy=True).astype(np.float32)


def encode(ids: Sequence[str], texts: Sequence[str], spec: dict[str, Any],
           fit_on: Sequence[bool] | None = None) -> Features:
    """Features of every item; a fitted encoder (TF-IDF) fits on the items where `fit_on` is
    true (pool and dev: see fit_mask), every item when None."""
    kind = spec["kind"]
    if kind == "tfidf":
        X: Any = encode_tfidf(texts, spec, fit_on)
    elif kind == "sentence_transformer":
        X = encode_sentence_transformer(texts, spec)
    else:
        raise ValueError(f"encoder kind {kind!r} has no frozen features (it is fine-tuned by a recipe)")
    return Features(np.asarray(ids, dtype=str), X)


def fit_mask(ids: Sequence[str], split: "pd.DataFrame", spec: dict[str, Any]) -> list[bool] | None:
    """The items a fitted encoder may learn from: pool and dev, or all with `transductive: true`."""
    if spec.get("transductive"):
        return None
    test = set(split.loc[split["split"] == "test", "id"].astype(str))
    return [str(i) not in test for i in ids]
