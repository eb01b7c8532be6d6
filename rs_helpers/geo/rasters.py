"""Read any raster the suite meets (PNG, JPEG, TIFF, GeoTIFF) as uint8 RGB plus georeferencing,
and write label rasters back (PNG, or GeoTIFF carrying the input's CRS and transform).

SAM and CLIP want 8-bit RGB. So grayscale is replicated to 3 channels, an alpha band is
dropped, 16-bit and float data are stretched per band between the 2nd and 98th percentiles,
and images with more than 3 bands need a band choice (default: the first three, with a warning).

Bad files are refused with :class:`~rs_helpers.errors.BadInputError` before or instead of a
crash: truncated PNG/JPEG/TIFF files (checked from the file's structure when it is opened,
because GDAL decodes a truncated PNG into garbage without a word), pixels that fail to decode,
complex pixel types, and images whose whole decode would not fit the memory budget
(:data:`DEFAULT_MAX_DECODE_MB`, checked from the header). :func:`plan_image` answers "what would
:func:`read_image` do" from the header alone; :func:`check_model_shape` tells whether a shape
survives SAM's resize.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rs_helpers.errors import BadInputError
from rs_helpers.geo.integrity import check_complete

MIN_SIDE = 2  # a 1-pixel image is an error, not a segmentation input
MODEL_LONG_SIDE = 1024  # SAM resizes every input so that its long side is 1024 px
MIN_MODEL_SIDE = 16  # the shortest side allowed after that resize: see check_model_shape
DEFAULT_MAX_DECODE_MB = 4096  # estimated memory a whole-image decode may take; $RS_HELPERS_MAX_DECODE_MB
MAX_DECODE_ENV = "RS_HELPERS_MAX_DECODE_MB"
# Pixel types read_image can stretch to uint8 (GDAL's real types); complex data is refused.
REAL_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")


class BandChoiceWarning(UserWarning):
    """More bands than RGB and no explicit choice: the first three were used."""


@dataclass
class RasterImage:
    """An image ready for SAM and CLIP, with what is needed to write georeferenced results."""

    rgb: np.ndarray  # H x W x 3 uint8
    path: str = ""
    crs: Any = None  # rasterio CRS or None
    transform: Any = None  # affine.Affine or None
    band_count: int = 3
    source_dtype: str = "uint8"
    bands_used: tuple[int, ...] = (1, 2, 3)
    tags: dict = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def is_georeferenced(self) -> bool:
        return self.crs is not None


# --------------------------------------------------------------------------- opening and integrity
def _open(path: str | Path):
    """Open ``path`` with rasterio, refusing missing, empty, unreadable and truncated files."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path}: no such file")
    if path.is_dir():
        raise BadInputError(f"{path} is a folder, not an image")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except RasterioIOError as exc:
        raise BadInputError(f"{path} is not a readable image ({str(exc).splitlines()[0][:160]})") from None
    try:
        check_complete(path, src.driver)
    except BaseException:
        src.close()
        raise
    return src


def read_pixels(src, path: str | Path, indexes: Sequence[int] | int = 1, **kwargs) -> np.ndarray:
    """``src.read(indexes, **kwargs)`` with a decode failure turned into :class:`BadInputError`."""
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import RasterioError, RasterioIOError

    try:
        return src.read(indexes, **kwargs)
    except (RasterioError, RasterioIOError, CPLE_BaseError) as exc:  # RasterioIOError: its own class before 1.4
        cause = exc.__cause__ or exc
        detail = str(cause).splitlines()[0][:160] if str(cause) else type(cause).__name__
        raise BadInputError(f"{path}: the pixels cannot be decoded (corrupt or truncated: {detail}); "
                            "re-download or re-export the file") from None


# --------------------------------------------------------------------------- header-only checks
def check_dtypes(dtypes: Sequence[str], path: str | Path = "") -> None:
    """Refuse pixel types that cannot be stretched to uint8 (complex ones), naming the supported list."""
    for dtype in dtypes:
        if str(dtype) not in REAL_DTYPES:
            raise BadInputError(
                f"{path or 'the image'}: pixel type {dtype} is not supported; use one of "
                f"{', '.join(REAL_DTYPES)} (for complex data save e.g. the amplitude as float32)")


