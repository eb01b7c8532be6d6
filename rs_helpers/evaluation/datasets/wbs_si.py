"""WBS-SI, "Water Bodies Segmentation in Satellite Images" (Kaggle, Sentinel-2 RGB patches of
various sizes, masks as JPEG 0/255).

Protocol (SegEarth-OV): the 499 images of its ``wbs-si_val.txt`` list (embedded below, or a
``val.txt`` / ``wbs-si_val.txt`` file in the root, which wins); masks thresholded at 128
(0/1 in ``Masks_cvt``); foreground IoU of "water". ``split="all"`` takes every image.
"""
from __future__ import annotations

from pathlib import Path

from rs_helpers.evaluation.datasets.codec import binary_codec
from rs_helpers.evaluation.datasets.base import LayoutMismatch, SegSample, list_files, need_dir, pair_files
from rs_helpers.files import read_text_file
from rs_helpers.evaluation.datasets.binary import BinaryFolders, named

VAL_IDS = """
2396 1074 2182 1715 791 8918 1743 8244 7994 7098 1737 34 1705 2295 8899 8759 774 7060 7852 8610 7421 1399 72 7704
2306 8631 1654 7864 8055 76 2537 1404 1444 1614 2247 2196 1680 748 8432 2491 1470 8662 7334 7953 1277 1730 7835 684
8681 697 2264 1073 2172 8700 8254 8436 8683 8507 1070 7608 7260 670 8720 8420 7256 1745 7960 8305 7040 2415 850 1103
8710 8531 7263 7287 1787 7176 8649 7935 1336 2205 7159 7146 7327 658 1630 2489 7480 606 2240 1270 7992 6403 1181 2351
1790 1670 7721 7355 1579 7429 1419 7317 8515 889 6369 7709 8551 8459 6424 7369 7885 8890 8347 8164 8125 8024 8772 1208
103 1393 1629 7062 2261 8430 8925 8458 716 8868 1587 7029 8821 8861 2355 7321 2237 2514 7642 701 1047 8627 7183 683
837 1602 7858 7344 2289 1441 8659 7304 1241 6387 694 8929 2373 7544 8563 8562 8927 1638 7757 915 14 957 7745 7921
8073 1159 7965 2556 8248 7838 2302 7552 7888 18 7092 8573 1078 1134 7428 8743 1494 8819 7626 2505 8018 8195 8938 7871
7390 1500 100 1580 654 7553 7160 2397 8797 8481 2560 1178 8731 8424 1324 7154 7214 852 1454 7943 7922 8246 1408 997
1367 1355 2522 8411 8657 8687 7439 27 2235 1109 8139 1747 8722 1756 2221 2258 8505 2220 7094 7145 7072 2437 717 7337
7759 2404 2430 7624 2557 8539 799 7538 801 2201 1653 7093 1684 1065 1167 7819 7540 8950 1351 1635 7870 8058 8327 1618
8581 1826 7384 727 7600 6386 7187 8383 829 1227 7313 8325 1081 7740 2268 46 8729 1033 159 7519 8692 8401 7916 2421
906 7295 2365 1840 2332 7032 8790 7822 8386 8023 8053 8741 7583 77 7979 1080 8482 1298 978 8737 2288 7851 7766 6413
106 7833 7595 7156 8064 734 7485 1257 8516 7550 8243 8 1285 919 1717 2214 7416 8065 7184 700 971 8026 8740 8942 1031
721 2534 1295 7796 40 7725 8088 8203 2448 7205 1416 1713 8202 651 2474 659 8628 7075 7246 8393 8624 8891 1242 7087
1750 8339 8863 7573 8784 7682 890 7281 7415 8185 7716 8467 7886 6371 894 189 97 1064 8375 715 756 7503 162 887 8561
7928 7330 1210 8500 1287 2400 1819 8351 2366 7816 8788 7219 1008 1363 730 6377 8489 95 985 1272 7641 8763 1586 982
1520 7597 7776 1639 1767 1450 917 7241 7963 7713 8498 1223 107 7364 7431 190 7324 1679 7413 8017 7076 1642 2314 7153
7232 7144 688 1039 7305 8584 8781 595 803 7276 7190 2330 1647 2298 773 8572 7194 16 2533 783 1190 7677 925 7722 8477
8686 1129 8189 8753 7951 705 1812 6376 8399 2508 1130 995 2636 8367 672 8866 1133 8245 8941 105 998 7046 893 1848
8193 1655 8334 8192 8163 7726 693 7038 114 1155 661 8684 8810 8141 7235 7231
"""


def val_names() -> list[str]:
    return [f"water_body_{i}" for i in VAL_IDS.split()]


class WBSSI(BinaryFolders):
    name = "wbs-si"
    title = "WBS-SI"
    classes = named("water")
    splits = ("val", "all")
    default_split = "val"
    split_subdir = False
    folders = ("WaterBodiesDatasetPreprocessed", "WaterBodiesDatasetPreprocessed/WaterBodiesDatasetPreprocessed",
               "water-body-segmentation-in-satellite-images/WaterBodiesDatasetPreprocessed/WaterBodiesDatasetPreprocessed")
    protocol = "the 499 images of SegEarth-OV's wbs-si_val.txt, whole images"
    segearth_ov = 60.2
    url = "https://www.kaggle.com/datasets/shirshmall/water-body-segmentation-in-satellite-images"
    layout = """
WaterBodiesDatasetPreprocessed/    (the Kaggle download nests it twice; pass either)
  Images/water_body_2396.jpg ...
  Masks/water_body_2396.jpg ...    (0/255 JPEG; or Masks_cvt/ with 0/1)
  val.txt                          (optional: one image name a line, overrides the built-in list)
"""

    def find(self, root: Path) -> list[SegSample]:
        images = list_files(need_dir(root, "Images"))
        label_dir = need_dir(root, "Masks_cvt", "Masks")
        if self.split == "val":
            listing = next((root / n for n in ("val.txt", "wbs-si_val.txt") if (root / n).is_file()), None)
            wanted = (set(Path(w).stem for w in read_text_file(listing, 'split listing').split()) if listing
                      else set(val_names()))
            images = [p for p in images if p.stem in wanted]
            if not images:
                raise LayoutMismatch(f"none of the {len(wanted)} validation images in {root / 'Images'}")
        pairs = pair_files(images, label_dir)
        codec = binary_codec(cvt=label_dir.name.endswith("_cvt"))
        return [SegSample(id=img.stem, image=img, label=lbl, codec=codec) for img, lbl in pairs]
