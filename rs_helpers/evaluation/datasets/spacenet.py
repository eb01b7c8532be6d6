"""SpaceNet 3 roads (Van Etten et al., 2018), as the 567-image test subset packaged in the
GlobalRoadSet validation collection that SegEarth-OV uses.

Protocol: all images of ``SpaceNet_test_567``, whole images; masks 0/255 (0/1 in
``label_cvt``); foreground IoU of "road".
"""
from __future__ import annotations

from rs_helpers.evaluation.datasets.base import strip_suffixes
from rs_helpers.evaluation.datasets.binary import BinaryFolders, named
from rs_helpers.evaluation.datasets.deepglobe import ROAD_IMAGE_DIRS, ROAD_LABEL_DIRS


class SpaceNet(BinaryFolders):
    name = "spacenet"
    title = "SpaceNet"
    classes = named("road")
    splits = ("test",)
    default_split = "test"
    split_subdir = False
    folders = ("SpaceNet_test_567", "GlobalRoadSet_Val/SpaceNet_test_567")
    image_dirs = ROAD_IMAGE_DIRS
    label_dirs = ROAD_LABEL_DIRS
    image_key = staticmethod(strip_suffixes("_sat"))
    label_key = staticmethod(strip_suffixes("_mask"))
    protocol = "GlobalRoadSet SpaceNet_test_567, whole images"
    segearth_ov = 23.8
    url = "https://spacenet.ai/spacenet-roads-dataset/"
    layout = """
GlobalRoadSet_Val/SpaceNet_test_567/         (pass this folder or a parent)
  img/AOI_2_Vegas_img1.png ...     (or image_cvt/, image/, images/)
  label_cvt/AOI_2_Vegas_img1.png ...   (0/1; or gt/, label/ with 0/255)
"""
