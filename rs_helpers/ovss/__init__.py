"""The contrastive branch: open-vocabulary semantic segmentation. A vocabulary of class names,
CLIP's dense similarity map, masks voted into labels (or each crop classified), and the pipeline.

Short, stable imports for notebooks (``from rs_helpers.ovss import parse_classes``); the package's own
modules import each other by their real paths. Names load on first use, so importing the folder
costs nothing and creates no import cycle."""
from __future__ import annotations

import importlib

_EXPORTS = {
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
