"""UDD5 (Chen et al., PRCV 2018): UAV nadir images of Chinese cities, 4 classes + other.

Protocol (SegEarth-OV ``UDD5Dataset``): the ``val`` split, whole images (``val/src/*.JPG``,
``val/gt/*.png`` with indices 0..4; 4 = other, named "background"). Colour-coded ground truth
in UDD5's palette is read too.
"""
from __future__ import annotations

from pathlib import Path

from rs_helpers.evaluation.datasets.codec import LabelCodec, identity_values
from rs_helpers.evaluation.datasets.base import OvssDataset, SegSample, list_files, need_dir, pair_files

UDD5_COLOURS = [(107, 142, 35), (102, 102, 156), (128, 64, 128), (0, 0, 142), (0, 0, 0)]


class UDD5(OvssDataset):
    name = "udd5"
    title = "UDD5"
    kind = "multiclass"
    classes = ["vegetation", "building", "road", "vehicle", "background"]
    palette = UDD5_COLOURS
    splits = ("val", "train")
    default_split = "val"
    folders = ("UDD5", "UDD/UDD5", "UDD/UDD/UDD5")
    protocol = "val split, whole images"
    segearth_ov = 50.6
    url = "https://github.com/MarcWong/UDD"
    codec = LabelCodec(values=identity_values(5), colours={c: i for i, c in enumerate(UDD5_COLOURS)})
    layout = """
UDD5/                              (as published; SegEarth-OV reads data/UDD/UDD/UDD5)
  val/src/DJI_0538.JPG ...
  val/gt/DJI_0538.png ...          (indices 0..4)
"""

    def find(self, root: Path) -> list[SegSample]:
        split_dir = need_dir(root, self.split)
        pairs = pair_files(list_files(need_dir(split_dir, "src")), need_dir(split_dir, "gt"))
        return [SegSample(id=img.stem, image=img, label=lbl, codec=self.codec) for img, lbl in pairs]
