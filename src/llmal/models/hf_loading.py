"""Load a Hugging Face encoder with a sequence- or token-classification head, offline-friendly."""
from __future__ import annotations

from typing import Any

import torch

from llmal.hub import resolve_model


def load_sequence_classifier(name: str, n_classes: int, *,
                             attn_implementation: str | None = "sdpa") -> tuple[Any, Any]:
    """(tokenizer, model) for `name` (HF id, local path or packaged alias).

    The classification head is created for `n_classes` classes (a saved head of another size is
    replaced); its random init draws from torch's global generator, so seed before calling.
    SDPA attention is requested and silently dropped for architectures that lack it.
    """
    from transformers import AutoModelForSequenceClassification

    return _load_with_head(AutoModelForSequenceClassification, "sequence classifier", name,
                           n_classes, attn_implementation)


def load_token_classifier(name: str, n_tags: int, *,
                          attn_implementation: str | None = "sdpa") -> tuple[Any, Any]:
    """(tokenizer, model) with a token-classification head of `n_tags` outputs (as above)."""
    from transformers import AutoModelForTokenClassification

    return _load_with_head(AutoModelForTokenClassification, "token classifier", name, n_tags,
                           attn_implementation)


def _load_with_head(auto_class: Any, what: str, name: str, n_classes: int,
                    attn_implementation: str | None) -> tuple[Any, Any]:
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = resolve_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise OSError(f"cannot load the tokenizer of encoder model {name!r} (resolved to "
                      f"{path!r}): {err}") from err
    kwargs: dict[str, Any] = {"num_labels": n_classes, "ignore_mismatched_sizes": True}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized head" warnings are expected here
    try:
        try:
            model = auto_class.from_pretrained(path, attn_implementation=attn_implementation,
                                               **kwargs)
        except (ValueError, ImportError):
            if attn_implementation is None:
                raise
            model = auto_class.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as err:
        raise OSError(f"cannot load encoder model {name!r} (resolved to {path!r}) as a "
                      f"{what}: {err}") from err
    finally:
        hf_logging.set_verbosity(verbosity)
    ensure_pad_token(tokenizer, model)
    return tokenizer, model


def ensure_pad_token(tokenizer: Any, model: Any) -> int:
    """Give tokenizer and model config a pad token (decoder LMs often ship without one).

    Reuses EOS, else UNK, else adds "[PAD]" and grows the embedding matrix. Returns the pad id.
    """
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        elif tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token
        else:
            tokenizer.add_special_tokens({"pad_token": "[PAD]"})
            model.resize_token_embeddings(len(tokenizer))
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return int(tokenizer.pad_token_id)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def max_positions(model: Any) -> int | None:
    """The longest input the model's position embeddings allow, when its config says."""
    return getattr(model.config, "max_position_embeddings", None)
