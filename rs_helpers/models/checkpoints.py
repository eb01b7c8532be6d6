"""Checkpoint files: where they come from, where they are cached, how they are checked.

SAM checkpoints are plain URLs whose file-name suffix is the start of the file's md5
(``sam_vit_b_01ec64.pth``); the registry below also holds each file's size and full sha256.
Downloads go to one cache folder (``$RS_HELPERS_CACHE``, default under the user's cache dir),
resume after an interruption, show a progress bar and are verified before first use: the size
at once, then the sha256. A verified file gets a ``<name>.verified`` stamp (size, mtime, digest)
so that later loads skip re-hashing gigabytes; changing the file invalidates the stamp. A file
that fails the check is moved aside to ``<name>.bad`` (``<name>.bad.1``, ... when that exists:
a bad file is never silently deleted or overwritten, it may have been placed by hand) and
fetched again. Offline, the error names the URL and where to put the file. A file published
inside a git repository (SegEarth-OV's SimFeatUp weights) is checked by its git blob id instead:
the sha1 of ``blob <size>\\0`` and its bytes, the id that the repository itself publishes.

A download streams into a unique temporary name beside the target (two processes never write
one file) and is renamed onto the target only once it passes the check. An interrupted
download is kept as ``<name>.part``; the next fetch claims it (an atomic rename, so only one
process resumes it) and continues with an HTTP Range request.

A cache folder that cannot be used (``$RS_HELPERS_CACHE`` names a file, or a folder that cannot
be created or written) is a :class:`BadInputError` naming the variable, raised only when a file
must be written: a read-only cache that already holds verified files still works.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.files import temp_name, unique_aside

CACHE_ENV = "RS_HELPERS_CACHE"


@dataclass(frozen=True)
class Checkpoint:
    """A downloadable weights file: its URL, the md5 prefix its name carries ("" when it carries
    none) and, where known, its size in bytes and full sha256 or git blob id (``git_sha1``), each
    checked instead of the md5 prefix."""

    url: str
    md5_prefix: str
    size: int | None = None
    sha256: str | None = None
    git_sha1: str | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
SAM_CHECKPOINTS = {
    "vit_b": Checkpoint(_SAM_URL + "sam_vit_b_01ec64.pth", "01ec64", 375_042_383,
                        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"),
    "vit_l": Checkpoint(_SAM_URL + "sam_vit_l_0b3195.pth", "0b3195", 1_249_524_607,
                        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622"),
    "vit_h": Checkpoint(_SAM_URL + "sam_vit_h_4b8939.pth", "4b8939", 2_564_550_879,
                        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e"),
}

# SimFeatUp (SegEarth-OV's upsampler): the file in the SegEarth-OV repository, at the commit that
# added it; its git blob id is the published checksum (no sha256 or size is published).
_SEGEARTH_COMMIT = "6778e69a183d00527733dafa523296a9968b4a12"
SIMFEATUP_CHECKPOINT = Checkpoint(
    f"https://raw.githubusercontent.com/likyoo/SegEarth-OV/{_SEGEARTH_COMMIT}/simfeatup_dev/weights/"
    "xclip_jbu_one_million_aid.ckpt", "", git_sha1="d40f00838331331faa04a926ea5991f5203f91a8")


def cache_dir() -> Path:
    """The folder that holds downloaded checkpoints (created on demand)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rs_helpers"))


def digest_of(path: Path, algorithm: str = "sha256", progress: bool = False, chunk: int = 1 << 22) -> str:
    """Hex digest of a file, read in chunks (with a byte progress bar for large files)."""
    from tqdm.auto import tqdm

    digest = hashlib.new(algorithm)
    size = path.stat().st_size
    with open(path, "rb") as fh, tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                                      desc=f"checking {path.name}", leave=False,
                                      disable=not progress or size < 1 << 28) as bar:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def md5_of(path: Path) -> str:
    return digest_of(path, "md5")


