"""Bad rasters are refused with a one-line BadInputError (exit 2), never a traceback: truncated or
corrupt files, complex pixels, decompression bombs, shapes SAM cannot resize. Every file is
generated here, in tmp_path."""
from __future__ import annotations

import io
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from rs_helpers.cli import main
from rs_helpers.errors import BadInputError
from rs_helpers.geo.rasters import (
    DEFAULT_MAX_DECODE_MB,
    MAX_DECODE_ENV,
    BandChoiceWarning,
    check_model_shape,
    max_decode_mb,
    plan_image,
    read_image,
    read_mask,
    stretch_to_uint8,
)
from rs_helpers.geo.tiling import SceneReader, needs_tiling, tile_grid

GEO = dict(crs="EPSG:32616", transform=Affine(0.5, 0, 733601.0, 0, -0.5, 3725139.0))


def _noise(h=60, w=80, bands=3, seed=0):
    """Random pixels (they do not compress: every byte offset falls in image data)."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, bands)).astype(np.uint8)


def _png_bytes(array=None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_noise() if array is None else array).save(buf, "PNG")
    return buf.getvalue()


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_noise()).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _tiff_bytes(tmp_dir, name="x.tif", dtype="uint8", **extra) -> bytes:
    data = np.moveaxis(_noise(), -1, 0).astype(dtype) * (7 if dtype != "uint8" else 1)
    path = tmp_dir / name
    with rasterio.open(path, "w", driver="GTiff", height=60, width=80, count=3, dtype=dtype, **GEO, **extra) as dst:
        dst.write(data)
    return path.read_bytes()


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """Valid files as bytes, by name (the extension tells the format)."""
    tmp = tmp_path_factory.mktemp("originals")
    return {
        "rgb.png": _png_bytes(),
        "grey.png": _png_bytes(_noise(bands=1)[..., 0]),
        "rgb.jpg": _jpeg_bytes(),
        "strips.tif": _tiff_bytes(tmp, "strips.tif"),
        "tiles16.tif": _tiff_bytes(tmp, "tiles16.tif", dtype="uint16", tiled=True, blockxsize=16, blockysize=16,
                                   compress="deflate"),
        "bigtiff_be.tif": _tiff_bytes(tmp, "bigtiff_be.tif", BIGTIFF="YES", ENDIANNESS="BIG"),
    }


def _read_every_tile(path):
    with SceneReader(path) as reader:
        for tile in tile_grid(reader.height, reader.width, 32, 0):
            reader.read(tile)


def _assert_cli_exit_2(path, capsys):
    capsys.readouterr()
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("rs-seg: error:") and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- truncated and corrupt files
@pytest.mark.parametrize("name", ["rgb.png", "grey.png", "rgb.jpg", "strips.tif", "tiles16.tif", "bigtiff_be.tif"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, -1])
def test_truncated_file_is_refused_everywhere(tmp_path, originals, name, keep, capsys):
    data = originals[name]
    cut = len(data) - 1 if keep == -1 else int(len(data) * keep)
    path = tmp_path / name
    path.write_bytes(data[:cut])
    with pytest.raises(BadInputError, match="corrupt or truncated"):
        read_image(path)
    with pytest.raises(BadInputError, match="corrupt or truncated"):
        read_mask(path)
    with pytest.raises(BadInputError, match="corrupt or truncated"):
        _read_every_tile(path)
    _assert_cli_exit_2(path, capsys)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_truncated_anywhere_is_bad_input(tmp_path, originals, data):
    """Whatever the cut, a truncated file is BadInputError: refused when opened (a broken header)
    or by the completeness check, never decoded into garbage."""
    name = data.draw(st.sampled_from(sorted(originals)))
    blob = originals[name]
    cut = data.draw(st.integers(1, len(blob) - 1))
    path = tmp_path / f"cut_{name}"
    path.write_bytes(blob[:cut])
    with pytest.raises(BadInputError):
        read_image(path)
    with pytest.raises(BadInputError):
        _read_every_tile(path)


def test_complete_files_still_read(tmp_path, originals):
    for name, blob in originals.items():
        (tmp_path / name).write_bytes(blob)
        assert read_image(tmp_path / name).rgb.shape == (60, 80, 3)


def test_trailing_bytes_after_the_image_are_accepted(tmp_path):
    """Data after PNG's IEND or JPEG's EOI (cameras append some) does not make a file truncated."""
    for name, blob in (("junk.png", _png_bytes()), ("junk.jpg", _jpeg_bytes())):
        (tmp_path / name).write_bytes(blob + b"trailer" * 2000)
        assert read_image(tmp_path / name).rgb.shape == (60, 80, 3)


def test_jpeg_with_thumbnail_truncated_after_it(tmp_path):
    """An EXIF thumbnail carries its own end marker: it must not make a truncated main image look complete."""
    thumb = io.BytesIO()
    Image.fromarray(_noise(8, 8)).save(thumb, "JPEG")
    buf = io.BytesIO()
    Image.fromarray(_noise(200, 300)).save(buf, "JPEG", exif=b"Exif\0\0II*\0\x08\0\0\0\0\0\0\0\0\0" + thumb.getvalue())
    blob = buf.getvalue()
    assert blob.count(b"\xff\xd9") >= 2
    (tmp_path / "ok.jpg").write_bytes(blob)
    assert read_image(tmp_path / "ok.jpg").rgb.shape == (200, 300, 3)
    (tmp_path / "cut.jpg").write_bytes(blob[:len(blob) // 5])
    with pytest.raises(BadInputError, match="corrupt or truncated"):
        plan_image(tmp_path / "cut.jpg")


def test_corrupt_png_data_fails_to_decode(tmp_path):
    """Flipped bytes in the compressed data (the file's structure intact): the decode fails, and
    the failure is a BadInputError."""
    blob = bytearray(_png_bytes())
    middle = len(blob) // 2
    blob[middle:middle + 8] = bytes(b ^ 0xFF for b in blob[middle:middle + 8])
    (tmp_path / "flip.png").write_bytes(bytes(blob))
    with pytest.raises(BadInputError, match="corrupt or truncated"):
        read_image(tmp_path / "flip.png")


def test_corrupt_tile_fails_in_the_windowed_read(tmp_path):
    """A uint8 scene (no stretch read at open): the damaged tile fails in reader.read, as BadInputError."""
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", height=64, width=64, count=3, dtype="uint8", tiled=True,
                       blockxsize=32, blockysize=32, compress="deflate", **GEO) as dst:
        dst.write(np.moveaxis(_noise(64, 64), -1, 0))
    blob = bytearray(path.read_bytes())
    blob[-3000:-2000] = b"\xff" * 1000  # inside the last tiles' compressed data
    path.write_bytes(bytes(blob))
    with SceneReader(path) as reader:
        with pytest.raises(BadInputError, match="corrupt or truncated"):
            for tile in tile_grid(64, 64, 32, 0):
                reader.read(tile)


# --------------------------------------------------------------------------- pixel types
@pytest.mark.parametrize("dtype", ["complex64", "complex_int16", "complex128"])
def test_complex_pixels_are_refused_from_the_header(tmp_path, dtype, capsys):
    path = tmp_path / "slc.tif"
    with rasterio.open(path, "w", driver="GTiff", height=20, width=30, count=1, dtype=dtype, **GEO):
        pass  # the header is enough: nothing is decoded
    for read in (read_image, read_mask, SceneReader, plan_image):
        with pytest.raises(BadInputError, match=f"pixel type {dtype} is not supported.*uint8.*uint16.*float32"):
            read(path)
    _assert_cli_exit_2(path, capsys)


# --------------------------------------------------------------------------- decompression bombs
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(path, side=100_000):
    """A well-formed ~70-byte PNG whose header claims side x side RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit, colour type 2 (RGB)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                     + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))
    return path


