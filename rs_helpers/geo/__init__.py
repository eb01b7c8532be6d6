"""Rasters in and out (PNG, JPEG, GeoTIFF), tiling and whole scenes, and polygons (GeoJSON).

Short, stable imports for notebooks (``from rs_helpers.geo import read_image``); the package's own
modules import each other by their real paths. Names load on first use, so importing the folder
costs nothing and creates no import cycle."""
from __future__ import annotations

import importlib

_EXPORTS = {
    "read_image": "rasters",
    "read_mask": "rasters",
    "describe": "rasters",
    "write_label_raster": "rasters",
    "stretch_to_uint8": "rasters",
    "RasterImage": "rasters",
    "SceneReader": "tiling",
    "tile_grid": "tiling",
    "tile_starts": "tiling",
    "segment_scene": "scene",
    "ThresholdSegmenter": "scene",
    "vectorize": "vectorize",
    "export_geojson": "vectorize",
    "write_geojson": "vectorize",
    "feature_bounds": "vectorize",
    "image_extent": "vectorize",
    "plot_features": "vectorize",
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
