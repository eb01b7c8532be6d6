"""ISPRS Potsdam (5 cm, 6000 x 6000 tiles) and Vaihingen (9 cm, IRRG) 2-D semantic labelling.

Protocol (SegEarth-OV / mmseg ``PotsdamDataset`` / ``ISPRSDataset``): the mmseg validation tiles
cut into 512 crops with the converters' nominal stride 256 (see ``crops.py``: the crop set is
non-overlapping plus border-aligned crops; 2016 Potsdam and 398 Vaihingen crops); the eroded
"noBoundary" labels, whose black boundary pixels are ignored (``reduce_zero_label=True``).
Read from the mmseg layout (index labels 0..6, 0 = boundary) or from the published tiles and
colour labels (cut into the same crops on the fly).
"""
from __future__ import annotations

import re
from pathlib import Path

from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.datasets.codec import LabelCodec
from rs_helpers.evaluation.datasets.base import (
    LayoutMismatch,
    OvssDataset,
    SegSample,
    list_files,
    need_dir,
    pair_files,
    raster_size,
    unreadable_tile,
)
from rs_helpers.evaluation.datasets.crops import crop_boxes

# ISPRS colours: impervious, building, low vegetation, tree, car, clutter (black boundary ignored)
ISPRS_COLOURS = [(255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0)]
ISPRS_CODEC = LabelCodec(values={v: v - 1 for v in range(1, 7)},
                         colours={c: i for i, c in enumerate(ISPRS_COLOURS)})


class _ISPRS(OvssDataset):
    kind = "multiclass"
    palette = ISPRS_COLOURS
    splits = ("val", "train")
    default_split = "val"
    crop, stride = 512, 256
    codec = ISPRS_CODEC
    url = "https://www.isprs.org/education/benchmarks/UrbanSemLab/default.aspx"
    train_tiles: tuple = ()

    def tile_id(self, path: Path) -> str | None:  # pragma: no cover - defined per dataset
        raise NotImplementedError

    def is_label(self, path: Path) -> bool:  # pragma: no cover
        raise NotImplementedError

    def find(self, root: Path) -> list[SegSample]:
        if (root / "img_dir").is_dir():
            pairs = pair_files(list_files(need_dir(root, f"img_dir/{self.split}")),
                               need_dir(root, f"ann_dir/{self.split}"))
            return [SegSample(id=img.stem, image=img, label=lbl, codec=self.codec) for img, lbl in pairs]
        images, labels = {}, {}
        for path in list_files(root, (".tif", ".tiff"), recursive=True):
            tile = self.tile_id(path)
            if tile is None:
                continue
            if self.is_label(path):
                if tile not in labels or "noBoundary" in path.name:  # the eroded labels are the protocol's
                    labels[tile] = path
            elif tile not in images or path.parent.name.lower() in ("top", "2_ortho_rgb"):
                images[tile] = path  # Vaihingen's full labels share the image names: prefer top/
        tiles = [t for t in sorted(images) if t in labels and (t in self.train_tiles) == (self.split == "train")]
        if not tiles:
            raise LayoutMismatch(f"no {self.split} tile with both an image and a label under {root}")
        out = []
        for tile in tiles:
            try:
                height, width = raster_size(images[tile])
            except BadInputError as exc:  # recorded when the sample is loaded
                out.append(unreadable_tile(images[tile], labels[tile], self.codec, str(exc)))
                continue
            for x0, y0, x1, y1 in crop_boxes(height, width, self.crop, self.stride, "clip"):
                out.append(SegSample(id=f"{tile}_{x0}_{y0}_{x1}_{y1}", image=images[tile], label=labels[tile],
                                     codec=self.codec, window=(x0, y0, x1, y1)))
        return out


class Potsdam(_ISPRS):
    name = "potsdam"
    title = "Potsdam"
    classes = ["road,parking lot", "building", "low vegetation", "tree", "car", "clutter,background"]
    folders = ("potsdam", "Potsdam")
    protocol = "14 val tiles, 512 crops (mmseg clip, stride 256), RGB, eroded labels"
    paper = 50.2
    segearth_ov = 47.1
    train_tiles = ("2_10", "2_11", "2_12", "3_10", "3_11", "3_12", "4_10", "4_11", "4_12", "5_10", "5_11",
                   "5_12", "6_10", "6_11", "6_12", "6_7", "6_8", "6_9", "7_10", "7_11", "7_12", "7_7", "7_8", "7_9")
    layout = """
potsdam/                           (mmseg layout)
  img_dir/val/2_13_0_0_512_512.png ...
  ann_dir/val/2_13_0_0_512_512.png ...    (0 boundary, 1..6 classes)
or the published tiles (any sub-folders; cropped on the fly):
potsdam/
  2_Ortho_RGB/top_potsdam_2_13_RGB.tif ...
  5_Labels_all_noBoundary/top_potsdam_2_13_label_noBoundary.tif ...
"""

    def tile_id(self, path: Path) -> str | None:
        m = re.match(r"top_potsdam_(\d+)_(\d+)_(RGB|label)", path.name)
        return f"{m.group(1)}_{m.group(2)}" if m else None

    def is_label(self, path: Path) -> bool:
        return "_label" in path.name


class Vaihingen(_ISPRS):
    name = "vaihingen"
    title = "Vaihingen"
    classes = ["impervious surface", "building", "low vegetation", "tree", "car", "clutter"]
    folders = ("vaihingen", "Vaihingen")
    protocol = "17 val areas, 512 crops (mmseg clip, stride 256), IRRG, eroded labels"
    paper = 40.6
    segearth_ov = 29.1
    train_tiles = ("area1", "area11", "area13", "area15", "area17", "area21", "area23", "area26", "area28",
                   "area3", "area30", "area32", "area34", "area37", "area5", "area7")
    layout = """
vaihingen/                         (mmseg layout)
  img_dir/val/area2_0_0_512_512.png ...
  ann_dir/val/area2_0_0_512_512.png ...   (0 boundary, 1..6 classes)
or the published tiles (any sub-folders; cropped on the fly):
vaihingen/
  top/top_mosaic_09cm_area2.tif ...
  gts_eroded/top_mosaic_09cm_area2_noBoundary.tif ...
"""

    def tile_id(self, path: Path) -> str | None:
        m = re.match(r"top_mosaic_09cm_(area\d+)(_noBoundary)?\.tif", path.name)
        return m.group(1) if m else None

    def is_label(self, path: Path) -> bool:
        return "noBoundary" in path.name
