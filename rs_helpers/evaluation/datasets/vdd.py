"""VDD, the Varied Drone Dataset (Cai et al., 2023): 4000 x 3000 drone images, 7 classes.

Protocol (SegEarth-OV ``VDDDataset``): the ``test`` split, whole images (``test/src/*.JPG``,
``test/gt/*.png`` with indices 0..6: other, wall, road, vegetation, vehicle, roof, water; the
vocabulary names "other" background and "wall" facade).
"""
from __future__ import annotations

from pathlib import Path

from rs_helpers.evaluation.datasets.codec import LabelCodec, identity_values
from rs_helpers.evaluation.datasets.base import OvssDataset, SegSample, list_files, need_dir, pair_files


class VDD(OvssDataset):
    name = "vdd"
    title = "VDD"
    kind = "multiclass"
    classes = ["background", "facade", "road", "vegetation", "vehicle", "roof", "water"]
    palette = [(0, 0, 0), (102, 102, 156), (128, 64, 128), (107, 142, 35), (0, 0, 142), (70, 70, 70), (0, 130, 180)]
    splits = ("test", "val", "train")
    default_split = "test"
    folders = ("VDD",)
    protocol = "test split, whole images"
    segearth_ov = 45.3
    url = "https://github.com/RussRobin/VDD"
    codec = LabelCodec(values=identity_values(7))
    layout = """
VDD/                               (as published)
  test/src/DJI_0001.JPG ...
  test/gt/DJI_0001.png ...         (indices 0..6)
"""

    def find(self, root: Path) -> list[SegSample]:
        split_dir = need_dir(root, self.split)
        pairs = pair_files(list_files(need_dir(split_dir, "src")), need_dir(split_dir, "gt"))
        return [SegSample(id=img.stem, image=img, label=lbl, codec=self.codec) for img, lbl in pairs]
