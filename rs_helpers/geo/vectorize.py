"""Label rasters to polygons: one GeoJSON feature per connected region, with its class name.

``vectorize("map.tif", simplify=1.0, min_area=20)`` traces regions with
:func:`rasterio.features.shapes` (GDAL's polygonizer: exact pixel outlines, holes kept as inner
rings). Given a path it streams the band from disk, so a large label raster is never loaded
whole. Then, per polygon:

* slivers whose area (holes subtracted, before simplification) is below ``min_area`` are dropped;
* outlines are simplified with a tolerance of ``simplify`` map units (shapely's
  topology-preserving Douglas-Peucker: rings never cross, holes are kept unless they collapse);
* coordinates stay in the raster's CRS (a legacy ``crs`` member names it) or, with
  ``to_wgs84=True``, are reprojected to EPSG:4326 (:func:`rasterio.warp.transform_geom`), after
  simplifying, so the tolerance keeps its meaning.

Tolerance and area are in the CRS's linear units, converted to metres for projected CRSs in feet
and so on. For a geographic CRS (degrees) they are taken as metres and converted at the scene's
centre latitude (an approximation, fine for a scene). A raster without georeferencing is
vectorised in pixel coordinates (x right, y down) with a :class:`PixelCoordinatesWarning`.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from rs_helpers.errors import BadInputError

IGNORE = 255
METRES_PER_DEGREE = 111_320.0
SKIP_NAMES = ("background",)


class PixelCoordinatesWarning(UserWarning):
    """The raster has no CRS: polygons are in pixel coordinates."""


# --------------------------------------------------------------------------- geometry
def polygon_area(rings) -> float:
    """Area of a GeoJSON polygon's rings: the exterior minus the holes."""
    from shapely.geometry import Polygon

    return float(Polygon(rings[0], rings[1:]).area)


def simplify_polygon(geom: dict, tolerance: float) -> dict | None:
    """A GeoJSON polygon simplified within ``tolerance`` without changing its topology;
    ``None`` when it collapses."""
    if tolerance <= 0:
        return geom
    from shapely.geometry import mapping, shape

    simple = shape(geom).simplify(tolerance, preserve_topology=True)
    return None if simple.is_empty else json.loads(json.dumps(mapping(simple)))


# --------------------------------------------------------------------------- units
def metres_per_unit(crs, transform=None, shape_hw: tuple[int, int] | None = None) -> float:
    """Length of one CRS unit in metres (1 for metric CRSs; at the scene's centre latitude for
    degrees, the geometric mean of the x and y scales)."""
    if crs is None:
        return 1.0
    if crs.is_geographic:
        lat = 0.0
        if transform is not None and shape_hw is not None:
            lat = transform.d * shape_hw[1] / 2 + transform.e * shape_hw[0] / 2 + transform.f
        return METRES_PER_DEGREE * math.sqrt(max(math.cos(math.radians(lat)), 1e-6))
    try:
        return float(crs.linear_units_factor[1])
    except Exception:  # a CRS without a linear unit
        return 1.0


def _names_lookup(class_names) -> Mapping[int, str]:
    if class_names is None:
        return {}
    if isinstance(class_names, Mapping):
        return {int(k): str(v) for k, v in class_names.items()}
    return {i: str(n) for i, n in enumerate(class_names)}


def _crs_member(crs) -> dict:
    epsg = crs.to_epsg()
    name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else crs.to_wkt()
    return {"type": "name", "properties": {"name": name}}


