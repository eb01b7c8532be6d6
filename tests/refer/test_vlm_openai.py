"""The OpenAI backend against a real HTTP server on 127.0.0.1 speaking Chat Completions.

``FakeOpenAI`` is reused by tests/test_refer_cli.py. Each test queues the server's replies;
429 and 500 replies carry ``retry-after-ms: 1`` so that the client's own backoff stays tiny.
"""
from __future__ import annotations

import base64
import io
import json
import time
from loopback import LoopbackServer, QuietHandler, send_json

import numpy as np
import pytest
from PIL import Image

from rs_helpers.refer.clicks import Click, parse_clicks
from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.refer.vlm import UsageMeter, VLMAnswer, VLMBackend
from rs_helpers.refer.backends import make_backend, parse_spec
from rs_helpers.refer.vlm_openai import OpenAIBackend, VLMRequestError, encode_png_data_url

GOOD = '{"clicks": [{"x": 500, "y": 400, "label": 1}, {"x": 100, "y": 900, "label": 0}]}'


def completion(content: str, usage=(11, 7, 18)) -> dict:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "gpt-5",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": usage[2]}}


class FakeOpenAI(LoopbackServer):
    """A Chat Completions server in a thread. ``replies``: a queue of (status, body, delay_s);
    when it runs dry every request gets ``default``. ``requests`` records the bodies received."""

    def __init__(self, default=(200, completion(GOOD), 0.0)):
        self.replies: list[tuple[int, object, float]] = []
        self.default = default
        self.requests: list[dict] = []
        self.paths: list[str] = []
        fake = self

        class Handler(QuietHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                fake.paths.append(self.path)
                fake.requests.append(json.loads(body or b"{}"))
                status, reply, delay = fake.replies.pop(0) if fake.replies else fake.default
                if delay:
                    time.sleep(delay)
                send_json(self, status, reply.encode() if isinstance(reply, str) else json.dumps(reply).encode())

        super().__init__(Handler)


def error_body(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "code": None}}


@pytest.fixture()
def server():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture()
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)


def backend(server, **kw) -> OpenAIBackend:
    kw.setdefault("api_key", "sk-test")
    kw.setdefault("timeout", 5.0)
    kw.setdefault("max_retries", 2)
    return OpenAIBackend(model="gpt-5", base_url=server.url, **kw)


# --------------------------------------------------------------------------- the wire outcomes
def test_good_answer_and_request_format(server, image):
    b = backend(server)
    assert isinstance(b, VLMBackend)
    answer = b.ask(image, "find the building")
    assert isinstance(answer, VLMAnswer) and answer.text == GOOD
    assert answer.usage == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    assert parse_clicks(answer.text) == [Click(500, 400, 1), Click(100, 900, 0)]
    request = server.requests[0]
    assert server.paths == ["/v1/chat/completions"]
    assert request["model"] == "gpt-5" and "temperature" not in request
    assert request["messages"][0]["role"] == "system"
    user = request["messages"][-1]["content"]
    assert {"type": "text", "text": "find the building"} in user
    url = next(part["image_url"]["url"] for part in user if part["type"] == "image_url")
    assert url.startswith("data:image/png;base64,")
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert np.array_equal(decoded, image)


def test_prose_with_fences_is_returned_raw_and_parses(server, image):
    prose = f"Looking at the image, the building is left of centre.\n```json\n{GOOD}\n```\nDone."
    server.replies = [(200, completion(prose), 0)]
    answer = backend(server).ask(image, "q")
    assert answer.text == prose
    assert parse_clicks(answer.text) == [Click(500, 400, 1), Click(100, 900, 0)]


def test_401_is_a_key_problem_exit_3(server, image):
    server.replies = [(401, error_body("Incorrect API key provided", "invalid_request_error"), 0)]
    with pytest.raises(WeightsUnavailableError, match="rejected the API key.*401"):
        backend(server).ask(image, "q")
    assert len(server.requests) == 1  # not retried
    assert WeightsUnavailableError.exit_code == 3


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limit_and_server_errors_are_retried(server, image, status):
    server.replies = [(status, error_body("slow down", "requests"), 0)]
    b = backend(server)
    assert b.ask(image, "q").text == GOOD
    assert len(server.requests) == 2


