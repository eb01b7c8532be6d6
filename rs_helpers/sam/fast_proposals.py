"""Fast SAM grid proposals: the same masks as ``SamAutomaticMaskGenerator``, with bounded memory.

:func:`generate_fast` is a drop-in for :func:`rs_helpers.sam.proposals.generate_reference` (same
signature, same :class:`~rs_helpers.sam.proposals.Proposals`, usable with ``ProposalCache``). It
follows the reference step by step (crops, grid, predicted-IoU filter, stability filter, boxes,
crop-edge filter, box NMS per crop then across crops, small-region clean-up) but:

* the decoder runs on all grid points in large batches without copying the image embedding per
  point (:mod:`rs_helpers.sam.fast_decoder`), the encoder with fused attention
  (:mod:`rs_helpers.sam.fast_encoder`), both under bf16/fp16 autocast on CUDA (fp32 on the CPU);
* filtering works on the low-resolution logits: the predicted IoU first, then a cheap
  low-resolution stability score that drops masks far below the threshold (``margin``);
  the remaining masks get SAM's full-resolution stability score and box computed exactly from
  the low-resolution logits (:mod:`rs_helpers.sam.fast_upsample`: only pixels near a mask's edge
  are interpolated) instead of upsampling every mask to the image;
* only the masks that survive NMS are upsampled, straight into the output (no RLE round trip).

Approximation: a mask whose low-resolution stability is below ``threshold - margin`` but whose
full-resolution stability reaches the threshold is lost. Measured full- minus low-resolution
stability: at most 0.09 on noisy random-weight masks, 0.02 on realistic ones; ``margin=1``
disables the shortcut. Everything else matches the reference up to floating-point rounding in
fp32 (tests: identical masks but for single pixels). Under autocast the decoder's logits differ
slightly from fp32, so masks near a threshold may differ.
"""
from __future__ import annotations

import weakref

import numpy as np
import torch
from segment_anything.utils.amg import build_all_layer_point_grids, generate_crop_boxes, is_box_near_crop_edge
from segment_anything.utils.transforms import ResizeLongestSide
from torchvision.ops.boxes import batched_nms
from tqdm.auto import tqdm

from rs_helpers.device import pick_dtype
from rs_helpers.sam.fast_decoder import FastDecoder, supports_fast_decoder
from rs_helpers.sam.fast_encoder import sdpa_attention
from rs_helpers.sam.fast_upsample import Resampler
from rs_helpers.sam.proposals import ProposalSettings, Proposals, remove_small_regions
from rs_helpers.sam.timings import Timings, maybe_stage

DEFAULT_MARGIN = 0.15  # measured full-res minus low-res stability: <= 0.09 (noisy random masks), <= 0.02 (realistic)
_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # mask decoder -> compiled call or None


def _budget(device) -> int:
    """Elements per intermediate tensor of the resampler: fewer, larger launches on a GPU."""
    return 2**26 if torch.device(device).type == "cuda" else 2**23


def _disable(progress: bool | None, steps: int) -> bool | None:
    """tqdm's ``disable``: None (auto: terminals and notebooks) for long loops, unless set."""
    if progress is None:
        return None if steps > 2 else True
    return not progress


