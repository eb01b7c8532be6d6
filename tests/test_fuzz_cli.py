"""Fuzz table for the command line: every sub-command against odd images, texts, class lists, output
paths, server behaviours, JSONL files, stored-answer files, checkpoints and numbers.

Each case is built in the test's own folder (nothing binary is committed) and runs ``rs-seg`` in this
process, with stdout/stderr set up as a real process has them (a decompression bomb runs with the
address space capped; a FIFO, /dev/zero or a possible endless tiling loop in a subprocess with a
timeout). Downloads are disabled and $OPENAI_BASE_URL points at a dead loopback port, so nothing
leaves the machine; server behaviours come from a Chat Completions server on 127.0.0.1. Asserted:

* the exit code (0 ok; 2 bad input, bad option or output refused; 3 weights, API key or checkpoint
  unusable; 4 an answer without usable clicks; 1 a remote service failed);
* no Python traceback, in any output;
* the API key ($OPENAI_API_KEY, a secret-looking string) in no output and no file;
* every file that existed before the run is unchanged (bytes and mtime), except the declared
  outputs of a successful run; a failed run leaves no new file, a successful one only its outputs;
* where the contract says "before any work": no model was loaded and no request was sent.

Signals and interrupted writes are tested in tests/test_outputs.py. The hypothesis tests at the
end cover the wide input spaces: class lists, VLM answers, JSONL lines, base URLs, reply bodies,
stored answers and --bands. ``FUZZ_REPORT=FILE`` appends one JSON line per case (code, problems,
stderr tail) for a summary.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

import fuzz_inputs as fz
from fuzz_inputs import GOOD_ANSWER, JSONL_KINDS, REPLAY_KINDS, SECRET, FuzzServer

HAS_CUDA = False
try:  # the table runs on CPU machines; `--device cuda` is a bad option only where no GPU exists
    import torch

    HAS_CUDA = torch.cuda.is_available()
except Exception:  # pragma: no cover
    pass

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
TINY_MARK = "tiny model in use"
REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- the context of one case
class Ctx:
    """The case's folder and lazily made inputs. Every path is returned as ``str``."""

    def __init__(self, tmp: Path, server: FuzzServer | None = None):
        self.tmp = tmp
        self.server = server
        self.notes: dict = {}

    @property
    def url(self) -> str:
        return self.server.url

    def p(self, name: str) -> str:
        return str(self.tmp / name)

    def img(self, name: str = "scene.png", **kw) -> str:
        path = self.tmp / name
        if not path.exists():
            fz.png(path, **kw)
        return str(path)

    def mask(self, name: str = "mask_gt.png", **kw) -> str:
        path = self.tmp / name
        if not path.exists():
            fz.mask_png(path, **kw)
        return str(path)

    def write(self, name: str, data: bytes | str) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    def mkdir(self, name: str) -> str:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def link(self, name: str, target: str) -> str:
        path = self.tmp / name
        path.symlink_to(target)
        return str(path)

    def file_dir(self) -> str:
        """A plain file, to put an output 'under' it."""
        return self.write("plain_file.txt", "I am a file, not a folder\n")

    def undecodable(self, name: str) -> str:
        return str(self.tmp) + "/" + name

    # odd inputs -----------------------------------------------------------
    def image(self, kind: str) -> str:
        return IMAGE_MAKERS[kind](self)

    def jsonl(self, kind: str, name: str = "lines.jsonl") -> str:
        self.img("img.png")  # what the lines' "image" names
        return self.write(name, JSONL_KINDS[kind])

    def train_file(self, name: str = "train.jsonl") -> str:
        self.img("img.png")
        line = {"image": "img.png", "text": "the building", "task": "referring", "answer": GOOD_ANSWER}
        return self.write(name, json.dumps(line) + "\n")

    def replay(self, kind: str) -> str:
        if kind == "folder":
            return self.mkdir("answers_dir.json")
        if kind == "missing":
            return self.p("no_such_answers.json")
        return self.write(f"answers_{kind}.json", REPLAY_KINDS[kind])

    def checkpoint(self, kind: str) -> str:
        t = self.tmp
        if kind == "empty":
            return self.write("sam_empty.pth", b"")
        if kind == "text":
            return self.write("sam_text.pth", "this is not a checkpoint\n" * 10)
        if kind == "truncated":
            full = fz.tiny_sam_checkpoint(t / ".full.pth").read_bytes()
            (t / ".full.pth").unlink()
            return self.write("sam_truncated.pth", full[: len(full) // 2])
        if kind == "good":
            return str(fz.tiny_sam_checkpoint(t / "sam_good.pth"))
        if kind == "evil_zip":
            self.notes["marker"] = t / "PWNED_zip"
            return str(fz.evil_checkpoint(t / "sam_evil.pth", self.notes["marker"]))
        if kind == "evil_pickle":
            self.notes["marker"] = t / "PWNED_pickle"
            return str(fz.evil_plain_pickle(t / "sam_evil.pkl", self.notes["marker"]))
        if kind == "wrong_keys":
            return str(fz.wrong_keys_checkpoint(t / "sam_wrong.pth"))
        if kind == "folder":
            return self.mkdir("sam_dir.pth")
        if kind == "missing":
            return self.p("no_such_sam.pth")
        raise KeyError(kind)

    def notebooks(self, name: str = "nb") -> str:
        fz.notebook(self.tmp / name / "00_a.ipynb")
        return str(self.tmp / name)


def _trunc(name: str, source: Callable[[Ctx], bytes], offset: Callable[[int], int]):
    def make(c: Ctx) -> str:
        data = source(c)
        return c.write(name, data[: offset(len(data))])
    return make


def _tif_source(c: Ctx) -> bytes:
    return fz.tiff_bytes(c.tmp)


IMAGE_MAKERS: dict[str, Callable[[Ctx], str]] = {
    "png_trunc_8": _trunc("t8.png", lambda c: fz.png_bytes(), lambda n: 8),
    "png_trunc_33": _trunc("t33.png", lambda c: fz.png_bytes(), lambda n: 33),
    "png_trunc_half": _trunc("thalf.png", lambda c: fz.png_bytes(), lambda n: n // 2),
    "png_trunc_noend": _trunc("tnoend.png", lambda c: fz.png_bytes(), lambda n: n - 12),
    "jpg_trunc_2": _trunc("t2.jpg", lambda c: fz.jpeg_bytes(), lambda n: 2),
    "jpg_trunc_third": _trunc("tthird.jpg", lambda c: fz.jpeg_bytes(), lambda n: n // 3),
    "jpg_trunc_end": _trunc("tend.jpg", lambda c: fz.jpeg_bytes(), lambda n: n - 10),
    "tif_trunc_8": _trunc("t8.tif", _tif_source, lambda n: 8),
    "tif_trunc_half": _trunc("thalf.tif", _tif_source, lambda n: n // 2),
    "tif_trunc_end": _trunc("tend.tif", _tif_source, lambda n: n - 64),
    "zero_bytes": lambda c: c.write("zero.png", b""),
    "folder": lambda c: c.mkdir("folder.png"),
    "text_png": lambda c: c.write("text.png", "hello, I am text\n" * 20),
    "missing": lambda c: c.p("missing.png"),
    "complex64": lambda c: str(fz.complex_tiff(c.tmp / "complex.tif")),
    "one_by_one": lambda c: c.img("one.png", width=1, height=1),
    "huge_png_header": lambda c: str(fz.huge_png_header(c.tmp / "huge.png")),
    "sparse_100k_tiff": lambda c: str(fz.sparse_tiff(c.tmp / "sparse.tif")),
    "aspect_2x5000": lambda c: c.img("aspect.png", width=2, height=5000),
    "uint16": lambda c: str(fz.uint16_tiff(c.tmp / "u16.tif")),
    "one_band": lambda c: str(fz.one_band_png(c.tmp / "gray.png")),
    "four_band": lambda c: str(fz.four_band_tiff(c.tmp / "four.tif")),
    "all_nodata": lambda c: str(fz.all_nodata_tiff(c.tmp / "nodata.tif")),
    "nan_half": lambda c: str(fz.nan_tiff(c.tmp / "nan.tif")),
    "nan_all": lambda c: str(fz.nan_tiff(c.tmp / "allnan.tif", share=1.0)),
    "inf_float": lambda c: str(fz.inf_tiff(c.tmp / "inf.tif")),
    "unicode_path": lambda c: c.img("dir with spaces/scène été 画像 ü.png"),
    "fifo": lambda c: (os.mkfifo(c.tmp / "pipe.png"), c.p("pipe.png"))[1],  # opening it for reading blocks
    "dev_zero": lambda c: "/dev/zero",
}

# What each reader must answer for each kind: info (header only), ovss, refer, clicks. None: not run.
# Bad files are exit 2 everywhere; valid odd ones work, except where the models cannot take the shape.
BAD = ("png_trunc_8", "png_trunc_33", "png_trunc_half", "png_trunc_noend", "jpg_trunc_2", "jpg_trunc_third",
       "jpg_trunc_end", "tif_trunc_8", "tif_trunc_half", "tif_trunc_end", "zero_bytes", "folder", "text_png",
       "missing", "complex64", "one_by_one")
IMAGE_EXPECT: dict[str, dict[str, object]] = {kind: {"info": 2, "ovss": 2, "refer": 2, "clicks": 2} for kind in BAD}
IMAGE_EXPECT.update({
    # a decompression bomb: info reads the header only (it may also call the file corrupt)
    "huge_png_header": {"info": {0, 2}, "ovss": 2, "refer": 2, "clicks": 2},
    # a valid 100000 x 100000 scene: info describes it; refer cannot decode it whole (ovss would tile it: hours)
    "sparse_100k_tiff": {"info": 0, "ovss": None, "refer": 2, "clicks": 2},
    "aspect_2x5000": {"info": 0, "ovss": 2, "refer": 2, "clicks": None},
    "uint16": {"info": 0, "ovss": 0, "refer": 0, "clicks": 0},
    "one_band": {"info": 0, "ovss": 0, "refer": 0, "clicks": None},
    "four_band": {"info": 0, "ovss": 0, "refer": 0, "clicks": None},
    "all_nodata": {"info": 0, "ovss": 0, "refer": 0, "clicks": None},
    "nan_half": {"info": 0, "ovss": 0, "refer": 0, "clicks": None},
    "nan_all": {"info": 0, "ovss": 0, "refer": 0, "clicks": None},
    "inf_float": {"info": 0, "ovss": 0, "refer": 0, "clicks": None},
    "unicode_path": {"info": 0, "ovss": 0, "refer": 0, "clicks": 0},
    "fifo": {"info": 2, "ovss": None, "refer": None, "clicks": None},
    "dev_zero": {"info": 2, "ovss": None, "refer": None, "clicks": None},
})
BLOCKING_IMAGES = {"fifo", "dev_zero"}  # a regression would block or read forever: a subprocess with a timeout
HUGE_IMAGES = {"huge_png_header", "sparse_100k_tiff"}  # a regression would allocate 10-30 GB: memory-guarded
LATE_DECODE = {"huge_png_header"}  # ovss tiles it (header only) and finds the pixels corrupt at the first tile


# --------------------------------------------------------------------------- a case and how it runs
Argv = Callable[[Ctx], list]


@dataclass
class Case:
    id: str
    argv: Argv
    expect: int | frozenset
    outputs: Callable[[Ctx], list] = lambda c: []  # declared outputs: may appear/change on success
    kept: Callable[[Ctx], list] = lambda c: []  # may appear even on failure: an eval's resumable results file
    server: str | None = None  # a FuzzServer behaviour
    env: dict = field(default_factory=dict)  # value None: unset
    sub: bool = False  # run as `python -m rs_helpers` in a subprocess (memory-limited)
    guard_memory: bool = False  # in this process, with the address space capped a few GiB above its size
    max_s: float | None = None
    no_models: bool = False  # the contract says: refused before any model is loaded
    no_requests: bool = False  # ... and before any request is sent
    needs_request: bool = False  # the outcome must come from the server's answer (at least one request)
    check: Callable | None = None  # extra (ctx, result) -> list of problems
    skip: str | None = None
    marks: tuple = ()

    @property
    def expected(self) -> frozenset:
        return frozenset(self.expect) if isinstance(self.expect, (set, frozenset, tuple)) else frozenset([self.expect])


@dataclass
class Result:
    argv: list
    code: object
    out: str
    err: str
    elapsed: float


def _snapshot(root: Path) -> dict[str, tuple]:
    files = {}
    for folder, dirs, names in os.walk(root, followlinks=False):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
                if os.path.islink(path):
                    files[path] = ("link", os.readlink(path))
                elif not stat.S_ISREG(st.st_mode):  # a FIFO or device: opening it could block
                    files[path] = ("special", stat.S_IFMT(st.st_mode), st.st_mtime_ns)
                else:
                    with open(path, "rb") as fh:
                        files[path] = ("file", fh.read(), st.st_mtime_ns, st.st_size)
            except OSError as exc:  # pragma: no cover - unreadable: compare what we can
                files[path] = ("error", str(exc))
    return files


def _limit_memory():  # pragma: no cover - runs in the child
    import resource

    limit = 12 * 2 ** 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _invoke(case: Case, argv: list, capsys, cwd: Path) -> Result:
    start = time.monotonic()
    if case.sub:
        import subprocess

        try:
            proc = subprocess.run([sys.executable, "-m", "rs_helpers", *argv], capture_output=True, cwd=cwd,
                                  env=dict(os.environ), timeout=case.max_s or 180, preexec_fn=_limit_memory)
            code = proc.returncode
            out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired as exc:
            code = "timed out"
            out = (exc.stdout or b"").decode(errors="replace")
            err = (exc.stderr or b"").decode(errors="replace")
        return Result(argv, code, out, err, time.monotonic() - start)
    code, out, err = call_main(argv, capsys, guard_memory=case.guard_memory)
    return Result(argv, code, out, err, time.monotonic() - start)


def call_main(argv: list, capsys, guard_memory: bool = False) -> tuple[object, str, str]:
    """``rs_helpers.cli.main(argv)`` in this process: (exit code or "raised X", stdout, stderr).

    stdout and stderr are set up as a real process has them (capsys' streams refuse what a terminal
    takes, e.g. a surrogate-escaped byte of an undecodable file name)."""
    from rs_helpers.cli import main

    out_buf, err_buf = io.BytesIO(), io.BytesIO()
    out_w = io.TextIOWrapper(out_buf, encoding="utf-8", write_through=True,
                             errors=getattr(sys.__stdout__, "errors", None) or "strict")
    err_w = io.TextIOWrapper(err_buf, encoding="utf-8", write_through=True, errors="backslashreplace")
    raised = ""
    with contextlib.ExitStack() as stack:
        if guard_memory:
            stack.enter_context(_address_space_cap(8 * 2 ** 30))
        stack.enter_context(contextlib.redirect_stdout(out_w))
        stack.enter_context(contextlib.redirect_stderr(err_w))
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse errors (2), --version (0)
            code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # noqa: BLE001 - a traceback is the bug this table looks for
            code = f"raised {type(exc).__name__}"
            raised = traceback.format_exc()
    captured = capsys.readouterr()  # anything that went around the redirection
    out = out_buf.getvalue().decode("utf-8", errors="replace") + captured.out
    err = err_buf.getvalue().decode("utf-8", errors="replace") + captured.err + raised
    return code, out, err


@contextlib.contextmanager
def _address_space_cap(headroom: int):
    """RLIMIT_AS at this process's size + ``headroom`` for the block: a decoder that trusts a 100000 x
    100000 header gets MemoryError instead of taking the machine's memory."""
    try:
        import resource

        with open("/proc/self/status") as fh:
            size = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (size + headroom, hard))
    except (ImportError, OSError, StopIteration, ValueError):  # pragma: no cover - not Linux
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _tail(text: str, n: int = 8) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip() and not line.startswith("***")]
    return "\n      ".join(lines[-n:])


def run_case(case: Case, tmp_path: Path, monkeypatch, capsys) -> None:
    if case.skip:
        pytest.skip(case.skip)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # never api.openai.com, even by mistake
    monkeypatch.delenv("RS_HELPERS_DEVICE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("RS_HELPERS_PROFILE", "tiny")
    for key, value in case.env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value(Ctx(tmp_path)) if callable(value) else value)
    # no download ever leaves this machine (a full-profile case must fail offline, exit 3)
    import urllib.error

    import rs_helpers.profile
    import rs_helpers.models.checkpoints

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network disabled in the fuzz test")

    monkeypatch.setattr(rs_helpers.models.checkpoints, "_download", offline, raising=False)
    monkeypatch.setattr(rs_helpers.models.checkpoints, "host_reachable", lambda *a, **k: False, raising=False)
    monkeypatch.setattr(rs_helpers.profile, "_announced", set())  # each model load announces itself again
    monkeypatch.chdir(tmp_path)  # relative default outputs land here and count as new files

    server = FuzzServer(case.server) if case.server else None
    if server:
        server.__enter__()
    try:
        ctx = Ctx(tmp_path, server)
        argv = [str(a) for a in case.argv(ctx)]
        before = _snapshot(tmp_path)
        result = _invoke(case, argv, capsys, tmp_path)
        after = _snapshot(tmp_path)
        requests = server.requests if server else 0
    finally:
        if server:
            server.__exit__(None, None, None)

    problems = []
    if result.code not in case.expected:
        problems.append(f"exit code {result.code!r}, expected {sorted(case.expected)}")
    for name, text in (("stderr", result.err), ("stdout", result.out)):
        if "Traceback" in text:
            problems.append(f"a traceback on {name}")
        if SECRET in text:
            problems.append(f"the API key on {name}")
    ok = result.code == 0
    declared = {os.path.abspath(str(p)) for p in case.outputs(ctx)} if ok else set()
    allowed = declared | {os.path.abspath(str(p)) for p in case.kept(ctx)}
    for path, state in before.items():
        if path in allowed:
            continue
        if path not in after:
            problems.append(f"pre-existing {os.path.relpath(path, tmp_path)} was removed")
        elif after[path] != state:
            problems.append(f"pre-existing {os.path.relpath(path, tmp_path)} was changed")
    new = sorted(set(after) - set(before) - allowed)
    if new:
        problems.append(f"{'failed' if not ok else 'successful'} run left undeclared new files: "
                        + ", ".join(os.path.relpath(p, tmp_path) for p in new[:6]))
    for path in declared:
        if not os.path.isfile(path):
            problems.append(f"declared output {os.path.relpath(path, tmp_path)} is missing")
    for path, state in after.items():
        if state[0] == "file" and SECRET.encode() in state[1]:
            problems.append(f"the API key is in the file {os.path.relpath(path, tmp_path)}")
    if case.max_s is not None and result.elapsed > case.max_s:
        problems.append(f"took {result.elapsed:.1f} s, more than {case.max_s} s")
    if case.no_models and TINY_MARK in result.err:
        problems.append("a model was loaded before the refusal")
    if case.no_requests and requests:
        problems.append(f"{requests} request(s) were sent before the refusal")
    if case.needs_request and not requests:
        problems.append("the server never got a request: the outcome is not the server's doing")
    marker = ctx.notes.get("marker")
    if marker is not None and Path(marker).exists():
        problems.append(f"the checkpoint's pickle ran code: {Path(marker).name} was created")
    if case.check:
        problems += case.check(ctx, result)

    report = os.environ.get("FUZZ_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"id": case.id, "argv": [a.replace(str(tmp_path), "$TMP") for a in argv],
                                 "expected": sorted(case.expected), "code": str(result.code),
                                 "elapsed": round(result.elapsed, 2), "problems": problems,
                                 "stderr_tail": _tail(result.err, 12).replace(SECRET, "<THE API KEY>")},
                                ensure_ascii=True) + "\n")
    if problems:  # the key itself is never printed, not even by the test that caught it
        shown = " ".join(repr(a) if (" " in a or not a.isprintable()) else a
                         for a in (x.replace(str(tmp_path), "$TMP") for x in argv))
        message = (f"rs-seg {shown}\n  " + "\n  ".join(problems)
                   + f"\n  ({result.elapsed:.1f} s) stderr tail:\n      {_tail(result.err)}")
        pytest.fail(message.replace(SECRET, "<THE API KEY>"), pytrace=False)


# --------------------------------------------------------------------------- the table
CASES: list[Case] = []


def case(id, argv, expect, **kw) -> None:
    CASES.append(Case(id, argv, expect, **kw))


TINY = ["--profile", "tiny", "--device", "cpu"]
OVSS_Q = TINY + ["--points-per-side", "4", "--templates", "single"]
REFER_Q = TINY + ["--sam", "vit_b", "--timeout", "10"]
CLICKS_Q = TINY + ["--sam", "vit_b", "--n", "2"]
SAMPLE_IMAGE = REPO / "data/samples/dubai_cc0/dubai_tile1_part009.jpg"
SAMPLE_TEXT = "the largest water body in the image"
PROC = "/proc/self/rs_fuzz_out"


def ovss(c: Ctx, *extra, image=None, out="map.png", classes="building;road") -> list:
    return ["ovss", image or c.img(), "--classes", classes, "--out", c.p(out) if not str(out).startswith("/") else out,
            *OVSS_Q, *extra]


def refer(c: Ctx, *extra, image=None, out="mask.png", text="the building", vlm=None) -> list:
    vlm = vlm or ["--vlm", "openai:gpt-5", "--base-url", c.url if c.server else "http://127.0.0.1:9/v1"]
    return ["refer", image or c.img(), "--text", text, *vlm, "--out",
            c.p(out) if not str(out).startswith("/") else out, *REFER_Q, *extra]


def replay_refer(c: Ctx, *extra, out="mask.png", vlm="replay", text=SAMPLE_TEXT) -> list:
    return ["refer", str(SAMPLE_IMAGE), "--text", text, "--vlm", vlm, "--out",
            c.p(out) if not str(out).startswith("/") else out, *TINY, "--sam", "vit_b", *extra]


def clicks(c: Ctx, *extra, image=None, mask=None, out="clicks.json") -> list:
    return ["clicks", image or c.img(), mask or c.mask(), "--out",
            c.p(out) if not str(out).startswith("/") else out, *CLICKS_Q, *extra]


def legend_of(name: str) -> str:
    stem = name.rsplit(".", 1)[0]
    return stem + ".legend.json"


def _ovss_outputs(name="map.png"):
    return lambda c: [c.p(name), c.p(legend_of(name))]


# ---- odd images through every reader
for kind, expect in IMAGE_EXPECT.items():
    guard = kind in HUGE_IMAGES
    if expect["info"] is not None:
        case(f"info-image-{kind}", lambda c, k=kind: ["info", c.image(k)], expect["info"], guard_memory=guard,
             sub=kind in BLOCKING_IMAGES, max_s=60)
    if expect["ovss"] is not None:
        case(f"ovss-image-{kind}", lambda c, k=kind: ovss(c, image=c.image(k)), expect["ovss"], guard_memory=guard,
             outputs=_ovss_outputs(), no_models=expect["ovss"] == 2 and kind not in LATE_DECODE, max_s=120)
    if expect["refer"] is not None:
        case(f"refer-image-{kind}", lambda c, k=kind: refer(c, image=c.image(k)), expect["refer"], guard_memory=guard,
             server="good", outputs=lambda c: [c.p("mask.png")], no_models=expect["refer"] == 2,
             no_requests=expect["refer"] == 2, max_s=120)
    if expect["clicks"] is not None and not guard:  # clicks reads images as refer does
        case(f"clicks-image-{kind}", lambda c, k=kind: clicks(c, image=c.image(k)), expect["clicks"],
             outputs=lambda c: [c.p("clicks.json")], no_models=expect["clicks"] == 2, max_s=120)

# ---- class lists (ovss): refused before any model
for cid, classes, expect in [
    ("empty", "", 2), ("whitespace", "   \t ", 2), ("only-semicolon", ";", 2), ("semicolons", ";;;", 2),
    ("commas-and-semicolons", " , ; ,", 2), ("newlines", "\n\n", 2), ("one-class", "building", 2),
    ("duplicate", "road;Road", 2), ("synonym-duplicate", "road;street,road", 2),
    ("non-utf8", "a\udcffb;road", 2), ("non-utf8-only", "\udcff\udcfe", 2),
    ("300-classes", ";".join(f"class{i}" for i in range(300)), 2),
]:
    case(f"ovss-classes-{cid}", lambda c, cl=classes: ovss(c, classes=cl), expect, no_models=True, max_s=20)
case("ovss-classes-254", lambda c: ovss(c, classes=";".join(f"class{i}" for i in range(254))), 0,
     outputs=_ovss_outputs(), max_s=120)  # label 255 marks ignored pixels: 254 is the most
case("ovss-classes-255", lambda c: ovss(c, classes=";".join(f"class{i}" for i in range(255))), 2, no_models=True)
case("ovss-classes-very-long", lambda c: ovss(c, classes="building " * 20000 + ";road"), {0, 2},
     outputs=_ovss_outputs(), max_s=120)
case("ovss-classes-control-chars", lambda c: ovss(c, classes="bui\x07lding\x1b[31m;ro\x7fad\x08"), {0, 2},
     outputs=_ovss_outputs(), max_s=120)
case("ovss-binary-target-missing", lambda c: ovss(c, "--binary", "--target", "water", classes="background;building"),
     2, no_models=True)
case("ovss-binary-no-target", lambda c: ovss(c, "--binary", classes="building;road;water"), 2, no_models=True)
case("ovss-binary-ok", lambda c: ovss(c, "--binary", "--tau", "0.3", classes="background;building"), 0,
     outputs=_ovss_outputs(), max_s=120)
case("ovss-ok", lambda c: ovss(c), 0, outputs=_ovss_outputs(), max_s=120,
     check=lambda c, r: [] if json.loads(Path(c.p("map.legend.json")).read_text()).get("classes")
     else ["the legend map.legend.json lists no classes"])

# ---- output paths (ovss): refused before any model, nothing touched
OUT_CASES = [
    ("out-is-input", lambda c: ovss(c, out="scene.png"), 2),
    ("out-is-input-overwrite", lambda c: ovss(c, "--overwrite", out="scene.png"), 2),
    ("out-is-input-via-symlink", lambda c: ovss(c, "--overwrite", out=c.link("link.png", c.img())), 2),
    ("out-is-input-via-dot", lambda c: ovss(c, "--overwrite", out=str(c.tmp) + "/./scene.png"), 2),
    ("out-is-input-tif", lambda c: ovss(c, "--overwrite", image=c.image("uint16"), out="u16.tif"), 2),
    ("out-exists", lambda c: (c.write("map.png", b"earlier result"), ovss(c))[1], 2),
    ("legend-exists", lambda c: (c.write("map.legend.json", b"{}"), ovss(c))[1], 2),
    ("out-is-folder", lambda c: (c.mkdir("map.png"), ovss(c))[1], 2),
    ("out-under-a-file", lambda c: (c.file_dir(), ovss(c, out="plain_file.txt/map.png"))[1], 2),
    ("out-in-proc", lambda c: ovss(c, out=PROC + ".png"), 2),
    ("out-undecodable-name", lambda c: ovss(c, out=c.undecodable("m\udcffap.png")), 2),
    ("out-empty-name", lambda c: ["ovss", c.img(), "--classes", "a;b", "--out", "", *OVSS_Q], 2),
    ("out-jpg", lambda c: ovss(c, out="map.jpg"), 2),
    ("out-no-suffix", lambda c: ovss(c, out="map"), 2),
    ("geojson-is-legend", lambda c: ovss(c, "--geojson", c.p("map.legend.json")), 2),
    ("geojson-is-out", lambda c: ovss(c, "--geojson", c.p("map.png")), 2),
    ("geojson-exists", lambda c: ovss(c, "--geojson", c.write("map.geojson", "{}")), 2),
    ("geojson-under-a-file", lambda c: (c.file_dir(), ovss(c, "--geojson", c.p("plain_file.txt/m.geojson")))[1], 2),
    ("geojson-in-proc", lambda c: ovss(c, "--geojson", PROC + ".geojson"), 2),
]
for cid, argv, expect in OUT_CASES:
    case(f"ovss-{cid}", argv, expect, no_models=True, max_s=20)
LONG = "n" * 300  # a file name longer than any file system takes (255 bytes)
ALMOST = "a" * 246  # fits alone (+ ".png"), but not with ".legend.json" or "_summary.csv" added
case("ovss-out-name-too-long", lambda c: ovss(c, out=LONG + ".png"), 2, no_models=True, max_s=20)
case("ovss-legend-name-too-long", lambda c: ovss(c, out=ALMOST + ".png"), 2, no_models=True, max_s=20)
case("ovss-geojson-name-too-long", lambda c: ovss(c, "--geojson", c.p(LONG + ".geojson")), 2, no_models=True, max_s=20)
case("ovss-tiled-png", lambda c: ovss(c, "--tile", "32", "--overlap", "8"), 0, outputs=_ovss_outputs(), max_s=120)
case("ovss-tiled-geotiff-geojson-wgs84",
     lambda c: ovss(c, "--tile", "32", "--overlap", "8", "--geojson", c.p("map.geojson"), "--to-wgs84",
                    image=c.image("uint16"), out="map.tif"), 0,
     outputs=lambda c: [c.p("map.tif"), c.p("map.legend.json"), c.p("map.geojson")], max_s=120)
case("ovss-geotiff-geojson-wgs84",
     lambda c: ovss(c, "--geojson", c.p("map.geojson"), "--to-wgs84", image=c.image("nan_half"), out="map.tif"), 0,
     outputs=lambda c: [c.p("map.tif"), c.p("map.legend.json"), c.p("map.geojson")], max_s=120)
case("ovss-overwrite-replaces", lambda c: (c.write("map.png", b"old"), c.write("map.legend.json", b"{}"),
                                           ovss(c, "--overwrite"))[-1], 0, outputs=_ovss_outputs(), max_s=120)

# ---- numbers and devices (ovss): argparse or the first checks, before any model
for cid, extra in [
    ("tile-0", ["--tile", "0"]), ("tile-8", ["--tile", "8"]), ("tile-abc", ["--tile", "abc"]),
    ("overlap-minus-1", ["--overlap", "-1"]), ("tau-2", ["--tau", "2"]), ("tau-nan", ["--tau", "nan"]),
    ("points-per-side-minus-3", ["--points-per-side", "-3"]), ("points-per-side-0", ["--points-per-side", "0"]),
    ("points-per-batch-0", ["--points-per-batch", "0"]), ("max-side-minus-1", ["--max-side", "-1"]),
    ("pred-iou-nan", ["--pred-iou-thresh", "nan"]), ("stability-inf", ["--stability-score-thresh", "inf"]),
    ("min-region-area-minus-1", ["--min-region-area", "-1"]), ("background-threshold-1.5", ["--background-threshold", "1.5"]),
    ("cls-lambda-minus", ["--cls-lambda", "-1"]), ("simplify-minus", ["--simplify", "-1"]),
    ("min-area-inf", ["--min-area", "inf"]), ("device-tpu", ["--device", "tpu"]),
    ("device-cuda-99", ["--device", "cuda:99"]), ("device-empty", ["--device", ""]),
    ("bands-0", ["--bands", "0,0,0"]), ("bands-two", ["--bands", "1,2"]), ("bands-99", ["--bands", "99"]),
    ("bands-text", ["--bands", "r,g,b"]), ("templates-bogus", ["--templates", "bogus"]),
    ("selector-bogus", ["--selector", "bogus"]), ("sam-bogus", ["--sam", "vit_x"]),
    ("profile-bogus", ["--profile", "huge"]),
]:
    case(f"ovss-number-{cid}", lambda c, e=extra: ovss(c, *e), 2, no_models=cid != "templates-bogus", max_s=30)
case("ovss-number-device-cuda", lambda c: ovss(c, "--device", "cuda"), 2, no_models=True,
     skip="this machine has a CUDA GPU" if HAS_CUDA else None)
case("ovss-overlap-equals-tile", lambda c: ovss(c, "--tile", "16", "--overlap", "16"), 2, sub=True, max_s=120)
case("ovss-env-device-tpu", lambda c: ["ovss", c.img(), "--classes", "a;b", "--out", c.p("map.png"),
                                       "--profile", "tiny", "--points-per-side", "4", "--templates", "single"], 2, env={"RS_HELPERS_DEVICE": "tpu"}, max_s=60)
case("ovss-env-decode-budget-bogus", lambda c: ovss(c), 2, env={"RS_HELPERS_MAX_DECODE_MB": "lots"}, max_s=60)

# ---- checkpoints (ovss, refer, clicks, lora-data, eval): unusable is exit 3, a pickle never runs
CKPT_KINDS = {"empty": 3, "text": 3, "truncated": 3, "evil_zip": 3, "evil_pickle": 3, "wrong_keys": 3,
              "folder": {2, 3}, "missing": {2, 3}}
for kind, expect in CKPT_KINDS.items():
    case(f"ovss-checkpoint-{kind}", lambda c, k=kind: ovss(c, "--sam-checkpoint", c.checkpoint(k)), expect, max_s=60)
for kind in ("text", "evil_zip", "wrong_keys"):
    case(f"clicks-checkpoint-{kind}", lambda c, k=kind: clicks(c, "--sam-checkpoint", c.checkpoint(k)), 3, max_s=60)
    case(f"refer-checkpoint-{kind}", lambda c, k=kind: replay_refer(c, "--sam-checkpoint", c.checkpoint(k)), 3,
         max_s=60)
case("clicks-checkpoint-good", lambda c: clicks(c, "--sam-checkpoint", c.checkpoint("good")), 0,
     outputs=lambda c: [c.p("clicks.json")], max_s=60)
case("clicks-out-is-checkpoint", lambda c: clicks(c, "--overwrite", "--sam-checkpoint", c.checkpoint("good"),
                                                  out="sam_good.pth"), 2, no_models=True)
case("lora-data-checkpoint-truncated",
     lambda c: ["lora-data", "--dataset", "samples", "--limit", "1", "--n-clicks", "1", "--out", c.p("t.jsonl"),
                "--sam-checkpoint", c.checkpoint("truncated"), *TINY], 3, max_s=60)
case("eval-ovss-checkpoint-evil",
     lambda c: ["eval", "ovss", "--dataset", "samples", "--limit", "1", "--out", c.p("r.json"), "--no-progress",
                "--sam-checkpoint", c.checkpoint("evil_zip"), *OVSS_Q], 3, max_s=60)
case("eval-refer-checkpoint-empty",
     lambda c: ["eval", "refer", "--dataset", "samples", "--limit", "1", "--vlm", "replay",
                "--sam-checkpoint", c.checkpoint("empty"), *TINY], 3, max_s=60)
# full profile, offline (downloads are disabled in this test): weights unavailable
case("clicks-full-profile-offline", lambda c: clicks(c)[:-len(CLICKS_Q)] + ["--profile", "full", "--device", "cpu",
                                                                            "--sam", "vit_b"],
     3, env={"RS_HELPERS_CACHE": lambda c: c.mkdir("cache")}, max_s=90)
case("clicks-full-profile-cache-is-a-file", lambda c: clicks(c)[:-len(CLICKS_Q)] + ["--profile", "full", "--device",
                                                                                    "cpu", "--sam", "vit_b"],
     {2, 3}, env={"RS_HELPERS_CACHE": lambda c: c.write("cache_file", "not a folder")}, max_s=90)  # a bad setting
case("ovss-tiny-cache-is-a-file", lambda c: ovss(c), 0, outputs=_ovss_outputs(),
     env={"RS_HELPERS_CACHE": lambda c: c.write("cache_file", "not a folder")}, max_s=120)

# ---- refer: texts
for cid, text, expect in [("empty", "", 2), ("whitespace", " \t\n ", 2), ("non-utf8", "a\udcffb", 2),
                          ("non-utf8-only", "\udcff", 2)]:
    case(f"refer-text-{cid}", lambda c, t=text: refer(c, text=t), expect, server="good", no_models=True,
         no_requests=True)
case("refer-text-very-long", lambda c: refer(c, text="the building " * 20000), {0, 2}, server="good",
     outputs=lambda c: [c.p("mask.png")], max_s=60)
case("refer-text-control-chars", lambda c: refer(c, text="the\x07 bui\x1b[31mlding\x7f\x08"), {0, 2}, server="good",
     outputs=lambda c: [c.p("mask.png")], max_s=60)
case("refer-text-not-stored-replay", lambda c: replay_refer(c, text="a purple dragon"), 2, no_models=True)

# ---- refer: output paths
for cid, argv in [
    ("out-is-input", lambda c: refer(c, out="scene.png")),
    ("out-is-input-overwrite", lambda c: refer(c, "--overwrite", out="scene.png")),
    ("out-is-input-via-symlink", lambda c: refer(c, "--overwrite", out=c.link("link.png", c.img()))),
    ("out-exists", lambda c: (c.write("mask.png", b"earlier"), refer(c))[1]),
    ("out-is-folder", lambda c: (c.mkdir("mask.png"), refer(c))[1]),
    ("out-under-a-file", lambda c: (c.file_dir(), refer(c, out="plain_file.txt/mask.png"))[1]),
    ("out-in-proc", lambda c: refer(c, out=PROC + ".png")),
    ("out-undecodable-name", lambda c: refer(c, out=c.undecodable("m\udcffask.png"))),
    ("out-jpg", lambda c: refer(c, out="mask.jpg")),
    ("clicks-out-is-out", lambda c: refer(c, "--clicks-out", c.p("mask.png"))),
    ("clicks-out-is-input", lambda c: refer(c, "--overwrite", "--clicks-out", c.img())),
    ("clicks-out-exists", lambda c: refer(c, "--clicks-out", c.write("clicks.json", "[]"))),
    ("clicks-out-in-proc", lambda c: refer(c, "--clicks-out", PROC + ".json")),
    ("clicks-out-is-folder", lambda c: refer(c, "--clicks-out", c.mkdir("clicks.json"))),
    ("geojson-is-clicks-out", lambda c: refer(c, "--clicks-out", c.p("c.json"), "--geojson", c.p("c.json"))),
    ("geojson-is-out", lambda c: refer(c, "--geojson", c.p("mask.png"))),
    ("geojson-exists", lambda c: refer(c, "--geojson", c.write("mask.geojson", "{}"))),
    ("replay-file-is-clicks-out", lambda c: replay_refer(c, "--overwrite", "--clicks-out",
                                                         c.write("ans.json", (REPO / "data/stored_answers/"
                                                                 "handwritten_examples.json").read_bytes()),
                                                         vlm="replay:" + c.p("ans.json"))),
]:
    case(f"refer-{cid}", argv, 2, server="good", no_models=True, no_requests=True, max_s=20)
case("refer-out-name-too-long", lambda c: refer(c, out=LONG + ".png"), 2, server="good", no_models=True,
     no_requests=True, max_s=20)
case("refer-clicks-out-name-too-long", lambda c: refer(c, "--clicks-out", c.p(LONG + ".json")), 2, server="good",
     no_models=True, no_requests=True, max_s=20)
case("refer-to-wgs84-not-georeferenced", lambda c: refer(c, "--geojson", c.p("mask.geojson"), "--to-wgs84"), 2,
     server="good", max_s=60)
case("refer-replay-ok", lambda c: replay_refer(c, "--clicks-out", c.p("out/clicks.json"), "--geojson",
                                               c.p("out/mask.geojson"), out="out/mask.png"), 0,
     outputs=lambda c: [c.p("out/mask.png"), c.p("out/clicks.json"), c.p("out/mask.geojson")], max_s=60)

# ---- refer: stored-answer (replay) files
for kind in list(REPLAY_KINDS) + ["folder", "missing"]:
    case(f"refer-replay-file-{kind}", lambda c, k=kind: replay_refer(c, vlm="replay:" + c.replay(k)), 2,
         no_models=True, max_s=20)

# ---- refer: server behaviours (openai backend against a loopback server)
SERVER_EXPECT = {
    "good": 0, "usage_strings": 0, "usage_huge": 0, "usage_list": 0,
    "500": 1, "503_html": 1, "429": 1, "500_echo": 1, "400_echo": 1,
    "401": 3, "401_echo": 3,
    "invalid_json": 1, "html": 1, "null_body": 1, "empty_body": 1, "deep_json": 1,
    "message_str": 1, "message_list": 1, "content_number": 1, "content_parts_odd": 1,
    "empty_choices": 1, "choices_null": 1, "close": 1, "short_body": 1,
    "no_clicks": 4, "echo_secret_content": 4, "clicks_out_of_range": 4, "clicks_nan": 4,
    "many_clicks": 0, "huge_body": 1, "echo_secret_escaped": 4, "401_echo_escaped": 3, "500_echo_escaped": 1,
}
for behaviour, expect in SERVER_EXPECT.items():
    case(f"refer-server-{behaviour}", lambda c: refer(c, "--clicks-out", c.p("clicks.json")), expect,
         server=behaviour, outputs=lambda c: [c.p("mask.png"), c.p("clicks.json")], max_s=30, needs_request=True,
         check=(lambda c, r: [] if "raw answer" in r.err else ["exit 4 without the raw answer"]) if expect == 4
         else None)
for behaviour in ("hang", "trickle"):
    case(f"refer-server-{behaviour}-timeout-2", lambda c: refer(c, "--timeout", "2"), 1, server=behaviour,
         max_s=15, needs_request=True)
for cid, url in [("ipv6-unclosed", "http://[::1"), ("bad-port", "http://127.0.0.1:99999/v1"),
                 ("ftp", "ftp://127.0.0.1/v1"), ("no-host", "http://"), ("spaces", "http://127.0.0.1 :8/v1"),
                 ("non-utf8", "http://127.0.0.1/\udcff")]:
    case(f"refer-base-url-{cid}", lambda c, u=url: refer(c, vlm=["--vlm", "openai:gpt-5", "--base-url", u]), 2,
         no_models=True, max_s=20)
case("refer-base-url-with-the-key-in-it", lambda c: refer(c, vlm=["--vlm", "openai:gpt-5", "--base-url",
                                                                  f"http://user:{SECRET}@127.0.0.1:9/v1"]),
     1, max_s=30)
case("refer-base-url-odd-with-the-key-in-it", lambda c: refer(c, vlm=["--vlm", "openai:gpt-5", "--base-url",
                                                                      f"http://[:{SECRET}@[::1]/v1"]),
     2, no_models=True, max_s=20)
case("refer-env-base-url-bad", lambda c: refer(c, vlm=["--vlm", "openai:gpt-5"]), 2,
     env={"OPENAI_BASE_URL": "http://[::1"}, no_models=True)
case("refer-no-api-key", lambda c: refer(c), 3, server="good", env={"OPENAI_API_KEY": None}, no_models=True,
     no_requests=True)
case("refer-empty-api-key", lambda c: refer(c), 3, server="good", env={"OPENAI_API_KEY": ""}, no_models=True,
     no_requests=True)
for cid, extra in [("timeout-nan", ["--timeout", "nan"]), ("timeout-0", ["--timeout", "0"]),
                   ("timeout-minus", ["--timeout", "-1"]), ("timeout-inf", ["--timeout", "inf"]),
                   ("timeout-text", ["--timeout", "soon"]), ("max-new-tokens-0", ["--max-new-tokens", "0"]),
                   ("max-new-tokens-minus", ["--max-new-tokens", "-5"]), ("n-clicks-0", ["--n-clicks", "0"]),
                   ("reasoning-bogus", ["--reasoning-effort", "extreme"]), ("device-tpu", ["--device", "tpu"]),
                   ("task-bogus", ["--task", "poetry"]), ("bands-99", ["--bands", "99"])]:
    case(f"refer-number-{cid}", lambda c, e=extra: refer(c, *e), 2, server="good", no_models=True, no_requests=True)
for cid, vlm in [("empty", ""), ("unknown", "claude:x"), ("qwen-reasoning", "qwen:x")]:
    case(f"refer-vlm-{cid}", lambda c, v=vlm: refer(c, "--reasoning-effort", "low", vlm=["--vlm", v]), 2,
         no_models=True)
case("refer-adapter-missing", lambda c: refer(c, "--adapter", c.p("no_adapter")), 2, server="good",
     no_models=True, no_requests=True)
# ---- refer: SAM's multimask rule and the no-target answer
for cid, extra in [("multimask-bogus", ["--multimask", "sometimes"]), ("multimask-empty", ["--multimask", ""]),
                   ("single-mask-and-multimask", ["--single-mask", "--multimask", "always"]),
                   ("single-mask-and-multimask-auto", ["--single-mask", "--multimask", "auto"])]:
    case(f"refer-{cid}", lambda c, e=extra: refer(c, *e), 2, server="good", no_models=True, no_requests=True)
for mode in ("auto", "always", "never"):
    case(f"refer-multimask-{mode}", lambda c, m=mode: refer(c, "--multimask", m), 0, server="good",
         outputs=lambda c: [c.p("mask.png")], max_s=60)


def _no_target_replay(c: Ctx, answer: str = '{"clicks": [], "reason": "no such building"}') -> str:
    return "replay:" + c.write("answers.json", json.dumps({"answers": [{"text": "the building", "answer": answer}]}))


case("refer-no-target-answer", lambda c: refer(c, "--clicks-out", c.p("clicks.json"), "--geojson", c.p("m.geojson"),
                                               vlm=["--vlm", _no_target_replay(c)]), 0,
     outputs=lambda c: [c.p("mask.png"), c.p("clicks.json"), c.p("m.geojson")], no_models=True, max_s=30,
     check=lambda c, r: [] if "no target" in r.out else ["the no-target answer was not reported"])
case("refer-empty-clicks-without-reason", lambda c: refer(c, vlm=["--vlm", _no_target_replay(c, '{"clicks": []}')]),
     4, no_models=True, max_s=30)

# ---- clicks
for cid, argv, expect in [
    ("ok", lambda c: clicks(c), 0),
    ("mask-other-size", lambda c: clicks(c, mask=c.mask("small_gt.png", width=32, height=32)), 2),
    ("mask-empty", lambda c: clicks(c, mask=c.mask("empty_gt.png", empty=True)), 2),
    ("mask-folder", lambda c: clicks(c, mask=c.mkdir("gt_dir.png")), 2),
    ("mask-truncated", lambda c: clicks(c, mask=c.image("png_trunc_half")), 2),
    ("mask-missing", lambda c: clicks(c, mask=c.p("no_gt.png")), 2),
    ("out-is-image", lambda c: clicks(c, "--overwrite", out="scene.png"), 2),
    ("out-is-mask", lambda c: clicks(c, "--overwrite", out="mask_gt.png"), 2),
    ("out-exists", lambda c: clicks(c, out=Path(c.write("clicks.json", "[]")).name), 2),
    ("out-in-proc", lambda c: clicks(c, out=PROC + ".json"), 2),
    ("out-under-a-file", lambda c: (c.file_dir(), clicks(c, out="plain_file.txt/c.json"))[1], 2),
    ("out-undecodable", lambda c: clicks(c, out=c.undecodable("c\udcff.json")), 2),
    ("out-name-too-long", lambda c: clicks(c, out=LONG + ".json"), 2),
    ("n-0", lambda c: clicks(c, "--n", "0"), 2),
    ("stop-iou-2", lambda c: clicks(c, "--stop-iou", "2"), 2),
    ("bands-9", lambda c: clicks(c, "--bands", "9"), 2),
    ("bands-text", lambda c: clicks(c, "--bands", "a"), 2),
    ("device-tpu", lambda c: clicks(c, "--device", "tpu"), 2),
]:
    case(f"clicks-{cid}", argv, expect, outputs=lambda c: [c.p("clicks.json")], no_models=expect == 2, max_s=60)
for cid, argv, expect in [
    ("tie-bogus", lambda c: clicks(c, "--tie", "ritm"), 2),
    ("tie-empty", lambda c: clicks(c, "--tie", ""), 2),
    ("multimask-bogus", lambda c: clicks(c, "--multimask", "3"), 2),
    ("single-mask-and-multimask", lambda c: clicks(c, "--single-mask", "--multimask", "never"), 2),
    ("tie-positive-multimask-always", lambda c: clicks(c, "--tie", "positive", "--multimask", "always"), 0),
    ("tie-negative-single-mask", lambda c: clicks(c, "--tie", "negative", "--single-mask"), 0),
]:
    case(f"clicks-{cid}", argv, expect, outputs=lambda c: [c.p("clicks.json")], no_models=expect == 2, max_s=60)

# ---- lora-data
LORA_Q = TINY + ["--n-clicks", "1"]


def lora(c: Ctx, *extra, out="t.jsonl", dataset=("--dataset", "samples", "--limit", "1")) -> list:
    return ["lora-data", *dataset, "--out", c.p(out) if not str(out).startswith("/") else out, *LORA_Q, *extra]


case("lora-data-ok", lambda c: lora(c), 0, outputs=lambda c: [c.p("t.jsonl")], max_s=60)
for cid, argv in [
    ("out-is-holdout-out", lambda c: lora(c, "--holdout", "0.5", "--holdout-out", c.p("t.jsonl"))),
    ("holdout-1", lambda c: lora(c, "--holdout", "1", "--holdout-out", c.p("h.jsonl"))),
    ("holdout-nan", lambda c: lora(c, "--holdout", "nan", "--holdout-out", c.p("h.jsonl"))),
    ("holdout-minus", lambda c: lora(c, "--holdout", "-0.1", "--holdout-out", c.p("h.jsonl"))),
    ("holdout-without-out", lambda c: lora(c, "--holdout", "0.5")),
    ("holdout-out-without-holdout", lambda c: lora(c, "--holdout-out", c.p("h.jsonl"))),
    ("out-exists", lambda c: (c.write("t.jsonl", "{}\n"), lora(c))[1]),
    ("holdout-out-exists", lambda c: lora(c, "--holdout", "0.5", "--holdout-out", c.write("h.jsonl", "{}\n"))),
    ("out-is-folder", lambda c: (c.mkdir("t.jsonl"), lora(c))[1]),
    ("out-under-a-file", lambda c: (c.file_dir(), lora(c, out="plain_file.txt/t.jsonl"))[1]),
    ("out-in-proc", lambda c: lora(c, out=PROC + ".jsonl")),
    ("out-undecodable", lambda c: lora(c, out=c.undecodable("t\udcff.jsonl"))),
    ("out-is-root", lambda c: lora(c, "--overwrite", out="lines.jsonl",
                                   dataset=("--dataset", "jsonl", "--root", c.jsonl("wrong_types")))),
    ("out-name-too-long", lambda c: lora(c, out=LONG + ".jsonl")),
    ("holdout-out-is-root", lambda c: lora(c, "--holdout", "0.5", "--holdout-out", c.p("lines.jsonl"),
                                           dataset=("--dataset", "jsonl", "--root", c.jsonl("wrong_types")))),
    ("n-clicks-0", lambda c: lora(c, "--n-clicks", "0")),
    ("limit-0", lambda c: ["lora-data", "--dataset", "samples", "--limit", "0", "--out", c.p("t.jsonl"), *TINY]),
    ("stop-iou-2", lambda c: lora(c, "--stop-iou", "2")),
    ("seed-minus", lambda c: lora(c, "--seed", "-1")),
    ("device-tpu", lambda c: lora(c, "--device", "tpu")),
    ("dataset-unknown", lambda c: lora(c, dataset=("--dataset", "nope"))),
    ("dataset-rrsisd-root-missing", lambda c: lora(c, dataset=("--dataset", "rrsisd", "--root", c.p("no_rrsisd")))),
    ("dataset-rrsisd-root-file", lambda c: lora(c, dataset=("--dataset", "rrsisd", "--root", c.file_dir()))),
    ("dataset-rrsisd-root-empty-folder", lambda c: lora(c, dataset=("--dataset", "rrsisd", "--root", c.mkdir("rr")))),
    ("dataset-rrsisd-no-root", lambda c: lora(c, dataset=("--dataset", "rrsisd"))),
    ("all-questions-samples", lambda c: lora(c, "--all-questions")),
    ("split-bogus", lambda c: lora(c, "--split", "nope")),
]:
    case(f"lora-data-{cid}", argv, 2, env={"RS_HELPERS_BENCHMARKS": lambda c: c.mkdir("benchmarks")},
         no_models=True, max_s=30)
for kind in JSONL_KINDS:
    case(f"lora-data-jsonl-{kind}", lambda c, k=kind: lora(c, dataset=("--dataset", "jsonl", "--root", c.jsonl(k))),
         2, max_s=30)
for cid, argv in [
    ("tie-bogus", lambda c: lora(c, "--tie", "ritm")),
    ("multimask-bogus", lambda c: lora(c, "--multimask", "sometimes")),
    ("single-mask-and-multimask", lambda c: lora(c, "--single-mask", "--multimask", "auto")),
    ("skip-empty-with-a-value", lambda c: lora(c, "--skip-empty=yes")),
]:
    case(f"lora-data-{cid}", argv, 2, no_models=True, max_s=30)
for cid, extra in [("skip-empty", ["--skip-empty"]), ("tie-positive", ["--tie", "positive"]),
                   ("multimask-always", ["--multimask", "always"]), ("single-mask", ["--single-mask"])]:
    case(f"lora-data-{cid}", lambda c, e=extra: lora(c, *e), 0, outputs=lambda c: [c.p("t.jsonl")], max_s=60)

# ---- train-lora: everything refused before Qwen is loaded
def train(c: Ctx, *extra, train_file=None, out="adapter") -> list:
    return ["train-lora", "--train", train_file or c.train_file(), "--out",
            c.p(out) if not str(out).startswith("/") else out, *TINY, "--quiet", *extra]


for cid, extra in [("rank-0", ["--rank", "0"]), ("batch-size-0", ["--batch-size", "0"]), ("lr-nan", ["--lr", "nan"]),
                   ("lr-0", ["--lr", "0"]), ("lr-minus", ["--lr", "-1e-4"]), ("lr-inf", ["--lr", "inf"]),
                   ("epochs-0", ["--epochs", "0"]), ("epochs-inf", ["--epochs", "inf"]),
                   ("dropout-2", ["--dropout", "2"]), ("alpha-0", ["--alpha", "0"]),
                   ("grad-accum-0", ["--grad-accum", "0"]), ("max-steps-0", ["--max-steps", "0"]),
                   ("save-steps-0", ["--save-steps", "0"]), ("logging-steps-0", ["--logging-steps", "0"]),
                   ("seed-minus", ["--seed", "-1"]), ("max-pixels-0", ["--max-pixels", "0"]),
                   ("n-clicks-0", ["--n-clicks", "0"]), ("lr-scheduler-bogus", ["--lr-scheduler", "sideways"]),
                   ("device-tpu", ["--device", "tpu"]), ("rank-text", ["--rank", "eight"])]:
    case(f"train-lora-number-{cid}", lambda c, e=extra: train(c, *e), 2, no_models=True, max_s=30)
for cid, argv in [
    ("train-missing", lambda c: train(c, train_file=c.p("no_train.jsonl"))),
    ("train-folder", lambda c: train(c, train_file=c.mkdir("train_dir.jsonl"))),
    ("eval-missing", lambda c: train(c, "--eval", c.p("no_eval.jsonl"))),
    ("out-is-a-file", lambda c: train(c, out=Path(c.file_dir()).name)),
    ("out-is-train", lambda c: train(c, "--overwrite", out="train.jsonl")),
    ("out-has-adapter", lambda c: (c.write("adapter/adapter_config.json", "{}"), train(c))[1]),
    ("out-under-a-file", lambda c: (c.file_dir(), train(c, out="plain_file.txt/adapter"))[1]),
    ("out-in-proc", lambda c: train(c, out=PROC)),
    ("out-name-too-long", lambda c: train(c, out=LONG)),
    ("out-undecodable", lambda c: train(c, out=c.undecodable("ad\udcffapter"))),
    ("resume-without-checkpoint", lambda c: train(c, "--resume", "--max-steps", "1")),
]:
    case(f"train-lora-{cid}", argv, 2, no_models=cid != "resume-without-checkpoint", max_s=60)
for kind in JSONL_KINDS:
    case(f"train-lora-train-jsonl-{kind}", lambda c, k=kind: train(c, train_file=c.jsonl(k)), 2, max_s=60)
for kind in ("nested", "infinity", "non_utf8"):
    case(f"train-lora-eval-jsonl-{kind}", lambda c, k=kind: train(c, "--eval", c.jsonl(k, "eval.jsonl")), 2,
         max_s=60)

# ---- eval ovss
def eval_ovss(c: Ctx, *extra, out="r.json", dataset=("--dataset", "samples", "--limit", "1")) -> list:
    return ["eval", "ovss", *dataset, "--out", c.p(out) if not str(out).startswith("/") else out, "--no-progress",
            "--max-side", "128", *OVSS_Q, *extra]


case("eval-ovss-ok-missing-folder", lambda c: eval_ovss(c, out="new/deeper/r.json"), 0,
     outputs=lambda c: [c.p("new/deeper/r.json"), c.p("new/deeper/r_images.csv"), c.p("new/deeper/r_summary.csv"),
                        c.p("new/deeper/r.results.jsonl")],
     max_s=120)
case("eval-ovss-list", lambda c: ["eval", "ovss", "--list"], 0)
for cid, argv in [
    ("out-in-proc", lambda c: eval_ovss(c, out=PROC + ".json")),
    ("out-under-a-file", lambda c: (c.file_dir(), eval_ovss(c, out="plain_file.txt/r.json"))[1]),
    ("out-exists", lambda c: (c.write("r.json", "{}"), eval_ovss(c))[1]),
    ("images-csv-exists", lambda c: (c.write("r_images.csv", "a,b\n"), eval_ovss(c))[1]),
    ("out-is-folder", lambda c: (c.mkdir("r.json"), eval_ovss(c))[1]),
    ("out-csv", lambda c: eval_ovss(c, out="r.csv")),
    ("out-name-too-long", lambda c: eval_ovss(c, out=LONG + ".json")),
    ("csv-name-too-long", lambda c: eval_ovss(c, out=ALMOST + ".json")),
    ("out-undecodable", lambda c: eval_ovss(c, out=c.undecodable("r\udcff.json"))),
    ("no-dataset", lambda c: eval_ovss(c, dataset=())),
    ("dataset-unknown", lambda c: eval_ovss(c, dataset=("--dataset", "nope"))),
    ("dataset-root-missing", lambda c: eval_ovss(c, dataset=("--dataset", "loveda", "--root", c.p("no_loveda")))),
    ("dataset-root-file", lambda c: eval_ovss(c, dataset=("--dataset", "loveda", "--root", c.file_dir()))),
    ("dataset-root-empty", lambda c: eval_ovss(c, dataset=("--dataset", "loveda", "--root", c.mkdir("lv")))),
    ("split-bogus", lambda c: eval_ovss(c, "--split", "nope")),
    ("limit-0", lambda c: eval_ovss(c, "--limit", "0")),
    ("tau-2", lambda c: eval_ovss(c, "--tau", "2")),
    ("max-side-minus", lambda c: eval_ovss(c, "--max-side", "-1")),
    ("points-per-side-0", lambda c: eval_ovss(c, "--points-per-side", "0")),
    ("device-tpu", lambda c: eval_ovss(c, "--device", "tpu")),
]:
    case(f"eval-ovss-{cid}", argv, 2, env={"RS_HELPERS_BENCHMARKS": lambda c: c.mkdir("benchmarks")},
         no_models=True, max_s=15)
# the results file beside the report: resumed when its settings match, refused (exit 2) otherwise
OTHER_SETTINGS = '{"rs_helpers_results": 1, "settings": {"tau": 0.1}}\n'
for cid, content in [("other-settings", OTHER_SETTINGS), ("not-ours", '{"a": 1}\n'), ("binary", b"\x00\xff" * 50),
                     ("not-utf8-record", OTHER_SETTINGS.encode() + b"\xff\xfe\n"), ("nan", "NaN\n")]:
    case(f"eval-ovss-results-{cid}", lambda c, x=content: (c.write("r.results.jsonl", x), eval_ovss(c))[1], 2,
         no_models=True, max_s=15)
case("eval-ovss-results-fresh", lambda c: (c.write("r.results.jsonl", OTHER_SETTINGS), eval_ovss(c, "--fresh"))[1],
     0, outputs=lambda c: [c.p(n) for n in ("r.json", "r_images.csv", "r_summary.csv", "r.results.jsonl")],
     max_s=120)
case("eval-ovss-results-is-folder", lambda c: (c.mkdir("r.results.jsonl"), eval_ovss(c))[1], 2, no_models=True,
     max_s=15)
for cid, argv in [
    ("protocol-bogus", lambda c: eval_refer(c, "--protocol", "bogus")),
    ("protocol-ovss-only", lambda c: eval_refer(c, "--protocol", "segearth-ov")),
]:
    case(f"eval-refer-{cid}", argv, 2, no_models=True, max_s=15)
# many scenes in one run: --out is a folder
def two_scenes(c: Ctx, *extra, out="maps", second=None) -> list:
    argv = ovss(c, *extra, out=out)
    return argv[:2] + [str(second or SAMPLE_IMAGE)] + argv[2:]


for cid, argv in [
    ("folder-empty", lambda c: ovss(c, image=c.mkdir("empty"), out="maps")),
    ("out-is-png", lambda c: two_scenes(c, out="maps.png")),
    ("out-is-a-file", lambda c: (c.write("maps", "x"), two_scenes(c))[1]),
    ("geojson", lambda c: two_scenes(c, "--geojson", c.p("x.geojson"))),
    ("second-missing", lambda c: two_scenes(c, second=c.p("nope.png"))),
    ("same-name-twice", lambda c: (lambda a: a[:2] + [str(SAMPLE_IMAGE)] + a[2:])(ovss(c, image=SAMPLE_IMAGE,
                                                                                    out="maps"))),
]:
    case(f"ovss-batch-{cid}", argv, 2, no_models=True, max_s=15)
case("eval-ovss-readonly-folder", lambda c: (os.chmod(c.mkdir("ro"), 0o500), eval_ovss(c, out="ro/r.json"))[1], 2,
     no_models=True, max_s=15, skip="root writes into read-only folders" if IS_ROOT else None)

# ---- --method, --upsampler, --protocol (ovss and eval ovss): bad values are exit 2 before any model
for cid, argv in [
    ("method-bogus", lambda c: ovss(c, "--method", "sam")),
    ("method-empty", lambda c: ovss(c, "--method", "")),
    ("upsampler-bogus", lambda c: ovss(c, "--upsampler", "bilinear")),
    ("upsampler-empty", lambda c: ovss(c, "--method", "clip", "--upsampler", "")),
    ("method-clip-sam-checkpoint", lambda c: ovss(c, "--method", "clip", "--sam-checkpoint", c.write("s.pth", "x"))),
    ("method-clip-selector-crop", lambda c: ovss(c, "--method", "clip", "--selector", "crop")),
    ("sam3-heads-bogus", lambda c: ovss(c, "--method", "sam3", "--sam3-heads", "instance,mask")),
    ("sam3-heads-empty", lambda c: ovss(c, "--method", "sam3", "--sam3-heads", ",")),
    ("sam3-confidence-2", lambda c: ovss(c, "--method", "sam3", "--sam3-confidence", "2")),
    ("sam3-confidence-nan", lambda c: ovss(c, "--method", "sam3", "--sam3-confidence", "nan")),
    ("sam3-prob-thd-negative", lambda c: ovss(c, "--method", "sam3", "--sam3-prob-thd", "-0.1")),
    ("sam3-window-negative", lambda c: ovss(c, "--method", "sam3", "--sam3-window", "-1")),
    ("sam3-option-without-sam3", lambda c: ovss(c, "--sam3-confidence", "0.3")),
    ("method-sam3-upsampler", lambda c: ovss(c, "--method", "sam3", "--upsampler", "none")),
    ("method-sam3-model-bogus", lambda c: ovss(c, "--method", "sam3", "--sam3-model", "not a hub id", "--profile",
                                               "full")),
]:
    case(f"ovss-{cid}", argv, 2, no_models=True, max_s=20)
case("ovss-method-sam3-ok", lambda c: ovss(c, "--method", "sam3", "--sam3-window", "0"), 0, outputs=_ovss_outputs(),
     max_s=120)
case("ovss-method-clip-ok", lambda c: ovss(c, "--method", "clip", "--upsampler", "none"), 0, outputs=_ovss_outputs(),
     max_s=120)
case("ovss-method-clip-tiled", lambda c: ovss(c, "--method", "clip", "--upsampler", "none", "--tile", "32",
                                              "--overlap", "8"), 0, outputs=_ovss_outputs(), max_s=120)
# the default upsampler (SimFeatUp, random under tiny) on a strip: three short windows keep it cheap
case("ovss-method-clip-simfeatup", lambda c: ovss(c, "--method", "clip", image=c.img("strip.png", width=240, height=24)),
     0, outputs=_ovss_outputs(), max_s=120)
for cid, argv in [
    ("method-bogus", lambda c: eval_ovss(c, "--method", "sam")),
    ("upsampler-bogus", lambda c: eval_ovss(c, "--upsampler", "bilinear")),
    ("protocol-bogus", lambda c: eval_ovss(c, "--protocol", "bogus")),
    ("protocol-empty", lambda c: eval_ovss(c, "--protocol", "")),
    ("protocol-refer-only", lambda c: eval_ovss(c, "--protocol", "rmsin")),
    ("protocol-segearth-on-samples", lambda c: eval_ovss(c, "--protocol", "segearth-ov")),
    ("method-clip-sam-checkpoint", lambda c: eval_ovss(c, "--method", "clip", "--sam-checkpoint",
                                                       c.write("s.pth", "x"))),
    ("method-clip-selector-crop", lambda c: eval_ovss(c, "--method", "clip", "--selector", "crop")),
    ("sam3-heads-bogus", lambda c: eval_ovss(c, "--method", "sam3", "--sam3-heads", "bogus")),
    ("sam3-confidence-2", lambda c: eval_ovss(c, "--method", "sam3", "--sam3-confidence", "2")),
    ("sam3-protocol-clip", lambda c: eval_ovss(c, "--method", "sam3", "--protocol", "segearth-ov")),
    ("sam3-protocol-on-samples", lambda c: eval_ovss(c, "--method", "sam3", "--protocol", "segearth-ov3")),
]:
    case(f"eval-ovss-{cid}", argv, 2, env={"RS_HELPERS_BENCHMARKS": lambda c: c.mkdir("benchmarks")},
         no_models=True, max_s=15)
case("eval-ovss-method-clip-ok", lambda c: eval_ovss(c, "--method", "clip", "--protocol", "native"), 0,
     outputs=lambda c: [c.p(n) for n in ("r.json", "r_images.csv", "r_summary.csv", "r.results.jsonl")], max_s=120)


# ---- --segmenter and its models (refer, clicks, lora-data, eval refer): another segmenter's option, a bad
# name, id or folder is exit 2 before any model; weights that cannot be had offline are exit 3
def seg_refer(c: Ctx, *extra, out="mask.png") -> list:
    return ["refer", str(SAMPLE_IMAGE), "--text", SAMPLE_TEXT, "--vlm", "replay", "--out", c.p(out), *TINY, *extra]


def seg_clicks(c: Ctx, *extra) -> list:
    return ["clicks", c.img(), c.mask(), "--out", c.p("clicks.json"), *TINY, "--n", "2", *extra]


def _folder_with_config(c: Ctx, text: str) -> str:
    c.write("model/config.json", text)
    return c.p("model")


for cid, argv in [
    ("refer-segmenter-bogus", lambda c: seg_refer(c, "--segmenter", "sam4")),
    ("refer-segmenter-empty", lambda c: seg_refer(c, "--segmenter", "")),
    ("refer-sam2-model-with-sam3", lambda c: seg_refer(c, "--segmenter", "sam3", "--sam2-model", "small")),
    ("refer-sam3-model-with-sam2", lambda c: seg_refer(c, "--segmenter", "sam2", "--sam3-model", "facebook/sam3")),
    ("refer-sam-checkpoint-with-sam2", lambda c: seg_refer(c, "--segmenter", "sam2", "--sam-checkpoint",
                                                           c.checkpoint("good"))),
    ("refer-sam-with-sam3", lambda c: seg_refer(c, "--segmenter", "sam3", "--sam", "vit_b")),
    ("refer-sam2-model-without-segmenter", lambda c: seg_refer(c, "--sam2-model", "large")),
    ("refer-sam2-model-not-an-id", lambda c: seg_refer(c, "--segmenter", "sam2", "--sam2-model", "no such/model!",
                                                       "--profile", "full")),
    ("refer-sam2-model-is-a-file", lambda c: seg_refer(c, "--segmenter", "sam2", "--sam2-model", c.file_dir(),
                                                       "--profile", "full")),
    ("refer-sam2-folder-no-config", lambda c: seg_refer(c, "--segmenter", "sam2", "--sam2-model", c.mkdir("empty"))),
    ("refer-sam2-folder-bad-config", lambda c: seg_refer(c, "--segmenter", "sam2", "--sam2-model",
                                                         _folder_with_config(c, "{not json"))),
    ("refer-sam3-folder-of-sam2", lambda c: seg_refer(c, "--segmenter", "sam3", "--sam3-model",
                                                      _folder_with_config(c, '{"model_type": "sam2"}'))),
    ("clicks-segmenter-bogus", lambda c: seg_clicks(c, "--segmenter", "SAM2")),
    ("clicks-sam-checkpoint-with-sam3", lambda c: seg_clicks(c, "--segmenter", "sam3", "--sam-checkpoint",
                                                             c.checkpoint("good"))),
    ("lora-data-sam3-model-without-segmenter", lambda c: lora(c, "--sam3-model", "facebook/sam3")),
    ("eval-refer-sam2-model-with-sam3", lambda c: ["eval", "refer", "--dataset", "samples", "--limit", "1", "--vlm",
                                                   "replay", *TINY, "--segmenter", "sam3", "--sam2-model", "tiny"]),
]:
    case(f"segmenter-{cid}", argv, 2, no_models=True, no_requests=True, max_s=30)
case("segmenter-refer-sam2-ok", lambda c: seg_refer(c, "--segmenter", "sam2", "--clicks-out", c.p("c.json")), 0,
     outputs=lambda c: [c.p("mask.png"), c.p("c.json")], max_s=90)
case("segmenter-clicks-sam3-ok", lambda c: seg_clicks(c, "--segmenter", "sam3"), 0,
     outputs=lambda c: [c.p("clicks.json")], max_s=90,
     check=lambda c, r: [] if json.loads(Path(c.p("clicks.json")).read_text()).get("segmenter") == "sam3"
     else ["the clicks file does not name the segmenter"])
# full profile, offline (HF_HUB_OFFLINE=1 here), ids no cache holds: exit 3, one message
case("segmenter-refer-sam2-full-offline", lambda c: seg_refer(c, "--profile", "full", "--segmenter", "sam2",
                                                              "--sam2-model", "rs-helpers-fuzz/no-such-sam2"), 3,
     max_s=90)
case("segmenter-clicks-sam3-full-offline", lambda c: seg_clicks(c, "--profile", "full", "--segmenter", "sam3",
                                                                "--sam3-model", "rs-helpers-fuzz/no-such-sam3"), 3,
     max_s=90)

# ---- eval refer
def eval_refer(c: Ctx, *extra, out=None, dataset=("--dataset", "samples", "--limit", "1"), vlm=None) -> list:
    vlm = vlm or (["--vlm", "openai:gpt-5", "--base-url", c.url, "--timeout", "10"] if c.server
                  else ["--vlm", "replay"])
    outs = ["--out", c.p(out) if not str(out).startswith("/") else out] if out else []
    return ["eval", "refer", *dataset, *vlm, *outs, *TINY, "--sam", "vit_b", *extra]


case("eval-refer-replay-ok", lambda c: eval_refer(c, out="res/r.json"), 0,
     outputs=lambda c: [c.p("res/r.json"), c.p("res/r.results.jsonl")], max_s=60)
case("eval-refer-server-good", lambda c: eval_refer(c, out="r.json"), 0, server="good",
     outputs=lambda c: [c.p("r.json"), c.p("r.results.jsonl")], max_s=60)
DEFAULT_REFER = ("outputs/eval_refer_samples_all.json", "outputs/eval_refer_samples_all.results.jsonl")
case("eval-refer-default-out", lambda c: eval_refer(c), 0, outputs=lambda c: [c.p(n) for n in DEFAULT_REFER],
     max_s=60)
FIVE = ("--dataset", "samples", "--limit", "5")  # MAX_CONSECUTIVE_REQUEST_ERRORS failures in a row stop the run
for behaviour, expect in [("500", 1), ("401", 3), ("401_echo", 3), ("invalid_json", 1), ("empty_choices", 1),
                          ("message_str", 1), ("500_echo_escaped", 1), ("echo_secret_escaped", 0)]:
    case(f"eval-refer-server-{behaviour}", lambda c, e=expect: eval_refer(c, out="r.json" if e == 0 else None,
                                                                          dataset=FIVE),
         expect, server=behaviour, max_s=60, needs_request=True,
         outputs=lambda c: [c.p("r.json"), c.p("r.results.jsonl")],
         kept=lambda c: [c.p(n) for n in DEFAULT_REFER])  # the answered queries, kept to resume
case("eval-refer-server-hang-timeout-1", lambda c: eval_refer(c, "--timeout", "1", dataset=FIVE), 1, server="hang",
     max_s=20, needs_request=True, kept=lambda c: [c.p(n) for n in DEFAULT_REFER])
case("eval-refer-server-no-clicks", lambda c: eval_refer(c, out="r.json"), 0, server="no_clicks",
     outputs=lambda c: [c.p("r.json"), c.p("r.results.jsonl")], max_s=60)
for cid, argv in [
    ("out-in-proc", lambda c: eval_refer(c, out=PROC + ".json")),
    ("out-under-a-file", lambda c: (c.file_dir(), eval_refer(c, out="plain_file.txt/r.json"))[1]),
    ("out-exists", lambda c: (c.write("r.json", "{}"), eval_refer(c, out="r.json"))[1]),
    ("out-txt", lambda c: eval_refer(c, out="r.txt")),
    ("out-name-too-long", lambda c: eval_refer(c, out=LONG + ".json")),
    ("out-is-checkpoint", lambda c: eval_refer(c, "--overwrite", "--sam-checkpoint",
                                               c.write("ckpt.json", b"x"), out="ckpt.json")),
    ("out-undecodable", lambda c: eval_refer(c, out=c.undecodable("r\udcff.json"))),
    ("out-is-root", lambda c: eval_refer(c, "--overwrite", out="lines.json",
                                         dataset=("--dataset", "jsonl", "--root", c.jsonl("wrong_types", "lines.json")))),
    ("dataset-unknown", lambda c: eval_refer(c, dataset=("--dataset", "nope"))),
    ("dataset-rrsisd-root-missing", lambda c: eval_refer(c, dataset=("--dataset", "rrsisd", "--root", c.p("nope")))),
    ("dataset-rrsisd-root-file", lambda c: eval_refer(c, dataset=("--dataset", "rrsisd", "--root", c.file_dir()))),
    ("dataset-jsonl-no-root", lambda c: eval_refer(c, dataset=("--dataset", "jsonl"))),
    ("dataset-jsonl-root-folder", lambda c: eval_refer(c, dataset=("--dataset", "jsonl", "--root", c.mkdir("j")))),
    ("split-bogus", lambda c: eval_refer(c, "--split", "nope")),
    ("limit-0", lambda c: eval_refer(c, dataset=("--dataset", "samples", "--limit", "0"))),
    ("n-clicks-0", lambda c: eval_refer(c, "--n-clicks", "0")),
    ("timeout-nan", lambda c: eval_refer(c, "--timeout", "nan")),
    ("device-tpu", lambda c: eval_refer(c, "--device", "tpu")),
]:
    case(f"eval-refer-{cid}", argv, 2, server="good", no_models=True, no_requests=True, max_s=15,
         env={"RS_HELPERS_BENCHMARKS": lambda c: c.mkdir("benchmarks")})
def _jsonl_pointing_at(c: Ctx, name: str, target: str) -> str:
    line = {"id": "x", "dataset": "jsonl", "root": target, "split": "all", "text": "t"}
    return c.write(name, json.dumps(line) + "\n")


case("eval-refer-jsonl-points-at-itself",
     lambda c: eval_refer(c, dataset=("--dataset", "jsonl", "--root", _jsonl_pointing_at(c, "a.jsonl", "a.jsonl"))),
     2, max_s=30)
case("eval-refer-jsonl-points-at-each-other",
     lambda c: (_jsonl_pointing_at(c, "b.jsonl", c.p("a.jsonl")),
                eval_refer(c, dataset=("--dataset", "jsonl", "--root", _jsonl_pointing_at(c, "a.jsonl", "b.jsonl"))))[1],
     2, max_s=30)
case("lora-data-jsonl-points-at-each-other",
     lambda c: (_jsonl_pointing_at(c, "b.jsonl", "a.jsonl"),
                lora(c, dataset=("--dataset", "jsonl", "--root", _jsonl_pointing_at(c, "a.jsonl", "b.jsonl"))))[1],
     2, max_s=30)
for kind in JSONL_KINDS:
    case(f"eval-refer-jsonl-{kind}",
         lambda c, k=kind: eval_refer(c, dataset=("--dataset", "jsonl", "--root", c.jsonl(k))), 2, max_s=30)
for kind in ("folder", "invalid_json", "wrong_shape", "nested"):
    case(f"eval-refer-replay-file-{kind}", lambda c, k=kind: eval_refer(c, vlm=["--vlm", "replay:" + c.replay(k)]), 2,
         no_models=True, max_s=20)


# ---- score refer, score ovss (no model: every refusal is exit 2, nothing is ever written but --json)
def score_refer(c: Ctx, *extra, pred=None, gt=None) -> list:
    for folder in ("gt", "pred"):
        c.mkdir(folder)
        c.mask(f"{folder}/a.png")
        c.mask(f"{folder}/b.png", empty=True)
    return ["score", "refer", "--pred", pred or c.p("pred"), "--gt", gt or c.p("gt"), *extra]


def _odd_score_file(c: Ctx, kind: str, side: str) -> list:
    """The odd file as the prediction (``side`` "pred") or the ground truth of a pair named by its stem."""
    odd = Path(c.image(kind))
    other = c.mkdir("other")
    fz.mask_png(Path(other) / f"{odd.stem}.png")
    return ["score", "refer", "--pred", str(c.tmp) if side == "pred" else other,
            "--gt", other if side == "pred" else str(c.tmp)]


def score_ovss(c: Ctx, *extra, dataset=None, pred=None) -> list:
    import fake_layouts as fl
    import numpy as np

    root = fl.make_loveda(c.tmp).root
    c.mkdir("pred")
    for sid in ("0", "1"):
        if not Path(c.p(f"pred/{sid}.png")).exists():
            fl.write(Path(c.p(f"pred/{sid}.png")), np.zeros((8, 8)))
    return ["score", "ovss", "--pred", pred or c.p("pred"), *(dataset or ["--dataset", "loveda", "--root", str(root)]),
            *extra]


def _halves_float():
    import numpy as np

    return np.full((1, 8, 8), 0.5, "float32")


def _ovss_odd_prediction(c: Ctx, kind: str) -> list:
    argv = score_ovss(c)
    odd = Path(c.image(kind))
    os.remove(c.p("pred/1.png"))
    os.rename(odd, c.p(f"pred/1{odd.suffix}"))
    return argv


case("score-refer-ok", lambda c: score_refer(c), 0, no_models=True, max_s=30,
     check=lambda c, r: [] if r.out.strip().splitlines()[-1].startswith("score: gIoU 100.00 ") else ["bad score line"])
case("score-refer-json-in-missing-folder", lambda c: score_refer(c, "--json", c.p("new/deeper/s.json")), 0,
     outputs=lambda c: [c.p("new/deeper/s.json")], max_s=30)
for protocol in ("rmsin", "segearth-r1", "native"):
    case(f"score-refer-protocol-{protocol}", lambda c, p=protocol: score_refer(c, "--protocol", p), 0, max_s=30)
for kind in BAD:
    for side in ("pred", "gt"):
        case(f"score-refer-{side}-{kind}", lambda c, k=kind, s=side: _odd_score_file(c, k, s), 2, no_models=True,
             max_s=30)
case("score-refer-pred-huge_png_header", lambda c: _odd_score_file(c, "huge_png_header", "pred"), 2,
     guard_memory=True, max_s=30)
for cid, argv in [
    ("missing-prediction", lambda c: (score_refer(c), os.remove(c.p("pred/b.png")))[0]),
    ("wrong-size", lambda c: (score_refer(c), os.remove(c.p("pred/b.png")), c.mask("pred/b.png", width=32))[0]),
    ("two-files-one-stem", lambda c: (score_refer(c), c.mask("pred/a.tif"))[0]),
    ("pred-missing-folder", lambda c: score_refer(c, pred=c.p("no_such_dir"))),
    ("pred-is-a-file", lambda c: score_refer(c, pred=c.file_dir())),
    ("pred-empty-folder", lambda c: score_refer(c, pred=c.mkdir("empty"))),
    ("pred-is-gt", lambda c: score_refer(c, pred=c.p("gt"))),
    ("gt-only-text", lambda c: score_refer(c, gt=str(Path(c.write("texts/a.txt", "x")).parent))),
    ("json-exists", lambda c: (c.write("s.json", "{}"), score_refer(c, "--json", c.p("s.json")))[1]),
    ("json-not-json", lambda c: score_refer(c, "--json", c.p("s.txt"))),
    ("json-is-folder", lambda c: score_refer(c, "--json", c.mkdir("s.json"))),
    ("json-under-a-file", lambda c: (c.file_dir(), score_refer(c, "--json", c.p("plain_file.txt/s.json")))[1]),
    ("json-in-proc", lambda c: score_refer(c, "--json", PROC + ".json")),
    ("json-name-too-long", lambda c: score_refer(c, "--json", c.p(LONG + ".json"))),
    ("json-undecodable", lambda c: score_refer(c, "--json", c.undecodable("s\udcff.json"))),
    ("protocol-bogus", lambda c: score_refer(c, "--protocol", "lisa")),
    ("protocol-segearth-ov", lambda c: score_refer(c, "--protocol", "segearth-ov")),
    ("dataset-unknown", lambda c: score_refer(c, "--dataset", "nope")),
    ("dataset-ovss", lambda c: score_refer(c, "--dataset", "loveda")),
    ("no-gt", lambda c: score_refer(c)[:4]),
]:
    case(f"score-refer-{cid}", argv, 2, no_models=True, max_s=30)

case("score-ovss-ok", lambda c: score_ovss(c), 0, max_s=30,
     check=lambda c, r: [] if r.out.strip().splitlines()[-1].startswith("score: mIoU ") else ["bad score line"])
case("score-ovss-json", lambda c: score_ovss(c, "--json", c.p("o.json"), "--protocol", "native"), 0,
     outputs=lambda c: [c.p("o.json")], max_s=30)
for kind in ("png_trunc_half", "tif_trunc_half", "zero_bytes", "text_png", "complex64", "folder"):
    case(f"score-ovss-pred-{kind}", lambda c, k=kind: _ovss_odd_prediction(c, k), 2, max_s=30)
case("score-ovss-pred-huge_png_header", lambda c: _ovss_odd_prediction(c, "huge_png_header"), 2, guard_memory=True,
     max_s=30)
for cid, argv in [
    ("missing-prediction", lambda c: (score_ovss(c), os.remove(c.p("pred/1.png")))[0]),
    ("wrong-size", lambda c: (score_ovss(c), os.remove(c.p("pred/1.png")), c.mask("pred/1.png"))[0]),
    ("pred-fractions", lambda c: (score_ovss(c), os.remove(c.p("pred/1.png")),
                                  fz.geotiff(Path(c.p("pred/1.tif")), _halves_float(), geo=False))[0]),
    ("legend-corrupt", lambda c: (score_ovss(c), c.write("pred/1.legend.json", "{"))[0]),
    ("legend-binary", lambda c: (score_ovss(c), c.write("pred/1.legend.json", '{"binary": true, "classes": []}'))[0]),
    ("gt-truncated", lambda c: (score_ovss(c), c.write("LoveDA/ann_dir/val/1.png", fz.png_bytes()[:40]))[0]),
    ("pred-missing-folder", lambda c: score_ovss(c, pred=c.p("no_such_dir"))),
    ("pred-empty-folder", lambda c: score_ovss(c, pred=c.mkdir("empty"))),
    ("dataset-unknown", lambda c: score_ovss(c, dataset=["--dataset", "nope"])),
    ("dataset-samples", lambda c: score_ovss(c, dataset=["--dataset", "samples"])),
    ("dataset-referring", lambda c: score_ovss(c, dataset=["--dataset", "rrsisd", "--root", c.p("LoveDA")])),
    ("root-missing", lambda c: score_ovss(c, dataset=["--dataset", "loveda", "--root", c.p("no_loveda")])),
    ("root-empty", lambda c: score_ovss(c, dataset=["--dataset", "loveda", "--root", c.mkdir("lv")])),
    ("split-bogus", lambda c: score_ovss(c, "--split", "nope")),
    ("protocol-bogus", lambda c: score_ovss(c, "--protocol", "nope")),
    ("protocol-rmsin", lambda c: score_ovss(c, "--protocol", "rmsin")),
    ("json-exists", lambda c: (c.write("o.json", "{}"), score_ovss(c, "--json", c.p("o.json")))[1]),
    ("json-in-proc", lambda c: score_ovss(c, "--json", PROC + ".json")),
]:
    case(f"score-ovss-{cid}", argv, 2, no_models=True, max_s=30,
         env={"RS_HELPERS_BENCHMARKS": lambda c: c.mkdir("benchmarks")})


# ---- bench
def bench(c: Ctx, *extra, out=None) -> list:
    outs = ["--out", c.p(out) if not str(out).startswith("/") else out] if out else []
    return ["bench", *TINY, "--size", "64", "--points-per-side", "4", "--no-realistic", *outs, *extra]


case("bench-out-in-missing-folder", lambda c: bench(c, out="new/deeper/b.json"), 0,
     outputs=lambda c: [c.p("new/deeper/b.json")], max_s=120,
     check=lambda c, r: [] if isinstance(json.loads(Path(c.p("new/deeper/b.json")).read_text()), dict)
     else ["bench --out is not a JSON object"])
for cid, argv in [
    ("size-minus-5", lambda c: bench(c, "--size", "-5")), ("size-0", lambda c: bench(c, "--size", "0")),
    ("points-per-side-minus-3", lambda c: bench(c, "--points-per-side", "-3")),
    ("images-0", lambda c: bench(c, "--images", "0")), ("repeat-0", lambda c: bench(c, "--repeat", "0")),
    ("margin-nan", lambda c: bench(c, "--margin", "nan")), ("margin-minus", lambda c: bench(c, "--margin", "-1")),
    ("batch-size-0", lambda c: bench(c, "--batch-size", "0")), ("memory-size-0", lambda c: bench(c, "--memory-size", "0")),
    ("device-tpu", lambda c: bench(c, "--device", "tpu")), ("sam-bogus", lambda c: bench(c, "--sam", "vit_x")),
    ("out-exists", lambda c: bench(c, out=Path(c.write("b.json", "{}")).name)),
    ("out-is-folder", lambda c: bench(c, out=Path(c.mkdir("b.json")).name)),
    ("out-under-a-file", lambda c: (c.file_dir(), bench(c, out="plain_file.txt/b.json"))[1]),
    ("out-in-proc", lambda c: bench(c, out=PROC + ".json")),
    ("out-name-too-long", lambda c: bench(c, out=LONG + ".json")),
    ("out-undecodable", lambda c: bench(c, out=c.undecodable("b\udcff.json"))),
    ("method-sam4", lambda c: bench(c, "--method", "sam4")),
    ("sam3-classes-0", lambda c: bench(c, "--method", "sam3", "--classes", "0")),
    ("sam3-classes-too-many", lambda c: bench(c, "--method", "sam3", "--classes", "999")),
    ("sam3-prompt-batch-0", lambda c: bench(c, "--method", "sam3", "--prompt-batch", "0")),
    ("sam3-with-pipeline", lambda c: bench(c, "--method", "sam3", "--pipeline")),
    ("classes-without-sam3", lambda c: bench(c, "--classes", "4")),
]:
    case(f"bench-{cid}", argv, 2, no_models=True, max_s=15)


# ---- student
def student(c: Ctx, *extra, out="copies", notebooks=None) -> list:
    return ["student", "--notebooks", notebooks or c.notebooks(), "--out",
            c.p(out) if not str(out).startswith("/") else out, *extra]


case("student-ok", lambda c: student(c), 0, outputs=lambda c: [c.p("copies/00_a.ipynb")], max_s=60)
case("student-overwrite", lambda c: (c.write("copies/00_a.ipynb", "{}"), student(c, "--overwrite"))[1], 0,
     outputs=lambda c: [c.p("copies/00_a.ipynb")], max_s=60)
for cid, argv in [
    ("out-has-copy", lambda c: (c.write("copies/00_a.ipynb", "{\"student\": \"work\"}"), student(c))[1]),
    ("out-is-a-file", lambda c: student(c, out=Path(c.file_dir()).name)),
    ("out-under-a-file", lambda c: (c.file_dir(), student(c, out="plain_file.txt/copies"))[1]),
    ("out-is-notebooks", lambda c: student(c, out="nb")),
    ("out-in-proc", lambda c: student(c, out=PROC)),
    ("out-name-too-long", lambda c: student(c, out=LONG)),
    ("out-undecodable", lambda c: student(c, out=c.undecodable("co\udcffpies"))),
    ("notebooks-missing", lambda c: student(c, notebooks=c.p("no_notebooks"))),
    ("notebooks-a-file", lambda c: student(c, notebooks=c.file_dir())),
    ("notebooks-empty", lambda c: student(c, notebooks=c.mkdir("empty_nb"))),
    ("notebook-corrupt", lambda c: (c.notebooks(), c.write("nb/01_bad.ipynb", '{"cells": ['), student(c))[-1]),
    ("notebook-non-utf8", lambda c: (c.notebooks(), c.write("nb/01_bad.ipynb", b'{"cells": "\xff\xfe"}'),
                                     student(c))[-1]),
    ("notebook-nested", lambda c: (c.notebooks(), c.write("nb/01_bad.ipynb", b"[" * 100_000 + b"]" * 100_000),
                                   student(c))[-1]),
    ("notebook-is-folder", lambda c: (c.notebooks(), c.mkdir("nb/01_dir.ipynb"), student(c))[-1]),
]:
    case(f"student-{cid}", argv, 2, max_s=30)

# ---- doctor, demo, argparse
case("doctor", lambda c: ["doctor"], {0, 1}, max_s=30)
case("doctor-cache-is-a-file", lambda c: ["doctor"], 1,  # a cache that cannot be a folder is a failed check
     env={"RS_HELPERS_CACHE": lambda c: c.write("cache_file", "x")}, max_s=30)
case("doctor-profile-env-bogus", lambda c: ["doctor"], 2, env={"RS_HELPERS_PROFILE": "huge"}, max_s=30)
case("doctor-device-env-bogus", lambda c: ["doctor"], 2, env={"RS_HELPERS_DEVICE": "tpu"}, max_s=30)
case("demo-out-is-a-file", lambda c: ["demo", "--skip-notebooks", "--out", c.file_dir(), *TINY], 2, no_models=True,
     max_s=30)
case("demo-out-in-proc", lambda c: ["demo", "--skip-notebooks", "--out", PROC, *TINY], 2, no_models=True, max_s=30)
for cid, argv, expect in [
    ("no-command", [], 2), ("unknown-command", ["bogus"], 2), ("eval-no-kind", ["eval"], 2),
    ("eval-unknown-kind", ["eval", "bogus"], 2), ("version", ["--version"], 0), ("ovss-no-args", ["ovss"], 2),
    ("refer-no-text", ["refer", "x.png", "--out", "m.png"], 2), ("info-no-image", ["info"], 2),
    ("info-two-images", ["info", "a.png", "b.png"], 2), ("help", ["--help"], 0),
]:
    case(f"argparse-{cid}", lambda c, a=argv: list(a), expect, no_models=True, max_s=15)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_case(case, tmp_path, monkeypatch, capsys):
    run_case(case, tmp_path, monkeypatch, capsys)


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def _misbehave(kind: str):
    """A stand-in for rs_helpers.cli.main that breaks one rule of the contract (run in the case's folder)."""
    def fake(argv):
        if kind == "changes-input":
            Path("input.txt").write_text("overwritten")
            return 2
        if kind == "removes-input":
            Path("input.txt").unlink()
            return 2
        if kind == "prints-secret":
            print(f"key={os.environ['OPENAI_API_KEY']}")
            return 0
        if kind == "secret-in-file":
            Path("out.txt").write_text(os.environ["OPENAI_API_KEY"])
            return 0
        if kind == "raises":
            raise ValueError("a bug")
        if kind == "leaves-file":
            Path(".out.x.part.png").write_bytes(b"half")
            return 2
        if kind == "wrong-code":
            return 1
        if kind == "missing-output":
            return 0
        raise KeyError(kind)
    return fake


@pytest.mark.parametrize("kind, message", [
    ("changes-input", "pre-existing input.txt was changed"), ("removes-input", "pre-existing input.txt was removed"),
    ("prints-secret", "the API key on stdout"), ("secret-in-file", "the API key is in the file out.txt"),
    ("raises", "raised ValueError"), ("leaves-file", "undeclared new files: .out.x.part.png"),
    ("wrong-code", "exit code 1, expected [2]"), ("missing-output", "declared output out.txt is missing"),
])
def test_the_table_catches_each_broken_rule(kind, message, tmp_path, monkeypatch, capsys):
    import rs_helpers.cli

    monkeypatch.setattr(rs_helpers.cli, "main", _misbehave(kind))
    expect = 0 if kind in ("prints-secret", "secret-in-file", "missing-output") else 2
    probe = Case(f"probe-{kind}", lambda c: ["doctor", c.write("input.txt", "original")], expect,
                 outputs=lambda c: [c.p("out.txt")])
    with pytest.raises(pytest.fail.Exception, match=message.replace(".", r"\.").replace("[", r"\[")):
        run_case(probe, tmp_path, monkeypatch, capsys)


# --------------------------------------------------------------------------- hypothesis: wide input spaces
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(deadline=None, database=None, derandomize=True,
                suppress_health_check=[getattr(HealthCheck, name) for name in
                                       ("function_scoped_fixture", "too_slow", "filter_too_much", "data_too_large",
                                        "large_base_example") if hasattr(HealthCheck, name)])

ODD_CHARS = st.one_of(  # separators, blanks, control characters, surrogates (undecodable argv bytes)
    st.sampled_from(list(";,; \t\n\r\x00\x07\x1b\x7f\u00a0\u200b\ufeff\udcff\udc80\U0001f600é画")),
    st.characters(exclude_categories=()),
)
CLASS_TEXT = st.one_of(
    st.text(ODD_CHARS, max_size=40),
    st.lists(st.text(st.sampled_from(list("ab ,;é\t")), max_size=6), max_size=8).map(";".join),
)


@settings(FUZZ, max_examples=200)
@given(text=CLASS_TEXT)
def test_parse_classes_gives_a_vocabulary_or_the_documented_error(text):
    from rs_helpers.errors import BadInputError
    from rs_helpers.ovss.vocabulary import Vocabulary, parse_classes

    try:
        vocab = parse_classes(text)
    except BadInputError as exc:
        assert str(exc)
        return
    assert isinstance(vocab, Vocabulary) and len(vocab) >= 1
    names = [s.lower() for syn in vocab.synonyms for s in syn]
    assert all(n.strip() == n and n for n in names), vocab
    assert len(names) == len(set(names)), f"a name twice in {vocab}"
    for name in names:
        name.encode("utf-8")  # only text a tokenizer can take


@settings(FUZZ, max_examples=60)
@given(text=CLASS_TEXT)
def test_ovss_class_validation_exits_2_without_traceback(tmp_path_factory, capsys, text):
    """Any class string, paired with an existing output: always exit 2 (bad classes, one class, or
    the output exists), one error line, no traceback, nothing read or written, no model loaded."""
    import rs_helpers.profile

    rs_helpers.profile._announced.clear()  # a model load would announce itself
    tmp = tmp_path_factory.mktemp("ovss_classes", numbered=True)
    image = fz.png(tmp / "scene.png")
    out = tmp / "map.png"
    out.write_bytes(b"earlier")
    before = _snapshot(tmp)
    code, _, err = call_main(["ovss", str(image), "--classes", text, "--out", str(out), *OVSS_Q], capsys)
    assert code == 2, (text, err)
    assert "Traceback" not in err and TINY_MARK not in err
    assert sum(line.startswith("rs-seg: error:") for line in err.splitlines()) == 1, err
    assert _snapshot(tmp) == before


def _json_values():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
    keys = st.one_of(st.sampled_from(["x", "y", "label", "clicks", "point", "points", "positive", "negative"]),
                     st.text(max_size=6))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                         st.dictionaries(keys, inner, max_size=5)), max_leaves=20)


