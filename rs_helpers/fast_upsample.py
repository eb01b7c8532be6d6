"""Exact full-resolution statistics of SAM's low-resolution mask logits, without upsampling them.

SAM upsamples each 256 x 256 logit map to the padded input size (1024), crops the padding and
resizes to the image (``Sam.postprocess_masks``: two bilinear resizes). Both are linear and
separable: output row ``y`` is a combination, with non-negative weights summing to 1, of at most
``K`` consecutive low-resolution rows starting at ``first[y]`` (likewise for columns).
:class:`Resampler` takes these taps from ``F.interpolate`` itself.

Output pixels that start at the same low-resolution cell (i, j) form a block. A pixel's logit lies
between the minimum and maximum of the low-resolution logits in the K x K neighbourhood of its
cell, so for a threshold t a block is certainly above t (minimum > t) or certainly not (maximum
<= t) except near the mask's edge. :class:`Resampler` counts the certain blocks at low resolution
(block size x cell) and evaluates only the uncertain pixels exactly. Counts above t, boxes and
masks therefore equal those of the upsampled logits (up to floating-point rounding) at a cost
that grows with the masks' perimeters, not with the image area.
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
        idx[i, cols.size:] = cols[-1]
        weight[i, :cols.size] = matrix[i, cols]
    return idx, weight


class _Axis:
    """Taps of one axis and the blocks of output lines that share a first low-resolution line."""

    def __init__(self, low: int, padded: int, valid: int, out: int, device):
        idx, weight = _axis_taps(low, padded, valid, out)
        first = idx[:, 0]
        last = np.where(weight > 0, idx, 0).max(1)
        self.used = int(last.max()) + 1  # low-resolution lines any output reads
        self.span = int((last - first).max()) + 1  # neighbourhood size K
        counts = np.bincount(first, minlength=self.used)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.max_block = int(counts.max())
        to = dict(device=device)
        self.idx, self.weight = torch.as_tensor(idx, **to), torch.as_tensor(weight, **to)
        self.counts, self.starts = torch.as_tensor(counts, **to), torch.as_tensor(starts, **to)

    def lines(self, cells: torch.Tensor):
        """Output lines of the blocks starting at low-resolution ``cells`` (n): (n x B, valid)."""
        ar = torch.arange(self.max_block, device=cells.device)
        lines = self.starts[cells][:, None] + ar
        valid = ar < self.counts[cells][:, None]
        return lines.clamp(max=self.idx.shape[0] - 1), valid


class Resampler:
    """Full-resolution statistics of one crop's low-resolution masks.

    ``low_hw``: the decoder's mask size (256 x 256 for SAM); ``padded``: the encoder input size
    (1024); ``input_hw``: the resized crop inside it; ``out_hw``: the crop's size in pixels;
    ``budget``: elements per intermediate tensor (bounds memory).
    """

    def __init__(self, low_hw, padded: int, input_hw, out_hw, device, budget: int = 2**23):
        self.out_hw = tuple(int(v) for v in out_hw)
        self.device = torch.device(device)
        self.budget = int(budget)
        self.rows = _Axis(int(low_hw[0]), int(padded), int(input_hw[0]), self.out_hw[0], self.device)
        self.cols = _Axis(int(low_hw[1]), int(padded), int(input_hw[1]), self.out_hw[1], self.device)
        self.low_used = (self.rows.used, self.cols.used)
        self.block = self.rows.counts[:, None] * self.cols.counts[None, :]  # pixels per cell

    def _chunks(self, n: int, per_item: int):
        step = max(1, self.budget // max(1, per_item))
        for start in range(0, n, step):
            yield slice(start, min(n, start + step))

    def _bounds(self, low: torch.Tensor):
        """Min and max of each cell's K x K neighbourhood (M x hu x wu), cells past the edge ignored."""
        lo, hi = low.clone(), low.clone()
        for dim, span in ((1, self.rows.span), (2, self.cols.span)):
            base_lo, base_hi = lo.clone(), hi.clone()
            size = low.shape[dim]
            for shift in range(1, min(span, size)):
                a, b = lo.narrow(dim, 0, size - shift), base_lo.narrow(dim, shift, size - shift)
                torch.minimum(a, b, out=a)
                a, b = hi.narrow(dim, 0, size - shift), base_hi.narrow(dim, shift, size - shift)
                torch.maximum(a, b, out=a)
        return lo, hi

    def _pixels(self, low: torch.Tensor, m: torch.Tensor, i: torch.Tensor, j: torch.Tensor):
        """Exact logits of every pixel of the blocks (m, i, j): (n x By x Bx, ys, xs, valid)."""
        ys, vy = self.rows.lines(i)
        xs, vx = self.cols.lines(j)
        wu = low.shape[2]
        flat = low.reshape(-1)
        base = (m * (low.shape[1] * wu))[:, None, None]
        iy, wy = self.rows.idx[ys], self.rows.weight[ys]  # n x By x K
        ix, wx = self.cols.idx[xs], self.cols.weight[xs]  # n x Bx x K
        value = torch.zeros(len(m), ys.shape[1], xs.shape[1], device=low.device)
        for k in range(iy.shape[2]):
            row = base + iy[:, :, k, None] * wu
            for l in range(ix.shape[2]):
                value.addcmul_(flat[row + ix[:, None, :, l]], wy[:, :, k, None] * wx[:, None, :, l])
        return value, ys, xs, vy[:, :, None] & vx[:, None, :]

    def _codes(self, low: torch.Tensor, thresholds: torch.Tensor):
        """Per cell, how many thresholds its whole neighbourhood exceeds (``code``, M x hu x wu,
        -1 where the neighbourhood straddles a threshold or the cell has no pixels)."""
        lo, hi = self._bounds(low)
        code = torch.bucketize(lo, thresholds, out_int32=True)
        code = torch.where(code == torch.bucketize(hi, thresholds, out_int32=True), code, -1)
        return torch.where(self.block > 0, code, -2)

    def stability_and_boxes(self, logits: torch.Tensor, mask_threshold: float, offset: float):
        """SAM's stability score (pixels above threshold + offset over pixels above threshold -
        offset, at full resolution; nan when none) and inclusive XYXY boxes of
        ``logits > mask_threshold`` (zeros when empty), for every candidate."""
        n = logits.shape[0]
        hu, wu = self.low_used
        ts = (mask_threshold - offset, mask_threshold, mask_threshold + offset)
        thresholds = torch.tensor(ts, device=logits.device)
        counts = torch.zeros(3, n, dtype=torch.long, device=logits.device)
        big = 1 << 40
        ext = torch.tensor([big, big, -1, -1], device=logits.device).repeat(n, 1)  # x0 y0 x1 y1
        block = self.block.reshape(-1)
        for sl in self._chunks(n, 4 * hu * wu):
            low = logits[sl, :hu, :wu].float()
            code = self._codes(low, thresholds)
            m = code.shape[0]
            hist = torch.zeros(m, 6, dtype=torch.long, device=low.device)  # codes -2..3
            hist.scatter_add_(1, (code + 2).reshape(m, -1).long(), block.expand(m, -1))
            for a in range(3):  # pixels in sure blocks above threshold a: codes a+1..3
                counts[a, sl] += hist[:, 3 + a:].sum(1)
            self._extend_from_blocks(ext, sl, code >= 2)
            mi, i, j = (code == -1).nonzero(as_tuple=True)
            per = self.rows.max_block * self.cols.max_block * 4
            for piece in self._chunks(len(mi), per):
                value, ys, xs, valid = self._pixels(low, mi[piece], i[piece], j[piece])
                owner = mi[piece] + sl.start
                for a, t in enumerate(ts):
                    counts[a].index_add_(0, owner, ((value > t) & valid).sum((1, 2)))
                pos = (value > mask_threshold) & valid
                self._extend_from_pixels(ext, owner, pos, ys, xs)
        stability = counts[2].to(torch.int32) / counts[0].to(torch.int32)
        empty = ext[:, 2] < 0
        boxes = torch.where(empty[:, None], torch.zeros_like(ext), ext)
        return stability, boxes

    def _extend_from_blocks(self, ext, sl, sure):
        rows_any, cols_any = sure.any(2), sure.any(1)
        r, c = self.rows, self.cols
        ar_r = torch.arange(rows_any.shape[1], device=sure.device)
        ar_c = torch.arange(cols_any.shape[1], device=sure.device)
        big = 1 << 40
        i0 = torch.where(rows_any, ar_r, big).amin(1).clamp(max=rows_any.shape[1] - 1)
        i1 = torch.where(rows_any, ar_r, -1).amax(1).clamp(min=0)
        j0 = torch.where(cols_any, ar_c, big).amin(1).clamp(max=cols_any.shape[1] - 1)
        j1 = torch.where(cols_any, ar_c, -1).amax(1).clamp(min=0)
        has = rows_any.any(1)
        found = torch.stack([c.starts[j0], r.starts[i0], c.starts[j1] + c.counts[j1] - 1,
                             r.starts[i1] + r.counts[i1] - 1], 1)
        part = ext[sl]
        part[:, :2] = torch.where(has[:, None], torch.minimum(part[:, :2], found[:, :2]), part[:, :2])
        part[:, 2:] = torch.where(has[:, None], torch.maximum(part[:, 2:], found[:, 2:]), part[:, 2:])
        ext[sl] = part

    @staticmethod
    def _extend_from_pixels(ext, owner, pos, ys, xs):
        big = 1 << 40
        y = ys[:, :, None].expand_as(pos)
        x = xs[:, None, :].expand_as(pos)
        for col, coord, reduce, fill in ((0, x, "amin", big), (1, y, "amin", big), (2, x, "amax", -1), (3, y, "amax", -1)):
            value = torch.where(pos, coord, fill).flatten(1)
            value = value.amin(1) if reduce == "amin" else value.amax(1)
            ext[:, col].scatter_reduce_(0, owner, value, reduce=reduce)

    def masks(self, logits: torch.Tensor, mask_threshold: float):
        """Yield (indices, boolean full-resolution masks G x H x W) of ``logits > mask_threshold``."""
        n = logits.shape[0]
        hu, wu = self.low_used
        h, w = self.out_hw
        thresholds = torch.tensor([mask_threshold], device=logits.device)
        for sl in self._chunks(n, h * w + 4 * hu * wu):
            low = logits[sl, :hu, :wu].float()
            code = self._codes(low, thresholds)
            full = (code == 1).repeat_interleave(self.rows.counts, dim=1).repeat_interleave(self.cols.counts, dim=2)
            m, i, j = (code == -1).nonzero(as_tuple=True)
            per = self.rows.max_block * self.cols.max_block * 4
            for piece in self._chunks(len(m), per):
                value, ys, xs, valid = self._pixels(low, m[piece], i[piece], j[piece])
                mm = m[piece][:, None, None].expand_as(value)
                yy = ys[:, :, None].expand_as(value)
                xx = xs[:, None, :].expand_as(value)
                full[mm[valid], yy[valid], xx[valid]] = value[valid] > mask_threshold
            yield torch.arange(sl.start, sl.stop, device=logits.device), full
