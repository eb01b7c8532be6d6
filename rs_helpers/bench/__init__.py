"""Speed benchmarks: fast vs reference proposals against the floor, and the whole pipeline.

Short, stable imports for notebooks (``from rs_helpers.bench import BenchConfig``); the package's own
modules import each other by their real paths. Names load on first use, so importing the folder
costs nothing and creates no import cycle."""
from __future__ import annotations

import importlib

_EXPORTS = {
    "BenchConfig": "proposals",
    "run_bench": "proposals",
    "format_report": "proposals",
    "PipelineConfig": "pipeline",
    "run_pipeline_bench": "pipeline",
    "format_pipeline_report": "pipeline",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
