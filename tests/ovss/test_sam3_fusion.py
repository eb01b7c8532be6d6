"""SAM 3's fusion (SegEarth-OV3): equal to a port of the official code on random head outputs and on
the tiny model end to end, known answers on hand-built heads, one image encoding per window, the
text cached, sliding windows that cover and stitch, the OvssResult contract, and the protocol table."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")
if not hasattr(transformers, "Sam3Model"):  # pragma: no cover - the floor (5.4) has it
    pytest.skip(f"transformers {transformers.__version__} has no Sam3Model (SAM 3 needs transformers >= 5.4)",
                allow_module_level=True)

from rs_helpers.errors import BadInputError
from rs_helpers.ovss.sam3_fusion import (
    HEADS,
    Sam3Settings,
    class_scores,
    encode_prompts,
    labels_from_scores,
    merge_synonyms,
    parse_heads,
    prompt_rows,
    preprocess,
    prompt_scores,
    resolve_prompt_batch,
    segment_sam3,
    slide_windows,
    view_prompt_scores,
    view_scores,
    windows_for,
)
from rs_helpers.ovss.vocabulary import TextCache, parse_classes

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sam3():
    from rs_helpers.models.sam3 import load_sam3

    return load_sam3(profile="tiny", device="cpu")


# --------------------------------------------------------------------------- the official code, ported
# Written for these tests from earth-insights/SegEarth-OV-3: segearthov3_segmentor.py
# (SegEarthOV3Segmentation._inference_single_view, slide_inference, predict) and the
# Sam3Processor._forward_grounding it calls (sam3/model/sam3_image_processor.py). One prompt at a
# time, one kept instance at a time, in the order the official code runs.
def official_grounding(pred_logits, presence_logit, pred_masks, semantic_seg, h, w, confidence):
    """One prompt's state: masks (sigmoid, at h x w), their object scores, semantic map, presence."""
    presence = presence_logit.sigmoid().reshape(1, 1)
    probs = (pred_logits.reshape(1, -1).sigmoid() * presence).reshape(-1)
    keep = probs > confidence
    masks = F.interpolate(pred_masks[keep].unsqueeze(1), (h, w), mode="bilinear", align_corners=False).sigmoid()
    semantic = F.interpolate(semantic_seg.reshape(1, 1, *semantic_seg.shape[-2:]), (h, w), mode="bilinear",
                             align_corners=False).sigmoid()
    return masks, probs[keep], semantic, presence.squeeze().squeeze()


def official_single_view(heads_per_prompt, h, w, confidence, use_inst=True, use_sem=True, use_presence=True):
    seg_logits = torch.zeros((len(heads_per_prompt), h, w))
    for query_idx, heads in enumerate(heads_per_prompt):
        masks, scores, semantic, presence = official_grounding(*heads, h, w, confidence)
        if use_inst and masks.shape[0] > 0:
            for inst_id in range(masks.shape[0]):
                instance = masks[inst_id].squeeze()
                seg_logits[query_idx] = torch.max(seg_logits[query_idx], instance * scores[inst_id])
        if use_sem:
            seg_logits[query_idx] = torch.max(seg_logits[query_idx], semantic.squeeze())
        if use_presence:
            seg_logits[query_idx] = seg_logits[query_idx] * presence
    return seg_logits


def official_slide(view_fn, h_img, w_img, stride, crop, n_rows):
    preds, count = torch.zeros((n_rows, h_img, w_img)), torch.zeros((1, h_img, w_img))
    h_grids = max(h_img - crop + stride - 1, 0) // stride + 1
    w_grids = max(w_img - crop + stride - 1, 0) // stride + 1
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1, x1 = h_idx * stride, w_idx * stride
            y2, x2 = min(y1 + crop, h_img), min(x1 + crop, w_img)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            preds[:, y1:y2, x1:x2] += view_fn(x1, y1, x2, y2)
            count[:, y1:y2, x1:x2] += 1
    assert (count == 0).sum() == 0
    return preds / count


def official_predict(seg_logits, query_idx, prob_thd, bg_idx):
    query_idx = torch.tensor(query_idx)
    num_cls = int(query_idx.max()) + 1
    if num_cls != len(query_idx):
        cls_index = F.one_hot(query_idx).T.view(num_cls, len(query_idx), 1, 1)
        seg_logits = (seg_logits.unsqueeze(0) * cls_index).max(1)[0]
    seg_pred = torch.argmax(seg_logits, dim=0)
    seg_pred[seg_logits.max(0)[0] < prob_thd] = bg_idx
    return seg_logits, seg_pred.numpy().astype(np.uint8)


