"""SimFeatUp: the joint-bilateral feature upsampler of SegEarth-OV, in pure PyTorch.

CLIP sees a 224 px window as a 14 x 14 grid of patch features; SegEarth-OV brings them back to
224 x 224 before comparing them with the text, so that class edges follow the image. One
learned joint-bilateral step doubles the resolution; the same step (shared weights) is applied
four times, 14 -> 28 -> 56 -> 112 -> 224, each time guided by the image average-pooled to the
new size. A step, for every output pixel:

- upsamples the features bicubically to the guidance size;
- weighs the (2r+1)^2 neighbours (radius r = 5) by a *spatial* Gaussian (on a [-1, 1] grid,
  learned width ``sigma_spatial``) times a *range* kernel: a softmax over the neighbours of the
  dot products of a small learned projection of the guidance (temperature ``exp(range_temp)``);
- normalises the weights, adds 0.1 times a learned correction of them (``fixup_proj``, fed with
  the weights and the guidance) and takes the weighted sum of the neighbours' features.

After the four steps a 1 x 1 convolution adds a 0.1-weighted correction of the features.

Official code: ``simfeatup_dev/upsamplers.py`` of SegEarth-OV (``JBUOne`` around
``JBULearnedRange``), which calls FeatUp's compiled ``AdaptiveConv``; the parameter names here
are theirs, so the published checkpoint loads by key. Here no neighbour tensor
(C x (2r+1)^2 x H x W: 12 GB for 512 features at 224 x 224) is ever built: the output is made
in bands of rows, each neighbour added in place, so memory stays at about the size of the
output (:func:`rs_helpers.bench.upsampler.measure_upsampler` measures it).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rs_helpers.errors import BadInputError, WeightsUnavailableError
from rs_helpers.models.checkpoints import (
    SIMFEATUP_CHECKPOINT,
    cache_dir,
    fetch,
    host_reachable,
    load_weights_file,
    offline_message,
)
from rs_helpers.profile import TINY_SEED, announce_random, announce_tiny, get_profile, random_weights, seeded

DEFAULT_CHUNK_ROWS = 32
STEPS = 4  # 2 ** 4 = 16: one ViT-B/16 patch back to pixels


class JointBilateralStep(nn.Module):
    """One learned joint-bilateral doubling step (SegEarth-OV's ``JBULearnedRange``)."""

    def __init__(self, guidance_dim: int = 3, key_dim: int = 32, radius: int = 5):
        super().__init__()
        self.radius = radius
        self.diameter = 2 * radius + 1
        taps = self.diameter ** 2
        self.range_temp = nn.Parameter(torch.tensor(0.0))
        self.range_proj = nn.Sequential(nn.Conv2d(guidance_dim, key_dim, 1), nn.GELU(), nn.Dropout2d(0.1),
                                        nn.Conv2d(key_dim, key_dim, 1))
        # input channels: the taps' weights first, then the guidance
        self.fixup_proj = nn.Sequential(nn.Conv2d(taps + guidance_dim, taps, 1), nn.GELU(), nn.Dropout2d(0.1),
                                        nn.Conv2d(taps, taps, 1))
        self.sigma_spatial = nn.Parameter(torch.tensor(1.0))

    def offsets(self):
        """(row, column) offsets of the taps into the padded maps, in the order of the kernel channels."""
        return [(i, j) for i in range(self.diameter) for j in range(self.diameter)]

    def spatial_kernel(self, device) -> torch.Tensor:
        """1 x taps x 1 x 1 Gaussian of the tap positions on a [-1, 1] grid."""
        ramp = torch.linspace(-1, 1, self.diameter, device=device)
        dist2 = (ramp.view(-1, 1) ** 2 + ramp.view(1, -1) ** 2).reshape(1, -1, 1, 1)
        return torch.exp(-dist2 / (2 * self.sigma_spatial ** 2))

    def kernel(self, keys_padded: torch.Tensor, guidance: torch.Tensor, y0: int, y1: int) -> torch.Tensor:
        """B x taps x (y1 - y0) x W weights of output rows ``y0:y1``."""
        r, width = self.radius, guidance.shape[-1]
        centre = keys_padded[:, :, y0 + r:y1 + r, r:r + width]
        sims = torch.stack([(keys_padded[:, :, y0 + i:y1 + i, j:j + width] * centre).sum(1)
                            for i, j in self.offsets()], dim=1)
        temperature = self.range_temp.exp().clamp(1e-4, 1e4)
        weights = torch.softmax(temperature * sims, dim=1) * self.spatial_kernel(guidance.device)
        weights = weights / weights.sum(1, keepdim=True).clamp(1e-7)
        return weights + 0.1 * self.fixup_proj(torch.cat([weights, guidance[:, :, y0:y1]], dim=1))

    def forward(self, source: torch.Tensor, guidance: torch.Tensor,
                chunk_rows: int = DEFAULT_CHUNK_ROWS) -> torch.Tensor:
        """``source`` B x C x h x w features, ``guidance`` B x G x H x W: B x C x H x W."""
        if source.shape[0] != guidance.shape[0]:
            raise BadInputError(f"SimFeatUp: {source.shape[0]} feature maps for {guidance.shape[0]} guidance images")
        height, width = guidance.shape[-2:]
        if min(height, width) <= self.radius:
            raise BadInputError(f"SimFeatUp needs a guidance larger than its radius {self.radius} "
                                f"(got {height} x {width}): the window is too small")
        pad = [self.radius] * 4
        keys_padded = F.pad(self.range_proj(guidance), pad, mode="reflect")
        hr = F.interpolate(source, size=(height, width), mode="bicubic", align_corners=False)
        hr_padded = F.pad(hr, pad, mode="reflect")
        del hr
        out = source.new_empty(source.shape[:2] + (height, width))
        step = max(1, int(chunk_rows))
        for y0 in range(0, height, step):
            y1 = min(height, y0 + step)
            weights = self.kernel(keys_padded, guidance, y0, y1).to(source.dtype)
            band = out[:, :, y0:y1]
            band.zero_()
            for tap, (i, j) in enumerate(self.offsets()):
                band.addcmul_(weights[:, tap:tap + 1], hr_padded[:, :, y0 + i:y1 + i, j:j + width])
        return out


class SimFeatUp(nn.Module):
    """Four shared joint-bilateral steps and a 0.1-weighted 1 x 1 fix-up (SegEarth-OV's ``JBUOne``).
    ``upsampler(features B x C x h x w, image B x 3 x H x W) -> B x C x 16h x 16w``; the image is the
    normalised window CLIP saw."""

    def __init__(self, feat_dim: int = 512, radius: int = 5, key_dim: int = 32):
        super().__init__()
        self.feat_dim = feat_dim
        self.up = JointBilateralStep(3, key_dim, radius)
        self.fixup_proj = nn.Sequential(nn.Dropout2d(0.2), nn.Conv2d(feat_dim, feat_dim, 1))

    def forward(self, source: torch.Tensor, guidance: torch.Tensor,
                chunk_rows: int = DEFAULT_CHUNK_ROWS) -> torch.Tensor:
        if source.shape[1] != self.feat_dim:
            raise BadInputError(f"SimFeatUp was built for {self.feat_dim}-dimensional features, "
                                f"got {source.shape[1]} (a checkpoint for another CLIP?)")
        guidance = guidance.to(source.dtype)
        for _ in range(STEPS):
            h, w = source.shape[-2:]
            small = F.adaptive_avg_pool2d(guidance, (2 * h, 2 * w))
            source = self.up(source, small, chunk_rows)
        step = max(1, int(chunk_rows))
        for y0 in range(0, source.shape[-2], step):  # in place, band by band
            band = source[:, :, y0:y0 + step]
            band.add_(self.fixup_proj(band), alpha=0.1)
        return source


# --------------------------------------------------------------------------- loading
def _fix(url: str) -> str:
    return f"download it again from {url}"


def state_dict_from_checkpoint(state: dict) -> dict:
    """The upsampler's own state dict from a published (PyTorch Lightning) checkpoint, whose
    ``state_dict`` keys start with ``upsampler.`` (SegEarth-OV strips those 10 characters), or
    from a plain state dict."""
    inner = state.get("state_dict", state)
    if not isinstance(inner, dict):
        return {}
    prefix = "upsampler."
    if inner and all(isinstance(k, str) and k.startswith(prefix) for k in inner):
        inner = {k[len(prefix):]: v for k, v in inner.items()}
    return {k: v for k, v in inner.items() if isinstance(v, torch.Tensor)}


def load_simfeatup_file(path: str | Path, url: str = SIMFEATUP_CHECKPOINT.url) -> SimFeatUp:
    """A SimFeatUp with the weights of ``path`` (its feature size read from the file)."""
    state = load_weights_file(path, "SimFeatUp", _fix(url), tensors_only=False)
    weights = state_dict_from_checkpoint(state)
    fixup = weights.get("fixup_proj.1.weight")
    if fixup is None or fixup.dim() != 4:
        raise WeightsUnavailableError(f"SimFeatUp checkpoint {path} holds no SimFeatUp weights "
                                      f"(no fixup_proj.1.weight); {_fix(url)}")
    model = SimFeatUp(int(fixup.shape[0]))
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1][:160]
        raise WeightsUnavailableError(f"SimFeatUp checkpoint {path} does not fit the upsampler ({first}); "
                                      f"{_fix(url)}") from None
    return model.eval()


