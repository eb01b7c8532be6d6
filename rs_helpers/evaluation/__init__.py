"""Scoring both branches: the benchmark datasets, the metrics (mIoU from a confusion matrix;
gIoU, cIoU and P@t), and the runners behind `rs-seg eval`.

Short, stable imports for notebooks (``from rs_helpers.evaluation import ConfusionMatrix``); the package's own
modules import each other by their real paths. Names load on first use
(:func:`rs_helpers.lazy_exports`)."""
from __future__ import annotations

from rs_helpers import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
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
})
