"""SAM turns click prompts into one mask.

All clicks go to ``SamPredictor.predict`` at once (positive label 1, negative label 0). With
``multimask=True`` (default) SAM proposes three masks and the one with the highest predicted
IoU is kept; ``multimask=False`` asks for a single mask, which SAM's authors recommend when
several clicks already disambiguate the target. Clicks are in *pixels* here (see
:func:`rs_helpers.refer.clicks.to_pixels`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from rs_helpers.refer.clicks import Click
from rs_helpers.errors import BadInputError


@dataclass
class ClickMask:
    """SAM's answer to a set of clicks: the kept ``mask`` (H x W bool), its predicted IoU
    ``score``, and the scores of every candidate SAM proposed."""

    mask: np.ndarray
    score: float
    scores: list[float] = field(default_factory=list)


def make_predictor(sam, image_rgb: np.ndarray):
    """A ``SamPredictor`` with the image embedded (do this once per image, then ask many times)."""
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


def predict_mask(predictor, pixel_clicks: Sequence[Click], multimask: bool = True) -> ClickMask:
    """One mask from all ``pixel_clicks`` on the predictor's image.

    With no positive click there is nothing to segment: the answer is an empty mask (score 0)
    rather than whatever SAM would make of negative clicks alone.
    """
    height, width = predictor.original_size
    clicks = list(pixel_clicks)
    if not clicks:
        raise BadInputError("no clicks to give SAM")
    for c in clicks:
        if not (0 <= c.x < width and 0 <= c.y < height) or c.label not in (0, 1):
            raise BadInputError(f"click {c} is not a pixel click inside the {width}x{height} image")
    if not any(c.label == 1 for c in clicks):
        return ClickMask(mask=np.zeros((height, width), bool), score=0.0, scores=[])
    coords, labels = clicks_to_arrays(clicks)
    masks, scores, _ = predictor.predict(point_coords=coords, point_labels=labels,
                                         multimask_output=bool(multimask))
    best = int(np.argmax(scores))
    return ClickMask(mask=np.asarray(masks[best], bool), score=float(scores[best]),
                     scores=[float(s) for s in scores])


def mask_from_clicks(sam, image_rgb: np.ndarray, pixel_clicks: Sequence[Click],
                     multimask: bool = True) -> ClickMask:
    """Embed ``image_rgb`` with ``sam`` and return the mask for ``pixel_clicks``."""
    return predict_mask(make_predictor(sam, image_rgb), pixel_clicks, multimask=multimask)
