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
that grows with the masks' perimeters, not with the image area. Masks whose uncertain pixels
would cost more than upsampling them whole (noise, e.g. from random weights) go through SAM's own
two resizes instead, one bounded batch at a time.
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
        to = dict(device=device)
        self.idx, self.weight = torch.as_tensor(idx, **to), torch.as_tensor(weight, **to)
        self.taps = [(self.idx[:, k].contiguous(), self.weight[:, k].contiguous()) for k in range(idx.shape[1])]
        self.counts, self.starts = torch.as_tensor(counts, **to), torch.as_tensor(starts, **to)


class Resampler:
    """Full-resolution statistics of one crop's low-resolution masks.

    ``low_hw``: the decoder's mask size (256 x 256 for SAM); ``padded``: the encoder input size
    (1024); ``input_hw``: the resized crop inside it; ``out_hw``: the crop's size in pixels;
    ``budget``: elements per intermediate tensor (bounds memory).
    """

    def __init__(self, low_hw, padded: int, input_hw, out_hw, device, budget: int = 2**23):
        self.out_hw = tuple(int(v) for v in out_hw)
        self.padded, self.input_hw = int(padded), tuple(int(v) for v in input_hw)
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
        """Exact logits of every pixel of the blocks (m, i, j) as flat lists (value, m, y, x)."""
        r, c = self.rows, self.cols
        ny, nx = r.counts[i], c.counts[j]
        per = ny * nx
        cell = torch.repeat_interleave(torch.arange(len(m), device=low.device), per)
        local = torch.arange(len(cell), device=low.device) - torch.repeat_interleave(torch.cumsum(per, 0) - per, per)
        nx_c = nx[cell]
        y = r.starts[i[cell]] + torch.div(local, nx_c, rounding_mode="floor")
        x = c.starts[j[cell]] + local % nx_c
        mm = m[cell]
        hu, wu = low.shape[1], low.shape[2]
        flat = low.reshape(-1)
        value = torch.zeros(len(cell), device=low.device)
        base = mm * (hu * wu)
        col_taps = [(idx[x], weight[x]) for idx, weight in c.taps]
        for idx, weight in r.taps:
            row = base + idx[y] * wu
            wy = weight[y]
            for ix, wx in col_taps:
                value.addcmul_(flat[row + ix], wy * wx)
        return value, mm, y, x

    def _codes(self, low: torch.Tensor, thresholds: torch.Tensor):
        """Per cell, how many thresholds its whole neighbourhood exceeds (``code``, M x hu x wu,
        -1 where the neighbourhood straddles a threshold or the cell has no pixels)."""
        lo, hi = self._bounds(low)
        code = torch.bucketize(lo, thresholds, out_int32=True)
        code = torch.where(code == torch.bucketize(hi, thresholds, out_int32=True), code, -1)
        return torch.where(self.block > 0, code, -2)

    def _dense(self, low: torch.Tensor) -> torch.Tensor:
        """Full-resolution logits by SAM's own two resizes (G x H x W), for masks whose edge
        pixels are most of the image (noisy masks)."""
        up = F.interpolate(low[:, None].float(), (self.padded, self.padded), mode="bilinear", align_corners=False)
        up = up[..., :self.input_hw[0], :self.input_hw[1]]
        return F.interpolate(up, self.out_hw, mode="bilinear", align_corners=False)[:, 0]

    def _split(self, code: torch.Tensor) -> torch.Tensor:
        """True for masks cheaper to upsample whole: evaluating their uncertain pixels (K x K
        gathers each, about twice the cost of an interpolated pixel) would cost more than SAM's
        two resizes (padded^2 + H x W pixels)."""
        uncertain = (self.block * (code == -1)).sum((1, 2))
        taps = self.rows.idx.shape[1] * self.cols.idx.shape[1]
        return 2 * taps * uncertain > self.padded ** 2 + self.out_hw[0] * self.out_hw[1]

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
            dense = self._split(code)
            if dense.any():
                self._dense_stats(logits[sl][dense], torch.nonzero(dense)[:, 0] + sl.start, ts, counts, ext)
                code[dense] = -2
            m = code.shape[0]
            hist = torch.zeros(m, 6, dtype=torch.long, device=low.device)  # codes -2..3
            hist.scatter_add_(1, (code + 2).reshape(m, -1).long(), block.expand(m, -1))
            for a in range(3):  # pixels in sure blocks above threshold a: codes a+1..3
                counts[a, sl] += hist[:, 3 + a:].sum(1)
            self._extend_from_blocks(ext, sl, code >= 2)
            mi, i, j = (code == -1).nonzero(as_tuple=True)
            for piece in self._pieces(i, j):
                value, mm, ys, xs = self._pixels(low, mi[piece], i[piece], j[piece])
                owner = mm + sl.start
                for a, t in enumerate(ts):
                    counts[a].index_add_(0, owner, (value > t).long())
                pos = value > mask_threshold
                self._extend_from_pixels(ext, owner[pos], ys[pos], xs[pos])
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

    def _dense_stats(self, low, owner, ts, counts, ext):
        h, w = self.out_hw
        for sl in self._chunks(len(owner), 2 * (self.padded ** 2 + h * w)):
            full = self._dense(low[sl])
            for a, t in enumerate(ts):
                counts[a, owner[sl]] += (full > t).sum((1, 2))
            pos = full > ts[1]
            rows, cols = pos.any(2), pos.any(1)
            ar_h, ar_w = torch.arange(h, device=pos.device), torch.arange(w, device=pos.device)
            found = torch.stack([torch.where(cols, ar_w, 1 << 40).amin(1), torch.where(rows, ar_h, 1 << 40).amin(1),
                                 torch.where(cols, ar_w, -1).amax(1), torch.where(rows, ar_h, -1).amax(1)], 1)
            ext[owner[sl]] = found

    @staticmethod
    def _extend_from_pixels(ext, owner, ys, xs):
        for col, coord, reduce in ((0, xs, "amin"), (1, ys, "amin"), (2, xs, "amax"), (3, ys, "amax")):
            ext[:, col].scatter_reduce_(0, owner, coord, reduce=reduce)

    def _pieces(self, i: torch.Tensor, j: torch.Tensor):
        """Slices of the uncertain cells whose pixel lists fit the budget."""
        if len(i) == 0:
            return
        pixels = torch.cumsum(self.rows.counts[i] * self.cols.counts[j], 0).cpu().numpy()
        step = max(1, self.budget // 16)
        start = 0
        while start < len(i):
            offset = pixels[start - 1] if start else 0
            stop = int(np.searchsorted(pixels, offset + step, side="right"))
            stop = max(stop, start + 1)
            yield slice(start, stop)
            start = stop

    def masks(self, logits: torch.Tensor, mask_threshold: float):
        """Yield (indices, boolean full-resolution masks G x H x W) of ``logits > mask_threshold``."""
        n = logits.shape[0]
        hu, wu = self.low_used
        h, w = self.out_hw
        thresholds = torch.tensor([mask_threshold], device=logits.device)
        for sl in self._chunks(n, h * w + 4 * hu * wu):
            low = logits[sl, :hu, :wu].float()
            code = self._codes(low, thresholds)
            dense = self._split(code)
            code[dense] = -2
            full = (code == 1).repeat_interleave(self.rows.counts, dim=1).repeat_interleave(self.cols.counts, dim=2)
            m, i, j = (code == -1).nonzero(as_tuple=True)
            for piece in self._pieces(i, j):
                value, mm, ys, xs = self._pixels(low, m[piece], i[piece], j[piece])
                full[mm, ys, xs] = value > mask_threshold
            if dense.any():
                full[dense] = self._dense(logits[sl][dense]) > mask_threshold
            yield torch.arange(sl.start, sl.stop, device=logits.device), full
