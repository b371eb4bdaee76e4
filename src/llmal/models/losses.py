"""Per-example losses of the fine-tuning loop: one value per training example, so that sample
weights and learning-to-reweight weights (llmal.models.reweight) act on examples, whether an
example is a text (one class) or a sentence (a tag per token)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

ExampleLosses = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
IGNORE_INDEX = -100   # a token without a label of its own (special tokens, later sub-tokens, padding)


def classification_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy of (n, k) logits against (n,) class indices (in fp32)."""
    return F.cross_entropy(logits.float(), labels, reduction="none")


def indicator_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example binary cross-entropy of (n, k) logits against (n, k) 0/1 (or soft) targets,
    one independent sigmoid output per column, averaged over the k outputs (in fp32): a
    multi-label head's loss."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float(),
                                              reduction="none").mean(dim=1)


def token_example_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sentence loss of a tagger: the mean cross-entropy over the sentence's labelled tokens
    ((n, L, k) logits, (n, L) tag indices with IGNORE_INDEX elsewhere; 0 for a sentence with no
    labelled token), so one sentence is one example for sample and meta weights."""
    per_token = F.cross_entropy(logits.float().transpose(1, 2), labels, reduction="none",
                                ignore_index=IGNORE_INDEX)
    counts = (labels != IGNORE_INDEX).sum(dim=1).clamp(min=1)
    return per_token.sum(dim=1) / counts
