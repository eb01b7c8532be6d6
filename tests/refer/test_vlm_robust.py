"""The referring branch against a misbehaving world: a loopback server that trickles, stays
silent or answers with odd bodies, bad ``--base-url``/``--timeout``/``--text`` values, broken
replay files and bad samples in ``eval refer``.

Every check goes through ``rs_helpers.cli.main`` where it can: the exit code is the documented
one, stderr holds no traceback, and the API key never shows. The servers listen on 127.0.0.1
only, and every loop in them ends (on a stop event, a closed client, or after 30 s).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from loopback import LoopbackServer, QuietHandler, send_json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rs_helpers.cli import main
from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.refer.pipeline import ask_for_clicks
from rs_helpers.refer.vlm_replay import ReplayBackend
from rs_helpers.refer.vlm import UsageMeter, VLMAnswer, clean_usage
from rs_helpers.refer.backends import make_backend
from rs_helpers.refer.vlm_openai import NOT_CHAT, OpenAIBackend, VLMRequestError, decode_reply

from test_vlm_openai import GOOD, completion

KEY = "sk-robust-SECRET-0123456789"
TRICKLE_S = 0.05  # one byte this often: every read succeeds, so only a real deadline stops it
MAX_HANDLER_S = 30.0


class OddServer(LoopbackServer):
    """A loopback HTTP server whose every reply is ``self.reply``: ``("body", status, bytes)``,
    ``("trickle",)`` (a 200 whose body arrives a byte at a time, never complete) or
    ``("silent",)`` (reads the request, never answers)."""

    def __init__(self):
        self.reply: tuple = ("body", 200, json.dumps(completion(GOOD)).encode())
        self.requests = 0
        odd = self

        class Handler(QuietHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("content-length") or 0))
                odd.requests += 1
                kind, *rest = odd.reply
                start = time.monotonic()
                try:
                    if kind == "silent":
                        odd.stop.wait(MAX_HANDLER_S)
                        return
                    if kind == "trickle":
                        self.send_response(200)
                        self.send_header("content-type", "application/json")
                        self.send_header("content-length", "1000000")
                        self.end_headers()
                        self.wfile.write(b'{"choices": [')
                        while not odd.stop.is_set() and time.monotonic() - start < MAX_HANDLER_S:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(TRICKLE_S)
                        return
                    status, data = rest
                    send_json(self, status, data)
                except OSError:  # the client hung up (that is the point of the deadline)
                    pass

        super().__init__(Handler)

    def answer(self, body, status: int = 200) -> None:
        if isinstance(body, str):
            body = body.encode()
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.reply = ("body", status, data)


@pytest.fixture(scope="module", autouse=True)
def _warm_imports():
    """Import what the commands import once, so that the timed checks time the deadline only."""
    import openai  # noqa: F401

    from rs_helpers.cli import build_parser

    build_parser()


@pytest.fixture()
def odd(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setattr("openai._base_client.INITIAL_RETRY_DELAY", 0.001)
    with OddServer() as server:
        yield server


@pytest.fixture()
def image_png(tmp_path, rgb_image):
    from PIL import Image

    path = tmp_path / "scene.png"
    Image.fromarray(rgb_image).save(path)
    return path


def run_cli(capsys, argv) -> tuple[int, str, str]:
    """``main(argv)`` -> (exit code, stdout, stderr), checking what must never be printed."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    assert KEY not in out and KEY not in err
    return code, out, err


def refer_argv(image, url, *extra):
    return ["refer", image, "--text", "the bright disc", "--base-url", url, "--profile", "tiny",
            "--device", "cpu", "--sam", "vit_b", *extra]


# --------------------------------------------------------------------------- the deadline
@pytest.mark.parametrize("kind", ["trickle", "silent"])
def test_refer_gives_up_at_the_deadline(odd, image_png, tmp_path, capsys, kind):
    odd.reply = (kind,)
    start = time.monotonic()
    code, out, err = run_cli(capsys, refer_argv(image_png, odd.url, "--timeout", "2", "--out", tmp_path / "m.png"))
    elapsed = time.monotonic() - start
    assert code == 1 and elapsed < 10, (code, elapsed, err)
    assert "--timeout 2 s" in err and odd.url in err and err.startswith("rs-seg: error: ")
    assert not (tmp_path / "m.png").exists()