def _point_dtype(device: torch.device) -> torch.dtype:
    """float64 like the reference's numpy points, but float32 on Apple's mps, which has no float64."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def _autocast(device: torch.device, dtype: torch.dtype | None):
    """bf16/fp16 autocast on CUDA (or ``dtype`` if given), disabled elsewhere or for float32."""
    if dtype is None:
        dtype = pick_dtype(device) if device.type == "cuda" else torch.float32
    enabled = dtype != torch.float32 and device.type in ("cuda", "cpu")
    return torch.autocast(device.type, dtype=dtype, enabled=enabled)


def _decoder_fn(decoder: FastDecoder, compile: bool):
    """The decoder call, through ``torch.compile`` when asked and when it works."""
    if not compile:
        return decoder
    key = decoder.dec
    if key not in _COMPILED:
        try:
            _COMPILED[key] = torch.compile(decoder.__call__, dynamic=False)
        except Exception:  # noqa: BLE001 - no compiler, unsupported platform: run eagerly
            _COMPILED[key] = None
    compiled = _COMPILED[key]
    if compiled is None:
        return decoder

    def call(*args):
        try:
            return compiled(*args)
        except Exception:  # noqa: BLE001 - compilation failed at first call: fall back silently
            _COMPILED[key] = None
            return decoder(*args)

    return call


class _Crop:
    """Accumulates one crop's filtered candidates (in the crop's pixel frame)."""

    def __init__(self):
        self.logits, self.iou, self.stability, self.boxes, self.points = [], [], [], [], []

    def add(self, logits, iou, stability, boxes, points):
        for store, value in zip((self.logits, self.iou, self.stability, self.boxes, self.points),
                                (logits, iou, stability, boxes, points)):
            store.append(value)

    def cat(self):
        if not self.logits:
            return None
        return [torch.cat(v) for v in (self.logits, self.iou, self.stability, self.boxes, self.points)]


def filter_batch(low: torch.Tensor, iou: torch.Tensor, points: torch.Tensor, resampler: Resampler,
                 settings: ProposalSettings, crop_box, orig_hw, mask_threshold: float = 0.0,
                 margin: float = DEFAULT_MARGIN):
    """Reference ``_process_batch`` on low-resolution decoder outputs (B x 3 x h x w logits,
    B x 3 IoU, B x 2 crop-frame points): returns (logits, iou, stability, inclusive boxes, points)
    of the masks that pass, in the reference's order."""
    low = low.flatten(0, 1)
    iou = iou.flatten(0, 1)
    points = points.repeat_interleave(3, dim=0)
    keep = torch.ones_like(iou, dtype=torch.bool)
    if settings.pred_iou_thresh > 0.0:
        keep &= iou > settings.pred_iou_thresh
    offset = settings.stability_score_offset
    if settings.stability_score_thresh > 0.0 and margin < 1.0:
        hu, wu = resampler.low_used
        region = low[:, :hu, :wu]
        inter = (region > mask_threshold + offset).sum((1, 2))
        union = (region > mask_threshold - offset).sum((1, 2))
        rough = inter / union.clamp(min=1)
        keep &= rough >= settings.stability_score_thresh - margin
    low, iou, points = low[keep], iou[keep], points[keep]
    stability, boxes = resampler.stability_and_boxes(low, mask_threshold, offset)
    if settings.stability_score_thresh > 0.0:
        keep = stability >= settings.stability_score_thresh
        low, iou, points, stability, boxes = low[keep], iou[keep], points[keep], stability[keep], boxes[keep]
    h, w = orig_hw
    near = is_box_near_crop_edge(boxes, list(crop_box), [0, 0, w, h])
    keep = ~near
    return low[keep], iou[keep], stability[keep], boxes[keep], points[keep]


def _crop_candidates(sam, crop_image: np.ndarray, crop_box, orig_hw, grid: np.ndarray, settings,
                     decoder: FastDecoder, decode, device, dtype, batch_size: int, margin: float,
                     timings: Timings | None, progress: bool | None, fast_encoder: bool = True):
    """Encode one crop, decode its grid, filter; returns candidates after the per-crop NMS with
    boxes and points in the image frame (or None)."""
    transform = ResizeLongestSide(sam.image_encoder.img_size)
    ch, cw = crop_image.shape[:2]
    with maybe_stage(timings, "sam encoder"), torch.no_grad(), _autocast(device, dtype):
        resized = transform.apply_image(crop_image)
        tensor = torch.as_tensor(resized, device=device).permute(2, 0, 1).contiguous()[None]
        input_hw = tuple(tensor.shape[-2:])
        with sdpa_attention(sam.image_encoder, enabled=fast_encoder):
            embedding = sam.image_encoder(sam.preprocess(tensor))
    with maybe_stage(timings, "sam decoder"), torch.no_grad(), _autocast(device, dtype):
        shared = decoder.prepare(embedding)
    low_hw = (4 * embedding.shape[-2], 4 * embedding.shape[-1])
    resampler = Resampler(low_hw, sam.image_encoder.img_size, input_hw, (ch, cw), device, budget=_budget(device))
    points_all = grid * np.array([[cw, ch]])
    crop = _Crop()
    starts = range(0, len(points_all), batch_size)
    for start in tqdm(starts, desc="SAM grid", leave=False, disable=_disable(progress, len(starts))):
        points = points_all[start:start + batch_size]
        with maybe_stage(timings, "sam decoder"), torch.no_grad():
            # the prompt encoder's sin/cos features stay in float32, as in the reference
            coords = torch.as_tensor(transform.apply_coords(points, (ch, cw)), dtype=_point_dtype(device),
                                     device=device)
            labels = torch.ones(len(points), dtype=torch.int, device=device)
            sparse, _ = sam.prompt_encoder(points=(coords[:, None, :], labels[:, None]), boxes=None, masks=None)
            n = len(points)
            if n < batch_size and decode is not decoder:  # keep one shape for the compiled graph
                sparse = torch.cat([sparse, sparse[-1:].expand(batch_size - n, -1, -1)])
            with _autocast(device, dtype):
                if decode is decoder and settings.pred_iou_thresh > 0.0:
                    low, iou = decode(sparse, *shared, iou_thresh=settings.pred_iou_thresh)
                else:
                    low, iou = decode(sparse, *shared)
            low, iou = low[:n], iou[:n]
        with maybe_stage(timings, "filtering"), torch.no_grad():
            pts = torch.as_tensor(points, dtype=_point_dtype(device), device=device)
            crop.add(*filter_batch(low, iou, pts, resampler, settings, crop_box, orig_hw,
                                   sam.mask_threshold, margin))
    del shared, embedding
    return _finish_crop(crop, crop_box, settings, resampler, timings)


