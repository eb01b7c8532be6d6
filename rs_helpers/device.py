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


def native_bf16(device: torch.device | str = "cuda") -> bool:
    """Whether the CUDA GPU computes in bf16 in hardware (Ampere, compute capability 8, or newer).

    ``torch.cuda.is_bf16_supported()`` also says yes where bf16 is only emulated (Colab's T4),
    which is slow there, and the Hugging Face Trainer refuses ``bf16=True`` on such a GPU."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    if torch.version.hip:
        return True
    return torch.cuda.get_device_capability(device)[0] >= 8


def pick_dtype(device: torch.device | str) -> torch.dtype:
    """bf16 on GPUs that compute in it natively, fp16 on other GPUs and mps, fp32 on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if native_bf16(device) else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32
