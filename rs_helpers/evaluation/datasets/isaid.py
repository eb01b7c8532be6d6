"""iSAID (Waqas Zamir et al., CVPRW 2019): instance/semantic labels for the DOTA-v1.0 images,
15 object classes + background.

Protocol (SegEarth-OV / mmseg ``iSAIDDataset``): the ``val`` split cut into 896 x 896 patches
with 384 px overlap (step 512; images smaller than a patch padded: image 0, labels 255),
11644 patches. Semantic masks are colour-coded (``*_instance_color_RGB.png``); colours
outside the palette count as background, as in the converter. Read from the mmseg layout
(``tools/dataset_converters/isaid.py``, index labels) or from the published images and
``Semantic_masks`` (colour labels, cut into the same patches on the fly).
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
    strip_suffixes,
    unreadable_tile,
)
from rs_helpers.evaluation.datasets.crops import crop_boxes

ISAID_COLOURS = [(0, 0, 0), (0, 0, 63), (0, 63, 63), (0, 63, 0), (0, 63, 127), (0, 63, 191), (0, 63, 255),
                 (0, 127, 63), (0, 127, 127), (0, 0, 127), (0, 0, 191), (0, 0, 255), (0, 191, 127),
                 (0, 127, 191), (0, 127, 255), (0, 100, 155)]


class ISAID(OvssDataset):
    name = "isaid"
    title = "iSAID"
    kind = "multiclass"
    classes = ["background", "ship", "store tank", "baseball diamond", "tennis court", "basketball court",
               "ground track field", "bridge", "large vehicle", "small vehicle", "helicopter", "swimming pool",
               "roundabout", "soccer ball field", "plane", "harbor"]
    palette = ISAID_COLOURS
    splits = ("val", "train")
    default_split = "val"
    folders = ("iSAID",)
    patch, overlap = 896, 384
    protocol = "val split, 896 x 896 patches with 384 px overlap"
    paper = 21.9
    segearth_ov = 21.7
    url = "https://captain-whu.github.io/iSAID/dataset.html"
    codec = LabelCodec(values=identity_values(16), colours={c: i for i, c in enumerate(ISAID_COLOURS)}, unknown=0)
    layout = """
iSAID/                             (mmseg layout, 896 px patches)
  img_dir/val/P0003_0_896_0_896.png ...
  ann_dir/val/P0003_0_896_0_896_instance_color_RGB.png ...   (index labels 0..15)
or the published layout (zips extracted; patches cut on the fly):
iSAID/
  val/images/P0003.png ...                                    (DOTA-v1.0 images)
  val/Semantic_masks/P0003_instance_color_RGB.png ...         (colour labels)
"""

    def find(self, root: Path) -> list[SegSample]:
        label_key = strip_suffixes("_instance_color_RGB")
        if (root / "img_dir").is_dir():
            pairs = pair_files(list_files(need_dir(root, f"img_dir/{self.split}")),
                               need_dir(root, f"ann_dir/{self.split}"), label_key=label_key)
            return [SegSample(id=img.stem, image=img, label=lbl, codec=self.codec) for img, lbl in pairs]
        split_dir = need_dir(root, self.split)
        images = [p for p in list_files(need_dir(split_dir, "images"), recursive=True) if "_instance" not in p.stem]
        masks = need_dir(split_dir, "Semantic_masks")
        labels = {label_key(p.stem): p for p in list_files(masks, recursive=True) if p.stem.endswith("_instance_color_RGB")}
        out = []
        for image in images:
            label = labels.get(image.stem)
            if label is None:
                continue
            try:
                height, width = raster_size(image)
            except BadInputError as exc:  # recorded when the sample is loaded
                out.append(unreadable_tile(image, label, self.codec, str(exc)))
                continue
            for x0, y0, x1, y1 in crop_boxes(height, width, self.patch, self.patch - self.overlap, "slide"):
                out.append(SegSample(id=f"{image.stem}_{y0}_{y1}_{x0}_{x1}", image=image, label=label,
                                     codec=self.codec, window=(x0, y0, x1, y1)))
        if not out:
            raise LayoutMismatch(f"no image in {split_dir}/images has a *_instance_color_RGB.png in {masks}")
        return out
