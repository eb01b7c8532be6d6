"""Stage 3 of open-vocabulary segmentation: turn SAM masks plus a CLIP pixel map into a label map.

- Multi-class: each mask takes the class most of its pixels have in the CLIP map (a vote).
- Binary: a mask is kept when the fraction of its pixels labelled with the target exceeds
  ``tau`` (default 0.5); the answer is the union of kept masks.
- Overlaps: masks are painted large first, so smaller masks stay on top.
- Holes: pixels that no mask covers take the CLIP pixel label (or background, or ignore).

Each policy is a field of :class:`SelectionSettings` (the paper states the vote and tau; the
overlap and hole policies are our unconfirmed defaults). Everything works on numpy arrays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rs_helpers.errors import BadInputError

IGNORE = 255
ORDERS = ("large_first", "small_first", "score", "index")
FALLBACKS = ("auto", "clip", "background", "ignore")
VOTES = ("majority", "mean_prob")


@dataclass(frozen=True)
class SelectionSettings:
    """How masks become a label map.

    ``order``: painting order (``large_first``: small masks end on top; ``small_first``;
    ``score``: lowest score first, so the best ends on top; ``index``: as given).
    ``fallback``: label of pixels no (kept) mask covers: ``clip`` (the CLIP pixel label),
    ``background`` (the background class; ignore when there is none), ``ignore`` (255),
    ``auto`` (clip for multi-class, background for binary: the union of kept masks).
    ``vote``: ``majority`` of the CLIP argmax, or highest ``mean_prob`` (needs probabilities).
    ``tau``: binary keep threshold on the target fraction (or mean target probability).
    """

    order: str = "large_first"
    fallback: str = "auto"
    vote: str = "majority"
    tau: float = 0.5

    def __post_init__(self):
        for name, value, allowed in (("order", self.order, ORDERS), ("fallback", self.fallback, FALLBACKS),
                                     ("vote", self.vote, VOTES)):
            if value not in allowed:
                raise BadInputError(f"{name} {value!r}: choose one of {', '.join(allowed)}")
        if not 0.0 <= self.tau < 1.0:
            raise BadInputError(f"tau must be in [0, 1), got {self.tau}")


@dataclass
class Selection:
    """The label map and, per mask, its class (-1: not kept) and its class scores."""

    labels: np.ndarray  # H x W uint8
    mask_classes: np.ndarray  # N int
    scores: np.ndarray  # N x C: class fractions (or mean probabilities) per mask


def _flat_masks(masks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or tuple(masks.shape[1:]) != tuple(shape):
        raise BadInputError(f"masks must be N x {shape[0]} x {shape[1]}, got {masks.shape}")
    return masks.reshape(masks.shape[0], int(np.prod(shape)))


def _chunked_products(flat: np.ndarray, right: np.ndarray, budget: int = 1 << 24) -> np.ndarray:
    """``flat (N x P bool) @ right (P x C)`` in chunks that keep the float copy under budget."""
    n, p = flat.shape
    out = np.zeros((n, right.shape[1]), np.float64)
    step = max(1, budget // max(p, 1))
    for start in range(0, n, step):
        out[start:start + step] = flat[start:start + step].astype(np.float32) @ right
    return out


def class_fractions(masks: np.ndarray, pixel_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """N x C: the fraction of each mask's pixels whose CLIP label is each class (labels outside
    0..C-1 count in the area but for no class). Empty masks give zeros."""
    labels = np.asarray(pixel_labels).ravel()
    flat = _flat_masks(masks, pixel_labels.shape)
    valid = (labels >= 0) & (labels < n_classes)
    onehot = np.zeros((labels.size, n_classes), np.float32)
    onehot[np.flatnonzero(valid), labels[valid]] = 1
    counts = _chunked_products(flat, onehot)
    areas = flat.sum(1, dtype=np.float64)
    return np.divide(counts, areas[:, None], out=np.zeros_like(counts), where=areas[:, None] > 0)


def mean_probabilities(masks: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """N x C: the mean CLIP probability of each class inside each mask."""
    c = probs.shape[0]
    flat = _flat_masks(masks, probs.shape[1:])
    sums = _chunked_products(flat, probs.reshape(c, -1).T.astype(np.float32))
    areas = flat.sum(1, dtype=np.float64)
    return np.divide(sums, areas[:, None], out=np.zeros_like(sums), where=areas[:, None] > 0)


def paint_order(areas: np.ndarray, order: str = "large_first", scores: np.ndarray | None = None) -> np.ndarray:
    """Indices in painting order (later masks overwrite earlier ones); stable for ties."""
    areas = np.asarray(areas)
    if order == "large_first":
        return np.argsort(-areas, kind="stable")
    if order == "small_first":
        return np.argsort(areas, kind="stable")
    if order == "score":
        if scores is None:
            raise BadInputError("order 'score' needs mask scores")
        return np.argsort(np.asarray(scores), kind="stable")
    return np.arange(len(areas))


def paint(masks: np.ndarray, mask_classes: np.ndarray, base: np.ndarray, order: str = "large_first",
          scores: np.ndarray | None = None) -> np.ndarray:
    """Paint each mask with its class on a copy of ``base``; masks with class < 0 are skipped."""
    out = np.array(base, dtype=np.uint8, copy=True)
    areas = _flat_masks(masks, out.shape).sum(1)
    for i in paint_order(areas, order, scores):
        if mask_classes[i] >= 0 and areas[i] > 0:
            out[masks[i]] = mask_classes[i]
    return out


def fallback_map(pixel_labels: np.ndarray, fallback: str, background_index: int | None,
                 binary_target: int | None = None) -> np.ndarray:
    """The label of uncovered pixels: CLIP's label, background or ignore (255). In binary mode
    (``binary_target`` set) labels are 0/1 (1 = target)."""
    labels = np.asarray(pixel_labels)
    if binary_target is not None:
        if fallback == "clip":
            return (labels == binary_target).astype(np.uint8)
        return np.full(labels.shape, IGNORE if fallback == "ignore" else 0, np.uint8)
    if fallback in ("clip", "auto"):
        return labels.astype(np.uint8)
    if fallback == "background" and background_index is not None:
        return np.full(labels.shape, background_index, np.uint8)
    return np.full(labels.shape, IGNORE, np.uint8)


def _unite(masks: np.ndarray, keep: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Set the kept masks' pixels to 1 (one mask at a time: no N x H x W copy)."""
    for i in np.flatnonzero(keep):
        labels[masks[i]] = 1
    return labels


