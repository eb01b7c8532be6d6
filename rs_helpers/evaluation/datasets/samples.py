"""The shipped sample images (``data/samples``) as a benchmark that needs no root, and the
shipped referring / reasoning queries as a referring set.

The samples mix vocabularies: each image carries its own classes and kind, and results are
grouped per family (``dubai``, ``chesapeake``, ``atlanta_buildings``, ``vegas_roads``).
"""
from __future__ import annotations

from rs_helpers.evaluation.datasets.codec import LabelCodec
from rs_helpers.evaluation.datasets.base import OvssDataset, ReferringDataset, SegSample


def _group(name: str) -> str:
    for prefix in ("dubai", "chesapeake"):
        if name.startswith(prefix):
            return prefix
    return name


class Samples(OvssDataset):
    name = "samples"
    title = "shipped samples"
    kind = "mixed"
    splits = ("all",)
    default_split = "all"
    needs_root = False
    protocol = "every shipped sample, whole images, each with its own vocabulary"
    layout = "data/samples/ in the repository (or $RS_HELPERS_DATA/samples)"

    def find(self, root) -> list[SegSample]:
        from rs_helpers.samples import list_samples

        return [SegSample(id=s.name, image=s.image, label=s.ground_truth, codec=LabelCodec(values=s.value_map),
                          classes=list(s.vocabulary), binary=s.binary, group=_group(s.name))
                for s in list_samples()]


class ReferringSamples(ReferringDataset):
    name = "samples"
    title = "shipped referring samples"
    task = "mixed"
    splits = ("all",)
    default_split = "all"
    needs_root = False
    layout = "data/samples/referring/ in the repository"

    def find(self, root) -> list:
        from rs_helpers.samples import load_referring

        return load_referring()
