"""Loading SAM (1, 2.1 and 3), CLIP and Qwen-VL, with real weights or as tiny random stand-ins, and the checkpoint cache.

Short, stable imports for notebooks (``from rs_helpers.models import load_sam``); the package's own
modules import each other by their real paths. Names load on first use
(:func:`rs_helpers.lazy_exports`)."""
from __future__ import annotations

from rs_helpers import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "load_sam": "sam",
    "build_tiny_sam": "sam",
    "SAM_VARIANTS": "sam",
    "DEFAULT_SAM": "sam",
    "load_clip": "clip",
    "ClipModel": "clip",
    "DEFAULT_CLIP": "clip",
    "DEFAULT_CLIP_PRETRAINED": "clip",
    "load_qwen": "qwen",
    "QwenVL": "qwen",
    "DEFAULT_QWEN": "qwen",
    "load_sam3": "sam3",
    "Sam3Bundle": "sam3",
    "DEFAULT_SAM3": "sam3",
    "sam3_status": "sam3",
    "load_click_segmenter": "sam_tracker",
    "ClickSegmenter": "sam_tracker",
    "DEFAULT_SAM2": "sam_tracker",
    "run_checks": "doctor",
    "format_checks": "doctor",
})
