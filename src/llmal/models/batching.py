"""Token batches for transformer training and inference.

Texts are tokenized once per id (`TokenCache`), batches group sequences of similar length
(`length_sorted_batches`) and are padded only to their own longest sequence (`collate`), so short
social-media comments do not pay for the model's maximum length.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from llmal.models.losses import IGNORE_INDEX


class TokenCache:
    """Token ids per item id, computed on first use and kept for later AL rounds."""

    def __init__(self, tokenizer: Any, texts: Mapping[str, str], *, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.texts = texts
        self.max_length = max_length
        self._ids: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def get(self, ids: Sequence[str]) -> list[np.ndarray]:
        """Token id arrays (with special tokens, truncated to max_length) in the order of `ids`."""
        missing = [i for i in dict.fromkeys(ids) if i not in self._ids]
        if missing:
            unknown = [i for i in missing if i not in self.texts]
            if unknown:
                raise KeyError(f"no text for item ids {unknown[:5]} "
                               f"({len(unknown)} unknown of {len(missing)} requested)")
            encoded = self.tokenizer([self.texts[i] for i in missing], truncation=True,
                                     max_length=self.max_length, add_special_tokens=True)
            for item_id, tokens in zip(missing, encoded["input_ids"]):
                self._ids[item_id] = np.asarray(tokens, dtype=np.int64)
        return [self._ids[i] for i in ids]


def length_sorted_batches(lengths: Sequence[int], batch_size: int, *,
                          generator: np.random.Generator | None = None,
                          bucket_batches: int = 50) -> list[np.ndarray]:
    """Split positions 0..n-1 into batches of similar sequence length.

    Without a generator (inference) all positions are sorted by length. With one (training) the
    positions are shuffled, cut into buckets of `bucket_batches` batches, sorted by length inside
    each bucket, and the resulting batches are shuffled: similar lengths per batch, random order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    lengths = np.asarray(lengths)
    if generator is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    order = generator.permutation(len(lengths))
    bucket = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), bucket):
        chunk = order[start:start + bucket]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in generator.permutation(len(batches))]


@dataclass
class Batch:
    """Padded token ids for one step, with optional targets and per-example loss weights."""
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    positions: np.ndarray | None = None  # rows of the training set (host side), when known

    @property
    def n_tokens(self) -> int:
        """Real (non-padding) tokens in the batch."""
        return int(self.attention_mask.sum())

    def to(self, device: torch.device, *, non_blocking: bool = False) -> "Batch":
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)
        return Batch(move(self.input_ids), move(self.attention_mask),  # type: ignore[arg-type]
                     move(self.labels), move(self.weights), self.positions)


def collate(sequences: Sequence[np.ndarray], *, pad_id: int,
            labels: np.ndarray | None = None, weights: np.ndarray | None = None,
            pad_to_multiple_of: int = 1, pin_memory: bool = False) -> Batch:
    """Right-pad `sequences` to the longest one (rounded up to `pad_to_multiple_of`).

    `labels` holds one class per sequence, or (a tagger's) one array per sequence with a label
    per token id, padded here with IGNORE_INDEX, or a float (n, k) array of targets per sequence
    (a multi-output head's 0/1 or soft targets), kept as float."""
    longest = max(len(s) for s in sequences)
    width = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        input_ids[row, :len(seq)] = seq
        mask[row, :len(seq)] = 1
    targets = isinstance(labels, np.ndarray) and labels.ndim == 2 and labels.dtype.kind == "f"
    if labels is not None and len(labels) and np.ndim(labels[0]) == 1 and not targets:
        per_token = np.full((len(sequences), width), IGNORE_INDEX, dtype=np.int64)
        for row, tags in enumerate(labels):
            if len(tags) != len(sequences[row]):
                raise ValueError(f"token labels of row {row}: {len(tags)} for "
                                 f"{len(sequences[row])} token ids")
            per_token[row, :len(tags)] = tags
        labels = per_token
    batch = Batch(torch.from_numpy(input_ids), torch.from_numpy(mask),
                  None if labels is None else torch.as_tensor(
                      labels, dtype=torch.float32 if targets else torch.long),
                  None if weights is None else torch.as_tensor(weights, dtype=torch.float32))
    if pin_memory:
        batch = Batch(*(None if t is None else t.pin_memory()
                        for t in (batch.input_ids, batch.attention_mask,
                                  batch.labels, batch.weights)))  # type: ignore[arg-type]
    return batch
