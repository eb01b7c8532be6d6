"""Benchmark of SAM 3 with SegEarth-OV3's fusion: our path against the per-prompt loops.

Up to three paths run on the same image(s) and vocabulary in one process, alternately
(``repeat`` times; the fastest run of each counts), and all end in the same fusion math of
:mod:`rs_helpers.ovss.sam3_fusion` (``view_scores``, ``merge_synonyms``, ``labels_from_scores``),
so that the comparison isolates the batching and the caching:

* **SegEarth-OV3 loop** (the reference of issue #15): ``segearthov3_segmentor.py`` as it runs:
  Meta's ``Sam3Processor.set_image`` encodes the view once, then ``set_text_prompt`` encodes each
  prompt's text and runs the grounding (DETR encoder and decoder, mask head) at batch 1. Here
  ``get_vision_features`` once per view, then ``Sam3Model(vision_embeds=..., input_ids=...)`` per prompt.
* **per-prompt** (``per_prompt=False`` skips it): the naive transformers use, one whole call per
  prompt and view: ``Sam3Processor(images=view, text=prompt)`` and the full ``Sam3Model`` forward
  (vision + text + decoder every time). transformers' processor fuses the rescaling into the
  normalisation, so its pixels differ from Meta's by an ulp and its scores by about 2e-6.
* **ours**: :func:`~rs_helpers.ovss.sam3_fusion.class_scores`: the image encoded once per view,
  the text once per vocabulary (a fresh cache for every timed run, so the text encoding is counted
  once), the prompts grounded ``prompt_batch`` at a time on the cached vision features (1 on a CPU,
  8 on a GPU by default). "Text cached" is that run less its ``sam3_text`` stage (what a warm
  cache saves; nothing else differs).

Each path runs at 1 class and at N classes; the cost of each further class is
``(tN - t1) / (N - 1)``. The checks compare the label maps on every pixel and the class score
maps of the N-class runs (float32). Random weights give the speed of the full architecture
(``Sam3Config()``: 1008 px, 200 queries); speed does not depend on weight values, only the
number of queries kept by the instance head (reported) moves the fusion's share. ``bound`` is
the most any path that still grounds every prompt could gain over the loop:
``loop tN / (loop vision + loop fusion)``, an upper limit read from the same run.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from rs_helpers.bench.proposals import _device_name, bench_images
from rs_helpers.device import pick_device, stage_timer
from rs_helpers.errors import BadInputError
from rs_helpers.ovss.sam3_fusion import (
    Sam3Settings,
    class_scores,
    labels_from_scores,
    merge_synonyms,
    preprocess,
    prompt_rows,
    resolve_bg_idx,
    resolve_prompt_batch,
    view_scores,
    windows_for,
)
from rs_helpers.ovss.vocabulary import TextCache, parse_classes

# Plausible remote-sensing classes; a vocabulary of N classes is the first N (one prompt each).
BENCH_CLASSES = (
    "building", "road", "water", "tree", "low vegetation", "car", "bare soil", "farmland", "forest", "grass",
    "parking lot", "bridge", "ship", "airplane", "swimming pool", "railway", "playground", "tennis court",
    "storage tank", "river", "sea", "sand", "rooftop", "highway", "rangeland", "wetland", "harbor", "greenhouse",
    "solar panel", "container", "stadium", "background",
)
PATHS = ("ours", "segearth", "per_prompt")  # the order each round runs them in
REFERENCES = ("segearth", "per_prompt")
LABELS = {"per_prompt": "per-prompt forward", "segearth": "SegEarth-OV3 loop", "ours": "ours"}
TINY_DESCRIPTION = "tiny random SAM 3 (TINY PROFILE: timings and labels are meaningless)"
TIE = 1e-5  # class scores this close are a tie as far as float32 batching goes
STAGES = ("sam3_text", "sam3_vision", "sam3_decoder", "sam3_fusion", "resize", "labels")


@dataclass
class Sam3BenchConfig:
    """What :func:`run_sam3_bench` measures (``rs-seg bench --method sam3``)."""

    device: str | None = None
    profile: str | None = None
    classes: int = 16
    size: int = 512
    images: int = 1
    repeat: int = 1
    random_weights: bool = False
    prompt_batch: int | None = None  # None: Sam3Settings' default (1 on a CPU, 8 on a GPU)
    per_prompt: bool = True  # also time a whole forward per prompt (full architecture: ~50 s a prompt on 2 CPU cores)

    def __post_init__(self):
        if not 1 <= self.classes <= len(BENCH_CLASSES):
            raise BadInputError(f"--classes {self.classes}: give 1 to {len(BENCH_CLASSES)} (the benchmark's "
                                "fixed list of remote-sensing class names)")
        for name in ("size", "images", "repeat"):
            if getattr(self, name) < 1:
                raise BadInputError(f"--{name} must be a positive integer, got {getattr(self, name)}")
        if self.prompt_batch is not None and self.prompt_batch < 1:
            raise BadInputError(f"--prompt-batch must be a positive integer, got {self.prompt_batch}")


def bench_vocabulary(n: int) -> str:
    """The first ``n`` names of :data:`BENCH_CLASSES` as a class list (``"building;road;..."``)."""
    return ";".join(BENCH_CLASSES[:n])


def random_full_sam3(device):
    """The full SAM 3 architecture (``Sam3Config()`` defaults) with seeded random weights, float32."""
    from rs_helpers.models.sam3 import random_sam3

    return random_sam3(device, torch.float32)


def load_bench_sam3(config: Sam3BenchConfig):
    """(bundle, description): the tiny model, the full architecture with random weights, or SAM 3."""
    from rs_helpers.models.sam3 import load_sam3
    from rs_helpers.profile import is_tiny

    device = pick_device(config.device)
    if is_tiny(config.profile):
        return load_sam3(profile="tiny", device=device, dtype=torch.float32), TINY_DESCRIPTION
    if config.random_weights:
        return random_full_sam3(device), ("SAM 3 full architecture (Sam3Config(), 1008 px) with RANDOM WEIGHTS "
                                          "(speed does not depend on weight values)")
    sam3 = load_sam3(profile="full", device=device, dtype=torch.float32)
    return sam3, f"SAM 3 {sam3.model_id}"


# ----------------------------------------------------------------------------- the per-prompt loops
def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _kept(pred_logits, presence_logits, settings: Sam3Settings) -> int:
    """Queries the instance head keeps (``object_score > confidence_threshold``)."""
    score = pred_logits.float().sigmoid() * presence_logits.float().sigmoid().reshape(-1, 1)
    return int((score > settings.confidence_threshold).sum())


@torch.no_grad()
def per_prompt_view(sam3, view: np.ndarray, prompts, settings: Sam3Settings, timings: dict,
                    stats: dict | None = None) -> torch.Tensor:
    """P x h x w scores of one view, one whole call per prompt: ``Sam3Processor(images=view,
    text=prompt)`` and the full ``Sam3Model`` forward (vision, text, decoder), then the fusion."""
    rows, device = [], sam3.device
    for prompt in prompts:
        with stage_timer(timings, "processor", device):
            inputs = sam3.processor(images=view, text=prompt, return_tensors="pt")
            pixels = inputs["pixel_values"].to(device=device, dtype=sam3.dtype)
            ids, mask = inputs["input_ids"].to(device), inputs["attention_mask"].to(device)
        with stage_timer(timings, "model", device):
            out = sam3.model(pixel_values=pixels, input_ids=ids, attention_mask=mask)
        rows.append(_fuse(out, view.shape[:2], settings, timings, stats, device))
    return torch.cat(rows)


@torch.no_grad()
def segearth_view(sam3, view: np.ndarray, prompts, settings: Sam3Settings, timings: dict,
                  stats: dict | None = None) -> torch.Tensor:
    """P x h x w scores of one view as SegEarth-OV3 runs it: the view encoded once (``set_image``),
    then per prompt its text encoded and the grounding run at batch 1 (``set_text_prompt``)."""
    device, rows = sam3.device, []
    with stage_timer(timings, "vision", device):
        vision = sam3.model.get_vision_features(pixel_values=preprocess(view, sam3.input_size, device, sam3.dtype))
    for prompt in prompts:
        with stage_timer(timings, "text + decoder", device):
            tokens = sam3.tokenizer([prompt], padding="max_length", max_length=sam3.text_length, truncation=True,
                                    return_tensors="pt")
            out = sam3.model(vision_embeds=vision, input_ids=tokens["input_ids"].to(device),
                             attention_mask=tokens["attention_mask"].to(device))
        rows.append(_fuse(out, view.shape[:2], settings, timings, stats, device))
    return torch.cat(rows)


def _fuse(out, size_hw, settings, timings, stats, device) -> torch.Tensor:
    with stage_timer(timings, "fusion", device):
        scores = view_scores(out.pred_logits, out.presence_logits, out.pred_masks, out.semantic_seg,
                             tuple(size_hw), settings)
    if stats is not None:
        stats["kept"] = stats.get("kept", 0) + _kept(out.pred_logits, out.presence_logits, settings)
        stats["prompt_views"] = stats.get("prompt_views", 0) + len(out.pred_logits)
    return scores


VIEW_LOOPS = {"per_prompt": per_prompt_view, "segearth": segearth_view}


@torch.no_grad()
def reference_class_scores(sam3, rgb: np.ndarray, classes, settings: Sam3Settings = Sam3Settings(),
                           loop: str = "per_prompt", timings: dict | None = None,
                           stats: dict | None = None) -> torch.Tensor:
    """C x H x W class scores by one of the per-prompt loops (:data:`VIEW_LOOPS`): the same views
    as :func:`~rs_helpers.ovss.sam3_fusion.prompt_scores` (averaged where they overlap), the same
    synonym merge."""
    vocab = parse_classes(classes)
    prompts, row_class = prompt_rows(vocab)
    timings = {} if timings is None else timings
    view_fn = VIEW_LOOPS[loop]
    height, width = rgb.shape[:2]
    windows = windows_for(height, width, settings, sam3.input_size)
    if len(windows) == 1:
        rows = view_fn(sam3, rgb, prompts, settings, timings, stats)
    else:
        total = torch.zeros((len(prompts), height, width), device=sam3.device)
        count = torch.zeros((1, height, width), device=sam3.device)
        for y1, y2, x1, x2 in windows:
            total[:, y1:y2, x1:x2] += view_fn(sam3, np.ascontiguousarray(rgb[y1:y2, x1:x2]), prompts, settings,
                                              timings, stats)
            count[:, y1:y2, x1:x2] += 1
        rows = total / count
    return merge_synonyms(rows, row_class, len(vocab))


def timed_run(path: str, sam3, rgb: np.ndarray, classes, settings: Sam3Settings, stats: dict | None = None):
    """One timed run of ``path`` (:data:`PATHS`): ({"seconds", "stages"}, class scores, labels)."""
    vocab = parse_classes(classes)
    bg_idx = resolve_bg_idx(vocab, settings)
    timings: dict[str, float] = {}
    _sync(sam3.device)
    start = time.perf_counter()
    if path == "ours":
        scores = class_scores(rgb, vocab, sam3=sam3, settings=settings, text_cache=TextCache(), timings=timings)
    else:
        scores = reference_class_scores(sam3, rgb, vocab, settings, loop=path, timings=timings, stats=stats)
    with stage_timer(timings, "labels", sam3.device):
        labels = labels_from_scores(scores, settings.prob_thd, bg_idx)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "stages": timings}, scores, labels


# ----------------------------------------------------------------------------- the benchmark
def _compare(ours_scores, ours_labels, ref_scores, ref_labels) -> dict:
    """Label maps pixel by pixel and the largest class score difference; a differing pixel is a
    near-tie when the reference's two best classes are within :data:`TIE` there (float32 rounding of
    batched against one-by-one grounding can swap them)."""
    differ = ours_labels != ref_labels
    if ref_scores.shape[0] > 1:
        top2 = torch.topk(ref_scores.float(), 2, dim=0).values
        margin = (top2[0] - top2[1]).cpu().numpy()
    else:
        margin = np.full(ours_labels.shape, np.inf, np.float32)
    return {"labels_equal": not differ.any(), "pixels_differ": int(differ.sum()), "pixels": int(ours_labels.size),
            "differ_beyond_ties": int((differ & (margin > TIE)).sum()),
            "max_score_diff": float((ours_scores.float() - ref_scores.float()).abs().max())}


def _merge_checks(into: dict | None, check: dict) -> dict:
    if into is None:
        return dict(check)
    return {"labels_equal": into["labels_equal"] and check["labels_equal"],
            "pixels_differ": into["pixels_differ"] + check["pixels_differ"],
            "pixels": into["pixels"] + check["pixels"],
            "differ_beyond_ties": into["differ_beyond_ties"] + check["differ_beyond_ties"],
            "max_score_diff": max(into["max_score_diff"], check["max_score_diff"])}


def run_sam3_bench(config: Sam3BenchConfig, sam3=None, log=print) -> dict:
    """Ours, the SegEarth-OV3 loop and (unless skipped) a forward per prompt, at 1 and N classes."""
    if sam3 is None:
        sam3, description = load_bench_sam3(config)
    else:
        description = TINY_DESCRIPTION if sam3.tiny else f"SAM 3 {sam3.model_id}"
    device = sam3.device
    settings = Sam3Settings(prompt_batch=config.prompt_batch)
    run_paths = tuple(p for p in PATHS if config.per_prompt or p != "per_prompt")
    references = tuple(p for p in REFERENCES if p in run_paths)
    counts = sorted({1, config.classes}, reverse=True)  # N first, then 1
    images = bench_images(config.size, config.images)
    if not images:  # pragma: no cover - the samples ship with the package
        raise BadInputError("no sample images to benchmark on")
    totals = {(path, n): 0.0 for path in run_paths for n in counts}
    stages = {path: {} for path in run_paths}
    checks = {path: None for path in references}
    stats: dict = {}
    views = 0
    for name, rgb, _labels in images:
        rgb = np.array(rgb)  # writable (torch.from_numpy warns on read-only PIL buffers)
        views += len(windows_for(*rgb.shape[:2], settings, sam3.input_size))
        if device.type == "cuda":  # kernels and allocator warmed outside the timings
            log("[bench --method sam3] warm-up ...")
            for path in run_paths:
                timed_run(path, sam3, rgb, bench_vocabulary(min(2, config.classes)), settings)
        image_best = {key: None for key in totals}
        for attempt in range(config.repeat):
            for n in counts:
                outputs = {}
                for path in run_paths:
                    log(f"[bench --method sam3] {name}: {LABELS[path]}, {n} class(es) (run {attempt + 1}) ...")
                    run, scores, labels = timed_run(path, sam3, rgb, bench_vocabulary(n), settings,
                                                    stats if (attempt == 0 and n == config.classes
                                                              and path == "segearth") else None)
                    outputs[path] = (scores, labels)
                    if image_best[(path, n)] is None or run["seconds"] < image_best[(path, n)]["seconds"]:
                        image_best[(path, n)] = run
                if attempt == 0 and n == config.classes:
                    for path, sofar in list(checks.items()):
                        checks[path] = _merge_checks(sofar, _compare(*outputs["ours"], *outputs[path]))
        for key, run in image_best.items():
            totals[key] += run["seconds"]
            if key[1] == config.classes:
                for stage, seconds in run["stages"].items():
                    stages[key[0]][stage] = stages[key[0]].get(stage, 0.0) + seconds
    n = config.classes
    paths = {}
    for path in run_paths:
        t_n, t_1 = totals[(path, n)], totals[(path, 1)]
        paths[path] = {"t1_s": t_1, "tN_s": t_n, "per_class_s": (t_n - t_1) / (n - 1) if n > 1 else None,
                       "stages": stages[path]}
    ours = paths["ours"]
    ours["cached_text_tN_s"] = ours["tN_s"] - ours["stages"].get("sam3_text", 0.0)
    ratios = {path: paths[path]["tN_s"] / max(ours["tN_s"], 1e-12) for path in references}
    loop = paths["segearth"]
    shared = loop["stages"].get("vision", 0.0) + loop["stages"].get("fusion", 0.0) + loop["stages"].get("labels", 0.0)
    kept = stats.get("kept", 0) / max(1, stats.get("prompt_views", 0))
    return {
        "model": description, "device": str(device), "device_name": _device_name(device), "dtype": "float32",
        "images": [name for name, _, _ in images], "size": config.size, "views": views,
        "input_size": sam3.input_size, "classes": n, "class_names": list(BENCH_CLASSES[:n]), "repeat": config.repeat,
        "settings": {**asdict(settings), "heads": list(settings.heads)},
        "prompt_batch": resolve_prompt_batch(settings, device), "paths": paths, "ratios": ratios, "checks": checks,
        "kept_queries_per_prompt_view": kept, "bound": loop["tN_s"] / max(shared, 1e-12),
        "headline": {"speedup": ratios["segearth"], "classes": n, "maps_equal": checks["segearth"]["labels_equal"],
                     "max_score_diff": checks["segearth"]["max_score_diff"],
                     "speedup_vs_per_prompt": ratios.get("per_prompt")},
    }


def _s(value) -> str:
    return "n/a" if value is None else f"{value:.3f} s"


def _equal(check: dict) -> str:
    return "yes" if check["labels_equal"] else "no"


def format_sam3_report(result: dict) -> str:
    """The printed report; its last line is the ``sam3: ...`` summary."""
    n, paths, h, batch = result["classes"], result["paths"], result["headline"], result["prompt_batch"]
    references = [p for p in ("per_prompt", "segearth") if p in paths]
    lines = [
        f"rs-seg bench --method sam3: {result['model']}",
        f"device {result['device']} ({result['device_name']}); {result['dtype']}; {len(result['images'])} image(s) "
        f"{result['size']} x {result['size']} ({', '.join(result['images'])}); {result['views']} view(s) at "
        f"{result['input_size']} px; {n} classes ({', '.join(result['class_names'])})"
        + (f"; each path run {result['repeat']} times alternately, fastest run shown" if result["repeat"] > 1 else ""),
        ("SegEarth-OV3 loop = segearthov3_segmentor.py as it runs: the view encoded once (set_image), then per "
         "prompt text + grounding at batch 1 (set_text_prompt)"),
    ]
    if "per_prompt" in paths:
        lines.append("per-prompt forward = per view and prompt: Sam3Processor(images=view, text=prompt) + the whole "
                     "Sam3Model forward (vision + text + grounding)")
    lines += [
        (f"ours = class_scores: image once per view, text once per vocabulary (fresh cache per run), prompts "
         f"grounded {batch} at a time; every path: the same fusion (view_scores, merge_synonyms, labels_from_scores)"),
        "",
    ]
    rows = [("path", "1 class", f"{n} classes", "per extra class", f"ratio at {n}")]
    for path in references + ["ours"]:
        p = paths[path]
        ratio = "1.00x" if path == "ours" else f"{result['ratios'][path]:.2f}x"
        rows.append((LABELS[path], _s(p["t1_s"]), _s(p["tN_s"]), _s(p["per_class_s"]), ratio))
    rows.append(("ours, text cached", "", _s(paths["ours"]["cached_text_tN_s"]), "",
                 f"{paths['segearth']['tN_s'] / max(paths['ours']['cached_text_tN_s'], 1e-12):.2f}x"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines += [f"{r[0]:<{widths[0]}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(r[1:], widths[1:])) for r in rows]
    lines.append("")
    for path in ["ours", "segearth"] + (["per_prompt"] if "per_prompt" in paths else []):
        st = paths[path]["stages"]
        order = [k for k in STAGES[:-1] if k in st] + [k for k in st if k not in STAGES] + ["labels"]
        lines.append(f"{LABELS[path]} stages at {n} classes: " + ", ".join(f"{k} {st[k]:.3f} s" for k in order))
    lines.append(f"instance head: {result['kept_queries_per_prompt_view']:.1f} queries kept per prompt and view "
                 f"(of the model's queries; confidence {result['settings']['confidence_threshold']:g})")
    lines.append(f"bound: a path that grounds every prompt is at most {result['bound']:.2f}x faster than the loop "
                 f"here (the loop's {n}-class time over its vision, fusion and labels)")
    for path in references:
        c = result["checks"][path]
        lines.append(f"checks vs {LABELS[path]} ({n} classes, float32): label maps equal on every pixel: "
                     f"{_equal(c)} ({c['pixels_differ']} of {c['pixels']} differ, "
                     f"{c['differ_beyond_ties']} beyond near-ties of {TIE:g}), "
                     f"max |class score diff| {c['max_score_diff']:.2e}")
    if h["speedup_vs_per_prompt"] is not None:
        lines.append(f"sam3-per-prompt: ours {h['speedup_vs_per_prompt']:.2f}x faster than a forward per prompt "
                     f"({n} classes, maps equal: {_equal(result['checks']['per_prompt'])})")
    lines.append(f"sam3: ours {h['speedup']:.2f}x faster than the SegEarth-OV3 loop ({n} classes, prompt batch "
                 f"{batch}, maps equal: {'yes' if h['maps_equal'] else 'no'}, max score diff {h['max_score_diff']:.2e})")
    return "\n".join(lines)