def official_segment(sam3, rgb, classes, confidence, prob_thd, bg_idx, slide_crop=0, slide_stride=0):
    """The whole official predict() on the tiny model: every prompt re-encodes the view."""
    from PIL import Image
    from torchvision.transforms import v2

    size = sam3.input_size
    transform = v2.Compose([v2.ToDtype(torch.uint8, scale=True), v2.Resize(size=(size, size)),
                            v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=[0.5] * 3, std=[0.5] * 3)])
    prompts, query_idx = prompt_rows(parse_classes(classes))
    image = Image.fromarray(rgb)

    def view(x1, y1, x2, y2):
        crop = image.crop((x1, y1, x2, y2))
        pixels = transform(v2.functional.to_image(crop)).unsqueeze(0)
        heads = []
        for prompt in prompts:
            tokens = sam3.tokenizer([prompt], padding="max_length", max_length=32, truncation=True, return_tensors="pt")
            with torch.no_grad():
                out = sam3.model(pixel_values=pixels, input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            heads.append((out.pred_logits[0], out.presence_logits[0], out.pred_masks[0], out.semantic_seg[0]))
        return official_single_view(heads, y2 - y1, x2 - x1, confidence)

    w, h = image.size
    if slide_crop > 0 and (slide_crop < w or slide_crop < h):
        seg = official_slide(view, h, w, slide_stride, slide_crop, len(prompts))
    else:
        seg = view(0, 0, w, h)
    return official_predict(seg, query_idx, prob_thd, bg_idx)


def _random_heads(n_prompts, n_queries=6, mask_hw=(8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n_prompts, n_queries, generator=g) * 2, torch.randn(n_prompts, 1, generator=g) * 2,
            torch.randn(n_prompts, n_queries, *mask_hw, generator=g) * 4,
            torch.randn(n_prompts, 1, *mask_hw, generator=g) * 3)


# --------------------------------------------------------------------------- equal to the official code
@pytest.mark.parametrize("heads", [h for n in range(4) for h in itertools.combinations(HEADS, n)])
@pytest.mark.parametrize("confidence", [0.05, 0.3, 0.6])
def test_the_fusion_equals_the_official_code_on_random_heads(heads, confidence):
    logits, presence, masks, semantic = _random_heads(5, seed=len(heads) * 7 + int(confidence * 100))
    size = (13, 19)  # not the mask size, not square: the masks are resized
    ours = view_scores(logits, presence, masks, semantic, size, Sam3Settings(confidence_threshold=confidence, heads=heads))
    per_prompt = [(logits[p], presence[p], masks[p], semantic[p]) for p in range(5)]
    theirs = official_single_view(per_prompt, *size, confidence, "instance" in heads, "semantic" in heads,
                                  "presence" in heads)
    assert torch.allclose(ours, theirs, atol=1e-6, rtol=0)
    query_idx = [0, 1, 1, 2, 0]  # synonyms: rows 1 and 2 are one class, rows 0 and 4 another
    for prob_thd, bg_idx in [(0.0, 0), (0.2, 2), (0.5, 1)]:
        merged = merge_synonyms(ours, query_idx, 3)
        official_scores, official_labels = official_predict(theirs, query_idx, prob_thd, bg_idx)
        assert torch.allclose(merged, official_scores, atol=1e-6, rtol=0)
        assert np.array_equal(labels_from_scores(merged, prob_thd, bg_idx), official_labels)


@pytest.mark.parametrize("shape,slide", [((150, 200), (128, 96)), ((96, 120), (0, 0)), ((300, 280), (160, 96))])
def test_segment_equals_the_official_loop_to_the_bit_in_float32(sam3, shape, slide):
    """The default on a CPU (one prompt per grounding pass, each prompt's text encoded alone, Meta's
    order of operations in the preprocessing): every class score and every label as the official code."""
    rgb = np.random.default_rng(shape[0]).integers(0, 256, (*shape, 3), dtype=np.uint8)
    classes = "background;building,house;road;water;tree,forest;car"
    settings = Sam3Settings(confidence_threshold=0.3, prob_thd=0.1, bg_idx=0, slide_crop=slide[0],
                            slide_stride=slide[1] or None)
    assert resolve_prompt_batch(settings, sam3.device) == 1
    ours = class_scores(rgb, classes, sam3=sam3, settings=settings, text_cache=None)
    official_scores, official_labels = official_segment(sam3, rgb, classes, 0.3, 0.1, 0, *slide)
    assert ours.dtype == official_scores.dtype == torch.float32
    assert torch.equal(ours, official_scores)
    labels = segment_sam3(rgb, classes, sam3=sam3, settings=settings, text_cache=None).labels
    assert np.array_equal(labels, official_labels)


def test_batched_grounding_equals_the_official_loop_within_float32_rounding(sam3):
    rgb = np.random.default_rng(3).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    classes = "background;building,house;road;water"
    settings = Sam3Settings(confidence_threshold=0.3, prob_thd=0.1, bg_idx=0, slide_crop=128, slide_stride=96,
                            prompt_batch=3)
    ours = class_scores(rgb, classes, sam3=sam3, settings=settings, text_cache=None)
    official_scores, official_labels = official_segment(sam3, rgb, classes, 0.3, 0.1, 0, 128, 96)
    assert torch.allclose(ours, official_scores, atol=1e-5, rtol=0)
    labels = segment_sam3(rgb, classes, sam3=sam3, settings=settings, text_cache=None).labels
    top2 = torch.topk(official_scores, 2, dim=0).values
    clear = ((top2[0] - top2[1]) > 1e-4).numpy()  # batched and one-by-one decoding differ by ~1e-6
    assert clear.mean() > 0.95 and np.array_equal(labels[clear], official_labels[clear])


def test_the_preprocessing_equals_meta_s_transform_to_the_bit():
    """sam3/model/sam3_image_processor.py: v2.ToDtype(uint8) -> v2.Resize -> v2.ToDtype(float32, scale) ->
    v2.Normalize(0.5, 0.5); transformers' processor fuses the rescale and normalisation and differs by an ulp."""
    from torchvision.transforms import v2

    transform = v2.Compose([v2.ToDtype(torch.uint8, scale=True), v2.Resize(size=(256, 256)),
                            v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=[0.5] * 3, std=[0.5] * 3)])
    for seed, shape in enumerate([(200, 180), (256, 256), (97, 301), (1000, 40)]):
        rgb = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
        theirs = transform(v2.functional.to_image(rgb)).unsqueeze(0)
        assert torch.equal(preprocess(rgb, 256, "cpu"), theirs), shape


