"""Tile grids (coverage, cores, margins), scene-wide stretch and windowed reads."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import rasterio
from hypothesis import given, settings
from hypothesis import strategies as st
from affine import Affine

from rs_helpers.errors import BadInputError
from rs_helpers.geo.rasters import BandChoiceWarning, read_image
from rs_helpers.geo.tiling import SceneReader, Stretch, Tile, scene_stretch, tile_grid, tile_starts


def write_tif(path, data, crs="EPSG:32616", nodata=None, **extra):
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = dict(driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
                   dtype=data.dtype.name, nodata=nodata, **extra)
    if crs:
        profile.update(crs=crs, transform=Affine(0.5, 0, 733601.0, 0, -0.5, 3725139.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
    return path


# --------------------------------------------------------------------------- grid
def test_tile_starts_known_cases():
    assert tile_starts(100, 128, 16) == [0]  # smaller than a tile: one tile
    assert tile_starts(128, 128, 16) == [0]
    assert tile_starts(256, 128, 0) == [0, 128]
    assert tile_starts(300, 128, 32) == [0, 96, 172]  # last tile shifted back inside
    assert tile_starts(8000, 2048, 128) == [0, 1920, 3840, 5760, 5952]
    assert tile_starts(900, 512, 128) == [0, 384, 388]


@pytest.mark.parametrize("tile, overlap", [(0, 0), (64, 64), (64, 100), (64, -1)])
def test_bad_tile_settings(tile, overlap):
    with pytest.raises(BadInputError):
        tile_grid(100, 100, tile, overlap)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 700), w=st.integers(1, 700), tile=st.integers(8, 300), frac=st.floats(0, 0.9))
def test_cores_partition_the_scene_and_keep_a_margin(h, w, tile, frac):
    overlap = int(tile * frac)
    grid = tile_grid(h, w, tile, overlap)
    owner = np.zeros((h, w), int)
    for starts, length in ((tile_starts(h, tile, overlap), h), (tile_starts(w, tile, overlap), w)):
        steps = np.diff(starts)
        assert (steps <= tile - overlap).all() and (steps > 0).all()  # the overlap is at least `overlap`
        assert len(starts) == 1 or len(starts) == math.ceil((length - overlap) / (tile - overlap))
    for t in grid:
        assert 0 <= t.row_off and t.row_off + t.height <= h and 0 <= t.col_off and t.col_off + t.width <= w
        assert t.height == min(tile, h) and t.width == min(tile, w)
        r0, c0, r1, c1 = t.core
        assert t.row_off <= r0 < r1 <= t.row_off + t.height and t.col_off <= c0 < c1 <= t.col_off + t.width
        owner[r0:r1, c0:c1] += 1
        # a core pixel is at least overlap // 2 from its tile's border, unless that border is the scene's
        for lo, hi, off, size, length in ((r0, r1, t.row_off, t.height, h), (c0, c1, t.col_off, t.width, w)):
            if off > 0:
                assert lo - off >= overlap // 2
            if off + size < length:
                assert off + size - hi >= overlap // 2
    assert (owner == 1).all()  # every pixel is decided by exactly one tile


def test_core_is_the_nearest_centre():
    grid = tile_grid(300, 260, 128, 32)
    rng = np.random.default_rng(0)
    for r, c in rng.integers(0, [300, 260], size=(200, 2)):
        dist = [(r + 0.5 - t.centre[0]) ** 2 + (c + 0.5 - t.centre[1]) ** 2 for t in grid]
        owner = [t for t in grid if t.core[0] <= r < t.core[2] and t.core[1] <= c < t.core[3]][0]
        assert dist[grid.index(owner)] <= min(dist) + 1.0  # ties at the midpoint go either way


def test_tile_windows_and_slices():
    t = Tile(10, 20, 30, 40, (15, 25, 35, 55))
    assert (t.window.row_off, t.window.col_off, t.window.height, t.window.width) == (10, 20, 30, 40)
    assert (t.core_window.row_off, t.core_window.col_off, t.core_window.height, t.core_window.width) == (15, 25, 20, 30)
    assert t.core_in_tile == (slice(5, 25), slice(5, 35))


# --------------------------------------------------------------------------- reading
def test_stretch_is_computed_once_per_scene(tmp_path):
    """A dark tile and a bright tile: the same raw value gets the same grey in both."""
    data = np.zeros((64, 128), np.uint16)
    data[:, :64] = np.linspace(100, 400, 64, dtype=np.uint16)[None, :]
    data[:, 64:] = np.linspace(400, 4000, 64, dtype=np.uint16)[None, :]
    path = write_tif(tmp_path / "scene.tif", data)
    with SceneReader(path) as reader:
        left, right = tile_grid(64, 128, 64, 0)
        a, b = reader.read(left), reader.read(right)
        full = reader.to_rgb(reader.src.read([1]))
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3)
    assert a[0, -1, 0] <= b[0, 0, 0]  # 400 maps to one value, not to 255 in one tile and 0 in the next
    assert np.array_equal(np.concatenate([a, b], axis=1), full)
    # for scenes up to the overview size the stretch equals read_image's
    assert np.array_equal(full, read_image(path).rgb)


def test_stretch_from_a_decimated_read_is_close(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 10000, (3, 300, 300)).astype(np.uint16)
    path = write_tif(tmp_path / "s.tif", data)
    with rasterio.open(path) as src:
        exact = scene_stretch(src, (1, 2, 3))
        coarse = scene_stretch(src, (1, 2, 3), overview_side=100)
    assert np.allclose(exact.low, coarse.low, rtol=0.1) and np.allclose(exact.high, coarse.high, rtol=0.05)


def test_stretch_skips_nodata_and_uint8(tmp_path):
    data = np.full((50, 50), 0, np.uint16)
    data[10:40, 10:40] = np.arange(900, dtype=np.uint16).reshape(30, 30) + 1000
    with rasterio.open(write_tif(tmp_path / "n.tif", data, nodata=0)) as src:
        s = scene_stretch(src, (1,))
    assert s.low[0] >= 1000  # nodata zeros are left out
    with rasterio.open(write_tif(tmp_path / "u8.tif", np.zeros((3, 8, 8), np.uint8))) as src:
        assert scene_stretch(src, (1, 2, 3)) is None
    out = Stretch((0.0,), (10.0,)).apply(np.array([[[-5, 0, 5, 10, 20]]], np.float32))
    assert out.tolist() == [[[0, 0, 128, 255, 255]]]


def test_band_choice(tmp_path):
    data = np.stack([np.full((20, 30), v, np.uint8) for v in (10, 20, 30, 40)])
    path = write_tif(tmp_path / "four.tif", data, photometric="MINISBLACK")
    with pytest.warns(BandChoiceWarning):
        with SceneReader(path) as reader:
            assert reader.bands == (1, 2, 3)
    with SceneReader(path, bands=(4, 3, 2)) as reader:
        rgb = reader.read(tile_grid(20, 30, 16, 4)[0])
        assert rgb[0, 0].tolist() == [40, 30, 20]
    with SceneReader(path, bands=(2,)) as reader:  # one band becomes grey RGB
        assert reader.read(tile_grid(20, 30, 64, 0)[0])[0, 0].tolist() == [20, 20, 20]
    for bad in [(5,), (1, 2), (0, 1, 2)]:
        with pytest.raises(BadInputError):
            SceneReader(path, bands=bad)


def test_reader_georeferencing_and_overview(tmp_path):
    path = write_tif(tmp_path / "g.tif", np.zeros((3, 40, 60), np.uint8))
    with SceneReader(path) as reader:
        assert (reader.height, reader.width) == (40, 60)
        assert reader.crs.to_epsg() == 32616 and reader.transform.a == 0.5
        assert reader.overview(30).shape == (20, 30, 3)
    plain = write_tif(tmp_path / "plain.tif", np.zeros((3, 40, 60), np.uint8), crs=None)
    with SceneReader(plain) as reader:
        assert reader.crs is None and reader.transform is None


def test_palette_band_uses_its_colour_table(tmp_path):
    path = tmp_path / "pal.tif"
    with rasterio.open(path, "w", driver="GTiff", height=8, width=8, count=1, dtype="uint8", crs="EPSG:32616",
                       transform=Affine(0.5, 0, 733601.0, 0, -0.5, 3725139.0)) as dst:
        dst.write(np.full((1, 8, 8), 2, np.uint8))
        dst.write_colormap(1, {0: (0, 0, 0, 255), 2: (10, 200, 30, 255)})
    with SceneReader(path) as reader:
        assert reader.read(tile_grid(8, 8)[0])[3, 3].tolist() == [10, 200, 30]


def test_bad_files(tmp_path):
    with pytest.raises(BadInputError):
        SceneReader(tmp_path / "missing.tif")
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(BadInputError):
        SceneReader(tmp_path / "empty.tif")
    with pytest.raises(BadInputError):
        SceneReader(write_tif(tmp_path / "tiny.tif", np.zeros((1, 1), np.uint8)))
