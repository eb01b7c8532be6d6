"""GPT-5 (or any OpenAI-compatible server: vLLM, Ollama, ...) as a click writer.

The image goes into a Chat Completions request as a base64 PNG data URL next to the prompt.
Retries (with exponential backoff on 408/409/429/5xx and connection errors, and honouring the
server's ``Retry-After``) are the ``openai`` client's own. Above them sits one wall-clock
deadline per answer (``timeout``, retries and backoff included): the client's own timeout is
per read, so a server that trickles a byte now and then, or retries on a silent server, could
otherwise keep a caller waiting many minutes. The request runs in a daemon worker thread; at the
deadline the caller gets an error at once and the client is closed (which drops its connection),
so nothing stuck keeps the process alive.

Failures become the suite's errors:

- a ``base_url`` that is not an http(s) URL with a host: :class:`BadInputError` (exit 2);
- no API key, or a key the server rejects (401/403): :class:`WeightsUnavailableError` (exit 3);
- no answer within the deadline, a request that still fails after the retries (429, 5xx, a
  connection error), or a reply that is not a Chat Completions response (every shape is checked
  before use): :class:`VLMRequestError` (exit 1).

No message ever holds the API key (it is scrubbed from server text too), and a URL is shown
without its user:password part or query.
"""
from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import threading
from urllib.parse import urlsplit

import numpy as np

from rs_helpers.errors import BadInputError, RsError, WeightsUnavailableError
from rs_helpers.refer.prompts import SYSTEM_PROMPT
from rs_helpers.refer.vlm import DEFAULT_OPENAI_MODEL, UsageMeter, VLMAnswer, clean_usage

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
DEFAULT_TIMEOUT_S = 180.0  # the whole answer, retries included
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_SIDE = 2048
MAX_REPLY_BYTES = 32 * 1024 * 1024  # a Chat Completions reply with a few clicks is a few kB
NOT_CHAT = "the server's reply is not a Chat Completions response"

NO_KEY_MESSAGE = (
    "no OpenAI API key: set one with `export OPENAI_API_KEY=sk-...` (in Colab: Secrets, then "
    "os.environ['OPENAI_API_KEY'] = userdata.get('OPENAI_API_KEY')), or pass api_key=. "
    "A local OpenAI-compatible server (vLLM, Ollama) takes --base-url URL and any non-empty key. "
    "Without a key, use a local model: --vlm qwen:Qwen/Qwen3-VL-2B-Instruct"
)


class VLMRequestError(RsError):
    """The model service did not give an answer (timeout, rate limit, server error, bad body)."""

    exit_code = 1


class ReplyShapeError(ValueError):
    """A reply body that is not a Chat Completions response (the text says what is wrong)."""


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


# --------------------------------------------------------------------------- checks of the settings
def redact_url(url: str) -> str:
    """``url`` safe to print: any ``user:password@`` and any query string replaced by ``***``."""
    text = re.sub(r"(?<=://)[^/?#@]*@", "***@", str(url))
    return re.sub(r"\?.*$", "?***", text)


