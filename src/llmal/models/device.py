"""Device choice: the GPU when there is one, else the CPU."""
from __future__ import annotations


def pick_device(requested: str | None = None) -> str:
    if requested and requested != "auto":
        return requested
    try:
        import torch
    except ImportError:
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"