def git_blob_sha1(path: Path, chunk: int = 1 << 22) -> str:
    """The git blob id of a file: sha1 of ``blob <size>\\0`` followed by its bytes."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp_text(path: Path, checkpoint: Checkpoint) -> str:
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns} {checkpoint.sha256 or checkpoint.git_sha1 or checkpoint.md5_prefix}\n"


def is_verified(path: Path, checkpoint: Checkpoint) -> bool:
    """Whether ``path`` carries a stamp of an earlier successful check that still fits the file."""
    stamp = _stamp_path(path)
    try:
        return path.is_file() and stamp.read_text() == _stamp_text(path, checkpoint)
    except (OSError, ValueError):  # no stamp, or one that is not text: check the file itself
        return False


def check_file(path: Path, checkpoint: Checkpoint, progress: bool = False) -> str | None:
    """None if ``path`` is the checkpoint's file (size, then sha256, git blob id or md5 prefix), else why not.
    A success is stamped so that the next check is instant."""
    if is_verified(path, checkpoint):
        return None
    size = path.stat().st_size
    if checkpoint.size is not None and size != checkpoint.size:
        return f"it is {size:,} bytes, not {checkpoint.size:,} (an interrupted or a different download)"
    if checkpoint.sha256:
        got = digest_of(path, "sha256", progress)
        if got != checkpoint.sha256:
            return f"its sha256 {got[:16]}... is not {checkpoint.sha256[:16]}..."
    elif checkpoint.git_sha1:
        got = git_blob_sha1(path)
        if got != checkpoint.git_sha1:
            return f"its git blob id {got[:12]} is not {checkpoint.git_sha1[:12]}"
    elif checkpoint.md5_prefix:
        got = md5_of(path)
        if not got.startswith(checkpoint.md5_prefix):
            return f"its md5 {got[:12]} does not start with {checkpoint.md5_prefix}"
    try:
        _stamp_path(path).write_text(_stamp_text(path, checkpoint))
    except OSError:  # a read-only shared cache: check again next time
        pass
    return None


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


def check_cache_folder(folder: Path) -> Path:
    """``folder`` exists (created if need be) and is a writable folder, else a
    :class:`BadInputError` that names ``$RS_HELPERS_CACHE`` when the folder comes from it."""
    env = os.environ.get(CACHE_ENV)
    named = f"{CACHE_ENV}={env}" if env and Path(env).expanduser() in (folder, *folder.parents) else str(folder)
    fix = f"set {CACHE_ENV} to a folder you can write to" if env else f"or set {CACHE_ENV} to a writable folder"
    ancestor = folder
    while not ancestor.exists() and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise BadInputError(f"the checkpoint cache {named}: {ancestor} is a file, not a folder; {fix}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"the checkpoint cache {named} cannot be created ({exc.strerror or exc}); {fix}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInputError(f"the checkpoint cache {named} is not writable; {fix}")
    try:  # os.access says yes on read-only mounts (and to root): try for real
        probe = temp_name(folder / "probe")
    except OSError as exc:
        raise BadInputError(f"the checkpoint cache {named} is not writable ({exc.strerror or exc}); {fix}") from None
    probe.unlink(missing_ok=True)
    return folder


def fetch(checkpoint: Checkpoint, folder: Path | None = None, progress: bool = True,
          timeout: float = 30.0) -> Path:
    """Return the local path of ``checkpoint``, downloading (and resuming) it if needed.

    The download goes to a unique temporary name (resuming ``<name>.part``, left by an earlier
    interrupted run) and is renamed onto the target only once it passes :func:`check_file`;
    interrupted again, it is kept as ``<name>.part``. A cached file that fails the check is
    moved to a new ``<name>.bad`` name (see :func:`rs_helpers.files.unique_aside`)."""
    folder = Path(folder) if folder is not None else cache_dir()
    target = folder / checkpoint.filename
    moved = ""
    if target.is_dir():
        raise BadInputError(f"{target} is a folder; the checkpoint file belongs there: move the folder away")
    if target.is_file():
        try:
            problem = check_file(target, checkpoint, progress)
        except OSError as exc:
            raise WeightsUnavailableError(f"the checkpoint {target} cannot be read ({exc.strerror or exc}); "
                                          f"fix its permissions or remove it to download it again") from None
        if problem is None:
            return target
        check_cache_folder(folder)
        bad = unique_aside(target, ".bad")
        try:
            target.replace(bad)
        except OSError as exc:
            raise WeightsUnavailableError(
                f"the file at {target} is not the right one ({problem}) and cannot be moved aside "
                f"({exc.strerror or exc}); replace it with the file from {checkpoint.url}") from None
        _stamp_path(target).unlink(missing_ok=True)
        moved = f"The file at {target} was not the right one ({problem}); it was moved to {bad}. "
    check_cache_folder(folder)
    part = target.with_name(target.name + ".part")
    tmp = temp_name(target)
    try:
        os.replace(part, tmp)  # claim an interrupted download: only one process gets it
    except FileNotFoundError:
        pass
    try:
        if checkpoint.size is not None and tmp.stat().st_size > checkpoint.size:
            tmp.write_bytes(b"")  # longer than the file: cannot be a prefix of it
        try:
            if checkpoint.size is None or tmp.stat().st_size < checkpoint.size:
                _download(checkpoint.url, tmp, progress=progress, timeout=timeout)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise WeightsUnavailableError(
                moved + offline_message(checkpoint.filename, checkpoint.url, target, reason=str(exc)[:200])
            ) from None
        problem = check_file(tmp, checkpoint, progress)
        if problem is not None:
            tmp.unlink()
            _stamp_path(tmp).unlink(missing_ok=True)
            raise WeightsUnavailableError(
                f"downloaded {checkpoint.filename} but {problem}; the download was removed. "
                + offline_message(checkpoint.filename, checkpoint.url, target)
            )
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o644 & ~mask)  # a temporary file is private; the checkpoint is not
        os.replace(tmp, target)
        if _stamp_path(tmp).exists():  # rename keeps size and mtime: the stamp still fits
            os.replace(_stamp_path(tmp), _stamp_path(target))
    except BaseException:
        _keep_partial(tmp, part)
        raise
    return target


def _keep_partial(tmp: Path, part: Path) -> None:
    """After a failed or interrupted download: keep what arrived as ``<name>.part`` (to resume)."""
    try:
        if tmp.exists() and tmp.stat().st_size > 0:
            os.replace(tmp, part)
        else:
            tmp.unlink(missing_ok=True)
        _stamp_path(tmp).unlink(missing_ok=True)
    except OSError:
        pass


def _download(url: str, part: Path, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``part``, continuing from its current size with an HTTP Range
    (an empty file starts from the beginning)."""
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
            desc=url.rsplit("/", 1)[-1], disable=not progress,
        ) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                fh.write(block)
                bar.update(len(block))


