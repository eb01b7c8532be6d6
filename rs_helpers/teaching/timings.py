"""Measured compute time per notebook: the figures in each notebook's header and in
``notebooks/README.md``, kept in ``notebooks/timings.json``.

A measurement executes a notebook headless (as ``make demo`` does) and sums the cells' own
run times, which nbclient records in each cell's metadata; kernel start-up is left out. Under
the full or classroom profile it usually runs with ``$RS_HELPERS_RANDOM_WEIGHTS=1``: the real
architectures and settings, random weights, nothing downloaded (compute time does not depend on
weight values). ``scripts/time_notebooks.py`` runs it; a profile and machine kind never measured
is printed as "not measured".
"""
from __future__ import annotations

import datetime
import json
import platform
from dataclasses import dataclass
from pathlib import Path

TIMINGS_FILE = "timings.json"
# Which (profile, device kind) rows the headers and the README show, in this order.
SHOWN = (("classroom", "cpu"), ("full", "gpu"))
README_START = "<!-- compute-times:start (made by scripts/time_notebooks.py; do not edit) -->"
README_END = "<!-- compute-times:end -->"


@dataclass
class NotebookTime:
    """One notebook's measured compute time: ``seconds`` summed over its cells, and the slowest cells."""

    seconds: float
    slowest: list[tuple[int, float, str]]  # (cell index, seconds, the cell's first line)


def _stamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def cell_seconds(cell) -> float | None:
    """How long a code cell ran, from nbclient's ``execution`` timestamps (None when absent)."""
    execution = (cell.get("metadata") or {}).get("execution") or {}
    start, end = execution.get("iopub.execute_input"), execution.get("shell.execute_reply")
    if not start or not end:
        return None
    return max(0.0, (_stamp(end) - _stamp(start)).total_seconds())


def notebook_time(nb, keep: int = 3) -> NotebookTime:
    """The compute time of an executed notebook: its code cells' run times, summed."""
    timed = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        seconds = cell_seconds(cell)
        if seconds is None:
            raise ValueError(f"cell {index} has no execution timestamps: was the notebook executed by nbclient?")
        first = next((line for line in cell.source.splitlines() if line.strip()), "")
        timed.append((index, seconds, first[:80]))
    slowest = sorted(timed, key=lambda item: -item[1])[:keep]
    return NotebookTime(seconds=sum(s for _, s, _ in timed), slowest=slowest)


def machine_description(device) -> str:
    """E.g. ``cpu, 2 cores (x86_64)`` or ``cuda, NVIDIA H200``."""
    import os

    import torch

    if device.type == "cuda":
        return f"cuda, {torch.cuda.get_device_name(device)}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{device.type}, {cores} cores ({platform.machine()})"


def load_timings(folder: Path) -> dict:
    """``{"classroom/cpu": {"machine", "date", "commit", "random_weights", "notebooks": {name: {...}}}}``."""
    path = Path(folder) / TIMINGS_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def save_timings(folder: Path, timings: dict, name: str = TIMINGS_FILE) -> Path:
    """Write ``folder/name`` (``timings.json``) whole or not at all."""
    from rs_helpers.files import open_atomic

    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / name
    with open_atomic(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(timings, indent=1, sort_keys=True) + "\n")
    return path


def record(timings: dict, profile: str, kind: str, name: str, measured: NotebookTime, run: dict) -> dict:
    """``timings`` with notebook ``name``'s measurement under ``profile/kind`` (a new dict)."""
    out = json.loads(json.dumps(timings))
    entry = out.setdefault(f"{profile}/{kind}", {"notebooks": {}})
    entry.update({k: run[k] for k in ("machine", "date", "commit", "random_weights", "torch") if k in run})
    entry["notebooks"][name] = {"seconds": round(measured.seconds, 1),
                                "slowest": [[i, round(s, 1), line] for i, s, line in measured.slowest]}
    return out


def merge_timings(mine: dict, incoming: dict) -> dict:
    """``mine`` with ``incoming``'s measurements added (a new dict): per ``profile/kind``, its
    notebooks replace mine of the same name, the others stay. ``ValueError`` if ``incoming`` is
    not a timings file."""
    if not isinstance(incoming, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("notebooks"), dict) for v in incoming.values()):
        raise ValueError("not a timings file (written by scripts/time_notebooks.py --out)")
    out = json.loads(json.dumps(mine))
    for key, entry in incoming.items():
        target = out.setdefault(key, {"notebooks": {}})
        notebooks = {**target.get("notebooks", {}), **entry["notebooks"]}
        target.update(json.loads(json.dumps(entry)))
        target["notebooks"] = notebooks
    return out


def minutes(seconds: float) -> str:
    """``42 s``, ``3.5 min``, ``72 min``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"


def _weights(entry: dict) -> str:
    return "random weights" if entry.get("random_weights") else "real weights"


def compute_line(name: str, timings: dict) -> str:
    """The header line of notebook ``name``: each shown profile's measured time, or "not measured"."""
    parts = []
    for profile, kind in SHOWN:
        entry = timings.get(f"{profile}/{kind}", {})
        measured = entry.get("notebooks", {}).get(name)
        where = f"{profile} profile on a {kind.upper()}"
        if measured is None:
            parts.append(f"{where}: not measured")
        else:
            parts.append(f"{where}: {minutes(measured['seconds'])} ({entry.get('machine', '?')}, "
                         f"{_weights(entry)}, {entry.get('date', '?')})")
    return ("**Compute, measured** (the cells' run time, model loading included, first downloads not). "
            + "; ".join(parts) + ". Details: [notebooks/README.md](README.md#compute-time).")


def readme_table(names: list[str], timings: dict) -> str:
    """The compute-time table of ``notebooks/README.md``, between its markers."""
    heads = [f"{profile} profile, {kind.upper()}" for profile, kind in SHOWN]
    lines = [README_START, "", "| notebook | " + " | ".join(heads) + " | slowest cell |",
             "| --- |" + " --- |" * (len(SHOWN) + 1)]
    for name in names:
        cells, slowest = [], ""
        for profile, kind in SHOWN:
            entry = timings.get(f"{profile}/{kind}", {})
            measured = entry.get("notebooks", {}).get(name)
            cells.append("not measured" if measured is None else minutes(measured["seconds"]))
            if measured is not None and not slowest and measured.get("slowest"):
                index, seconds, line = measured["slowest"][0]
                slowest = f"cell {index}: {minutes(seconds)} (`{line.replace('|', '/')}`)"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {slowest or '-'} |")
    lines.append("")
    for profile, kind in SHOWN:
        entry = timings.get(f"{profile}/{kind}")
        if entry:
            lines.append(f"- {profile} profile, {kind.upper()}: {entry.get('machine', '?')}, {_weights(entry)}, "
                         f"torch {entry.get('torch', '?')}, measured {entry.get('date', '?')} at commit "
                         f"{entry.get('commit', '?')}.")
        else:
            lines.append(f"- {profile} profile, {kind.upper()}: not measured yet.")
    lines += ["", README_END]
    return "\n".join(lines)


def replace_readme_table(text: str, table: str) -> str:
    """``text`` (notebooks/README.md) with the part between the markers replaced by ``table``."""
    if README_START not in text or README_END not in text:
        raise ValueError("notebooks/README.md has no compute-time markers")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return head + table + tail