def _sparse_tif(path, side=100_000):
    """A tiled GeoTIFF of side x side pixels with no block written (a few MiB of block tables)."""
    with rasterio.open(path, "w", driver="GTiff", height=side, width=side, count=3, dtype="uint8", tiled=True,
                       sparse_ok=True, **GEO):
        pass
    return path


@pytest.mark.parametrize("make", [_bomb_png, _sparse_tif], ids=["png", "sparse_tif"])
def test_bombs_are_refused_fast_and_info_describes_them(tmp_path, make, capsys):
    path = make(tmp_path / ("bomb.png" if make is _bomb_png else "bomb.tif"))
    assert path.stat().st_size < 4 * 2**20
    start = time.perf_counter()
    with pytest.raises(BadInputError, match="--tile") as exc:
        read_image(path)
    assert time.perf_counter() - start < 1.0
    assert "--bands" in str(exc.value) and "57,220 MiB" in str(exc.value) and "4,096 MiB" in str(exc.value)
    with pytest.raises(BadInputError, match="budget"):
        read_mask(path)
    plan = plan_image(path)
    assert (plan.width, plan.height, plan.bands) == (100_000, 100_000, (1, 2, 3))
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "100000x100000x3 uint8 from bands [1, 2, 3]" in out and "over the 4,096 MiB budget" in out


