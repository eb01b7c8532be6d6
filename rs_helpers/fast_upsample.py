"""Exact full-resolution statistics of SAM's low-resolution mask logits, one window at a time.

SAM upsamples each 256 x 256 logit map to the padded input size (1024), crops the padding and
resizes to the image (``Sam.postprocess_masks``: two bilinear resizes). Both are linear and
separable, so each output row (column) is a fixed combination of at most 4 low-resolution rows
(columns): :class:`Resampler` precomputes these taps from ``F.interpolate`` itself and evaluates
the full-resolution logits only inside a window, in batches of bounded size.

Bilinear weights are non-negative and sum to 1, so a full-resolution logit is at most the largest
low-resolution logit it combines: pixels above a threshold lie in the rows and columns whose taps
reach a low-resolution pixel above it. The window of ``logits > -offset`` therefore holds every
pixel SAM's stability score counts, and the box of ``logits > 0`` is found inside it.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F


@lru_cache(maxsize=32)
def _axis_taps(low: int, padded: int, valid: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights (out x K) of the low-resolution samples behind each output sample:
    resize ``low`` -> ``padded``, keep the first ``valid``, resize to ``out`` (as postprocess_masks)."""
    eye = torch.eye(low, dtype=torch.float32).view(low, 1, low, 1)
    up = F.interpolate(eye, (padded, 1), mode="bilinear", align_corners=False)[:, :, :valid]
    up = F.interpolate(up, (out, 1), mode="bilinear", align_corners=False)
    matrix = up[:, 0, :, 0].T.numpy()  # out x low
    nonzero = matrix > 0
    k = max(1, int(nonzero.sum(1).max()))
    idx = np.zeros((out, k), np.int64)
    weight = np.zeros((out, k), np.float32)
    for i in range(out):
        cols = np.flatnonzero(nonzero[i])
        idx[i, :cols.size] = cols
        idx[i, cols.size:] = cols[-1] if cols.size else 0
        weight[i, :cols.size] = matrix[i, cols]
    return idx, weight


