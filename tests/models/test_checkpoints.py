"""Checkpoint download: cache hits, resume with HTTP Range, size/sha256/md5 checks, verified stamps,
bad files moved aside, offline message."""
from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from rs_helpers.errors import WeightsUnavailableError
from rs_helpers.models import checkpoints as weights
from rs_helpers.models.checkpoints import (
    SAM_CHECKPOINTS,
    Checkpoint,
    check_file,
    fetch,
    host_reachable,
    is_verified,
)

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


def _full(base, **overrides):
    """A checkpoint with size and sha256, as the SAM registry declares them."""
    values = dict(size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest())
    values.update(overrides)
    return Checkpoint(f"{base}/weights/sam_full.pth", "000000", **values)  # the md5 prefix is not used


def test_checksum_mismatch_removes_file(server, tmp_path):
    ckpt = _ckpt(server, prefix="ffffff")
    with pytest.raises(WeightsUnavailableError, match="md5"):
        fetch(ckpt, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_sha256_mismatch_removes_download(server, tmp_path):
    with pytest.raises(WeightsUnavailableError, match="sha256") as info:
        fetch(_full(server, sha256="0" * 64), tmp_path, progress=False)
    assert "--profile tiny" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_size_mismatch_is_caught_before_hashing(server, tmp_path, monkeypatch):
    def no_hashing(*args, **kwargs):
        raise AssertionError("a file of the wrong size must be refused without reading it")

    monkeypatch.setattr(weights, "digest_of", no_hashing)
    with pytest.raises(WeightsUnavailableError, match=f"{len(PAYLOAD):,} bytes, not {len(PAYLOAD) + 1:,}"):
        fetch(_full(server, size=len(PAYLOAD) + 1), tmp_path, progress=False)


def test_verified_file_is_not_hashed_again_until_it_changes(server, tmp_path, monkeypatch):
    ckpt = _full(server)
    path = fetch(ckpt, tmp_path, progress=False)
    assert is_verified(path, ckpt) and (tmp_path / "sam_full.pth.verified").is_file()
    calls = []
    real = weights.digest_of
    monkeypatch.setattr(weights, "digest_of", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert fetch(ckpt, tmp_path, progress=False) == path and calls == []  # the stamp fits: no hashing
    data = bytearray(PAYLOAD)
    data[5] ^= 1  # same size, other content: the stamp no longer fits (mtime), the hash catches it
    path.write_bytes(bytes(data))
    assert not is_verified(path, ckpt)
    assert "sha256" in check_file(path, ckpt)


def test_corrupt_cached_file_is_moved_aside_and_fetched_again(server, tmp_path):
    ckpt = _full(server)
    (tmp_path / ckpt.filename).write_bytes(b"junk")
    assert fetch(ckpt, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert (tmp_path / (ckpt.filename + ".bad")).read_bytes() == b"junk"  # a hand-placed file is kept


def test_corrupt_cached_file_offline_says_what_happened(tmp_path):
    ckpt = Checkpoint("http://127.0.0.1:9/sam_full.pth", "000000", size=10, sha256="0" * 64)
    (tmp_path / ckpt.filename).write_bytes(b"junk")
    with pytest.raises(WeightsUnavailableError) as info:
        fetch(ckpt, tmp_path, progress=False, timeout=2)
    message = str(info.value)
    assert "not the right one" in message and "4 bytes, not 10" in message and ".bad" in message


def test_complete_partial_file_is_checked_not_downloaded(server, tmp_path):
    ckpt = _full(server)
    (tmp_path / (ckpt.filename + ".part")).write_bytes(PAYLOAD)
    assert fetch(ckpt, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert _RangeHandler.requests == []


def test_sam_registry_declares_size_and_sha256():
    for variant, ckpt in SAM_CHECKPOINTS.items():
        assert ckpt.size and len(ckpt.sha256) == 64 and ckpt.filename.endswith(f"_{ckpt.md5_prefix}.pth")
        assert variant in ckpt.filename


def test_doctor_reports_sam_weights_state(tmp_path):
    from rs_helpers.models.doctor import sam_weights_check

    ckpt = _full("http://127.0.0.1:9")
    path = tmp_path / ckpt.filename
    assert "missing" in sam_weights_check("vit_b", ckpt, path).value
    path.write_bytes(b"junk")
    wrong = sam_weights_check("vit_b", ckpt, path)
    assert not wrong.ok and "WRONG SIZE" in wrong.value
    path.write_bytes(PAYLOAD)
    assert "checked at first use" in sam_weights_check("vit_b", ckpt, path).value
    assert check_file(path, ckpt) is None
    assert "present, verified" in sam_weights_check("vit_b", ckpt, path).value


def test_offline_message_names_url_cache_and_tiny_profile(tmp_path):
    ckpt = Checkpoint("http://127.0.0.1:9/sam_vit_b_01ec64.pth", "01ec64")  # port 9: nothing listens
    with pytest.raises(WeightsUnavailableError) as info:
        fetch(ckpt, tmp_path, progress=False, timeout=2)
    message = str(info.value)
    assert ckpt.url in message and str(tmp_path / ckpt.filename) in message and "--profile tiny" in message


def test_host_reachable_false_for_closed_port_host():
    assert host_reachable("http://nonexistent.invalid/x", timeout=1) is False


def test_read_only_cache_still_loads(tmp_path, monkeypatch):
    """A shared cache the user cannot write to: the file is checked, used, and not stamped."""
    from pathlib import Path

    ckpt = _full("http://127.0.0.1:9")
    (tmp_path / ckpt.filename).write_bytes(PAYLOAD)
    real_write = Path.write_text

    def read_only(self, *args, **kwargs):
        if self.parent == tmp_path:
            raise PermissionError(13, "Permission denied", str(self))
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", read_only)
    assert fetch(ckpt, tmp_path, progress=False) == tmp_path / ckpt.filename
    assert fetch(ckpt, tmp_path, progress=False) == tmp_path / ckpt.filename  # checked again, still fine
    assert not (tmp_path / (ckpt.filename + ".verified")).exists()
