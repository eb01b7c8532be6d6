"""xBD (Gupta et al., CVPRW 2019), the xView2 building damage set: 1024 x 1024 Maxar images before
and after disasters. Only the pre-disaster images and their building masks are used.

Protocol (SegEarth-OV): the ``test`` pre-disaster images; any non-zero target value is a
building; foreground IoU of "building". Read from SegEarth-OV's layout (``images_pre`` +
``targets_cvt_pre``) or from the published ``images/`` + ``targets/`` (``*_pre_disaster*``).
"""
from __future__ import annotations

from pathlib import Path

from rs_helpers.evaluation.datasets.codec import LabelCodec
from rs_helpers.evaluation.datasets.base import (
    LayoutMismatch,
    SegSample,
    list_files,
    pair_files,
    strip_suffixes,
)
from rs_helpers.evaluation.datasets.binary import BinaryFolders, named

NONZERO = LabelCodec(threshold=1)


class XBDPre(BinaryFolders):
    name = "xbd-pre"
    title = "xBD-pre"
    classes = named("building")
    splits = ("test", "train", "hold", "tier3")
    default_split = "test"
    folders = ("xBD", "xbd", "xview2")
    protocol = "test split, pre-disaster images only, whole 1024 x 1024 images"
    segearth_ov = 37.0
    url = "https://xview2.org"
    layout = """
xBD/                               (SegEarth-OV layout)
  test/images_pre/guatemala-volcano_00000003_pre_disaster.png ...
  test/targets_cvt_pre/guatemala-volcano_00000003_pre_disaster.png ...
or the published layout:
xBD/
  test/images/..._pre_disaster.png
  test/targets/..._pre_disaster_target.png
"""

    def find(self, root: Path) -> list[SegSample]:
        base = root / self.split
        if (base / "images_pre").is_dir():
            label_dir = next((base / d for d in ("targets_cvt_pre", "targets_pre") if (base / d).is_dir()), None)
            images = list_files(base / "images_pre")
        elif (base / "images").is_dir():
            label_dir = base / "targets" if (base / "targets").is_dir() else None
            images = [p for p in list_files(base / "images") if "_pre_disaster" in p.stem]
        else:
            raise LayoutMismatch(f"no {self.split}/images_pre/ or {self.split}/images/ in {root}")
        if label_dir is None:
            raise LayoutMismatch(f"no targets_cvt_pre/ or targets/ next to the images in {base}")
        pairs = pair_files(images, label_dir, label_key=strip_suffixes("_target"))
        return [SegSample(id=img.stem, image=img, label=lbl, codec=NONZERO) for img, lbl in pairs]