def _finish_crop(crop: _Crop, crop_box, settings, resampler, timings):
    with maybe_stage(timings, "filtering"), torch.no_grad():
        data = crop.cat()
        if data is None or len(data[0]) == 0:
            return None
        low, iou, stability, boxes, points = data
        keep = batched_nms(boxes.float(), iou, torch.zeros_like(iou), iou_threshold=settings.box_nms_thresh)
        low, iou, stability, boxes, points = low[keep], iou[keep], stability[keep], boxes[keep], points[keep]
        x0, y0 = crop_box[0], crop_box[1]
        return dict(low=low, iou=iou, stability=stability, boxes_crop=boxes,
                    boxes=boxes + torch.tensor([[x0, y0, x0, y0]], device=boxes.device),
                    points=points + torch.tensor([[x0, y0]], dtype=points.dtype, device=points.device),
                    crop_box=torch.tensor([list(crop_box)] * len(iou)), resampler=resampler)


def _assemble(crops: list[dict], keep_per_crop: list[torch.Tensor], image_hw, mask_threshold: float) -> Proposals:
    """Upsample the surviving masks straight into an N x H x W boolean array."""
    h, w = image_hw
    total = sum(len(k) for k in keep_per_crop)
    masks = np.zeros((total, h, w), bool)
    iou, stab, boxes, points = [], [], [], []
    row = 0
    for crop, keep in zip(crops, keep_per_crop):
        if len(keep) == 0:
            continue
        low, crop_boxes = crop["low"][keep], crop["boxes_crop"][keep]
        x0, y0 = int(crop["crop_box"][0][0]), int(crop["crop_box"][0][1])
        ch, cw = crop["resampler"].out_hw
        for gi, block in crop["resampler"].masks(low, mask_threshold):
            masks[row + gi.cpu().numpy(), y0:y0 + ch, x0:x0 + cw] = block.cpu().numpy()
        iou.append(crop["iou"][keep].float().cpu().numpy())
        stab.append(crop["stability"][keep].float().cpu().numpy())
        b = crop["boxes"][keep].cpu().numpy().astype(int) + np.array([0, 0, 1, 1])
        for i in np.flatnonzero((crop_boxes == 0).all(1).cpu().numpy()):  # [0,0,0,0]: empty or pixel (0,0)
            if not masks[row + i].any():
                b[i] = 0
        boxes.append(b)
        points.append(crop["points"][keep].cpu().numpy())
        row += len(keep)
    if total == 0:
        return Proposals.empty(h, w)
    return Proposals(masks, np.concatenate(iou).astype(float), np.concatenate(stab).astype(float),
                     np.concatenate(boxes), np.concatenate(points).astype(float))