def _number():
    return st.one_of(st.integers(-5, 1005), st.integers(-10 ** 30, 10 ** 30), st.floats(allow_nan=True),
                     st.text(st.sampled_from("0123456789.-e"), max_size=6), st.none(), st.booleans())


CLICK_LIKE = st.lists(st.fixed_dictionaries({"x": _number(), "y": _number()},
                                            optional={"label": st.one_of(_number(), st.text(max_size=4))}),
                      max_size=6).map(lambda cl: json.dumps({"clicks": cl}))


def _wrap(text_strategy):
    return st.tuples(st.sampled_from(["{}", "```json\n{}\n```", "Here you go: {} done.", "<think>hmm</think>{}",
                                      "<think>{}", "{}</think>", "[{}]", "{}{}"]), text_strategy).map(
        lambda pair: pair[0].replace("{}", pair[1]))


ANSWERS = st.one_of(st.text(max_size=200), st.text(st.sampled_from(list('{}[]()":,0123456789 xylabe<>/think-.')),
                                                   max_size=120),
                    _wrap(_json_values().map(lambda v: json.dumps(v))), _wrap(CLICK_LIKE))


@settings(FUZZ, max_examples=400)
@given(ANSWERS, st.one_of(st.none(), st.integers(1, 8)))
def test_parse_clicks_gives_clicks_or_the_documented_error(answer, max_clicks):
    from rs_helpers.refer.clicks import Click, ClickParseError, parse_clicks

    try:
        clicks = parse_clicks(answer, max_clicks=max_clicks)
    except ClickParseError as exc:
        assert str(exc)
        return
    assert isinstance(clicks, list), answer
    if not clicks:  # only the documented "no target" form may give no clicks
        from rs_helpers.refer.clicks import no_target_reason

        assert no_target_reason(answer), answer
    assert max_clicks is None or len(clicks) <= max_clicks
    for click in clicks:
        assert isinstance(click, Click)
        assert all(type(v) is int for v in (click.x, click.y, click.label)), click
        assert 0 <= click.x <= 1000 and 0 <= click.y <= 1000 and click.label in (0, 1), click


