"""The shipped sample images with their ground truth, class names and palettes.

``list_samples()`` is the catalogue; ``Sample.load()`` returns the image (uint8 RGB plus
georeferencing) and the ground truth as class indices 0..K-1 with 255 for "ignore".
``load_referring()`` returns the referring / reasoning queries with their target masks.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rs_helpers.errors import BadInputError
from rs_helpers.geo.rasters import RasterImage, read_image, read_mask

IGNORE = 255
DATA_ENV = "RS_HELPERS_DATA"

DUBAI_CLASSES = ["building", "land", "road", "vegetation", "water"]
DUBAI_VOCAB = ["building,roof,house", "land,bare soil,sand,desert", "road,highway,street",
               "vegetation,tree,grass", "water,river,sea"]
# display colours, not the dataset's mask colours (data/samples/MANIFEST.md): those draw water orange and
# building and land as two close purples; these keep every pair apart and water blue
DUBAI_PALETTE = [(228, 26, 28), (232, 180, 100), (152, 78, 163), (77, 175, 74), (55, 126, 184)]
CHESAPEAKE_CLASSES = ["water", "tree canopy", "low vegetation", "barren", "impervious", "road"]
CHESAPEAKE_VOCAB = ["water,river", "tree,forest", "grass,field,farmland", "barren,bare soil",
                    "building,roof,parking lot", "road"]
CHESAPEAKE_PALETTE = [(0, 197, 255), (38, 115, 0), (163, 255, 115), (255, 170, 0), (156, 156, 156), (0, 0, 0)]
BINARY_PALETTE = [(0, 0, 0), (255, 255, 255)]


@dataclass
class Sample:
    """One shipped image and its ground truth.

    ``value_map`` maps raw ground-truth values to class indices; unmapped values are ignored.
    ``vocabulary`` holds the text used to segment it (one entry per class, commas = synonyms).
    ``binary`` samples have classes ["background", target] and are scored by foreground IoU.
    """

    name: str
    image: Path
    ground_truth: Path
    class_names: list[str]
    vocabulary: list[str]
    palette: list[tuple[int, int, int]]
    value_map: dict[int, int]
    source: str
    license: str
    binary: bool = False
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def load_image(self, bands=None) -> RasterImage:
        return read_image(self.image, bands=bands)

    def load_labels(self) -> np.ndarray:
        """Ground truth as uint8 class indices, ``IGNORE`` (255) where unlabelled."""
        raw = read_mask(self.ground_truth)
        lut = np.full(max(256, int(raw.max()) + 1), IGNORE, np.uint8)
        for value, index in self.value_map.items():
            lut[value] = index
        return lut[raw]

    def load(self, bands=None) -> tuple[RasterImage, np.ndarray]:
        return self.load_image(bands), self.load_labels()


def data_root() -> Path:
    """The folder holding ``samples/``: ``$RS_HELPERS_DATA`` or the repository's ``data/``."""
    env = os.environ.get(DATA_ENV)
    candidates = [Path(env).expanduser()] if env else []
    candidates += [Path(__file__).resolve().parents[1] / "data", Path.cwd() / "data", Path.cwd().parent / "data"]
    for folder in candidates:
        if (folder / "samples").is_dir():
            return folder
    raise BadInputError(
        "sample data not found: clone the repository (its data/ folder) or set "
        f"{DATA_ENV} to a folder that contains samples/"
    )


def samples_dir() -> Path:
    return data_root() / "samples"


