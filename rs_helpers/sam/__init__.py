"""SAM's side of the method: reference grid proposals, the fast generator (encoder, decoder,
upsampling), masks from clicks, and per-stage timings.

Short, stable imports for notebooks (``from rs_helpers.sam import ProposalSettings``); the package's own
modules import each other by their real paths. Names load on first use, so importing the folder
costs nothing and creates no import cycle."""
from __future__ import annotations

import importlib

_EXPORTS = {
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
    "Timings": "timings",
    "format_seconds": "timings",
    "estimate_remaining": "timings",
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
