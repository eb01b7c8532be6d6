"""The registry of benchmark loaders: names (and aliases) -> loader classes, imported lazily.

``get_dataset(name, root=None, split=None)`` returns an OVSS benchmark, ``get_referring_dataset``
a referring / reasoning one, ``list_datasets(kind)`` their names.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Mapping

from rs_helpers.errors import BadInputError

# name -> "module:Class"; aliases are normalised by ``canonical_name``.
OVSS_REGISTRY = {
    "openearthmap": "openearthmap:OpenEarthMap", "loveda": "loveda:LoveDA", "isaid": "isaid:ISAID",
    "potsdam": "potsdam:Potsdam", "vaihingen": "potsdam:Vaihingen", "uavid": "uavid:UAVid", "udd5": "udd5:UDD5",
    "vdd": "vdd:VDD", "whu-aerial": "whu:WHUAerial", "whu-sat-ii": "whu:WHUSatII", "inria": "inria:Inria",
    "xbd-pre": "xbd:XBDPre", "chn6-cug": "chn6_cug:CHN6CUG", "deepglobe": "deepglobe:DeepGlobe",
    "massachusetts": "massachusetts:Massachusetts", "spacenet": "spacenet:SpaceNet", "wbs-si": "wbs_si:WBSSI",
    "samples": "samples:Samples",
}
REFERRING_REGISTRY = {
    "rrsisd": "rrsisd:RRSISD", "refsegrs": "refsegrs:RefSegRS", "earthreason": "earthreason:EarthReason",
    "samples": "samples:ReferringSamples", "jsonl": "jsonl:JsonlLines",
}
_ALIASES = {"oem": "openearthmap", "xbd": "xbd-pre", "whuaerial": "whu-aerial", "whusat": "whu-sat-ii",
            "whusatii": "whu-sat-ii", "whusat2": "whu-sat-ii", "chn6": "chn6-cug", "wbs": "wbs-si",
            "massachusettsroads": "massachusetts", "deepgloberoad": "deepglobe", "rsreasonseg": "earthreason"}


def _squash(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def canonical_name(name: str, registry: Mapping[str, str]) -> str:
    """``"WHU_Aerial"``, ``"whu-aerial"``, ``"xBD"`` ... -> the registry's key."""
    squashed = _squash(name)
    by_squash = {_squash(k): k for k in registry}
    if squashed in by_squash:
        return by_squash[squashed]
    alias = _ALIASES.get(squashed)
    if alias in registry:
        return alias
    raise BadInputError(f"unknown dataset {name!r}; choose one of {', '.join(registry)}")


def _load_class(spec: str):
    module, cls = spec.split(":")
    return getattr(importlib.import_module(f".{module}", __package__), cls)


def dataset_class(name: str):
    """The loader class of an OVSS benchmark (no root needed, e.g. to read its protocol)."""
    return _load_class(OVSS_REGISTRY[canonical_name(name, OVSS_REGISTRY)])


def get_dataset(name: str, root: str | Path | None = None, split: str | None = None):
    """An OVSS benchmark by name, read from ``root`` (or ``$RS_HELPERS_BENCHMARKS/<folder>``).

    A root that does not match raises ``BadInputError`` naming the expected layout.
    """
    return dataset_class(name)(root=root, split=split)


def referring_class(name: str):
    return _load_class(REFERRING_REGISTRY[canonical_name(name, REFERRING_REGISTRY)])


def get_referring_dataset(name: str, root: str | Path | None = None, split: str | None = None):
    """A referring / reasoning benchmark (rrsisd, refsegrs, earthreason, samples) by name; ``jsonl``
    reads the samples named by a ``rs-seg lora-data`` file (``root`` is the file)."""
    return referring_class(name)(root=root, split=split)


def list_datasets(kind: str = "all") -> list[str]:
    """Registry names: ``kind`` = "ovss", "referring" or "all"."""
    names = []
    if kind in ("ovss", "all"):
        names += list(OVSS_REGISTRY)
    if kind in ("referring", "all"):
        names += [n for n in REFERRING_REGISTRY if n not in names]
    if kind not in ("ovss", "referring", "all"):
        raise BadInputError(f"kind must be ovss, referring or all, not {kind!r}")
    return names
