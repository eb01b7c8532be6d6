"""One interface for every vision-language model that writes click prompts.

A backend takes an RGB image and a prompt and returns a :class:`VLMAnswer` (the raw text and
the token usage of that call). ``make_backend("openai:gpt-5")``,
``make_backend("qwen:Qwen/Qwen3-VL-2B-Instruct")`` or ``make_backend("replay:FILE.json")``
builds one from a spec string, so the command line, the evaluation and the notebooks never
care which model answers. ``replay:`` plays back stored answers (offline notebooks and tests).
"""
from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
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
                 timeout: float | None = None, **options) -> VLMBackend:
    """Build a backend from ``spec`` (``openai:MODEL``, ``qwen:MODEL_ID_OR_DIR`` or
    ``replay:FILE.json``; a bare ``replay`` plays the shipped hand-written examples).

    ``base_url``/``api_key`` go to the OpenAI backend (an OpenAI-compatible server such as vLLM
    or Ollama works too), and so does ``timeout``: seconds for a whole answer, retries included
    (None: the backend's default). A local Qwen model and the replay backend run in this
    process, so they ignore ``timeout``. ``adapter``/``profile``/``device`` go to the local Qwen
    backend. Other keyword ``options`` are passed through to the backend's constructor.
    """
    kind, model = parse_spec(spec)
    if kind == "openai":
        if adapter:
            raise BadInputError("--adapter is for local qwen: backends, not openai:")
        from .vlm_openai import OpenAIBackend

        if timeout is not None:
            options["timeout"] = timeout
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
    ``label`` says what the answers are; show it wherever they are used. The answers are
    checked when loaded, so a wrong file fails at once (exit 2), naming itself and the problem.
    """

    def __init__(self, answers: list[dict], label: str = "", name: str = "replay", source: str | None = None):
        self.answers = check_stored_answers(answers, source or name)
        self.label = label
        self.name = name
        self.usage = UsageMeter()

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> "ReplayBackend":
        path = Path(path).expanduser() if path else stored_answers_path()
        data = read_json_file(path, "stored-answers file")
        if not isinstance(data, dict) or not isinstance(data.get("answers"), list):
            raise BadInputError(f"{path} is not a stored-answers file: want a JSON object with an "
                                "'answers' list of {\"text\", \"answer\", ...} objects")
        label = data.get("label")
        if label is not None and not isinstance(label, str):
            raise BadInputError(f"{path} is not a stored-answers file: 'label' is not text")
        return cls(data["answers"], label=label or "", name=f"replay:{path.name}", source=str(path))

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
        usage = clean_usage(entry.get("usage"))
        self.usage.add(usage)
        return VLMAnswer(text=str(entry["answer"]), usage=usage)


def _quoted(text: str) -> str:
    """The query text as :func:`rs_helpers.prompts.build_prompt` quotes it."""
    return '"' + " ".join(str(text).split()).replace('"', "'") + '"'


MAX_JSON_BYTES = 64 * 1024 * 1024


def read_json_file(path: Path, what: str = "JSON file"):
    """The decoded JSON in ``path``; :class:`BadInputError` naming the file for a missing path, a
    folder or device, an unreadable, huge or non-UTF-8 file, bad JSON or JSON nested too deeply."""
    try:
        if path.exists() and not path.is_file():
            kind = "a folder" if path.is_dir() else "not a regular file"
            raise BadInputError(f"{path} is {kind}; give a {what}")
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise BadInputError(f"{path}: {size} bytes is too large for a {what}")
        raw = path.read_bytes()
    except BadInputError:
        raise
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such {what}") from None
    except PermissionError:
        raise BadInputError(f"{path}: cannot read the {what} (permission denied)") from None
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    except ValueError as exc:  # a NUL byte in the name
        raise BadInputError(f"{str(path)!r}: not a usable file name ({exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: the {what} is not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise BadInputError(f"{path}: the JSON is nested too deeply to be a {what}") from None
    except ValueError as exc:
        raise BadInputError(f"{path} is not valid JSON ({exc})") from None


def check_stored_answers(answers, source: str = "answers") -> list[dict]:
    """``answers`` as a list of entries the replay backend can use, else :class:`BadInputError`
    naming ``source`` and the first bad entry: each is an object with a non-empty string
    ``text`` and a string ``answer``; ``image_size`` (when given) is [width, height] in positive
    integers, ``image_mean_rgb`` three numbers and ``usage`` an object."""
    def bad(where: str, problem: str):
        return BadInputError(f"{source} is not a stored-answers file: {where} {problem}")

    if not isinstance(answers, list):
        raise bad("'answers'", "is not a list")
    for i, entry in enumerate(answers):
        where = f"answers[{i}]"
        if not isinstance(entry, dict):
            raise bad(where, "is not an object")
        for key in ("text", "answer"):
            if key not in entry:
                raise bad(where, f"has no '{key}'")
            if not isinstance(entry[key], str):
                raise bad(f"{where}.{key}", "is not text")
        if not entry["text"].strip():
            raise bad(f"{where}.text", "is empty")
        size = entry.get("image_size")
        if size is not None and not (isinstance(size, list) and len(size) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
            raise bad(f"{where}.image_size", "is not [width, height] in positive integers")
        mean = entry.get("image_mean_rgb")
        if mean is not None and not (isinstance(mean, list) and len(mean) == 3 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in mean)):
            raise bad(f"{where}.image_mean_rgb", "is not three finite numbers")
        if entry.get("usage") is not None and not isinstance(entry["usage"], dict):
            raise bad(f"{where}.usage", "is not an object")
    return list(answers)
