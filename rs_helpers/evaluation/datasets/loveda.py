"""LoveDA (Wang et al., NeurIPS 2021 D&B): 0.3 m urban and rural scenes from three Chinese cities.

Protocol (SegEarth-OV / mmseg ``LoveDADataset``): the ``val`` split (1669 images of 1024 x 1024);
masks hold 1..7 for the seven classes and 0 for no-data, which is ignored
(``reduce_zero_label=True``). Read from the mmseg layout (``tools/dataset_converters/loveda.py``)
or from the published ``Val/{Urban,Rural}/{images_png,masks_png}`` folders.
"""
from __future__ import annotations

from pathlib import Path

from rs_helpers.evaluation.datasets.codec import LabelCodec
from rs_helpers.evaluation.datasets.base import (
    LayoutMismatch,
    OvssDataset,
    SegSample,
    list_files,
    need_dir,
    pair_files,
)


class LoveDA(OvssDataset):
    name = "loveda"
    title = "LoveDA"
    kind = "multiclass"
    classes = ["background", "building,roof,house", "road", "water", "barren", "forest", "agricultural"]
    palette = [(255, 255, 255), (255, 0, 0), (255, 255, 0), (0, 0, 255), (159, 129, 183), (0, 255, 0),
               (255, 195, 128)]
    splits = ("val", "train")
    default_split = "val"
    folders = ("LoveDA", "loveDA")
    protocol = "val split, whole 1024 x 1024 images; no-data (0) ignored"
    paper = 38.2
    segearth_ov = 36.9
    url = "https://zenodo.org/record/5706578"
    codec = LabelCodec(values={v: v - 1 for v in range(1, 8)})
    layout = """
LoveDA/                            (mmseg layout)
  img_dir/val/3514.png ...
  ann_dir/val/3514.png ...         (0 no-data, 1..7 classes)
or the published layout:
LoveDA/
  Val/Urban/images_png/3514.png   Val/Urban/masks_png/3514.png
  Val/Rural/images_png/...        Val/Rural/masks_png/...
"""

    def find(self, root: Path) -> list[SegSample]:
        if (root / "img_dir").is_dir():
            pairs = pair_files(list_files(need_dir(root, f"img_dir/{self.split}")),
                               need_dir(root, f"ann_dir/{self.split}"))
        else:
            split_dir = need_dir(root, self.split.capitalize(), self.split)
            pairs = []
            for area in ("Urban", "Rural"):
                if (split_dir / area / "images_png").is_dir():
                    pairs += pair_files(list_files(split_dir / area / "images_png"), need_dir(split_dir / area, "masks_png"))
            if not pairs:
                raise LayoutMismatch(f"no Urban/ or Rural/ images_png + masks_png in {split_dir}")
        return [SegSample(id=img.stem, image=img, label=lbl, codec=self.codec) for img, lbl in pairs]
