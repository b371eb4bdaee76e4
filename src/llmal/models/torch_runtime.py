"""Where and how a torch model runs: device choice, autocast dtype, seeding."""
from __future__ import annotations

import contextlib
from typing import Any, ContextManager

import torch


def select_device(requested: str | None = None) -> torch.device:
    """The requested device, else CUDA when present, else CPU."""
    if requested not in (None, "", "auto"):
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {requested!r} was requested but CUDA is not available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_dtype(device: torch.device, bf16: Any = "auto") -> torch.dtype | None:
    """bfloat16 for autocast, or None for plain fp32.

    `bf16` is "auto" (bf16 on CUDA devices that support it, fp32 elsewhere), true or false.
    """
    if bf16 == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    if isinstance(bf16, bool):
        return torch.bfloat16 if bf16 else None
    raise ValueError(f"recipe key 'bf16' must be 'auto', true or false, got {bf16!r}")


def autocast(device: torch.device, dtype: torch.dtype | None) -> ContextManager[Any]:
    """Mixed-precision context for forward passes (a no-op for fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed torch's global generators (CPU and all CUDA devices): head init and dropout
    draw from them."""
    torch.manual_seed(seed)


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """`torch.compile` the model for training/inference when asked (dynamic shapes: batches are
    padded per batch); the returned module shares its parameters with `model`."""
    return torch.compile(model, dynamic=True) if enabled else model  # type: ignore[return-value]


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
