"""Massachusetts Roads (Mnih, 2013): 1 m aerial images, 1500 x 1500; the 49-image test set as
packaged in the GlobalRoadSet validation collection that SegEarth-OV uses.

Protocol: all images of ``Massachusetts_test_49``, whole images; masks 0/255 (0/1 in
``label_cvt``); foreground IoU of "road".
"""
from __future__ import annotations

from rs_helpers.evaluation.datasets.base import strip_suffixes
from rs_helpers.evaluation.datasets.binary import BinaryFolders, named
from rs_helpers.evaluation.datasets.deepglobe import ROAD_IMAGE_DIRS, ROAD_LABEL_DIRS


class Massachusetts(BinaryFolders):
    name = "massachusetts"
    title = "Massachusetts"
    classes = named("road")
    splits = ("test",)
    default_split = "test"
    split_subdir = False
    folders = ("Massachusetts_test_49", "GlobalRoadSet_Val/Massachusetts_test_49")
    image_dirs = ROAD_IMAGE_DIRS
    label_dirs = ROAD_LABEL_DIRS
    image_key = staticmethod(strip_suffixes("_sat"))
    label_key = staticmethod(strip_suffixes("_mask"))
    protocol = "GlobalRoadSet Massachusetts_test_49, whole images"
    paper = 12.2
    segearth_ov = 11.5
    url = "https://www.cs.toronto.edu/~vmnih/data/"
    layout = """
GlobalRoadSet_Val/Massachusetts_test_49/     (pass this folder or a parent)
  img/10378780_15.png ...          (or image_cvt/, image/, images/; .tiff too)
  label_cvt/10378780_15.png ...    (0/1; or gt/, label/ with 0/255)
"""
