"""Notebook conveniences: settings and set-up, plots, interactive widgets, checked exercises,
student copies and the demo that runs every notebook.

Short, stable imports for notebooks (``from rs_helpers.teaching import setup_notebook``); the package's own
modules import each other by their real paths. Names load on first use
(:func:`rs_helpers.lazy_exports`)."""
from __future__ import annotations

from rs_helpers import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "setup_notebook": "notebook",
    "pick": "notebook",
    "interactive_view": "notebook",
    "show_figure": "notebook",
    "show_image": "plotting",
    "show_mask": "plotting",
    "show_points": "plotting",
    "show_box": "plotting",
    "show_semantic": "plotting",
    "show_panels": "plotting",
    "show_proposals": "plotting",
    "plot_click_simulation": "plotting",
    "plot_distance_maps": "plotting",
    "pixel_axes": "figures",
    "plot_mask_candidates": "figures",
    "plot_score_histograms": "figures",
    "plot_grid_density": "figures",
    "plot_label_maps": "figures",
    "plot_cls_bias": "figures",
    "plot_binary_overlays": "figures",
    "grid_explorer": "widgets",
    "click_explorer": "widgets",
    "GridExplorerState": "widgets",
})
