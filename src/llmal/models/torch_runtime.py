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
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if torch.cuda.device_count() > 1:
        # several jobs share the GPUs of a workstation (profiles/default's gpu_slots): each
        # takes the visible GPU with the most free memory when it starts
        free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
        return torch.device(f"cuda:{free.index(max(free))}")
    return torch.device("cuda")


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


def use_deterministic(enabled: bool) -> None:
    """Deterministic kernels (recipe key `deterministic`): the same seed and data give the same
    weights on a GPU, at some speed. cuBLAS needs its workspace size fixed before its first
    call, so this runs before the model is built; an op without a deterministic kernel raises
    instead of silently differing run to run."""
    if not enabled:
        return
    import os

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """`torch.compile` the model for training/inference when asked (dynamic shapes: batches are
    padded per batch); the returned module shares its parameters with `model`."""
    return torch.compile(model, dynamic=True) if enabled else model  # type: ignore[return-value]


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
