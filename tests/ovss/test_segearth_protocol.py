"""The segearth-ov dense path equals a port of SegEarth-OV's own inference, and its pieces.

The port below is written from reading likyoo/SegEarth-OV: ``segearth_segmentor.py``
(``SegEarthSegmentation.forward_slide``, ``forward_feature``, ``compute_padsize``,
``postprocess_result``, the ``SegDataPreProcessor`` statistics), ``open_clip/transformer.py``
(``VisionTransformer.forward`` with ``model_type='SegEarth'``, ``custom_attn``,
``interpolate_pos_encoding``), ``configs/cfg_*.py`` (``Resize(scale=(448, 448), keep_ratio=True)``,
mmcv's ``imrescale``: ``rescale_size`` / ``_scale_size``, then ``cv2.resize`` bilinear). It runs
one window at a time, as the original does; ours runs every window in one batch.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rs_helpers.errors import BadInputError
from rs_helpers.ovss.clip_dense import (
    SEGEARTH_OV,
    DenseSettings,
    centre_pad,
    dense_map,
    pixel_labels,
    resize_long_side,
    resize_uint8_opencv,
    similarity_map,
)
from rs_helpers.ovss.simfeatup import load_simfeatup
from rs_helpers.ovss.vocabulary import TextCache, encode_vocabulary, parse_classes

try:
    import cv2
except ImportError:  # opencv is not a dependency: the oracle is used where it is installed
    cv2 = None

CLASSES = "building,roof;road;tree,forest;background"
SEGEARTH = replace(SEGEARTH_OV, templates="single")


# ----------------------------------------------------------------------- the port
def port_resize(image):
    """mmcv imrescale(img, (448, 448)) as configs/cfg_*.py's Resize(keep_ratio=True) calls it."""
    h, w = image.shape[:2]
    scale = min(448 / max(h, w), 448 / min(h, w))
    size_wh = int(w * scale + 0.5), int(h * scale + 0.5)
    if cv2 is not None:
        return cv2.resize(image, size_wh, interpolation=cv2.INTER_LINEAR)
    return resize_uint8_opencv(image, size_wh[::-1])  # tested against a hand-computed example below


