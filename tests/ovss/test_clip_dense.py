"""The dense CLIP map: the modified ViT pass, windows, probabilities and every switch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rs_helpers.ovss.clip_dense import (
    DenseSettings,
    dense_map,
    encode_tokens,
    interpolate_pos_embed,
    pixel_labels,
    probabilities,
    similarity_map,
    window_starts,
)
from rs_helpers.errors import BadInputError
from rs_helpers.ovss.vocabulary import TextCache, TextEmbeddings, encode_vocabulary

FAST = DenseSettings(templates="single")


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (120, 200, 3), dtype=np.uint8)


def test_unmodified_pass_matches_open_clip(tiny_clip):
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        tokens = encode_tokens(tiny_clip.model.visual, x, DenseSettings(modified_last_block=False))
        reference = tiny_clip.model.encode_image(x)
    assert tokens.shape == (2, 1 + 14 * 14, reference.shape[1])
    assert torch.allclose(tokens[:, 0], reference, atol=1e-5)


def test_modified_block_changes_tokens_and_accepts_any_grid(tiny_clip):
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        plain = encode_tokens(tiny_clip.model.visual, x, DenseSettings(modified_last_block=False))
        modified = encode_tokens(tiny_clip.model.visual, x, DenseSettings())
        qq_only = encode_tokens(tiny_clip.model.visual, x, DenseSettings(attention="qq"))
        wide = encode_tokens(tiny_clip.model.visual, torch.randn(1, 3, 448, 320), DenseSettings())
    assert not torch.allclose(plain, modified) and not torch.allclose(modified, qq_only)
    assert wide.shape[1] == 1 + 28 * 20
    with pytest.raises(BadInputError, match="attention"):
        encode_tokens(tiny_clip.model.visual, x, DenseSettings(attention="qq+xx"))


def test_positional_embedding_interpolation():
    pos = torch.randn(1 + 4 * 4, 8)
    assert interpolate_pos_embed(pos, (4, 4), (4, 4)) is pos
    out = interpolate_pos_embed(pos, (4, 4), (6, 3))
    assert out.shape == (1 + 18, 8)
    assert torch.equal(out[0], pos[0])  # the class position is kept


@pytest.mark.parametrize("length,window,stride", [(448, 224, 112), (300, 224, 112), (224, 224, 112), (100, 224, 112)])
def test_window_starts_cover_everything(length, window, stride):
    starts = window_starts(length, window, stride)
    covered = np.zeros(max(length, window), bool)
    for s in starts:
        covered[s:s + window] = True
    assert covered[:length].all() and starts[0] == 0
    assert max(starts) + window == max(length, window)


def test_one_forward_pass_for_all_windows(tiny_clip, image):
    calls = []
    handle = tiny_clip.model.visual.conv1.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        text = encode_vocabulary(tiny_clip, "a;b", templates="single")
        rows = similarity_map(tiny_clip, image, text, DenseSettings())
    finally:
        handle.remove()
    assert len(calls) == 1 and calls[0] == 3 * 2  # 269 x 448: 3 windows across (0, 112, 224), 2 down (0, 45)
    assert rows.shape == (2, 269, 448)


@pytest.mark.parametrize("shape", [(120, 200), (40, 400), (30, 20), (256, 256)])
@pytest.mark.parametrize("sliding", [True, False])
def test_dense_map_shapes(tiny_clip, shape, sliding):
    rgb = np.full(shape + (3,), 90, np.uint8)
    dm = dense_map(tiny_clip, rgb, "building;road;background", DenseSettings(templates="single", sliding_window=sliding))
    assert dm.probs.shape == (3,) + shape and dm.labels.shape == shape
    assert dm.class_names == ["building", "road", "background"] and dm.background_index == 2
    assert dm.similarity.shape[0] == 3 and max(dm.similarity.shape[1:]) == 448
    assert np.all(dm.probs >= 0) and np.all(dm.probs <= 1 + 1e-6)
    assert np.array_equal(dm.labels, dm.probs.argmax(0))


def test_out_size_and_probabilities_sum_without_synonyms(tiny_clip, image):
    dm = dense_map(tiny_clip, image, "a;b;c", FAST, out_size=(30, 50))
    assert dm.probs.shape == (3, 30, 50)
    assert np.allclose(dm.probs.sum(0), 1, atol=1e-5)


def test_switches_change_the_map(tiny_clip, image):
    base = dense_map(tiny_clip, image, "a;b;c", FAST).probs
    for change in (dict(cls_lambda=0.0), dict(modified_last_block=False), dict(sliding_window=False),
                   dict(logit_scale=10.0), dict(templates="aerial")):
        other = dense_map(tiny_clip, image, "a;b;c", DenseSettings(**{"templates": "single", **change})).probs
        assert not np.allclose(base, other), change


def test_probabilities_softmax_over_rows_then_max_per_class():
    text = TextEmbeddings(torch.eye(3), torch.tensor([0, 0, 1]), 2, ("{}",))
    rows = torch.tensor([0.2, 0.1, 0.0]).view(3, 1, 1)
    probs = probabilities(rows, text, logit_scale=10.0)
    soft = torch.softmax(torch.tensor([2.0, 1.0, 0.0]), 0)
    assert torch.allclose(probs.view(-1), torch.stack([soft[0], soft[2]]))
    up = probabilities(rows.expand(3, 2, 2).contiguous(), text, 10.0, out_size=(4, 6))
    assert up.shape == (2, 4, 6)


def test_background_threshold():
    probs = np.array([[[0.5, 0.9]], [[0.3, 0.05]], [[0.2, 0.05]]], np.float32)  # 3 classes, 1 x 2 pixels
    assert pixel_labels(probs).tolist() == [[0, 0]]
    assert pixel_labels(probs, background_index=2, threshold=0.6).tolist() == [[2, 0]]
    assert pixel_labels(probs, background_index=None, threshold=0.6).tolist() == [[0, 0]]


def test_dense_map_uses_given_text_and_checks_it(tiny_clip, image):
    cache = TextCache()
    text = encode_vocabulary(tiny_clip, "a;b", templates="single", cache=cache)
    dense_map(tiny_clip, image, "a;b", FAST, text=text)
    with pytest.raises(BadInputError, match="classes"):
        dense_map(tiny_clip, image, "a;b;c", FAST, text=text)


def test_vit_b16_architecture_runs():
    """The real ViT-B-16 layout (random weights, nothing downloaded)."""
    import open_clip

    from rs_helpers.models.clip import ClipModel

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = open_clip.create_model("ViT-B-16", pretrained=None).eval()
    clip = ClipModel(model, None, open_clip.get_tokenizer("ViT-B-16"), "ViT-B-16", None)
    rgb = np.full((100, 150, 3), 120, np.uint8)
    fast = dict(templates="single", long_side=240)  # 240 x 160: 2 windows, or a 15 x 10 patch grid
    dm = dense_map(clip, rgb, "building;road", DenseSettings(**fast), text_cache=TextCache())
    assert dm.probs.shape == (2, 100, 150)
    whole = dense_map(clip, rgb, "building;road", DenseSettings(sliding_window=False, **fast))
    assert whole.similarity.shape == (2, 160, 240)
