"""Config of the fine-tuning recipe: per-encoder settings and the recipe, checked on load.

Numbers are coerced (YAML reads `5e-5` as a string) and every error names the key at fault.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping


@dataclass(frozen=True)
class TransformerEncoderSettings:
    """Encoder config of kind "transformer": the model and its per-encoder hyperparameters."""
    model: str
    kind: str = "transformer"
    max_length: int = 128
    batch_size: int = 16
    eval_batch_size: int = 64
    lr: float = 5e-5
    epochs: int = 3


@dataclass(frozen=True)
class FineTuneRecipe:
    """Recipe config of kind "finetune"."""
    kind: str = "finetune"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    patience: int = 2
    class_weight: str = "none"
    warm_start: bool = False
    grad_clip: float | None = 1.0
    bf16: Any = "auto"
    compile: bool = False
    deterministic: bool = False
    gpus: int = 1  # read by the Snakemake rule (resources: gpu), not by the classifier
    meta_batch_size: int | None = None   # learning to reweight: meta items per step (None: all)


_POSITIVE_INTS = {"max_length", "batch_size", "eval_batch_size", "epochs", "patience"}
_FLOATS = {"lr", "warmup_ratio", "weight_decay", "grad_clip"}
_BOOLS = {"warm_start", "compile", "deterministic"}
_CHOICES = {"class_weight": ("none", "balanced"), "bf16": ("auto", True, False)}


def _checked(key: str, value: Any, where: str) -> Any:
    if key in _POSITIVE_INTS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{where}: {key} must be a positive integer, got {value!r}")
    elif key == "meta_batch_size":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{where}: meta_batch_size must be a positive integer, got {value!r}")
    elif key == "gpus":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where}: gpus must be an integer >= 0, got {value!r}")
    elif key in _FLOATS:
        if value is None and key == "grad_clip":
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {key} must be a number, got {value!r}") from None
        if value < 0 or (key == "lr" and value == 0) or (key == "warmup_ratio" and value > 1):
            raise ValueError(f"{where}: {key} is out of range: {value!r}")
    elif key in _BOOLS:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: {key} must be true or false, got {value!r}")
    elif key in _CHOICES and value not in _CHOICES[key]:
        raise ValueError(f"{where}: {key} must be one of {list(_CHOICES[key])}, got {value!r}")
    return value


def _parse(cls: type, config: Mapping[str, Any], where: str, kind: str) -> Any:
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {allowed}")
    if config.get("kind", kind) != kind:
        raise ValueError(f"{where}: kind must be {kind!r}, got {config['kind']!r}")
    return cls(**{k: _checked(k, v, where) for k, v in config.items()})


def parse_encoder(config: Mapping[str, Any]) -> TransformerEncoderSettings:
    if not config.get("model"):
        raise ValueError("encoder config: key 'model' (Hugging Face id, local path or packaged "
                         "alias) is required for kind 'transformer'")
    return _parse(TransformerEncoderSettings, config, "encoder config", "transformer")


def parse_recipe(config: Mapping[str, Any]) -> FineTuneRecipe:
    return _parse(FineTuneRecipe, config, "recipe config", "finetune")
