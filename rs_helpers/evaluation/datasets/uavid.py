"""UAVid (Lyu et al., ISPRS J 2020): oblique UAV video frames (3840 x 2160 or 4096 x 2160) of
urban scenes, 8 classes; moving and static cars are merged as in SegEarth-OV.

Protocol (SegEarth-OV): the test frames cut into 1280 x 1080 patches without overlap
(``tools/dataset_converters/uavid.py``; colours outside the palette count as background).
Read from the mmseg layout (index labels 0..6) or from the published sequences
(``seqN/Images`` + colour ``seqN/Labels``, cut into the same patches on the fly).
"""
from __future__ import annotations

from pathlib import Path

from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.datasets.codec import LabelCodec, identity_values
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

UAVID_COLOURS = [(0, 0, 0), (128, 0, 0), (128, 64, 128), (192, 0, 192), (0, 128, 0), (128, 128, 0), (64, 64, 0)]
MOVING_CAR = (64, 0, 128)


class UAVid(OvssDataset):
    name = "uavid"
    title = "UAVid"
    kind = "multiclass"
    classes = ["background", "building", "road", "car", "tree", "vegetation", "human"]
    palette = UAVID_COLOURS
    splits = ("test", "val", "train")
    default_split = "test"
    folders = ("UAVid", "uavid")
    patch = (1080, 1280)  # height, width
    protocol = "test frames, 1280 x 1080 patches, no overlap; moving car = car"
    segearth_ov = 42.5
    url = "https://uavid.nl"
    codec = LabelCodec(values=identity_values(7),
                       colours={**{c: i for i, c in enumerate(UAVID_COLOURS)}, MOVING_CAR: 3}, unknown=0)
    layout = """
UAVid/                             (mmseg layout)
  img_dir/test/seq21_000000_0_1080_0_1280.png ...
  ann_dir/test/seq21_000000_0_1080_0_1280.png ...   (index labels 0..6)
or the published sequences (patches cut on the fly):
UAVid/
  uavid_test/seq21/Images/000000.png               (also test_gt/, uavid_val/, uavid_train/)
  uavid_test/seq21/Labels/000000.png               (colour labels)
"""

    def find(self, root: Path) -> list[SegSample]:
        if (root / "img_dir").is_dir():
            pairs = pair_files(list_files(need_dir(root, f"img_dir/{self.split}")),
                               need_dir(root, f"ann_dir/{self.split}"))
            return [SegSample(id=img.stem, image=img, label=lbl, codec=self.codec) for img, lbl in pairs]
        names = {"test": ("uavid_test", "test_gt", "test"), "val": ("uavid_val", "val"),
                 "train": ("uavid_train", "train")}[self.split]
        split_dir = need_dir(root, *names)
        out = []
        for seq in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            if not (seq / "Images").is_dir() or not (seq / "Labels").is_dir():
                continue
            for image, label in pair_files(list_files(seq / "Images"), seq / "Labels"):
                try:
                    height, width = raster_size(image)
                except BadInputError as exc:  # recorded when the sample is loaded
                    out.append(unreadable_tile(image, label, self.codec, str(exc)))
                    continue
                for x0, y0, x1, y1 in crop_boxes(height, width, self.patch, self.patch, "slide"):
                    out.append(SegSample(id=f"{seq.name}_{image.stem}_{y0}_{y1}_{x0}_{x1}", image=image,
                                         label=label, codec=self.codec, window=(x0, y0, x1, y1)))
        if not out:
            raise LayoutMismatch(f"no seq*/Images + seq*/Labels in {split_dir}")
        return out
