"""A LoRA data file (``rs-seg lora-data``, e.g. its held-out lines) as a referring dataset.

Every line written by ``rs-seg lora-data`` says where its sample came from: ``dataset`` (registry
name), ``root`` (absolute, null for the shipped samples), ``split`` and ``id``. This loader opens
each source dataset once and returns the source records (text, image and ground-truth mask) of
the lines, in file order, so a held-out split can be scored after training::

    rs-seg eval refer --dataset jsonl --root heldout.jsonl --vlm qwen:Qwen/Qwen3-VL-2B-Instruct --adapter adapter/

A custom split has no published numbers: ``reported`` is empty.

Lines are read defensively (:func:`json_lines`): a line that is not UTF-8, not JSON, holds
``NaN`` / ``Infinity``, nests absurdly deep or has a field of the wrong type is a
:class:`BadInputError` naming the file and the line. A line may name another ``jsonl`` file as
its source (a held-out split of a held-out split); files that refer to each other in a loop
are refused instead of being opened forever.
"""
from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Callable, Iterator

from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.datasets.base import ReferringDataset
from rs_helpers.files import MAX_JSON_DEPTH, not_utf8, parse_json, raw_lines, read_bytes

HINT = "write the file with rs-seg lora-data (each line needs dataset, root, split and id)"
MAX_NESTING = 8  # jsonl files whose lines name other jsonl files, one inside the other
_OPENING: contextvars.ContextVar[tuple] = contextvars.ContextVar("rs_helpers_jsonl_opening", default=())


def json_lines(path: str | Path, what: str = "JSON lines file",
               on_error: Callable[[int, str], None] | None = None) -> Iterator[tuple[int, object]]:
    """``(line number, value)`` for every non-blank line of a JSON lines file, read defensively
    (UTF-8 checked line by line, then :func:`rs_helpers.evaluation.datasets.base.parse_json`).

    A bad line raises :class:`BadInputError` ``"FILE: line N: why"``; with ``on_error(number,
    why)`` it is reported there instead and reading goes on (to list every problem at once).
    A file that cannot be read at all always raises."""
    path = Path(path)
    for number, raw in raw_lines(read_bytes(path, what)):
        why = not_utf8(raw)
        if why is None:
            text = raw.decode("utf-8")
            if not text.strip():
                continue
            try:
                yield number, parse_json(text, f"{path}: line {number}", max_depth=MAX_JSON_DEPTH)
                continue
            except BadInputError as exc:
                why = str(exc).split(f"line {number}: ", 1)[-1]
        if on_error is None:
            raise BadInputError(f"{path}: line {number}: {why}")
        on_error(number, why)


def _text_field(line: dict, key: str, where: str, optional: bool) -> str | None:
    value = line.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        wanted = "a string or null" if optional else "a non-empty string"
        raise BadInputError(f"{where}: \"{key}\" must be {wanted}, got {str(value)[:80]}; {HINT}")
    return str(value)


