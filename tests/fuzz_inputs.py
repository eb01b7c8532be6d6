"""Generators of odd inputs for tests/test_fuzz_cli.py: images, checkpoints, JSONL and stored-answer
files, notebooks and a misbehaving Chat Completions server. Everything is written into the test's
own folder at run time; nothing binary is committed.
"""
from __future__ import annotations

import io
import json
import socket
import struct
import time
import zlib
from loopback import LoopbackServer, QuietHandler, send_json
from pathlib import Path

import numpy as np

SECRET = "sk-FUZZSECRET123"
GOOD = '{"clicks": [{"x": 500, "y": 400, "label": 1}, {"x": 100, "y": 900, "label": 0}]}'


# --------------------------------------------------------------------------- images
def _rng(seed: int = 0):
    return np.random.default_rng(seed)


def noise_rgb(width: int = 64, height: int = 64, seed: int = 0) -> np.ndarray:
    """Random RGB pixels (so that compressed files are long and truncation cuts real data)."""
    return _rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png(path: Path, width: int = 64, height: int = 64, mode: str = "RGB", seed: int = 0) -> Path:
    from PIL import Image

    rgb = noise_rgb(width, height, seed)
    image = Image.fromarray(rgb)
    if mode == "L":
        image = image.convert("L")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def png_bytes(width: int = 64, height: int = 64) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(noise_rgb(width, height)).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(width: int = 64, height: int = 64) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(noise_rgb(width, height)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def geotiff(path: Path, data: np.ndarray, *, nodata=None, geo: bool = True, **profile) -> Path:
    """``data``: bands x H x W, any dtype rasterio writes."""
    import rasterio
    from rasterio.transform import from_origin

    count, height, width = data.shape
    options = dict(driver="GTiff", width=width, height=height, count=count, dtype=str(data.dtype))
    if geo:
        options.update(crs="EPSG:32616", transform=from_origin(500000, 3700000, 0.5, 0.5))
    if nodata is not None:
        options["nodata"] = nodata
    options.update(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **options) as dst:
        dst.write(data)
    return path


def tiff_bytes(tmp: Path) -> bytes:
    path = geotiff(tmp / ".tiff_source.tif", np.moveaxis(noise_rgb(), -1, 0))
    data = path.read_bytes()
    path.unlink()
    return data


def truncated(path: Path, data: bytes, offset: int) -> Path:
    path.write_bytes(data[:offset])
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png_header(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A handwritten PNG whose IHDR claims ``width`` x ``height`` RGB pixels, with a tiny IDAT:
    a decoder that trusts the header allocates 30 GB."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    return path


def sparse_tiff(path: Path, side: int = 100_000) -> Path:
    """A valid tiled GeoTIFF of ``side`` x ``side`` pixels with no tile written (a few hundred kB)."""
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", width=side, height=side, count=1, dtype="uint8",
                       tiled=True, blockxsize=512, blockysize=512, sparse_ok=True, compress="deflate",
                       crs="EPSG:32616", transform=from_origin(500000, 3700000, 0.5, 0.5)):
        pass
    return path


def complex_tiff(path: Path) -> Path:
    data = (_rng(1).normal(size=(1, 32, 32)) + 1j * _rng(2).normal(size=(1, 32, 32))).astype(np.complex64)
    return geotiff(path, data)


def uint16_tiff(path: Path) -> Path:
    return geotiff(path, _rng(3).integers(0, 4000, (3, 64, 64)).astype(np.uint16))


def one_band_png(path: Path) -> Path:
    return png(path, mode="L")


def four_band_tiff(path: Path) -> Path:
    return geotiff(path, _rng(4).integers(0, 256, (4, 64, 64)).astype(np.uint8))


def all_nodata_tiff(path: Path) -> Path:
    return geotiff(path, np.zeros((3, 64, 64), np.uint16), nodata=0)


def nan_tiff(path: Path, share: float = 0.5) -> Path:
    data = _rng(5).normal(size=(3, 64, 64)).astype(np.float32)
    data[:, : int(64 * share)] = np.nan
    return geotiff(path, data)


def inf_tiff(path: Path) -> Path:
    data = _rng(6).normal(size=(3, 64, 64)).astype(np.float32)
    data[:, ::7] = np.inf
    data[:, 3::7] = -np.inf
    return geotiff(path, data)


def mask_png(path: Path, width: int = 64, height: int = 64, empty: bool = False) -> Path:
    from PIL import Image

    mask = np.zeros((height, width), np.uint8)
    if not empty:
        mask[height // 4: height // 2, width // 4: width // 2] = 255
    Image.fromarray(mask).save(path)
    return path


# --------------------------------------------------------------------------- checkpoints
class Evil:
    """Unpickling this creates ``marker``: what a checkpoint from a stranger can do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def tiny_sam_checkpoint(path: Path) -> Path:
    import torch

    from rs_helpers.models.sam import build_tiny_sam

    torch.save(build_tiny_sam().state_dict(), path)
    return path


def evil_checkpoint(path: Path, marker: Path) -> Path:
    """A torch.save zip whose pickle calls ``open(marker, "w")`` when loaded without weights_only."""
    import torch

    torch.save({"image_encoder.pos_embed": Evil(marker)}, path)
    return path


def evil_plain_pickle(path: Path, marker: Path) -> Path:
    """The same as a legacy (non-zip) pickle file."""
    import pickle

    path.write_bytes(pickle.dumps({"state": Evil(marker)}))
    return path


def wrong_keys_checkpoint(path: Path) -> Path:
    import torch

    torch.save({"not.a.sam.weight": torch.zeros(3)}, path)
    return path


# --------------------------------------------------------------------------- JSONL lines
GOOD_ANSWER = '{"clicks": [{"x": 500, "y": 400, "label": 1}]}'

JSONL_KINDS = {
    "non_utf8": b'{"image": "a.png", "text": "x\xff\xfe"}\n\xff\xfe\xfa\n',
    "nested": b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "nested_object": b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"\n",
    "infinity": (b'{"image": "img.png", "text": "the building", "task": "referring", "answer": '
                 + json.dumps(GOOD_ANSWER).encode()
                 + b', "clicks": [{"x": Infinity, "y": -Infinity, "label": NaN}], "n_clicks": Infinity,'
                 b' "id": Infinity, "dataset": "samples", "root": null, "split": NaN}\n'),
    "wrong_types": (b'{"image": 5, "text": 7, "task": [], "answer": {"x": 1}, "clicks": "no", "n_clicks": "3",'
                    b' "id": {}, "dataset": 5, "root": 7, "split": []}\n'),
    "lists_for_strings": (b'{"image": ["img.png"], "text": ["the building"], "task": ["referring"],'
                          b' "answer": [' + json.dumps(GOOD_ANSWER).encode() + b'], "id": ["a"],'
                          b' "dataset": ["samples"], "root": ["x"], "split": ["all"]}\n'),
    "empty": b"",
    "blank_lines": b"\n   \n\t\n",
    "array_line": b"[1, 2, 3]\n",
    "huge_number": b"1e999\n",
    "bom_and_garbage": "\ufeff{\"image\": \"img.png\"\n".encode(),
}


# --------------------------------------------------------------------------- stored answers (replay)
REPLAY_KINDS = {
    "invalid_json": b'{"answers": [',
    "wrong_shape": b'{"answers": {"text": "x"}}',
    "list_top": b"[1, 2, 3]",
    "entry_types": b'{"answers": [{"text": 5, "answer": ["x"]}]}',
    "image_size_nan": b'{"answers": [{"text": "x", "answer": "y", "image_size": [NaN, 1e999]}]}',
    "non_utf8": b'{"answers": [{"text": "\xff\xfe", "answer": "y"}]}',
    "nested": b'{"answers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "empty": b"",
}


# --------------------------------------------------------------------------- notebooks (student)
def notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("# Exercise: set answer\nanswer = 42\n")
    cell.metadata["tags"] = ["solution"]
    nb.cells = [nbformat.v4.new_markdown_cell("# A notebook"), cell, nbformat.v4.new_code_cell("print(answer)")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


# --------------------------------------------------------------------------- a misbehaving server
def completion(content, usage=(11, 7, 18), message=None) -> dict:
    if isinstance(usage, tuple):
        usage = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": usage[2]}
    return {"id": "chatcmpl-fuzz", "object": "chat.completion", "created": 0, "model": "gpt-5",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": message if message is not None else {"role": "assistant", "content": content}}],
            "usage": usage}


def _error(message: str, kind: str = "server_error") -> dict:
    return {"error": {"message": message, "type": kind, "code": None}}


def _escaped_secret(body) -> bytes:
    return json.dumps(body).replace(SECRET, "\\u0073" + SECRET[1:]).encode()


# behaviour -> (status, body or None, special): body str/bytes sent raw, dict/list as JSON
BEHAVIOURS = {
    "good": (200, completion(GOOD), None),
    "500": (500, _error("internal error"), None),
    "503_html": (503, b"<html><body>Service Unavailable</body></html>", None),
    "429": (429, _error("rate limited", "requests"), None),
    "401": (401, _error("Incorrect API key provided", "invalid_request_error"), None),
    "401_echo": (401, _error(f"Incorrect API key provided: {SECRET}. You can find your key at ...",
                             "invalid_request_error"), None),
    "500_echo": (500, _error(f"boom, your header was Bearer {SECRET}"), None),
    "400_echo": (400, _error(f"bad request from key {SECRET}", "invalid_request_error"), None),
    "invalid_json": (200, b'{"choices": [ this is not json', None),
    "html": (200, b"<!doctype html><html><body>a captive portal</body></html>", None),
    "null_body": (200, b"null", None),
    "empty_body": (200, b"", None),
    "deep_json": (200, b"[" * 100_000 + b"]" * 100_000, None),
    "message_str": (200, completion(None, message="hello, I am a string"), None),
    "message_list": (200, completion(None, message=["a", "list"]), None),
    "content_number": (200, completion(12345), None),
    "content_parts_odd": (200, completion([{"type": "text", "text": 5}, 7]), None),
    "usage_strings": (200, completion(GOOD, usage={"prompt_tokens": "11", "completion_tokens": "seven",
                                                  "total_tokens": None}), None),
    "usage_huge": (200, completion(GOOD, usage={"prompt_tokens": 10 ** 40, "completion_tokens": -5,
                                               "total_tokens": 1e308}), None),
    "usage_list": (200, completion(GOOD, usage=[1, 2, 3]), None),
    "empty_choices": (200, {"id": "x", "object": "chat.completion", "choices": [], "usage": {}}, None),
    "choices_null": (200, {"choices": None}, None),
    "echo_secret_content": (200, completion(f"I see the key {SECRET} in my prompt; no clicks"), None),
    "no_clicks": (200, completion("Sorry, I cannot find that in the image."), None),
    "clicks_out_of_range": (200, completion('{"clicks": [{"x": 5000, "y": -3, "label": 1}]}'), None),
    "clicks_nan": (200, completion('{"clicks": [{"x": NaN, "y": Infinity, "label": 1}]}'), None),
    "many_clicks": (200, completion(json.dumps({"clicks": [{"x": i % 1001, "y": (7 * i) % 1001, "label": i % 2}
                                                           for i in range(20000)]})), None),
    "huge_body": (200, completion("x" * (40 * 1024 * 1024)), None),
    # the key with its first letter JSON-escaped: the raw bytes do not hold it, the decoded text does
    "echo_secret_escaped": (200, _escaped_secret(completion(f"I see the key {SECRET}; no clicks")), None),
    "401_echo_escaped": (401, _escaped_secret(_error(f"Incorrect API key provided: {SECRET}", "invalid_request_error")),
                         None),
    "500_echo_escaped": (500, _escaped_secret(_error(f"boom for {SECRET}")), None),
    "hang": (200, None, "hang"),
    "trickle": (200, None, "trickle"),
    "close": (200, None, "close"),
    "short_body": (200, None, "short"),
}


class FuzzServer(LoopbackServer):
    """A Chat Completions server on 127.0.0.1 in a thread, answering every request with one
    behaviour of :data:`BEHAVIOURS`. ``requests`` counts the requests received; ``headers`` keeps
    the last request's headers."""

    def __init__(self, behaviour: str = "good"):
        self.behaviour = behaviour
        self.requests = 0
        fake = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                fake.requests += 1
                status, body, special = BEHAVIOURS[fake.behaviour]
                try:
                    if special == "hang":
                        fake.stop.wait(120)
                        return
                    if special == "close":
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if special in ("trickle", "short"):
                        self.send_response(status)
                        self.send_header("content-type", "application/json")
                    if special == "trickle":
                        self.send_header("content-length", str(10 ** 6))
                        self.end_headers()
                        while not fake.stop.is_set():
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(0.2)
                        return
                    if special == "short":
                        self.send_header("content-length", "5000")
                        self.end_headers()
                        self.wfile.write(b'{"choices": [')
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    send_json(self, status, body if isinstance(body, bytes) else json.dumps(body).encode())
                except OSError:  # the client gave up
                    pass

        super().__init__(Handler)
