"""Files a command writes: checked before any work, and written whole or not at all.

Two rules, the ones rasterio's ``rio`` tools follow:

* :func:`check_outputs` runs before any model is loaded. An output may not be an input, two
  outputs of one run may not share a path, an existing output is replaced only with
  ``--overwrite``, and its folder must exist or be creatable and be writable. So a run never
  fails at the end, after the expensive work, because of where it was told to write.
* :func:`atomic_path` gives a unique temporary name in the target's folder; the file is renamed
  into place only when it is complete. An interrupted or failed run (an exception, Ctrl-C,
  SIGTERM or SIGHUP, which the command line turns into exceptions) removes its temporary file
  and leaves any earlier output untouched.
"""
from __future__ import annotations

import codecs
import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from rs_helpers.errors import BadInputError

TEMP_MARK = ".part"  # temporary names: .<name>.<random>.part<suffix>, hidden, in the target's folder


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _check_name(option: str, path: Path) -> None:
    text = str(path)
    if not text.strip():
        raise BadInputError(f"{option}: give a file name")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInputError(f"{option} {text!r}: the name holds bytes that are not UTF-8; choose another name") from None
    if "\0" in text:
        raise BadInputError(f"{option}: the name holds a NUL byte")
    limit = _name_max(path.parent)
    for part in path.parts:
        if len(os.fsencode(part)) > limit:
            raise BadInputError(f"{option} {text[:60]}...: a file or folder name is longer than {limit} bytes; "
                                "choose a shorter one")


def _name_max(folder: Path) -> int:
    """The longest file name the file system takes (255 on most), for the nearest existing folder."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return int(os.pathconf(folder if str(folder) else ".", "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def _check_folder(option: str, path: Path, create: bool) -> None:
    """The folder that will hold ``path`` exists (or is created) and is writable."""
    parent = path.parent if str(path.parent) else Path(".")
    ancestor = parent
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise BadInputError(f"{option} {path}: {ancestor} is a file, not a folder")
    if create:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInputError(f"{option} {path}: cannot create the folder {parent} ({exc.strerror or exc})") from None
    probe_dir = parent if parent.exists() else ancestor
    if not os.access(probe_dir, os.W_OK | os.X_OK):
        raise BadInputError(f"{option} {path}: the folder {probe_dir} is not writable")
    if create:  # os.access can say yes on read-only mounts and /proc: try for real
        try:
            fd, probe = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=TEMP_MARK, dir=parent)
        except OSError as exc:
            raise BadInputError(f"{option} {path}: cannot write in {parent} ({exc.strerror or exc})") from None
        os.close(fd)
        os.unlink(probe)


def check_outputs(outputs: Mapping[str, str | Path | None], inputs: Iterable[str | Path | None] = (),
                  overwrite: bool = False, folders: Iterable[str] = (), create: bool = True) -> dict[str, Path]:
    """Check every output of one run before any work; return them as Paths (None ones dropped).

    ``outputs``: option name (as the user typed it, e.g. ``"--out"``) -> path. ``inputs``: paths
    the run reads, never to be written. ``folders``: the option names whose output is a folder
    (an adapter, a notebook copy folder): an existing non-empty folder needs ``overwrite``.
    ``create``: make missing parent folders now (and prove the folder is writable)."""
    try:
        return _check_outputs(outputs, inputs, overwrite, set(folders), create)
    except OSError as exc:  # whatever the file system says about a path is the user's to fix
        raise BadInputError(f"cannot write there: {exc.strerror or exc} ({exc.filename or ''})") from None


def _check_outputs(outputs, inputs, overwrite: bool, folders: set, create: bool) -> dict[str, Path]:
    inputs = list(inputs)
    checked: dict[str, Path] = {}
    for option, value in outputs.items():
        if value is None:
            continue
        path = Path(value)
        _check_name(option, path)
        for other, seen in checked.items():
            if _same_file(path, seen):
                raise BadInputError(f"{option} and {other} name the same file ({path}): give each its own path")
        for source in inputs:
            if source is not None and str(source) and _same_file(path, Path(source)):
                raise BadInputError(f"{option} {path} is an input of this run; write the result elsewhere")
        if option in folders:
            if path.exists() and not path.is_dir():
                raise BadInputError(f"{option} {path} is a file; give a folder")
            if path.is_dir() and any(path.iterdir()) and not overwrite:
                raise BadInputError(f"{option} {path} exists and is not empty; add --overwrite to replace what is in it")
            _check_folder(option, path / "x", create)
        else:
            if path.is_dir():
                raise BadInputError(f"{option} {path} is a folder; give a file name")
            if path.exists() and not overwrite:
                raise BadInputError(f"{option} {path} exists; add --overwrite to replace it")
            if path.exists() and not os.access(path, os.W_OK) and not os.access(path.parent, os.W_OK):
                raise BadInputError(f"{option} {path} cannot be replaced (no write permission)")
            _check_folder(option, path, create)
        checked[option] = path
    return checked


def temp_name(target: str | Path) -> Path:
    """A new, unique, empty file beside ``target`` with the same suffix (drivers choose by suffix)."""
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem[:60]}.", suffix=TEMP_MARK + target.suffix,
                                dir=target.parent if str(target.parent) else ".")
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(target: str | Path, mode: int | None = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` if the block completes.

    On any exception (``KeyboardInterrupt`` and signals included) the temporary file is removed
    and ``target``, if it existed, is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(target)
    try:
        yield tmp
        if mode is not None:
            with contextlib.suppress(OSError):
                os.chmod(tmp, mode & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` whole or not at all."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return path


def write_json_atomic(path: str | Path, value, indent: int | None = 2, **options) -> Path:
    """``json.dumps(value)`` written whole or not at all."""
    return write_text_atomic(path, json.dumps(value, indent=indent, **options) + "\n")


@contextlib.contextmanager
def open_atomic(path: str | Path, mode: str = "w", **options):
    """``open()`` on a temporary name, renamed onto ``path`` when the block completes."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **options) as fh:
            yield fh


