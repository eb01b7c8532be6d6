"""The fast proposal path against segment-anything's own code, on the tiny random SAM.

The tiny SAM's masks are meaningless; what is tested is that the fast path computes the same
function as the reference (decoder outputs, upsampled statistics, final masks).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rs_helpers.errors import BadInputError
from rs_helpers.sam.fast_decoder import FastDecoder, supports_fast_decoder
from rs_helpers.sam.fast_encoder import sdpa_attention
from rs_helpers.sam.fast_proposals import generate_fast, make_generator, mask_match
from rs_helpers.sam.fast_upsample import Resampler
from rs_helpers.models.sam import build_tiny_sam
from rs_helpers.sam.proposals import ProposalCache, ProposalSettings, generate_reference

# Relaxed thresholds and no NMS: hundreds of (random, image-sized) masks to compare.
MANY = dict(pred_iou_thresh=0.0, stability_score_thresh=0.5, box_nms_thresh=1.0, crop_nms_thresh=1.0)


@pytest.fixture(scope="module")
def sam():
    return build_tiny_sam().eval()


@pytest.fixture(scope="module")
def image():
    """A shipped sample, small: 64 x 80."""
    from PIL import Image

    from rs_helpers.samples import list_samples

    rgb = list_samples()[0].load_image().rgb
    return np.asarray(Image.fromarray(rgb).resize((80, 64), Image.BILINEAR))


def _points(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 2, generator=g, dtype=torch.float64) * size


def test_fast_decoder_equals_mask_decoder(sam):
    emb = torch.randn(1, 32, 16, 16, generator=torch.Generator().manual_seed(1))
    pe = sam.prompt_encoder.get_dense_pe()
    with torch.no_grad():
        sparse, dense = sam.prompt_encoder(points=(_points(5, 256), torch.ones(5, 1, dtype=torch.int)),
                                           boxes=None, masks=None)
        ref_masks, ref_iou = sam.mask_decoder(emb, pe, sparse, dense, multimask_output=True)
        decoder = FastDecoder(sam)
        masks, iou = decoder(sparse, *decoder.prepare(emb))
    assert masks.shape == ref_masks.shape and iou.shape == ref_iou.shape
    torch.testing.assert_close(masks, ref_masks, rtol=1e-4, atol=1e-4 * ref_masks.abs().max().item())
    torch.testing.assert_close(iou, ref_iou, rtol=1e-5, atol=1e-6)


def test_fast_decoder_other_shapes():
    """A deeper decoder with more heads and a non-square embedding grid."""
    from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer

    torch.manual_seed(3)
    prompt = PromptEncoder(embed_dim=64, image_embedding_size=(8, 12), input_image_size=(32, 48), mask_in_chans=8)
    dec = MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(depth=3, embedding_dim=64, mlp_dim=32,
                                                                             num_heads=4),
                      transformer_dim=64, iou_head_depth=2, iou_head_hidden_dim=16).eval()
    sam = SimpleNamespace(mask_decoder=dec, prompt_encoder=prompt)
    assert supports_fast_decoder(sam)
    emb = torch.randn(1, 64, 8, 12)
    with torch.no_grad():
        sparse, dense = prompt(points=(_points(3, 32), torch.ones(3, 1, dtype=torch.int)), boxes=None, masks=None)
        ref_masks, ref_iou = dec(emb, prompt.get_dense_pe(), sparse, dense, multimask_output=True)
        fast = FastDecoder(sam)
        masks, iou = fast(sparse, *fast.prepare(emb))
    torch.testing.assert_close(masks, ref_masks, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(iou, ref_iou, rtol=1e-4, atol=1e-5)


def test_sdpa_encoder_equals_encoder_and_restores(sam):
    encoder = sam.image_encoder
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if "rel_pos" in name:  # zero-initialised: make the bias matter
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(5))
        x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(2))
        ref = encoder(x)
        with sdpa_attention(encoder):
            fast = encoder(x)
        again = encoder(x)
        for name, p in encoder.named_parameters():
            if "rel_pos" in name:
                p.zero_()
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)
    assert torch.equal(again, ref)
    assert all("forward" not in vars(m) for m in encoder.modules())


@pytest.mark.parametrize("out_hw, img", [((96, 128), 256), ((64, 40), 256), ((300, 200), 256), ((90, 300), 1024)])
def test_resampler_equals_postprocess_masks(out_hw, img):
    """Stability, boxes and masks from low-resolution logits equal SAM's upsampled ones."""
    from segment_anything.modeling import Sam
    from segment_anything.utils.amg import batched_mask_to_box, calculate_stability_score
    from segment_anything.utils.transforms import ResizeLongestSide

    low = img // 4
    g = torch.Generator().manual_seed(sum(out_hw))
    smooth = F.interpolate(torch.randn(12, 1, low // 8, low // 8, generator=g) * 4, (low, low), mode="bilinear")[:, 0]
    logits = smooth + 0.2 * torch.randn(12, low, low, generator=g)
    logits[0] = -5.0  # empty
    logits[1] = -0.5  # above -1 everywhere, never above 0
    logits[2] = 3.0  # full
    logits[3] = 5 * torch.randn(low, low, generator=g)  # noise
    input_hw = ResizeLongestSide.get_preprocess_shape(*out_hw, img)
    ns = SimpleNamespace(image_encoder=SimpleNamespace(img_size=img))
    full = Sam.postprocess_masks(ns, logits[:, None], input_hw, out_hw)[:, 0]
    resampler = Resampler((low, low), img, input_hw, out_hw, "cpu", budget=2**17)  # several chunks
    stability, boxes = resampler.stability_and_boxes(logits, 0.0, 1.0)
    ref_stability = calculate_stability_score(full, 0.0, 1.0)
    assert torch.equal(torch.isnan(stability), torch.isnan(ref_stability))
    torch.testing.assert_close(stability.nan_to_num(), ref_stability.nan_to_num(), rtol=0, atol=1e-3)
    assert torch.equal(boxes, batched_mask_to_box(full > 0).long())
    masks = torch.zeros(12, *out_hw, dtype=torch.bool)
    for index, block in resampler.masks(logits, 0.0):
        masks[index] = block
    assert (masks != (full > 0)).sum() <= 2  # equal up to rounding of logits at exactly 0


@pytest.mark.parametrize("n, extra", [(9, MANY), (5, dict(MANY, crop_n_layers=1)),
                                      (6, dict(MANY, box_nms_thresh=0.9, min_mask_region_area=30)), (8, {})])
def test_generate_fast_matches_reference(sam, image, n, extra):
    settings = ProposalSettings(points_per_side=n, **extra)
    ref = generate_reference(sam, image, settings)
    fast = generate_fast(sam, image, settings)
    assert len(ref) > 0
    if extra.get("box_nms_thresh") == 1.0 and not extra.get("crop_n_layers"):
        assert len(ref) >= 200  # a real comparison, not one or two masks
    a, b = mask_match(ref.masks, fast.masks, 0.95)
    assert a >= 0.95 and b >= 0.95
    assert abs(len(ref) - len(fast)) <= max(1, len(ref) // 50)
    if len(ref) == len(fast):
        np.testing.assert_allclose(np.sort(fast.predicted_iou), np.sort(ref.predicted_iou), atol=1e-5)
        np.testing.assert_allclose(np.sort(fast.stability_score), np.sort(ref.stability_score), atol=1e-3)
    assert fast.masks.dtype == bool and fast.masks.shape[1:] == image.shape[:2]
    assert fast.boxes.shape == (len(fast), 4) and fast.points.shape == (len(fast), 2)


def test_generate_fast_margin_and_batch_size_do_not_change_masks(sam, image):
    settings = ProposalSettings(points_per_side=8, **MANY)
    exact = generate_fast(sam, image, settings, margin=1.0, batch_size=7)
    quick = generate_fast(sam, image, settings)
    assert mask_match(exact.masks, quick.masks) == (1.0, 1.0)


def test_boxes_match_masks(sam, image):
    from rs_helpers.sam.proposals import mask_boxes

    fast = generate_fast(sam, image, ProposalSettings(points_per_side=6, **MANY))
    assert np.array_equal(fast.boxes, mask_boxes(fast.masks))


def test_nothing_passes_gives_empty(sam, image):
    fast = generate_fast(sam, image, ProposalSettings(points_per_side=4, pred_iou_thresh=0.999))
    assert len(fast) == 0 and fast.masks.shape == (0, *image.shape[:2])


def test_bad_image(sam):
    with pytest.raises(BadInputError):
        generate_fast(sam, np.zeros((10, 10), np.uint8))


def test_works_with_proposal_cache(sam, image):
    cache = ProposalCache()
    settings = ProposalSettings(points_per_side=4)
    first = cache.get(sam, image, settings, generator=generate_fast)
    second = cache.get(sam, image, settings, generator=generate_fast)
    assert first is second and cache.hits == 1
    other = cache.get(sam, image, settings, generator=make_generator(margin=1.0))
    assert other is not first and mask_match(first.masks, other.masks) == (1.0, 1.0)


def test_compile_falls_back_silently(sam, image, monkeypatch):
    import rs_helpers.sam.fast_proposals as fp

    def broken_compile(fn, **kwargs):
        def call(*args):
            raise RuntimeError("no compiler here")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(fp, "_COMPILED", fp.weakref.WeakKeyDictionary())
    settings = ProposalSettings(points_per_side=5)
    compiled = generate_fast(sam, image, settings, compile=True)
    plain = generate_fast(sam, image, settings)
    assert mask_match(compiled.masks, plain.masks) == (1.0, 1.0)


def test_mask_match_known_answers():
    a = np.zeros((3, 10, 10), bool)
    a[0, :5] = True  # 50 px
    a[1, :, :2] = True  # 20 px
    a[2, 9, 9] = True
    b = np.zeros((2, 10, 10), bool)
    b[0, :5] = True  # identical to a[0]
    b[1, :, :2] = True
    b[1, 0, 2] = True  # IoU 20/21 = 0.952 with a[1]
    assert mask_match(a, b, 0.95) == (2 / 3, 1.0)
    assert mask_match(a, b, 0.96) == (1 / 3, 0.5)
    assert mask_match(a[:0], b) == (1.0, 0.0)
    assert mask_match(a[:0], b[:0]) == (1.0, 1.0)


def test_iou_threshold_skips_only_filtered_points(sam):
    emb = torch.randn(1, 32, 16, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        sparse, _ = sam.prompt_encoder(points=(_points(6, 256, seed=3), torch.ones(6, 1, dtype=torch.int)),
                                       boxes=None, masks=None)
        decoder = FastDecoder(sam)
        shared = decoder.prepare(emb)
        masks, iou = decoder(sparse, *shared)
        thresh = float(iou.max(1).values.median())
        kept_masks, kept_iou = decoder(sparse, *shared, iou_thresh=thresh)
    need = (iou > thresh).any(1)
    assert 0 < need.sum() < len(need)
    torch.testing.assert_close(kept_iou, iou)
    torch.testing.assert_close(kept_masks[need], masks[need])
    assert (kept_masks[~need] == 0).all()
