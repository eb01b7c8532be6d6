"""Benchmark of SAM grid proposals: the reference generator, the fast path and the floor.

:func:`run_bench` runs on the same images in one process:

* the reference (``generate_reference``: segment-anything's ``SamAutomaticMaskGenerator``),
  with hooks timing its image encoder and mask decoder;
* the floor: the unmodified encoder plus the unmodified decoder forward for every grid point,
  fp32, i.e. exactly the reference run's encoder and decoder time (taken from those hooks);
* the fast path (:func:`rs_helpers.sam.fast_proposals.generate_fast`) with its own stage timings;

and compares the masks (share of each side's masks with a partner of IoU >= 0.95). Random-weight
masks are noisy, which inflates the reference's post-processing cost, so post-processing is also
compared on masks of realistic shape: decoder logits built from a sample's ground-truth regions
(:mod:`rs_helpers.bench.masks`), fed to both post-processing paths.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from rs_helpers.bench.masks import MATCH_IOU, _sync, compare_postprocessing
from rs_helpers.sam.fast_proposals import generate_fast, mask_match
from rs_helpers.sam.proposals import ProposalSettings, Proposals, grid_points
from rs_helpers.sam.timings import Timings


@dataclass
class PathResult:
    """One path's time per stage (seconds, summed over images), peak memory and masks."""

    stages: dict = field(default_factory=dict)
    total: float = 0.0
    peak_mib: float = 0.0
    masks: int = 0

    def add(self, stages: dict, total: float, peak_bytes: int, masks: int) -> None:
        for k, v in stages.items():
            self.stages[k] = self.stages.get(k, 0.0) + v
        self.total += total
        self.peak_mib = max(self.peak_mib, peak_bytes / 2**20)
        self.masks += masks


