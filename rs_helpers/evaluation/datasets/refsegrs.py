"""RefSegRS (Yuan et al., TGRS 2024, "RRSIS"): 4,420 referring expressions on 512 x 512 aerial
patches of Enschede, in train / val / test.

Published format (Hugging Face ``JessicaYuan/RefSegRS``): ``images/<id>.tif``,
``masks/<id>.tif`` (0/255) and ``output_phrase_{split}.txt`` with one ``<id> <phrase>`` a line.
Boxes are not published: ``bbox_xyxy`` is None (``mask_bbox(mask)`` computes one).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from rs_helpers.samples import ReferringSample
from rs_helpers.evaluation.datasets.base import LayoutMismatch, ReferringDataset, list_files
from rs_helpers.files import text_lines

LINE = re.compile(r"^\s*(\S+)\s+(.*\S)\s*$")


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of a boolean mask, x1/y1 exclusive; None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


class RefSegRS(ReferringDataset):
    name = "refsegrs"
    title = "RefSegRS"
    task = "referring"
    splits = ("test", "val", "train")
    default_split = "test"
    folders = ("RefSegRS", "rs_ref_seg/RefSegRS")
    url = "https://huggingface.co/datasets/JessicaYuan/RefSegRS"
    layout = """
RefSegRS/
  images/0.tif ...
  masks/0.tif ...                  (0/255)
  output_phrase_test.txt           (lines "<id> <phrase>"; also _val, _train)
"""

    def find(self, root: Path) -> list[ReferringSample]:
        listing = root / f"output_phrase_{self.split}.txt"
        if not listing.is_file():
            raise LayoutMismatch(f"no {listing.name} in {root}")
        images = {p.stem: p for p in list_files(root / "images")}
        masks = {p.stem: p for p in list_files(root / "masks")}
        if not images or not masks:
            raise LayoutMismatch(f"no images/ and masks/ with files in {root}")
        out, seen = [], {}
        for _, line in text_lines(listing, "phrase listing"):
            match = LINE.match(line)
            if not match or match.group(1) not in images or match.group(1) not in masks:
                continue
            key, phrase = match.groups()
            seen[key] = seen.get(key, 0) + 1
            out.append(ReferringSample(
                id=f"refsegrs_{key}" + (f"_{seen[key] - 1}" if seen[key] > 1 else ""), image=images[key],
                text=phrase, task="referring", target_class="", mask=masks[key], bbox_xyxy=None))
        return out
