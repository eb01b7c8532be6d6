"""SAM's side of the method: reference grid proposals, the fast generator (encoder, decoder,
upsampling), masks from clicks (SAM 1, or SAM 2.1 / SAM 3's tracker behind the
same predictor interface), and per-stage timings.

Short, stable imports for notebooks (``from rs_helpers.sam import ProposalSettings``); the package's own
modules import each other by their real paths. Names load on first use
(:func:`rs_helpers.lazy_exports`)."""
from __future__ import annotations

from rs_helpers import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "ProposalSettings": "proposals",
    "Proposals": "proposals",
    "ProposalCache": "proposals",
    "generate_reference": "proposals",
    "grid_points": "proposals",
    "generate_fast": "fast_proposals",
    "mask_match": "fast_proposals",
    "make_predictor": "from_clicks",
    "predict_mask": "from_clicks",
    "mask_from_clicks": "from_clicks",
    "TrackerPredictor": "tracker_predictor",
    "Timings": "timings",
    "format_seconds": "timings",
    "estimate_remaining": "timings",
})