def test_the_worker_stops_after_the_deadline(odd):
    """The client is closed at the deadline, so the request thread ends instead of lingering."""
    odd.reply = ("trickle",)
    backend = OpenAIBackend(base_url=odd.url, timeout=1.0)
    with pytest.raises(VLMRequestError, match="timed out"):
        backend.ask(np.zeros((8, 8, 3), np.uint8), "q")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(t.name.startswith("rs-seg openai") for t in threading.enumerate()):
        time.sleep(0.05)
    assert not any(t.name.startswith("rs-seg openai") for t in threading.enumerate())
    odd.answer(completion(GOOD))  # a fresh client for the next question
    assert backend.ask(np.zeros((8, 8, 3), np.uint8), "q").text == GOOD


def test_retries_count_against_the_deadline(odd):
    odd.answer({"error": {"message": "boom"}}, status=500)
    backend = OpenAIBackend(base_url=odd.url, timeout=5.0, max_retries=2)
    with pytest.raises(VLMRequestError, match="HTTP 500"):
        backend.ask(np.zeros((8, 8, 3), np.uint8), "q")
    assert odd.requests == 3


def test_a_silent_server_does_not_keep_the_process_alive(odd, image_png, tmp_path):
    odd.reply = ("silent",)
    env = {**os.environ, "OPENAI_API_KEY": KEY, "RS_HELPERS_PROFILE": "tiny"}
    done = subprocess.run([sys.executable, "-m", "rs_helpers", *refer_argv(str(image_png), odd.url, "--timeout", "1",
                                                                           "--out", str(tmp_path / "m.png"))],
                          capture_output=True, text=True, timeout=120, env=env,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and KEY not in done.stderr + done.stdout
    assert "timed out" in done.stderr


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf", "abc", ""])
def test_bad_timeout_exits_2(odd, image_png, tmp_path, capsys, value):
    code, _, err = run_cli(capsys, refer_argv(image_png, odd.url, f"--timeout={value}", "--out", tmp_path / "m.png"))
    assert code == 2 and "--timeout" in err and odd.requests == 0


def test_timeout_reaches_the_backend_and_local_backends_ignore_it(odd):
    assert make_backend("openai:gpt-5", base_url=odd.url, timeout=7).timeout == 7.0
    assert OpenAIBackend(base_url=odd.url).timeout == 180.0
    assert make_backend("replay", timeout=1).name.startswith("replay:")
    for bad in (0, -3, float("nan"), float("inf"), "x"):
        with pytest.raises(BadInputError):
            OpenAIBackend(base_url=odd.url, timeout=bad)


def test_eval_refer_takes_timeout_and_keeps_going(odd, tmp_path, capsys):
    odd.reply = ("silent",)
    out = tmp_path / "r.json"
    start = time.monotonic()
    code, printed, err = run_cli(capsys, ["eval", "refer", "--dataset", "samples", "--limit", "2", "--base-url",
                                          odd.url, "--timeout", "1", "--device", "cpu", "--sam", "vit_b",
                                          "--out", out])
    assert code == 0 and time.monotonic() - start < 30, err
    data = json.loads(out.read_text())
    assert data["summary"]["n"] == 2 and data["summary"]["failures"] == 2
    assert all("--timeout 1 s" in s["error"] and s["iou"] == 0.0 for s in data["samples"])
    assert KEY not in out.read_text()


# --------------------------------------------------------------------------- odd replies
def with_message(message) -> dict:
    body = completion(GOOD)
    body["choices"][0]["message"] = message
    return body


def with_choice(**changes) -> dict:
    body = completion(GOOD)
    body["choices"][0].update(changes)
    return body


def with_usage(usage) -> dict:
    body = completion(GOOD)
    body["usage"] = usage
    return body


BAD_BODIES = {
    "not json": b"this is not json",
    "empty": b"",
    "not utf-8": b"\xff\xfe\xfa{",
    "a list": b"[1, 2, 3]",
    "a string": b'"hello"',
    "null": b"null",
    "too deep": b"[" * 100_000 + b"]" * 100_000,
    "an error object": {"error": {"message": "model overloaded"}},
    "no choices": {"id": "x"},
    "choices null": {"choices": None},
    "choices a dict": {"choices": {"0": {}}},
    "choices a string": {"choices": "abc"},
    "choices empty": {"choices": []},
    "choice a string": {"choices": ["abc"]},
    "no message": {"choices": [{"index": 0}]},
    "message a string": with_message(GOOD),
    "message a list": with_message([GOOD]),
    "content a number": with_message({"role": "assistant", "content": 42}),
    "content an object": with_message({"role": "assistant", "content": {"text": GOOD}}),
    "content parts not objects": with_message({"role": "assistant", "content": [GOOD]}),
    "content part text a number": with_message({"role": "assistant", "content": [{"type": "text", "text": 5}]}),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_reply_shapes_are_request_errors(odd, name):
    odd.answer(BAD_BODIES[name])
    backend = OpenAIBackend(base_url=odd.url, max_retries=0, timeout=10)
    with pytest.raises(VLMRequestError, match=NOT_CHAT) as info:
        backend.ask(np.zeros((8, 8, 3), np.uint8), "q")
    assert len(str(info.value)) < 500 and "\n" not in str(info.value)
    assert backend.usage.calls == 0


@pytest.mark.parametrize("name", ["not json", "message a string", "choices empty", "too deep", "not utf-8"])
def test_bad_reply_shapes_exit_1_on_the_command_line(odd, image_png, tmp_path, capsys, name):
    odd.answer(BAD_BODIES[name])
    code, _, err = run_cli(capsys, refer_argv(image_png, odd.url, "--out", tmp_path / "m.png"))
    assert code == 1 and NOT_CHAT in err and err.count("\n") == 1


@pytest.mark.parametrize("body, text, usage, finish", [
    (with_message({"role": "assistant", "content": [{"type": "text", "text": GOOD[:10]},
                                                    {"type": "image_url", "image_url": {}},
                                                    {"type": "text", "text": GOOD[10:]}]}),
     GOOD, (11, 7, 18), "stop"),
    (with_usage({"prompt_tokens": "11", "completion_tokens": -7, "total_tokens": 10**30}), GOOD, (0, 0, 0), "stop"),
    (with_usage({"prompt_tokens": 1.0, "completion_tokens": True, "total_tokens": None}), GOOD, (1, 0, 0), "stop"),
    (with_usage("lots"), GOOD, (0, 0, 0), "stop"),
    (with_usage([1, 2, 3]), GOOD, (0, 0, 0), "stop"),
    (with_choice(finish_reason=7), GOOD, (11, 7, 18), None),
    (with_choice(finish_reason={"why": "x"}), GOOD, (11, 7, 18), None),
    (with_choice(finish_reason="x" * 10_000), GOOD, (11, 7, 18), None),
    (with_message({"role": "assistant", "content": None, "refusal": 3}), "", (11, 7, 18), "stop"),
])
def test_odd_but_usable_replies(odd, body, text, usage, finish):
    odd.answer(body)
    answer = OpenAIBackend(base_url=odd.url, max_retries=0).ask(np.zeros((8, 8, 3), np.uint8), "q")
    assert answer.text == text and answer.finish_reason == finish
    assert answer.usage == dict(zip(("prompt_tokens", "completion_tokens", "total_tokens"), usage))


def test_nan_and_infinite_counts_in_the_body(odd):
    odd.answer(b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": NaN, '
               b'"completion_tokens": Infinity, "total_tokens": 1e400}}')
    answer = OpenAIBackend(base_url=odd.url, max_retries=0).ask(np.zeros((8, 8, 3), np.uint8), "q")
    assert answer.usage == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["choices", "message", "content", "text", "type", "usage", "prompt_tokens", "finish_reason", "refusal"]),
        inner, max_size=4),
    max_leaves=12)