@pytest.mark.parametrize("device,asked,expected", [("cpu", None, 1), ("cuda", None, 8), ("mps", None, 8),
                                                   ("cpu", 4, 4), ("cuda", 1, 1)])
def test_prompt_batch_defaults_to_one_on_a_cpu_and_eight_on_a_gpu(device, asked, expected):
    assert resolve_prompt_batch(Sam3Settings(prompt_batch=asked), device) == expected


# --------------------------------------------------------------------------- known answers
def _logit(p):
    return torch.logit(torch.tensor(p, dtype=torch.float64)).float()


def _hand_built():
    """Two prompts, three queries, 4 x 4 masks read at 4 x 4 (no resizing)."""
    q = torch.stack([_logit([0.9, 0.5, 0.1]), _logit([0.9, 0.9, 0.9])])
    presence = torch.stack([_logit([0.9]), _logit([0.2])])
    masks = torch.full((2, 3, 4, 4), float(_logit(0.1)))
    masks[0, 0, :, :2] = _logit(0.8)  # prompt 0, query 0: the left half
    masks[0, 1, :2, :] = _logit(0.6)  # prompt 0, query 1: the top half
    masks[1, :, 2:, 2:] = _logit(0.9)  # prompt 1: the bottom-right quarter
    semantic = torch.stack([torch.full((1, 4, 4), float(_logit(0.3))), torch.full((1, 4, 4), float(_logit(0.5)))])
    return q, presence, masks, semantic


