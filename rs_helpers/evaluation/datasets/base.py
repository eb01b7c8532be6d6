"""What every benchmark loader shares: label decoding, samples, root finding and layout errors.

A loader is a small class (one file per dataset or family, torchgeo style) that declares the
evaluation protocol of ``docs/method.md`` (class names with synonyms, split, crops, the reported
numbers) and finds its samples under a root folder in the dataset's usual published layout.
Samples are cheap records; pixels are read only by ``sample.load()``, which returns the image
as uint8 RGB (``RasterImage``) and the labels as uint8 class indices with ``IGNORE`` (255).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Sequence

import numpy as np

from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.datasets.codec import IGNORE, LabelCodec
from rs_helpers.geo.rasters import RasterImage, read_image

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
ROOT_ENV = "RS_HELPERS_BENCHMARKS"  # a folder holding each dataset under its usual folder name
Box = tuple  # (x0, y0, x1, y1), x1/y1 exclusive


def _unreadable(path, exc: BaseException) -> BadInputError:
    reason = str(exc).splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
    return BadInputError(f"{path} is not a readable raster ({reason})")


def _read_raw(path: Path, window: Box | None, bands: Sequence[int] | None = None):
    """Raw pixels (bands x H x W, clipped to the file), the colour table and the file's size.
    A missing, unreadable, truncated or complex-valued file is a :class:`BadInputError`."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    from rasterio.windows import Window

    from rs_helpers.geo.integrity import check_complete
    from rs_helpers.geo.rasters import check_dtypes

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
            from rs_helpers.geo.rasters import stretch_to_uint8

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
    SegEarth-OV protocol; ``paper`` / ``segearth_ov``: the numbers ``docs/method.md`` reports
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


class ReferringDataset(RootedDataset):
    """A referring or reasoning segmentation benchmark: one text and one binary target per record.

    Records are ``rs_helpers.samples.ReferringSample`` (or subclasses whose ``load()`` builds
    the mask from polygons); ``reported`` holds the gIoU numbers of ``docs/method.md`` as
    ``{method: {split: value}}``.
    """

    task: ClassVar[str] = "referring"  # or "reasoning"
    reported: ClassVar[dict] = {}

    @property
    def samples(self) -> list:
        return self.records


# The registry lives in registry.py (it imports loaders lazily); re-exported here for convenience.
from rs_helpers.evaluation.datasets.registry import (  # noqa: E402,F401
    canonical_name,
    dataset_class,
    get_dataset,
    get_referring_dataset,
    list_datasets,
    referring_class,
)
