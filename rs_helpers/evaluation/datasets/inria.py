"""Inria Aerial Image Labeling (Maggiori et al., IGARSS 2017): 0.3 m, 5000 x 5000 tiles of ten
cities; the labelled training tiles are split into train / val / test as in FCtL.

Protocol (SegEarth-OV): the 27 ``split_test`` tiles cut into 1000 x 1000 crops (no overlap),
masks 0/255 (0/1 after the converter), foreground IoU of "building". Read from the mmseg layout
(``tools/dataset_converters/inria.py``) or from the published ``images/`` + ``gt/`` tiles
(cropped on the fly).
"""
from __future__ import annotations

from pathlib import Path

from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.datasets.codec import BINARY_PALETTE, binary_codec
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
from rs_helpers.evaluation.datasets.binary import named
from rs_helpers.evaluation.datasets.crops import crop_boxes

SPLIT_TILES = {  # FCtL's split of the labelled tiles, as in SegEarth-OV's converter
    "test": "vienna3 chicago10 vienna20 austin1 tyrol-w25 vienna9 chicago14 vienna18 kitsap36 kitsap35 austin22 "
            "kitsap34 austin7 vienna11 kitsap14 kitsap25 austin12 vienna15 kitsap9 austin36 vienna6 chicago23 "
            "tyrol-w3 chicago26 austin24 tyrol-w1 tyrol-w36",
    "val": "chicago24 austin27 kitsap22 chicago28 tyrol-w6 austin8 kitsap5 vienna28 kitsap30 austin15 kitsap13 "
           "austin19 chicago6 austin9 chicago12 vienna7 kitsap18 tyrol-w24 vienna36 austin29 tyrol-w19 vienna29 "
           "chicago1 tyrol-w12 tyrol-w22 austin17 tyrol-w10",
}


class Inria(OvssDataset):
    name = "inria"
    title = "Inria"
    kind = "binary"
    classes = named("building")
    palette = BINARY_PALETTE
    splits = ("test", "val")
    default_split = "test"
    folders = ("AerialImageDataset/train", "Inria/AerialImageDataset/train", "train", "Inria")
    crop = 1000
    protocol = "27 split_test tiles (FCtL split), 1000 x 1000 crops, no overlap"
    paper = 48.0
    segearth_ov = 44.6
    url = "https://project.inria.fr/aerialimagelabeling/"
    layout = """
AerialImageDataset/train/          (mmseg layout, SegEarth-OV converter)
  img_dir/split_test/austin1_0_0_1000_1000.png ...
  ann_dir/split_test/austin1_0_0_1000_1000.png ...   (0/1)
or the published tiles (cropped on the fly):
AerialImageDataset/train/
  images/austin1.tif ...
  gt/austin1.tif ...                                 (0/255)
"""

    def find(self, root: Path) -> list[SegSample]:
        if (root / "img_dir").is_dir():
            pairs = pair_files(list_files(need_dir(root, f"img_dir/split_{self.split}", f"img_dir/{self.split}")),
                               need_dir(root, f"ann_dir/split_{self.split}", f"ann_dir/{self.split}"))
            return [SegSample(id=img.stem, image=img, label=lbl, codec=binary_codec(cvt=True)) for img, lbl in pairs]
        wanted = set(SPLIT_TILES[self.split].split())
        images = [p for p in list_files(need_dir(root, "images"), (".tif", ".tiff")) if p.stem in wanted]
        if not images:
            raise LayoutMismatch(f"none of the {len(wanted)} split_{self.split} tiles in {root / 'images'}")
        out = []
        for image, label in pair_files(images, need_dir(root, "gt")):
            try:
                height, width = raster_size(image)
            except BadInputError as exc:  # recorded when the sample is loaded
                out.append(unreadable_tile(image, label, binary_codec(cvt=False), str(exc)))
                continue
            for x0, y0, x1, y1 in crop_boxes(height, width, self.crop, self.crop, "clip"):
                out.append(SegSample(id=f"{image.stem}_{x0}_{y0}_{x1}_{y1}", image=image, label=label,
                                     codec=binary_codec(cvt=False), window=(x0, y0, x1, y1)))
        return out