def test_the_fusion_on_hand_built_heads_gives_the_known_maps():
    q, presence, masks, semantic = _hand_built()
    out = view_scores(q, presence, masks, semantic, (4, 4), Sam3Settings(confidence_threshold=0.4))
    # prompt 0: object scores 0.81, 0.45 (kept), 0.09 (dropped); prompt 1: 0.18 each, all dropped
    inst = np.full((4, 4), 0.1 * 0.81)
    inst[:2, :] = 0.6 * 0.45
    inst[:, :2] = 0.8 * 0.81
    np.testing.assert_allclose(out[0].numpy(), np.maximum(inst, 0.3) * 0.9, atol=1e-6)
    np.testing.assert_allclose(out[1].numpy(), np.full((4, 4), 0.5 * 0.2), atol=1e-6)
    only_semantic = view_scores(q, presence, masks, semantic, (4, 4), Sam3Settings(heads=("semantic",)))
    np.testing.assert_allclose(only_semantic[0].numpy(), np.full((4, 4), 0.3), atol=1e-6)  # no presence factor
    low = view_scores(q, presence, masks, semantic, (4, 4), Sam3Settings(confidence_threshold=0.1, heads=("instance",)))
    expected = np.full((4, 4), 0.1 * 0.18)
    expected[2:, 2:] = 0.9 * 0.18  # prompt 1's queries now pass (0.18 > 0.1)
    np.testing.assert_allclose(low[1].numpy(), expected, atol=1e-6)


def test_presence_filters_an_absent_class_and_the_switch_turns_it_off():
    q, presence, masks, semantic = _hand_built()
    with_presence = view_scores(q, presence, masks, semantic, (4, 4), Sam3Settings(confidence_threshold=0.1))
    without = view_scores(q, presence, masks, semantic, (4, 4),
                          Sam3Settings(confidence_threshold=0.1, heads=("instance", "semantic")))
    assert (labels_from_scores(with_presence, 0.0, 0)[2:, 2:] == 0).all()  # prompt 1 (presence 0.2) loses
    assert (labels_from_scores(without, 0.0, 0)[2:, 2:] == 1).all()  # ... and wins without the factor


def test_no_kept_query_leaves_zeros_so_every_pixel_is_background_or_the_first_class():
    q, presence, masks, semantic = _hand_built()
    settings = Sam3Settings(confidence_threshold=0.99, heads=("instance",))
    out = view_scores(q, presence, masks, semantic, (4, 4), settings)
    assert torch.equal(out, torch.zeros_like(out))
    assert (labels_from_scores(out, 0.1, 1) == 1).all()  # below prob_thd: bg_idx
    assert (labels_from_scores(out, 0.0, 1) == 0).all()  # 0 < 0 is false: argmax of ties, the first class
    both = view_scores(q, presence, masks, semantic, (4, 4), Sam3Settings(confidence_threshold=0.99))
    np.testing.assert_allclose(both[0].numpy(), 0.3 * 0.9, atol=1e-6)  # only the semantic head is left


def test_prob_thd_sends_weak_pixels_to_bg_idx_and_ties_go_to_the_first_class():
    scores = torch.zeros((3, 2, 3))
    scores[0, 0] = torch.tensor([0.7, 0.3, 0.4])
    scores[1, 0] = torch.tensor([0.2, 0.1, 0.4])
    scores[1, 1] = torch.tensor([0.6, 0.6, 0.05])
    scores[2, 1] = torch.tensor([0.6, 0.2, 0.0])
    labels = labels_from_scores(scores, 0.35, 2)
    assert labels.tolist() == [[0, 2, 0], [1, 1, 2]]  # 0.4 tie -> class 0; 0.6 tie -> class 1; 0.05 -> bg 2
    assert labels.dtype == np.uint8


def test_synonyms_merge_by_max():
    rows = torch.tensor([[[0.2]], [[0.7]], [[0.4]]])
    assert merge_synonyms(rows, [0, 0, 1], 2).flatten().tolist() == pytest.approx([0.7, 0.4])
    assert prompt_rows(parse_classes("water,river;road")) == (["water", "river", "road"], [0, 0, 1])


# --------------------------------------------------------------------------- once per window, text cached
def _count_calls(module):
    calls = []
    handle = module.register_forward_hook(lambda *args: calls.append(1))
    return calls, handle


@pytest.mark.parametrize("slide_crop", [0, 96])
def test_the_image_is_encoded_once_per_window_however_many_classes(sam3, slide_crop):
    rgb = np.random.default_rng(1).integers(0, 256, (120, 180, 3), dtype=np.uint8)
    classes = "background;building,house,roof;road,street;water;tree,forest;car"  # 6 classes, 10 prompts
    settings = Sam3Settings(slide_crop=slide_crop, prompt_batch=4)
    windows = windows_for(120, 180, settings, sam3.input_size)
    vision, h1 = _count_calls(sam3.model.vision_encoder)
    decoder, h2 = _count_calls(sam3.model.detr_decoder)
    try:
        result = segment_sam3(rgb, classes, sam3=sam3, settings=settings)
    finally:
        h1.remove()
        h2.remove()
    assert len(windows) == (1 if slide_crop == 0 else 4)
    assert len(vision) == len(windows) and len(decoder) == len(windows) * 3  # 10 prompts in batches of 4
    assert result.labels.shape == (120, 180)