# --------------------------------------------------------------------------- vectorize
def vectorize(source, *, transform=None, crs=None, class_names=None, classes: Sequence | None = None,
              simplify: float = 0.0, min_area: float = 0.0, to_wgs84: bool = False, connectivity: int = 4,
              skip_names: Sequence[str] = SKIP_NAMES) -> dict:
    """Polygons of a label raster as a GeoJSON FeatureCollection (a dict).

    ``source``: a label raster path (streamed; CRS, transform and the class names written by
    :func:`rs_helpers.geo.scene.segment_scene` are read from it) or a 2-D integer/bool array with
    ``transform`` and ``crs``. ``class_names``: a list (index = label) or {label: name}.
    ``classes``: labels or names to export (default: the labels that have a name, or every label
    when there are no names, except 255 and the names in ``skip_names``, i.e. "background"). A
    boolean mask is exported as the class ``class_names[1]`` (default "mask"). ``simplify`` (tolerance) and ``min_area`` (sliver
    threshold, holes subtracted): metres / square metres, see the module notes.
    Each feature's properties: ``class``, ``class_index`` and ``area_m2`` (``area_px`` without
    georeferencing).
    """
    import rasterio
    from rasterio.features import shapes
    from rasterio.warp import transform_geom

    if simplify < 0 or min_area < 0:
        raise BadInputError("--simplify and --min-area must not be negative")
    opened = None
    if isinstance(source, (str, Path)):
        from rs_helpers.geo.rasters import _open

        opened = _open(source)
        if crs is None and opened.crs is not None:
            crs, transform = opened.crs, opened.transform
        if class_names is None and opened.tags().get("class_names"):
            class_names = json.loads(opened.tags()["class_names"])
        dtype = opened.dtypes[0]
        if np.dtype(dtype).kind == "f":
            opened.close()
            raise BadInputError(f"{source}: a label raster holds integers, not {dtype}")
        shape_hw, band = (opened.height, opened.width), rasterio.band(opened, 1)
    else:
        array = np.asarray(source)
        if array.dtype == bool and class_names is None:
            class_names = {1: "mask"}
        if array.ndim != 2:
            raise BadInputError(f"labels must be 2-D, got shape {array.shape}")
        if array.dtype.kind == "f":
            raise BadInputError(f"labels must be integers or booleans, not {array.dtype}")
        if array.dtype.name not in ("uint8", "uint16", "int16", "int32"):
            small = array.dtype == bool or (array.min(initial=0) >= 0 and array.max(initial=0) < 256)
            array = array.astype(np.uint8 if small else np.int32)
        shape_hw, band = array.shape, array
    try:
        if crs is None:
            warnings.warn("the raster is not georeferenced: polygons are in pixel coordinates"
                          + (" (no reprojection to EPSG:4326)" if to_wgs84 else ""),
                          PixelCoordinatesWarning, stacklevel=2)
            transform, to_wgs84 = (transform if transform is not None else rasterio.Affine.identity()), False
        names = _names_lookup(class_names)
        wanted = _wanted(classes, names, skip_names)
        unit = metres_per_unit(crs, transform, shape_hw)
        tolerance, area_min = simplify / unit, min_area / unit ** 2
        skipped = {s.lower() for s in skip_names}
        features = []
        for geom, value in shapes(band, connectivity=connectivity, transform=transform):
            value = int(value)
            if value == IGNORE or value not in (wanted if wanted is not None else {value}):
                continue
            if wanted is None and ((names and value not in names) or names.get(value, "").lower() in skipped):
                continue
            area = polygon_area(geom["coordinates"])
            if area < area_min:
                continue
            geom = simplify_polygon(geom, tolerance)
            if geom is None:
                continue
            key = "area_m2" if crs is not None else "area_px"
            features.append({"type": "Feature", "geometry": geom, "properties": {
                "class": names.get(value, str(value)), "class_index": value,
                key: round(area * unit ** 2, 3)}})
    finally:
        if opened is not None:
            opened.close()
    if to_wgs84 and features:
        geoms = transform_geom(crs, "EPSG:4326", [f["geometry"] for f in features])
        for feature, geom in zip(features, geoms):
            feature["geometry"] = json.loads(json.dumps(geom))
    collection = {"type": "FeatureCollection", "features": features}
    if crs is not None and not to_wgs84:
        collection["crs"] = _crs_member(crs)
    return collection


def _wanted(classes, names: Mapping[int, str], skip_names) -> set[int] | None:
    if classes is None:
        return None
    by_name = {n.lower(): i for i, n in names.items()}
    out = set()
    for c in classes:
        if isinstance(c, str) and not c.isdigit():
            if c.lower() not in by_name:
                raise BadInputError(f"class {c!r} is not in the raster's classes ({', '.join(names.values())})")
            out.add(by_name[c.lower()])
        else:
            out.add(int(c))
    return out


def write_geojson(collection: dict, path: str | Path) -> Path:
    """Write a FeatureCollection (compact, one file)."""
    path = Path(path)
    if path.suffix.lower() not in (".geojson", ".json"):
        raise BadInputError(f"{path}: write a .geojson (or .json) file")
    from rs_helpers.files import write_text_atomic

    return write_text_atomic(path, json.dumps(collection, separators=(",", ":")))


def export_geojson(source, path: str | Path, **options) -> int:
    """:func:`vectorize` ``source`` and write the result to ``path``; returns the feature count."""
    collection = vectorize(source, **options)
    write_geojson(collection, path)
    return len(collection["features"])


def feature_bounds(collection: dict) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) over every coordinate of the collection's polygons."""
    xy = np.array([pt for f in collection["features"] for ring in _rings(f["geometry"]) for pt in ring], float)
    if xy.size == 0:
        raise BadInputError("the collection has no polygons")
    return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())


def _rings(geom: dict):
    if geom["type"] == "Polygon":
        yield from geom["coordinates"]
    elif geom["type"] == "MultiPolygon":
        for polygon in geom["coordinates"]:
            yield from polygon


def image_extent(transform, height: int, width: int) -> tuple[float, float, float, float]:
    """``(left, right, bottom, top)`` of a raster in map units, for ``ax.imshow(rgb, extent=...)``
    so that an image and its polygons share the same axes (identity transform: pixels)."""
    import rasterio

    transform = transform if transform is not None else rasterio.Affine.identity()
    x0, y0 = transform.c, transform.f
    x1, y1 = transform.a * width + transform.b * height + x0, transform.d * width + transform.e * height + y0
    return min(x0, x1), max(x0, x1), (max(y0, y1) if transform.e > 0 else min(y0, y1)), \
        (min(y0, y1) if transform.e > 0 else max(y0, y1))


def plot_features(collection: dict, ax=None, palette=None, facecolor=None, alpha: float = 0.35,
                  edgecolor="white", linewidth: float = 1.0):
    """Draw the polygons (holes as holes) on ``ax`` in their own coordinates (map units), coloured
    by ``palette[class_index]`` when given. Returns ``ax``."""
    import matplotlib.colors
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 6))
    for feature in collection["features"]:
        verts, codes = [], []
        for ring in _rings(feature["geometry"]):
            verts += [tuple(p[:2]) for p in ring]
            codes += [MplPath.MOVETO] + [MplPath.LINETO] * (len(ring) - 2) + [MplPath.CLOSEPOLY]
        colour = facecolor
        if colour is None and palette is not None:
            colour = np.asarray(palette[feature["properties"]["class_index"] % len(palette)], float) / 255
        face = "none" if colour is None else matplotlib.colors.to_rgba(colour, alpha)
        ax.add_patch(PathPatch(MplPath(verts, codes), facecolor=face, edgecolor=edgecolor, linewidth=linewidth))
    ax.autoscale_view()
    return ax