def generate_fast(sam, image_rgb: np.ndarray, settings: ProposalSettings = ProposalSettings(), *,
                  timings: Timings | None = None, batch_size: int | None = None,
                  dtype: torch.dtype | None = None, compile: bool = False, fast_encoder: bool = True,
                  margin: float = DEFAULT_MARGIN, progress: bool | None = None) -> Proposals:
    """Grid proposals equal (within tolerance) to :func:`~rs_helpers.sam.proposals.generate_reference`.

    ``batch_size``: points per decoder call (default 256 on CUDA, 64 elsewhere);
    ``dtype``: autocast dtype (default bf16/fp16 on CUDA, float32 on the CPU);
    ``compile``: try ``torch.compile`` on the decoder (falls back silently);
    ``fast_encoder``: fused attention in the image encoder (:mod:`rs_helpers.sam.fast_encoder`);
    ``margin``: low-resolution stability pre-filter slack (1 = always exact);
    ``progress``: tqdm bars over tiles and grid batches (default: on terminals and notebooks);
    ``timings``: a :class:`~rs_helpers.sam.timings.Timings` that receives the stages
    ``sam encoder``, ``sam decoder``, ``filtering`` and ``masks``.
    """
    image_rgb = np.ascontiguousarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        from rs_helpers.errors import BadInputError

        raise BadInputError(f"expected an H x W x 3 uint8 RGB image, got {image_rgb.shape} {image_rgb.dtype}")
    if not supports_fast_decoder(sam):
        from rs_helpers.sam.proposals import generate_reference

        return generate_reference(sam, image_rgb, settings)
    device = next(sam.parameters()).device
    batch_size = batch_size or (256 if device.type == "cuda" else 64)
    decoder = FastDecoder(sam, upscale_chunk=64 if device.type == "cuda" else 16)
    decode = _decoder_fn(decoder, compile)
    h, w = image_rgb.shape[:2]
    grids = build_all_layer_point_grids(settings.points_per_side, settings.crop_n_layers,
                                        settings.crop_n_points_downscale_factor)
    crop_boxes, layers = generate_crop_boxes((h, w), settings.crop_n_layers, settings.crop_overlap_ratio)
    crops = []
    tiles = tqdm(list(zip(crop_boxes, layers)), desc="SAM tiles", leave=False,
                 disable=_disable(progress, len(crop_boxes)))
    for crop_box, layer in tiles:
        x0, y0, x1, y1 = crop_box
        result = _crop_candidates(sam, image_rgb[y0:y1, x0:x1], crop_box, (h, w), grids[layer], settings,
                                  decoder, decode, device, dtype, batch_size, margin, timings, progress,
                                  fast_encoder)
        if result is not None:
            crops.append(result)
    with maybe_stage(timings, "filtering"), torch.no_grad():
        keep_per_crop = [torch.arange(len(c["iou"]), device=c["iou"].device) for c in crops]
        if len(crop_boxes) > 1 and crops:
            boxes = torch.cat([c["boxes"] for c in crops]).float()
            crop_of = torch.cat([c["crop_box"] for c in crops])
            scores = 1 / ((crop_of[:, 2] - crop_of[:, 0]) * (crop_of[:, 3] - crop_of[:, 1])).to(boxes)
            keep = batched_nms(boxes, scores, torch.zeros_like(scores), iou_threshold=settings.crop_nms_thresh)
            sizes = np.cumsum([0] + [len(c["iou"]) for c in crops])
            keep_per_crop, order = _split_keep(keep.cpu().numpy(), sizes, crops)
    with maybe_stage(timings, "masks"):
        proposals = _assemble(crops, keep_per_crop, (h, w), sam.mask_threshold)
        if len(crop_boxes) > 1 and len(proposals):
            proposals = proposals.subset(order)
        proposals = remove_small_regions(proposals, settings.min_mask_region_area, settings.box_nms_thresh)
    return proposals


