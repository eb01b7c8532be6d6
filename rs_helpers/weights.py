"""Checkpoint files: where they come from, where they are cached, how they are checked.

SAM checkpoints are plain URLs whose file-name suffix is the start of the file's md5
(``sam_vit_b_01ec64.pth``). Downloads go to one cache folder (``$RS_HELPERS_CACHE``, default
under the user's cache dir), resume after an interruption, show a progress bar and are
verified before use. Offline, the error names the URL and where to put the file by hand.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import WeightsUnavailableError

CACHE_ENV = "RS_HELPERS_CACHE"


@dataclass(frozen=True)
class Checkpoint:
    """A downloadable weights file: its URL and the md5 prefix its name carries."""

    url: str
    md5_prefix: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


SAM_CHECKPOINTS = {
    "vit_b": Checkpoint("https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth", "01ec64"),
    "vit_l": Checkpoint("https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth", "0b3195"),
    "vit_h": Checkpoint("https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth", "4b8939"),
}


def cache_dir() -> Path:
    """The folder that holds downloaded checkpoints (created on demand)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rs_helpers"))


def md5_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def offline_message(what: str, url: str, target: Path, reason: str = "", cache_env: str = CACHE_ENV) -> str:
    """One message that says what is missing, where it comes from and the ways around it."""
    why = f" ({reason})" if reason else ""
    return (
        f"cannot get {what}{why}. Download it from {url} and place it at {target}, "
        f"or set {cache_env} to a folder that holds it; "
        "or run offline with tiny random models: --profile tiny (RS_HELPERS_PROFILE=tiny)."
    )


def host_reachable(url_or_host: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host (port 443) opens: a quick offline test that
    spares users the long retry loops of hub clients."""
    import socket
    from urllib.parse import urlparse

    host = urlparse(url_or_host).hostname or url_or_host
    if os.environ.get("HF_HUB_OFFLINE") == "1" and "huggingface" in host:
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def fetch(checkpoint: Checkpoint, folder: Path | None = None, progress: bool = True,
          timeout: float = 30.0) -> Path:
    """Return the local path of ``checkpoint``, downloading (and resuming) it if needed.

    The file is written to ``<name>.part`` first and renamed only once its md5 matches.
    """
    folder = Path(folder) if folder is not None else cache_dir()
    target = folder / checkpoint.filename
    if target.exists():
        if md5_of(target).startswith(checkpoint.md5_prefix):
            return target
        target.unlink()  # corrupt or wrong file: fetch again
    folder.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        _download(checkpoint.url, part, progress=progress, timeout=timeout)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise WeightsUnavailableError(
            offline_message(checkpoint.filename, checkpoint.url, target, reason=str(exc)[:200])
        ) from None
    got = md5_of(part)
    if not got.startswith(checkpoint.md5_prefix):
        part.unlink()
        raise WeightsUnavailableError(
            f"downloaded {checkpoint.filename} but its md5 {got[:12]} does not start with "
            f"{checkpoint.md5_prefix}; the file was removed. "
            + offline_message(checkpoint.filename, checkpoint.url, target)
        )
    part.replace(target)
    return target


def _download(url: str, part: Path, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``part``, continuing from its current size with an HTTP Range."""
    from tqdm.auto import tqdm

    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if start and response.status != 206:  # server ignored the range: start over
            start = 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length else None
        mode = "ab" if start else "wb"
        with open(part, mode) as fh, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), disable=not progress,
        ) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                fh.write(block)
                bar.update(len(block))