slots = st.sampled_from(["body", "choices", "choice", "message", "content", "usage", "finish"])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(slot=slots, value=json_values)
def test_any_reply_shape_is_an_answer_or_a_request_error(slot, value):
    """Whatever the server puts where: a VLMAnswer with sane counts, or a VLMRequestError."""
    body = completion(GOOD)
    if slot == "body":
        body = value
    elif slot == "choices":
        body["choices"] = value
    elif slot == "choice":
        body["choices"][0] = value
    elif slot == "message":
        body["choices"][0]["message"] = value
    elif slot == "content":
        body["choices"][0]["message"]["content"] = value
    elif slot == "usage":
        body["usage"] = value
    else:
        body["choices"][0]["finish_reason"] = value
    try:
        text, usage, finish = decode_reply(json.dumps(body).encode())
    except ValueError as exc:
        assert str(exc)
        return
    assert isinstance(text, str) and (finish is None or isinstance(finish, str))
    assert all(isinstance(v, int) and 0 <= v <= 10**9 for v in usage.values())


def test_one_hypothesis_shape_over_the_wire(odd):
    """decode_reply is what ask uses: one shape through the real client to prove the wiring."""
    odd.answer(with_message({"role": "assistant", "content": [{"type": "text", "text": GOOD}]}))
    assert OpenAIBackend(base_url=odd.url, max_retries=0).ask(np.zeros((8, 8, 3), np.uint8), "q").text == GOOD


