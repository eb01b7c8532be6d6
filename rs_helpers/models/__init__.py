"""Loading SAM, CLIP and Qwen-VL, with real weights or as tiny random stand-ins, and the checkpoint cache.

Short, stable imports for notebooks (``from rs_helpers.models import load_sam``); the package's own
modules import each other by their real paths. Names load on first use, so importing the folder
costs nothing and creates no import cycle."""
from __future__ import annotations

import importlib

_EXPORTS = {
    "load_sam": "sam",
    "build_tiny_sam": "sam",
    "SAM_VARIANTS": "sam",
    "DEFAULT_SAM": "sam",
    "load_clip": "clip",
    "ClipModel": "clip",
    "DEFAULT_CLIP": "clip",
    "DEFAULT_CLIP_PRETRAINED": "clip",
    "load_qwen": "qwen",
    "QwenVL": "qwen",
    "DEFAULT_QWEN": "qwen",
    "run_checks": "doctor",
    "format_checks": "doctor",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
