"""Whole-scene segmentation: georeferencing kept, seamless stitching, nodata, bounded memory."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from rs_helpers.errors import BadInputError
from rs_helpers.geo.rasters import read_image
from rs_helpers.ovss.pipeline import OvssSettings
from rs_helpers.sam.proposals import Proposals, ProposalSettings
from rs_helpers.geo.scene import OvssTiles, ThresholdSegmenter, needs_tiling, read_class_names, segment_scene
from rs_helpers.geo.vectorize import vectorize

TRANSFORM = Affine(0.5, 0, 733601.0, 0, -0.5, 3725139.0)


def write_scene(path, data, crs="EPSG:32616", nodata=None):
    data = np.asarray(data)
    data = data[None] if data.ndim == 2 else data
    profile = dict(driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
                   dtype=data.dtype.name, nodata=nodata)
    if crs:
        profile.update(crs=crs, transform=TRANSFORM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
    return path


def bar_scene(height=300, width=260):
    """A 16-bit scene with one bright bar crossing the tile borders of a 128 px grid."""
    data = np.full((height, width), 1000, np.uint16)
    data[100:200, 50:220] = 5000
    return data


def test_output_keeps_crs_transform_and_shape(tmp_path):
    src = write_scene(tmp_path / "scene.tif", bar_scene())
    result = segment_scene(src, out=tmp_path / "map.tif", tile=128, overlap=32, segmenter=ThresholdSegmenter(),
                           progress=False)
    with rasterio.open(src) as a, rasterio.open(tmp_path / "map.tif") as b:
        assert b.crs == a.crs and b.transform == a.transform and b.shape == a.shape
        assert b.dtypes[0] == "uint8" and b.colormap(1)[1][:3] == (255, 255, 255)
        tags = b.tags()
        labels = b.read(1)
    assert json.loads(tags["class_names"]) == ["background", "bright"] and tags["stitching"] == "nearest tile centre"
    assert read_class_names(tmp_path / "map.tif") == ["background", "bright"]
    assert result.tiles == 9 and (result.height, result.width) == (300, 260)
    # a pixel-wise segmenter stitched from tiles equals the same segmenter on the whole image
    assert np.array_equal(labels, ThresholdSegmenter()(read_image(src).rgb))
    assert result.shares["bright"] == pytest.approx(100 * 170 / (300 * 260))
    assert [e["name"] for e in result.legend()] == ["background", "bright"]


def test_one_object_across_tile_borders_is_one_polygon(tmp_path):
    """A border-blind segmenter loses 8 px at every tile edge: without overlap the bar is cut into
    pieces along the tile borders (a seam); with overlap, nearest-centre stitching decides each
    border pixel from a tile that sees it well inside, and the bar is one polygon again."""
    src = write_scene(tmp_path / "scene.tif", bar_scene())
    blind = ThresholdSegmenter(margin=8)
    counts = {}
    for overlap in (0, 32):
        out = tmp_path / f"map_{overlap}.tif"
        segment_scene(src, out=out, tile=128, overlap=overlap, segmenter=blind, progress=False)
        fc = vectorize(out)  # background skipped: it is named in the tags
        counts[overlap] = len(fc["features"])
    assert counts[0] > 1
    assert counts[32] == 1
    with rasterio.open(tmp_path / "map_32.tif") as b:
        assert (b.read(1) == ThresholdSegmenter()(read_image(src).rgb)).all()


def test_geojson_from_the_scene_inside_bounds_both_crs(tmp_path):
    from rasterio.warp import transform_bounds

    from rs_helpers.geo.vectorize import feature_bounds

    src = write_scene(tmp_path / "scene.tif", bar_scene())
    segment_scene(src, out=tmp_path / "map.tif", tile=128, overlap=32, segmenter=ThresholdSegmenter(), progress=False)
    with rasterio.open(src) as s:
        bounds, crs = s.bounds, s.crs
    x0, y0, x1, y1 = feature_bounds(vectorize(tmp_path / "map.tif", simplify=1.0))
    assert bounds.left <= x0 <= x1 <= bounds.right and bounds.bottom <= y0 <= y1 <= bounds.top
    lon0, lat0, lon1, lat1 = transform_bounds(crs, "EPSG:4326", *bounds)
    x0, y0, x1, y1 = feature_bounds(vectorize(tmp_path / "map.tif", simplify=1.0, to_wgs84=True))
    assert lon0 <= x0 <= x1 <= lon1 and lat0 <= y0 <= y1 <= lat1


def test_nodata_tiles_are_skipped(tmp_path):
    data = bar_scene()
    data[:, :128] = 0  # the left column of tiles is all nodata
    src = write_scene(tmp_path / "scene.tif", data, nodata=0)
    calls = []

    def seg(rgb):
        calls.append(rgb.shape)
        return ThresholdSegmenter()(rgb)

    result = segment_scene(src, ["background", "bright"], out=tmp_path / "map.tif", tile=128, overlap=0,
                           segmenter=seg, progress=False)
    assert result.skipped == 3 and len(calls) == 6
    with rasterio.open(tmp_path / "map.tif") as b:
        labels = b.read(1)
        assert b.nodata == 255
    assert (labels[:, :128] == 255).all() and result.shares["(ignore)"] == pytest.approx(128 / 260)


def test_plain_images_and_png_output(tmp_path):
    from PIL import Image

    rgb = np.zeros((90, 120, 3), np.uint8)
    rgb[20:70, 30:100] = 220
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    result = segment_scene(tmp_path / "photo.png", out=tmp_path / "map.png", tile=64, overlap=16,
                           segmenter=ThresholdSegmenter(), progress=False)
    assert result.crs is None and result.transform is None
    labels = np.array(Image.open(tmp_path / "map.png"))
    assert labels.shape == (90, 120) and labels.sum() == 50 * 70
    assert not (tmp_path / "map.tmp.tif").exists()


def test_needs_tiling_and_bad_inputs(tmp_path):
    small = write_scene(tmp_path / "s.tif", np.zeros((100, 100), np.uint8))
    assert not needs_tiling(small) and needs_tiling(small, tile=64) and needs_tiling(small, max_untiled=50)
    with pytest.raises(BadInputError):
        segment_scene(small, "a;b", out=tmp_path / "x.jpg", segmenter=ThresholdSegmenter())
    with pytest.raises(BadInputError):
        segment_scene(small, "a;b", out=tmp_path / "x.tif")  # no models, no segmenter
    with pytest.raises(BadInputError):
        segment_scene(small, out=tmp_path / "x.tif", tile=64, overlap=64, segmenter=ThresholdSegmenter())
    with pytest.raises(BadInputError):
        segment_scene(small, out=tmp_path / "x.tif", segmenter=lambda rgb: rgb[:5, :5, 0], progress=False)
    assert not (tmp_path / "x.tif").exists()  # a failed run leaves no half-written map


def test_ovss_tiles_share_one_text_cache(tmp_path, tiny_sam, tiny_clip):
    """The real pipeline (tiny CLIP; a stand-in proposal generator keeps it fast): every tile is
    segmented, the class embeddings are computed once for the whole scene."""
    calls = []

    def no_proposals(sam, rgb, settings):
        calls.append(rgb.shape)
        return Proposals.empty(*rgb.shape[:2])

    src = write_scene(tmp_path / "scene.tif", np.stack([bar_scene(160, 200)] * 3))
    segmenter = OvssTiles("building;road;water", sam=tiny_sam, clip=tiny_clip, generator=no_proposals,
                          settings=OvssSettings(dense=OvssSettings().dense.__class__(templates="single")))
    result = segment_scene(src, out=tmp_path / "map.tif", tile=96, overlap=16, segmenter=segmenter, progress=False)
    assert len(calls) == result.tiles == 6
    assert segmenter.text_cache.misses == 1 and segmenter.text_cache.hits == 5
    assert result.class_names == ["building", "road", "water"]
    with rasterio.open(tmp_path / "map.tif") as b:
        assert b.read(1).max() <= 2 and b.crs.to_epsg() == 32616
    assert "pipeline.clip_dense" in result.timings


def test_binary_scene_with_the_real_tiny_pipeline(tmp_path, tiny_sam, tiny_clip):
    """Tiny SAM + CLIP end to end on one tile (the labels are meaningless; the format is not)."""
    src = write_scene(tmp_path / "scene.tif", bar_scene(120, 200))
    settings = OvssSettings(proposals=ProposalSettings(points_per_side=2, points_per_batch=4), max_side=256)
    result = segment_scene(src, "building", sam=tiny_sam, clip=tiny_clip, out=tmp_path / "map.tif", tile=256,
                           binary=True, settings=settings, progress=False)
    assert result.tiles == 1 and result.class_names == ["background", "building"] and result.binary
    with rasterio.open(tmp_path / "map.tif") as b:
        assert set(np.unique(b.read(1))) <= {0, 1} and b.tags()["binary"] == "true"


def test_memory_depends_on_the_tile_not_the_scene(tmp_path):
    """Python-side allocations (numpy arrays) peak at a few tiles' worth on a 2400 x 2400 x 3
    16-bit scene (33 MiB as stored, 16 MiB as uint8 RGB): nothing scene-sized is ever built."""
    side, tile = 2400, 256
    path = tmp_path / "big.tif"
    profile = dict(driver="GTiff", height=side, width=side, count=3, dtype="uint16", crs="EPSG:32616",
                   transform=TRANSFORM, tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, side, 400):
            yy, xx = np.mgrid[r0:r0 + 400, 0:side]
            band = (200 + (xx // 97 + yy // 89) % 7 * 500).astype(np.uint16)
            dst.write(np.stack([band, band + 100, band + 200]), window=Window(0, r0, side, 400))
    tracemalloc.start()
    try:
        result = segment_scene(path, out=tmp_path / "map.tif", tile=tile, overlap=32,
                               segmenter=ThresholdSegmenter(threshold=120), progress=False, overview_side=512)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tile_rgb = tile * tile * 3
    assert result.tiles == 121
    print(f"traced peak {peak / 2**20:.2f} MiB for {result.tiles} tiles")
    assert peak < 12 * tile_rgb  # about 2.4 MiB; the scene as uint8 RGB would be 16.5 MiB
    assert peak < side * side * 3 / 4


RUN_SLOW = os.environ.get("RS_HELPERS_SLOW") == "1"
BIG_SCENE_SCRIPT = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np, rasterio
    from affine import Affine
    from rasterio.windows import Window
    from rs_helpers.models.clip import load_clip
    from rs_helpers.models.sam import load_sam
    from rs_helpers.ovss.pipeline import OvssSettings
    from rs_helpers.sam.proposals import ProposalSettings
    from rs_helpers.geo.scene import OvssTiles, segment_scene

    def peak_mib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    path, out, side, tile = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    t0 = time.perf_counter()
    profile = dict(driver="GTiff", height=side, width=side, count=3, dtype="uint16", crs="EPSG:32616",
                   transform=Affine(0.5, 0, 700000.0, 0, -0.5, 3700000.0), tiled=True, blockxsize=512,
                   blockysize=512, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, side, 512):
            h = min(512, side - r0)
            yy, xx = np.mgrid[r0:r0 + h, 0:side]
            band = (200 + (xx // 97 + yy // 89) % 7 * 500).astype(np.uint16)
            dst.write(np.stack([band, band + 100, band + 200]), window=Window(0, r0, side, h))
    make_s = time.perf_counter() - t0
    sam, clip = load_sam(profile="tiny", device="cpu"), load_clip(profile="tiny", device="cpu")
    after_load = peak_mib()
    settings = OvssSettings(proposals=ProposalSettings(points_per_side=4, points_per_batch=16))
    inner = OvssTiles("building;road;water;tree", sam=sam, clip=clip, settings=settings)
    peaks = []

    def segmenter(rgb):
        labels = inner(rgb)
        peaks.append(peak_mib())
        return labels

    segmenter.class_names, segmenter.palette = inner.class_names, inner.palette
    t0 = time.perf_counter()
    result = segment_scene(path, out=out, tile=tile, overlap=128, segmenter=segmenter, progress=False)
    print(json.dumps({"side": side, "tile": tile, "tiles": result.tiles, "make_s": round(make_s, 1),
                      "run_s": round(time.perf_counter() - t0, 1), "peak_after_models_mib": round(after_load),
                      "peak_per_tile_mib": [round(p) for p in peaks], "peak_mib": round(peak_mib())}))
""")