def test_decode_budget_estimate_and_override(tmp_path, monkeypatch):
    path = tmp_path / "pan.tif"
    with rasterio.open(path, "w", driver="GTiff", height=100, width=200, count=1, dtype="uint16", **GEO) as dst:
        dst.write(np.arange(20000, dtype=np.uint16).reshape(1, 100, 200))
    plan = plan_image(path)
    assert plan.decode_bytes == 100 * 200 * (2 + 3 + 8)  # band read + RGB out + float64 stretch temp
    assert max_decode_mb() == DEFAULT_MAX_DECODE_MB
    monkeypatch.setenv(MAX_DECODE_ENV, "0.1")  # 0.25 MiB needed
    with pytest.raises(BadInputError, match="over the 0.1 MiB budget"):
        read_image(path)
    monkeypatch.setenv(MAX_DECODE_ENV, "0")  # no limit
    assert max_decode_mb() is None and read_image(path).rgb.shape == (100, 200, 3)
    monkeypatch.setenv(MAX_DECODE_ENV, "lots")
    with pytest.raises(BadInputError, match=MAX_DECODE_ENV):
        read_image(path)


# --------------------------------------------------------------------------- shapes for the models
@pytest.mark.parametrize("h, w, resized", [
    (1024, 1024, (1024, 1024)), (96, 128, (768, 1024)), (3000, 4000, (768, 1024)),
    (16, 1024, (16, 1024)), (100, 6400, (16, 1024)), (6400, 100, (1024, 16)), (2, 2, (1024, 1024)),
])
def test_model_shape_known_answers(h, w, resized):
    assert check_model_shape(h, w) == resized


@pytest.mark.parametrize("h, w", [(2, 5000), (5000, 2), (15, 1024), (96, 6400), (0, 10), (10, 0)])
def test_model_shape_refuses_slivers(h, w):
    with pytest.raises(BadInputError, match="strip.png"):
        check_model_shape(h, w, path="strip.png")


def test_model_shape_options_and_sam_rounding():
    assert check_model_shape(2, 5000, min_side=0) == (0, 1024)  # what crashes SAM, if asked for
    assert check_model_shape(10, 100, long_side=448, min_side=16) == (45, 448)
    resize = pytest.importorskip("segment_anything.utils.transforms").ResizeLongestSide
    for h, w in [(96, 128), (100, 6400), (333, 1001), (1023, 17)]:
        assert check_model_shape(h, w) == resize.get_preprocess_shape(h, w, 1024)


def test_degenerate_scenes_tile_without_crashing(tmp_path):
    path = tmp_path / "line.tif"
    with rasterio.open(path, "w", driver="GTiff", height=2, width=3000, count=1, dtype="uint16", **GEO) as dst:
        dst.write(np.arange(6000, dtype=np.uint16).reshape(1, 2, 3000))
    assert needs_tiling(path) and needs_tiling(path, tile=4096)
    grid = tile_grid(2, 3000, 1024, 128)
    assert {(t.height, t.width) for t in grid} == {(2, 1024)} and len(grid) == 4
    with SceneReader(path) as reader:
        assert reader.read(grid[-1]).shape == (2, 1024, 3)
    with pytest.raises(BadInputError, match="short side"):
        check_model_shape(grid[0].height, grid[0].width, path=path)  # what a command must check per tile
    assert [(t.height, t.width) for t in tile_grid(10, 10, 4096, 128)] == [(10, 10)]  # tile > scene