def load_simfeatup(feat_dim: int = 512, checkpoint: str | Path | None = None, profile: str | None = None,
                   device: str | torch.device | None = None) -> SimFeatUp:
    """SegEarth-OV's upsampler for ``feat_dim``-dimensional CLIP features (512: ViT-B/16).

    ``checkpoint``: a local file; default the published ``xclip_jbu_one_million_aid.ckpt``,
    downloaded once into the cache (offline: :class:`WeightsUnavailableError`, exit 3, naming
    its URL). Tiny profile without a file: a seeded random SimFeatUp of the same design."""
    from rs_helpers.device import pick_device

    device = pick_device(device)
    if checkpoint is None and get_profile(profile) == "tiny":
        announce_tiny(f"SimFeatUp upsampler ({feat_dim} features)")
        with seeded(TINY_SEED):
            model = SimFeatUp(feat_dim)
        return model.eval().to(device)
    if checkpoint is None and random_weights(profile):
        announce_random(f"SimFeatUp upsampler ({feat_dim} features)")
        with seeded(TINY_SEED):
            model = SimFeatUp(feat_dim)
        return model.eval().to(device)
    if checkpoint is None:
        ckpt = SIMFEATUP_CHECKPOINT
        target = cache_dir() / ckpt.filename
        if not target.is_file() and not host_reachable(ckpt.url):
            raise WeightsUnavailableError(offline_message("the SimFeatUp upsampler", ckpt.url, target, "offline"))
        checkpoint = fetch(ckpt)
    model = load_simfeatup_file(checkpoint)
    if model.feat_dim != feat_dim:
        raise BadInputError(f"the SimFeatUp checkpoint {checkpoint} is for {model.feat_dim}-dimensional "
                            f"features, the CLIP model gives {feat_dim}: use ViT-B-16, or no upsampler")
    return model.to(device)