LINE_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 10 ** 20), st.floats(allow_nan=True),
                        st.text(max_size=12), st.lists(st.text(max_size=4), max_size=2),
                        st.sampled_from(["img.png", "missing.png", "referring", "reasoning", "samples", "jsonl",
                                         "rrsisd", "all", "test", GOOD_ANSWER,
                                         "dubai_tile1_part009_water_largest"]))
LINE_DICTS = st.dictionaries(st.sampled_from(["image", "text", "task", "answer", "clicks", "n_clicks", "id",
                                              "dataset", "root", "split"]),
                             st.one_of(LINE_VALUES, st.lists(st.dictionaries(st.sampled_from(["x", "y", "label"]),
                                                                             LINE_VALUES, max_size=3), max_size=3)),
                             max_size=10)
LINES = st.one_of(LINE_DICTS.map(lambda d: json.dumps(d).encode()), st.binary(max_size=60),
                  _json_values().map(lambda v: json.dumps(v).encode()),
                  st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n))


@settings(FUZZ, max_examples=120)
@given(lines=st.lists(LINES, max_size=4))
def test_jsonl_readers_give_records_or_the_documented_error(tmp_path_factory, lines):
    """The training-file reader (train-lora) and the jsonl dataset (eval refer / lora-data): a list of
    records or BadInputError naming the file, for any bytes."""
    from rs_helpers.evaluation.datasets import get_referring_dataset
    from rs_helpers.errors import BadInputError
    from rs_helpers.lora.train import TrainRecord, read_train_file

    tmp = tmp_path_factory.mktemp("jsonl", numbered=True)
    fz.png(tmp / "img.png")
    path = tmp / "lines.jsonl"
    path.write_bytes(b"\n".join(lines))
    try:
        records = read_train_file(path)
    except BadInputError as exc:
        assert str(exc)
    else:
        assert records and all(isinstance(r, TrainRecord) for r in records)
    try:
        ds = get_referring_dataset("jsonl", root=str(path))
    except BadInputError as exc:
        assert str(exc)
    else:
        assert list(ds.samples)


