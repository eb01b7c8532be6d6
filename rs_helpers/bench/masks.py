"""Decoder outputs of realistic shape, and the reference post-processing run on given outputs.

Random-weight SAM masks are noise, which makes the reference's post-processing (upsampling,
run-length encoding) look slower than it is on real masks. :func:`realistic_outputs` builds
low-resolution logits from a sample's ground-truth regions instead, and both post-processings
run on the same logits: :func:`reference_from_logits` (segment-anything's own
``SamAutomaticMaskGenerator`` code, fed by a replaying predictor) and
:func:`rs_helpers.sam.fast_proposals.proposals_from_logits`; :func:`compare_postprocessing` times both.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import torch

from rs_helpers.sam.fast_proposals import mask_match, proposals_from_logits
from rs_helpers.sam.proposals import (
    ProposalSettings,
    Proposals,
    from_sam_records,
    grid_points,
    remove_small_regions,
)

MATCH_IOU = 0.95


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _signed_logits(mask: np.ndarray, slope: float) -> np.ndarray:
    """Smooth logits of a boolean mask: ``slope`` x signed distance to its edge, clipped."""
    from scipy import ndimage

    inside = ndimage.distance_transform_edt(mask) - 0.5
    outside = ndimage.distance_transform_edt(~mask) - 0.5
    return np.clip(slope * np.where(mask, inside, -outside), -20, 20).astype(np.float32)


def realistic_outputs(labels: np.ndarray, points_per_side: int, img_size: int = 1024, slope: float = 8.0,
                      seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Decoder outputs of realistic shape for an image with class map ``labels``: for each grid
    point, three masks (the point's ground-truth region cut to a disc around it, the whole
    connected region, every region of that class), as logits ``slope`` x signed distance in
    low-resolution pixels, with predicted IoU drawn uniformly in [0.8, 1). Returns (low
    P x 3 x L x L, iou P x 3, points P x 2) in SAM's frame (L = img_size / 4)."""
    from scipy import ndimage
    from segment_anything.utils.transforms import ResizeLongestSide

    h, w = labels.shape
    low = img_size // 4
    in_h, in_w = ResizeLongestSide.get_preprocess_shape(h, w, img_size)
    vh, vw = -(-in_h // 4), -(-in_w // 4)
    ys = np.minimum((np.arange(vh) + 0.5) * h / vh, h - 1).astype(int)
    xs = np.minimum((np.arange(vw) + 0.5) * w / vw, w - 1).astype(int)
    lab = np.full((low, low), 255, np.uint8)
    lab[:vh, :vw] = labels[ys][:, xs]
    points = grid_points(points_per_side, w, h)
    components = {c: ndimage.label(lab == c, structure=np.ones((3, 3)))[0] for c in np.unique(lab)}
    yy, xx = np.mgrid[:low, :low]
    radius = max(4, low // 16)
    out = np.zeros((len(points), 3, low, low), np.float32)
    cache: dict = {}
    for i, (x, y) in enumerate(points):
        px, py = min(int(x * vw / w), vw - 1), min(int(y * vh / h), vh - 1)
        c = lab[py, px]
        comp = components[c] == components[c][py, px]
        disc = (xx - px) ** 2 + (yy - py) ** 2 <= radius ** 2
        out[i, 0] = _signed_logits(comp & disc, slope)
        for j, key in ((1, (int(c), int(components[c][py, px]))), (2, (int(c),))):
            if key not in cache:
                cache[key] = _signed_logits(comp if j == 1 else lab == c, slope)
            out[i, j] = cache[key]
    iou = np.random.default_rng(seed).uniform(0.8, 1.0, (len(points), 3)).astype(np.float32)
    return torch.from_numpy(out), torch.from_numpy(iou), points


class _ReplayPredictor:
    """Stands in for ``SamPredictor`` inside ``SamAutomaticMaskGenerator``: returns given
    low-resolution logits, upsampled by SAM's own ``postprocess_masks``."""

    def __init__(self, low: torch.Tensor, iou: torch.Tensor, points: np.ndarray, img_size: int):
        from segment_anything.modeling import Sam
        from segment_anything.utils.transforms import ResizeLongestSide

        self.model = SimpleNamespace(image_encoder=SimpleNamespace(img_size=img_size), mask_threshold=0.0)
        self.postprocess = lambda masks, inp, orig: Sam.postprocess_masks(self.model, masks, inp, orig)
        self.transform = ResizeLongestSide(img_size)
        self.low, self.iou, self.points, self.cursor = low, iou, points, 0
        self.device = low.device

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        self.original_size = image.shape[:2]
        self.input_size = self.transform.get_preprocess_shape(*image.shape[:2], self.transform.target_length)
        self.cursor = 0

    def reset_image(self) -> None:
        pass

    def predict_torch(self, point_coords, point_labels, boxes=None, mask_input=None,
                      multimask_output=True, return_logits=False):
        n = point_coords.shape[0]
        low = self.low[self.cursor:self.cursor + n]
        iou = self.iou[self.cursor:self.cursor + n]
        self.cursor += n
        masks = self.postprocess(low, self.input_size, self.original_size)
        return (masks if return_logits else masks > 0), iou, low


def reference_from_logits(low, iou, points, image_hw, img_size: int, settings: ProposalSettings) -> Proposals:
    """The reference post-processing (``SamAutomaticMaskGenerator``'s own code) on given outputs."""
    from segment_anything import SamAutomaticMaskGenerator

    params = asdict(settings)
    min_area = params.pop("min_mask_region_area")
    params["crop_n_layers"] = 0
    replay = _ReplayPredictor(low, iou, points, img_size)
    generator = SamAutomaticMaskGenerator(SimpleNamespace(image_encoder=replay.model.image_encoder),
                                          output_mode="binary_mask", min_mask_region_area=0, **params)
    generator.predictor = replay
    h, w = image_hw
    records = generator.generate(np.zeros((h, w, 3), np.uint8))
    return remove_small_regions(from_sam_records(records, h, w), min_area, settings.box_nms_thresh)


def compare_postprocessing(labels: np.ndarray, settings: ProposalSettings, img_size: int = 1024,
                           device="cpu", margin: float | None = None, repeat: int = 1) -> dict:
    """Reference vs fast post-processing on :func:`realistic_outputs` of ``labels`` (each timed
    ``repeat`` times, alternately; the fastest run counts)."""
    low, iou, points = realistic_outputs(labels, settings.points_per_side, img_size)
    low, iou = low.to(device), iou.to(device)
    hw = labels.shape
    extra = {} if margin is None else {"margin": margin}
    t_ref = t_fast = float("inf")
    for _ in range(max(1, repeat)):
        _sync(device)
        start = time.perf_counter()
        ref = reference_from_logits(low, iou, points, hw, img_size, settings)
        _sync(device)
        t_ref = min(t_ref, time.perf_counter() - start)
        start = time.perf_counter()
        fast = proposals_from_logits(low, iou, points, hw, img_size, settings, **extra)
        _sync(device)
        t_fast = min(t_fast, time.perf_counter() - start)
    a, b = mask_match(ref.masks, fast.masks, MATCH_IOU)
    return {"reference_s": t_ref, "fast_s": t_fast, "reference_masks": len(ref), "fast_masks": len(fast),
            "matched_reference": a, "matched_fast": b, "candidates": int(low.shape[0] * 3)}
