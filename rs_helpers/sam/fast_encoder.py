"""SAM's image encoder with ``scaled_dot_product_attention`` (same function, fewer passes).

segment-anything's ``Attention`` materialises the attention matrix, adds the decomposed
relative-position terms in place, then runs a separate softmax and product. :func:`sdpa_attention`
temporarily swaps each attention block's ``forward`` for one that hands the relative-position
bias to PyTorch's fused attention as an additive mask: the same softmax((q k^T) / sqrt(d) + bias) v,
equal up to floating-point rounding. The module itself is left unchanged after the ``with``.
"""
from __future__ import annotations

import contextlib
import types

import torch
import torch.nn.functional as F


def _forward(self, x: torch.Tensor) -> torch.Tensor:
    from segment_anything.modeling.image_encoder import get_rel_pos

    b, h, w, _ = x.shape
    qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # B x heads x N x d
    bias = None
    if self.use_rel_pos:
        rh = get_rel_pos(h, h, self.rel_pos_h).to(q.dtype)
        rw = get_rel_pos(w, w, self.rel_pos_w).to(q.dtype)
        r_q = q.reshape(b * self.num_heads, h, w, -1)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh)
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw)
        bias = (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(b, self.num_heads, h * w, h * w)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
    out = out.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    return self.proj(out)


def _attention_blocks(encoder):
    from segment_anything.modeling.image_encoder import Attention

    return [m for m in encoder.modules() if isinstance(m, Attention)]


@contextlib.contextmanager
def sdpa_attention(encoder, enabled: bool = True):
    """Within the block, ``encoder``'s attention layers use fused attention."""
    blocks = _attention_blocks(encoder) if enabled else []
    for block in blocks:
        block.forward = types.MethodType(_forward, block)
    try:
        yield encoder
    finally:
        for block in blocks:
            del block.forward
