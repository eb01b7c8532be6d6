"""GPT-5 (or any OpenAI-compatible server: vLLM, Ollama, ...) as a click writer.

The image goes into a Chat Completions request as a base64 PNG data URL next to the prompt.
Timeouts and retries (with exponential backoff on 408/409/429/5xx and connection errors, and
honouring the server's ``Retry-After``) are the ``openai`` client's own: this module only
chooses the numbers and turns failures into the suite's errors:

- no API key, or a key the server rejects (401/403): :class:`WeightsUnavailableError` (exit 3);
- a request that still fails after the retries (timeout, 429, 5xx, a body that is not a Chat
  Completions response): :class:`VLMRequestError` (exit 1).
"""
from __future__ import annotations

import base64
import io
import os

import numpy as np

from .errors import BadInputError, RsError, WeightsUnavailableError
from .prompts import SYSTEM_PROMPT
from .vlm import DEFAULT_OPENAI_MODEL, UsageMeter, VLMAnswer

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_SIDE = 2048

NO_KEY_MESSAGE = (
    "no OpenAI API key: set one with `export OPENAI_API_KEY=sk-...` (in Colab: Secrets, then "
    "os.environ['OPENAI_API_KEY'] = userdata.get('OPENAI_API_KEY')), or pass api_key=. "
    "A local OpenAI-compatible server (vLLM, Ollama) takes --base-url URL and any non-empty key. "
    "Without a key, use a local model: --vlm qwen:Qwen/Qwen3-VL-2B-Instruct"
)


class VLMRequestError(RsError):
    """The model service did not give an answer (timeout, rate limit, server error, bad body)."""

    exit_code = 1


def encode_png_data_url(image_rgb: np.ndarray, max_side: int | None = DEFAULT_MAX_SIDE) -> str:
    """``data:image/png;base64,...`` for an H x W x 3 uint8 image, shrunk so that its long side
    is at most ``max_side`` (clicks are relative to the image, so shrinking changes nothing)."""
    from PIL import Image

    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise BadInputError(f"want an H x W x 3 uint8 image, got {image_rgb.shape} {image_rgb.dtype}")
    pil = Image.fromarray(image_rgb)
    if max_side and max(pil.size) > max_side:
        scale = max_side / max(pil.size)
        pil = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))),
                         Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAIBackend:
    """``ask(image, prompt)`` through Chat Completions; ``usage`` sums the tokens of all calls.

    ``model`` defaults to gpt-5. ``base_url``/``api_key`` default to ``$OPENAI_BASE_URL`` and
    ``$OPENAI_API_KEY``. ``request_options`` are added to every request (for example
    ``{"reasoning_effort": "low"}`` or ``{"max_completion_tokens": 2000}``); no temperature is
    sent because GPT-5 accepts only its default.
    """

    def __init__(self, model: str = DEFAULT_OPENAI_MODEL, base_url: str | None = None,
                 api_key: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 max_retries: int = DEFAULT_MAX_RETRIES, max_side: int | None = DEFAULT_MAX_SIDE,
                 system_prompt: str | None = SYSTEM_PROMPT, detail: str = "high",
                 request_options: dict | None = None):
        import openai

        api_key = api_key or os.environ.get(API_KEY_ENV)
        if not api_key:
            raise WeightsUnavailableError(NO_KEY_MESSAGE)
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = base_url or os.environ.get(BASE_URL_ENV) or None
        self.max_side = max_side
        self.system_prompt = system_prompt
        self.detail = detail
        self.request_options = dict(request_options or {})
        self.usage = UsageMeter()
        self.client = openai.OpenAI(api_key=api_key, base_url=self.base_url, timeout=timeout,
                                    max_retries=max_retries)

    def messages(self, image_rgb: np.ndarray, prompt: str) -> list[dict]:
        """The Chat Completions messages for one question (the system prompt, then image + text)."""
        url = encode_png_data_url(image_rgb, self.max_side)
        content = [{"type": "image_url", "image_url": {"url": url, "detail": self.detail}},
                   {"type": "text", "text": prompt}]
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return messages + [{"role": "user", "content": content}]

    def ask(self, image_rgb: np.ndarray, prompt: str) -> VLMAnswer:
        import openai

        messages = self.messages(image_rgb, prompt)
        where = self.base_url or "api.openai.com"
        try:
            response = self.client.chat.completions.create(model=self.model, messages=messages,
                                                           **self.request_options)
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise WeightsUnavailableError(
                f"{where} rejected the API key (HTTP {exc.status_code}): {_short(exc)}. "
                f"Check {API_KEY_ENV}.") from None
        except openai.APITimeoutError:
            raise VLMRequestError(f"{self.name} at {where} timed out after "
                                  f"{self.client.max_retries} retries (timeout {self.client.timeout}s)") from None
        except openai.APIConnectionError as exc:
            raise VLMRequestError(f"cannot reach {where}: {_short(exc)}") from None
        except openai.APIStatusError as exc:
            raise VLMRequestError(f"{self.name} at {where} answered HTTP {exc.status_code}"
                                  f" (after retries where they apply): {_short(exc)}") from None
        except (openai.APIError, ValueError) as exc:  # a 2xx body that is not Chat Completions JSON
            raise VLMRequestError(f"{where} sent a malformed response: {_short(exc)}") from None
        return self._answer(response, where)

    def _answer(self, response, where: str) -> VLMAnswer:
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices or getattr(choices[0], "message", None) is None:
            raise VLMRequestError(f"{where} sent a malformed response (no choices[0].message): "
                                  f"{str(response)[:200]!r}")
        message = choices[0].message
        text = message.content if isinstance(message.content, str) else ""
        if not text and getattr(message, "refusal", None):
            text = str(message.refusal)
        raw = getattr(response, "usage", None)
        usage = {key: int(getattr(raw, key, 0) or 0) for key in ("prompt_tokens", "completion_tokens", "total_tokens")}
        self.usage.add(usage)
        finish = getattr(choices[0], "finish_reason", None)
        return VLMAnswer(text=text, usage=usage, finish_reason=str(finish) if finish else None)


def _short(exc: Exception, limit: int = 200) -> str:
    text = " ".join(str(getattr(exc, "message", None) or exc).split())
    return text[:limit]
