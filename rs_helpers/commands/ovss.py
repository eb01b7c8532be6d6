"""``rs-seg ovss``: open-vocabulary segmentation of one image with SAM proposals + CLIP.

``--method clip``: CLIP alone, SegEarth-OV's own segmentation (its dense map, the SimFeatUp
upsampler by default, ``--background-threshold`` as its ``prob_thd``); SAM is never loaded.
``--method sam3``: SAM 3 alone, SegEarth-OV3's fusion of its instance, semantic and presence heads
(``--sam3-heads``, ``--sam3-confidence``, ``--sam3-prob-thd``); neither SAM 1 nor CLIP is loaded.

Several images or a folder: one map per scene in the folder ``--out``, scenes already done
skipped, shared between processes under ``accelerate launch`` (see ``commands/batch.py``).

Writes a class-index PNG (or a GeoTIFF carrying the input's CRS when OUT ends in .tif), a JSON
legend beside it (``map.png`` -> ``map.legend.json``) and prints the share of each class. An
existing output is replaced only with ``--overwrite``; every file appears whole or not at all.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from rs_helpers.commands.options import add_overwrite, finite_float, fraction, nonnegative_float, nonnegative_int, parse_bands, positive_int
from rs_helpers.commands.ovss_methods import (add_sam3_arguments, check_sam3_options, sam3_legend, sam3_model_id,
                                              sam3_settings, sam3_what)
from rs_helpers.errors import BadInputError

TINY_GRID = 8  # default points per side under the tiny profile (its masks are meaningless anyway)


def register(subparsers) -> None:
    from rs_helpers.commands.options import add_common
    from rs_helpers.ovss.clip_dense import DenseSettings
    from rs_helpers.models.clip import DEFAULT_CLIP, DEFAULT_CLIP_PRETRAINED
    from rs_helpers.models.sam import DEFAULT_SAM, SAM_VARIANTS
    from rs_helpers.ovss.pipeline import DEFAULT_GENERATOR, PROPOSAL_GENERATORS, SELECTORS
    from rs_helpers.ovss.clip_only import DEFAULT_METHOD, METHODS, UPSAMPLERS
    from rs_helpers.commands.options import add_scene_arguments

    p = subparsers.add_parser("ovss", help="segment an image into named classes (SAM proposals + CLIP, or CLIP alone)",
                              description=__doc__)
    p.add_argument("image", nargs="+", help="input image (PNG, JPEG, TIFF, GeoTIFF; 1-band and 16-bit are "
                                            "stretched); several images or a folder: --out is a folder")
    p.add_argument("--classes", required=True,
                   help="classes separated by ';', synonyms by ',': \"building,roof;road;water\"")
    p.add_argument("--out", required=True, help="output label raster: .png, or .tif/.tiff for a GeoTIFF "
                                                "(several images: a folder, one map per scene)")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS,
                   help="sam-clip: SAM masks vote on the CLIP map (the paper); clip: CLIP alone, SegEarth-OV's "
                        "own segmentation, no SAM; sam3: SAM 3 alone, SegEarth-OV3's fusion (default %(default)s)")
    p.add_argument("--upsampler", default=None, choices=UPSAMPLERS,
                   help="the dense map's feature upsampler (default: simfeatup with --method clip, as SegEarth-OV; "
                        "none with sam-clip; a random one under the tiny profile; the checkpoint is downloaded once)")
    p.add_argument("--binary", action="store_true", help="one target class: a 0/1 map (union of kept masks)")
    p.add_argument("--target", default=None, help="binary target class (default: the only non-background class)")
    p.add_argument("--sam", default=DEFAULT_SAM, choices=SAM_VARIANTS, help="SAM variant (default %(default)s)")
    p.add_argument("--sam-checkpoint", default=None, help="a local SAM checkpoint instead of the download")
    p.add_argument("--clip", default=DEFAULT_CLIP, help="open_clip model name (default %(default)s)")
    p.add_argument("--clip-pretrained", default=DEFAULT_CLIP_PRETRAINED,
                   help="open_clip pretrained tag or local file (default %(default)s)")
    p.add_argument("--points-per-side", type=positive_int, default=None,
                   help=f"SAM prompt grid n x n (default 29; {TINY_GRID} under the tiny profile)")
    p.add_argument("--points-per-batch", type=positive_int, default=64, help="grid points per SAM batch (memory)")
    p.add_argument("--pred-iou-thresh", type=finite_float, default=0.88)
    p.add_argument("--stability-score-thresh", type=finite_float, default=0.95)
    p.add_argument("--min-region-area", type=nonnegative_int, default=0, help="remove islands/holes smaller than this")
    p.add_argument("--proposals", default=DEFAULT_GENERATOR, choices=sorted(PROPOSAL_GENERATORS),
                   help="proposal generator (default %(default)s)")
    p.add_argument("--selector", default="dense", choices=SELECTORS,
                   help="dense: masks vote on the dense CLIP map; crop: each mask's crop classified")
    p.add_argument("--tau", type=fraction, default=0.5, help="binary: keep masks whose target fraction exceeds this")
    p.add_argument("--max-side", type=nonnegative_int, default=1024,
                   help="working resolution's long side (0: native); the label map is upsampled back")
    p.add_argument("--templates", default=DenseSettings.templates, help="imagenet80, short, aerial, single")
    p.add_argument("--cls-lambda", type=nonnegative_float, default=DenseSettings.cls_lambda,
                   help="global-bias removal (0: off)")
    p.add_argument("--no-sliding-window", action="store_true", help="whole image with interpolated positions")
    p.add_argument("--background-threshold", type=fraction, default=0.0,
                   help="pixels with CLIP max probability below this go to the 'background' class "
                        "(SegEarth-OV's prob_thd with --method clip)")
    add_sam3_arguments(p)
    p.add_argument("--bands", default=None, help="1-based band numbers to read, one or three: 4,3,2")
    p.add_argument("--timings", action="store_true", help="print seconds per stage and peak memory")
    add_scene_arguments(p)  # --tile --overlap --geojson --to-wgs84 --simplify --min-area
    add_overwrite(p)
    add_common(p)
    p.set_defaults(func=run)



def legend_path(out: Path) -> Path:
    """``map.png`` -> ``map.legend.json``: a name that a ``--geojson map.json`` cannot take."""
    return out.with_name(out.stem + ".legend.json")


def check_run_outputs(args, out: Path) -> None:
    """Every file this run will write, checked before any model work (see rs_helpers.files)."""
    from rs_helpers.files import check_outputs

    check_outputs({"--out": out, "the legend": legend_path(out), "--geojson": args.geojson},
                  inputs=[args.image], overwrite=args.overwrite)


def run(args) -> int:
    from rs_helpers.commands.batch import is_batch, run_batch

    if isinstance(args.image, list):
        if is_batch(args.image):
            return run_batch(args, run, lambda out: [out, legend_path(out)], not_per_scene=("--geojson",))
        args.image = args.image[0]
    return run_image(args)


def run_image(args) -> int:
    """One image (or one tiled scene) to one label map."""
    from rs_helpers.commands.batch import cached
    from rs_helpers.distributed import Processes, processes
    from rs_helpers.ovss.clip_dense import DenseSettings
    from rs_helpers.geo.rasters import read_image, write_label_raster
    from rs_helpers.models.clip import check_clip, load_clip
    from rs_helpers.models.sam import load_sam
    from rs_helpers.files import atomic_path, write_json_atomic
    from rs_helpers.ovss.pipeline import OvssSettings, segment
    from rs_helpers.profile import get_profile
    from rs_helpers.sam.proposals import ProposalSettings
    from rs_helpers.ovss.selection import SelectionSettings
    from rs_helpers.geo.tiling import needs_tiling
    from rs_helpers.commands.options import export_from_args
    from rs_helpers.ovss.vocabulary import parse_classes
    from rs_helpers.ovss.clip_only import load_upsampler, segment_clip
    from rs_helpers.models.sam3 import load_sam3
    from rs_helpers.ovss.sam3_fusion import segment_sam3

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".tif", ".tiff"):
        raise BadInputError(f"--out {out}: write .png, .tif or .tiff")
    vocab = parse_classes(args.classes)  # fail fast on a bad class list, before loading models
    if args.binary:  # the same rule the pipeline applies, checked before any model work
        from rs_helpers.ovss.pipeline import resolve_binary

        resolve_binary(vocab, args.target, DenseSettings.background_names)
    elif len(vocab) < 2:
        raise BadInputError(f"only one class ({vocab.names[0]}): list several classes separated by ';' "
                            "or use binary mode (--binary)")
    method, upsampler_name = method_of(args)
    check_run_outputs(args, out)
    profile = get_profile(args.profile)
    tiny = profile == "tiny"
    grid = args.points_per_side or (TINY_GRID if tiny else ProposalSettings.points_per_side)
    settings = clip_only_settings(args) if method == "clip" else OvssSettings(
        proposals=ProposalSettings(points_per_side=grid, points_per_batch=args.points_per_batch,
                                   pred_iou_thresh=args.pred_iou_thresh,
                                   stability_score_thresh=args.stability_score_thresh,
                                   min_mask_region_area=args.min_region_area),
        dense=DenseSettings(templates=args.templates, cls_lambda=args.cls_lambda,
                            sliding_window=not args.no_sliding_window,
                            background_threshold=args.background_threshold),
        selection=SelectionSettings(tau=args.tau),
        selector=args.selector,
        max_side=args.max_side or None,
    )
    if method == "sam3":  # SegEarth-OV3's fusion with the --sam3-* options
        settings = sam3_settings(args)
    bands = parse_bands(args.bands)
    tiled = needs_tiling(args.image, args.tile)  # header only: a large scene is never read whole
    # several processes (accelerate launch / torchrun) share the tiles of one scene; a batch of
    # scenes shares out whole scenes instead (commands/batch.py)
    procs = processes(args.device) if tiled and not hasattr(args, "_models") else Processes()
    args.device = procs.device(args.device)
    image = None if tiled else read_image(args.image, bands=bands)
    check_shapes(args, image, bands)
    sam = clip = upsampler = sam3 = None
    if method == "sam3":  # SAM 3 alone: neither SAM 1 nor CLIP is loaded
        sam3 = cached(args, f"sam3:{sam3_model_id(args)}", lambda: load_sam3(sam3_model_id(args), profile=profile,
                                                                            device=args.device))
    else:
        check_clip(args.clip, args.clip_pretrained, profile=profile)  # a typo is exit 2, not "offline"
        sam = None if method == "clip" else cached(args, "sam", lambda: load_sam(
            args.sam, checkpoint=args.sam_checkpoint, profile=profile, device=args.device))
        clip = cached(args, "clip", lambda: load_clip(args.clip, args.clip_pretrained, profile=profile,
                                                      device=args.device))
        upsampler = cached(args, f"upsampler:{upsampler_name}", lambda: load_upsampler(upsampler_name, clip, profile))
    if tiled:
        return run_scene(args, out, settings, sam, clip, profile, procs, upsampler, sam3=sam3)
    if method == "sam3":
        result = segment_sam3(image, args.classes, sam3=sam3, binary=args.binary, target=args.target,
                              settings=settings)
    elif method == "clip":
        result = segment_clip(image, args.classes, clip=clip, binary=args.binary, target=args.target,
                              settings=settings, upsampler=upsampler)
    else:
        result = segment(image, args.classes, sam=sam, clip=clip, binary=args.binary, target=args.target,
                         settings=settings, generator=args.proposals, upsampler=upsampler)
    with atomic_path(out) as tmp:
        write_label_raster(tmp, result.labels, like=image, palette=result.palette)
    n_masks = len(result.proposals) if result.proposals is not None else 0
    legend = {
        "image": str(args.image), "output": str(out), "binary": result.binary, "target": result.target,
        "method": method, "upsampler": upsampler_label(upsampler_name, tiny),
        "selector": result.selector, "profile": profile,
        "note": "tiny profile: random models, labels are meaningless" if tiny else "",
        "size": [int(v) for v in result.labels.shape], "work_size": list(result.work_size),
        "proposals": n_masks, "classes": result.legend(),
        "settings": json.loads(json.dumps(asdict(settings), default=str)), **sam3_legend(sam3),
    }
    write_json_atomic(legend_path(out), legend)
    print(f"{Path(args.image).name}: {result.labels.shape[1]} x {result.labels.shape[0]} px, "
          + (sam3_what(sam3, settings) if method == "sam3"
             else f"CLIP alone (no SAM), upsampler {upsampler_label(upsampler_name, tiny)}" if method == "clip"
             else f"{n_masks} SAM masks, selector {result.selector}"
             + (f", upsampler {upsampler_label(upsampler_name, tiny)}" if upsampler is not None else "")))
    _print_report(result, out, args.timings)
    export_from_args(args, result.labels, transform=image.transform, crs=image.crs, class_names=result.class_names)
    if tiny:
        print("(tiny profile: random models, these labels are MEANINGLESS)")
    return 0


def method_of(args) -> tuple[str, str]:
    """The method and the upsampler's name. With ``--method clip`` a SAM checkpoint or the crop
    selector is refused (exit 2, before any model: they would silently do nothing); SAM's numbers
    (grid, thresholds, tau) are ignored. With ``--method sam3`` an upsampler is refused too (SAM 3
    makes no CLIP map), and the ``--sam3-*`` options only go with it. The upsampler defaults to
    SegEarth-OV's for CLIP alone and to none for SAM + CLIP (the paper's pipeline as it was)."""
    method = getattr(args, "method", "sam-clip")
    check_sam3_options(args, method)
    if method == "sam3":
        used = [name for name, given in (("--sam-checkpoint", args.sam_checkpoint),
                                         ("--selector crop", args.selector != "dense"),
                                         ("--upsampler", getattr(args, "upsampler", None))) if given]
        if used:
            raise BadInputError(f"{used[0]} has no use with --method sam3 (SAM 3 alone, no SAM 1 masks or CLIP "
                                "map); leave it out or use --method sam-clip")
        return method, "none"
    if method == "clip":
        used = [name for name, given in (("--sam-checkpoint", args.sam_checkpoint),
                                         ("--selector crop", args.selector != "dense")) if given]
        if used:
            raise BadInputError(f"{used[0]} has no use with --method clip (CLIP alone, no SAM masks); leave it "
                                "out or use --method sam-clip")
    default = "simfeatup" if method == "clip" else "none"
    return method, getattr(args, "upsampler", None) or default


def upsampler_label(name: str, tiny: bool) -> str:
    return name + (" (tiny profile: random)" if tiny and name == "simfeatup" else "")


def clip_only_settings(args):
    """``--method clip``: SegEarth-OV's dense path with this command's templates, lambda, window and
    threshold (``--background-threshold`` is its ``prob_thd``, to the class named background)."""
    from dataclasses import replace

    from rs_helpers.ovss.clip_dense import SEGEARTH_OV
    from rs_helpers.ovss.clip_only import ClipOnlySettings

    dense = replace(SEGEARTH_OV, templates=args.templates, cls_lambda=args.cls_lambda,
                    sliding_window=not args.no_sliding_window)
    return ClipOnlySettings(dense=dense, prob_thd=args.background_threshold, max_side=args.max_side or None)


def check_shapes(args, image, bands) -> None:
    """A side too small for the models after resizing, or (tiled) bands or a pixel type that
    cannot be read, stops here, before any model is loaded (header only for a scene)."""
    from rs_helpers.geo.rasters import check_model_shape, describe, plan_image

    from rs_helpers.commands.options import check_vector_args

    if image is not None:
        check_model_shape(image.height, image.width, path=args.image)
        check_vector_args(args, image.crs)
    else:
        from rs_helpers.geo.scene import DEFAULT_TILE

        plan = plan_image(args.image, bands)
        tile = args.tile or DEFAULT_TILE
        check_model_shape(min(plan.height, tile), min(plan.width, tile), path=args.image)
        check_vector_args(args, describe(args.image)["crs"])


def _print_report(result, out: Path, timings: bool) -> None:
    """Per-class pixel shares, optionally seconds per stage and peak memory, and the files written."""
    width = max(len(n) for n in result.shares)
    for name, share in result.shares.items():
        print(f"  {name:<{width}}  {100 * share:6.2f} %")
    if timings:
        print("timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()))
        print("memory (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in result.memory.items()))
    print(f"wrote {out} and {legend_path(out)}")


def scene_segmenter(args, settings, sam, clip, upsampler, sam3=None):
    """The tile segmenter: SAM 3 alone, CLIP alone, SAM + CLIP with an upsampler, or None (segment_scene's own)."""
    if sam3 is not None:
        from rs_helpers.ovss.sam3_fusion import Sam3Tiles

        return Sam3Tiles(args.classes, sam3=sam3, binary=args.binary, target=args.target, settings=settings)
    if sam is None:
        from rs_helpers.ovss.clip_only import ClipTiles

        return ClipTiles(args.classes, clip=clip, binary=args.binary, target=args.target, settings=settings,
                         upsampler=upsampler)
    if upsampler is None:
        return None
    from rs_helpers.geo.scene import OvssTiles

    return OvssTiles(args.classes, sam=sam, clip=clip, binary=args.binary, target=args.target, settings=settings,
                     generator=args.proposals, upsampler=upsampler)


def run_scene(args, out: Path, settings, sam, clip, profile: str, procs, upsampler=None, sam3=None) -> int:
    """The tiled path: windowed reads, nearest-centre stitching, the GeoTIFF written tile by tile."""
    from rs_helpers.files import write_json_atomic
    from rs_helpers.geo.scene import DEFAULT_TILE, segment_scene
    from rs_helpers.commands.options import export_from_args

    method, upsampler_name = method_of(args)
    result = segment_scene(args.image, args.classes, sam=sam, clip=clip, out=out, tile=args.tile or DEFAULT_TILE,
                           overlap=args.overlap, bands=parse_bands(args.bands), binary=args.binary,
                           target=args.target, settings=settings, generator=args.proposals, tags={"profile": profile},
                           procs=procs, segmenter=scene_segmenter(args, settings, sam, clip, upsampler, sam3))
    if result is None:  # another process's tiles: rank 0 writes the map and reports
        return 0
    tiny = profile == "tiny"
    legend = {
        "image": str(args.image), "output": str(out), "binary": result.binary,
        "target": result.class_names[1] if result.binary else None, "method": method,
        "upsampler": upsampler_label(upsampler_name, tiny), "selector": getattr(settings, "selector", "none"),
        "profile": profile, "note": "tiny profile: random models, labels are meaningless" if tiny else "",
        "size": [result.height, result.width], "tiles": result.tiles, "tile": result.tile,
        "overlap": result.overlap, "stitching": "nearest tile centre", "proposals": result.proposals,
        "classes": result.legend(), "settings": json.loads(json.dumps(asdict(settings), default=str)),
        **sam3_legend(sam3),
    }
    write_json_atomic(legend_path(out), legend)
    shared = f", shared by {procs.world} processes" if procs.distributed else ""
    what = (sam3_what(sam3, settings) if method == "sam3" else "CLIP alone (no SAM)" if method == "clip"
            else f"{result.proposals} SAM masks, selector {settings.selector}")
    if method == "clip" or upsampler is not None:
        what += f", upsampler {upsampler_label(upsampler_name, tiny)}"
    print(f"{Path(args.image).name}: {result.width} x {result.height} px in {result.tiles} tiles of {result.tile} px{shared} "
          f"(overlap {result.overlap}), {what}")
    _print_report(result, out, args.timings)
    export_from_args(args, out)
    if tiny:
        print("(tiny profile: random models, these labels are MEANINGLESS)")
    return 0
