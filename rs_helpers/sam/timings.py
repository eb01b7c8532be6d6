"""Per-stage wall time and peak memory, collected from the API and printed as a table.

    timings = Timings(device)
    with timings.stage("sam encoder"):
        ...
    print(timings)

Peak memory per stage: on CUDA ``torch.cuda.max_memory_allocated`` (tensors only); on the CPU
the process's peak resident set size (VmHWM from ``/proc/self/status``, reset at each stage
start through ``/proc/self/clear_refs`` where Linux allows it, else the lifetime peak from
``resource.getrusage``, which only grows). Stages may nest and repeat: times and calls add up;
a stage's peak is the highest reading seen while it was open.

Side effect on the CPU: resetting the kernel's peak-RSS counter also resets what outside tools
read afterwards (``/usr/bin/time -v`` then reports the peak since the last reset only).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field

import torch


@dataclass
class StageTiming:
    name: str
    seconds: float = 0.0
    peak_bytes: int = 0
    calls: int = 0
    nested: bool = False  # first entered inside another stage (not added to the total)


def _read_status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_cpu_peak() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_peak_bytes() -> int:
    """Peak resident set size of this process since the last reset (or since it started)."""
    kib = _read_status_kib("VmHWM")
    if kib is None:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return int(kib) * 1024


@dataclass
class Timings:
    """Stage name -> :class:`StageTiming`, in the order stages were first entered."""

    device: str = "cpu"
    sync: bool = True
    stages: dict[str, StageTiming] = field(default_factory=dict)
    peak_kind: str = ""
    _open: list[StageTiming] = field(default_factory=list, repr=False)

    def __post_init__(self):
        self.device = str(self.device)
        cuda = self._cuda()
        if cuda:
            self.peak_kind = "cuda max_memory_allocated"
        else:
            resettable = _reset_cpu_peak()
            self.peak_kind = "process peak RSS" + ("" if resettable else " (lifetime, not resettable)")
            self._resettable = resettable

    def _cuda(self) -> bool:
        return self.device.startswith("cuda") and torch.cuda.is_available()

    def _synchronize(self) -> None:
        if self.sync and self._cuda():
            torch.cuda.synchronize(self.device)

    def _peak(self) -> int:
        if self._cuda():
            return int(torch.cuda.max_memory_allocated(self.device))
        return cpu_peak_bytes()

    def _reset(self) -> None:
        if self._cuda():
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self._resettable:
            _reset_cpu_peak()

    def _note_peak(self) -> None:
        peak = self._peak()
        for open_stage in self._open:
            open_stage.peak_bytes = max(open_stage.peak_bytes, peak)

    @contextlib.contextmanager
    def stage(self, name: str):
        """Time the enclosed block under ``name`` (adds to earlier blocks of the same name)."""
        record = self.stages.setdefault(name, StageTiming(name, nested=bool(self._open)))
        self._synchronize()
        self._note_peak()
        self._reset()
        self._open.append(record)
        start = time.perf_counter()
        try:
            yield record
        finally:
            self._synchronize()
            record.seconds += time.perf_counter() - start
            record.calls += 1
            self._note_peak()
            self._open.remove(record)

    def seconds(self, name: str) -> float:
        return self.stages[name].seconds if name in self.stages else 0.0

    @property
    def total_seconds(self) -> float:
        """Sum over top-level stages (a nested stage's time is already in its parent's)."""
        return sum(s.seconds for s in self.stages.values() if not s.nested)

    @property
    def peak_bytes(self) -> int:
        return max((s.peak_bytes for s in self.stages.values()), default=0)

    def merge(self, other: "Timings") -> "Timings":
        """Add ``other``'s stages into this one (for totals over several images)."""
        for s in other.stages.values():
            mine = self.stages.setdefault(s.name, StageTiming(s.name, nested=s.nested))
            mine.seconds += s.seconds
            mine.calls += s.calls
            mine.peak_bytes = max(mine.peak_bytes, s.peak_bytes)
        return self

    def to_dict(self) -> dict:
        return {"device": self.device, "peak_kind": self.peak_kind,
                "stages": [asdict(s) for s in self.stages.values()]}

    def table(self, title: str = "") -> str:
        rows = [(("  " if s.nested else "") + s.name, f"{s.seconds:.3f}", str(s.calls), f"{s.peak_bytes / 2**20:.0f}") for s in self.stages.values()]
        rows.append(("total", f"{self.total_seconds:.3f}", "", f"{self.peak_bytes / 2**20:.0f}"))
        head = ("stage", "seconds", "calls", "peak MiB")
        widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
        fmt = "  ".join(["{:<%d}" % widths[0]] + ["{:>%d}" % w for w in widths[1:]])
        lines = ([title] if title else []) + [fmt.format(*head)] + [fmt.format(*r) for r in rows]
        lines.append(f"(device {self.device}; peak memory: {self.peak_kind})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


@contextlib.contextmanager
def maybe_stage(timings: Timings | None, name: str):
    """``timings.stage(name)`` when timings are collected, else nothing."""
    if timings is None:
        yield None
    else:
        with timings.stage(name) as record:
            yield record


def rss_bytes() -> int:
    """Current resident set size of this process."""
    kib = _read_status_kib("VmRSS")
    return int(kib or 0) * 1024


def format_seconds(seconds: float) -> str:
    """A duration for people: '30 ms', '4.2 s', '42 s', '3.5 min', '1.2 h'."""
    if seconds < 0.1:
        return f"{1000 * seconds:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_remaining(done_seconds: float, done_units: float, total_units: float, unit: str = "unit") -> str:
    """What the work done so far predicts for the rest, at the same rate, as one line:
    ``estimate_remaining(12.0, 1, 4, "tile")`` -> 'expected about 36 s for the remaining 3 tiles (12 s per tile)'."""
    remaining = total_units - done_units
    if done_units <= 0:
        return f"no estimate yet for {total_units:g} {unit}s (nothing timed)"
    if remaining <= 0:
        return f"nothing left: {done_units:g} {unit}s done in {format_seconds(done_seconds)}"
    rate = done_seconds / done_units
    plural = unit if remaining == 1 else unit + "s"
    return (f"expected about {format_seconds(rate * remaining)} for the remaining {remaining:g} {plural} "
            f"({format_seconds(rate)} per {unit})")


__all__ = ["StageTiming", "Timings", "maybe_stage", "cpu_peak_bytes", "rss_bytes", "format_seconds",
           "estimate_remaining"]
