"""RRSIS-D (Liu et al., CVPR 2024, released with RMSIN): 17,402 referring expressions on 800 x 800
remote-sensing images, 12,181 / 1,740 / 3,481 for train / val / test.

Published format (LAVT / refer API): ``rrsisd/refs(unc).p`` is a pickled list of refs
(``ref_id``, ``ann_id``, ``image_id``, ``category_id``, ``split``, ``sentences`` with ``raw``)
and ``rrsisd/instances.json`` holds COCO-style images, categories and annotations whose
``segmentation`` is a list of polygons or an RLE. Both are decoded here in pure Python, pixel for
pixel as pycocotools does (so pycocotools is not needed).

The pickle is the dataset's own published file. It is read with an unpickler that builds only
plain values (lists, dicts, strings, numbers): a file that asks for anything else (code to run)
is refused, as is a truncated one.
"""
from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rs_helpers.errors import BadInputError
from rs_helpers.geo.rasters import RasterImage, read_image
from rs_helpers.samples import ReferringSample
from rs_helpers.evaluation.datasets.base import LayoutMismatch, ReferringDataset
from rs_helpers.files import read_json_file


def rle_counts_from_string(text: str) -> list[int]:
    """Decode COCO's compressed RLE string (``maskApi.c`` rleFrString) into run lengths."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            c = ord(text[pos]) - 48
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and (c & 0x10):
                value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def rle_counts_to_string(counts: list[int]) -> str:
    """Encode run lengths as COCO's compressed RLE string (``maskApi.c`` rleToString)."""
    out = []
    for i, value in enumerate(counts):
        if i > 2:
            value -= counts[i - 2]
        more = True
        while more:
            c = value & 0x1F
            value >>= 5
            more = (value != -1) if (c & 0x10) else (value != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_decode(rle: dict) -> np.ndarray:
    """A COCO RLE (``{"size": [h, w], "counts": str | list}``) as an H x W bool mask."""
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        counts = rle_counts_from_string(counts)
    values = np.zeros(len(counts), bool)
    values[1::2] = True
    flat = np.repeat(values, np.asarray(counts, dtype=np.int64))
    if flat.size != height * width:
        raise ValueError(f"RLE covers {flat.size} pixels, expected {height * width}")
    return flat.reshape(width, height).T  # COCO runs go down the columns


def rle_encode(mask: np.ndarray) -> dict:
    """The inverse of ``rle_decode`` (compressed string counts), for tests and round trips."""
    flat = np.asarray(mask, bool).T.ravel()
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle_counts_to_string(counts)}


def polygon_rle_counts(xy: list, height: int, width: int) -> list[int]:
    """Run lengths of one COCO polygon, rasterised exactly as pycocotools does.

    A Python port of ``rleFrPoly`` in pycocotools' ``maskApi.c`` (BSD-2-Clause): the boundary is
    upsampled 5x, its crossings of pixel columns kept, and the runs read down the columns.
    Checked pixel for pixel against pycocotools on random polygons.
    """
    scale, k = 5.0, len(xy) // 2
    x = [int(scale * xy[2 * j] + 0.5) for j in range(k)] + [int(scale * xy[0] + 0.5)]
    y = [int(scale * xy[2 * j + 1] + 0.5) for j in range(k)] + [int(scale * xy[1] + 0.5)]
    u, v = [], []
    for j in range(k):  # dense points along every edge
        xs, xe, ys, ye = x[j], x[j + 1], y[j], y[j + 1]
        dx, dy = abs(xe - xs), abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe, ys, ye = xe, xs, ye, ys
        if dx >= dy:
            slope = (ye - ys) / dx if dx else 0.0
            for d in range(dx + 1):
                t = dx - d if flip else d
                u.append(t + xs)
                v.append(int(ys + slope * t + 0.5))
        else:
            slope = (xe - xs) / dy
            for d in range(dy + 1):
                t = dy - d if flip else d
                v.append(t + ys)
                u.append(int(xs + slope * t + 0.5))
    starts = []
    for j in range(1, len(u)):  # where the boundary crosses a pixel column, downsampled
        if u[j] == u[j - 1]:
            continue
        xd = ((u[j] if u[j] < u[j - 1] else u[j] - 1) + 0.5) / scale - 0.5
        if math.floor(xd) != xd or xd < 0 or xd > width - 1:
            continue
        yd = ((v[j] if v[j] < v[j - 1] else v[j - 1]) + 0.5) / scale - 0.5
        yd = math.ceil(min(max(yd, 0), height))
        starts.append(int(xd) * height + int(yd))
    a = sorted(starts + [height * width])
    prev = 0
    for j, value in enumerate(a):
        a[j], prev = value - prev, value
    counts, j = [a[0]], 1
    while j < len(a):
        if a[j] > 0:
            counts.append(a[j])
            j += 1
        else:
            j += 1
            if j < len(a):
                counts[-1] += a[j]
                j += 1
    return counts


