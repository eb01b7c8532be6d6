"""SimFeatUp: the banded upsampler equals the dense formula, loads SegEarth-OV's checkpoint layout,
and says where the weights come from when it cannot have them."""
from __future__ import annotations

import urllib.error

import pytest
import torch
import torch.nn.functional as F

from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.models import checkpoints
from rs_helpers.models.checkpoints import (
    SIMFEATUP_CHECKPOINT,
    Checkpoint,
    check_file,
    git_blob_sha1,
)
from rs_helpers.ovss.simfeatup import JointBilateralStep, SimFeatUp, load_simfeatup


# ----------------------------------------------------------------------- the formula, written densely
# Read from SegEarth-OV simfeatup_dev/upsamplers.py: JBULearnedRange.get_range_kernel,
# get_spatial_kernel, forward (with adaptive_conv_py_simple for FeatUp's AdaptiveConv), and JBUOne.
def dense_neighbours(x, diameter):
    """B x C x taps x H x W: every map unfolded at once (the memory the banded form avoids)."""
    b, c, hp, wp = x.shape
    return F.unfold(x, diameter).view(b, c, diameter * diameter, hp - diameter + 1, wp - diameter + 1)


def dense_step(step, source, guidance):
    r = step.radius
    d = 2 * r + 1
    keys = step.range_proj(guidance)
    neighbours = dense_neighbours(F.pad(keys, [r] * 4, mode="reflect"), d)
    temp = torch.clamp(torch.exp(step.range_temp), 1e-4, 1e4)
    range_kernel = torch.softmax(temp * (neighbours * keys[:, :, None]).sum(1), dim=1)
    grid = torch.linspace(-1, 1, d)
    gy, gx = torch.meshgrid(grid, grid, indexing="ij")
    spatial = torch.exp(-(gy ** 2 + gx ** 2) / (2 * step.sigma_spatial ** 2)).reshape(1, d * d, 1, 1)
    kernel = range_kernel * spatial
    kernel = kernel / kernel.sum(1, keepdim=True).clamp(min=1e-7)
    kernel = kernel + 0.1 * step.fixup_proj(torch.cat([kernel, guidance], dim=1))
    up = F.interpolate(source, size=guidance.shape[-2:], mode="bicubic", align_corners=False)
    patches = dense_neighbours(F.pad(up, [r] * 4, mode="reflect"), d)
    return (patches * kernel[:, None]).sum(2)


def dense_simfeatup(model, source, guidance):
    for _ in range(4):
        h, w = source.shape[-2:]
        source = dense_step(model.up, source, F.adaptive_avg_pool2d(guidance, (2 * h, 2 * w)))
    return source + 0.1 * model.fixup_proj(source)