URL_PIECES = st.lists(st.sampled_from(list("abc123.:[]@/?#%-_ ") + ["::1", "\udcff", "\x00", "é"]), max_size=12)
URLS = st.one_of(st.text(max_size=40), st.text(ODD_CHARS, max_size=20),
                 st.tuples(st.sampled_from(["http://", "https://", "ftp://", "", "http:/", "HTTP://", "http://["]),
                           URL_PIECES.map("".join)).map("".join))
# a URL that carries the key as a password or in its query string, around odd pieces
SECRET_URLS = st.builds(
    lambda scheme, user, host, port, path, where: (
        f"{scheme}{user}:{SECRET}@{host}{port}{path}" if where == "password"
        else f"{scheme}{host}{port}{path}?api_key={SECRET}"),
    st.sampled_from(["http://", "https://", "ftp://", "HTTP://"]),
    URL_PIECES.map(lambda p: "".join(p).translate({ord(ch): None for ch in "/?#@"})),  # a user name
    st.sampled_from(["127.0.0.1", "[::1]", "[::1", "", "localhost", "h st", "\udcff"]),
    st.sampled_from(["", ":8000", ":99999", ":x", ":"]), URL_PIECES.map(lambda p: "/" + "".join(p).replace("?", "")),
    st.sampled_from(["password", "query"]))