# How the parts (polygons, RLEs) of one annotation combine: "union" (a pixel inside any part) or
# "sum-one", RMSIN's rule (refer/refer.py getMask sums the part masks as uint8 and
# data/dataset_refer_bert.py keeps the pixels equal to 1, so overlaps of parts become background).
PARTS = ("union", "sum-one")


def combine_parts(parts: list, height: int, width: int, rule: str = "union") -> np.ndarray:
    """H x W bool mask from part masks under ``rule`` (see :data:`PARTS`)."""
    if rule not in PARTS:
        raise BadInputError(f"unknown parts rule {rule!r}; choose one of {', '.join(PARTS)}")
    if not parts:
        return np.zeros((height, width), bool)
    if rule == "union":
        return np.logical_or.reduce(parts)
    total = np.sum(np.stack(parts).astype(np.int64), axis=0)
    return total.astype(np.uint8) == 1  # uint8, as RMSIN: a count of 257 wraps to 1


def polygons_to_mask(polygons: list, height: int, width: int, parts: str = "union") -> np.ndarray:
    """COCO polygons (flat ``[x1, y1, x2, y2, ...]`` lists) as an H x W bool mask, the polygons
    combined by ``parts`` (default: their union)."""
    masks = [rle_decode({"size": [height, width], "counts": polygon_rle_counts([float(v) for v in poly],
                                                                              height, width)})
             for poly in polygons if len(poly) >= 6]
    return combine_parts(masks, height, width, parts)


def segmentation_to_mask(segmentation: Any, height: int, width: int, parts: str = "union") -> np.ndarray:
    """COCO ``segmentation`` (polygons, one RLE, or a list of RLEs) as an H x W bool mask; the parts
    of a list are combined by ``parts`` (see :data:`PARTS`)."""
    if isinstance(segmentation, dict):
        return rle_decode(segmentation)
    if segmentation and isinstance(segmentation[0], dict):
        return combine_parts([rle_decode(r) for r in segmentation], height, width, parts)
    return polygons_to_mask(segmentation, height, width, parts)


@dataclass
class CocoReferringSample(ReferringSample):
    """A referring sample whose target is a COCO segmentation (``mask`` is the instances file)."""

    segmentation: Any = None
    height: int = 0
    width: int = 0
    parts: str = "union"  # how overlapping parts combine (PARTS); "sum-one" under the rmsin protocol

    def load_mask(self) -> np.ndarray:
        return self._decode(self.height, self.width)

    def load(self) -> tuple[RasterImage, np.ndarray]:
        image = read_image(self.image)
        return image, self._decode(image.height, image.width)

    def _decode(self, height: int, width: int) -> np.ndarray:
        """The target mask; a segmentation that cannot be decoded is a :class:`BadInputError`."""
        try:
            return segmentation_to_mask(self.segmentation, height, width, self.parts)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, MemoryError) as exc:
            raise BadInputError(f"{self.id}: its segmentation in {self.mask} cannot be decoded "
                                f"({type(exc).__name__} {str(exc)[:120]})") from None


_PLAIN_GLOBALS = {("builtins", n) for n in ("set", "frozenset", "list", "dict", "tuple", "str", "bytes", "int",
                                          "float", "bool")} | {("collections", "OrderedDict")}


class _PlainUnpickler(pickle.Unpickler):
    """Builds plain values only: any other class or function named in the file is refused."""

    def find_class(self, module: str, name: str):
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)
        if (module, name) in _PLAIN_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it asks for {module}.{name}, which a refs file never holds")


def load_refs(path: Path) -> list:
    """The refs list of ``refs(unc).p`` (Python 3 or Python 2 pickles), plain values only."""
    errors = (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
              ImportError, MemoryError, RecursionError)
    with open(path, "rb") as fh:
        try:
            try:
                refs = _PlainUnpickler(fh).load()
            except UnicodeDecodeError:  # refs pickled under Python 2
                fh.seek(0)
                refs = _PlainUnpickler(fh, encoding="latin1").load()
        except errors as exc:
            raise BadInputError(f"{path} is not a usable refs pickle ({type(exc).__name__}: {str(exc)[:160]}); "
                                "download the RRSIS-D annotations again") from None
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise BadInputError(f"{path}: want a list of refs (dicts), got {type(refs).__name__}")
    return refs