def max_decode_mb() -> float | None:
    """The decode memory budget in MiB: ``$RS_HELPERS_MAX_DECODE_MB`` or :data:`DEFAULT_MAX_DECODE_MB`.
    ``0`` turns the check off (None)."""
    text = os.environ.get(MAX_DECODE_ENV, "").strip()
    if not text:
        return float(DEFAULT_MAX_DECODE_MB)
    try:
        value = float(text)
    except ValueError:
        raise BadInputError(f"{MAX_DECODE_ENV}={text!r}: give a number of MiB (0 = no limit)") from None
    return None if value <= 0 else value


def mib(value: float) -> str:
    """``value`` MiB as text: ``< 0.1 MiB``, ``0.4 MiB``, ``57,220 MiB``."""
    if value < 0.1:
        return "< 0.1 MiB"
    return f"{value:,.1f} MiB" if value < 10 else f"{value:,.0f} MiB"


def check_model_shape(height: int, width: int, path: str | Path = "", long_side: int = MODEL_LONG_SIDE,
                      min_side: int = MIN_MODEL_SIDE) -> tuple[int, int]:
    """The shape ``(h, w)`` an image of ``height`` x ``width`` gets when its long side is resized to
    ``long_side`` (rounded as SAM's ``ResizeLongestSide``), or :class:`BadInputError` when its short
    side would be below ``min_side``.

    Why 16 px: SAM's encoder sees the resized image in 16 px patches, and its 256 x 256 low-resolution
    masks have one row per 4 px, so a short side under 16 px is less than one patch of image and a
    few mask rows (at 0 px SAM crashes: "height and width must be > 0"). CLIP never crashes (its
    224 px sliding windows are padded), but it works at a long side of 448, where 16 px of SAM's frame
    are already only 7 px, under one CLIP patch. So the aspect ratio must stay within
    ``long_side / min_side`` (64:1 by default). Pure: call it on an untiled image's size, or on a
    tiled scene's tile size.
    """
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise BadInputError(f"{path or 'the image'} is {width} x {height} px: nothing to segment")
    scale = long_side / max(height, width)
    h, w = int(height * scale + 0.5), int(width * scale + 0.5)
    if min(h, w) < min_side:
        ratio = max(1, long_side // min_side)
        tile = ratio * min(height, width)
        raise BadInputError(
            f"{path or 'the image'} is {width} x {height} px: resized to a long side of {long_side} px its short "
            f"side would be {min(h, w)} px, under the {min_side} px the models need; crop it to an aspect ratio "
            f"of at most {ratio}:1, or segment it in tiles of at most {tile} px "
            f"(rs-seg ovss --tile {tile} --overlap {tile // 8})")
    return h, w


def choose_bands(src, bands: Sequence[int] | None, name: str = "", stacklevel: int = 2) -> tuple[int, ...]:
    """1-based bands to read from the open ``src`` (header only): ``bands`` checked, or the colour
    bands (alpha dropped; the first three with a :class:`BandChoiceWarning` when there are more).
    ``stacklevel`` is counted from the caller, as for :func:`warnings.warn`."""
    from rasterio.enums import ColorInterp

    count = src.count
    if bands is not None:
        bands = tuple(int(b) for b in bands)
        if len(bands) not in (1, 3) or any(b < 1 or b > count for b in bands):
            raise BadInputError(f"{name} has bands 1..{count}; choose one or three of them, got {list(bands)}")
        return bands
    colour = [i + 1 for i, ci in enumerate(src.colorinterp) if ci != ColorInterp.alpha]
    if count == 1 or len(colour) == 1:
        return (colour[0] if colour else 1,)
    if len(colour) == 3:
        return tuple(colour)
    warnings.warn(f"{name} has {count} bands; using bands {colour[:3]} as RGB (choose others with "
                  "bands=... / --bands)", BandChoiceWarning, stacklevel=stacklevel + 1)
    return tuple(colour[:3])


@dataclass(frozen=True)
class ReadPlan:
    """What :func:`read_image` will do with a raster, known from its header alone."""

    path: str
    width: int
    height: int
    band_count: int
    bands: tuple[int, ...]  # 1-based bands that become RGB (one band is replicated)
    dtype: str  # the stored pixel type of those bands
    palette: bool  # one palette band: its colour table gives the RGB
    default_choice: bool = False  # True when the first three of more than three bands were taken

    @property
    def decode_bytes(self) -> int:
        """Estimated peak memory of a whole-image decode: the bands read, the RGB output and, for
        data that is stretched (not uint8, not a palette), a float64 temporary."""
        per_pixel = len(self.bands) * np.dtype(self.dtype).itemsize + 3
        if self.dtype != "uint8" and not self.palette:
            per_pixel += 8
        return self.width * self.height * per_pixel

    @property
    def decode_mb(self) -> float:
        return self.decode_bytes / 2**20

    def check_budget(self, budget_mb: float | None = None) -> None:
        """:class:`BadInputError` when :attr:`decode_mb` exceeds ``budget_mb`` (default :func:`max_decode_mb`)."""
        budget_mb = max_decode_mb() if budget_mb is None else budget_mb
        if budget_mb is not None and self.decode_mb > budget_mb:
            raise BadInputError(
                f"{self.path} is {self.width} x {self.height} px x {len(self.bands)} {self.dtype} band(s): decoding "
                f"it whole needs about {mib(self.decode_mb)}, over the {mib(budget_mb)} budget; segment it "
                f"tile by tile (rs-seg ovss --tile 1024 reads a scene window by window), read fewer bands (--bands 1), or raise "
                f"{MAX_DECODE_ENV}")


def plan_read(src, path: str | Path, bands: Sequence[int] | None = None, stacklevel: int = 2) -> ReadPlan:
    """The :class:`ReadPlan` of the open ``src``: size, band choice and pixel type checked, no pixels read."""
    from rasterio.enums import ColorInterp

    if src.width < MIN_SIDE or src.height < MIN_SIDE:
        raise BadInputError(f"{path} is {src.width}x{src.height} pixels: too small to segment")
    chosen = choose_bands(src, bands, str(path) if bands is not None else Path(path).name, stacklevel + 1)
    dtypes = [str(src.dtypes[b - 1]) for b in chosen]
    check_dtypes(dtypes, path)
    if len(set(dtypes)) > 1:
        raise BadInputError(f"{path}: bands {list(chosen)} have different pixel types {dtypes}; "
                            "choose bands of one type with --bands")
    palette = len(chosen) == 1 and src.colorinterp[chosen[0] - 1] == ColorInterp.palette \
        and dtypes[0] in ("uint8", "uint16")
    colour = sum(ci != ColorInterp.alpha for ci in src.colorinterp)
    return ReadPlan(path=str(path), width=src.width, height=src.height, band_count=src.count, bands=chosen,
                    dtype=dtypes[0], palette=palette, default_choice=bands is None and colour > 3)


def plan_image(path: str | Path, bands: Sequence[int] | None = None) -> ReadPlan:
    """What :func:`read_image` would read from ``path`` (header only: fast on any size).
    Raises what :func:`read_image` raises before decoding, except the memory budget
    (see :meth:`ReadPlan.check_budget`)."""
    with _open(path) as src:
        return plan_read(src, path, bands, stacklevel=2)


def palette_lut(src, band: int, dtype: str) -> np.ndarray | None:
    """The colour table of ``band`` as an index -> RGB array (None without one)."""
    try:
        colormap = src.colormap(band)
    except ValueError:
        return None
    lut = np.zeros((65536 if dtype == "uint16" else 256, 3), np.uint8)
    for idx, rgba in colormap.items():
        if 0 <= idx < len(lut):
            lut[idx] = rgba[:3]
    return lut


# --------------------------------------------------------------------------- reading
def stretch_to_uint8(band: np.ndarray, low: float = 2.0, high: float = 98.0,
                     valid: np.ndarray | None = None) -> np.ndarray:
    """Map the ``low``..``high`` percentile range of ``band`` linearly onto 0..255."""
    values = band[valid] if valid is not None else band.ravel()
    values = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if values.size == 0:
        return np.zeros(band.shape, np.uint8)
    lo, hi = np.percentile(values, [low, high])
    if hi <= lo:
        hi = lo + 1
    out = (band.astype(np.float64) - lo) / (hi - lo)
    return (np.clip(np.nan_to_num(out), 0, 1) * 255 + 0.5).astype(np.uint8)


def read_image(path: str | Path, bands: Sequence[int] | None = None) -> RasterImage:
    """Read ``path`` as uint8 RGB. ``bands``: 1-based band numbers (one or three) to use.

    Everything that can be refused from the header is refused before decoding (size, bands,
    pixel type, the memory budget); a decode failure is a :class:`BadInputError` too."""
    with _open(path) as src:
        plan = plan_read(src, path, bands, stacklevel=2)
        plan.check_budget()
        lut = palette_lut(src, plan.bands[0], plan.dtype) if plan.palette else None
        data = read_pixels(src, path, list(plan.bands))
        valid = None
        if src.nodata is not None:
            valid = data[0] != src.nodata
        image = RasterImage(
            rgb=np.empty(0), path=str(path), crs=src.crs, transform=src.transform if src.crs else None,
            band_count=src.count, source_dtype=str(src.dtypes[0]), bands_used=plan.bands, tags=src.tags(),
        )
    if lut is not None:
        rgb = lut[data[0]]
    else:
        if data.dtype != np.uint8:
            data = np.stack([stretch_to_uint8(b, valid=valid) for b in data])
        if data.shape[0] == 1:
            data = np.repeat(data, 3, axis=0)
        rgb = np.ascontiguousarray(np.moveaxis(data, 0, -1))
    image.rgb = rgb
    return image


def read_mask(path: str | Path) -> np.ndarray:
    """Read a label raster (class indices or 0/255) as a 2-D array of its raw values (band 1).
    Pixel type and the memory budget are checked from the header first."""
    with _open(path) as src:
        if src.width < 1 or src.height < 1:
            raise BadInputError(f"{path} is empty")
        dtype = str(src.dtypes[0])
        check_dtypes([dtype], path)
        budget = max_decode_mb()
        need = src.width * src.height * np.dtype(dtype).itemsize / 2**20
        if budget is not None and need > budget:
            raise BadInputError(f"{path}: a {src.width} x {src.height} {dtype} label raster needs about {mib(need)} "
                                f"to read, over the {mib(budget)} budget; crop it (with its image), "
                                f"or raise {MAX_DECODE_ENV}")
        return read_pixels(src, path, 1)


def _facts(src, path: str | Path) -> dict:
    return {
        "path": str(path),
        "driver": src.driver,
        "width": src.width,
        "height": src.height,
        "bands": src.count,
        "dtype": str(src.dtypes[0]),
        "colorinterp": [ci.name for ci in src.colorinterp],
        "crs": src.crs.to_string() if src.crs else None,
        "transform": tuple(src.transform)[:6] if src.crs else None,
        "nodata": src.nodata,
    }


def describe(path: str | Path) -> dict:
    """Facts about a raster without decoding it to RGB: size, bands, dtype, CRS, transform."""
    with _open(path) as src:
        return _facts(src, path)


def write_label_raster(path: str | Path, labels: np.ndarray, like: RasterImage | None = None,
                       palette: Sequence[Sequence[int]] | None = None, tags: dict | None = None) -> Path:
    """Write a 2-D uint8 label array as PNG (``.png``) or GeoTIFF (``.tif``/``.tiff``).

    A GeoTIFF takes CRS and transform from ``like`` when it is georeferenced. ``palette``
    (a list of RGB triples, index = label) is embedded as a colour table.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise BadInputError(f"labels must be 2-D, got shape {labels.shape}")
    if labels.dtype != np.uint8:
        if labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
            raise BadInputError("labels must fit in 0..255 to be written as uint8")
        labels = labels.astype(np.uint8)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        profile = dict(driver="GTiff", compress="deflate")
    elif suffix == ".png":
        profile = dict(driver="PNG")
    else:
        raise BadInputError(f"{path}: write .png, .tif or .tiff")
    profile.update(height=labels.shape[0], width=labels.shape[1], count=1, dtype="uint8")
    if like is not None and like.crs is not None and suffix != ".png":
        profile.update(crs=like.crs, transform=like.transform)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(labels, 1)
            if palette is not None:
                dst.write_colormap(1, {i: tuple(int(v) for v in rgb[:3]) + (255,) for i, rgb in enumerate(palette)})
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items()})
    return path
