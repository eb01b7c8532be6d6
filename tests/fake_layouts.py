"""Tiny fake copies of the benchmarks' published folder layouts, for the loader tests.

Each ``make_<layout>(tmp)`` writes a handful of 8 x 8 (or slightly larger) files in the real
layout, including files of another split that must not be picked up, and returns a ``Fake``:
the root to pass, the split, how many samples the loader must find, one sample id and the class
indices that sample's labels must decode to. ``attrs`` are class attributes the test shrinks
(crop sizes) so that tiles stay tiny.
"""
from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IGN = 255


@dataclass
class Fake:
    name: str
    root: Path
    split: str | None
    n: int
    sample_id: str
    expected: np.ndarray
    attrs: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- writers
def write(path: Path, array: np.ndarray, quality: int = 100) -> Path:
    """PNG / JPEG via PIL, TIFF via rasterio; 2-D arrays are single-band, H x W x 3 are RGB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.asarray(array, np.uint8)
    if path.suffix.lower() in (".tif", ".tiff"):
        import warnings

        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        data = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
        with rasterio.open(path, "w", driver="GTiff", height=array.shape[0], width=array.shape[1],
                           count=data.shape[0], dtype="uint8") as dst:
            dst.write(data)
    else:
        from PIL import Image

        Image.fromarray(array).save(path, quality=quality) if path.suffix.lower() in (".jpg", ".jpeg") \
            else Image.fromarray(array).save(path)
    return path


def rgb(h: int = 8, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def stripes(values, h: int = 8, w: int = 8) -> np.ndarray:
    """Column stripes cycling through ``values`` (ints -> H x W, RGB triples -> H x W x 3)."""
    values = np.asarray(values)
    cols = values[np.arange(w) % len(values)]
    return np.ascontiguousarray(np.broadcast_to(cols[None], (h,) + cols.shape))


def mapped(raw_values, classes, h: int = 8, w: int = 8) -> np.ndarray:
    """The expected class stripes for ``stripes(raw_values)``."""
    return stripes(classes, h, w).astype(np.uint8)


def halves(h: int = 16, w: int = 16, fg: int = 255) -> np.ndarray:
    """Top half ``fg``, bottom half 0: exact through JPEG (8 x 8 blocks)."""
    out = np.zeros((h, w), np.uint8)
    out[: h // 2] = fg
    return out


def pair(img: Path, lbl: Path, label: np.ndarray, seed: int = 0) -> None:
    h, w = label.shape[:2]
    write(img, rgb(h, w, seed))
    write(lbl, label)


# --------------------------------------------------------------------------- multi-class sets
def make_openearthmap(tmp: Path) -> Fake:
    root = tmp / "OpenEarthMap"
    raw = list(range(9))
    for i, split in enumerate(["val", "val", "train"]):
        pair(root / f"img_dir/{split}/aachen_{i}.tif", root / f"ann_dir/{split}/aachen_{i}.tif", stripes(raw), i)
    return Fake("openearthmap", root, "val", 2, "aachen_0", mapped(raw, raw))


def make_openearthmap_published(tmp: Path) -> Fake:
    root = tmp / "OpenEarthMap_wo_xBD"
    raw = [0, 3, 8]
    for i in range(3):
        pair(root / f"aachen/images/aachen_{i}.tif", root / f"aachen/labels/aachen_{i}.tif", stripes(raw), i)
    (root / "val.txt").write_text("aachen_0.tif\naachen_2.tif\n")
    (root / "train.txt").write_text("aachen_1.tif\n")
    return Fake("openearthmap", root, "val", 2, "aachen_2", mapped(raw, raw))


def make_loveda(tmp: Path) -> Fake:
    root = tmp / "LoveDA"
    raw = list(range(8))
    for i, split in enumerate(["val", "val", "train"]):
        pair(root / f"img_dir/{split}/{i}.png", root / f"ann_dir/{split}/{i}.png", stripes(raw), i)
    return Fake("loveda", root, "val", 2, "0", mapped(raw, [IGN, 0, 1, 2, 3, 4, 5, 6]))


def make_loveda_published(tmp: Path) -> Fake:
    root = tmp / "LoveDA"
    raw = [0, 2, 7]
    pair(root / "Val/Urban/images_png/10.png", root / "Val/Urban/masks_png/10.png", stripes(raw))
    pair(root / "Val/Rural/images_png/20.png", root / "Val/Rural/masks_png/20.png", stripes(raw))
    pair(root / "Train/Urban/images_png/30.png", root / "Train/Urban/masks_png/30.png", stripes(raw))
    return Fake("loveda", tmp, "val", 2, "20", mapped(raw, [IGN, 1, 6]))  # root given as the parent


def make_isaid(tmp: Path) -> Fake:
    root = tmp / "iSAID"
    raw = list(range(16))
    for i, split in enumerate(["val", "train"]):
        stem = f"P000{i}_0_896_0_896"
        pair(root / f"img_dir/{split}/{stem}.png", root / f"ann_dir/{split}/{stem}_instance_color_RGB.png",
             stripes(raw, 8, 16), i)
    return Fake("isaid", root, "val", 1, "P0000_0_896_0_896", mapped(raw, raw, 8, 16))


def make_isaid_published(tmp: Path) -> Fake:
    from rs_helpers.evaluation.datasets.isaid import ISAID_COLOURS

    root = tmp / "iSAID"
    colours = [ISAID_COLOURS[1], ISAID_COLOURS[15], (9, 9, 9)]  # ship, harbor, unknown -> background
    pair(root / "val/images/P0003.png", root / "val/Semantic_masks/P0003_instance_color_RGB.png",
         stripes(colours, 12, 20))
    pair(root / "train/images/P0004.png", root / "train/Semantic_masks/P0004_instance_color_RGB.png",
         stripes(colours, 12, 20))
    # patch 8, step 4 on a 12 x 20 image: x 0,4,8,12 and y 0,4 -> 8 windows; first is y 0..8, x 0..8
    return Fake("isaid", root, "val", 8, "P0003_0_8_0_8", mapped([0], [1, 15, 0], 8, 8),
                attrs={"patch": 8, "overlap": 4})


def _isprs_mmseg(tmp: Path, name: str, folder: str, stem: str) -> Fake:
    root = tmp / folder
    raw = list(range(7))
    pair(root / f"img_dir/val/{stem}.png", root / f"ann_dir/val/{stem}.png", stripes(raw))
    pair(root / f"img_dir/train/x_{stem}.png", root / f"ann_dir/train/x_{stem}.png", stripes(raw))
    return Fake(name, root, "val", 1, stem, mapped(raw, [IGN, 0, 1, 2, 3, 4, 5]))


def make_potsdam(tmp: Path) -> Fake:
    return _isprs_mmseg(tmp, "potsdam", "potsdam", "2_13_0_0_512_512")


def make_vaihingen(tmp: Path) -> Fake:
    return _isprs_mmseg(tmp, "vaihingen", "vaihingen", "area2_0_0_512_512")


ISPRS_RAW = [(0, 0, 255), (255, 255, 0), (0, 0, 0), (255, 255, 255)]  # building, car, boundary, impervious
ISPRS_CLASSES = [1, 4, IGN, 0]


def make_potsdam_published(tmp: Path) -> Fake:
    root = tmp / "potsdam"
    for tile in ("2_13", "2_10"):  # 2_13 is a validation tile, 2_10 a training tile
        write(root / f"2_Ortho_RGB/top_potsdam_{tile}_RGB.tif", rgb(12, 20))
        write(root / f"5_Labels_all_noBoundary/top_potsdam_{tile}_label_noBoundary.tif", stripes(ISPRS_RAW, 12, 20))
        write(root / f"5_Labels_all/top_potsdam_{tile}_label.tif", stripes([(255, 0, 0)], 12, 20))
    # clip 8 / stride 4 on 12 x 20: rows y 0, 4; cols x 0, 8, 12 -> 6 crops
    return Fake("potsdam", root, "val", 6, "2_13_12_4_20_12", mapped([0], ISPRS_CLASSES, 8, 8),
                attrs={"crop": 8, "stride": 4})


def make_vaihingen_published(tmp: Path) -> Fake:
    root = tmp / "Vaihingen"
    for area in ("area2", "area1"):  # area1 is a training area
        write(root / f"top/top_mosaic_09cm_{area}.tif", rgb(12, 20))
        write(root / f"gts_eroded/top_mosaic_09cm_{area}_noBoundary.tif", stripes(ISPRS_RAW, 12, 20))
        write(root / f"gts_full/top_mosaic_09cm_{area}.tif", stripes([(255, 0, 0)], 12, 20))  # same name as image
    return Fake("vaihingen", tmp, "val", 6, "area2_0_0_8_8", mapped([0], ISPRS_CLASSES, 8, 8),
                attrs={"crop": 8, "stride": 4})


def make_uavid(tmp: Path) -> Fake:
    root = tmp / "UAVid"
    raw = list(range(7))
    pair(root / "img_dir/test/seq21_000000_0_1080_0_1280.png", root / "ann_dir/test/seq21_000000_0_1080_0_1280.png",
         stripes(raw))
    return Fake("uavid", root, "test", 1, "seq21_000000_0_1080_0_1280", mapped(raw, raw))


def make_uavid_published(tmp: Path) -> Fake:
    root = tmp / "UAVid"
    colours = [(64, 0, 128), (192, 0, 192), (64, 64, 0), (1, 2, 3)]  # moving car, car, human, unknown
    for split, seq in (("uavid_test", "seq21"), ("uavid_val", "seq16")):
        pair(root / f"{split}/{seq}/Images/000000.png", root / f"{split}/{seq}/Labels/000000.png",
             stripes(colours, 12, 16))
    # patch 6 x 8 (h x w), no overlap, on 12 x 16 -> 4 windows
    return Fake("uavid", root, "test", 4, "seq21_000000_6_12_8_16", mapped([0], [3, 3, 6, 0], 6, 8),
                attrs={"patch": (6, 8)})


def make_udd5(tmp: Path) -> Fake:
    root = tmp / "UDD" / "UDD" / "UDD5"
    raw = list(range(5))
    pair(root / "val/src/DJI_0538.JPG", root / "val/gt/DJI_0538.png", stripes(raw))
    pair(root / "train/src/DJI_0001.JPG", root / "train/gt/DJI_0001.png", stripes(raw))
    return Fake("udd5", tmp, "val", 1, "DJI_0538", mapped(raw, raw))


def make_vdd(tmp: Path) -> Fake:
    root = tmp / "VDD"
    raw = list(range(7))
    for i, split in enumerate(["test", "test", "val"]):
        pair(root / f"{split}/src/DJI_{i}.JPG", root / f"{split}/gt/DJI_{i}.png", stripes(raw), i)
    return Fake("vdd", root, "test", 2, "DJI_1", mapped(raw, raw))


# --------------------------------------------------------------------------- binary sets
def make_whu_aerial(tmp: Path) -> Fake:
    root = tmp / "WHU-BD"
    pair(root / "val/image/2_960.png", root / "val/label/2_960.png", halves())
    pair(root / "train/image/1_1.png", root / "train/label/1_1.png", halves())
    return Fake("whu-aerial", root, "val", 1, "2_960", halves(fg=1))


def make_whu_sat(tmp: Path) -> Fake:
    root = tmp / "WHU_Sat_II" / "Satellite_dataset_Ⅱ_East_Asia" / "1.cropped"
    pair(root / "test/image/0.tif", root / "test/label_cvt/0.tif", halves(fg=1))
    pair(root / "test/image/1.tif", root / "test/label_cvt/1.tif", halves(fg=1))
    return Fake("whu-sat-ii", tmp, "test", 2, "1", halves(fg=1))


def make_inria(tmp: Path) -> Fake:
    root = tmp / "Inria" / "AerialImageDataset" / "train"
    pair(root / "img_dir/split_test/austin1_0_0_1000_1000.png", root / "ann_dir/split_test/austin1_0_0_1000_1000.png",
         halves(fg=1))
    pair(root / "img_dir/split_val/austin8_0_0_1000_1000.png", root / "ann_dir/split_val/austin8_0_0_1000_1000.png",
         halves(fg=1))
    return Fake("inria", root, "test", 1, "austin1_0_0_1000_1000", halves(fg=1))


def make_inria_published(tmp: Path) -> Fake:
    root = tmp / "AerialImageDataset" / "train"
    for tile in ("austin1", "austin2", "austin8"):  # test, train, val
        pair(root / f"images/{tile}.tif", root / f"gt/{tile}.tif", halves(16, 16))
    # clip 8 on 16 x 16 -> 4 crops
    return Fake("inria", tmp, "test", 4, "austin1_8_8_16_16", np.zeros((8, 8), np.uint8), attrs={"crop": 8})


def make_xbd(tmp: Path) -> Fake:
    root = tmp / "xBD"
    pair(root / "test/images_pre/palu_00000001_pre_disaster.png",
         root / "test/targets_cvt_pre/palu_00000001_pre_disaster.png", halves(fg=1))
    return Fake("xbd-pre", root, "test", 1, "palu_00000001_pre_disaster", halves(fg=1))


def make_xbd_published(tmp: Path) -> Fake:
    root = tmp / "xBD"
    target = halves(fg=2)
    pair(root / "test/images/palu_00000001_pre_disaster.png",
         root / "test/targets/palu_00000001_pre_disaster_target.png", target)
    pair(root / "test/images/palu_00000001_post_disaster.png",
         root / "test/targets/palu_00000001_post_disaster_target.png", target)
    return Fake("xbd-pre", root, "test", 1, "palu_00000001_pre_disaster", halves(fg=1))


def make_chn6_cug(tmp: Path) -> Fake:
    root = tmp / "CHN6-CUG"
    pair(root / "val/images/am100001_sat.jpg", root / "val/gt/am100001_mask.png", halves())
    pair(root / "train/images/am100002_sat.jpg", root / "train/gt/am100002_mask.png", halves())
    return Fake("chn6-cug", root, "val", 1, "am100001", halves(fg=1))


def make_chn6_cug_cvt(tmp: Path) -> Fake:
    root = tmp / "CHN6-CUG"
    pair(root / "val/image_cvt/am100001.jpg", root / "val/label_cvt/am100001.png", halves(fg=1))
    return Fake("chn6-cug", root, "val", 1, "am100001", halves(fg=1))


def make_deepglobe(tmp: Path) -> Fake:
    root = tmp / "GlobalRoadSet_Val" / "DeepGlobe_test_1530"
    pair(root / "image_cvt/104_sat.jpg", root / "label_cvt/104_mask.png", halves(fg=1))
    pair(root / "image_cvt/105_sat.jpg", root / "label_cvt/105_mask.png", halves(fg=1))
    return Fake("deepglobe", tmp, None, 2, "104", halves(fg=1))


def make_massachusetts(tmp: Path) -> Fake:
    root = tmp / "GlobalRoadSet_Val" / "Massachusetts_test_49"
    pair(root / "img/10378780_15.tiff", root / "label_cvt/10378780_15.tif", halves(fg=1))
    return Fake("massachusetts", tmp / "GlobalRoadSet_Val", None, 1, "10378780_15", halves(fg=1))


def make_spacenet(tmp: Path) -> Fake:
    root = tmp / "SpaceNet_test_567"
    pair(root / "img/AOI_2_Vegas_img1.png", root / "gt/AOI_2_Vegas_img1.png", halves())
    return Fake("spacenet", root, None, 1, "AOI_2_Vegas_img1", halves(fg=1))


def make_wbs_si(tmp: Path) -> Fake:
    root = tmp / "WaterBodiesDatasetPreprocessed" / "WaterBodiesDatasetPreprocessed"
    for name in ("water_body_2396", "water_body_7231", "water_body_1"):  # the last is not a val image
        write(root / f"Images/{name}.jpg", rgb(16, 16))
        write(root / f"Masks/{name}.jpg", halves())
    return Fake("wbs-si", tmp / "WaterBodiesDatasetPreprocessed", "val", 2, "water_body_7231", halves(fg=1))


OVSS_FAKES = [make_openearthmap, make_loveda, make_isaid, make_potsdam, make_vaihingen, make_uavid, make_udd5,
              make_vdd, make_whu_aerial, make_whu_sat, make_inria, make_xbd, make_chn6_cug, make_deepglobe,
              make_massachusetts, make_spacenet, make_wbs_si]
PUBLISHED_FAKES = [make_openearthmap_published, make_loveda_published, make_isaid_published, make_potsdam_published,
                   make_vaihingen_published, make_uavid_published, make_inria_published, make_xbd_published,
                   make_chn6_cug_cvt]


# --------------------------------------------------------------------------- referring sets
def square(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    out = np.zeros((h, w), bool)
    out[y0:y1, x0:x1] = True
    return out


def make_rrsisd(tmp: Path) -> dict:
    """Three refs (train / val / test): a polygon, a compressed RLE and a list of raw-count RLEs."""
    from rs_helpers.evaluation.datasets.rrsisd import rle_encode

    root = tmp / "RRSIS-D"
    images, anns, refs = [], [], []
    rle_mask = square(16, 16, 2, 3, 9, 12)
    raw = np.asarray(rle_mask, bool).T.ravel()
    segs = [
        [[4.0, 4.0, 11.0, 4.0, 11.0, 11.0, 4.0, 11.0]],  # polygon
        rle_encode(rle_mask),
        [{"size": [16, 16], "counts": _raw_counts(raw)}],
    ]
    for i, (split, seg) in enumerate(zip(["train", "val", "test"], segs), start=1):
        write(root / f"images/rrsisd/JPEGImages/{i:05d}.jpg", rgb(16, 16, i))
        images.append({"id": i, "file_name": f"{i:05d}.jpg", "height": 16, "width": 16})
        anns.append({"id": 100 + i, "image_id": i, "category_id": 1, "segmentation": seg, "bbox": [2, 3, 7, 9]})
        refs.append({"ref_id": i, "ann_id": 100 + i, "image_id": i, "category_id": 1, "split": split,
                     "sentences": [{"raw": f"the {split} vehicle", "sent": f"the {split} vehicle", "sent_id": i}]})
    (root / "rrsisd").mkdir(parents=True)
    (root / "rrsisd/instances.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "vehicle"}]}))
    with open(root / "rrsisd/refs(unc).p", "wb") as fh:
        pickle.dump(refs, fh)
    return {"root": root, "polygon": square(16, 16, 4, 4, 11, 11), "rle": rle_mask}  # COCO: pixels 4..10


def _raw_counts(flat: np.ndarray) -> list[int]:
    counts, current, run = [], False, 0
    for value in flat:
        if bool(value) != current:
            counts.append(run)
            current, run = bool(value), 0
        run += 1
    return counts + [run]


def make_refsegrs(tmp: Path) -> dict:
    root = tmp / "RefSegRS"
    for i in range(3):
        write(root / f"images/{i}.tif", rgb(8, 8, i))
        write(root / f"masks/{i}.tif", (square(8, 8, 0, 0, 4, 4) * 255).astype(np.uint8))
    (root / "output_phrase_test.txt").write_text("0 the road on the left\n1 a white car\n\n1 another car\n7 missing\n")
    (root / "output_phrase_val.txt").write_text("2 the vegetation\n")
    return {"root": root}


def make_earthreason(tmp: Path) -> dict:
    root = tmp / "RSReasonSeg"
    for split, base in (("test", "test"), ("val", "val/val")):  # the doubled val/val of some downloads
        for name, answers in (("a", ["the harbour"]), ("b", [])):
            write(root / f"{base}/images/{split}_{name}.jpg", rgb(8, 8))
            write(root / f"{base}/labels/{split}_{name}.png", (square(8, 8, 0, 0, 4, 4) * 255).astype(np.uint8)
                  if answers else np.zeros((8, 8), np.uint8))
            (root / f"{base}/QAs").mkdir(parents=True, exist_ok=True)
            (root / f"{base}/QAs/{split}_{name}.json").write_text(json.dumps(
                {"questions": [f"where could a boat dock ({name})?", "which area suits a ferry?"], "answer": answers}))
    return {"root": root}
