"""The generative branch: referring and reasoning segmentation. A vision-language model writes
click prompts (the prompt, the backends, the parser), SAM turns them into a mask; and click
simulation from ground truth, which makes the LoRA training targets.

Short, stable imports for notebooks (``from rs_helpers.refer import Click``); the package's own
modules import each other by their real paths. Names load on first use, so importing the folder
costs nothing and creates no import cycle."""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Click": "clicks",
    "ClickParseError": "clicks",
    "parse_clicks": "clicks",
    "to_pixels": "clicks",
    "format_clicks": "clicks",
    "SYSTEM_PROMPT": "prompts",
    "build_prompt": "prompts",
    "make_backend": "backends",
    "ReplayBackend": "vlm_replay",
    "QwenBackend": "vlm_qwen",
    "build_messages": "vlm_qwen",
    "build_chat": "vlm_qwen",
    "to_pil": "vlm_qwen",
    "refer": "pipeline",
    "simulate_clicks": "click_sim",
    "sam_predictor_fn": "click_sim",
    "first_click": "click_sim",
    "next_click": "click_sim",
    "padded_distance": "click_sim",
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
