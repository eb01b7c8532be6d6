"""Memory and time of the SimFeatUp upsampler: the banded implementation against the naive one.

The naive form (SegEarth-OV's ``adaptive_conv_py_simple`` and ``get_range_kernel``) unfolds every
map into its (2r+1)^2 neighbours at once: for 512 features at 224 x 224 and radius 5 that is a
12 GB tensor for one window. :class:`rs_helpers.ovss.simfeatup.SimFeatUp` adds the neighbours
in place, band by band. :func:`measure_upsampler` runs both on the same random input, checks that
they agree and prints peak memory, time and their ratios. Peak memory: on CUDA
``torch.cuda.max_memory_allocated`` above what was allocated before; on the CPU the growth of the
process's peak resident size (``VmHWM``, reset through ``/proc/self/clear_refs``; Linux only).
Memory is measured on each form's first call, before any timing run, so that freed buffers the
C library keeps do not hide it.
"""
from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F

from rs_helpers.device import pick_device
from rs_helpers.ovss.simfeatup import DEFAULT_CHUNK_ROWS, STEPS, SimFeatUp
from rs_helpers.profile import seeded


def _unfold(x: torch.Tensor, diameter: int) -> torch.Tensor:
    """B x C x taps x H x W neighbours of an already padded map."""
    b, c = x.shape[:2]
    h, w = x.shape[-2] - diameter + 1, x.shape[-1] - diameter + 1
    return F.unfold(x, diameter).view(b, c, diameter * diameter, h, w)


def naive_step(step, source: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
    """One joint-bilateral step with every neighbour tensor materialised (the reference form)."""
    r, d = step.radius, step.diameter
    keys = step.range_proj(guidance)
    queries = _unfold(F.pad(keys, [r] * 4, mode="reflect"), d)
    temperature = step.range_temp.exp().clamp(1e-4, 1e4)
    weights = torch.softmax(temperature * torch.einsum("bcphw,bchw->bphw", queries, keys), dim=1)
    weights = weights * step.spatial_kernel(source.device)
    weights = weights / weights.sum(1, keepdim=True).clamp(1e-7)
    weights = weights + 0.1 * step.fixup_proj(torch.cat([weights, guidance], dim=1))
    hr = F.interpolate(source, size=guidance.shape[-2:], mode="bicubic", align_corners=False)
    patches = _unfold(F.pad(hr, [r] * 4, mode="reflect"), d)
    return torch.einsum("bphw,bcphw->bchw", weights, patches)


def naive_simfeatup(model: SimFeatUp, source: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:
    for _ in range(STEPS):
        h, w = source.shape[-2:]
        source = naive_step(model.up, source, F.adaptive_avg_pool2d(guidance, (2 * h, 2 * w)))
    return model.fixup_proj(source) * 0.1 + source


def naive_bytes(feat_dim: int, size: int, radius: int = 5, element: int = 4) -> int:
    """Bytes of the naive form's largest tensor: the last step's neighbours."""
    return feat_dim * (2 * radius + 1) ** 2 * size * size * element


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no {key} in /proc/self/status")


def _peak_bytes(fn, device: torch.device) -> int | None:
    """Peak bytes that ``fn()`` adds: on CUDA the allocator's peak above what was allocated
    before; on the CPU (Linux) the growth of the peak resident size, reset just before (None
    where /proc cannot be used)."""
    if device.type == "cuda":
        _sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
        return int(torch.cuda.max_memory_allocated(device) - base)
    try:
        with open("/proc/self/clear_refs", "w") as fh:  # "5" resets the peak resident size (VmHWM)
            fh.write("5")
        base = _status_bytes("VmRSS")
    except OSError:
        return None
    fn()
    return max(0, _status_bytes("VmHWM") - base)


def _mib(n: int | None) -> float | None:
    return None if n is None else n / 2 ** 20


def _seconds(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(max(1, repeats)):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


@torch.no_grad()
def measure_upsampler(feat_dim: int = 512, grid: int = 14, device: str | torch.device | None = None,
                      chunk_rows: int = DEFAULT_CHUNK_ROWS, repeats: int = 2, naive_limit_gib: float = 16.0,
                      seed: int = 0, stream=None) -> dict:
    """Peak memory (MiB) and best time (s) of the banded SimFeatUp and of the naive form on one
    window (``feat_dim`` features on a ``grid`` x ``grid`` patch grid -> 16 * grid pixels), their
    largest difference and the ratios naive / banded, printed to ``stream`` (default stdout).
    The naive form is skipped when its neighbour tensor alone would pass ``naive_limit_gib``."""
    stream = stream or sys.stdout
    device = pick_device(device)
    with seeded(seed):
        model = SimFeatUp(feat_dim).eval()
        source = torch.randn(1, feat_dim, grid, grid)
        guidance = torch.randn(1, 3, 16 * grid, 16 * grid)
    model, source, guidance = model.to(device), source.to(device), guidance.to(device)
    banded = lambda: model(source, guidance, chunk_rows=chunk_rows)
    out = {"feat_dim": feat_dim, "size": 16 * grid, "chunk_rows": chunk_rows, "device": str(device),
           "chunked": {"peak_mib": _mib(_peak_bytes(banded, device)), "seconds": _seconds(banded, device, repeats)}}
    need = naive_bytes(feat_dim, 16 * grid) / 2 ** 30
    if need <= naive_limit_gib:
        naive = lambda: naive_simfeatup(model, source, guidance)
        out["naive"] = {"peak_mib": _mib(_peak_bytes(naive, device)), "seconds": _seconds(naive, device, repeats)}
        out["max_abs_diff"] = float((banded() - naive()).abs().max())
        peaks = out["naive"]["peak_mib"], out["chunked"]["peak_mib"]
        out["memory_ratio"] = None if None in peaks else peaks[0] / max(peaks[1], 1e-9)
        out["time_ratio"] = out["naive"]["seconds"] / max(out["chunked"]["seconds"], 1e-9)
    else:
        out["naive"] = None
        out["naive_skipped"] = f"its neighbour tensor alone needs {need:.1f} GiB (limit {naive_limit_gib:g})"
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)
    c = out["chunked"]
    print(f"SimFeatUp {feat_dim} x {grid}^2 -> {16 * grid}^2 on {device}: banded ({chunk_rows} rows) "
          f"peak {fmt(c['peak_mib'], '.1f')} MiB, {c['seconds']:.3f} s", file=stream)
    if out["naive"] is None:
        print(f"naive: skipped, {out['naive_skipped']}", file=stream)
    else:
        n = out["naive"]
        print(f"naive: peak {fmt(n['peak_mib'], '.1f')} MiB, {n['seconds']:.3f} s; "
              f"max |diff| {out['max_abs_diff']:.2e}", file=stream)
        print(f"ratio naive / banded: memory {fmt(out['memory_ratio'], '.1f')}x, time {out['time_ratio']:.2f}x",
              file=stream)
    return out
