"""DeepGlobe road extraction (Demir et al., CVPRW 2018), as the 1530-image test subset of the
GlobalRoadSet validation collection (GRNet, Lu et al.) that SegEarth-OV uses.

Protocol: all images of ``DeepGlobe_test_1530``, whole 1024 x 1024 images; road masks 0/255
(0/1 in ``label_cvt``); foreground IoU of "road".
"""
from __future__ import annotations

from rs_helpers.evaluation.datasets.base import strip_suffixes
from rs_helpers.evaluation.datasets.binary import BinaryFolders, named

ROAD_IMAGE_DIRS = ("image_cvt", "img", "image", "images")
ROAD_LABEL_DIRS = ("label_cvt", "gt", "label", "labels", "mask", "masks")


class DeepGlobe(BinaryFolders):
    name = "deepglobe"
    title = "DeepGlobe"
    classes = named("road")
    splits = ("test",)
    default_split = "test"
    split_subdir = False
    folders = ("DeepGlobe_test_1530", "GlobalRoadSet_Val/DeepGlobe_test_1530")
    image_dirs = ROAD_IMAGE_DIRS
    label_dirs = ROAD_LABEL_DIRS
    image_key = staticmethod(strip_suffixes("_sat"))
    label_key = staticmethod(strip_suffixes("_mask"))
    protocol = "GlobalRoadSet DeepGlobe_test_1530, whole images"
    paper = 15.9
    segearth_ov = 17.8
    url = "https://github.com/xiaoyan07/GRNet_GRSet"
    layout = """
GlobalRoadSet_Val/DeepGlobe_test_1530/       (pass this folder or a parent)
  image_cvt/104_sat.jpg ...        (or img/, image/, images/)
  label_cvt/104_mask.png ...       (0/1; or gt/, label/ with 0/255)
"""
