"""The CLIP-only baseline: SegEarth-OV's own segmentation, with no SAM at all.

The paper's main comparison is SAM + CLIP (:func:`rs_helpers.ovss.pipeline.segment`) against
CLIP alone. CLIP alone is the dense map of :mod:`rs_helpers.ovss.clip_dense` read pixel by pixel:
each pixel takes its most probable class, and a pixel whose best probability is below
``prob_thd`` takes the background class ``bg_idx`` (SegEarth-OV's ``postprocess_result``). With
:data:`SEGEARTH_OV_CLIP` and the SimFeatUp upsampler (:func:`load_upsampler`) this is
SegEarth-OV's inference: the image resized straight from full resolution like ``cv2.resize``,
short crops read at their own size, the window features upsampled, the logits brought to the
image's size before the softmax.

:func:`segment_clip` returns the same :class:`~rs_helpers.ovss.pipeline.OvssResult` as the
pipeline (``proposals`` and ``selection`` are None), so plotting, legends and GeoTIFF output
work unchanged; :class:`ClipTiles` is its tile segmenter for
:func:`rs_helpers.geo.scene.segment_scene`.

    >>> result = segment_clip(image, "building;road;background", clip=clip,
    ...                       upsampler=load_upsampler("simfeatup", clip))  # doctest: +SKIP
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rs_helpers.device import stage_timer
from rs_helpers.errors import BadInputError
from rs_helpers.ovss.clip_dense import SEGEARTH_OV, DenseSettings, dense_map
from rs_helpers.ovss.pipeline import (
    OvssResult,
    _memory,
    class_shares,
    output_classes,
    resize_labels,
    resize_rgb,
    work_size,
)
from rs_helpers.ovss.vocabulary import TextCache, Vocabulary, encode_vocabulary, parse_classes

METHODS = ("sam-clip", "clip", "sam3")  # --method: the paper's pipeline, CLIP alone (SegEarth-OV), SAM 3 alone (SegEarth-OV3)
DEFAULT_METHOD = "sam-clip"
UPSAMPLERS = ("simfeatup", "none")  # --upsampler


@dataclass(frozen=True)
class ClipOnlySettings:
    """How the CLIP-only map is made.

    ``dense``: the dense map's settings (default SegEarth-OV's exact path, ``SEGEARTH_OV``).
    ``prob_thd`` / ``bg_idx``: pixels whose best class probability is below ``prob_thd`` take
    the class ``bg_idx`` (None: the class named "background", if any; SegEarth-OV's values are
    per dataset, see :mod:`rs_helpers.evaluation.protocols`). ``max_side``: the longest side at
    which probabilities and labels are computed (None: the image's own size, as SegEarth-OV; the
    labels are brought back to the image by nearest neighbour). ``resize_first``: the image is
    first resized (PIL, antialiased) to that working size and the dense map reads the small
    image, as this package's native pipeline does; False: the dense map reads the full-resolution
    image and resizes it itself (SegEarth-OV)."""

    dense: DenseSettings = SEGEARTH_OV
    prob_thd: float = 0.0
    bg_idx: int | None = None
    max_side: int | None = None
    resize_first: bool = False


SEGEARTH_OV_CLIP = ClipOnlySettings()  # add the SimFeatUp upsampler and the dataset's prob_thd / bg_idx


def load_upsampler(name: str, clip, profile: str | None = None, checkpoint=None):
    """The feature upsampler ``name`` for ``clip`` on its device: ``"simfeatup"`` (SegEarth-OV's,
    :func:`rs_helpers.ovss.simfeatup.load_simfeatup`; the tiny profile gives a seeded random one,
    announced on stderr) or ``"none"`` (None)."""
    if name not in UPSAMPLERS:
        raise BadInputError(f"upsampler {name!r}: choose one of {', '.join(UPSAMPLERS)}")
    if name == "none":
        return None
    from rs_helpers.ovss.simfeatup import load_simfeatup

    return load_simfeatup(clip.model.visual.output_dim, checkpoint=checkpoint, profile=profile,
                          device=clip.device)


def segment_clip(image, classes: str | Sequence[str] | Vocabulary, *, clip, binary: bool = False,
                 target: str | None = None, settings: ClipOnlySettings = SEGEARTH_OV_CLIP, upsampler=None,
                 text_cache: TextCache | None = None, palette: Sequence[Sequence[int]] | None = None) -> OvssResult:
    """Segment ``image`` (uint8 H x W x 3 array or :class:`~rs_helpers.geo.rasters.RasterImage`)
    into ``classes`` with CLIP alone: the dense map's per-pixel argmax, thresholded to the
    background. ``binary=True``: a 0/1 map of ``target`` (the pixels whose label is the target).
    ``upsampler``: None, or a feature upsampler such as :func:`load_upsampler` gives. The arguments
    mean what they mean for :func:`rs_helpers.ovss.pipeline.segment`; SAM is never used."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rgb = np.asarray(getattr(image, "rgb", image))
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise BadInputError(f"image must be uint8 H x W x 3, got {rgb.dtype} {rgb.shape}")
    if settings.max_side is not None and settings.max_side < 0:
        raise BadInputError(f"max_side must be positive (or 0/None for the native size), got {settings.max_side}")
    if not 0.0 <= settings.prob_thd <= 1.0:
        raise BadInputError(f"prob_thd must be between 0 and 1, got {settings.prob_thd}")
    vocab, target_index, names, colours = output_classes(parse_classes(classes), binary, target, palette,
                                                         settings.dense.background_names)
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
    except Exception:  # pragma: no cover - statistics are best effort
        pass
    size = work_size(rgb.shape[0], rgb.shape[1], settings.max_side)
    device = clip.device
    with stage_timer(timings, "resize", device):
        source = resize_rgb(rgb, size) if settings.resize_first else rgb
    with stage_timer(timings, "clip_text", device):
        kwargs = {} if text_cache is None else {"cache": text_cache}
        text = encode_vocabulary(clip, vocab, settings.dense.templates, settings.dense.synonyms, **kwargs)
    with stage_timer(timings, "clip_dense", device):
        dense = dense_map(clip, source, vocab, settings.dense, out_size=size, text=text,
                          prob_thd=settings.prob_thd, bg_idx=settings.bg_idx, upsampler=upsampler)
    labels_work = dense.labels == target_index if binary else dense.labels
    labels_work = labels_work.astype(np.uint8)
    with stage_timer(timings, "upsample", device):
        labels = resize_labels(labels_work, rgb.shape[:2])
    timings["total"] = time.perf_counter() - t0
    return OvssResult(
        labels=labels, class_names=names, palette=colours, shares=class_shares(labels, names), timings=timings,
        memory=_memory(clip, {}), vocabulary=vocab, binary=binary, target=names[1] if binary else None,
        selector="none", work_size=size, work_labels=labels_work, proposals=None, dense=dense, selection=None,
    )