def test_text_embeddings_are_cached_per_vocabulary(sam3):
    rgb = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    cache = TextCache()
    text, handle = _count_calls(sam3.model.text_encoder)
    try:
        first = segment_sam3(rgb, "background;building", sam3=sam3, text_cache=cache)
        again = segment_sam3(rgb, "background;building", sam3=sam3, text_cache=cache,
                             settings=Sam3Settings(prob_thd=0.2))
        assert len(text) == 2 and cache.hits == 1  # each prompt encoded alone, once
        segment_sam3(rgb, "background;road", sam3=sam3, text_cache=cache)
        assert len(text) == 4
    finally:
        handle.remove()
    assert first.labels.shape == again.labels.shape == (64, 64)
    assert encode_prompts(sam3, ["road"], cache=None).features.shape == (1, 32, sam3.model.config.detr_encoder_config.hidden_size)


# --------------------------------------------------------------------------- sliding windows
@pytest.mark.parametrize("height,width,crop,stride", [(1024, 1024, 512, 512), (1000, 700, 512, 512),
                                                      (300, 420, 256, 256), (100, 900, 256, 200), (50, 60, 64, 64),
                                                      (513, 512, 512, 512), (777, 333, 128, 100)])
def test_sliding_windows_cover_the_image_inside_its_bounds(height, width, crop, stride):
    windows = slide_windows(height, width, crop, stride)
    covered = np.zeros((height, width), int)
    for y1, y2, x1, x2 in windows:
        assert 0 <= y1 < y2 <= height and 0 <= x1 < x2 <= width
        assert y2 - y1 == min(crop, height) and x2 - x1 == min(crop, width)
        covered[y1:y2, x1:x2] += 1
    assert covered.min() >= 1
    if (height, width) == (1024, 1024):
        assert windows == [(0, 512, 0, 512), (0, 512, 512, 1024), (512, 1024, 0, 512), (512, 1024, 512, 1024)]
    if (height, width) == (1000, 700):  # the last row and column are moved back inside
        assert {w[0] for w in windows} == {0, 488} and {w[2] for w in windows} == {0, 188}


def test_windows_only_when_the_image_is_larger_than_the_window():
    assert windows_for(256, 256, Sam3Settings(), 256) == [(0, 256, 0, 256)]  # default window: the input size
    assert len(windows_for(257, 256, Sam3Settings(), 256)) == 2
    assert windows_for(5000, 5000, Sam3Settings(slide_crop=0), 1008) == [(0, 5000, 0, 5000)]  # never
    assert len(windows_for(1024, 1024, Sam3Settings(slide_crop=512, slide_stride=512), 1008)) == 4


def test_windows_stitch_back_at_their_place_averaged_where_they_overlap(sam3):
    rgb = np.random.default_rng(4).integers(0, 256, (128, 150, 3), dtype=np.uint8)
    settings = Sam3Settings(slide_crop=64, slide_stride=64, confidence_threshold=0.3)
    text = encode_prompts(sam3, ["building", "road"], cache=None)
    whole = prompt_scores(sam3, rgb, text, settings)
    assert whole.shape == (2, 128, 150)
    # columns: windows at 0-64, 64-128 and 86-150 (moved back inside): 86-128 is seen twice
    alone = {x1: view_prompt_scores(sam3, rgb[0:64, x1:x1 + 64], text, settings) for x1 in (0, 64, 86)}
    assert torch.allclose(whole[:, :64, :64], alone[0], atol=1e-6)
    assert torch.allclose(whole[:, :64, 64:86], alone[64][:, :, :22], atol=1e-6)
    assert torch.allclose(whole[:, :64, 86:128], (alone[64][:, :, 22:] + alone[86][:, :, :42]) / 2, atol=1e-6)
    result = segment_sam3(rgb, "building;road", sam3=sam3, settings=settings)
    assert result.labels.shape == (128, 150) and result.work_size == (128, 150)


