"""Image reading: every sample, and the documented behaviour for bad or unusual rasters."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from rs_helpers.errors import BadInputError
from rs_helpers.geo.rasters import (
    BandChoiceWarning,
    RasterImage,
    read_image,
    read_mask,
    stretch_to_uint8,
    write_label_raster,
)
from rs_helpers.samples import list_samples


def _write_tif(path, data, crs="EPSG:32616", transform=None, **extra):
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = dict(driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
                   dtype=str(data.dtype), crs=crs, transform=transform or from_origin(733600, 3725140, 0.5, 0.5))
    profile.update(extra)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


@pytest.mark.parametrize("sample", list_samples(), ids=lambda s: s.name)
def test_every_sample_reads_as_uint8_rgb(sample):
    image, labels = sample.load()
    assert image.rgb.dtype == np.uint8 and image.rgb.shape == (labels.shape[0], labels.shape[1], 3)
    assert set(np.unique(labels)) <= set(range(len(sample.class_names))) | {255}


def test_geotiff_keeps_crs_and_transform():
    sample = next(s for s in list_samples() if s.name == "atlanta_buildings")
    image = sample.load_image()
    assert image.is_georeferenced and image.crs.to_epsg() == 32616
    assert image.transform.a == pytest.approx(0.5)


def test_rgba_png_drops_alpha(tmp_path):
    from PIL import Image

    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 0] = 10
    rgba[..., 1] = 20
    rgba[..., 2] = 30
    rgba[..., 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error", BandChoiceWarning)  # alpha is not a band choice
        image = read_image(tmp_path / "a.png")
    assert image.rgb.shape == (20, 30, 3)
    assert image.rgb[0, 0].tolist() == [10, 20, 30]


def test_16bit_single_band_is_stretched_and_replicated(tmp_path):
    ramp = np.tile(np.arange(0, 2000, 20, dtype=np.uint16), (10, 1))  # 10 x 100
    image = read_image(_write_tif(tmp_path / "pan.tif", ramp))
    assert image.source_dtype == "uint16" and image.rgb.dtype == np.uint8
    assert (image.rgb[..., 0] == image.rgb[..., 1]).all() and (image.rgb[..., 1] == image.rgb[..., 2]).all()
    # 2nd percentile maps to 0 and the 98th to 255: both ends saturate, the middle is mid-grey
    assert image.rgb[0, 0, 0] == 0 and image.rgb[0, -1, 0] == 255
    assert 110 < image.rgb[0, 50, 0] < 145


def test_stretch_maps_percentiles():
    band = np.arange(101, dtype=np.float32).reshape(1, 101)
    out = stretch_to_uint8(band)
    assert out[0, 2] == 0 and out[0, 98] == 255 and out[0, 50] == 128


def test_grayscale_png_replicated(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((8, 9), 77, np.uint8), "L").save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.rgb.shape == (8, 9, 3) and (image.rgb == 77).all()


def test_five_bands_default_first_three_with_warning(tmp_path):
    data = np.stack([np.full((6, 7), v, np.uint8) for v in (1, 2, 3, 4, 5)])
    path = _write_tif(tmp_path / "ms.tif", data)
    with pytest.warns(BandChoiceWarning, match="5 bands"):
        image = read_image(path)
    assert image.rgb[0, 0].tolist() == [1, 2, 3]
    chosen = read_image(path, bands=[4, 3, 2])
    assert chosen.rgb[0, 0].tolist() == [4, 3, 2]
    with pytest.raises(BadInputError, match="bands 1..5"):
        read_image(path, bands=[6, 1, 2])


@pytest.mark.parametrize("content", [b"", b"not an image at all" * 10])
def test_corrupt_or_empty_file_is_bad_input(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(BadInputError):
        read_image(path)


def test_one_pixel_image_is_bad_input(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "one.png")
    with pytest.raises(BadInputError, match="too small"):
        read_image(tmp_path / "one.png")


def test_missing_file_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        read_image(tmp_path / "nope.tif")


def test_label_raster_round_trip_keeps_georeferencing(tmp_path):
    src = _write_tif(tmp_path / "src.tif", np.zeros((3, 12, 16), np.uint8))
    like = read_image(src)
    labels = (np.arange(12 * 16).reshape(12, 16) % 3).astype(np.uint8)
    out = write_label_raster(tmp_path / "out.tif", labels, like=like, palette=[(0, 0, 0), (255, 0, 0), (0, 255, 0)])
    with rasterio.open(out) as dst:
        assert dst.crs == like.crs and dst.transform == like.transform
        assert dst.colormap(1)[1][:3] == (255, 0, 0)
    assert (read_mask(out) == labels).all()
    png = write_label_raster(tmp_path / "out.png", labels)
    assert (read_mask(png) == labels).all()


def test_label_raster_rejects_bad_input(tmp_path):
    with pytest.raises(BadInputError):
        write_label_raster(tmp_path / "x.jpg", np.zeros((2, 2), np.uint8))
    with pytest.raises(BadInputError):
        write_label_raster(tmp_path / "x.png", np.full((2, 2), 300))
    with pytest.raises(BadInputError):
        write_label_raster(tmp_path / "x.png", np.zeros((2, 2, 3), np.uint8))


def test_raster_image_properties(rgb_image):
    image = RasterImage(rgb=rgb_image)
    assert (image.height, image.width) == (96, 128) and not image.is_georeferenced