def test_usage_helpers_never_crash():
    assert clean_usage({"prompt_tokens": np.int64(4), "total_tokens": float("nan")})["prompt_tokens"] == 4
    meter = UsageMeter()
    meter.add({"prompt_tokens": "x", "completion_tokens": 10**40})
    meter.add("nonsense")
    assert meter.as_dict() == {"calls": 2, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


# --------------------------------------------------------------------------- the key never shows
@pytest.mark.parametrize("status", [400, 401, 403, 500])
def test_a_server_echoing_the_key_does_not_leak_it(odd, image_png, tmp_path, capsys, status):
    odd.answer({"error": {"message": f"bad key {KEY} in request", "type": "x"}}, status=status)
    code, _, err = run_cli(capsys, refer_argv(image_png, odd.url, "--out", tmp_path / "m.png"))
    assert code == (3 if status in (401, 403) else 1) and "***" in err


def test_a_key_echoed_in_a_200_body_does_not_leak(odd, image_png, tmp_path, capsys):
    odd.answer(f"not json, but the key {KEY}")
    code, _, err = run_cli(capsys, refer_argv(image_png, odd.url, "--out", tmp_path / "m.png"))
    assert code == 1


# --------------------------------------------------------------------------- --base-url
@pytest.mark.parametrize("url, message", [
    ("http://[::1", "not a valid URL"), ("ftp://example.com/v1", "http"), ("localhost:8000/v1", "http"),
    ("http://", "no host"), ("http:///v1", "no host"), ("http://exa mple.com/v1", "spaces"),
    ("http://127.0.0.1:99999/v1", "not a valid URL"), ("http://127.0.0.1:port/v1", "not a valid URL"),
    ("http://\udcff.example/v1", "not UTF-8"), ("http://a\x00b/v1", "control"),
])
def test_bad_base_url_exits_2(image_png, tmp_path, capsys, monkeypatch, url, message):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    code, _, err = run_cli(capsys, refer_argv(image_png, url, "--out", tmp_path / "m.png"))
    assert code == 2 and "--base-url" in err and message in err


def test_bad_base_url_from_the_environment_is_named(image_png, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://[::1")
    code, _, err = run_cli(capsys, ["refer", image_png, "--text", "x", "--out", tmp_path / "m.png"])
    assert code == 2 and "$OPENAI_BASE_URL" in err


def test_passwords_in_the_url_are_not_shown(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with pytest.raises(BadInputError) as info:
        OpenAIBackend(base_url="ftp://user:hunter2@example.com/v1?token=abc")
    assert "hunter2" not in str(info.value) and "abc" not in str(info.value)
    with OddServer() as server:
        url = server.url.replace("http://", "http://user:hunter2@")
    with pytest.raises(VLMRequestError) as info:
        OpenAIBackend(base_url=url, max_retries=0, timeout=3).ask(np.zeros((8, 8, 3), np.uint8), "q")
    assert "hunter2" not in str(info.value) and "cannot reach" in str(info.value)


def test_unexpected_client_exceptions_become_request_errors(odd, monkeypatch):
    backend = OpenAIBackend(base_url=odd.url, max_retries=0)

    def broken(**kwargs):
        raise TypeError("something odd inside the client")

    monkeypatch.setattr(backend.client.chat.completions.with_raw_response, "create", broken)
    with pytest.raises(VLMRequestError, match="TypeError"):
        backend.ask(np.zeros((8, 8, 3), np.uint8), "q")


# --------------------------------------------------------------------------- --text
@pytest.mark.parametrize("text, message", [("caf\udcff", "not UTF-8"), ("", "empty"), ("   \t ", "empty")])
def test_bad_text_exits_2_before_any_request(odd, image_png, tmp_path, capsys, text, message):
    code, _, err = run_cli(capsys, ["refer", image_png, "--text", text, "--base-url", odd.url,
                                    "--out", tmp_path / "m.png"])
    assert code == 2 and "--text" in err and message in err and odd.requests == 0


def test_ask_for_clicks_checks_the_text(rgb_image):
    class Never:
        name = "never"

        def ask(self, image, prompt):  # pragma: no cover - must not be reached
            raise AssertionError("asked")

    with pytest.raises(BadInputError, match="--text holds bytes that are not UTF-8"):
        ask_for_clicks(rgb_image, "x\udcff", Never())
    with pytest.raises(BadInputError, match="empty"):
        ask_for_clicks(rgb_image, " \n", Never())


# --------------------------------------------------------------------------- replay files
def replay_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    folder = tmp_path / "a_folder.json"
    folder.mkdir()
    cases = {"folder": (folder, "folder"), "missing": (tmp_path / "nope.json", "no such")}

    def write(name, data, message):
        path = tmp_path / f"{name}.json"
        path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
        cases[name] = (path, message)

    write("not_utf8", b'{"answers": ["\xff\xfe"]}', "not UTF-8")
    write("bad_json", b'{"answers": [', "not JSON")
    write("deep", b"[" * 200_000 + b"]" * 200_000, "nested too deeply")
    write("a_list", [{"text": "x", "answer": GOOD}], "'answers' list")
    write("answers_not_list", {"answers": {"text": "x"}}, "'answers' list")
    write("entry_not_object", {"answers": ["x"]}, "answers[0] is not an object")
    write("no_text", {"answers": [{"answer": GOOD}]}, "answers[0] has no 'text'")
    write("no_answer", {"answers": [{"text": "x"}]}, "has no 'answer'")
    write("text_number", {"answers": [{"text": 3, "answer": GOOD}]}, "answers[0].text is not text")
    write("answer_object", {"answers": [{"text": "x", "answer": {"clicks": []}}]}, "answers[0].answer")
    write("bad_size", {"answers": [{"text": "x", "answer": GOOD, "image_size": [10, "a"]}]}, "image_size")
    write("bad_mean", {"answers": [{"text": "x", "answer": GOOD, "image_mean_rgb": [1, 2]}]}, "image_mean_rgb")
    write("bad_usage", {"answers": [{"text": "x", "answer": GOOD, "usage": [1]}]}, "usage")
    write("bad_label", {"label": 5, "answers": []}, "label")
    return cases


def test_bad_replay_files_exit_2_naming_the_file(tmp_path, image_png, capsys):
    for name, (path, message) in replay_cases(tmp_path).items():
        code, _, err = run_cli(capsys, ["refer", image_png, "--text", "x", "--vlm", f"replay:{path}",
                                        "--device", "cpu", "--out", tmp_path / "m.png"])
        assert code == 2, (name, err)
        assert str(path) in err and message in err, (name, err)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_replay_file(tmp_path):
    path = tmp_path / "locked.json"
    path.write_text('{"answers": []}')
    path.chmod(0)
    try:
        with pytest.raises(BadInputError, match="permission denied"):
            ReplayBackend.from_file(path)
    finally:
        path.chmod(0o644)


def test_odd_usage_in_a_replay_file_counts_zero(rgb_image):
    from rs_helpers.refer.prompts import build_prompt

    backend = ReplayBackend([{"text": "x", "answer": GOOD, "usage": {"prompt_tokens": "many", "total_tokens": -1}}])
    assert backend.ask(rgb_image, build_prompt("x")).usage == {"prompt_tokens": 0, "completion_tokens": 0,
                                                                "total_tokens": 0}


# --------------------------------------------------------------------------- eval refer: one bad sample
class Sample:
    def __init__(self, id, text="a", image="i.png", load_error=None):
        self.id, self.text, self.task, self.image = id, text, "referring", image
        self.load_error = load_error

    def load(self):
        from rs_helpers.geo.rasters import RasterImage

        if self.load_error is not None:
            raise self.load_error
        target = np.zeros((100, 100), bool)
        target[40:60, 40:60] = True
        return RasterImage(rgb=np.zeros((100, 100, 3), np.uint8)), target


class Scripted:
    """Answers by sample text: "down" raises a request error, "nokey" a key error, "ctrl-c" Ctrl-C."""

    name = "scripted"

    def ask(self, image_rgb, prompt):
        for word, error in (("down", VLMRequestError("server down")),
                            ("nokey", WeightsUnavailableError("no key")), ("ctrl-c", KeyboardInterrupt())):
            if f'"{word}"' in prompt:
                raise error
        return VLMAnswer('{"clicks": [{"x": 505, "y": 505, "label": 1}]}')


class BoxPredictor:
    def __init__(self, size):
        self.original_size = size

    def predict(self, point_coords, point_labels, multimask_output):
        x, y = point_coords[0].astype(int)
        mask = np.zeros(self.original_size, bool)
        mask[y - 10: y + 10, x - 10: x + 10] = True
        return mask[None], np.array([0.9]), None


@pytest.fixture()
def oracle_sam(monkeypatch):
    import rs_helpers.evaluation.refer_eval as refer_eval

    monkeypatch.setattr(refer_eval, "make_predictor", lambda sam, rgb: BoxPredictor(rgb.shape[:2]))


def test_eval_records_bad_samples_and_goes_on(oracle_sam):
    from rs_helpers.evaluation.refer_eval import evaluate_refer

    samples = [Sample("ok1"), Sample("broken image", load_error=BadInputError("cannot read i.png")),
               Sample("damaged", load_error=OSError("truncated file")), Sample("down", text="down"),
               Sample("bad text", text="x\udcff"), Sample("ok2", image="j.png")]
    run = evaluate_refer(samples, Scripted(), sam=None, progress=False)
    by_id = {r["id"]: r for r in run.records}
    assert [r["id"] for r in run.records] == [s.id for s in samples]
    assert by_id["ok1"]["iou"] == 1.0 and by_id["ok2"]["iou"] == 1.0
    assert "cannot read i.png" in by_id["broken image"]["error"]
    assert "OSError" in by_id["damaged"]["error"] and "truncated" in by_id["damaged"]["error"]
    assert by_id["down"]["error"] == "server down" and "not UTF-8" in by_id["bad text"]["error"]
    assert all(by_id[i]["iou"] == 0.0 for i in ("broken image", "damaged", "down", "bad text"))
    s = run.summary()
    assert s["n"] == 6 and s["failures"] == 4 and s["gIoU"] == pytest.approx(2 / 6)
    json.dumps(run.to_json())


@pytest.mark.parametrize("word, error", [("nokey", WeightsUnavailableError), ("ctrl-c", KeyboardInterrupt)])
def test_eval_stops_only_for_a_missing_key_or_ctrl_c(oracle_sam, word, error):
    from rs_helpers.evaluation.refer_eval import evaluate_refer

    with pytest.raises(error):
        evaluate_refer([Sample("ok"), Sample("stop", text=word), Sample("never")], Scripted(), sam=None,
                       progress=False)


def test_eval_reads_samples_lazily(oracle_sam):
    """Only ``limit`` samples are taken from a generator, and each is read inside the guard."""
    from rs_helpers.evaluation.refer_eval import evaluate_refer

    def endless():
        i = 0
        while True:
            yield Sample(str(i), load_error=BadInputError("bad") if i == 0 else None)
            i += 1

    run = evaluate_refer(endless(), Scripted(), sam=None, progress=False, limit=3)
    assert [r["error"] for r in run.records] == ["bad", None, None]