def unique_aside(path: str | Path, tag: str = ".bad") -> Path:
    """A name beside ``path`` that does not exist yet: ``NAME.bad``, then ``NAME.bad.1``, ..."""
    path = Path(path)
    candidate = path.with_name(path.name + tag)
    n = 1
    while candidate.exists() or candidate.is_symlink():
        candidate = path.with_name(f"{path.name}{tag}.{n}")
        n += 1
    return candidate


# --------------------------------------------------------------------------- reading data files defensively
MAX_JSON_DEPTH = 64  # deeper nesting in a line of a data file is refused (no record needs it)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _too_deep(value, limit: int) -> bool:
    """Whether ``value`` nests lists / dicts more than ``limit`` deep (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def parse_json(text: str, where: str, max_depth: int | None = None):
    """``json.loads`` for data files: refuses ``NaN`` / ``Infinity`` and numbers beyond a float
    (Python's json accepts them; nothing downstream can use them), nesting that would exhaust
    the stack, and more than ``max_depth`` levels. Every failure is a :class:`BadInputError`
    that starts with ``where`` (the file, and the line for JSON lines)."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise BadInputError(f"{where}: not JSON (nested too deeply to read)") from None
    except ValueError as exc:  # json.JSONDecodeError, non-finite numbers, ints of > 4300 digits
        raise BadInputError(f"{where}: not JSON ({str(exc)[:200]})") from None
    if max_depth is not None and _too_deep(value, max_depth):
        raise BadInputError(f"{where}: not JSON this reader accepts (nested more than {max_depth} levels)")
    return value


def read_bytes(path: str | Path, what: str = "file", max_bytes: int | None = None) -> bytes:
    """The bytes of ``path``; a missing, unreadable or folder path, a device or pipe (which could
    be read forever), or a file over ``max_bytes`` is a :class:`BadInputError` naming it."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir() and not path.is_file():
            raise BadInputError(f"{path} is not a regular file; give a {what}")
        size = path.stat().st_size if max_bytes is not None and path.is_file() else 0
        if max_bytes is not None and size > max_bytes:
            raise BadInputError(f"{path}: {size} bytes is too large for a {what} (at most {max_bytes})")
        return path.read_bytes()
    except BadInputError:
        raise
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise BadInputError(f"{path} is a folder, not a {what}") from None
    except (OSError, ValueError) as exc:  # permissions, a NUL in the name, ...
        raise BadInputError(f"{path}: cannot read this {what} ({getattr(exc, 'strerror', None) or exc})") from None


def raw_lines(data: bytes):
    """``(line number, bytes)`` of a file's contents: a UTF-8 BOM is dropped, lines end at
    ``\n`` or ``\r\n`` only (JSON strings may hold U+2028, which ``str.splitlines`` splits at)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    for number, raw in enumerate(data.split(b"\n"), start=1):
        yield number, (raw[:-1] if raw.endswith(b"\r") else raw)


def not_utf8(raw: bytes) -> str | None:
    """Why ``raw`` is not UTF-8 text (the byte and its column), or None when it is."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
    return None


def text_lines(path: str | Path, what: str = "file", max_bytes: int | None = None):
    """``(line number, text)`` for every line of a UTF-8 text file (see :func:`raw_lines`).
    A line that is not UTF-8 is a :class:`BadInputError` naming the file, the line and the byte."""
    for number, raw in raw_lines(read_bytes(path, what, max_bytes)):
        problem = not_utf8(raw)
        if problem:
            raise BadInputError(f"{path}: line {number}: {problem}")
        yield number, raw.decode("utf-8")


def read_text_file(path: str | Path, what: str = "file", max_bytes: int | None = None) -> str:
    """The whole of a UTF-8 text file (see :func:`text_lines` for the errors)."""
    return "\n".join(text for _, text in text_lines(path, what, max_bytes))


MAX_JSON_BYTES = 64 * 1024 * 1024  # a JSON data file larger than this is not one of ours


def read_json_file(path: str | Path, what: str = "JSON file", max_bytes: int = MAX_JSON_BYTES):
    """A whole JSON file (at most ``max_bytes``), read as :func:`parse_json` reads (``what``
    names it in errors)."""
    return parse_json(read_text_file(path, what, max_bytes), str(path))
