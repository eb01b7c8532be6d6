"""Scoring both branches: the benchmark datasets, the metrics (mIoU from a confusion matrix;
gIoU, cIoU and P@t), and the runners behind `rs-seg eval`.

Short, stable imports for notebooks (``from rs_helpers.evaluation import ConfusionMatrix``); the package's own
modules import each other by their real paths. Names load on first use, so importing the folder
costs nothing and creates no import cycle."""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ConfusionMatrix": "metrics",
    "confusion_matrix": "metrics",
    "mean_iou": "metrics",
    "foreground_iou": "metrics",
    "format_table": "metrics",
    "iou": "refer_metrics",
    "ReferScores": "refer_metrics",
    "evaluate": "ovss_eval",
    "evaluate_refer": "refer_eval",
    "compare_table": "refer_eval",
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
