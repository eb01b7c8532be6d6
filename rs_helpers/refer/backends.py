"""Build a click-writing backend from a spec string: ``openai:MODEL``, ``qwen:MODEL_ID_OR_DIR``
or ``replay:FILE.json``.

The factory sits above the backends (each of which depends only on the shared interface in
:mod:`rs_helpers.refer.vlm`), so the command line, the evaluation and the notebooks never care
which model answers."""
from __future__ import annotations

from rs_helpers.errors import BadInputError
from rs_helpers.refer.vlm import DEFAULT_OPENAI_MODEL, DEFAULT_QWEN_MODEL, VLMBackend
from rs_helpers.refer.vlm_replay import ReplayBackend

BACKEND_KINDS = ("openai", "qwen", "replay")


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
        from rs_helpers.refer.vlm_openai import OpenAIBackend

        if timeout is not None:
            options["timeout"] = timeout
        return OpenAIBackend(model=model, base_url=base_url, api_key=api_key, **options)
    if kind == "replay":
        return ReplayBackend.from_file(model or None)
    from rs_helpers.refer.vlm_qwen import (
        QwenBackend,  # written alongside; imported lazily (pulls in transformers)
    )

    return QwenBackend(model_id=model, adapter=adapter, profile=profile, device=device, **options)