@settings(FUZZ, max_examples=300)
@given(url=URLS)
def test_base_url_check_gives_the_url_or_the_documented_error(url):
    from rs_helpers.errors import BadInputError
    from rs_helpers.refer.vlm_openai import check_base_url

    try:
        assert check_base_url(url) == url
    except BadInputError as exc:
        assert str(exc).startswith("--base-url"), str(exc)


@settings(FUZZ, max_examples=300)
@given(url=SECRET_URLS)
@example(url=f"http://[:{SECRET}@[::1]/")  # a '[' in the user name: the parser's message quotes the netloc
def test_base_url_errors_never_show_a_password_or_query(url):
    from rs_helpers.errors import BadInputError
    from rs_helpers.refer.vlm_openai import check_base_url, redact_url

    try:
        check_base_url(url)
    except BadInputError as exc:
        assert SECRET not in str(exc), str(exc)
    else:
        assert SECRET not in redact_url(url), redact_url(url)


REPLY_BODIES = st.one_of(
    st.binary(max_size=80),
    _json_values().map(lambda v: json.dumps(v).encode()),
    st.builds(lambda content, usage, finish, message: json.dumps(
        {"choices": [{"index": 0, "finish_reason": finish, "message": message if message is not None
                      else {"role": "assistant", "content": content}}], "usage": usage}).encode(),
        st.one_of(st.text(max_size=30), st.none(), st.integers(), st.lists(
            st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", 5]),
                                   "text": st.one_of(st.text(max_size=10), st.integers(), st.none())}), max_size=3),
            st.sampled_from([f"key {SECRET}", GOOD_ANSWER])),
        st.one_of(st.none(), _json_values()),
        st.one_of(st.none(), st.sampled_from(["stop", "length"]), st.integers()),
        st.one_of(st.none(), _json_values())),
    st.sampled_from([f"error {SECRET}", "\\u0073" + SECRET[1:]]).map(
        lambda t: json.dumps({"error": {"message": t}}).encode().replace(b"\\\\u0073", b"\\u0073")),
)