def proposals_from_logits(low: torch.Tensor, iou: torch.Tensor, points: np.ndarray, image_hw, img_size: int,
                          settings: ProposalSettings = ProposalSettings(), *, mask_threshold: float = 0.0,
                          margin: float = DEFAULT_MARGIN, batch_size: int = 64,
                          timings: Timings | None = None) -> Proposals:
    """The fast post-processing alone, on given decoder outputs for one whole-image crop:
    ``low`` P x 3 x h x w low-resolution logits, ``iou`` P x 3, ``points`` P x 2 (x, y) pixels,
    ``img_size`` the encoder's input side (1024 for SAM). Used to compare post-processing
    on masks of known shape."""
    h, w = image_hw
    input_hw = ResizeLongestSide.get_preprocess_shape(h, w, img_size)
    resampler = Resampler(tuple(low.shape[-2:]), img_size, input_hw, (h, w), low.device, budget=_budget(low.device))
    crop_box = [0, 0, w, h]
    crop = _Crop()
    with maybe_stage(timings, "filtering"), torch.no_grad():
        for start in range(0, len(points), batch_size):
            sl = slice(start, start + batch_size)
            pts = torch.as_tensor(points[sl], dtype=_point_dtype(low.device), device=low.device)
            crop.add(*filter_batch(low[sl], iou[sl], pts, resampler, settings, crop_box, (h, w),
                                   mask_threshold, margin))
    result = _finish_crop(crop, crop_box, settings, resampler, timings)
    with maybe_stage(timings, "masks"):
        if result is None:
            return Proposals.empty(h, w)
        keep = [torch.arange(len(result["iou"]), device=low.device)]
        proposals = _assemble([result], keep, (h, w), mask_threshold)
        return remove_small_regions(proposals, settings.min_mask_region_area, settings.box_nms_thresh)


def _split_keep(keep: np.ndarray, sizes: np.ndarray, crops):
    """Split global NMS survivors (in NMS order) into per-crop indices plus the permutation that
    restores NMS order after per-crop assembly."""
    crop_of = np.searchsorted(sizes, keep, side="right") - 1
    per_crop = [np.sort(keep[crop_of == c]) for c in range(len(crops))]
    assembled = np.concatenate(per_crop) if per_crop else np.zeros(0, int)
    position = {int(g): i for i, g in enumerate(assembled)}
    order = np.array([position[int(g)] for g in keep], int)
    index = [torch.as_tensor(p - sizes[c], device=crops[c]["iou"].device) for c, p in enumerate(per_crop)]
    return index, order


def make_generator(**options):
    """``generate_fast`` with fixed options, as a ``generator(sam, image, settings)`` for
    :class:`~rs_helpers.sam.proposals.ProposalCache` and the OVSS pipeline."""
    def generate(sam, image_rgb, settings=ProposalSettings()):
        return generate_fast(sam, image_rgb, settings, **options)

    shown = {k: v for k, v in options.items() if k not in ("timings", "progress")}  # cache key: results only
    generate.__name__ = "generate_fast" + "".join(f"_{k}={v}" for k, v in sorted(shown.items()))
    return generate


def mask_match(masks_a: np.ndarray, masks_b: np.ndarray, iou_thresh: float = 0.95) -> tuple[float, float]:
    """Fractions of ``masks_a`` with a mask in ``masks_b`` of IoU >= ``iou_thresh``, and the
    other way round (1.0 for an empty side). Identical masks are found by hashing; other pairs
    are compared only when their areas allow the IoU."""
    import hashlib

    def digest(m):
        return hashlib.sha1(np.packbits(m).tobytes()).digest()

    na, nb = len(masks_a), len(masks_b)
    if na == 0 or nb == 0:
        return float(na == 0), float(nb == 0)
    area_a = masks_a.reshape(na, -1).sum(1)
    area_b = masks_b.reshape(nb, -1).sum(1)
    hash_b: dict = {}
    for j, m in enumerate(masks_b):
        hash_b.setdefault(digest(m), j)
    hit_a = np.zeros(na, bool)
    hit_b = np.zeros(nb, bool)
    for i, m in enumerate(masks_a):
        j = hash_b.get(digest(m))
        if j is not None:
            hit_a[i] = True
            hit_b[hash_b[digest(m)]] = True
    same = {digest(m) for m in masks_a}
    for j, m in enumerate(masks_b):
        if digest(m) in same:
            hit_b[j] = True

    def close(i, j):
        lo, hi = sorted((area_a[i], area_b[j]))
        if hi == 0:
            return True
        if lo < iou_thresh * hi:
            return False
        inter = np.logical_and(masks_a[i], masks_b[j]).sum()
        return inter >= iou_thresh * (area_a[i] + area_b[j] - inter)

    for i in np.flatnonzero(~hit_a):
        hit_a[i] = any(close(i, j) for j in range(nb))
    for j in np.flatnonzero(~hit_b):
        hit_b[j] = any(close(i, j) for i in range(na))
    return float(hit_a.mean()), float(hit_b.mean())
