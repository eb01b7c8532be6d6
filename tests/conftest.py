"""Shared fixtures. Every test runs under the tiny profile unless it says otherwise."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("RS_HELPERS_PROFILE", "tiny")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _tiny_profile(monkeypatch, tmp_path_factory):
    """Tiny models, and a private cache so no test touches the user's downloads."""
    monkeypatch.setenv("RS_HELPERS_PROFILE", "tiny")
    monkeypatch.setenv("RS_HELPERS_CACHE", str(tmp_path_factory.getbasetemp() / "rs_cache"))


@pytest.fixture
def one_thread():
    """Tiny models run faster on one thread than on two busy ones (``usefixtures("one_thread")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_sam():
    from rs_helpers.models.sam import load_sam

    return load_sam(profile="tiny", device="cpu")


@pytest.fixture(scope="session")
def tiny_clip():
    from rs_helpers.models.clip import load_clip

    return load_clip(profile="tiny", device="cpu")


@pytest.fixture
def rgb_image():
    """A 96 x 128 RGB test image: four flat quadrants and a bright disc."""
    img = np.zeros((96, 128, 3), np.uint8)
    img[:48, :64] = (200, 30, 30)
    img[:48, 64:] = (30, 200, 30)
    img[48:, :64] = (30, 30, 200)
    img[48:, 64:] = (200, 200, 30)
    yy, xx = np.mgrid[:96, :128]
    img[(yy - 48) ** 2 + (xx - 64) ** 2 < 15 ** 2] = 255
    return img
