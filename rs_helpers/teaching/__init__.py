"""Notebook conveniences: settings and set-up, plots, interactive widgets, checked exercises,
student copies and the demo that runs every notebook.

Short, stable imports for notebooks (``from rs_helpers.teaching import setup_notebook``); the package's own
modules import each other by their real paths. Names load on first use, so importing the folder
costs nothing and creates no import cycle."""
from __future__ import annotations

import importlib

_EXPORTS = {
    "setup_notebook": "notebook",
    "pick": "notebook",
    "show_image": "plotting",
    "show_mask": "plotting",
    "show_points": "plotting",
    "show_box": "plotting",
    "show_semantic": "plotting",
    "show_panels": "plotting",
    "show_proposals": "plotting",
    "plot_click_simulation": "plotting",
    "plot_distance_maps": "plotting",
    "grid_explorer": "widgets",
    "click_explorer": "widgets",
    "GridExplorerState": "widgets",
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
