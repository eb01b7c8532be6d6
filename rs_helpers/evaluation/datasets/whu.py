"""WHU building dataset (Ji et al., TGRS 2019): the aerial subset (0.3 m, 512 x 512 tiles of
Christchurch) and satellite dataset II (East Asia, 0.45 m, 512 x 512).

Protocol (SegEarth-OV): WHU-Aerial ``val`` tiles; WHU-Sat.II ``test`` tiles of the cropped
release; masks 0/255 (or SegEarth-OV's 0/1 ``label_cvt`` copies); foreground IoU of "building".
"""
from __future__ import annotations

from rs_helpers.evaluation.datasets.binary import BinaryFolders, named


class WHUAerial(BinaryFolders):
    name = "whu-aerial"
    title = "WHU-Aerial"
    classes = named("building")
    splits = ("val", "test", "train")
    default_split = "val"
    folders = ("WHU-BD", "WHU-Aerial", "WHU_Aerial", "aerial", "3. The cropped aerial image tiles and raster labels")
    protocol = "val tiles (512 x 512), whole images"
    paper = 58.8
    segearth_ov = 49.2
    url = "http://gpcv.whu.edu.cn/data/building_dataset.html"
    layout = """
WHU-BD/                            (the cropped aerial tiles; SegEarth-OV: data/WHU-BD)
  val/image/2_960.png ...          (.png or .tif)
  val/label/2_960.png ...          (0/255; or label_cvt/ with 0/1)
"""


class WHUSatII(BinaryFolders):
    name = "whu-sat-ii"
    title = "WHU-Sat.II"
    classes = named("building")
    splits = ("test", "train")
    default_split = "test"
    folders = ("1.cropped", "Satellite_dataset_Ⅱ_East_Asia/1.cropped",
               "WHU_Sat_II/Satellite_dataset_Ⅱ_East_Asia/1.cropped")
    protocol = "test tiles of the cropped release (512 x 512), whole images"
    segearth_ov = 28.4
    url = "http://gpcv.whu.edu.cn/data/building_dataset.html"
    layout = """
Satellite_dataset_Ⅱ_East_Asia/1.cropped/      (pass this folder or a parent)
  test/image/0.tif ...
  test/label/0.tif ...             (0/255; or label_cvt/ with 0/1)
"""
