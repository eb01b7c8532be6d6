"""SAM's mask decoder for many point prompts on one image, without repeating shared work.

``MaskDecoder.predict_masks`` copies the image embedding once per point
(``torch.repeat_interleave``) and runs every projection on every copy. For a grid of single
points most of that work is the same for each point, or can be moved to the small side
(7 tokens per point instead of 4,096 image tokens). :class:`FastDecoder` computes exactly the
same function with these rewrites (equal up to floating-point rounding):

* the image embedding + dense prompt embedding, the positional encoding, and the first layer's
  image keys, values and image-side queries are computed once and broadcast;
* attention projections on the image side are folded into the token side:
  ``softmax(q Wk (K)^T)`` uses ``(Wk^T q) K^T`` (the key bias shifts every score of a query by the
  same amount, so it drops out of the softmax), ``softmax(.) (K Wv^T)`` is ``(softmax(.) K) Wv^T``,
  and the image-to-token output projection is applied to the 7 token values before the
  weighted sum. Per point this replaces four 4,096 x 256 x 128 projections per layer by
  products with 8 heads x 7 tokens = 56 columns;
* token-to-image attention uses ``scaled_dot_product_attention`` (one head of width 256:
  after folding, all heads share the image keys and values);
* the two transposed convolutions of the upscaler are per-pixel matrix products in a
  channels-last layout, run a few points at a time (``upscale_chunk``: bounded memory), only
  the three multimask outputs are produced, and with ``iou_thresh`` points whose three
  predicted IoUs fail the threshold skip the upscaler (the IoU head needs only the transformer).

Only the decoder's own parameters are used; the module is not modified.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(..., T, H*d) -> (..., T, H, d)"""
    return x.unflatten(-1, (heads, x.shape[-1] // heads))


class FastDecoder:
    """Batched multimask decoding of single-point prompts against one image embedding.

    ``shared = decoder.prepare(image_embedding)`` computes what every point shares once per image;
    ``decoder(sparse, *shared)`` takes the prompt encoder's sparse embeddings (B x T x C) and
    returns the three multimask low-resolution logits (B x 3 x 4h x 4w, float32) and their
    predicted IoU (B x 3, float32), as ``sam.mask_decoder(..., multimask_output=True)`` does.
    The shared tensors are explicit arguments so that ``torch.compile`` reuses one graph.
    """

    def __init__(self, sam, upscale_chunk: int | None = None):
        self.sam = sam
        self.upscale_chunk = upscale_chunk  # points per upscaler pass (bounds its activations' memory)
        self.dec = sam.mask_decoder
        self.tf = self.dec.transformer
        self.num_mask_tokens = self.dec.num_mask_tokens

    def prepare(self, image_embedding: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """What every point shares, computed once per image: (src, pe, k0, v0, q0).

        ``src`` image embedding + dense (no-mask) prompt embedding and ``pe`` the dense positional
        encoding, both 1 x N x C; ``k0``, ``v0`` (1 x H x N x d) the first layer's token-to-image
        keys and values; ``q0`` (N x H x d) its image-to-token image queries.
        """
        first = self.tf.layers[0]
        dense = self.sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        src = (image_embedding + dense).flatten(2).transpose(1, 2)
        with torch.autocast(image_embedding.device.type, enabled=False):  # sin/cos features in float32
            pe = self.sam.prompt_encoder.get_dense_pe()
        pe = pe.flatten(2).transpose(1, 2).to(src.dtype)
        a = first.cross_attn_token_to_image
        k0 = _heads(a.k_proj(src + pe), a.num_heads).transpose(1, 2)
        v0 = _heads(a.v_proj(src), a.num_heads).transpose(1, 2)
        q0 = _heads(first.cross_attn_image_to_token.q_proj(src + pe), first.cross_attn_image_to_token.num_heads)[0]
        return src, pe, k0, v0, q0

    # ------------------------------------------------------------------ attention pieces
    @staticmethod
    def _t2i_shared(attn, q_in: torch.Tensor, k0: torch.Tensor, v0: torch.Tensor) -> torch.Tensor:
        """Tokens attend to the shared first-layer image keys: all B x T queries in one call."""
        b, t, _ = q_in.shape
        q = _heads(attn.q_proj(q_in), attn.num_heads)  # B x T x H x d
        q = q.permute(2, 0, 1, 3).reshape(1, attn.num_heads, b * t, -1)
        out = F.scaled_dot_product_attention(q, k0.to(q.dtype), v0.to(q.dtype))
        out = out.reshape(attn.num_heads, b, t, -1).permute(1, 2, 0, 3).flatten(2)
        return attn.out_proj(out)

    @staticmethod
    def _t2i_folded(attn, q_in: torch.Tensor, k_in: torch.Tensor, v_in: torch.Tensor) -> torch.Tensor:
        """Tokens (B x T x C) attend to per-point image tokens (B x N x C), projections folded."""
        b, t, c = q_in.shape
        heads = attn.num_heads
        d = attn.internal_dim // heads
        q = _heads(attn.q_proj(q_in), heads)  # B x T x H x d
        wk = attn.k_proj.weight.view(heads, d, c).to(q.dtype)
        qk = torch.einsum("bthd,hdc->bhtc", q, wk).reshape(b, 1, heads * t, c)
        o = F.scaled_dot_product_attention(qk, k_in.unsqueeze(1).to(qk.dtype), v_in.unsqueeze(1).to(qk.dtype),
                                           scale=1.0 / math.sqrt(d))
        o = o.view(b, heads, t, c)
        wv = attn.v_proj.weight.view(heads, d, c).to(o.dtype)
        out = torch.einsum("bhtc,hdc->bthd", o, wv).flatten(2) + attn.v_proj.bias.to(o.dtype)
        return attn.out_proj(out)

    @staticmethod
    def _i2t(attn, residual: torch.Tensor, img_q: torch.Tensor | None, img_q_heads: torch.Tensor | None,
             tok_k: torch.Tensor, tok_v: torch.Tensor) -> torch.Tensor:
        """``residual`` + image tokens attending to the B x T prompt tokens (B x N x C).

        ``img_q_heads`` (N x H x d, already projected) when the image side is shared, else
        ``img_q`` (B x N x C) with the query projection folded into the token keys. Scores are
        laid out B x H x T x N so that the softmax over the 7 tokens runs on long rows; the
        output projection is applied to the token values (``vw``), and its bias is spread over
        the heads' weights, which sum to 1 per head.
        """
        b, t, c = tok_k.shape
        heads = attn.num_heads
        d = attn.internal_dim // heads
        k = _heads(attn.k_proj(tok_k), heads)  # B x T x H x d
        v = _heads(attn.v_proj(tok_v), heads)
        if img_q_heads is not None:
            scores = torch.einsum("bthd,nhd->bhtn", k, img_q_heads.to(k.dtype))
        else:
            wq = attn.q_proj.weight.view(heads, d, c).to(k.dtype)
            kq = torch.einsum("bthd,hdc->bhtc", k, wq).reshape(b, heads * t, c)
            kb = torch.einsum("bthd,hd->bht", k, attn.q_proj.bias.view(heads, d).to(k.dtype))
            scores = torch.baddbmm(kb.reshape(b, heads * t, 1), kq, img_q.to(kq.dtype).transpose(1, 2))
            scores = scores.view(b, heads, t, -1)
        weights = torch.softmax(scores * (1.0 / math.sqrt(d)), dim=2).flatten(1, 2)  # B x H*T x N
        wo = attn.out_proj.weight.view(c, heads, d).to(v.dtype)
        vw = torch.einsum("bthd,chd->bhtc", v, wo) + attn.out_proj.bias.to(v.dtype) / heads
        vw = vw.reshape(b, heads * t, c)
        weights = weights.transpose(1, 2).to(vw.dtype)
        if residual.dtype == vw.dtype:  # fp32: one fused pass
            return torch.baddbmm(residual.expand(b, -1, -1), weights, vw)
        return residual + torch.bmm(weights, vw)  # autocast: keep the residual stream in fp32

    # ------------------------------------------------------------------ forward
    def transformer(self, tokens: torch.Tensor, src, pe, k0, v0, q0) -> tuple[torch.Tensor, torch.Tensor]:
        """``TwoWayTransformer.forward`` for B prompts against the shared image: (queries, keys)."""
        queries, query_pe = tokens, tokens
        keys = None  # shared image tokens until the first image-to-token update
        for layer in self.tf.layers:
            if layer.skip_first_layer_pe:
                queries = layer.self_attn(q=queries, k=queries, v=queries)
            else:
                q = queries + query_pe
                queries = queries + layer.self_attn(q=q, k=q, v=queries)
            queries = layer.norm1(queries)
            q = queries + query_pe
            if keys is None:
                attn_out = self._t2i_shared(layer.cross_attn_token_to_image, q, k0, v0)
            else:
                keys_pe = keys + pe.to(keys.dtype)
                attn_out = self._t2i_folded(layer.cross_attn_token_to_image, q, keys_pe, keys)
            queries = layer.norm2(queries + attn_out)
            queries = layer.norm3(queries + layer.mlp(queries))
            q = queries + query_pe
            if keys is None:
                keys = layer.norm4(self._i2t(layer.cross_attn_image_to_token, src, None, q0, q, queries))
            else:
                keys = layer.norm4(self._i2t(layer.cross_attn_image_to_token, keys, keys_pe, None, q, queries))
        q = queries + query_pe
        if keys is None:  # a transformer without layers (not SAM's)
            keys = src.expand(tokens.shape[0], -1, -1)
            attn_out = self._t2i_shared(self.tf.final_attn_token_to_image, q, k0, v0)
        else:
            attn_out = self._t2i_folded(self.tf.final_attn_token_to_image, q, keys + pe.to(keys.dtype), keys)
        queries = self.tf.norm_final_attn(queries + attn_out)
        return queries, keys

    def upscale(self, keys: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        """``output_upscaling`` + hypernetwork product, channels-last: B x N x C -> B x M x 4h x 4w."""
        up = self.dec.output_upscaling
        conv1, norm, act1, conv2, act2 = up[0], up[1], up[2], up[3], up[4]
        b, n = keys.shape[0], keys.shape[1]
        h, w = self.sam.prompt_encoder.image_embedding_size
        assert h * w == n
        dt = keys.dtype
        c1, c2 = conv1.out_channels, conv2.out_channels
        w1 = conv1.weight.permute(0, 2, 3, 1).reshape(conv1.in_channels, 4 * c1).to(dt)
        x = (keys @ w1).view(b, h, w, 2, 2, c1) + conv1.bias.to(dt)
        x = act1(F.layer_norm(x, (c1,), norm.weight.to(dt), norm.bias.to(dt), norm.eps))
        w2 = conv2.weight.permute(0, 2, 3, 1).reshape(c1, 4 * c2).to(dt)
        x = act2((x @ w2).view(b, h, w, 2, 2, 2, 2, c2) + conv2.bias.to(dt))
        m = hyper.shape[1]
        masks = torch.bmm(x.view(b, -1, c2), hyper.to(dt).transpose(1, 2))  # B x 16N x M
        masks = masks.view(b, h, w, 2, 2, 2, 2, m).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return masks.reshape(b, m, 4 * h, 4 * w)

    def __call__(self, sparse: torch.Tensor, src, pe, k0, v0, q0,
                 iou_thresh: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B x 3 x 4h x 4w logits, B x 3 IoU). With ``iou_thresh``, points whose three predicted
        IoUs are all <= it skip the upscaler (their logits are returned as zeros): the predicted
        IoU needs only the transformer, and such masks are filtered out first anyway."""
        dec = self.dec
        b = sparse.shape[0]
        out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(b, -1, -1).to(sparse.dtype), sparse], dim=1)
        hs, keys = self.transformer(tokens, src, pe, k0, v0, q0)
        iou = dec.iou_prediction_head(hs[:, 0, :])[:, 1:]
        mask_tokens = hs[:, 1:1 + self.num_mask_tokens, :]
        hyper = torch.stack([dec.output_hypernetworks_mlps[i](mask_tokens[:, i, :])
                             for i in range(1, self.num_mask_tokens)], dim=1)
        if iou_thresh is None:
            return self._upscale_chunks(keys, hyper), iou.float()
        need = torch.nonzero((iou > iou_thresh).any(1))[:, 0]
        h, w = self.sam.prompt_encoder.image_embedding_size
        masks = torch.zeros(b, self.num_mask_tokens - 1, 4 * h, 4 * w, device=keys.device)
        if len(need):
            masks[need] = self._upscale_chunks(keys[need], hyper[need])
        return masks, iou.float()

    def _upscale_chunks(self, keys: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        step = self.upscale_chunk or keys.shape[0]
        if step >= keys.shape[0]:
            return self.upscale(keys, hyper).float()
        return torch.cat([self.upscale(keys[i:i + step], hyper[i:i + step]).float()
                          for i in range(0, keys.shape[0], step)])


def supports_fast_decoder(sam) -> bool:
    """True when ``sam`` has segment-anything's decoder layout that :class:`FastDecoder` reimplements."""
    try:
        dec = sam.mask_decoder
        up = dec.output_upscaling
        ok = (len(up) == 5 and isinstance(up[0], torch.nn.ConvTranspose2d) and isinstance(up[3], torch.nn.ConvTranspose2d)
              and tuple(up[0].kernel_size) == (2, 2) and tuple(up[0].stride) == (2, 2)
              and tuple(up[3].kernel_size) == (2, 2) and tuple(up[3].stride) == (2, 2)
              and hasattr(dec.transformer, "layers") and dec.num_mask_tokens == 4)
        return bool(ok) and all(hasattr(layer, "cross_attn_image_to_token") for layer in dec.transformer.layers)
    except AttributeError:
        return False
