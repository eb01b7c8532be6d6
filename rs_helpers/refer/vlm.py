"""One interface for every vision-language model that writes click prompts.

A backend takes an RGB image and a prompt and returns a :class:`VLMAnswer` (the raw text and
the token usage of that call). The backends (:mod:`~rs_helpers.refer.vlm_openai`,
:mod:`~rs_helpers.refer.vlm_qwen`, :mod:`~rs_helpers.refer.vlm_replay`) depend on this module
only; :func:`rs_helpers.refer.backends.make_backend` builds one from a spec string.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
DEFAULT_OPENAI_MODEL = "gpt-5"
DEFAULT_QWEN_MODEL = "Qwen/Qwen3-VL-2B-Instruct"
MAX_TOKEN_COUNT = 10**9  # more tokens than any one call can cost: such a count is nonsense


def empty_usage() -> dict:
    return {key: 0 for key in USAGE_KEYS}


def token_count(value) -> int:
    """``value`` as a token count: an integer 0..MAX_TOKEN_COUNT (an integral float is taken);
    anything else (None, text, bool, negative, huge, nan) counts as 0, so that an odd server
    or file never breaks the bookkeeping."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, float):
        if not value.is_integer():  # also nan and inf
            return 0
        value = int(value)
    if not isinstance(value, numbers.Integral):
        return 0
    value = int(value)
    return value if 0 <= value <= MAX_TOKEN_COUNT else 0


def clean_usage(raw) -> dict:
    """The three token counts from a usage mapping (or an object with those attributes)."""
    if raw is None:
        return empty_usage()
    if isinstance(raw, Mapping):
        return {key: token_count(raw.get(key)) for key in USAGE_KEYS}
    return {key: token_count(getattr(raw, key, None)) for key in USAGE_KEYS}


@dataclass
class VLMAnswer:
    """What a model said (``text``), what it cost (``usage``: prompt/completion/total tokens) and
    why it stopped (``finish_reason``: "stop", "length" when cut off at the token limit, or None)."""

    text: str
    usage: dict = field(default_factory=empty_usage)
    finish_reason: str | None = None


@runtime_checkable
class VLMBackend(Protocol):
    """Anything with a ``name`` and ``ask(image_rgb, prompt) -> VLMAnswer``."""

    name: str

    def ask(self, image_rgb: np.ndarray, prompt: str) -> VLMAnswer:  # pragma: no cover - protocol
        ...


@dataclass
class UsageMeter:
    """Sums token usage over calls: ``meter.add(answer.usage)``; ``meter.total`` is a dict."""

    calls: int = 0
    total: dict = field(default_factory=empty_usage)

    def add(self, usage: dict | None) -> None:
        self.calls += 1
        for key, value in clean_usage(usage).items():
            self.total[key] += value

    def as_dict(self) -> dict:
        return {"calls": self.calls, **self.total}