class ClipTiles:
    """CLIP alone per tile (:func:`segment_clip`), with one text cache for the whole scene: a
    segmenter for :func:`rs_helpers.geo.scene.segment_scene`. ``class_names`` and ``palette``
    are known before the first tile; ``timings`` sums each stage over the tiles."""

    proposals = 0  # no SAM masks

    def __init__(self, classes, *, clip, binary: bool = False, target: str | None = None,
                 settings: ClipOnlySettings = SEGEARTH_OV_CLIP, upsampler=None,
                 text_cache: TextCache | None = None, palette=None):
        vocab, _, self.class_names, self.palette = output_classes(parse_classes(classes), binary, target, palette,
                                                                  settings.dense.background_names)
        self.vocabulary, self.binary, self.target = vocab, binary, target
        self.clip, self.settings, self.upsampler = clip, settings, upsampler
        self.text_cache = text_cache if text_cache is not None else TextCache()
        self.timings: dict[str, float] = {}

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        result = segment_clip(rgb, self.vocabulary, clip=self.clip, binary=self.binary, target=self.target,
                              settings=self.settings, upsampler=self.upsampler, text_cache=self.text_cache,
                              palette=self.palette)
        for key, value in result.timings.items():
            self.timings[key] = self.timings.get(key, 0.0) + value
        return result.labels