def test_persistent_server_errors_give_up_after_the_retries(server, image):
    server.replies = [(500, error_body("boom", "server_error"), 0)] * 3
    with pytest.raises(VLMRequestError, match="HTTP 500"):
        backend(server, max_retries=2).ask(image, "q")
    assert len(server.requests) == 3 and VLMRequestError.exit_code == 1


def test_timeout(server, image):
    server.replies = [(200, completion(GOOD), 1.5)]
    with pytest.raises(VLMRequestError, match="timed out"):
        backend(server, timeout=0.3, max_retries=0).ask(image, "q")


@pytest.mark.parametrize("body", ["this is not json", {"unexpected": "shape"}, {"choices": []},
                                  {"choices": [{"index": 0}]}])
def test_malformed_body(server, image, body):
    server.replies = [(200, body, 0)]
    with pytest.raises(VLMRequestError, match="not a Chat Completions response"):
        backend(server, max_retries=0).ask(image, "q")


def test_connection_refused(image):
    with FakeOpenAI() as fake:
        url = fake.url
    with pytest.raises(VLMRequestError, match="cannot reach"):
        OpenAIBackend(base_url=url, api_key="k", max_retries=0, timeout=2).ask(image, "q")


def test_refusal_and_empty_content_come_back_as_text(server, image):
    reply = completion(None)
    reply["choices"][0]["message"]["refusal"] = "I can't help with that."
    server.replies = [(200, reply, 0)]
    assert backend(server).ask(image, "q").text == "I can't help with that."


def test_finish_reason_is_reported(server, image):
    assert backend(server).ask(image, "q").finish_reason == "stop"
    reply = completion(None)
    reply["choices"][0]["finish_reason"] = "length"
    server.replies = [(200, reply, 0)]
    answer = backend(server).ask(image, "q")
    assert answer.text == "" and answer.finish_reason == "length"


def test_usage_is_summed_over_calls(server, image):
    b = backend(server)
    server.replies = [(200, completion(GOOD, (100, 20, 120)), 0), (200, completion(GOOD, (50, 5, 55)), 0)]
    b.ask(image, "a")
    b.ask(image, "b")
    assert b.usage.as_dict() == {"calls": 2, "prompt_tokens": 150, "completion_tokens": 25, "total_tokens": 175}


def test_missing_usage_counts_zero(server, image):
    reply = completion(GOOD)
    del reply["usage"]
    server.replies = [(200, reply, 0)]
    assert backend(server).ask(image, "q").usage == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


# --------------------------------------------------------------------------- configuration
def test_no_key_is_exit_3_with_how_to(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(WeightsUnavailableError, match="export OPENAI_API_KEY"):
        OpenAIBackend()


def test_env_key_and_base_url(monkeypatch, server, image):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    b = make_backend("openai:my-model", request_options={"reasoning_effort": "low"})
    assert b.name == "openai:my-model" and b.base_url == server.url
    b.ask(image, "q")
    assert server.requests[0]["model"] == "my-model" and server.requests[0]["reasoning_effort"] == "low"


def test_large_images_are_shrunk_for_upload():
    big = np.zeros((300, 600, 3), np.uint8)
    url = encode_png_data_url(big, max_side=100)
    assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (100, 50)
    with pytest.raises(BadInputError):
        encode_png_data_url(np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize("spec, expected", [
    ("openai:gpt-5", ("openai", "gpt-5")), ("openai", ("openai", "gpt-5")),
    ("qwen", ("qwen", "Qwen/Qwen3-VL-2B-Instruct")), ("qwen:C:/models/q", ("qwen", "C:/models/q")),
    ("QWEN:/tmp/x", ("qwen", "/tmp/x")),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["", "gemini:pro", "gpt-5"])
def test_bad_spec(spec):
    with pytest.raises(BadInputError):
        parse_spec(spec)


def test_adapter_is_for_qwen_only():
    with pytest.raises(BadInputError, match="adapter"):
        make_backend("openai:gpt-5", api_key="k", adapter="/tmp/a")


def test_usage_meter_tolerates_missing_keys():
    meter = UsageMeter()
    meter.add({"prompt_tokens": 3})
    meter.add(None)
    assert meter.as_dict() == {"calls": 2, "prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 0}
