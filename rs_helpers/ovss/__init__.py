"""The contrastive branch: open-vocabulary semantic segmentation. A vocabulary of class names,
CLIP's dense similarity map, masks voted into labels (or each crop classified), the pipeline, and
the CLIP-only baseline (SegEarth-OV's own segmentation, no SAM) and SAM 3 alone (SegEarth-OV3's fusion).

Short, stable imports for notebooks (``from rs_helpers.ovss import parse_classes``); the package's own
modules import each other by their real paths. Names load on first use
(:func:`rs_helpers.lazy_exports`)."""
from __future__ import annotations

from rs_helpers import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "parse_classes": "vocabulary",
    "encode_vocabulary": "vocabulary",
    "get_templates": "vocabulary",
    "Vocabulary": "vocabulary",
    "TextCache": "vocabulary",
    "DenseSettings": "clip_dense",
    "dense_map": "clip_dense",
    "SelectionSettings": "selection",
    "select_semantic": "selection",
    "select_binary": "selection",
    "class_fractions": "selection",
    "OvssSettings": "pipeline",
    "OvssResult": "pipeline",
    "segment": "pipeline",
    "resize_labels": "pipeline",
    "resize_rgb": "pipeline",
    "work_size": "pipeline",
    "ClipOnlySettings": "clip_only",
    "segment_clip": "clip_only",
    "load_upsampler": "clip_only",
    "SEGEARTH_OV": "clip_dense",
    "Sam3Settings": "sam3_fusion",
    "segment_sam3": "sam3_fusion",
})
