"""One interface for every vision-language model that writes click prompts.

A backend takes an RGB image and a prompt and returns a :class:`VLMAnswer` (the raw text and
the token usage of that call). ``make_backend("openai:gpt-5")`` or
``make_backend("qwen:Qwen/Qwen3-VL-2B-Instruct")`` builds one from a spec string, so the
command line, the evaluation and the notebooks never care which model answers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import BadInputError

USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
BACKEND_KINDS = ("openai", "qwen")
DEFAULT_OPENAI_MODEL = "gpt-5"
DEFAULT_QWEN_MODEL = "Qwen/Qwen3-VL-2B-Instruct"


def empty_usage() -> dict:
    return {key: 0 for key in USAGE_KEYS}


@dataclass
class VLMAnswer:
    """What a model said (``text``) and what it cost (``usage``: prompt/completion/total tokens)."""

    text: str
    usage: dict = field(default_factory=empty_usage)


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
        for key in USAGE_KEYS:
            self.total[key] += int((usage or {}).get(key) or 0)

    def as_dict(self) -> dict:
        return {"calls": self.calls, **self.total}


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``"openai:gpt-5"`` into ``("openai", "gpt-5")``; a bare kind gets its default model.

    Only the first colon separates, so Windows paths and ``host:port`` style ids survive.
    """
    if not spec or not spec.strip():
        raise BadInputError("empty --vlm; use openai:MODEL or qwen:MODEL_ID_OR_DIR")
    kind, _, model = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in BACKEND_KINDS:
        raise BadInputError(f"unknown VLM backend {spec!r}; use openai:MODEL (e.g. openai:gpt-5) "
                            "or qwen:MODEL_ID_OR_DIR (e.g. qwen:Qwen/Qwen3-VL-2B-Instruct)")
    model = model.strip() or (DEFAULT_OPENAI_MODEL if kind == "openai" else DEFAULT_QWEN_MODEL)
    return kind, model


def make_backend(spec: str, *, base_url: str | None = None, api_key: str | None = None,
                 adapter: str | None = None, profile: str | None = None, device: str | None = None,
                 **options) -> VLMBackend:
    """Build a backend from ``spec`` (``openai:MODEL`` or ``qwen:MODEL_ID_OR_DIR``).

    ``base_url``/``api_key`` go to the OpenAI backend (an OpenAI-compatible server such as vLLM
    or Ollama works too); ``adapter``/``profile``/``device`` go to the local Qwen backend.
    Other keyword ``options`` are passed through to the backend's constructor.
    """
    kind, model = parse_spec(spec)
    if kind == "openai":
        if adapter:
            raise BadInputError("--adapter is for local qwen: backends, not openai:")
        from .vlm_openai import OpenAIBackend

        return OpenAIBackend(model=model, base_url=base_url, api_key=api_key, **options)
    from .vlm_qwen import QwenBackend  # written alongside; imported lazily (pulls in transformers)

    return QwenBackend(model_id=model, adapter=adapter, profile=profile, device=device, **options)