class JsonlLines(ReferringDataset):
    name = "jsonl"
    title = "LoRA data file"
    task = "mixed"
    splits = ("all",)
    default_split = "all"
    layout = """
FILE.jsonl                         (from rs-seg lora-data, e.g. its --holdout-out file)
  {"id": "...", "dataset": "rrsisd", "root": "/abs/RRSIS-D", "split": "train", "text": ..., ...}
"""
    reported: dict = {}

    def __init__(self, root: str | Path | None = None, split: str | None = None):
        self.split = self._check_split(split)
        self.root = self._resolve(root)
        self.lines: list[dict] = []
        self.records = self.find(self.root)
        sources = sorted({f"{line['dataset']} {line['split']}" for line in self.lines})
        self.title = f"{self.root.name} ({', '.join(sources)})"

    def _resolve(self, root) -> Path:
        if root is None:
            raise BadInputError("the jsonl dataset needs its file: --root FILE.jsonl (written by rs-seg lora-data)")
        try:
            path = Path(root).expanduser()
            if not path.is_file():
                raise BadInputError(f"{path}: no such file (the jsonl dataset reads a file written by "
                                    "rs-seg lora-data)")
            return path.resolve()
        except (OSError, ValueError) as exc:  # a NUL, a name too long, an unencodable name
            if isinstance(exc, BadInputError):
                raise
            raise BadInputError(f"{root!r}: not a usable file name for the jsonl dataset ({exc})") from None

    def find(self, root: Path) -> list:
        chain = _OPENING.get()
        if len(chain) >= MAX_NESTING:
            raise BadInputError(f"{root}: jsonl files name each other more than {MAX_NESTING} deep "
                                f"({' -> '.join(str(p) for p in chain)})")
        token = _OPENING.set(chain + (root,))
        try:
            return self._find(root, chain + (root,))
        finally:
            _OPENING.reset(token)

    def _find(self, root: Path, chain: tuple) -> list:
        from rs_helpers.evaluation.datasets.registry import (
            REFERRING_REGISTRY,
            canonical_name,
            get_referring_dataset,
        )

        opened: dict[tuple, dict] = {}  # (dataset, root, split) -> {id: record}
        out = []
        for number, line in json_lines(root, "jsonl dataset file"):
            where = f"{root}: line {number}"
            if not isinstance(line, dict):
                raise BadInputError(f"{where}: not a JSON object")
            if not line.get("dataset") or "split" not in line or "root" not in line:
                raise BadInputError(f"{where}: no provenance (dataset, root, split); {HINT}")
            dataset = _text_field(line, "dataset", where, optional=False)
            split = _text_field(line, "split", where, optional=True)
            source_root = _text_field(line, "root", where, optional=True)
            if line.get("id") is None or line.get("id") == "":
                raise BadInputError(f"{where}: no \"id\"; {HINT}")
            rid = _text_field(line, "id", where, optional=False)
            if source_root is not None:
                try:
                    source_path = Path(source_root).expanduser()
                    source_root = str(source_path if source_path.is_absolute()
                                      else (root.parent / source_path).resolve())
                except (OSError, ValueError) as exc:
                    raise BadInputError(f"{where}: \"root\" {source_root[:120]!r} is not a usable path "
                                        f"({exc})") from None
            key = (dataset, source_root, split)
            if key not in opened:
                try:
                    is_jsonl = canonical_name(dataset, REFERRING_REGISTRY) == self.name
                except BadInputError:
                    is_jsonl = False  # the registry says why when it is opened below
                if is_jsonl and source_root is not None and Path(source_root) in chain:
                    loop = " -> ".join(str(p) for p in chain + (Path(source_root),))
                    what = "its own file" if Path(source_root) == root else "a file that refers back to it"
                    raise BadInputError(f"{where}: the line points at {what} ({loop}); "
                                        "jsonl files may not refer to each other in a loop")
                try:
                    ds = get_referring_dataset(dataset, root=source_root, split=split)
                except BadInputError as exc:
                    raise BadInputError(f"{where}: cannot open {dataset} (root {source_root}, split {split}): "
                                        f"{exc}") from None
                opened[key] = {"ds": ds, "ids": {str(r.id): r for r in ds.samples}, "expanded": False}
            entry = opened[key]
            record = entry["ids"].get(rid)
            if record is None and not entry["expanded"] and hasattr(entry["ds"], "expand_questions"):
                entry["expanded"] = True  # lora-data --all-questions ids (EarthReason "_q<k>")
                for r in entry["ds"].expand_questions():
                    entry["ids"].setdefault(str(r.id), r)
                record = entry["ids"].get(rid)
            if record is None:
                raise BadInputError(f"{where}: id {rid!r} is not in {dataset} split {split}"
                                    + (f" at {source_root}" if source_root else ""))
            for kind, path in (("image", getattr(record, "image", None)), ("mask", getattr(record, "mask", None))):
                if isinstance(path, (str, Path)) and not Path(path).is_file():
                    raise BadInputError(f"{where}: {rid}: {kind} file {path} is missing")
            self.lines.append(line)
            out.append(record)
        if not out:
            raise BadInputError(f"{root} holds no lines")
        return out