def _perturbed(model, seed=1):
    """Non-default parameters everywhere (range temperature and spatial width included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


@pytest.mark.parametrize("grid,chunk_rows", [((3, 3), 7), ((3, 4), 5), ((4, 3), 1000)])
def test_banded_upsampler_equals_the_dense_formula(grid, chunk_rows):
    torch.manual_seed(0)
    model = _perturbed(SimFeatUp(6))
    source = torch.randn(2, 6, *grid)
    guidance = torch.randn(2, 3, 16 * grid[0], 16 * grid[1])
    with torch.no_grad():
        got = model(source, guidance, chunk_rows=chunk_rows)
        want = dense_simfeatup(model, source, guidance)
    assert got.shape == (2, 6, 16 * grid[0], 16 * grid[1])
    assert torch.allclose(got, want, atol=1e-5, rtol=0)


def test_one_step_with_a_larger_guidance_and_another_radius():
    torch.manual_seed(2)
    step = _perturbed(JointBilateralStep(radius=2), seed=3)
    source, guidance = torch.randn(1, 5, 4, 6), torch.randn(1, 3, 13, 17)  # not an exact doubling
    with torch.no_grad():
        assert torch.allclose(step(source, guidance, chunk_rows=3), dense_step(step, source, guidance), atol=1e-5)


def test_too_small_a_window_is_refused():
    with pytest.raises(BadInputError, match="radius"):
        SimFeatUp(4)(torch.randn(1, 4, 1, 1), torch.randn(1, 3, 16, 16))
    with pytest.raises(BadInputError, match="8-dimensional"):
        SimFeatUp(8)(torch.randn(1, 4, 3, 3), torch.randn(1, 3, 48, 48))


# ----------------------------------------------------------------------- SegEarth-OV's checkpoint layout
def segearth_shapes(feat_dim):
    """SegEarth-OV's JBUOne(feat_dim) parameters: JBULearnedRange(3, feat_dim, 32, radius=5) as ``up``
    (Conv-GELU-Dropout-Conv, so indices 0 and 3) and Sequential(Dropout2d, Conv2d) as ``fixup_proj``."""
    taps = 11 * 11
    return {
        "up.range_temp": (), "up.sigma_spatial": (),
        "up.range_proj.0.weight": (32, 3, 1, 1), "up.range_proj.0.bias": (32,),
        "up.range_proj.3.weight": (32, 32, 1, 1), "up.range_proj.3.bias": (32,),
        "up.fixup_proj.0.weight": (taps, taps + 3, 1, 1), "up.fixup_proj.0.bias": (taps,),
        "up.fixup_proj.3.weight": (taps, taps, 1, 1), "up.fixup_proj.3.bias": (taps,),
        "fixup_proj.1.weight": (feat_dim, feat_dim, 1, 1), "fixup_proj.1.bias": (feat_dim,),
    }


def test_state_dict_has_segearth_names():
    mine = {k: tuple(v.shape) for k, v in SimFeatUp(512).state_dict().items()}
    assert mine == segearth_shapes(512)


def test_a_lightning_checkpoint_with_segearth_keys_loads(tmp_path):
    gen = torch.Generator().manual_seed(0)
    weights = {k: torch.randn(shape, generator=gen) for k, shape in segearth_shapes(512).items()}
    path = tmp_path / "xclip_jbu_one_million_aid.ckpt"
    # the published file is a PyTorch Lightning checkpoint: the model under "upsampler."
    torch.save({"epoch": 3, "global_step": 100, "pytorch-lightning_version": "1.9.4",
                "state_dict": {f"upsampler.{k}": v for k, v in weights.items()},
                "optimizer_states": [], "lr_schedulers": []}, path)
    model = load_simfeatup(512, checkpoint=path, device="cpu")
    assert not model.training and model.feat_dim == 512
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key
    plain = tmp_path / "plain.pt"
    torch.save(weights, plain)  # our own state dict loads too
    assert torch.equal(load_simfeatup(512, checkpoint=plain, device="cpu").up.range_temp, weights["up.range_temp"])
    with pytest.raises(BadInputError, match="512-dimensional"):
        load_simfeatup(32, checkpoint=path, device="cpu")


def test_a_checkpoint_that_does_not_fit_is_exit_3(tmp_path):
    bad = tmp_path / "bad.ckpt"
    weights = {k: torch.zeros(shape) for k, shape in segearth_shapes(16).items()}
    weights["up.range_proj.0.weight"] = torch.zeros(8, 3, 1, 1)
    torch.save({"state_dict": weights}, bad)
    with pytest.raises(WeightsUnavailableError, match="does not fit") as info:
        load_simfeatup(16, checkpoint=bad, device="cpu")
    assert info.value.exit_code == 3 and SIMFEATUP_CHECKPOINT.url in str(info.value)


# ----------------------------------------------------------------------- where the weights come from
def test_missing_checkpoint_is_exit_3_naming_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("RS_HELPERS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(checkpoints, "host_reachable", lambda *a, **k: False)
    from rs_helpers.ovss import simfeatup

    monkeypatch.setattr(simfeatup, "host_reachable", lambda *a, **k: False)
    with pytest.raises(WeightsUnavailableError) as info:
        load_simfeatup(512, profile="full", device="cpu")
    assert info.value.exit_code == 3
    assert SIMFEATUP_CHECKPOINT.url in str(info.value) and "xclip_jbu_one_million_aid.ckpt" in str(info.value)
    with pytest.raises(WeightsUnavailableError) as info:  # a named file that is not there
        load_simfeatup(512, checkpoint=tmp_path / "nowhere.ckpt", device="cpu")
    assert info.value.exit_code == 3 and SIMFEATUP_CHECKPOINT.url in str(info.value)


def test_a_failed_download_is_exit_3_naming_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("RS_HELPERS_CACHE", str(tmp_path / "cache"))
    from rs_helpers.ovss import simfeatup

    monkeypatch.setattr(simfeatup, "host_reachable", lambda *a, **k: True)

    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError("connection refused")

    monkeypatch.setattr(checkpoints, "_download", refuse)
    with pytest.raises(WeightsUnavailableError) as info:
        load_simfeatup(512, profile="full", device="cpu")
    assert info.value.exit_code == 3 and SIMFEATUP_CHECKPOINT.url in str(info.value)


def test_published_checkpoint_is_declared_with_its_git_blob_id():
    ckpt = SIMFEATUP_CHECKPOINT
    assert ckpt.filename == "xclip_jbu_one_million_aid.ckpt" and "likyoo/SegEarth-OV" in ckpt.url
    assert len(ckpt.git_sha1) == 40 and ckpt.sha256 is None


def test_git_blob_id_check(tmp_path):
    path = tmp_path / "weights.ckpt"
    path.write_bytes(b"hello\n")
    assert git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object` of "hello\n"
    assert check_file(path, Checkpoint("http://127.0.0.1:9/weights.ckpt", "", git_sha1=git_blob_sha1(path))) is None
    problem = check_file(path, Checkpoint("http://127.0.0.1:9/weights.ckpt", "", git_sha1="0" * 40))
    assert problem and "git blob id" in problem


def test_tiny_profile_gives_a_seeded_random_upsampler(capsys):
    from rs_helpers import profile

    profile._announced.discard("SimFeatUp upsampler (24 features)")
    a = load_simfeatup(24, profile="tiny", device="cpu")
    b = load_simfeatup(24, profile="tiny", device="cpu")
    assert "TINY PROFILE" in capsys.readouterr().err
    assert isinstance(a, SimFeatUp) and a.feat_dim == 24 and not a.training
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_benchmark_compares_banded_and_naive(capsys):
    from rs_helpers.bench.upsampler import measure_upsampler, naive_bytes

    out = measure_upsampler(feat_dim=4, grid=3, device="cpu", repeats=1)
    assert out["max_abs_diff"] < 1e-5 and out["naive"]["seconds"] > 0
    assert "ratio naive / banded" in capsys.readouterr().out
    assert naive_bytes(512, 224) > 12e9  # why the naive form is not an option for a real window
    skipped = measure_upsampler(feat_dim=4, grid=3, device="cpu", repeats=1, naive_limit_gib=1e-6)
    assert skipped["naive"] is None and "GiB" in skipped["naive_skipped"]