def port_preprocess(image):
    """SegDataPreProcessor(mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323])."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()[None]
    mean = torch.tensor([122.771, 116.746, 104.094]).view(1, 3, 1, 1)
    std = torch.tensor([68.501, 66.632, 70.323]).view(1, 3, 1, 1)
    return (x - mean) / std


def port_interpolate_pos_encoding(visual, x, w, h):
    pos = visual.positional_embedding
    npatch, n = x.shape[1] - 1, pos.shape[0] - 1
    if npatch == n and w == h:
        return pos
    dim = x.shape[-1]
    w0, h0 = w // visual.patch_size[0] + 0.1, h // visual.patch_size[1] + 0.1
    patch_pos = F.interpolate(pos[1:].reshape(1, int(math.sqrt(n)), int(math.sqrt(n)), dim).permute(0, 3, 1, 2),
                              scale_factor=(w0 / math.sqrt(n), h0 / math.sqrt(n)), mode="bicubic")
    assert int(w0) == patch_pos.shape[-2] and int(h0) == patch_pos.shape[-1]
    return torch.cat((pos[[0]].unsqueeze(0), patch_pos.permute(0, 2, 3, 1).view(1, -1, dim)), dim=1)


def port_custom_attn(attn_layer, x):
    """custom_attn(model_type='SegEarth'): x is L x N x D."""
    num_heads = attn_layer.num_heads
    _, bsz, embed_dim = x.size()
    head_dim = embed_dim // num_heads
    scale = head_dim ** -0.5
    q, k, v = F.linear(x, attn_layer.in_proj_weight, attn_layer.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1) for t in (q, k, v))
    attn = sum(F.softmax(torch.bmm(a, a.transpose(1, 2)) * scale, dim=-1) for a in (q, k, v))
    out = torch.bmm(attn, v).transpose(0, 1).contiguous().view(-1, bsz, embed_dim)
    return attn_layer.out_proj(out)


def port_encode_image(visual, x):
    """VisionTransformer.forward(x, 'SegEarth', ignore_residual=True, output_cls_token=True)."""
    _, _, w, h = x.shape
    x = visual.conv1(x)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    x = torch.cat([visual.class_embedding.view(1, 1, -1).expand(x.shape[0], 1, -1).to(x.dtype), x], dim=1)
    if x.shape[1] != visual.positional_embedding.shape[0]:
        x = x + port_interpolate_pos_encoding(visual, x, w, h).to(x.dtype)
    else:
        x = x + visual.positional_embedding.to(x.dtype)
    x = visual.ln_pre(visual.patch_dropout(x))
    blocks = visual.transformer.resblocks
    batch_first = getattr(visual.transformer, "batch_first", False)
    x = x if batch_first else x.permute(1, 0, 2)
    for blk in blocks[:-1]:
        x = blk(x)
    lnd = x.permute(1, 0, 2) if batch_first else x
    output = port_custom_attn(blocks[-1].attn, blocks[-1].ln_1(lnd))
    x = visual.ln_post(output.permute(1, 0, 2))
    pooled, tokens = x[:, 0], x[:, 1:]
    return pooled @ visual.proj, tokens @ visual.proj


def port_forward_feature(visual, img, query_features, cls_token_lambda, upsampler, patch):
    if cls_token_lambda != 0:
        image_cls_token, image_features = port_encode_image(visual, img)
        image_cls_token = image_cls_token / image_cls_token.norm(dim=-1, keepdim=True)
        cls_logits = image_cls_token @ query_features.T
    else:
        image_features = port_encode_image(visual, img)[1]
    if upsampler is not None:
        feature_w, feature_h = img[0].shape[-2] // patch, img[0].shape[-1] // patch
        image_w, image_h = img[0].shape[-2], img[0].shape[-1]
        feat_dim = query_features.shape[-1]
        image_features = image_features.permute(0, 2, 1).reshape(1, feat_dim, feature_w, feature_h)
        image_features = upsampler(image_features, img)
        image_features = image_features.reshape(1, feat_dim, image_w * image_h).permute(0, 2, 1)
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    logits = image_features @ query_features.T
    if cls_token_lambda != 0:
        logits = logits + cls_logits * cls_token_lambda
    if upsampler is not None:
        w, h = img[0].shape[-2], img[0].shape[-1]
    else:
        w, h = img[0].shape[-2] // patch, img[0].shape[-1] // patch
    logits = logits.permute(0, 2, 1).reshape(-1, logits.shape[-1], w, h)
    return F.interpolate(logits, size=img.shape[-2:], mode="bilinear")


def port_compute_padsize(H, W, patch_size):
    l, r, t, b = 0, 0, 0, 0
    if W % patch_size:
        lr = patch_size - (W % patch_size)
        l, r = lr // 2, lr - lr // 2
    if H % patch_size:
        tb = patch_size - (H % patch_size)
        t, b = tb // 2, tb - tb // 2
    return l, r, t, b


def port_forward_slide(visual, img, ori_shape, query_features, cls_token_lambda, upsampler, patch,
                       stride=112, crop=224):
    h_img, w_img = img.shape[-2:]
    h_grids = max(h_img - crop + stride - 1, 0) // stride + 1
    w_grids = max(w_img - crop + stride - 1, 0) // stride + 1
    preds = img.new_zeros((1, query_features.shape[0], h_img, w_img))
    count_mat = img.new_zeros((1, 1, h_img, w_img))
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1, x1 = h_idx * stride, w_idx * stride
            y2, x2 = min(y1 + crop, h_img), min(x1 + crop, w_img)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            crop_img = img[:, :, y1:y2, x1:x2]
            H, W = crop_img.shape[2:]
            pad = port_compute_padsize(H, W, patch)
            if any(pad):
                crop_img = F.pad(crop_img, pad)
            crop_logit = port_forward_feature(visual, crop_img, query_features, cls_token_lambda, upsampler, patch)
            if any(pad):
                crop_logit = crop_logit[:, :, pad[2]:pad[2] + H, pad[0]:pad[0] + W]
            preds += F.pad(crop_logit, (x1, preds.shape[3] - x2, y1, preds.shape[2] - y2))
            count_mat[:, :, y1:y2, x1:x2] += 1
    assert (count_mat == 0).sum() == 0
    preds = preds / count_mat
    return preds, F.interpolate(preds, size=ori_shape, mode="bilinear")


def port_postprocess(seg_logits, query_idx, logit_scale=50, prob_thd=0.0, bg_idx=0):
    seg_logits = (seg_logits[0] * logit_scale).softmax(0)
    num_cls, num_queries = int(max(query_idx)) + 1, len(query_idx)
    if num_cls != num_queries:
        cls_index = F.one_hot(query_idx).T.view(num_cls, num_queries, 1, 1)
        seg_logits = (seg_logits.unsqueeze(0) * cls_index).max(1)[0]
    seg_pred = seg_logits.argmax(0, keepdim=True)
    seg_pred[seg_logits.max(0, keepdim=True)[0] < prob_thd] = bg_idx
    return seg_logits, seg_pred[0]


@torch.no_grad()
def segearth_port(clip, image, text, cls_token_lambda=-0.3, upsampler=None, prob_thd=0.0, bg_idx=0):
    img = port_preprocess(port_resize(image))
    preds, logits = port_forward_slide(clip.model.visual, img, image.shape[:2], text.embeddings.float(),
                                       cls_token_lambda, upsampler, clip.patch_size)
    probs, labels = port_postprocess(logits, text.row_class, prob_thd=prob_thd, bg_idx=bg_idx)
    return preds[0], probs, labels


# ----------------------------------------------------------------------- ours against the port
@pytest.fixture(scope="module")
def text(tiny_clip):
    return encode_vocabulary(tiny_clip, parse_classes(CLASSES), templates="single", cache=TextCache())


@pytest.fixture(scope="module")
def upsampler(tiny_clip):
    return load_simfeatup(tiny_clip.model.visual.output_dim, profile="tiny", device="cpu")


def _image(shape, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (shape[0] // 8 + 1, shape[1] // 8 + 1, 3), dtype=np.uint8)
    noise = rng.integers(0, 40, shape + (3,))
    return np.clip(np.kron(base, np.ones((8, 8, 1), np.uint8))[:shape[0], :shape[1]] + noise, 0, 255).astype(np.uint8)


def _compare(tiny_clip, text, image, up, lam=0.3, prob_thd=0.3, bg_idx=3):
    rows = similarity_map(tiny_clip, image, text, replace(SEGEARTH, cls_lambda=lam), up)
    dm = dense_map(tiny_clip, image, CLASSES, SEGEARTH, text=text, prob_thd=prob_thd, bg_idx=bg_idx,
                   cls_lambda=lam, upsampler=up)
    preds, probs, labels = segearth_port(tiny_clip, image, text, -lam, up, prob_thd, bg_idx)
    assert rows.shape == preds.shape and dm.probs.shape == tuple(probs.shape)
    assert torch.allclose(rows, preds, atol=1e-5, rtol=0)
    assert np.allclose(dm.probs, probs.numpy(), atol=1e-5, rtol=0)
    top2 = np.sort(dm.probs, axis=0)[-2:]
    clear = (top2[1] - top2[0] > 1e-4) & (np.abs(top2[1] - prob_thd) > 1e-4)  # no near-ties
    assert clear.mean() > 0.9 and np.array_equal(dm.labels[clear], labels.numpy()[clear])
    return dm


@pytest.mark.parametrize("with_upsampler", [False, True], ids=["plain", "simfeatup"])
def test_448_image_equals_the_segearth_port(tiny_clip, text, upsampler, with_upsampler):
    image = _image((448, 448))
    dm = _compare(tiny_clip, text, image, upsampler if with_upsampler else None)
    assert dm.background_index == 3 and dm.probs.shape == (4, 448, 448)


@pytest.mark.parametrize("with_upsampler", [False, True], ids=["plain", "simfeatup"])
def test_resized_short_image_equals_the_segearth_port(tiny_clip, text, upsampler, with_upsampler):
    """300 x 100 -> 448 x 149 by the OpenCV rule: the short side is read at 149 rows, padded
    centrally to 160, with interpolated position embeddings; logits back to 100 x 300."""
    image = _image((100, 300), seed=1)
    assert resize_long_side(100, 300, 448, "mmcv") == (149, 448) and centre_pad(149, 224, 16) == (0, 0, 5, 6)
    _compare(tiny_clip, text, image, upsampler if with_upsampler else None)


def test_no_cls_removal_equals_the_port(tiny_clip, text):
    """configs/cfg_xBD.py: cls_token_lambda=0 (no CLS token read at all)."""
    _compare(tiny_clip, text, _image((230, 250), seed=2), None, lam=0.0, prob_thd=0.0, bg_idx=0)


def test_upsampler_changes_the_map_and_defaults_stay(tiny_clip, text, upsampler):
    image = _image((120, 200), seed=3)
    plain = dense_map(tiny_clip, image, CLASSES, SEGEARTH, text=text).probs
    up = dense_map(tiny_clip, image, CLASSES, SEGEARTH, text=text, upsampler=upsampler).probs
    native = dense_map(tiny_clip, image, CLASSES, DenseSettings(templates="single"), text=text).probs
    assert not np.allclose(plain, up) and not np.allclose(plain, native)
    assert DenseSettings().resize == "antialias" and DenseSettings().short_crop == "zero-pad"
    with pytest.raises(BadInputError, match="resize"):
        dense_map(tiny_clip, image, CLASSES, DenseSettings(resize="cubic"), text=text)


# ----------------------------------------------------------------------- the OpenCV-style resize
def test_opencv_resize_hand_computed():
    """Weights in 1/2048, then OpenCV's vertical rounding ((v >> 4) * b >> 16, + 2 >> 2).
    1 x 2 -> 1 x 4: source x = (x + 0.5) / 2 - 0.5 = -0.25 (clamped: the first pixel), 0.25, 0.75,
    1.25 (clamped: the last pixel): 0, 100 * 512 / 2048 = 25, 100 * 1536 / 2048 = 75, 100."""
    row = np.array([[0, 100]], np.uint8)
    assert resize_uint8_opencv(row, (1, 4)).tolist() == [[0, 25, 75, 100]]
    # 3 x 1 -> 2 x 1 reads rows at 0.25 and 1.75, weights (1536, 512) and (512, 1536); a row is
    # v * 2048 after the horizontal pass: ((20480 >> 4) * 1536 >> 16) + ((40960 >> 4) * 512 >> 16) = 30 + 20,
    # (50 + 2) >> 2 = 13 (12.5 exactly); (20 + 90 + 2) >> 2 = 28 (27.5 exactly)
    col = np.array([[10], [20], [30]], np.uint8)
    assert resize_uint8_opencv(col, (2, 1)).tolist() == [[13], [28]]
    rgb = np.stack([row * 0, row, row // 2], -1)
    assert resize_uint8_opencv(rgb, (1, 4))[0, :, 1].tolist() == [0, 25, 75, 100]


@pytest.mark.skipif(cv2 is None, reason="opencv-python-headless is not installed (the oracle)")
@pytest.mark.parametrize("src,dst", [((512, 512), (448, 448)), ((1000, 600), (448, 269)), ((300, 500), (269, 448)),
                                     ((100, 150), (299, 448)), ((7, 9), (20, 30)), ((896, 448), (448, 224)),
                                     ((61, 1000), (27, 448)), ((3, 3), (448, 448))])
def test_opencv_resize_equals_cv2(src, dst):
    image = np.random.default_rng(sum(src)).integers(0, 256, src + (3,), dtype=np.uint8)
    want = cv2.resize(image, dst[::-1], interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(resize_uint8_opencv(image, dst), want)
    assert np.array_equal(resize_uint8_opencv(image[:, :, 0], dst), cv2.resize(image[:, :, 0], dst[::-1]))


def test_mmcv_size_rule():
    assert resize_long_side(1000, 600, 448, "mmcv") == (448, 269)  # 268.8 -> 269
    assert resize_long_side(3, 8, 448, "mmcv") == (168, 448)
    assert resize_long_side(5, 448 * 2, 448, "mmcv") == (3, 448)  # 2.5 -> 3 (round() gives 2)
    assert resize_long_side(5, 448 * 2, 448) == (2, 448)


# ----------------------------------------------------------------------- prob_thd / bg_idx / lambda
def test_threshold_rule_on_a_hand_built_array():
    probs = np.array([[[0.50, 0.20], [0.34, 0.9]],
                      [[0.30, 0.45], [0.33, 0.05]],
                      [[0.20, 0.35], [0.33, 0.05]]], np.float32)  # 3 classes, 2 x 2 pixels
    assert pixel_labels(probs).tolist() == [[0, 1], [0, 0]]
    assert pixel_labels(probs, background_index=2, threshold=0.4).tolist() == [[0, 1], [2, 0]]
    assert pixel_labels(probs, background_index=1, threshold=0.5).tolist() == [[0, 1], [1, 0]]  # 0.5 is not below
    _, port = port_postprocess(torch.log(torch.from_numpy(probs))[None] / 50, torch.arange(3), prob_thd=0.4, bg_idx=2)
    assert port.tolist() == [[0, 1], [2, 0]]


def test_per_call_threshold_background_and_lambda(tiny_clip, text):
    image = _image((96, 128), seed=4)
    fast = DenseSettings(templates="single")
    everything = dense_map(tiny_clip, image, CLASSES, fast, text=text, prob_thd=1.01, bg_idx=1)
    assert (everything.labels == 1).all() and everything.background_index == 1
    by_name = dense_map(tiny_clip, image, CLASSES, fast, text=text, prob_thd=1.01)
    assert (by_name.labels == 3).all()  # "background" is the fourth class
    lam = dense_map(tiny_clip, image, CLASSES, fast, text=text, cls_lambda=0.0).probs
    same = dense_map(tiny_clip, image, CLASSES, DenseSettings(templates="single", cls_lambda=0.0), text=text).probs
    assert np.array_equal(lam, same)
    with pytest.raises(BadInputError, match="background index"):
        dense_map(tiny_clip, image, CLASSES, fast, text=text, bg_idx=4)
