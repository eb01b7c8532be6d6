"""Read any raster the suite meets (PNG, JPEG, TIFF, GeoTIFF) as uint8 RGB plus georeferencing,
and write label rasters back (PNG, or GeoTIFF carrying the input's CRS and transform).

SAM and CLIP want 8-bit RGB. So grayscale is replicated to 3 channels, an alpha band is
dropped, 16-bit and float data are stretched per band between the 2nd and 98th percentiles,
and images with more than 3 bands need a band choice (default: the first three, with a warning).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import BadInputError

MIN_SIDE = 2  # a 1-pixel image is an error, not a segmentation input


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


def _open(path: str | Path):
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
            return rasterio.open(path)
    except RasterioIOError as exc:
        raise BadInputError(f"{path} is not a readable image ({str(exc).splitlines()[0][:160]})") from None


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
    """Read ``path`` as uint8 RGB. ``bands``: 1-based band numbers (one or three) to use."""
    from rasterio.enums import ColorInterp

    with _open(path) as src:
        if src.width < MIN_SIDE or src.height < MIN_SIDE:
            raise BadInputError(f"{path} is {src.width}x{src.height} pixels: too small to segment")
        count = src.count
        interp = list(src.colorinterp)
        if bands is not None:
            bands = tuple(int(b) for b in bands)
            if len(bands) not in (1, 3) or any(b < 1 or b > count for b in bands):
                raise BadInputError(f"{path} has bands 1..{count}; choose one or three of them, got {list(bands)}")
        else:
            colour = [i + 1 for i, ci in enumerate(interp) if ci != ColorInterp.alpha]
            if count == 1 or len(colour) == 1:
                bands = (colour[0] if colour else 1,)
            elif len(colour) == 3:
                bands = tuple(colour)
            else:
                bands = tuple(colour[:3])
                warnings.warn(
                    f"{Path(path).name} has {count} bands; using bands {list(bands)} as RGB "
                    "(choose others with bands=... / --bands)", BandChoiceWarning, stacklevel=2)
        data = src.read(list(bands))
        colormap = None
        if len(bands) == 1 and interp[bands[0] - 1] == ColorInterp.palette:
            try:
                colormap = src.colormap(bands[0])
            except ValueError:
                colormap = None
        valid = None
        if src.nodata is not None:
            valid = data[0] != src.nodata
        image = RasterImage(
            rgb=np.empty(0), path=str(path), crs=src.crs, transform=src.transform if src.crs else None,
            band_count=count, source_dtype=str(src.dtypes[0]), bands_used=bands, tags=src.tags(),
        )
    if colormap is not None:
        lut = np.zeros((256, 3), np.uint8)
        for idx, rgba in colormap.items():
            lut[idx] = rgba[:3]
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
    """Read a label raster (class indices or 0/255) as a 2-D array of its raw values."""
    with _open(path) as src:
        if src.width < 1 or src.height < 1:
            raise BadInputError(f"{path} is empty")
        return src.read(1)


def describe(path: str | Path) -> dict:
    """Facts about a raster without decoding it to RGB: size, bands, dtype, CRS, transform."""
    with _open(path) as src:
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