def bench_images(size: int, count: int = 1) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, RGB, class labels) of the first ``count`` Dubai samples, centre-cropped square and
    resized to ``size`` x ``size`` (bilinear image, nearest labels)."""
    from PIL import Image

    from rs_helpers.samples import list_samples

    out = []
    for sample in [s for s in list_samples() if s.name.startswith("dubai")][:count]:
        image, labels = sample.load()
        h, w = labels.shape
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        rgb = Image.fromarray(image.rgb[y0:y0 + side, x0:x0 + side]).resize((size, size), Image.BILINEAR)
        lab = Image.fromarray(labels[y0:y0 + side, x0:x0 + side]).resize((size, size), Image.NEAREST)
        out.append((sample.name, np.asarray(rgb), np.asarray(lab)))
    return out


def timed_reference(sam, image: np.ndarray, settings: ProposalSettings, device) -> tuple[Proposals, dict, float, int]:
    """Run ``generate_reference`` with forward hooks on the encoder and the mask decoder.
    Returns (proposals, {"sam encoder", "sam decoder"} seconds, total seconds, peak bytes)."""
    from rs_helpers.sam.proposals import generate_reference

    spent = {"sam encoder": 0.0, "sam decoder": 0.0}
    started = {}
    hooks = []
    for name, module in (("sam encoder", sam.image_encoder), ("sam decoder", sam.mask_decoder)):
        def pre(_m, _a, name=name):
            _sync(device)
            started[name] = time.perf_counter()

        def post(_m, _a, _o, name=name):
            _sync(device)
            spent[name] += time.perf_counter() - started[name]

        hooks += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    timings = Timings(device)
    try:
        with timings.stage("reference"):
            start = time.perf_counter()
            proposals = generate_reference(sam, image, settings)
            _sync(device)
            total = time.perf_counter() - start
    finally:
        for hook in hooks:
            hook.remove()
    return proposals, spent, total, timings.peak_bytes


def timed_fast(sam, image: np.ndarray, settings: ProposalSettings, device, **options) -> tuple[Proposals, Timings, float]:
    timings = Timings(device)
    _sync(device)
    start = time.perf_counter()
    proposals = generate_fast(sam, image, settings, timings=timings, **options)
    _sync(device)
    return proposals, timings, time.perf_counter() - start


def decoder_agreement(sam, image: np.ndarray, device, points: int = 8, **options) -> dict:
    """The fast encoder + decoder (with the fast path's dtype) against the unmodified ones
    (fp32) on ``points`` grid points of ``image``: the largest logit difference relative to the
    largest logit, the share of low-resolution mask pixels of equal sign, the largest IoU gap."""
    from segment_anything.utils.transforms import ResizeLongestSide

    from rs_helpers.sam.fast_decoder import FastDecoder
    from rs_helpers.sam.fast_encoder import sdpa_attention
    from rs_helpers.sam.fast_proposals import _autocast

    transform = ResizeLongestSide(sam.image_encoder.img_size)
    h, w = image.shape[:2]
    grid = grid_points(int(np.ceil(np.sqrt(points))), w, h)[:points]
    with torch.no_grad():
        x = torch.as_tensor(transform.apply_image(image), device=device).permute(2, 0, 1).contiguous()[None]
        x = sam.preprocess(x)
        coords = torch.as_tensor(transform.apply_coords(grid, (h, w)), device=device)[:, None, :]
        labels = torch.ones(len(grid), 1, dtype=torch.int, device=device)
        sparse, dense = sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        embedding = sam.image_encoder(x)
        ref_low, ref_iou = sam.mask_decoder(embedding, sam.prompt_encoder.get_dense_pe(), sparse, dense, True)
        with _autocast(torch.device(device), options.get("dtype")):
            with sdpa_attention(sam.image_encoder):
                fast_embedding = sam.image_encoder(x)
            decoder = FastDecoder(sam)
            low, iou = decoder(sparse, *decoder.prepare(fast_embedding))
    scale = ref_low.abs().max().clamp(min=1e-12)
    return {"points": len(grid), "max_logit_diff_rel": float((low - ref_low).abs().max() / scale),
            "sign_agreement": float(((low > 0) == (ref_low > 0)).float().mean()),
            "max_iou_diff": float((iou - ref_iou).abs().max())}


# ----------------------------------------------------------------------------- the benchmark
@dataclass
class BenchConfig:
    """What :func:`run_bench` measures (the ``rs-seg bench`` options)."""

    variant: str = "vit_b"
    device: str | None = None
    points_per_side: int = 16
    size: int = 512
    images: int = 1
    profile: str | None = None
    random_weights: bool = False
    margin: float | None = None
    compile: bool = False
    batch_size: int | None = None
    realistic: bool = True
    repeat: int = 1  # runs per path and image, alternating; the fastest counts (shared machines)


def liven_random_sam(sam, scale: float = 100.0) -> None:
    """Give a random-weight SAM masks with large logits and predicted IoU near 0.95 (as the tiny
    profile does), so that the filters have something to pass. Masks stay meaningless."""
    with torch.no_grad():
        for mlp in sam.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(scale)
            mlp.layers[-1].bias.mul_(scale)
        head = sam.mask_decoder.iou_prediction_head.layers[-1]
        head.weight.mul_(0.01)
        head.bias.fill_(0.95)


def load_bench_sam(config: BenchConfig):
    """(sam, description) for the benchmark: tiny, random weights, or the real checkpoint."""
    from rs_helpers.device import pick_device
    from rs_helpers.models.sam import build_sam_architecture, load_sam
    from rs_helpers.profile import announce_tiny, is_tiny

    device = pick_device(config.device)
    if is_tiny(config.profile):
        announce_tiny(f"SAM (asked for {config.variant})")
        sam = build_sam_architecture("tiny").eval().to(device)
        return sam, "tiny random SAM (TINY PROFILE: timings and masks are meaningless)"
    if config.random_weights:
        sam = build_sam_architecture(config.variant).eval().to(device)
        liven_random_sam(sam)
        return sam, (f"SAM {config.variant} with RANDOM WEIGHTS (speed does not depend on weight values; "
                     "hypernetwork outputs x100 and IoU head 0.95 as in the tiny profile; masks are meaningless)")
    return load_sam(config.variant, device=device), f"SAM {config.variant} (official weights)"


def _device_name(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import os
    import platform

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"CPU {platform.machine()}, {torch.get_num_threads()} threads, load average {load:.1f}"


def run_bench(config: BenchConfig, sam=None, log=print) -> dict:
    """Reference, fast path and floor on the same images; returns a JSON-ready dict."""
    from rs_helpers.device import pick_device

    device = pick_device(config.device)
    description = "given model"
    if sam is None:
        sam, description = load_bench_sam(config)
    settings = ProposalSettings(points_per_side=config.points_per_side)
    options = {k: v for k, v in (("margin", config.margin), ("batch_size", config.batch_size)) if v is not None}
    options["compile"] = config.compile
    images = bench_images(config.size, config.images)
    if device.type == "cuda" or config.compile:  # warm up kernels (and compile) outside the timings
        warm = ProposalSettings(points_per_side=2)
        timed_reference(sam, images[0][1], warm, device)
        timed_fast(sam, images[0][1], settings if config.compile else warm, device, **options)
    ref, fast = PathResult(), PathResult()
    matched, realistic, agreement = [], [], []
    for name, rgb, labels in images:
        best_ref = best_fast = None
        for attempt in range(max(1, config.repeat)):  # alternate the paths; keep each one's fastest run
            log(f"[bench] {name}: reference (run {attempt + 1}) ...")
            run = timed_reference(sam, rgb, settings, device)
            best_ref = run if best_ref is None or run[2] < best_ref[2] else best_ref
            log(f"[bench] {name}: fast (run {attempt + 1}) ...")
            run = timed_fast(sam, rgb, settings, device, **options)
            best_fast = run if best_fast is None or run[2] < best_fast[2] else best_fast
        ref_props, spent, total, peak = best_ref
        ref.add({**spent, "post-processing": total - sum(spent.values())}, total, peak, len(ref_props))
        fast_props, timings, total = best_fast
        stages = {k: timings.seconds(k) for k in ("sam encoder", "sam decoder")}
        stages["post-processing"] = total - sum(stages.values())
        stages.update({f"  {k}": v.seconds for k, v in timings.stages.items() if k not in stages})
        fast.add(stages, total, timings.peak_bytes, len(fast_props))
        matched.append(mask_match(ref_props.masks, fast_props.masks, MATCH_IOU))
        agreement.append(decoder_agreement(sam, rgb, device, **{k: v for k, v in options.items() if k == "dtype"}))
        if config.realistic:
            log(f"[bench] {name}: post-processing on realistic masks ...")
            realistic.append(compare_postprocessing(labels, settings, sam.image_encoder.img_size, device,
                                                    config.margin, repeat=config.repeat))
    floor = {"sam encoder": ref.stages["sam encoder"], "sam decoder": ref.stages["sam decoder"]}
    floor["total"] = sum(floor.values())
    result = {
        "model": description, "variant": config.variant, "device": str(device), "device_name": _device_name(device),
        "images": [name for name, _, _ in images], "size": config.size, "points_per_side": config.points_per_side,
        "repeat": config.repeat,
        "settings": asdict(settings), "options": {k: str(v) for k, v in options.items()},
        "reference": asdict(ref), "fast": asdict(fast), "floor": floor,
        "match": {"reference_in_fast": float(np.mean([m[0] for m in matched])),
                  "fast_in_reference": float(np.mean([m[1] for m in matched]))},
        "realistic": _sum_realistic(realistic) if realistic else None,
        "decoder_agreement": {"points": sum(a["points"] for a in agreement),
                              "max_logit_diff_rel": max(a["max_logit_diff_rel"] for a in agreement),
                              "sign_agreement": min(a["sign_agreement"] for a in agreement),
                              "max_iou_diff": max(a["max_iou_diff"] for a in agreement)},
        "synthetic_weights": description != f"SAM {config.variant} (official weights)",
    }
    result["headline"] = _headline(result)
    return result


def _sum_realistic(rows: list[dict]) -> dict:
    out = {k: sum(r[k] for r in rows) for k in ("reference_s", "fast_s", "reference_masks", "fast_masks", "candidates")}
    for k in ("matched_reference", "matched_fast"):
        out[k] = float(np.mean([r[k] for r in rows]))
    return out


def _headline(result: dict) -> dict:
    """Totals for the last line. With synthetic weights the model run's masks are noise, so the
    post-processing time and the mask comparison come from the realistic masks when measured."""
    ref, fast, floor = result["reference"], result["fast"], result["floor"]
    use_realistic = result["synthetic_weights"] and result["realistic"] is not None
    if use_realistic:
        real = result["realistic"]
        ref_total = ref["stages"]["sam encoder"] + ref["stages"]["sam decoder"] + real["reference_s"]
        fast_total = fast["stages"]["sam encoder"] + fast["stages"]["sam decoder"] + real["fast_s"]
        masks_fast, masks_ref = real["fast_masks"], real["reference_masks"]
        matched = min(real["matched_reference"], real["matched_fast"])
    else:
        ref_total, fast_total = ref["total"], fast["total"]
        masks_fast, masks_ref = fast["masks"], ref["masks"]
        matched = min(result["match"]["reference_in_fast"], result["match"]["fast_in_reference"])
    return {"reference_s": ref_total, "fast_s": fast_total, "floor_s": floor["total"],
            "speedup": ref_total / fast_total, "floor_ratio": fast_total / floor["total"],
            "masks_fast": masks_fast, "masks_reference": masks_ref, "matched": matched,
            "post_processing_from": "realistic masks" if use_realistic else "model run"}


def format_report(result: dict) -> str:
    """The printed report; its last line is the ``proposals: ...`` summary."""
    ref, fast, floor, h = result["reference"], result["fast"], result["floor"], result["headline"]
    n = result["points_per_side"]
    st = result["settings"]
    lines = [
        f"rs-seg bench: {result['model']}",
        f"device {result['device']} ({result['device_name']}); {len(result['images'])} image(s) "
        f"{result['size']} x {result['size']} ({', '.join(result['images'])}); {n} x {n} grid = {n * n} points; "
        f"thresholds: predicted IoU {st['pred_iou_thresh']}, stability {st['stability_score_thresh']}, "
        f"box NMS {st['box_nms_thresh']}; fast options {result['options']}",
        "floor = the unmodified encoder + the unmodified decoder forward for every grid point, fp32 "
        "(measured by hooks inside the reference run)"
        + (f"; each path run {result['repeat']} times alternately, fastest run shown" if result["repeat"] > 1 else ""),
        "",
    ]
    rows = [("stage", "reference s", "fast s", "floor s")]
    for stage in ("sam encoder", "sam decoder"):
        rows.append((stage, f"{ref['stages'][stage]:.2f}", f"{fast['stages'][stage]:.2f}", f"{floor[stage]:.2f}"))
    rows.append(("post-processing (model run)", f"{ref['stages']['post-processing']:.2f}",
                 f"{fast['stages']['post-processing']:.2f}", "-"))
    for k, v in fast["stages"].items():
        if k.startswith("  "):
            rows.append((k, "", f"{v:.2f}", ""))
    real = result["realistic"]
    if real:
        rows.append(("post-processing (realistic masks)", f"{real['reference_s']:.2f}", f"{real['fast_s']:.2f}", "-"))
    rows.append(("total (model run)", f"{ref['total']:.2f}", f"{fast['total']:.2f}", f"{floor['total']:.2f}"))
    if h["post_processing_from"] == "realistic masks":
        rows.append(("total (post-processing on realistic masks)", f"{h['reference_s']:.2f}", f"{h['fast_s']:.2f}",
                     f"{floor['total']:.2f}"))
    rows.append(("peak memory MiB (model run)", f"{ref['peak_mib']:.0f}", f"{fast['peak_mib']:.0f}", ""))
    width = max(len(r[0]) for r in rows)
    lines += [f"{r[0]:<{width}}  {r[1]:>11}  {r[2]:>8}  {r[3]:>8}" for r in rows]
    m = result["match"]
    noise = " (random-weight masks: noise)" if result["synthetic_weights"] else ""
    lines += ["", f"model run masks{noise}: reference {ref['masks']}, fast {fast['masks']}; "
              f"{100 * m['reference_in_fast']:.1f}% of reference masks have a fast mask with IoU >= {MATCH_IOU}, "
              f"{100 * m['fast_in_reference']:.1f}% vice versa"]
    d = result["decoder_agreement"]
    lines.append(f"fast encoder + decoder vs unmodified (fp32) on {d['points']} grid points: max logit difference "
                 f"{d['max_logit_diff_rel']:.1e} of the largest logit, {100 * d['sign_agreement']:.3f}% of "
                 f"low-resolution mask pixels agree, max predicted-IoU difference {d['max_iou_diff']:.1e}")
    if real:
        lines.append(f"realistic masks: decoder logits made from the shipped ground-truth regions of "
                     f"{', '.join(result['images'])} (per grid point: the point's region cut to a disc, the region, "
                     f"its whole class; logits 8 x signed distance), {real['candidates']} candidates through both "
                     f"post-processings: reference {real['reference_masks']}, fast {real['fast_masks']} masks; "
                     f"matched {100 * real['matched_reference']:.1f}% / {100 * real['matched_fast']:.1f}%")
    lines.append(f"headline: encoder and decoder from the model run, post-processing and masks from the "
                 f"{h['post_processing_from']}")
    lines.append(f"proposals: fast {h['speedup']:.2f}x faster than reference, {h['floor_ratio']:.2f}x the floor "
                 f"(masks {h['masks_fast']} vs {h['masks_reference']}, matched {100 * h['matched']:.1f}%)")
    return "\n".join(lines)


def memory_probe(sam, size: int, points_per_side: int, device, **options) -> dict:
    """Peak memory of the fast path alone on one ``size`` x ``size`` image (a sample resized)."""
    from PIL import Image

    from rs_helpers.sam.timings import rss_bytes

    rgb = bench_images(512, 1)[0][1]
    image = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    before = rss_bytes()
    proposals, timings, total = timed_fast(sam, image, ProposalSettings(points_per_side=points_per_side), device,
                                           **options)
    return {"size": size, "points_per_side": points_per_side, "seconds": total, "masks": len(proposals),
            "output_mib": proposals.masks.nbytes / 2**20, "rss_before_mib": before / 2**20,
            "peak_mib": timings.peak_bytes / 2**20, "peak_kind": timings.peak_kind, "stages": timings.table()}
