"""One interface for every vision-language model that writes click prompts.

A backend takes an RGB image and a prompt and returns a :class:`VLMAnswer` (the raw text and
the token usage of that call). ``make_backend("openai:gpt-5")``,
``make_backend("qwen:Qwen/Qwen3-VL-2B-Instruct")`` or ``make_backend("replay:FILE.json")``
builds one from a spec string, so the command line, the evaluation and the notebooks never
care which model answers. ``replay:`` plays back stored answers (offline notebooks and tests).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import BadInputError

USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
BACKEND_KINDS = ("openai", "qwen", "replay")
STORED_ANSWERS = "stored_answers/handwritten_examples.json"  # under the data folder
DEFAULT_OPENAI_MODEL = "gpt-5"
DEFAULT_QWEN_MODEL = "Qwen/Qwen3-VL-2B-Instruct"


def empty_usage() -> dict:
    return {key: 0 for key in USAGE_KEYS}


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
        raise BadInputError(f"unknown VLM backend {spec!r}; use openai:MODEL (e.g. openai:gpt-5), "
                            "qwen:MODEL_ID_OR_DIR (e.g. qwen:Qwen/Qwen3-VL-2B-Instruct) or replay:FILE.json")
    defaults = {"openai": DEFAULT_OPENAI_MODEL, "qwen": DEFAULT_QWEN_MODEL, "replay": ""}
    model = model.strip() or defaults[kind]
    return kind, model


def make_backend(spec: str, *, base_url: str | None = None, api_key: str | None = None,
                 adapter: str | None = None, profile: str | None = None, device: str | None = None,
                 **options) -> VLMBackend:
    """Build a backend from ``spec`` (``openai:MODEL``, ``qwen:MODEL_ID_OR_DIR`` or
    ``replay:FILE.json``; a bare ``replay`` plays the shipped hand-written examples).

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
    if kind == "replay":
        return ReplayBackend.from_file(model or None)
    from .vlm_qwen import QwenBackend  # written alongside; imported lazily (pulls in transformers)

    return QwenBackend(model_id=model, adapter=adapter, profile=profile, device=device, **options)


# --------------------------------------------------------------------------- replay
def stored_answers_path() -> Path:
    from .samples import data_root

    return data_root() / STORED_ANSWERS


class ReplayBackend:
    """Plays back stored answers instead of asking a model.

    The file holds ``{"label": ..., "model": ..., "answers": [{"text", "image_size": [w, h],
    "image_mean_rgb", "answer", "usage"}, ...]}``. ``ask`` picks the entry whose query text is
    in the prompt and whose image size matches (the mean colour breaks any remaining tie).
    ``label`` says what the answers are; show it wherever they are used.
    """

    def __init__(self, answers: list[dict], label: str = "", name: str = "replay"):
        self.answers = list(answers)
        self.label = label
        self.name = name
        self.usage = UsageMeter()

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> "ReplayBackend":
        path = Path(path).expanduser() if path else stored_answers_path()
        try:
            data = json.loads(path.read_text())
            answers = data["answers"]
        except FileNotFoundError:
            raise BadInputError(f"{path}: no such stored-answers file") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInputError(f"{path} is not a stored-answers file ({exc})") from None
        return cls(answers, label=data.get("label", ""), name=f"replay:{path.name}")

    def find(self, image_rgb: np.ndarray, prompt: str) -> dict:
        height, width = np.asarray(image_rgb).shape[:2]
        squashed = " ".join(prompt.split())
        hits = [a for a in self.answers if _quoted(a.get("text", "")) in squashed
                and list(a.get("image_size") or [width, height]) == [width, height]]
        if not hits:
            raise BadInputError(f"{self.name}: no stored answer for this prompt and a {width}x{height} image")
        if len(hits) > 1:
            mean = np.asarray(image_rgb).reshape(-1, 3).mean(axis=0)
            hits.sort(key=lambda a: float(np.abs(np.asarray(a.get("image_mean_rgb") or mean) - mean).sum()))
        return hits[0]

    def ask(self, image_rgb: np.ndarray, prompt: str) -> VLMAnswer:
        entry = self.find(image_rgb, prompt)
        usage = {key: int((entry.get("usage") or {}).get(key) or 0) for key in USAGE_KEYS}
        self.usage.add(usage)
        return VLMAnswer(text=str(entry["answer"]), usage=usage)


def _quoted(text: str) -> str:
    """The query text as :func:`rs_helpers.prompts.build_prompt` quotes it."""
    return '"' + " ".join(str(text).split()).replace('"', "'") + '"'