def first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:limit] if text else type(exc).__name__)


def load_weights_file(path: str | Path, what: str, fix: str, tensors_only: bool = True,
                      mmap: bool = False) -> dict:
    """A state dict from a torch checkpoint, loaded with ``weights_only=True``: tensors and plain
    values only, so a pickle that would run code is refused, never run. Every failure (an empty,
    truncated or text file, a pickle of other objects, not a dict [of tensors, with
    ``tensors_only``]) is a :class:`WeightsUnavailableError` naming ``path`` and ``fix`` (what to
    do). ``mmap``: map the file instead of reading it (a check that costs no memory)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise WeightsUnavailableError(f"{what} checkpoint {path} cannot be read ({exc.strerror or exc}); "
                                      f"{fix}") from None
    if size == 0:
        raise WeightsUnavailableError(f"{what} checkpoint {path} is empty (0 bytes); {fix}")
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as exc:
            if not (mmap and "mmap" in str(exc)):
                raise
            state = torch.load(path, map_location="cpu", weights_only=True)  # an old (non-zip) file
    except Exception as exc:  # noqa: BLE001 - EOFError, UnpicklingError, RuntimeError, zip errors, ...
        raise WeightsUnavailableError(
            f"{what} checkpoint {path} cannot be loaded ({type(exc).__name__}: {first_line(exc, 160)}); {fix}"
        ) from None
    usable = isinstance(state, dict) and bool(state)
    if usable and tensors_only:
        usable = all(isinstance(v, torch.Tensor) for v in state.values())
    if not usable:
        raise WeightsUnavailableError(f"{what} checkpoint {path} does not hold a state dict of tensors "
                                      f"(it holds {type(state).__name__}); {fix}")
    return state
