"""Speed benchmarks: fast vs reference proposals against the floor, and the whole pipeline.

Short, stable imports for notebooks (``from rs_helpers.bench import BenchConfig``); the package's own
modules import each other by their real paths. Names load on first use
(:func:`rs_helpers.lazy_exports`)."""
from __future__ import annotations

from rs_helpers import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "BenchConfig": "proposals",
    "run_bench": "proposals",
    "format_report": "proposals",
    "PipelineConfig": "pipeline",
    "run_pipeline_bench": "pipeline",
    "format_pipeline_report": "pipeline",
})