def _instances(path: Path) -> tuple[dict, dict, dict]:
    """(images, annotations, categories) by id from the COCO instances file, checked."""
    instances = read_json_file(path, "COCO instances file")
    try:
        images = {img["id"]: img for img in instances["images"] if isinstance(img, dict)}
        anns = {ann["id"]: ann for ann in instances["annotations"] if isinstance(ann, dict)}
        cats = {cat["id"]: cat["name"] for cat in instances.get("categories", []) if isinstance(cat, dict)}
    except (KeyError, TypeError, AttributeError) as exc:
        raise BadInputError(f"{path}: not a COCO instances file (images, annotations, categories): "
                            f"{type(exc).__name__} {exc}") from None
    return images, anns, cats


class RRSISD(ReferringDataset):
    name = "rrsisd"
    title = "RRSIS-D"
    task = "referring"
    splits = ("test", "val", "train")
    default_split = "test"
    folders = ("RRSIS-D", "rrsisd_data", "rs_ref_seg/RRSIS-D", "refer/data")
    url = "https://github.com/Lsan2401/RMSIN"
    reported = {  # gIoU (mean per-sample IoU), docs/method.md
        "paper: LoRA Qwen3-VL-2B": {"val": 68.1, "test": 67.6},
        "paper: GPT-5 zero-shot": {"test": 24.9},
        "SegEarth-R1": {"test": 66.4},
        "GeoPixel": {"test": 67.3},
    }
    parts = "union"  # how the parts of one annotation combine; "sum-one" is RMSIN's rule (PARTS)
    layout = """
RRSIS-D/                           (RMSIN release, LAVT refer format)
  rrsisd/refs(unc).p               (pickled refs: ref_id, ann_id, image_id, split, sentences)
  rrsisd/instances.json            (COCO images, categories, annotations with segmentation)
  images/rrsisd/JPEGImages/00001.jpg ...
"""

    def __init__(self, root=None, split=None, parts: str | None = None):
        if parts is not None:
            self.parts = _check_parts(parts)
        super().__init__(root=root, split=split)

    def set_parts(self, parts: str) -> "RRSISD":
        """Combine the parts of every annotation by ``parts`` from now on (e.g. a protocol's rule)."""
        self.parts = _check_parts(parts)
        for record in self.records:
            record.parts = self.parts
        return self

    def find(self, root: Path) -> list[CocoReferringSample]:
        ann_dir = root / "rrsisd"
        refs_path, inst_path = ann_dir / "refs(unc).p", ann_dir / "instances.json"
        if not refs_path.is_file() or not inst_path.is_file():
            raise LayoutMismatch(f"no rrsisd/refs(unc).p + rrsisd/instances.json in {root}")
        image_dir = next((root / d for d in ("images/rrsisd/JPEGImages", "images/JPEGImages", "JPEGImages", "images")
                          if (root / d).is_dir()), None)
        if image_dir is None:
            raise LayoutMismatch(f"no images/rrsisd/JPEGImages/ in {root}")
        images, anns, cats = _instances(inst_path)
        out = []
        for number, ref in enumerate(load_refs(refs_path)):
            if ref.get("split") != self.split:
                continue
            try:
                ann, img = anns[ref["ann_id"]], images[ref["image_id"]]
                x, y, w, h = (float(v) for v in ann.get("bbox", (0, 0, 0, 0)))
                sentences = ref.get("sentences") or []
                texts = [str(s.get("raw") or s.get("sent", "")) for s in sentences]
                ref_id, file_name, segmentation = ref["ref_id"], str(img["file_name"]), ann["segmentation"]
                height, width = int(img.get("height", 0)), int(img.get("width", 0))
                box = (int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                raise BadInputError(f"{refs_path}: ref {number} does not fit {inst_path.name} "
                                    f"({type(exc).__name__} {str(exc)[:120]})") from None
            for k, text in enumerate(texts):
                out.append(CocoReferringSample(
                    id=f"rrsisd_{ref_id}" + (f"_{k}" if len(texts) > 1 else ""),
                    image=image_dir / file_name, text=text,
                    task="referring", target_class=str(cats.get(ref.get("category_id"), "")), mask=inst_path,
                    bbox_xyxy=box, segmentation=segmentation, height=height, width=width, parts=self.parts,
                ))
        return out


def _check_parts(parts: str) -> str:
    if parts not in PARTS:
        raise BadInputError(f"unknown parts rule {parts!r}; choose one of {', '.join(PARTS)}")
    return parts
