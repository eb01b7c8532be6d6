"""Benchmark loaders: the 17 open-vocabulary segmentation sets of the method (SegEarth-OV
protocol), the referring / reasoning sets (RRSIS-D, RefSegRS, EarthReason) and the shipped
samples. One small module per dataset or family; ``base`` holds the shared pieces.

    >>> from rs_helpers.evaluation.datasets import get_dataset, list_datasets
    >>> ds = get_dataset("loveda", root="/data/LoveDA")            # or $RS_HELPERS_BENCHMARKS
    >>> image, labels = ds[0].load()                                # RasterImage, uint8 (255 = ignore)
    >>> ds.classes, ds.kind, ds.paper, ds.segearth_ov
"""
from rs_helpers.evaluation.datasets.codec import IGNORE, LabelCodec
from rs_helpers.evaluation.datasets.base import ROOT_ENV, OvssDataset, ReferringDataset, SegSample
from rs_helpers.evaluation.datasets.crops import crop_boxes, crops
from rs_helpers.evaluation.datasets.registry import (
    canonical_name,
    dataset_class,
    get_dataset,
    get_referring_dataset,
    list_datasets,
    referring_class,
)

OVSS_BENCHMARKS = ["openearthmap", "loveda", "isaid", "potsdam", "vaihingen", "uavid", "udd5", "vdd",
                   "whu-aerial", "whu-sat-ii", "inria", "xbd-pre", "chn6-cug", "deepglobe", "massachusetts",
                   "spacenet", "wbs-si"]
# Averages reported in docs/method.md (the per-dataset numbers live on each loader class).
REPORTED_AVERAGES = {
    "multiclass": {"paper": 41.3, "segearth_ov": 39.2},
    "binary": {"paper": 35.1, "segearth_ov": 34.2},
}

__all__ = ["IGNORE", "ROOT_ENV", "LabelCodec", "OvssDataset", "ReferringDataset", "SegSample", "canonical_name",
           "dataset_class", "get_dataset", "get_referring_dataset", "list_datasets", "referring_class",
           "crop_boxes", "crops", "OVSS_BENCHMARKS", "REPORTED_AVERAGES"]
