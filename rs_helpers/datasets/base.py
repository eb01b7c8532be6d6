"""What every benchmark loader shares: label decoding, samples, root finding and layout errors.

A loader is a small class (one file per dataset or family, torchgeo style) that declares the
evaluation protocol of ``method.md`` (class names with synonyms, split, crops, the reported
numbers) and finds its samples under a root folder in the dataset's usual published layout.
Samples are cheap records; pixels are read only by ``sample.load()``, which returns the image
as uint8 RGB (``RasterImage``) and the labels as uint8 class indices with ``IGNORE`` (255).
"""
from __future__ import annotations

import codecs
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from ..errors import BadInputError
from ..images import RasterImage, read_image

IGNORE = 255
MAX_JSON_DEPTH = 64  # deeper nesting in a line of a data file is refused (no record needs it)
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
ROOT_ENV = "RS_HELPERS_BENCHMARKS"  # a folder holding each dataset under its usual folder name
Box = tuple  # (x0, y0, x1, y1), x1/y1 exclusive


@dataclass(frozen=True)
class LabelCodec:
    """How the raw values of a label file become class indices.

    ``values``: raw index -> class (unlisted values are ignored); ``colours``: RGB -> class
    for colour-coded label images (unlisted colours -> ``unknown``). ``threshold`` makes a
    binary label: raw >= threshold is foreground; ``"auto"`` reads 0/255 masks (threshold 128)
    and 0/1 masks (threshold 1) alike, telling them apart by the maximum value.
    """

    values: Mapping[int, int] | None = None
    colours: Mapping[tuple, int] | None = None
    threshold: int | str | None = None
    unknown: int = IGNORE

    def decode(self, raw: np.ndarray, colormap: dict | None = None) -> np.ndarray:
        raw = np.asarray(raw)
        if raw.ndim == 2 and colormap and self.values is None and self.colours:
            lut = np.zeros((256, 3), np.uint8)
            for idx, rgba in colormap.items():
                lut[idx] = rgba[:3]
            raw = lut[raw]
        if raw.ndim == 3:
            if self.colours and self.threshold is None:
                return self._decode_colours(raw)
            if self.threshold is None and not np.array_equal(raw[..., 0], raw[..., -1]):
                raise BadInputError("this label image is in colour, but the dataset expects class-index labels")
            raw = raw[..., 0] if self.threshold is None else raw.mean(axis=2)
        if self.threshold is not None:
            thr = self.threshold
            if thr == "auto":
                thr = 1 if raw.size and raw.max() <= 1 else 128
            return (raw >= thr).astype(np.uint8)
        if self.values is None:
            raise BadInputError("this label image holds class indices, but the dataset expects colour labels")
        raw = raw.astype(np.int64)
        if raw.size and raw.min() < 0:
            raise BadInputError("negative values in a label image")
        lut = np.full(max(256, int(raw.max(initial=0)) + 1), IGNORE, np.uint8)
        for value, index in self.values.items():
            lut[value] = index
        return lut[raw]

    def _decode_colours(self, rgb: np.ndarray) -> np.ndarray:
        rgb = rgb[..., :3].astype(np.int32)
        key = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        out = np.full(key.shape, self.unknown, np.uint8)
        for (r, g, b), index in self.colours.items():
            out[key == ((r << 16) | (g << 8) | b)] = index
        return out