# --------------------------------------------------------------------------- the OvssResult contract
def test_the_result_is_an_ovss_result_that_plots_scores_and_vectorises_alike(sam3, rgb_image):
    from rs_helpers.ovss.pipeline import OvssResult

    result = segment_sam3(rgb_image, "background;building,house;water", sam3=sam3)
    assert isinstance(result, OvssResult) and result.selector == "sam3" and not result.binary
    assert result.class_names == ["background", "building", "water"] and len(result.palette) == 3
    assert result.labels.dtype == np.uint8 and result.labels.shape == rgb_image.shape[:2]
    assert set(np.unique(result.labels)) <= {0, 1, 2}
    assert sum(result.shares.values()) == pytest.approx(1.0)
    assert [e["synonyms"] for e in result.legend()] == [["background"], ["building", "house"], ["water"]]
    for stage in ("sam3_text", "sam3_vision", "sam3_decoder", "sam3_fusion", "total"):
        assert stage in result.timings
    binary = segment_sam3(rgb_image, "building", sam3=sam3, binary=True)
    assert binary.binary and binary.class_names == ["background", "building"] and binary.target == "building"
    assert set(np.unique(binary.labels)) <= {0, 1} and len(binary.vocabulary) == 2


def test_a_half_precision_model_runs_the_same_fusion(rgb_image):
    from rs_helpers.models.sam3 import load_sam3

    half = load_sam3(profile="tiny", device="cpu", dtype=torch.bfloat16)
    result = segment_sam3(rgb_image, "background;building", sam3=half, settings=Sam3Settings(confidence_threshold=0.3))
    assert result.labels.shape == rgb_image.shape[:2] and result.labels.dtype == np.uint8


def test_bad_settings_and_inputs_are_bad_input_errors(sam3, rgb_image):
    with pytest.raises(BadInputError, match="head"):
        Sam3Settings(heads=("instance", "mask"))
    with pytest.raises(BadInputError, match="between 0 and 1"):
        Sam3Settings(confidence_threshold=1.5)
    with pytest.raises(BadInputError, match="slide_crop"):
        Sam3Settings(slide_crop=-1)
    with pytest.raises(BadInputError, match="bg_idx 5"):
        segment_sam3(rgb_image, "a;b", sam3=sam3, settings=Sam3Settings(bg_idx=5))
    with pytest.raises(BadInputError, match="only one class"):
        segment_sam3(rgb_image, "building", sam3=sam3)
    with pytest.raises(BadInputError, match="uint8"):
        segment_sam3(rgb_image.astype(np.float32), "a;b", sam3=sam3)
    assert parse_heads("Semantic, instance") == ("semantic", "instance")
    with pytest.raises(BadInputError):
        parse_heads("")


# --------------------------------------------------------------------------- the protocol table
def test_the_segearth_ov3_protocol_rows():
    from rs_helpers.evaluation.protocols_sam3 import (
        class_changes,
        describe_sam3,
        get_sam3_protocol,
        sam3_datasets,
    )

    assert len(sam3_datasets()) == 17
    potsdam = get_sam3_protocol("Potsdam")
    assert (potsdam.confidence_threshold, potsdam.prob_thd, potsdam.bg_idx) == (0.2, 0.1, 5)
    assert potsdam.config == "configs/cfg_potsdam.py" and potsdam.classes[5] == "clutter"
    oem = get_sam3_protocol("oem").settings()
    assert (oem.slide_crop, oem.slide_stride, oem.confidence_threshold, oem.prob_thd) == (512, 512, 0.1, 0.1)
    assert get_sam3_protocol("loveda").settings().slide_crop == 0  # the whole image, as the default
    assert get_sam3_protocol("udd5").bg_idx == 4 and get_sam3_protocol("loveda").reduce_zero_label
    changes = class_changes("loveda")
    assert (1, "building,roof,house", "building,house") in changes and len(changes) == 3
    assert class_changes("isaid") == []
    for name in sam3_datasets():
        protocol = get_sam3_protocol(name)
        vocab = parse_classes(protocol.class_string)
        assert len(vocab) == len(protocol.classes) and 0 <= protocol.bg_idx < len(vocab)
        assert protocol.config in describe_sam3(protocol)
    with pytest.raises(BadInputError):
        get_sam3_protocol("samples")


def test_resizing_kept_masks_in_chunks_changes_nothing():
    logits, presence, masks, semantic = _random_heads(4, n_queries=9, seed=11)
    a = view_scores(logits, presence, masks, semantic, (10, 14), Sam3Settings(confidence_threshold=0.05))
    b = view_scores(logits, presence, masks, semantic, (10, 14), Sam3Settings(confidence_threshold=0.05, mask_chunk=1))
    assert torch.equal(a, b)
