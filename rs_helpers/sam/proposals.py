"""Stage 1 of open-vocabulary segmentation: SAM mask proposals from a regular grid of points.

The reference path is segment-anything's ``SamAutomaticMaskGenerator`` with every parameter
exposed through :class:`ProposalSettings`. Results are a :class:`Proposals` of boolean
masks with SAM's predicted IoU, stability score and box. :class:`ProposalCache` keeps them per
(image, settings) so that a new vocabulary never reruns SAM.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class ProposalSettings:
    """Everything that changes the proposals. Defaults: the method's (n = 29) and SAM's own
    thresholds (the paper does not state them; unconfirmed)."""

    points_per_side: int = 29
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class Proposals:
    """N candidate masks for one image (all arrays share the first dimension N)."""

    masks: np.ndarray  # N x H x W bool
    predicted_iou: np.ndarray  # N float
    stability_score: np.ndarray  # N float
    boxes: np.ndarray  # N x 4 XYXY int (inclusive-exclusive pixel box)
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # N x 2 prompt (x, y)
    # per-stage cost of making them: {"sam encoder": {"seconds": s, "peak_mib": m}, ...} (may be empty)
    stages: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def areas(self) -> np.ndarray:
        return self.masks.reshape(len(self), -1).sum(1)

    @classmethod
    def empty(cls, height: int, width: int) -> "Proposals":
        return cls(np.zeros((0, height, width), bool), np.zeros(0), np.zeros(0), np.zeros((0, 4), int),
                   np.zeros((0, 2)))

    def subset(self, keep) -> "Proposals":
        keep = np.asarray(keep)
        return Proposals(self.masks[keep], self.predicted_iou[keep], self.stability_score[keep],
                         self.boxes[keep], self.points[keep] if len(self.points) else self.points)


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """XYXY boxes (x1, y1 inclusive; x2, y2 exclusive) of boolean masks; zeros for empty ones."""
    n = masks.shape[0]
    boxes = np.zeros((n, 4), int)
    if n == 0:
        return boxes
    rows = masks.any(2)
    cols = masks.any(1)
    for i in range(n):
        ys = np.flatnonzero(rows[i])
        xs = np.flatnonzero(cols[i])
        if ys.size:
            boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


def grid_points(n: int, width: int, height: int) -> np.ndarray:
    """The n x n prompt grid in pixel (x, y): cell centres, as SAM's ``build_point_grid``."""
    if n < 1:
        raise ValueError("points per side must be at least 1")
    offset = 1 / (2 * n)
    axis = np.linspace(offset, 1 - offset, n)
    xs, ys = np.meshgrid(axis, axis)
    return np.stack([xs.ravel() * width, ys.ravel() * height], axis=1)


def from_sam_records(records: list[dict], height: int, width: int) -> Proposals:
    """Convert ``SamAutomaticMaskGenerator.generate`` output into :class:`Proposals`."""
    if not records:
        return Proposals.empty(height, width)
    masks = np.stack([r["segmentation"] for r in records]).astype(bool)
    return Proposals(
        masks=masks,
        predicted_iou=np.array([r["predicted_iou"] for r in records], float),
        stability_score=np.array([r["stability_score"] for r in records], float),
        boxes=mask_boxes(masks),
        points=np.array([r["point_coords"][0] for r in records], float),
    )


def remove_small_regions(proposals: Proposals, min_area: int, nms_thresh: float) -> Proposals:
    """Fill holes and drop islands smaller than ``min_area`` (SAM's post-processing, with scipy
    instead of OpenCV), then drop masks that became empty and re-run box NMS."""
    if min_area <= 0 or len(proposals) == 0:
        return proposals
    from scipy import ndimage

    cleaned = []
    for mask in proposals.masks:
        for fill_holes in (True, False):
            work = ~mask if fill_holes else mask
            labels, count = ndimage.label(work)
            if count:
                sizes = ndimage.sum_labels(np.ones_like(work), labels, index=np.arange(1, count + 1))
                small = np.flatnonzero(sizes < min_area) + 1
                if small.size:
                    hit = np.isin(labels, small)
                    mask = mask | hit if fill_holes else mask & ~hit
        cleaned.append(mask)
    masks = np.stack(cleaned)
    result = Proposals(masks, proposals.predicted_iou, proposals.stability_score, mask_boxes(masks), proposals.points)
    keep = np.flatnonzero(result.areas > 0)
    result = result.subset(keep)
    return result.subset(box_nms(result.boxes, result.predicted_iou, nms_thresh))


def box_nms(boxes: np.ndarray, scores: np.ndarray, iou_thresh: float) -> np.ndarray:
    """Indices kept by non-maximum suppression on XYXY boxes, best score first."""
    import torch
    from torchvision.ops import nms

    if len(boxes) == 0:
        return np.zeros(0, int)
    keep = nms(torch.as_tensor(boxes, dtype=torch.float32), torch.as_tensor(scores, dtype=torch.float32), iou_thresh)
    return keep.numpy()


def generate_reference(sam, image_rgb: np.ndarray, settings: ProposalSettings = ProposalSettings()) -> Proposals:
    """Proposals from segment-anything's own ``SamAutomaticMaskGenerator`` (the reference path)."""
    from segment_anything import SamAutomaticMaskGenerator

    params = asdict(settings)
    min_area = params.pop("min_mask_region_area")
    generator = SamAutomaticMaskGenerator(sam, output_mode="binary_mask", min_mask_region_area=0, **params)
    records = generator.generate(np.ascontiguousarray(image_rgb))
    h, w = image_rgb.shape[:2]
    return remove_small_regions(from_sam_records(records, h, w), min_area, settings.box_nms_thresh)


def image_key(image_rgb: np.ndarray) -> str:
    """A content hash of an image, for caching."""
    digest = hashlib.sha1(np.ascontiguousarray(image_rgb).tobytes())
    digest.update(str(image_rgb.shape).encode())
    return digest.hexdigest()


class ProposalCache:
    """Proposals keyed by (image content, SAM identity, settings, generator): a changed
    vocabulary or selector reuses them; a changed grid or threshold recomputes."""

    def __init__(self, max_items: int = 8):
        self.max_items = max_items
        self._store: dict[tuple, Proposals] = {}
        self.hits = 0
        self.misses = 0

    def get(self, sam, image_rgb: np.ndarray, settings: ProposalSettings, generator=generate_reference) -> Proposals:
        key = (image_key(image_rgb), id(sam), settings.key(), getattr(generator, "__name__", str(generator)))
        if key in self._store:
            self.hits += 1
            return self._store[key]
        self.misses += 1
        result = generator(sam, image_rgb, settings)
        if len(self._store) >= self.max_items:
            self._store.pop(next(iter(self._store)))
        self._store[key] = result
        return result
