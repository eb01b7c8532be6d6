"""The other common SAM + CLIP selector: classify each mask by a crop of its box.

Each mask's bounding box (slightly enlarged) is cut from the image, pixels outside the mask
are greyed (set to CLIP's mean colour) or blurred, the crop is padded to a square and resized to
CLIP's input size, and all crops go through CLIP as one batch. The result is a class
probability per mask, which :func:`rs_helpers.ovss.selection.select_from_scores` paints.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rs_helpers.errors import BadInputError
from rs_helpers.ovss.vocabulary import TextEmbeddings

BACKGROUNDS = ("grey", "blur", "keep")


@dataclass(frozen=True)
class CropSettings:
    """``background``: what replaces pixels outside the mask (``grey``, ``blur``, ``keep``);
    ``padding``: box enlargement per side, as a fraction of its size; ``size``: crop side fed to
    CLIP (default: the model's input size); ``logit_scale``: default the model's own (100 for
    OpenAI CLIP); ``batch_size``: None sends all crops in one batch."""

    background: str = "grey"
    padding: float = 0.1
    size: int | None = None
    blur_sigma: float = 8.0
    logit_scale: float | None = None
    batch_size: int | None = None

    def __post_init__(self):
        if self.background not in BACKGROUNDS:
            raise BadInputError(f"crop background {self.background!r}: choose one of {', '.join(BACKGROUNDS)}")


def expand_box(box, padding: float, height: int, width: int) -> tuple[int, int, int, int]:
    """XYXY box grown by ``padding`` x its size on each side, clipped to the image."""
    x1, y1, x2, y2 = (int(v) for v in box)
    dx, dy = round((x2 - x1) * padding), round((y2 - y1) * padding)
    return max(0, x1 - dx), max(0, y1 - dy), min(width, max(x2 + dx, x1 + 1)), min(height, max(y2 + dy, y1 + 1))


def mask_crop(image_rgb: np.ndarray, mask: np.ndarray, box, settings: CropSettings, fill) -> np.ndarray:
    """The masked crop as float H' x W' x 3 in 0..1, outside pixels greyed/blurred, square-padded."""
    h, w = mask.shape
    x1, y1, x2, y2 = expand_box(box, settings.padding, h, w)
    crop = image_rgb[y1:y2, x1:x2].astype(np.float32) / 255
    inside = mask[y1:y2, x1:x2]
    if settings.background == "grey":
        crop[~inside] = fill
    elif settings.background == "blur":
        from scipy.ndimage import gaussian_filter

        blurred = gaussian_filter(crop, sigma=(settings.blur_sigma, settings.blur_sigma, 0))
        crop[~inside] = blurred[~inside]
    ch, cw = crop.shape[:2]
    side = max(ch, cw)
    square = np.empty((side, side, 3), np.float32)
    square[:] = fill
    top, left = (side - ch) // 2, (side - cw) // 2
    square[top:top + ch, left:left + cw] = crop
    return square


def crop_batch(clip, image_rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray,
               settings: CropSettings = CropSettings()) -> torch.Tensor:
    """N x 3 x S x S normalised CLIP input, one crop per mask."""
    size = settings.size or clip.image_size
    mean = torch.tensor(clip.mean).view(3, 1, 1)
    std = torch.tensor(clip.std).view(3, 1, 1)
    out = torch.empty((len(masks), 3, size, size))
    for i, (mask, box) in enumerate(zip(masks, boxes)):
        crop = torch.from_numpy(mask_crop(image_rgb, mask, box, settings, np.array(clip.mean, np.float32)))
        crop = crop.permute(2, 0, 1)[None]
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
        out[i] = (crop - mean) / std
    return out


@torch.no_grad()
def classify_crops(clip, image_rgb: np.ndarray, masks: np.ndarray, boxes: np.ndarray, text: TextEmbeddings,
                   settings: CropSettings = CropSettings()) -> np.ndarray:
    """N x C class probabilities of each mask's crop: softmax over every synonym row, then the
    max over each class's synonyms. All crops go through ``clip.model.encode_image`` once
    (unless ``settings.batch_size`` splits them)."""
    if len(masks) == 0:
        return np.zeros((0, text.n_classes), np.float32)
    batch = crop_batch(clip, image_rgb, masks, boxes, settings).to(clip.device)
    step = settings.batch_size or len(batch)
    feats = torch.cat([clip.model.encode_image(batch[i:i + step]).float() for i in range(0, len(batch), step)])
    feats = F.normalize(feats, dim=-1)
    scale = settings.logit_scale
    if scale is None:
        scale = float(clip.model.logit_scale.exp()) if hasattr(clip.model, "logit_scale") else 100.0
    probs = torch.softmax(scale * feats @ text.embeddings.to(feats.device).T, dim=1)  # N x R
    return text.pool(probs, dim=1).cpu().numpy()