# --------------------------------------------------------------------------- JSON read defensively
def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _too_deep(value, limit: int) -> bool:
    """Whether ``value`` nests lists / dicts more than ``limit`` deep (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def parse_json(text: str, where: str, max_depth: int | None = None):
    """``json.loads`` for data files: refuses ``NaN`` / ``Infinity`` and numbers beyond a float
    (Python's json accepts them; nothing downstream can use them), nesting that would exhaust
    the stack, and more than ``max_depth`` levels. Every failure is a :class:`BadInputError`
    that starts with ``where`` (the file, and the line for JSON lines)."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise BadInputError(f"{where}: not JSON (nested too deeply to read)") from None
    except ValueError as exc:  # json.JSONDecodeError, non-finite numbers, ints of > 4300 digits
        raise BadInputError(f"{where}: not JSON ({str(exc)[:200]})") from None
    if max_depth is not None and _too_deep(value, max_depth):
        raise BadInputError(f"{where}: not JSON this reader accepts (nested more than {max_depth} levels)")
    return value


def read_bytes(path: str | Path, what: str = "file") -> bytes:
    """The bytes of ``path``; a missing, unreadable or folder path is a :class:`BadInputError`."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise BadInputError(f"{path} is a folder, not a {what}") from None
    except (OSError, ValueError) as exc:  # permissions, a NUL in the name, ...
        raise BadInputError(f"{path}: cannot read this {what} ({getattr(exc, 'strerror', None) or exc})") from None


def raw_lines(data: bytes):
    """``(line number, bytes)`` of a file's contents: a UTF-8 BOM is dropped, lines end at
    ``\n`` or ``\r\n`` only (JSON strings may hold U+2028, which ``str.splitlines`` splits at)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    for number, raw in enumerate(data.split(b"\n"), start=1):
        yield number, (raw[:-1] if raw.endswith(b"\r") else raw)


def not_utf8(raw: bytes) -> str | None:
    """Why ``raw`` is not UTF-8 text (the byte and its column), or None when it is."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1})"
    return None


def text_lines(path: str | Path, what: str = "file"):
    """``(line number, text)`` for every line of a UTF-8 text file (see :func:`raw_lines`).
    A line that is not UTF-8 is a :class:`BadInputError` naming the file, the line and the byte."""
    for number, raw in raw_lines(read_bytes(path, what)):
        problem = not_utf8(raw)
        if problem:
            raise BadInputError(f"{path}: line {number}: {problem}")
        yield number, raw.decode("utf-8")


def read_text_file(path: str | Path, what: str = "file") -> str:
    """The whole of a UTF-8 text file (see :func:`text_lines` for the errors)."""
    return "\n".join(text for _, text in text_lines(path, what))


def read_json_file(path: str | Path, what: str = "JSON file"):
    """A whole JSON file, read as :func:`parse_json` reads (``what`` names it in errors)."""
    return parse_json(read_text_file(path, what), str(path))


def _unreadable(path, exc: BaseException) -> BadInputError:
    reason = str(exc).splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
    return BadInputError(f"{path} is not a readable raster ({reason})")


def _read_raw(path: Path, window: Box | None, bands: Sequence[int] | None = None):
    """Raw pixels (bands x H x W, clipped to the file), the colour table and the file's size.
    A missing, unreadable, truncated or complex-valued file is a :class:`BadInputError`."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    from rasterio.windows import Window

    from ..images import check_complete, check_dtypes

    if not Path(path).is_file():
        raise BadInputError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                check_dtypes(src.dtypes, path)  # the checks read_image makes: real pixels,
                check_complete(path, src.driver)  # and a file that does not end early
                win = None
                if window is not None:
                    x0, y0, x1, y1 = window
                    win = Window(x0, y0, max(0, min(x1, src.width) - x0), max(0, min(y1, src.height) - y0))
                indexes = list(bands) if bands else list(range(1, min(src.count, 3) + 1))
                data = src.read(indexes, window=win)
                colormap = None
                if src.count == 1:
                    try:
                        colormap = src.colormap(1)
                    except ValueError:
                        colormap = None
                transform = src.window_transform(win) if (win is not None and src.crs) else src.transform
                return data, colormap, src.crs, (transform if src.crs else None)
    except (RasterioError, OSError) as exc:
        raise _unreadable(path, exc) from None


def _pad(array: np.ndarray, height: int, width: int, value: int) -> np.ndarray:
    """Pad at the bottom and right (as mmcv.impad does for the mmseg crop converters)."""
    ph, pw = height - array.shape[0], width - array.shape[1]
    if ph <= 0 and pw <= 0:
        return array
    pad = [(0, max(ph, 0)), (0, max(pw, 0))] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, pad, constant_values=value)