class Resampler:
    """Full-resolution logits of one crop's low-resolution masks, evaluated inside windows.

    ``low_hw``: the decoder's mask size (256 x 256 for SAM); ``padded``: the encoder input size
    (1024); ``input_hw``: the resized crop inside it; ``out_hw``: the crop's size in pixels.
    """

    def __init__(self, low_hw, padded: int, input_hw, out_hw, device, budget: int = 2**24):
        self.out_hw = tuple(int(v) for v in out_hw)
        self.budget = int(budget)  # floats per window batch
        self.device = torch.device(device)
        taps = [_axis_taps(int(low_hw[a]), int(padded), int(input_hw[a]), self.out_hw[a]) for a in (0, 1)]
        self.idx = [torch.as_tensor(t[0], device=self.device) for t in taps]
        self.weight = [torch.as_tensor(t[1], device=self.device) for t in taps]
        masked = [np.where(t[1] > 0, t[0], -1) for t in taps]
        # support of each output line: first and last low-resolution line it reads (monotone)
        self.first = [torch.as_tensor(np.where(m >= 0, m, 1 << 30).min(1), device=self.device) for m in masked]
        self.last = [torch.as_tensor(m.max(1), device=self.device) for m in masked]
        self.low_used = [int(m.max()) + 1 for m in masked]  # low-res lines any output reads

    # ----------------------------------------------------------------- windows
    def windows(self, logits: torch.Tensor, threshold: float) -> torch.Tensor:
        """(M, 4) int windows [y0, y1, x0, x1) holding every output pixel whose logit can exceed
        ``threshold``; empty (y0 == y1) when none can."""
        hu, wu = self.low_used
        above = logits[:, :hu, :wu] > threshold
        out = torch.zeros(logits.shape[0], 4, dtype=torch.long, device=logits.device)
        for axis, any_dim in ((0, 2), (1, 1)):
            lines = above.any(any_dim)  # M x lines
            present = lines.any(1)
            n = lines.shape[1]
            ar = torch.arange(n, device=logits.device)
            lo = torch.where(lines, ar, n).amin(1)
            hi = torch.where(lines, ar, -1).amax(1)
            start = torch.searchsorted(self.last[axis], lo.contiguous(), right=False)
            stop = torch.searchsorted(self.first[axis], hi.contiguous(), right=True)
            stop = torch.where(present, stop, start)
            out[:, 2 * axis] = start
            out[:, 2 * axis + 1] = torch.maximum(stop, start)
        empty = (out[:, 1] <= out[:, 0]) | (out[:, 3] <= out[:, 2])
        out[empty] = 0
        return out

    def _batches(self, windows: torch.Tensor):
        """Groups of candidate indices whose padded windows fit the budget (similar sizes together)."""
        win = windows.cpu().numpy()
        hh, ww = win[:, 1] - win[:, 0], win[:, 3] - win[:, 2]
        order = np.argsort(hh * ww, kind="stable")
        group, gh, gw = [], 0, 0
        for i in order:
            nh, nw = max(gh, hh[i]), max(gw, ww[i])
            if group and (len(group) + 1) * max(nh, 1) * max(nw, 1) > self.budget:
                yield np.array(group), gh, gw
                group, nh, nw = [], hh[i], ww[i]
            group.append(i)
            gh, gw = nh, nw
        if group:
            yield np.array(group), gh, gw

    def evaluate(self, logits: torch.Tensor, windows: torch.Tensor):
        """Yield (indices, full-resolution logits (G x h x w), valid (G x h x w), windows (G x 4))
        for batches of candidates; logits outside a candidate's own window are not meaningful."""
        for group, gh, gw in self._batches(windows):
            gi = torch.as_tensor(group, device=logits.device)
            win = windows[gi]
            if gh == 0 or gw == 0:
                shape = (len(group), max(gh, 1), max(gw, 1))
                yield gi, torch.zeros(shape, device=logits.device), torch.zeros(shape, dtype=torch.bool,
                                                                                 device=logits.device), win
                continue
            rows, rvalid = self._lines(win[:, 0], win[:, 1], gh, 0)
            cols, cvalid = self._lines(win[:, 2], win[:, 3], gw, 1)
            low = logits[gi].float()  # G x Hl x Wl
            r_idx, r_w = self.idx[0][rows], self.weight[0][rows] * rvalid[..., None]  # G x gh x K
            part = torch.zeros(len(group), gh, low.shape[2], device=low.device)
            for k in range(r_idx.shape[2]):
                picked = low.gather(1, r_idx[:, :, k:k + 1].expand(-1, -1, low.shape[2]))
                part.addcmul_(picked, r_w[:, :, k:k + 1])
            c_idx, c_w = self.idx[1][cols], self.weight[1][cols] * cvalid[..., None]  # G x gw x K
            full = torch.zeros(len(group), gh, gw, device=low.device)
            for k in range(c_idx.shape[2]):
                picked = part.gather(2, c_idx[:, None, :, k].expand(-1, gh, -1))
                full.addcmul_(picked, c_w[:, None, :, k])
            yield gi, full, rvalid[:, :, None] & cvalid[:, None, :], win

    def _lines(self, start, stop, size: int, axis: int):
        ar = torch.arange(size, device=start.device)
        lines = start[:, None] + ar[None, :]
        valid = lines < stop[:, None]
        return lines.clamp(max=self.out_hw[axis] - 1), valid

    # ----------------------------------------------------------------- statistics
    def stability_and_boxes(self, logits: torch.Tensor, mask_threshold: float, offset: float):
        """SAM's stability score (pixels above threshold + offset over pixels above threshold -
        offset, at full resolution) and inclusive XYXY boxes of ``logits > mask_threshold``
        (zeros when empty), for every candidate; exact up to floating-point rounding."""
        m = logits.shape[0]
        inter = torch.zeros(m, dtype=torch.long, device=logits.device)
        union = torch.zeros(m, dtype=torch.long, device=logits.device)
        boxes = torch.zeros(m, 4, dtype=torch.long, device=logits.device)
        if m == 0:
            return inter.float(), boxes
        windows = self.windows(logits, mask_threshold - offset)
        for gi, full, valid, win in self.evaluate(logits, windows):
            inter[gi] = ((full > mask_threshold + offset) & valid).sum((1, 2))
            union[gi] = ((full > mask_threshold - offset) & valid).sum((1, 2))
            pos = (full > mask_threshold) & valid
            boxes[gi] = _boxes(pos, win)
        stability = inter.to(torch.int32) / union.to(torch.int32)  # nan for empty, as SAM
        return stability, boxes

    def masks(self, logits: torch.Tensor, boxes: torch.Tensor, mask_threshold: float):
        """Yield (indices, boolean masks G x h x w, windows G x 4 [y0, y1, x0, x1)) covering each
        candidate's inclusive box; pixels outside a candidate's own window are False."""
        win = torch.stack([boxes[:, 1], boxes[:, 3] + 1, boxes[:, 0], boxes[:, 2] + 1], 1)
        empty = (boxes == 0).all(1)
        win[empty] = 0
        for gi, full, valid, w in self.evaluate(logits, win):
            yield gi, (full > mask_threshold) & valid, w


def _boxes(pos: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Inclusive XYXY boxes of boolean windows placed at ``win`` [y0, y1, x0, x1); zeros if empty."""
    g, h, w = pos.shape
    rows, cols = pos.any(2), pos.any(1)
    ar_h, ar_w = torch.arange(h, device=pos.device), torch.arange(w, device=pos.device)
    y_min = torch.where(rows, ar_h, h).amin(1)
    y_max = torch.where(rows, ar_h, -1).amax(1)
    x_min = torch.where(cols, ar_w, w).amin(1)
    x_max = torch.where(cols, ar_w, -1).amax(1)
    out = torch.stack([x_min + win[:, 2], y_min + win[:, 0], x_max + win[:, 2], y_max + win[:, 0]], 1)
    return torch.where(rows.any(1)[:, None], out, torch.zeros_like(out))
