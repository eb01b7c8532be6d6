"""Label rasters to GeoJSON polygons: holes, areas, slivers, simplification, CRS handling."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from rs_helpers.errors import BadInputError
from rs_helpers.geo.vectorize import (
    PixelCoordinatesWarning,
    export_geojson,
    feature_bounds,
    image_extent,
    metres_per_unit,
    plot_features,
    polygon_area,
    simplify_polygon,
    vectorize,
    write_geojson,
)

UTM = CRS.from_epsg(32616)
TRANSFORM = Affine(0.5, 0, 733601.0, 0, -0.5, 3725139.0)  # 0.5 m pixels (SpaceNet Atlanta)


def square_with_hole():
    labels = np.zeros((60, 80), np.uint8)
    labels[10:50, 10:50] = 1  # 40 x 40 square
    labels[20:30, 20:30] = 0  # 10 x 10 hole
    labels[5:7, 70:72] = 2  # 2 x 2 sliver of class 2
    return labels


def scene_bounds(height, width, transform=TRANSFORM):
    left, top = transform.c, transform.f
    return left, top + transform.e * height, left + transform.a * width, top


def test_polygon_with_hole_area_and_names():
    fc = vectorize(square_with_hole(), transform=TRANSFORM, crs=UTM, class_names=["background", "building", "car"])
    by_class = {f["properties"]["class"]: f for f in fc["features"]}
    assert set(by_class) == {"building", "car"}  # background is skipped by default
    building = by_class["building"]
    assert len(building["geometry"]["coordinates"]) == 2  # the hole is kept
    assert building["properties"]["area_m2"] == pytest.approx((1600 - 100) * 0.25)
    assert building["properties"]["class_index"] == 1
    assert fc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32616"


def test_min_area_drops_slivers_only():
    fc = vectorize(square_with_hole(), transform=TRANSFORM, crs=UTM, class_names=["background", "building", "car"],
                   min_area=2.0)  # the sliver is 4 px = 1 m^2
    assert [f["properties"]["class"] for f in fc["features"]] == ["building"]


def test_simplify_reduces_vertices_and_keeps_the_hole():
    labels = np.zeros((100, 100), np.uint8)
    yy, xx = np.mgrid[:100, :100]
    labels[(yy - 50) ** 2 + (xx - 50) ** 2 < 40 ** 2] = 1
    labels[(yy - 50) ** 2 + (xx - 50) ** 2 < 10 ** 2] = 0
    raw = vectorize(labels, transform=TRANSFORM, crs=UTM, classes=[1])
    simple = vectorize(labels, transform=TRANSFORM, crs=UTM, classes=[1], simplify=1.0)
    (f_raw,), (f_simple,) = raw["features"], simple["features"]
    n_raw = sum(len(r) for r in f_raw["geometry"]["coordinates"])
    n_simple = sum(len(r) for r in f_simple["geometry"]["coordinates"])
    assert n_simple < n_raw / 3
    assert len(f_simple["geometry"]["coordinates"]) == 2
    area = polygon_area(f_simple["geometry"]["coordinates"])
    assert area == pytest.approx(math.pi * (40 ** 2 - 10 ** 2) * 0.25, rel=0.05)


def test_geojson_inside_scene_bounds_in_both_crs(tmp_path):
    labels = square_with_hole()
    h, w = labels.shape
    native = vectorize(labels, transform=TRANSFORM, crs=UTM, simplify=0.5)
    xmin, ymin, xmax, ymax = feature_bounds(native)
    left, bottom, right, top = scene_bounds(h, w)
    assert left <= xmin and xmax <= right and bottom <= ymin and ymax <= top
    wgs = vectorize(labels, transform=TRANSFORM, crs=UTM, simplify=0.5, to_wgs84=True)
    assert "crs" not in wgs  # RFC 7946: EPSG:4326 is implied
    lon0, lat0, lon1, lat1 = transform_bounds(UTM, "EPSG:4326", left, bottom, right, top)
    xmin, ymin, xmax, ymax = feature_bounds(wgs)
    assert lon0 <= xmin and xmax <= lon1 and lat0 <= ymin and ymax <= lat1
    assert -85 < xmin < -84 and 33 < ymin < 34  # Atlanta
    path = write_geojson(wgs, tmp_path / "out.geojson")
    assert json.loads(path.read_text())["features"][0]["geometry"]["type"] == "Polygon"


def test_raster_file_is_streamed_with_its_crs_and_class_names(tmp_path):
    path = tmp_path / "map.tif"
    labels = square_with_hole()
    with rasterio.open(path, "w", driver="GTiff", height=60, width=80, count=1, dtype="uint8", crs=UTM,
                       transform=TRANSFORM) as dst:
        dst.write(labels, 1)
        dst.update_tags(class_names=json.dumps(["background", "building", "car"]))
    n = export_geojson(path, tmp_path / "map.geojson", classes=["building"])
    fc = json.loads((tmp_path / "map.geojson").read_text())
    assert n == 1 and fc["features"][0]["properties"]["class"] == "building"
    assert fc["features"][0]["properties"]["area_m2"] == pytest.approx(375.0)
    with pytest.raises(BadInputError):
        vectorize(path, classes=["tree"])


def test_not_georeferenced_gives_pixel_coordinates_with_a_warning():
    labels = square_with_hole()
    with pytest.warns(PixelCoordinatesWarning):
        fc = vectorize(labels, class_names=["background", "building", "car"], to_wgs84=True)
    assert "crs" not in fc
    xmin, ymin, xmax, ymax = feature_bounds(fc)
    assert (xmin, ymin, xmax, ymax) == (10.0, 5.0, 72.0, 50.0)
    assert fc["features"][0]["properties"]["area_px"] > 0


def test_ignore_and_bool_masks():
    labels = np.full((20, 20), 255, np.uint8)
    labels[5:15, 5:15] = 1
    assert vectorize(labels, transform=TRANSFORM, crs=UTM)["features"][0]["properties"]["class"] == "1"
    mask = np.zeros((20, 20), bool)
    mask[2:8, 2:8] = True
    fc = vectorize(mask, transform=TRANSFORM, crs=UTM, class_names={1: "the red roof"})
    assert [f["properties"]["class"] for f in fc["features"]] == ["the red roof"]  # only named labels
    fc = vectorize(mask, transform=TRANSFORM, crs=UTM)
    assert [f["properties"]["class"] for f in fc["features"]] == ["mask"]
    fc = vectorize(mask.astype(np.uint8), transform=TRANSFORM, crs=UTM, classes=[0])
    assert [f["properties"]["class"] for f in fc["features"]] == ["0"]


def test_bad_inputs(tmp_path):
    with pytest.raises(BadInputError):
        vectorize(np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(BadInputError):
        vectorize(np.zeros((4, 4), np.float32))
    with pytest.raises(BadInputError):
        vectorize(np.zeros((4, 4), np.uint8), simplify=-1)
    with pytest.raises(BadInputError):
        write_geojson({"type": "FeatureCollection", "features": []}, tmp_path / "x.shp")
    with pytest.raises(BadInputError):
        feature_bounds({"type": "FeatureCollection", "features": []})


def test_units():
    assert metres_per_unit(UTM) == 1.0
    assert metres_per_unit(CRS.from_epsg(2263)) == pytest.approx(0.3048, rel=1e-3)  # NY state plane, US feet
    geo = Affine(1e-5, 0, -115.2, 0, -1e-5, 36.1)
    m = metres_per_unit(CRS.from_epsg(4326), geo, (100, 100))
    assert m == pytest.approx(111320 * math.sqrt(math.cos(math.radians(36.1))), rel=1e-3)
    assert metres_per_unit(None) == 1.0


def test_geographic_crs_area_in_square_metres():
    geo = Affine(1e-5, 0, -115.2, 0, -1e-5, 36.1)  # about 0.9 x 1.1 m pixels
    labels = np.zeros((50, 50), np.uint8)
    labels[10:40, 10:40] = 1
    fc = vectorize(labels, transform=geo, crs=CRS.from_epsg(4326), classes=[1])
    expected = 900 * (1e-5 * 111320) ** 2 * math.cos(math.radians(36.1))
    assert fc["features"][0]["properties"]["area_m2"] == pytest.approx(expected, rel=0.01)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=3, max_size=40), st.floats(0, 5))
def test_simplified_polygon_is_a_closed_subset_of_its_vertices(points, tolerance):
    from shapely.geometry import Polygon

    ring = points + [points[0]]
    if not Polygon(ring).is_valid or Polygon(ring).area == 0:
        return
    out = simplify_polygon({"type": "Polygon", "coordinates": [ring]}, tolerance)
    if out is None:
        return
    exterior = [tuple(p) for p in out["coordinates"][0]]
    assert exterior[0] == exterior[-1]
    assert set(exterior) <= {tuple(map(float, p)) for p in ring}


def test_plot_and_extent():
    import matplotlib.pyplot as plt

    fc = vectorize(square_with_hole(), transform=TRANSFORM, crs=UTM, class_names=["background", "a", "b"])
    fig, ax = plt.subplots()
    assert plot_features(fc, ax=ax, palette=[(0, 0, 0), (255, 0, 0), (0, 0, 255)]) is ax
    assert len(ax.patches) == 2
    plt.close(fig)
    left, right, bottom, top = image_extent(TRANSFORM, 60, 80)
    assert (left, right, bottom, top) == (733601.0, 733641.0, 3725109.0, 3725139.0)
    assert image_extent(None, 60, 80) == (0, 80, 60, 0)


def test_command_line_options_and_export(tmp_path, capsys):
    import argparse

    from rs_helpers.commands.options import add_scene_arguments
    from rs_helpers.commands.options import export_from_args

    parser = argparse.ArgumentParser()
    add_scene_arguments(parser)
    args = parser.parse_args(["--geojson", str(tmp_path / "m.geojson"), "--simplify", "0.5", "--min-area", "2",
                              "--tile", "512"])
    assert (args.tile, args.overlap, args.simplify, args.min_area, args.to_wgs84) == (512, 128, 0.5, 2.0, False)
    for bad in (["--geojson", "m.shp"], ["--simplify", "-1"], ["--min-area", "x"], ["--tile", "8"],
                ["--overlap", "-3"]):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(bad)
        assert exc.value.code == 2
    n = export_from_args(args, square_with_hole(), transform=TRANSFORM, crs=UTM,
                         class_names=["background", "building", "car"])
    assert n == 1 and "wrote 1 polygons" in capsys.readouterr().out  # the 1 m^2 car is below 2 m^2
    export_from_args(args, square_with_hole())  # not georeferenced: a one-line warning, pixel coordinates
    assert "rs-seg: warning: the raster is not georeferenced" in capsys.readouterr().err
    assert export_from_args(parser.parse_args([]), square_with_hole()) == 0  # no --geojson: nothing written
