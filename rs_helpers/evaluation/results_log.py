"""The eval's own checkpoint: one JSON line per finished sample, so a rerun resumes.

``OUT.results.jsonl`` sits beside the report ``OUT.json``. Its first line holds the settings
(``{"rs_helpers_results": 1, "settings": {...}}``); every further line is one sample's record
(its ``key``, unique in the dataset, the counts its metrics are made of, its time), appended and flushed to disk the moment
the sample is done. A rerun with the same settings reads the file, skips what is done and
computes the rest; the metrics are then recomputed from every record in dataset order, so they
equal those of an uninterrupted run exactly. A rerun with other settings is refused (exit 2)
rather than mixing results; ``--fresh`` starts over.

When several processes share an eval (:mod:`rs_helpers.distributed`), rank R > 0 appends to
``OUT.results.rankR.jsonl`` (no two writers on one file, which network file systems do not
order); rank 0 folds every file into ``OUT.results.jsonl`` when the run is complete. A process
killed mid-line (SIGKILL, power loss) leaves at most one partial last line, which the next run
drops; every complete line before it is kept.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from rs_helpers.errors import BadInputError
from rs_helpers.files import parse_json, raw_lines, read_bytes, write_text_atomic

FORMAT = 1
HEADER_KEY = "rs_helpers_results"
HEADER_START = b'{"' + HEADER_KEY.encode()  # how every results file begins


def results_path(report: str | Path) -> Path:
    """``eval.json`` -> ``eval.results.jsonl``."""
    report = Path(report)
    return report.with_name(report.stem + ".results.jsonl")


def rank_path(path: Path, rank: int) -> Path:
    """The file rank ``rank`` appends to (rank 0: ``path`` itself)."""
    return path if rank == 0 else path.with_name(path.name[: -len(".jsonl")] + f".rank{rank}.jsonl")


def rank_files(path: Path) -> list[Path]:
    """``path`` and every other rank's file beside it that exists, ``path`` first."""
    stem = path.name[: -len(".jsonl")]
    others = sorted(p for p in path.parent.glob(stem + ".rank*.jsonl") if p.name[len(stem) + 5:-6].isdigit())
    return ([path] if path.exists() else []) + others


def normalise(settings: dict) -> dict:
    """Settings as they read back from JSON (tuples become lists, paths strings)."""
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def _differences(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new))
    diffs = [f"{k}: {old.get(k, '(unset)')!r} then, {new.get(k, '(unset)')!r} now" for k in keys
             if old.get(k) != new.get(k)]
    return "; ".join(diffs[:4]) + ("; ..." if len(diffs) > 4 else "")


class ResultsLog:
    """Per-sample records of one eval, on disk (see the module docstring)."""

    def __init__(self, path: str | Path, settings: dict, rank: int = 0):
        self.path = Path(path)
        self.settings = normalise(settings)
        self.rank = int(rank)
        self._handle = None

    # ------------------------------------------------------------------ reading
    def load(self) -> dict[str, dict]:
        """Every finished record in every rank's file, by sample id (refuses other settings)."""
        done: dict[str, dict] = {}
        for path in rank_files(self.path):
            for record in self._read(path):
                done[record["key"]] = record
        return done

    def _read(self, path: Path) -> list[dict]:
        data = read_bytes(path, "results file")
        lines = list(raw_lines(data))
        if lines and lines[-1][1] == b"":
            lines.pop()  # the file ends with a newline, as every complete record does
        elif lines and not data.endswith(b"\n"):
            lines.pop()  # a line cut short by a kill: that sample is simply computed again
        if not lines:
            if data and not (HEADER_START.startswith(data[:len(HEADER_START)])
                             or data.startswith(HEADER_START)):
                raise BadInputError(f"{path}: not a results file of rs-seg eval; move it away, or use --fresh "
                                    "to start over")
            return []  # empty, or a header cut short by a kill
        where = f"{path} line 1"
        header = parse_json(lines[0][1].decode("utf-8", "replace"), where)
        if not isinstance(header, dict) or header.get(HEADER_KEY) != FORMAT or not isinstance(
                header.get("settings"), dict):
            raise BadInputError(f"{where}: not a results file of rs-seg eval; move it away, or use --fresh "
                                "to start over")
        if header["settings"] != self.settings:
            raise BadInputError(f"{path} holds results made with other settings "
                                f"({_differences(header['settings'], self.settings)}); rerun with those "
                                "settings to resume, --fresh to start over, or another --out")
        records = []
        for number, raw in lines[1:]:
            record = parse_json(raw.decode("utf-8", "replace"), f"{path} line {number}")
            if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                raise BadInputError(f"{path} line {number}: not a sample record; use --fresh to start over")
            records.append(record)
        return records

    def records_by_others(self) -> int:
        """How many records the other ranks' files hold now (for a global progress count)."""
        total = 0
        for path in rank_files(self.path):
            if path != rank_path(self.path, self.rank):
                try:
                    total += max(0, path.read_bytes().count(b"\n") - 1)
                except OSError:
                    pass
        return total

    # ------------------------------------------------------------------ writing
    def append(self, record: dict) -> None:
        """Add one finished sample; on disk (flushed and synced) when this returns."""
        if self._handle is None:
            target = rank_path(self.path, self.rank)
            self._handle = open(target, "ab")
            if target.stat().st_size:
                self._drop_partial_line(target)
            if not target.stat().st_size:  # new, or only a header cut short by a kill
                self._write({HEADER_KEY: FORMAT, "settings": self.settings})
        self._write(record)

    def _drop_partial_line(self, target: Path) -> None:
        data = target.read_bytes()
        if not data.endswith(b"\n"):  # cut by a kill: truncate to the last complete line
            self._handle.truncate(data.rfind(b"\n") + 1)
            self._handle.seek(0, os.SEEK_END)

    def _write(self, value: dict) -> None:
        line = json.dumps(value, separators=(",", ":"), allow_nan=False, default=str) + "\n"
        self._handle.write(line.encode("utf-8"))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def consolidate(self, records: Iterable[dict]) -> Path:
        """Rank 0, once every sample is done: one file holding every record in dataset order
        (written whole, then the other ranks' files removed)."""
        self.close()
        lines = [json.dumps({HEADER_KEY: FORMAT, "settings": self.settings}, separators=(",", ":"))]
        lines += [json.dumps(r, separators=(",", ":"), allow_nan=False, default=str) for r in records]
        write_text_atomic(self.path, "\n".join(lines) + "\n")
        for path in rank_files(self.path)[1:]:
            path.unlink(missing_ok=True)
        return self.path

    def discard(self) -> None:
        """``--fresh``: remove every rank's file (rank 0, before any process reads them)."""
        self.close()
        for path in rank_files(self.path):
            path.unlink(missing_ok=True)
