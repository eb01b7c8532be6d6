"""A LoRA data file (``rs-seg lora-data``, e.g. its held-out lines) as a referring dataset.

Every line written by ``rs-seg lora-data`` says where its sample came from: ``dataset`` (registry
name), ``root`` (absolute, null for the shipped samples), ``split`` and ``id``. This loader opens
each source dataset once and returns the source records (text, image and ground-truth mask) of
the lines, in file order, so a held-out split can be scored after training::

    rs-seg eval refer --dataset jsonl --root heldout.jsonl --vlm qwen:Qwen/Qwen3-VL-2B-Instruct --adapter adapter/

A custom split has no published numbers: ``reported`` is empty.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import BadInputError
from .base import ReferringDataset

HINT = "write the file with rs-seg lora-data (each line needs dataset, root, split and id)"


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
        path = Path(root).expanduser()
        if not path.is_file():
            raise BadInputError(f"{path}: no such file (the jsonl dataset reads a file written by rs-seg lora-data)")
        return path.resolve()

    def find(self, root: Path) -> list:
        from .registry import get_referring_dataset

        opened: dict[tuple, dict] = {}  # (dataset, root, split) -> {id: record}
        out = []
        text = root.read_text(encoding="utf-8")
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            where = f"{root}: line {number}"
            try:
                line = json.loads(raw)
            except ValueError as exc:
                raise BadInputError(f"{where}: not JSON ({exc})") from None
            if not isinstance(line, dict):
                raise BadInputError(f"{where}: not a JSON object")
            if not line.get("dataset") or "split" not in line or "root" not in line:
                raise BadInputError(f"{where}: no provenance (dataset, root, split); {HINT}")
            rid = line.get("id")
            if rid is None or not str(rid):
                raise BadInputError(f"{where}: no \"id\"; {HINT}")
            source_root = line["root"]
            if source_root is not None:
                source_root = Path(str(source_root)).expanduser()
                source_root = str(source_root if source_root.is_absolute() else (root.parent / source_root).resolve())
            key = (str(line["dataset"]), source_root, line["split"])
            if key not in opened:
                if key[0] == self.name and source_root is not None and Path(source_root) == root:
                    raise BadInputError(f"{where}: the line points at its own file")
                try:
                    ds = get_referring_dataset(key[0], root=source_root, split=key[2])
                except BadInputError as exc:
                    raise BadInputError(f"{where}: cannot open {key[0]} (root {source_root}, split {key[2]}): "
                                        f"{exc}") from None
                opened[key] = {"ds": ds, "ids": {str(r.id): r for r in ds.samples}, "expanded": False}
            entry = opened[key]
            record = entry["ids"].get(str(rid))
            if record is None and not entry["expanded"] and hasattr(entry["ds"], "expand_questions"):
                entry["expanded"] = True  # lora-data --all-questions ids (EarthReason "_q<k>")
                for r in entry["ds"].expand_questions():
                    entry["ids"].setdefault(str(r.id), r)
                record = entry["ids"].get(str(rid))
            if record is None:
                raise BadInputError(f"{where}: id {rid!r} is not in {key[0]} split {key[2]}"
                                    + (f" at {source_root}" if source_root else ""))
            for kind, path in (("image", getattr(record, "image", None)), ("mask", getattr(record, "mask", None))):
                if isinstance(path, (str, Path)) and not Path(path).is_file():
                    raise BadInputError(f"{where}: {rid}: {kind} file {path} is missing")
            self.lines.append(line)
            out.append(record)
        if not out:
            raise BadInputError(f"{root} holds no lines")
        return out
