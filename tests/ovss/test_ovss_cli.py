"""``rs-seg ovss``: outputs, legend, bad class lists, every sample image, and a 4000 x 4000 image."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from rs_helpers.cli import main
from rs_helpers.geo.rasters import describe, read_mask
from rs_helpers.samples import list_samples

QUICK = ["--profile", "tiny", "--points-per-side", "2", "--templates", "single"]


@pytest.fixture
def png(tmp_path, rgb_image):
    path = tmp_path / "in.png"
    Image.fromarray(rgb_image).save(path)
    return path


def test_png_output_legend_and_shares(png, tmp_path, capsys):
    out = tmp_path / "out" / "labels.png"
    code = main(["ovss", str(png), "--classes", "building,roof;road;water", "--out", str(out), "--timings", *QUICK])
    assert code == 0
    labels = read_mask(out)
    assert labels.shape == (96, 128) and set(np.unique(labels)) <= {0, 1, 2}
    legend = json.loads(out.with_name(out.stem + ".legend.json").read_text())
    assert [c["name"] for c in legend["classes"]] == ["building", "road", "water"]
    assert legend["classes"][0]["synonyms"] == ["building", "roof"]
    assert all(len(c["color"]) == 3 for c in legend["classes"])
    assert legend["profile"] == "tiny" and "meaningless" in legend["note"]
    text = capsys.readouterr().out
    for name in ("building", "road", "water"):
        assert re.search(rf"{name}\s+\d+\.\d\d %", text)
    assert "timings (s):" in text and "peak_rss_mib" in text and "MEANINGLESS" in text
    shares = [c["share"] for c in legend["classes"]]
    assert sum(shares) == pytest.approx(1.0)


def test_binary_and_crop_selector(png, tmp_path):
    out = tmp_path / "b.png"
    assert main(["ovss", str(png), "--classes", "background;building", "--binary", "--selector", "crop",
                 "--tau", "0.3", "--out", str(out), *QUICK]) == 0
    assert set(np.unique(read_mask(out))) <= {0, 1}
    legend = json.loads(out.with_name(out.stem + ".legend.json").read_text())
    assert legend["target"] == "building" and legend["settings"]["selection"]["tau"] == 0.3


@pytest.mark.parametrize("classes", ["", "  ", ";;", " , ; ", "road;road", "road;street,road", "building"])
def test_bad_class_lists_exit_2_with_one_line(png, tmp_path, capsys, classes):
    code = main(["ovss", str(png), "--classes", classes, "--out", str(tmp_path / "x.png"), *QUICK])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len([line for line in err if line.startswith("rs-seg: error:")]) == 1
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("argv,match", [
    (["--out", "x.jpg"], "png"),
    (["--bands", "a,b"], "bands"),
    (["--binary", "--target", "water"], "not one of"),
])
def test_other_bad_inputs_exit_2(png, tmp_path, capsys, argv, match):
    args = ["ovss", str(png), "--classes", "building;road"] + QUICK
    if "--out" not in argv:
        args += ["--out", str(tmp_path / "x.png")]
    else:
        argv = ["--out", str(tmp_path / argv[1])]
    assert main(args + argv) == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize("sample", list_samples(), ids=lambda s: s.name)
def test_every_sample(sample, tmp_path):
    """Every shipped image, including the 1-band uint16 and 4-band GeoTIFFs; georeferenced
    inputs give GeoTIFFs with the same CRS and transform."""
    geo = describe(sample.image)["crs"] is not None
    out = tmp_path / ("labels.tif" if geo else "labels.png")
    argv = ["ovss", str(sample.image), "--classes", ";".join(sample.vocabulary), "--out", str(out),
            "--max-side", "256", *QUICK]
    if sample.binary:
        argv.append("--binary")
    if describe(sample.image)["bands"] == 4:
        argv += ["--bands", "1,2,3"]
    assert main(argv) == 0
    info = describe(out)
    src = describe(sample.image)
    assert (info["width"], info["height"]) == (src["width"], src["height"])
    if geo:
        assert info["crs"] == src["crs"] and info["transform"] == src["transform"]


def test_4000_pixel_image_bounded_memory(tmp_path):
    """A 4000 x 4000 image runs at a 1024 working resolution; the peak resident memory of the
    whole command is reported and stays far below what full-resolution masks would need."""
    yy, xx = np.mgrid[:4000, :4000]
    img = np.stack([(xx // 16) % 256, (yy // 16) % 256, ((xx + yy) // 64) % 256], -1).astype(np.uint8)
    src = tmp_path / "big.png"
    Image.fromarray(img).save(src, compress_level=1)
    del img, xx, yy
    out = tmp_path / "big_labels.png"
    proc = subprocess.run(
        [sys.executable, "-m", "rs_helpers", "ovss", str(src), "--classes", "building;road;water", "--out", str(out),
         "--timings", *QUICK], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    peak = float(re.search(r"peak_rss_mib (\d+)", proc.stdout).group(1))
    print(f"4000 x 4000, tiny profile, grid 2: peak RSS {peak:.0f} MiB")
    assert peak < 2 * 1024
    assert describe(out)["width"] == 4000


def test_geotiff_map_and_geojson_in_map_coordinates(tmp_path):
    """A georeferenced sample: the class map keeps CRS and transform, the polygons lie in the scene."""
    import json

    import rasterio

    from rs_helpers.samples import get_sample

    sample = get_sample("atlanta_buildings")
    out, polygons = tmp_path / "map.tif", tmp_path / "map.geojson"
    code = main(["ovss", str(sample.image), "--classes", "background; building", "--binary", "--target", "building",
                 "--points-per-side", "4", "--max-side", "256", "--out", str(out), "--geojson", str(polygons),
                 "--profile", "tiny", "--device", "cpu"])
    assert code == 0
    with rasterio.open(sample.image) as src, rasterio.open(out) as dst:
        assert dst.crs == src.crs and dst.transform == src.transform and dst.shape == src.shape
        left, bottom, right, top = src.bounds
    collection = json.loads(polygons.read_text())
    has_building = bool((read_mask(out) == 1).any())
    assert bool(collection["features"]) == has_building
    for feature in collection["features"]:
        assert feature["properties"]["class"] == "building"
        for x, y in feature["geometry"]["coordinates"][0]:
            assert left <= x <= right and bottom <= y <= top
