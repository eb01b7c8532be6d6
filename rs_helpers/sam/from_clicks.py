"""SAM turns click prompts into one mask.

All clicks go to ``SamPredictor.predict`` at once (positive label 1, negative label 0). Whether
SAM proposes three masks (the one with the highest predicted IoU is kept) or one is the
``multimask`` rule, one of :data:`MULTIMASK_MODES`:

- ``"auto"`` (default): three masks for a single click, one mask for two or more clicks.
  segment-anything's ``SamPredictor.predict`` documentation says why: one click is ambiguous
  (a roof, the house, the block), and three candidates often hold a better mask than one; with
  several prompts the target is no longer ambiguous and ``multimask_output=False`` can do better.
- ``"always"``: the best of three whatever the number of clicks (this package's rule before).
- ``"never"``: always a single mask (``--single-mask``).

``True`` and ``False`` are accepted for ``"always"`` and ``"never"``. Simulation
(:mod:`rs_helpers.refer.click_sim`), training data (:mod:`rs_helpers.lora.data`) and inference
(:mod:`rs_helpers.refer.pipeline`, ``rs-seg refer``) all go through :func:`predict_mask`, so one
rule holds everywhere. Clicks are in *pixels* here (see :func:`rs_helpers.refer.clicks.to_pixels`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from rs_helpers.refer.clicks import Click
from rs_helpers.errors import BadInputError

MULTIMASK_MODES = ("auto", "always", "never")
DEFAULT_MULTIMASK = "auto"


@dataclass
class ClickMask:
    """SAM's answer to a set of clicks: the kept ``mask`` (H x W bool), its predicted IoU
    ``score``, and the scores of every candidate SAM proposed."""

    mask: np.ndarray
    score: float
    scores: list[float] = field(default_factory=list)
    multimask_output: bool = False  # whether SAM was asked for three masks (False: one, or none)


def multimask_mode(value: bool | str | None) -> str:
    """``value`` as one of :data:`MULTIMASK_MODES` (True: "always", False: "never", None: the
    default); anything else is a :class:`BadInputError`."""
    if value is None:
        return DEFAULT_MULTIMASK
    if isinstance(value, bool):
        return "always" if value else "never"
    mode = str(value).strip().lower()
    if mode not in MULTIMASK_MODES:
        raise BadInputError(f"multimask {value!r}: choose one of {', '.join(MULTIMASK_MODES)}")
    return mode


def use_multimask(multimask: bool | str | None, n_clicks: int) -> bool:
    """Whether SAM is asked for three masks for ``n_clicks`` clicks under the ``multimask`` rule."""
    mode = multimask_mode(multimask)
    return mode == "always" or (mode == "auto" and int(n_clicks) < 2)


def make_predictor(sam, image_rgb: np.ndarray):
    """A predictor with the image embedded (do this once per image, then ask many times):
    segment-anything's ``SamPredictor`` for SAM 1, :class:`rs_helpers.sam.tracker_predictor.TrackerPredictor`
    (the same interface) for a SAM 2.1 or SAM 3 tracker bundle (``rs_helpers.models.sam_tracker``)."""
    from rs_helpers.sam.tracker_predictor import TrackerPredictor, is_click_segmenter

    if is_click_segmenter(sam):
        return TrackerPredictor(sam, image_rgb)
    from segment_anything import SamPredictor

    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise BadInputError(f"want an H x W x 3 uint8 image, got {image_rgb.shape} {image_rgb.dtype}")
    predictor = SamPredictor(sam)
    predictor.set_image(image_rgb)
    return predictor


def clicks_to_arrays(pixel_clicks: Sequence[Click]) -> tuple[np.ndarray, np.ndarray]:
    """SAM's prompt arrays: ``(N x 2 float32 (x, y), N int32 labels)``."""
    coords = np.array([[c.x, c.y] for c in pixel_clicks], np.float32).reshape(-1, 2)
    labels = np.array([c.label for c in pixel_clicks], np.int32)
    return coords, labels


def predict_mask(predictor, pixel_clicks: Sequence[Click],
                 multimask: bool | str = DEFAULT_MULTIMASK) -> ClickMask:
    """One mask from all ``pixel_clicks`` on the predictor's image; ``multimask`` is the rule of
    the module docstring (default "auto": best of three for one click, one mask for more).

    With no positive click there is nothing to segment: the answer is an empty mask (score 0)
    rather than whatever SAM would make of negative clicks alone.
    """
    height, width = predictor.original_size
    clicks = list(pixel_clicks)
    multi = use_multimask(multimask, len(clicks))
    if not clicks:
        raise BadInputError("no clicks to give SAM")
    for c in clicks:
        if not (0 <= c.x < width and 0 <= c.y < height) or c.label not in (0, 1):
            raise BadInputError(f"click {c} is not a pixel click inside the {width}x{height} image")
    if not any(c.label == 1 for c in clicks):
        return ClickMask(mask=np.zeros((height, width), bool), score=0.0, scores=[])
    coords, labels = clicks_to_arrays(clicks)
    masks, scores, _ = predictor.predict(point_coords=coords, point_labels=labels,
                                         multimask_output=multi)
    best = int(np.argmax(scores))
    return ClickMask(mask=np.asarray(masks[best], bool), score=float(scores[best]),
                     scores=[float(s) for s in scores], multimask_output=multi)


def mask_from_clicks(sam, image_rgb: np.ndarray, pixel_clicks: Sequence[Click],
                     multimask: bool | str = DEFAULT_MULTIMASK) -> ClickMask:
    """Embed ``image_rgb`` with ``sam`` and return the mask for ``pixel_clicks``."""
    return predict_mask(make_predictor(sam, image_rgb), pixel_clicks, multimask=multimask)