@dataclass
class SegSample:
    """One evaluation image: paths, how to decode its labels, and an optional crop window.

    ``window`` (x0, y0, x1, y1) cuts a crop out of a large tile, as the mmseg converters do;
    parts of the window beyond the tile are padded (image 0, labels ``IGNORE``).
    ``classes`` / ``binary`` / ``group`` override the dataset's for mixed sets (the samples).
    ``problem``: why the sample cannot be read, found when the dataset was opened (a tile whose
    size is unreadable); loading it raises that :class:`BadInputError`.
    """

    id: str
    image: Path
    label: Path
    codec: LabelCodec
    window: Box | None = None
    classes: list | None = None
    binary: bool | None = None
    group: str = ""
    problem: str = ""

    def _check(self) -> None:
        if self.problem:
            raise BadInputError(self.problem)

    def load_image(self) -> RasterImage:
        self._check()
        if self.window is None:
            return read_image(self.image)  # refuses truncated, complex and oversized files itself
        data, _, crs, transform = _read_raw(self.image, self.window)
        if data.dtype != np.uint8:
            from ..images import stretch_to_uint8

            data = np.stack([stretch_to_uint8(b) for b in data])
        if data.shape[0] == 1:
            data = np.repeat(data, 3, axis=0)
        x0, y0, x1, y1 = self.window
        rgb = _pad(np.ascontiguousarray(np.moveaxis(data, 0, -1)), y1 - y0, x1 - x0, 0)
        return RasterImage(rgb=rgb, path=str(self.image), crs=crs, transform=transform,
                           source_dtype=str(data.dtype), tags={"window": str(self.window)})

    def load_labels(self) -> np.ndarray:
        """Class indices (uint8), ``IGNORE`` where unlabelled."""
        self._check()
        data, colormap, _, _ = _read_raw(self.label, self.window)
        raw = data[0] if data.shape[0] == 1 else np.moveaxis(data, 0, -1)
        labels = self.codec.decode(raw, colormap)
        if self.window is not None:
            x0, y0, x1, y1 = self.window
            labels = _pad(labels, y1 - y0, x1 - x0, IGNORE)
        return labels

    def load(self) -> tuple[RasterImage, np.ndarray]:
        """The image and its labels; any problem with either file is a :class:`BadInputError`."""
        image, labels = self.load_image(), self.load_labels()
        if labels.shape != image.rgb.shape[:2]:
            raise BadInputError(f"{self.id}: image is {image.width}x{image.height} but its labels are "
                                f"{labels.shape[1]}x{labels.shape[0]} ({self.label})")
        return image, labels


class LayoutMismatch(Exception):
    """Raised by a loader's finder when a candidate root does not have the expected layout."""


def list_files(folder: Path, exts: Iterable[str] = IMAGE_EXTS, recursive: bool = False) -> list[Path]:
    """Files in ``folder`` with one of ``exts`` (case-insensitive), sorted; [] if no folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    exts = tuple(e.lower() for e in exts)
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in exts)


def need_dir(root: Path, *options: str) -> Path:
    """The first of ``options`` that is a folder under ``root``; else ``LayoutMismatch``."""
    for option in options:
        if (root / option).is_dir():
            return root / option
    raise LayoutMismatch(f"no {' or '.join(o + '/' for o in options)} in {root}")


def pair_files(images: Sequence[Path], label_dir: Path, key: Callable[[str], str] = lambda s: s,
               label_key: Callable[[str], str] | None = None,
               label_exts: Iterable[str] = IMAGE_EXTS) -> list[tuple[Path, Path]]:
    """Match images to label files in ``label_dir`` by normalised file stem.

    ``key`` normalises an image stem, ``label_key`` a label stem (default: ``key``). Images
    without a label are skipped with one warning; no match at all is a ``LayoutMismatch``.
    """
    label_key = label_key or key
    labels = {label_key(p.stem): p for p in list_files(label_dir, label_exts)}
    pairs, missing = [], []
    for image in images:
        label = labels.get(key(image.stem))
        (pairs.append((image, label)) if label is not None else missing.append(image.name))
    if not pairs:
        raise LayoutMismatch(f"no label in {label_dir} matches the {len(images)} images"
                             + (f" (e.g. {missing[0]})" if missing else ""))
    if missing:
        warnings.warn(f"{len(missing)} images have no label in {label_dir} and are skipped "
                      f"(e.g. {missing[0]})", stacklevel=3)
    return pairs


def strip_suffixes(*suffixes: str) -> Callable[[str], str]:
    """A stem normaliser that removes any of ``suffixes`` at the end (e.g. ``_sat``, ``_mask``)."""
    def key(stem: str) -> str:
        for suffix in suffixes:
            if stem.endswith(suffix):
                return stem[: -len(suffix)]
        return stem
    return key


def raster_size(path: Path) -> tuple[int, int]:
    """(height, width) of a raster without reading its pixels; an unreadable file is a
    :class:`BadInputError` (finders turn it into a sample that fails on load, see ``problem``)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.height, src.width
    except (RasterioError, OSError) as exc:
        raise _unreadable(path, exc) from None


def unreadable_tile(image: Path, label: Path, codec: LabelCodec, problem: str) -> "SegSample":
    """A sample for a tile whose size could not be read: it fails when loaded, so an evaluation
    records it (per image, with the reason) instead of the whole dataset failing to open."""
    return SegSample(id=Path(image).stem, image=Path(image), label=Path(label), codec=codec, problem=problem)


