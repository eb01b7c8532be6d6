"""Device and dtype choice: cuda, then mps, then cpu; bf16 where the GPU supports it. Also the
stage timer, which must synchronise an asynchronous CUDA device to time anything on it."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager

import torch


KINDS = ("cpu", "cuda", "mps", "auto")


def check_device(name: str) -> str:
    """``name`` if this machine has that device (cpu, cuda, cuda:N, mps or auto), else ValueError.

    Checked when the option is parsed, so ``--device tpu`` or ``--device cuda`` on a machine
    without a GPU stops at once with a message instead of a traceback after loading models."""
    text = str(name).strip().lower()
    kind, _, index = text.partition(":")
    if kind not in KINDS or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"{name!r} is not a device: use cpu, cuda, cuda:N, mps or auto")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name!r}: this machine has no usable CUDA GPU (use cpu)")
        if index and int(index) >= torch.cuda.device_count():
            raise ValueError(f"{name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"numbered 0..{torch.cuda.device_count() - 1}")
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{name!r}: Apple's mps is not available here (use cpu)")
    return text


def pick_device(explicit: str | torch.device | None = None) -> torch.device:
    """Return ``explicit`` if given, else ``$RS_HELPERS_DEVICE``, else the best available device."""
    explicit = explicit if explicit is not None else os.environ.get("RS_HELPERS_DEVICE")
    if isinstance(explicit, torch.device):
        return explicit
    if explicit is not None and str(explicit).strip().lower() != "auto":
        try:
            return torch.device(check_device(explicit))
        except ValueError as exc:
            from rs_helpers.errors import BadInputError

            source = "--device" if explicit != os.environ.get("RS_HELPERS_DEVICE") else "RS_HELPERS_DEVICE"
            raise BadInputError(f"{source}: {exc}") from None
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


@contextmanager
def stage_timer(timings: dict, name: str, device: torch.device | str | None = None):
    """Add the seconds the block takes to ``timings[name]``, synchronising ``device`` before and
    after when it is a CUDA device (None or a CPU: no synchronise). Without that, a stage's GPU
    time lands on whichever later stage first waits for the GPU; ``--timings`` and the benches
    read these."""
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    yield
    if cuda:
        torch.cuda.synchronize(device)
    timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