@pytest.mark.slow
@pytest.mark.skipif(not RUN_SLOW, reason="about 2-3 minutes on 2 CPU cores; set RS_HELPERS_SLOW=1")
def test_8000_px_scene_with_the_tiny_pipeline_has_bounded_memory(tmp_path):
    """A synthetic 8000 x 8000 x 3 uint16 GeoTIFF (366 MiB of pixels; 183 MiB as uint8 RGB, 61 MiB
    of labels) through the real tiny SAM + CLIP in 2048 px tiles, in a fresh process: the peak
    resident memory stops growing after the first tiles, so it is set by the tile, not the scene."""
    out = subprocess.run([sys.executable, "-c", BIG_SCENE_SCRIPT, str(tmp_path / "big.tif"),
                          str(tmp_path / "map.tif"), "8000", "2048"], capture_output=True, text=True,
                         env={**os.environ, "RS_HELPERS_PROFILE": "tiny"}, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(figures)
    peaks = figures["peak_per_tile_mib"]
    assert figures["tiles"] == 25 and len(peaks) == 25
    assert peaks[-1] - peaks[2] < 64  # later tiles add (almost) nothing: less than the label map alone
    with rasterio.open(tmp_path / "map.tif") as b:
        assert b.shape == (8000, 8000) and b.crs.to_epsg() == 32616
