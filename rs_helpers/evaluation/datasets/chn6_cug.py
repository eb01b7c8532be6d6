"""CHN6-CUG (Zhu et al., 2021): 0.5 m road images of six Chinese cities, 512 x 512.

Protocol (SegEarth-OV): the ``val`` split, whole images; road masks 0/255 (0/1 in
``label_cvt``); foreground IoU of "road". Published names end in ``_sat.jpg`` / ``_mask.png``.
"""
from __future__ import annotations

from rs_helpers.evaluation.datasets.base import strip_suffixes
from rs_helpers.evaluation.datasets.binary import BinaryFolders, named


class CHN6CUG(BinaryFolders):
    name = "chn6-cug"
    title = "CHN6-CUG"
    classes = named("road")
    splits = ("val", "train")
    default_split = "val"
    folders = ("CHN6-CUG", "CHN6_CUG")
    image_dirs = ("image_cvt", "images", "image")
    label_dirs = ("label_cvt", "gt", "label", "labels")
    image_key = staticmethod(strip_suffixes("_sat"))
    label_key = staticmethod(strip_suffixes("_mask"))
    protocol = "val split, whole 512 x 512 images"
    paper = 36.4
    segearth_ov = 35.4
    url = "https://grzy.cug.edu.cn/zhuqiqi/zh_CN/yjgk/32368/list/index.htm"
    layout = """
CHN6-CUG/
  val/images/am100001_sat.jpg ...  (or SegEarth-OV's image_cvt/am100001.jpg)
  val/gt/am100001_mask.png ...     (0/255; or label_cvt/am100001.png with 0/1)
"""