@settings(FUZZ, max_examples=300)
@given(body=REPLY_BODIES)
def test_reply_decoding_gives_an_answer_or_the_documented_error(body):
    """Any reply body: (text, usage, finish_reason) with three token counts 0..1e9, or the
    documented ReplyShapeError; neither ever shows the API key."""
    from rs_helpers.refer.vlm_openai import ReplyShapeError, decode_reply

    try:
        text, usage, finish = decode_reply(body, secrets=(SECRET,))
    except ReplyShapeError as exc:
        assert SECRET not in str(exc), str(exc)
        return
    assert isinstance(text, str) and SECRET not in text, text
    assert set(usage) == {"prompt_tokens", "completion_tokens", "total_tokens"}, usage
    assert all(type(v) is int and 0 <= v <= 10 ** 9 for v in usage.values()), usage
    assert finish is None or isinstance(finish, str), finish


@settings(FUZZ, max_examples=200)
@given(entries=st.one_of(_json_values(), st.lists(st.fixed_dictionaries(
    {"text": st.one_of(st.text(max_size=8), st.integers()), "answer": st.one_of(st.text(max_size=8), st.none())},
    optional={"image_size": _json_values(), "image_mean_rgb": _json_values(), "usage": _json_values()}), max_size=3)))
def test_stored_answers_check_gives_entries_or_the_documented_error(entries):
    from rs_helpers.errors import BadInputError
    from rs_helpers.refer.vlm_replay import check_stored_answers

    try:
        checked = check_stored_answers(entries, "fuzz.json")
    except BadInputError as exc:
        assert "fuzz.json" in str(exc)
        return
    assert isinstance(checked, list) and all(isinstance(e, dict) and isinstance(e["answer"], str) for e in checked)


@settings(FUZZ, max_examples=200)
@given(text=st.one_of(st.none(), st.text(st.sampled_from(list("0123456789,-+ .e") + ["\udcff", "٣"]), max_size=12),
                      st.text(max_size=10)))
def test_bands_option_gives_band_numbers_or_the_documented_error(text):
    from rs_helpers.commands.options import parse_bands
    from rs_helpers.errors import BadInputError

    try:
        bands = parse_bands(text)
    except BadInputError as exc:
        assert "--bands" in str(exc)
        return
    assert bands is None or (isinstance(bands, tuple) and all(type(b) is int for b in bands)), bands