def mask_scores(masks: np.ndarray, pixel_labels: np.ndarray, n_classes: int, settings: SelectionSettings,
                probs: np.ndarray | None = None) -> np.ndarray:
    """N x K class scores of the masks, by ``settings.vote``: pixel-label fractions or mean probabilities."""
    if settings.vote == "mean_prob":
        if probs is None:
            raise BadInputError("vote 'mean_prob' needs the probability map")
        return mean_probabilities(masks, probs)
    return class_fractions(masks, pixel_labels, n_classes)


def select_semantic(masks: np.ndarray, pixel_labels: np.ndarray, n_classes: int,
                    settings: SelectionSettings = SelectionSettings(), probs: np.ndarray | None = None,
                    background_index: int | None = None) -> Selection:
    """Multi-class selection: each mask votes its majority CLIP class; large masks are painted
    first; uncovered pixels follow ``settings.fallback``."""
    scores = mask_scores(masks, pixel_labels, n_classes, settings, probs)
    classes = scores.argmax(1) if len(scores) else np.zeros(0, int)
    base = fallback_map(pixel_labels, settings.fallback, background_index)
    labels = paint(masks, classes, base, settings.order, scores.max(1) if len(scores) else None)
    return Selection(labels=labels, mask_classes=classes, scores=scores)


def select_binary(masks: np.ndarray, pixel_labels: np.ndarray, target: int, n_classes: int,
                  settings: SelectionSettings = SelectionSettings(), probs: np.ndarray | None = None) -> Selection:
    """Binary selection: keep masks whose target fraction exceeds ``tau``; the answer (0/1) is
    their union, on top of ``settings.fallback`` (``auto`` = 0 outside kept masks)."""
    if not 0 <= target < n_classes:
        raise BadInputError(f"target index {target} is not a class index (0..{n_classes - 1})")
    scores = mask_scores(masks, pixel_labels, n_classes, settings, probs)
    keep = scores[:, target] > settings.tau if len(scores) else np.zeros(0, bool)
    labels = _unite(masks, keep, fallback_map(pixel_labels, settings.fallback, None, binary_target=target))
    return Selection(labels=labels, mask_classes=np.where(keep, 1, -1), scores=scores)


def select_from_scores(masks: np.ndarray, scores: np.ndarray, fallback_labels: np.ndarray,
                       settings: SelectionSettings = SelectionSettings(), background_index: int | None = None,
                       binary_target: int | None = None) -> Selection:
    """Selection when each mask already has class scores (e.g. from the crop selector):
    argmax and paint (multi-class), or keep score[target] > tau and unite (binary)."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores.reshape(len(masks), scores.shape[-1] if scores.ndim == 2 else -1) if len(masks) else \
        np.zeros((0, scores.shape[-1] if scores.ndim == 2 else 0))
    if binary_target is not None:
        keep = scores[:, binary_target] > settings.tau if len(scores) else np.zeros(0, bool)
        labels = _unite(masks, keep, fallback_map(fallback_labels, settings.fallback, None, binary_target=binary_target))
        return Selection(labels=labels, mask_classes=np.where(keep, 1, -1), scores=scores)
    classes = scores.argmax(1) if len(scores) else np.zeros(0, int)
    base = fallback_map(fallback_labels, settings.fallback, background_index)
    labels = paint(masks, classes, base, settings.order, scores.max(1) if len(scores) else None)
    return Selection(labels=labels, mask_classes=classes, scores=scores)
