"""The SegEarth-OV3 protocol: SAM 3's fusion settings and class lists per benchmark, as published.

Each row is read from ``earth-insights/SegEarth-OV-3``: ``configs/cfg_<set>.py`` (the ``model`` dict:
``confidence_threshold``, ``prob_thd``, ``bg_idx``, ``slide_crop`` / ``slide_stride``; a value the
config does not set is ``SegEarthOV3Segmentation``'s default: 0.5, 0.0, 0, 0 / 0) and the class file
it names (``classname_path``; one class per line, synonyms separated by commas). The datasets are
read and scored as under the SegEarth-OV protocol (the same mmseg dataset classes, so the same
``reduce_zero_label``); only the prediction differs. Three benchmarks prompt other class names than
SegEarth-OV does (LoveDA, Potsdam, Vaihingen): :func:`class_changes` lists them.

    >>> p = get_sam3_protocol("potsdam"); p.confidence_threshold, p.prob_thd, p.bg_idx
    (0.2, 0.1, 5)
    >>> get_sam3_protocol("openearthmap").settings().slide_crop
    512
"""
from __future__ import annotations

from dataclasses import dataclass

from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.datasets.registry import OVSS_REGISTRY, canonical_name
from rs_helpers.evaluation.protocols import SEGEARTH_OV_CONFIGS
from rs_helpers.ovss.sam3_fusion import Sam3Settings

NAME = "segearth-ov3"
SOURCE = "earth-insights/SegEarth-OV-3"


@dataclass(frozen=True)
class Sam3Protocol:
    """How SegEarth-OV3 predicts one benchmark with SAM 3 (and how it is scored)."""

    dataset: str
    config: str  # configs/cfg_<set>.py
    class_file: str  # its classname_path, configs/cls_<set>.txt
    classes: tuple[str, ...]  # that file's lines
    confidence_threshold: float  # model.confidence_threshold (default 0.5)
    prob_thd: float  # model.prob_thd (default 0.0)
    bg_idx: int = 0  # model.bg_idx (default 0)
    slide_crop: int = 0  # model.slide_crop (default 0: the whole image in one view)
    slide_stride: int = 0  # model.slide_stride
    reduce_zero_label: bool = False  # the dataset class's, as under segearth-ov
    reported_miou: float | None = None
    name: str = NAME
    kind: str = "ovss"
    ignore_index: int = 255  # mmseg IoUMetric(ignore_index=255)

    def settings(self, **overrides) -> Sam3Settings:
        """The fusion settings of this protocol (``overrides`` change heads, batch sizes, ...)."""
        values = dict(confidence_threshold=self.confidence_threshold, prob_thd=self.prob_thd, bg_idx=self.bg_idx,
                      slide_crop=self.slide_crop, slide_stride=self.slide_stride or None)
        return Sam3Settings(**{**values, **overrides})

    @property
    def class_string(self) -> str:
        return ";".join(self.classes)


_BINARY = ("background", "building")
_ROADS = ("background", "road")
_ISPRS = ("road", "building", "grass", "tree", "car", "clutter")