def check_base_url(url: str, option: str = "--base-url") -> str:
    """``url`` if it is an http:// or https:// URL with a host (and a valid port), else
    :class:`BadInputError` naming ``option`` (the flag or variable it came from)."""
    text = str(url)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInputError(f"{option}: the URL holds bytes that are not UTF-8") from None
    shown = redact_url(text)
    example = "give one such as http://localhost:8000/v1 or https://api.openai.com/v1"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise BadInputError(f"{option} {shown!r}: a URL holds no spaces or control characters; {example}")
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0..65535
    except ValueError:
        # the parser's own text quotes the raw host part, which may hold a password: not shown
        raise BadInputError(f"{option} {shown!r} is not a valid URL (its host or port cannot be read); "
                            f"{example}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise BadInputError(f"{option} {shown!r}: not an http:// or https:// URL; {example}")
    if not host:
        raise BadInputError(f"{option} {shown!r}: the URL names no host; {example}")
    return text


def check_timeout(timeout, option: str = "--timeout") -> float:
    """``timeout`` as a float of seconds > 0 (finite), else :class:`BadInputError`."""
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        raise BadInputError(f"{option} {timeout!r}: give a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise BadInputError(f"{option} {timeout!r}: give a finite number of seconds greater than 0")
    return value


# --------------------------------------------------------------------------- reading the reply
def parse_chat_completion(data) -> tuple[str, dict, str | None]:
    """``(text, usage, finish_reason)`` from a decoded Chat Completions body.

    Every shape is checked before use; a body that cannot be read as an answer raises
    :class:`ReplyShapeError`. Content may be a string, null (then a string ``refusal`` is used)
    or a list of text parts. Token counts that are not sane integers count as 0 and an odd
    ``finish_reason`` as None: both are bookkeeping, not the answer.
    """
    if not isinstance(data, dict):
        raise ReplyShapeError(f"the body is a JSON {_json_kind(data)}, not an object")
    if "choices" not in data and isinstance(data.get("error"), (dict, str)):
        error = data["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise ReplyShapeError(f"it holds an error instead: {str(message)[:200]!r}")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise ReplyShapeError("no 'choices' list" if choices is None
                              else f"'choices' is a {_json_kind(choices)}, not a list")
    if not choices:
        raise ReplyShapeError("'choices' is empty")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise ReplyShapeError(f"choices[0] is a {_json_kind(choice)}, not an object")
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ReplyShapeError("no choices[0].message" if message is None
                              else f"choices[0].message is a {_json_kind(message)}, not an object")
    text = _content_text(message.get("content"))
    refusal = message.get("refusal")
    if not text and isinstance(refusal, str):
        text = refusal
    finish = choice.get("finish_reason")
    finish = finish if isinstance(finish, str) and 0 < len(finish) <= 64 and finish.isprintable() else None
    return text, clean_usage(data.get("usage")), finish


def _content_text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces = []
        for i, part in enumerate(content):
            if not isinstance(part, dict):
                raise ReplyShapeError(f"content part {i} is a {_json_kind(part)}, not an object")
            piece = part.get("text")
            if piece is not None and not isinstance(piece, str):
                raise ReplyShapeError(f"content part {i} has a 'text' that is a {_json_kind(piece)}")
            if piece and part.get("type", "text") in ("text", "output_text"):
                pieces.append(piece)
        return "".join(pieces)
    raise ReplyShapeError(f"choices[0].message.content is a {_json_kind(content)}, "
                          "not a string or a list of parts")


def _json_kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "list", dict: "object"}.get(type(value), type(value).__name__)


def decode_reply(body: bytes, secrets: tuple[str, ...] = ()) -> tuple[str, dict, str | None]:
    """:func:`parse_chat_completion` of a raw reply body (JSON, at most ``MAX_REPLY_BYTES``).
    ``secrets`` (the API key) are blanked out of the body first, so that no excerpt of it in
    an error message can show even part of one."""
    for secret in secrets:
        if secret:
            body = body.replace(secret.encode("utf-8", "replace"), b"***")
    if len(body) > MAX_REPLY_BYTES:
        raise ReplyShapeError(f"the body is {len(body)} bytes, more than {MAX_REPLY_BYTES}")
    if not body.strip():
        raise ReplyShapeError("the body is empty")
    try:
        data = json.loads(body)
    except RecursionError:
        raise ReplyShapeError("the JSON is nested too deeply") from None
    except ValueError as exc:  # includes UnicodeDecodeError
        raise ReplyShapeError(f"the body is not JSON ({str(exc)[:120]}); it starts "
                              f"{body[:80].decode('utf-8', 'replace')!r}") from None
    return parse_chat_completion(_scrubbed(data, secrets))


def _scrubbed(value, secrets: tuple[str, ...]):
    """``value`` (decoded JSON) with every secret blanked out of its strings: a key the server
    echoes as JSON escapes (``\\u0073k-...``) is only visible after decoding."""
    secrets = tuple(s for s in secrets if s)
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
        return value
    if isinstance(value, list):
        return [_scrubbed(v, secrets) for v in value]
    if isinstance(value, dict):
        return {_scrubbed(k, secrets): _scrubbed(v, secrets) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- the backend
class OpenAIBackend:
    """``ask(image, prompt)`` through Chat Completions; ``usage`` sums the tokens of all calls.

    ``model`` defaults to gpt-5. ``base_url``/``api_key`` default to ``$OPENAI_BASE_URL`` and
    ``$OPENAI_API_KEY``. ``timeout``: seconds for the whole answer, retries and backoff
    included (a real deadline, see the module notes). ``request_options`` are added to every
    request (for example ``{"reasoning_effort": "low"}`` or ``{"max_completion_tokens": 2000}``);
    no temperature is sent because GPT-5 accepts only its default.
    """

    def __init__(self, model: str = DEFAULT_OPENAI_MODEL, base_url: str | None = None,
                 api_key: str | None = None, timeout: float | None = DEFAULT_TIMEOUT_S,
                 max_retries: int = DEFAULT_MAX_RETRIES, max_side: int | None = DEFAULT_MAX_SIDE,
                 system_prompt: str | None = SYSTEM_PROMPT, detail: str = "high",
                 request_options: dict | None = None):
        self.timeout = check_timeout(DEFAULT_TIMEOUT_S if timeout is None else timeout)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise BadInputError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if base_url:
            self.base_url = check_base_url(base_url, "--base-url")
        elif os.environ.get(BASE_URL_ENV):
            self.base_url = check_base_url(os.environ[BASE_URL_ENV], f"${BASE_URL_ENV}")
        else:
            self.base_url = None
        api_key = api_key or os.environ.get(API_KEY_ENV)
        if not api_key:
            raise WeightsUnavailableError(NO_KEY_MESSAGE)
        self._api_key = api_key
        self.model = model
        self.name = f"openai:{model}"
        self.where = redact_url(self.base_url) if self.base_url else "api.openai.com"
        self.max_retries = max_retries
        self.max_side = max_side
        self.system_prompt = system_prompt
        self.detail = detail
        self.request_options = dict(request_options or {})
        self.usage = UsageMeter()
        self.client = self._new_client()

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, at={self.where!r}, timeout={self.timeout:g})"

    def _new_client(self):
        import openai

        try:
            return openai.OpenAI(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout,
                                 max_retries=self.max_retries)
        except Exception as exc:  # the client's own URL parser may refuse what urlsplit took
            raise BadInputError(f"--base-url {self.where!r} is not usable: {self._scrub(exc)}") from None

    def messages(self, image_rgb: np.ndarray, prompt: str) -> list[dict]:
        """The Chat Completions messages for one question (the system prompt, then image + text)."""
        url = encode_png_data_url(image_rgb, self.max_side)
        content = [{"type": "image_url", "image_url": {"url": url, "detail": self.detail}},
                   {"type": "text", "text": prompt}]
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return messages + [{"role": "user", "content": content}]

    def ask(self, image_rgb: np.ndarray, prompt: str) -> VLMAnswer:
        try:
            str(prompt).encode("utf-8")
        except UnicodeEncodeError:
            raise BadInputError("the prompt holds bytes that are not UTF-8") from None
        messages = self.messages(image_rgb, prompt)
        if self.client is None:  # closed after an earlier deadline
            self.client = self._new_client()
        client = self.client
        body = self._within_deadline(
            client, lambda: client.chat.completions.with_raw_response.create(
                model=self.model, messages=messages, **self.request_options).content)
        try:
            text, usage, finish = decode_reply(body, secrets=(self._api_key,))
        except ReplyShapeError as exc:
            raise VLMRequestError(f"{self.where}: {NOT_CHAT}: {self._scrub(exc)}") from None
        self.usage.add(usage)
        return VLMAnswer(text=text, usage=usage, finish_reason=finish)

    def _within_deadline(self, client, request):
        """``request()`` in a daemon thread; its result, or the suite's error for its failure or
        for no result within ``self.timeout`` seconds (then ``client`` is closed and dropped)."""
        box: dict = {}
        done = threading.Event()

        def work():
            try:
                box["value"] = request()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = exc
            finally:
                done.set()

        worker = threading.Thread(target=work, name=f"rs-seg {self.name} request", daemon=True)
        worker.start()
        try:
            finished = done.wait(self.timeout) or done.is_set()
        except BaseException:  # Ctrl-C or SIGTERM while waiting: stop the request too
            self._abandon(client)
            raise
        if not finished:
            self._abandon(client)
            raise VLMRequestError(self._timed_out())
        if "error" in box:
            raise self._request_error(box["error"]) from None
        return box["value"]

    def _abandon(self, client) -> None:
        """Drop ``client`` and close it in the background: closing ends its connection, so the
        worker thread stops soon; the next ``ask`` makes a fresh client."""
        if self.client is client:
            self.client = None
        threading.Thread(target=_close_quietly, args=(client,), name="rs-seg close client", daemon=True).start()

    def _request_error(self, exc: BaseException) -> BaseException:
        """The suite's error for an exception the request raised (never one naming the key)."""
        import openai

        if not isinstance(exc, Exception):  # KeyboardInterrupt and the like: pass through
            return exc
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return WeightsUnavailableError(
                f"{self.where} rejected the API key (HTTP {exc.status_code}): {self._scrub(exc)}. "
                f"Check {API_KEY_ENV}.")
        if isinstance(exc, openai.APITimeoutError):
            return VLMRequestError(self._timed_out())
        if isinstance(exc, openai.APIConnectionError):
            return VLMRequestError(f"cannot reach {self.where}: {self._scrub(exc)}")
        if isinstance(exc, openai.APIStatusError):
            return VLMRequestError(f"{self.name} at {self.where} answered HTTP {exc.status_code}"
                                   f" (after retries where they apply): {self._scrub(exc)}")
        if isinstance(exc, RsError):
            return exc
        return VLMRequestError(f"the request to {self.where} failed ({type(exc).__name__}): {self._scrub(exc)}")

    def _timed_out(self) -> str:
        return (f"{self.name} at {self.where} timed out: no complete answer within --timeout "
                f"{self.timeout:g} s (up to {self.max_retries} retries included); the server is down or "
                "too slow: check it, or raise --timeout")

    def _scrub(self, exc, limit: int = 200) -> str:
        """One line of at most ``limit`` characters, with the API key (if echoed) blanked out."""
        text = " ".join(str(getattr(exc, "message", None) or exc).split())
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text[:limit]


def _close_quietly(client) -> None:
    try:
        client.close()
    except Exception:  # noqa: BLE001 - best effort on a client we gave up on
        pass