# --------------------------------------------------------------------------- valid images read as before
def _tif(path, data, **extra):
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
                       dtype=data.dtype.name, **GEO, **extra) as dst:
        dst.write(data)
    return path


def test_16bit_three_bands_stretched_per_band(tmp_path):
    data = np.random.default_rng(3).integers(0, 4000, (3, 30, 40)).astype(np.uint16)
    image = read_image(_tif(tmp_path / "ms16.tif", data))
    expect = np.stack([stretch_to_uint8(b) for b in data], axis=-1)
    assert image.source_dtype == "uint16" and np.array_equal(image.rgb, expect)


def test_one_and_four_band_images(tmp_path):
    grey = read_image(_tif(tmp_path / "one.tif", np.full((1, 8, 9), 77, np.uint8)))
    assert grey.bands_used == (1,) and (grey.rgb == 77).all()
    four = np.stack([np.full((6, 7), v, np.uint8) for v in (1, 2, 3, 4)])
    path = _tif(tmp_path / "four.tif", four, photometric="MINISBLACK")
    with pytest.warns(BandChoiceWarning, match="4 bands") as record:
        image = read_image(path)
    assert record[0].filename == __file__  # the warning points at the caller of read_image
    assert image.rgb[0, 0].tolist() == [1, 2, 3]
    rgba = np.zeros((5, 6, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = (9, 8, 7), 200
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error", BandChoiceWarning)
        assert read_image(tmp_path / "rgba.png").rgb[0, 0].tolist() == [9, 8, 7]


def test_palette_png_uses_its_colours(tmp_path):
    img = Image.fromarray(np.array([[0, 1], [1, 2]], np.uint8), "P")
    img.putpalette([0, 0, 0, 250, 10, 20, 5, 200, 7] + [0] * (256 * 3 - 9))
    img.save(tmp_path / "pal.png")
    rgb = read_image(tmp_path / "pal.png").rgb
    assert rgb.tolist() == [[[0, 0, 0], [250, 10, 20]], [[250, 10, 20], [5, 200, 7]]]


def test_uint16_palette_beyond_255(tmp_path):
    """A UInt16 band may carry a colour table with indices over 255 (it used to be an IndexError)."""
    path = tmp_path / "pal16.tif"
    with rasterio.open(path, "w", driver="GTiff", height=4, width=4, count=1, dtype="uint16", **GEO) as dst:
        dst.write(np.array([[[300, 0, 300, 0]] * 4], np.uint16))
        dst.write_colormap(1, {0: (0, 0, 0, 255), 300: (1, 2, 3, 255)})
    assert read_image(path).rgb[0, :2].tolist() == [[1, 2, 3], [0, 0, 0]]
    with SceneReader(path) as reader:
        assert reader.read(tile_grid(4, 4)[0])[0, :2].tolist() == [[1, 2, 3], [0, 0, 0]]


@pytest.mark.parametrize("bands", [None, (2,), (3, 2, 1)])
def test_plan_matches_what_read_image_does(tmp_path, bands, capsys):
    data = np.stack([np.full((12, 20), v, np.uint16) for v in (100, 200, 300, 400, 500)])
    path = _tif(tmp_path / "five.tif", data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BandChoiceWarning)
        plan, image = plan_image(path, bands), read_image(path, bands)
    assert plan.bands == image.bands_used and (plan.height, plan.width) == image.rgb.shape[:2]
    assert plan.dtype == image.source_dtype
    with warnings.catch_warnings():
        warnings.simplefilter("error", BandChoiceWarning)  # info says it on its line instead
        assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "20x12x3 uint8 from bands [1, 2, 3] (the first three of 5; choose others with --bands)" in out