# registry name: (config, class file, classes, confidence_threshold, prob_thd, bg_idx, slide_crop, slide_stride)
_ROWS = {
    "openearthmap": ("cfg_openearthmap.py", "cls_openearthmap.txt",
                     ("background", "bareland,barren", "grass", "pavement", "road", "tree,forest", "water,river",
                      "cropland", "building,roof,house"), 0.1, 0.1, 0, 512, 512),
    "loveda": ("cfg_loveda.py", "cls_loveda.txt",
               ("background", "building,house", "road", "water", "barren,bareland,soil", "forest,tree",
                "agricultural"), 0.5, 0.5, 0, 0, 0),
    "isaid": ("cfg_iSAID.py", "cls_iSAID.txt",
              ("background", "ship", "store tank", "baseball diamond", "tennis court", "basketball court",
               "ground track field", "bridge", "large vehicle", "small vehicle", "helicopter", "swimming pool",
               "roundabout", "soccer ball field", "plane", "harbor"), 0.4, 0.5, 0, 0, 0),
    "potsdam": ("cfg_potsdam.py", "cls_potsdam.txt", _ISPRS, 0.2, 0.1, 5, 0, 0),
    "vaihingen": ("cfg_vaihingen.py", "cls_vaihingen.txt", _ISPRS, 0.4, 0.1, 5, 0, 0),
    "uavid": ("cfg_uavid.py", "cls_uavid.txt",
              ("background", "building", "road", "car", "tree", "vegetation", "human"), 0.3, 0.3, 0, 0, 0),
    "udd5": ("cfg_udd5.py", "cls_udd5.txt", ("vegetation", "building", "road", "vehicle", "background"),
             0.5, 0.1, 4, 0, 0),
    "vdd": ("cfg_vdd.py", "cls_vdd.txt",
            ("background", "facade", "road", "vegetation", "vehicle", "roof", "water"), 0.5, 0.3, 0, 0, 0),
    "whu-aerial": ("cfg_whu_aerial.py", "cls_whu.txt", _BINARY, 0.5, 0.4, 0, 0, 0),
    "whu-sat-ii": ("cfg_whu_sat_II.py", "cls_whu.txt", _BINARY, 0.5, 0.4, 0, 0, 0),
    "inria": ("cfg_inria.py", "cls_inria.txt", _BINARY, 0.5, 0.5, 0, 0, 0),
    "xbd-pre": ("cfg_xBD.py", "cls_xBD.txt", _BINARY, 0.1, 0.1, 0, 0, 0),
    "chn6-cug": ("cfg_chn6-cug.py", "cls_chn6-cug.txt", _ROADS, 0.5, 0.3, 0, 0, 0),
    "deepglobe": ("cfg_deepglobe_road.py", "cls_roadval.txt", _ROADS, 0.5, 0.4, 0, 0, 0),
    "massachusetts": ("cfg_massachusetts_road.py", "cls_roadval.txt", _ROADS, 0.5, 0.3, 0, 0, 0),
    "spacenet": ("cfg_spacenet_road.py", "cls_roadval.txt", _ROADS, 0.3, 0.3, 0, 0, 0),
    "wbs-si": ("cfg_wbs-si.py", "cls_wbs-si.txt", ("background", "water"), 0.3, 0.3, 0, 0, 0),
}

# mIoU (%) reported by SegEarth-OV3 (arXiv 2512.08730), as quoted in issue #15; the repository's
# README shows its tables only as images, so the other benchmarks' numbers are not recorded here.
REPORTED_MIOU = {"openearthmap": 42.9, "loveda": 47.4, "potsdam": 57.8, "vaihingen": 60.8}


def sam3_datasets() -> list[str]:
    """The benchmarks the protocol covers (registry names)."""
    return list(_ROWS)


def get_sam3_protocol(dataset: str) -> Sam3Protocol:
    """The SegEarth-OV3 protocol of ``dataset`` (any spelling the registry accepts)."""
    name = canonical_name(dataset, OVSS_REGISTRY)
    if name not in _ROWS:
        raise BadInputError(f"the {NAME} protocol covers {', '.join(_ROWS)}, not {dataset!r}; use native")
    config, class_file, classes, confidence, prob_thd, bg_idx, crop, stride = _ROWS[name]
    return Sam3Protocol(dataset=name, config=f"configs/{config}", class_file=f"configs/{class_file}",
                        classes=tuple(classes), confidence_threshold=confidence, prob_thd=prob_thd, bg_idx=bg_idx,
                        slide_crop=crop, slide_stride=stride, reduce_zero_label=SEGEARTH_OV_CONFIGS[name][3],
                        reported_miou=REPORTED_MIOU.get(name))


def class_changes(dataset: str, ours=None) -> list[tuple[int, str, str]]:
    """``(index, our class, SegEarth-OV3's)`` where the protocol prompts other names than the
    dataset loader's class list (``ours``, default the loader's ``classes``)."""
    protocol = get_sam3_protocol(dataset)
    if ours is None:
        from rs_helpers.evaluation.datasets.registry import dataset_class

        ours = dataset_class(protocol.dataset).classes
    if len(ours) != len(protocol.classes):
        raise BadInputError(f"{protocol.dataset}: {len(ours)} classes here, {len(protocol.classes)} in "
                            f"{protocol.class_file}")
    return [(i, a, b) for i, (a, b) in enumerate(zip(ours, protocol.classes)) if a != b]


def describe_sam3(protocol: Sam3Protocol) -> str:
    """One line of the protocol's settings, for the top of a report."""
    slide = (f"sliding {protocol.slide_crop} px windows, stride {protocol.slide_stride}" if protocol.slide_crop
             else "the whole image in one view")
    return (f"protocol {protocol.name} ({protocol.dataset}, {SOURCE} {protocol.config}, {protocol.class_file}): "
            f"views squashed to SAM 3's input, confidence > {protocol.confidence_threshold:g}, prob_thd {protocol.prob_thd:g} -> "
            f"bg_idx {protocol.bg_idx} ({protocol.classes[protocol.bg_idx].split(',')[0]}), {slide}; "
            f"IoU from the summed confusion matrix, ignore {protocol.ignore_index}")
