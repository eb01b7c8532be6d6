"""Rasters in and out (PNG, JPEG, GeoTIFF), tiling and whole scenes, and polygons (GeoJSON).

Short, stable imports for notebooks (``from rs_helpers.geo import read_image``); the package's own
modules import each other by their real paths. Names load on first use
(:func:`rs_helpers.lazy_exports`)."""
from __future__ import annotations

from rs_helpers import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
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
    "export_geojson": "vectorize",
    "write_geojson": "vectorize",
    "feature_bounds": "vectorize",
    "image_extent": "vectorize",
    "plot_features": "vectorize",
})
