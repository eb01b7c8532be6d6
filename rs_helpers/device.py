"""Device and dtype choice: cuda, then mps, then cpu; bf16 where the GPU supports it."""
from __future__ import annotations

import os

import torch


def pick_device(explicit: str | torch.device | None = None) -> torch.device:
    """Return ``explicit`` if given, else ``$RS_HELPERS_DEVICE``, else the best available device."""
    explicit = explicit if explicit is not None else os.environ.get("RS_HELPERS_DEVICE")
    if explicit is not None and str(explicit) != "auto":
        return torch.device(explicit)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device | str) -> torch.dtype:
    """bf16 on GPUs that support it, fp16 on other GPUs and mps, fp32 on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32
