"""OpenEarthMap (Xia et al., WACV 2023): 0.25-0.5 m land cover in 44 countries, 8 classes + unknown.

Protocol (SegEarth-OV): the ``val`` list of ``OpenEarthMap_wo_xBD``; label 0 ("unknown") is
scored as a ``background`` class, not ignored (``reduce_zero_label=False``). Labels are
single-band GeoTIFFs with values 0..8. Two layouts are read: the mmseg one made by SegEarth-OV's
``tools/dataset_converters/openearthmap.py`` and the published one with ``val.txt``.
"""
from __future__ import annotations

from pathlib import Path

from rs_helpers.evaluation.datasets.codec import LabelCodec, identity_values
from rs_helpers.evaluation.datasets.base import (
    LayoutMismatch,
    OvssDataset,
    SegSample,
    list_files,
    need_dir,
    pair_files,
)
from rs_helpers.files import read_text_file


class OpenEarthMap(OvssDataset):
    name = "openearthmap"
    title = "OpenEarthMap"
    kind = "multiclass"
    classes = ["background", "bareland,barren", "grass", "pavement", "road", "tree,forest",
               "water,river", "cropland", "building,roof,house"]
    palette = [(0, 0, 0), (128, 0, 0), (0, 255, 36), (148, 148, 148), (255, 255, 255), (34, 97, 38),
               (0, 69, 255), (75, 181, 73), (222, 31, 7)]
    splits = ("val", "train", "test")
    default_split = "val"
    folders = ("OpenEarthMap", "OpenEarthMap_wo_xBD")
    protocol = "val list of OpenEarthMap_wo_xBD, whole images; label 0 scored as background"
    segearth_ov = 40.3
    url = "https://open-earth-map.org"
    codec = LabelCodec(values=identity_values(9))
    layout = """
OpenEarthMap/                      (mmseg layout, SegEarth-OV converter)
  img_dir/val/aachen_1.tif ...
  ann_dir/val/aachen_1.tif ...     (values 0..8)
or the published layout:
OpenEarthMap_wo_xBD/
  val.txt                          (one image file name a line)
  aachen/images/aachen_1.tif
  aachen/labels/aachen_1.tif
"""

    def find(self, root: Path) -> list[SegSample]:
        if (root / "img_dir").is_dir():
            images = list_files(need_dir(root, f"img_dir/{self.split}"))
            pairs = pair_files(images, need_dir(root, f"ann_dir/{self.split}"))
        else:
            listing = root / f"{self.split}.txt"
            if not listing.is_file():
                raise LayoutMismatch(f"neither img_dir/ nor {listing.name} in {root}")
            wanted = [w for w in read_text_file(listing, 'split listing').split() if w]
            by_name = {p.name: p for p in root.glob("*/images/*") if p.is_file()}
            pairs = []
            for name in wanted:
                image = by_name.get(name)
                if image is not None and (image.parent.parent / "labels" / name).is_file():
                    pairs.append((image, image.parent.parent / "labels" / name))
            if not pairs:
                raise LayoutMismatch(f"none of the {len(wanted)} files in {listing.name} found as */images/ + */labels/")
        return [SegSample(id=img.stem, image=img, label=lbl, codec=self.codec) for img, lbl in pairs]
