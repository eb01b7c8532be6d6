"""Shared finder for the binary extraction sets (building, road, water): an image folder and a
mask folder side by side, matched by file stem.

SegEarth-OV converts the published 0/255 masks into 0/1 copies in ``*_cvt`` folders; both are
read (a ``*_cvt`` folder is preferred when present, as SegEarth-OV evaluates on it).
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rs_helpers.evaluation.datasets.codec import BINARY_PALETTE, binary_codec
from rs_helpers.evaluation.datasets.base import LayoutMismatch, OvssDataset, SegSample, list_files, pair_files


class BinaryFolders(OvssDataset):
    kind = "binary"
    palette = BINARY_PALETTE
    image_dirs: ClassVar[tuple] = ("image", "images")
    label_dirs: ClassVar[tuple] = ("label_cvt", "label", "labels", "gt")
    split_subdir: ClassVar[bool] = True  # images live in <root>/<split>/...

    @staticmethod
    def image_key(stem: str) -> str:
        return stem

    @staticmethod
    def label_key(stem: str) -> str:
        return stem

    def image_filter(self, path: Path) -> bool:
        return True

    def find(self, root: Path) -> list[SegSample]:
        base = root / self.split if self.split_subdir else root
        if not base.is_dir():
            raise LayoutMismatch(f"no {self.split}/ folder in {root}")
        image_dir = next((base / d for d in self.image_dirs if (base / d).is_dir()), None)
        label_dir = next((base / d for d in self.label_dirs if (base / d).is_dir()), None)
        if image_dir is None or label_dir is None:
            missing = self.image_dirs if image_dir is None else self.label_dirs
            raise LayoutMismatch(f"no {' or '.join(d + '/' for d in missing)} in {base}")
        images = [p for p in list_files(image_dir) if self.image_filter(p)]
        pairs = pair_files(images, label_dir, key=self.image_key, label_key=self.label_key)
        codec = binary_codec(cvt=label_dir.name.endswith("_cvt"))
        return [SegSample(id=self.image_key(img.stem), image=img, label=lbl, codec=codec) for img, lbl in pairs]


def named(vocabulary: str) -> list:
    """The binary vocabulary of docs/method.md: background; <target>."""
    return ["background", vocabulary]

