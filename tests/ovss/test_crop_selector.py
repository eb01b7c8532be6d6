"""The crop selector: masked crops, one CLIP batch for all of them, and a colour oracle."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rs_helpers.ovss.crop_selector import CropSettings, classify_crops, crop_batch, expand_box, mask_crop
from rs_helpers.errors import BadInputError
from rs_helpers.sam.proposals import mask_boxes
from rs_helpers.ovss.selection import select_from_scores
from rs_helpers.ovss.vocabulary import TextEmbeddings, encode_vocabulary


class ColourOracle(torch.nn.Module):
    """A stand-in for CLIP whose image embedding is the mean colour of the non-grey pixels: with
    text embeddings red/green/blue it classifies a crop by its dominant colour."""

    def __init__(self, mean):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.logit_scale = torch.nn.Parameter(torch.tensor(np.log(100.0), dtype=torch.float32))
        self.calls = 0

    def encode_image(self, x):
        self.calls += 1
        std = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1)
        rgb = x * std + self.mean
        grey = (rgb - self.mean).abs().sum(1, keepdim=True) < 1e-3
        weights = (~grey).float()
        return (rgb * weights).sum((2, 3)) / weights.sum((2, 3)).clamp(min=1)


def oracle_clip():
    mean = (0.48145466, 0.4578275, 0.40821073)
    model = ColourOracle(mean)
    return SimpleNamespace(model=model, image_size=32, mean=mean, std=(0.26862954, 0.26130258, 0.27577711),
                           device=torch.device("cpu"))


def rgb_text():
    return TextEmbeddings(torch.eye(3), torch.tensor([0, 1, 2]), 3, ("{}",))


@pytest.fixture
def stripes():
    """A 40 x 60 image with red, green and blue vertical stripes and one mask per stripe."""
    img = np.zeros((40, 60, 3), np.uint8)
    masks = np.zeros((3, 40, 60), bool)
    for i in range(3):
        img[:, 20 * i:20 * (i + 1), i] = 230
        masks[i, 5:35, 20 * i + 2:20 * (i + 1) - 2] = True
    return img, masks


def test_expand_box_clips_to_image():
    assert expand_box((10, 10, 20, 30), 0.1, 40, 60) == (9, 8, 21, 32)
    assert expand_box((0, 0, 60, 40), 0.5, 40, 60) == (0, 0, 60, 40)
    assert expand_box((0, 0, 0, 0), 0.1, 40, 60) == (0, 0, 1, 1)  # an empty mask's box


def test_crop_greys_outside_and_is_square(stripes):
    img, masks = stripes
    fill = np.array([0.5, 0.5, 0.5], np.float32)
    crop = mask_crop(img, masks[0], mask_boxes(masks[:1])[0], CropSettings(padding=0.0), fill)
    assert crop.shape == (30, 30, 3)
    assert np.allclose(crop[:, :7], 0.5)  # padding to a square
    inside = crop[:, 7:7 + 16]
    assert np.allclose(inside[..., 0], 230 / 255)
    keep = mask_crop(img, masks[0], (0, 0, 30, 30), CropSettings(padding=0.0, background="keep"), fill)
    assert keep[0, 25, 1] > 0.8  # the green stripe is kept
    blur = mask_crop(img, masks[0], (0, 0, 30, 30), CropSettings(padding=0.0, background="blur"), fill)
    assert blur.shape == (30, 30, 3)
    with pytest.raises(BadInputError):
        CropSettings(background="black")


def test_all_crops_in_one_batch_and_oracle_answer(stripes):
    img, masks = stripes
    clip = oracle_clip()
    probs = classify_crops(clip, img, masks, mask_boxes(masks), rgb_text())
    assert clip.model.calls == 1
    assert probs.shape == (3, 3)
    assert probs.argmax(1).tolist() == [0, 1, 2]
    labels = select_from_scores(masks, probs, np.zeros((40, 60), int)).labels
    assert labels[20, 30] == 1 and labels[20, 50] == 2 and labels[0, 0] == 0


def test_batch_size_splits_calls(stripes):
    img, masks = stripes
    clip = oracle_clip()
    classify_crops(clip, img, masks, mask_boxes(masks), rgb_text(), CropSettings(batch_size=2))
    assert clip.model.calls == 2


def test_tiny_clip_one_forward_for_many_masks(tiny_clip, stripes):
    img, masks = stripes
    many = np.concatenate([masks, masks[:, ::-1], masks[:, :, ::-1]])
    calls = []
    handle = tiny_clip.model.visual.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        text = encode_vocabulary(tiny_clip, "building,roof;road;water", templates="single")
        probs = classify_crops(tiny_clip, img, many, mask_boxes(many), text)
    finally:
        handle.remove()
    assert calls == [9]
    assert probs.shape == (9, 3) and np.all(probs <= 1) and np.all(probs >= 0)
    batch = crop_batch(tiny_clip, img, many, mask_boxes(many))
    assert batch.shape == (9, 3, 224, 224)


def test_no_masks(tiny_clip):
    text = encode_vocabulary(tiny_clip, "a;b", templates="single")
    out = classify_crops(tiny_clip, np.zeros((8, 8, 3), np.uint8), np.zeros((0, 8, 8), bool), np.zeros((0, 4)), text)
    assert out.shape == (0, 2)
