"""The generative branch: referring and reasoning segmentation. A vision-language model writes
click prompts (the prompt, the backends, the parser), SAM turns them into a mask; and click
simulation from ground truth, which makes the LoRA training targets.

Short, stable imports for notebooks (``from rs_helpers.refer import Click``); the package's own
modules import each other by their real paths. Names load on first use
(:func:`rs_helpers.lazy_exports`)."""
from __future__ import annotations

from rs_helpers import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Click": "clicks",
    "ClickParseError": "clicks",
    "parse_clicks": "clicks",
    "to_pixels": "clicks",
    "format_clicks": "clicks",
    "no_target_answer": "clicks",
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
})