class RootedDataset:
    """Root and split handling shared by the segmentation and the referring loaders."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    splits: ClassVar[tuple] = ("val",)
    default_split: ClassVar[str] = "val"
    folders: ClassVar[tuple] = ()  # where the dataset usually sits under a benchmarks folder
    layout: ClassVar[str] = ""  # a short tree of the expected layout, shown in errors
    url: ClassVar[str] = ""
    needs_root: ClassVar[bool] = True

    def __init__(self, root: str | Path | None = None, split: str | None = None):
        self.split = self._check_split(split)
        self.root = None if not self.needs_root else self._resolve(root)
        self.records = self._find_any()

    def _check_split(self, split: str | None) -> str:
        split = (split or self.default_split).strip()
        if split not in self.splits:
            raise BadInputError(f"{self.title} has no split {split!r}; choose one of {', '.join(self.splits)}")
        return split

    def _resolve(self, root) -> Path:
        if root is None:
            env = os.environ.get(ROOT_ENV)
            if not env:
                raise BadInputError(
                    f"{self.title} needs its data folder: pass --root DIR (or root=...) or set {ROOT_ENV} "
                    f"to a folder that holds it.\n{self.expected_layout()}")
            root = env
        root = Path(root).expanduser()
        if not root.is_dir():
            raise BadInputError(f"{self.title}: root {root} is not a folder.\n{self.expected_layout()}")
        return root

    def candidates(self) -> list[Path]:
        roots = [self.root] + [self.root / f for f in self.folders]
        return [r for r in roots if r.is_dir()]

    def _find_any(self) -> list:
        if not self.needs_root:
            return self.find(None)
        problems = []
        for candidate in self.candidates():
            try:
                found = self.find(candidate)
            except LayoutMismatch as exc:
                problems.append(str(exc))
                continue
            if found:
                self.root = candidate
                return found
            problems.append(f"nothing for split {self.split!r} in {candidate}")
        raise BadInputError(f"{self.root} does not look like {self.title} ({problems[0] if problems else 'empty'}).\n"
                            f"{self.expected_layout()}")

    def expected_layout(self) -> str:
        text = f"Expected layout for {self.title} (split {self.split!r}):\n{self.layout.strip(chr(10))}"
        if self.url:
            text += f"\nData: {self.url}"
        return text

    def find(self, root: Path | None) -> list:  # pragma: no cover - each loader defines it
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index):
        return self.records[index]

    def __iter__(self):
        return iter(self.records)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"


class OvssDataset(RootedDataset):
    """An open-vocabulary semantic segmentation benchmark (multi-class or binary extraction).

    ``classes``: one vocabulary entry per class index, comma-separated synonyms, exactly as in the
    SegEarth-OV protocol; ``paper`` / ``segearth_ov``: the numbers ``method.md`` reports
    (mIoU for multi-class sets, foreground IoU for binary ones; None where not reported).
    """

    kind: ClassVar[str] = "multiclass"  # or "binary"
    classes: ClassVar[list] = []
    palette: ClassVar[list] = []
    protocol: ClassVar[str] = ""
    paper: ClassVar[float | None] = None
    segearth_ov: ClassVar[float | None] = None

    @property
    def samples(self) -> list[SegSample]:
        return self.records

    @property
    def binary(self) -> bool:
        return self.kind == "binary"

    @property
    def metric(self) -> str:
        return "IoU" if self.binary else "mIoU"

    @property
    def class_names(self) -> list[str]:
        """The first name of each class ("building,roof,house" -> "building")."""
        return [c.split(",")[0].strip() for c in self.classes]

    def vocabulary_for(self, sample: SegSample) -> list[str]:
        return list(sample.classes or self.classes)

    def is_binary(self, sample: SegSample) -> bool:
        return self.binary if sample.binary is None else sample.binary

    def group_of(self, sample: SegSample) -> str:
        return sample.group or self.name


BINARY_PALETTE = [(0, 0, 0), (255, 255, 255)]


def binary_codec(cvt: bool) -> LabelCodec:
    """SegEarth-OV's ``*_cvt`` label folders hold 0/1; the published masks 0/255 (or 0/1)."""
    return LabelCodec(threshold=1 if cvt else "auto")


def identity_values(n: int) -> dict[int, int]:
    return {i: i for i in range(n)}


class ReferringDataset(RootedDataset):
    """A referring or reasoning segmentation benchmark: one text and one binary target per record.

    Records are ``rs_helpers.samples.ReferringSample`` (or subclasses whose ``load()`` builds
    the mask from polygons); ``reported`` holds the gIoU numbers of ``method.md`` as
    ``{method: {split: value}}``.
    """

    task: ClassVar[str] = "referring"  # or "reasoning"
    reported: ClassVar[dict] = {}

    @property
    def samples(self) -> list:
        return self.records


# The registry lives in registry.py (it imports loaders lazily); re-exported here for convenience.
from .registry import (canonical_name, dataset_class, get_dataset, get_referring_dataset,  # noqa: E402,F401
                       list_datasets, referring_class)