def list_samples() -> list[Sample]:
    """Every sample pair, in a fixed order."""
    root = samples_dir()
    out: list[Sample] = []
    dubai = sorted((root / "dubai_cc0").glob("dubai_tile*_part*.jpg"))
    for img in dubai:
        out.append(Sample(
            name=img.stem, image=img, ground_truth=img.with_name(img.stem + "_mask_index.png"),
            class_names=DUBAI_CLASSES, vocabulary=DUBAI_VOCAB, palette=DUBAI_PALETTE,
            value_map={i + 1: i for i in range(5)}, source="Dubai aerial imagery (Humans in the Loop, MBRSC)",
            license="CC0 1.0", notes="coarse polygon labels; adjacent buildings often merged",
        ))
    ches = root / "chesapeake"
    for stem in ["wv_1m_2014-m_3708035_ne_17_1-0", "wv_1m_2014-m_3708035_ne_17_1-2"]:
        out.append(Sample(
            name=f"chesapeake_{stem[-1]}", image=ches / f"{stem}_naip_rgb.png",
            ground_truth=ches / f"{stem}_lc_index.png", class_names=CHESAPEAKE_CLASSES,
            vocabulary=CHESAPEAKE_VOCAB, palette=CHESAPEAKE_PALETTE,
            value_map={i + 1: i for i in range(6)}, source="NAIP 2014 1 m + Chesapeake land cover",
            license="public domain imagery; CC0 labels", notes="un-georeferenced 256 px patch",
        ))
    out.append(Sample(
        name="chesapeake_tile", image=ches / "m_3907833_nw_17_1_naip-new.tif",
        ground_truth=ches / "m_3907833_nw_17_1_lc.tif", class_names=CHESAPEAKE_CLASSES,
        vocabulary=CHESAPEAKE_VOCAB, palette=CHESAPEAKE_PALETTE, value_map={i + 1: i for i in range(6)},
        source="NAIP + Chesapeake land cover", license="public domain imagery; CC0 labels",
        notes="4-band GeoTIFF (EPSG:26917) resampled to ~24x29 m pixels",
    ))
    sn = root / "spacenet_ccbysa4"
    out.append(Sample(
        name="atlanta_buildings", image=sn / "atlanta_sn4_pan.tif", ground_truth=sn / "atlanta_sn4_buildings_mask.tif",
        class_names=["background", "building"], vocabulary=["background", "building,roof,house"],
        palette=BINARY_PALETTE, value_map={0: 0, 1: 1}, binary=True,
        source="SpaceNet 4 Atlanta (WorldView-2 PAN 0.5 m)", license="CC BY-SA 4.0",
        notes="1-band uint16 GeoTIFF, EPSG:32616", extra={"geojson": sn / "atlanta_sn4_buildings.geojson"},
    ))
    out.append(Sample(
        name="vegas_roads", image=sn / "vegas_sn3_pan.tif", ground_truth=sn / "vegas_sn3_roads_mask.tif",
        class_names=["background", "road"], vocabulary=["background", "road,street"],
        palette=BINARY_PALETTE, value_map={0: 0, 255: 1}, binary=True,
        source="SpaceNet 3 Las Vegas (WorldView-3 PAN 0.3 m)", license="CC BY-SA 4.0",
        notes="1-band uint16 GeoTIFF, EPSG:4326; road labels are partial",
        extra={"geojson": sn / "vegas_sn3_roads.geojson"},
    ))
    return out


def get_sample(name: str) -> Sample:
    for sample in list_samples():
        if sample.name == name:
            return sample
    names = ", ".join(s.name for s in list_samples())
    raise BadInputError(f"no sample named {name!r}; choose one of {names}")


@dataclass
class ReferringSample:
    """A referring, semantic or reasoning query with its binary target mask."""

    id: str
    image: Path
    text: str
    task: str  # "referring" | "semantic" | "reasoning"
    target_class: str
    mask: Path
    bbox_xyxy: tuple[int, int, int, int]
    license: str = ""

    def load(self) -> tuple[RasterImage, np.ndarray]:
        """The image and the target as a boolean mask."""
        return read_image(self.image), read_mask(self.mask) > 0


def load_referring() -> list[ReferringSample]:
    root = samples_dir()
    records = json.loads((root / "referring" / "referring_expressions.json").read_text())
    return [ReferringSample(
        id=r["id"], image=root / r["image"], text=r["expression"], task=r["type"],
        target_class=r["target_class"], mask=root / r["target_mask"], bbox_xyxy=tuple(r["bbox_xyxy"]),
        license=r.get("license", ""),
    ) for r in records]
