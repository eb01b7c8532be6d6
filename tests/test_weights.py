"""Checkpoint download: cache hits, resume with HTTP Range, md5 check, offline message."""
from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from rs_helpers.errors import WeightsUnavailableError
from rs_helpers.weights import Checkpoint, fetch, host_reachable

PAYLOAD = bytes(range(256)) * 400  # 100 kB


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = PAYLOAD
    requests: list[str] = []

    def do_GET(self):  # noqa: N802
        rng = self.headers.get("Range")
        type(self).requests.append(rng or "")
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = self.payload[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _RangeHandler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _ckpt(base, prefix=None):
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    return Checkpoint(f"{base}/weights/sam_test_{md5[:6]}.pth", prefix or md5[:6])


def test_download_then_cache_hit(server, tmp_path):
    ckpt = _ckpt(server)
    path = fetch(ckpt, tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD and path.name == ckpt.filename
    assert fetch(ckpt, tmp_path, progress=False) == path
    assert len(_RangeHandler.requests) == 1  # second call never touched the network


def test_resume_from_partial_file(server, tmp_path):
    ckpt = _ckpt(server)
    (tmp_path / (ckpt.filename + ".part")).write_bytes(PAYLOAD[:30000])
    path = fetch(ckpt, tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert _RangeHandler.requests == ["bytes=30000-"]


def test_checksum_mismatch_removes_file(server, tmp_path):
    ckpt = _ckpt(server, prefix="ffffff")
    with pytest.raises(WeightsUnavailableError, match="md5"):
        fetch(ckpt, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_cached_file_is_fetched_again(server, tmp_path):
    ckpt = _ckpt(server)
    (tmp_path / ckpt.filename).write_bytes(b"junk")
    assert fetch(ckpt, tmp_path, progress=False).read_bytes() == PAYLOAD


def test_offline_message_names_url_cache_and_tiny_profile(tmp_path):
    ckpt = Checkpoint("http://127.0.0.1:9/sam_vit_b_01ec64.pth", "01ec64")  # port 9: nothing listens
    with pytest.raises(WeightsUnavailableError) as info:
        fetch(ckpt, tmp_path, progress=False, timeout=2)
    message = str(info.value)
    assert ckpt.url in message and str(tmp_path / ckpt.filename) in message and "--profile tiny" in message


def test_host_reachable_false_for_closed_port_host():
    assert host_reachable("http://nonexistent.invalid/x", timeout=1) is False
