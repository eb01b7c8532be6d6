"""``rs-seg eval ovss``: open-vocabulary segmentation on a benchmark (or the shipped samples).

Prints mIoU (multi-class sets) or foreground IoU (binary sets) beside the numbers the paper and
SegEarth-OV report, and writes the summary and per-image results as JSON and CSV.

``--method sam-clip`` (default) is the paper's pipeline; ``--method clip`` is CLIP alone,
SegEarth-OV's own segmentation (no SAM is loaded). ``--protocol`` (default: the dataset's own,
segearth-ov for the 17 benchmarks, native for the samples) sets how the dense map is made and, for
``--method clip``, the threshold to the background; the report names the protocol, its settings
and which of them the method applied.

``--method sam3`` is SAM 3 alone, SegEarth-OV3's fusion (neither SAM 1 nor CLIP is loaded), under
its own protocol: ``segearth-ov3`` (the default on the benchmarks it covers: its per-dataset
thresholds, background index, windows and class names) or ``native`` (the fusion's defaults; the
samples). SegEarth-OV3's reported mIoU is printed beside ours.

Resumable: every finished image is appended to ``OUT.results.jsonl`` at once, and a rerun with
the same settings computes only what is missing (``--fresh`` starts over). Launched by
``accelerate launch`` or ``torchrun``, the images are split between the processes and the
report equals that of one process.
"""
from __future__ import annotations

from pathlib import Path


def register(kinds) -> None:
    from rs_helpers.commands.options import add_common, add_overwrite, fraction, nonnegative_int, positive_int
    from rs_helpers.commands.ovss_methods import add_sam3_arguments
    from rs_helpers.commands.resume import add_resume_options
    from rs_helpers.evaluation.datasets import list_datasets
    from rs_helpers.models.clip import DEFAULT_CLIP, DEFAULT_CLIP_PRETRAINED
    from rs_helpers.models.sam import DEFAULT_SAM, SAM_VARIANTS
    from rs_helpers.ovss.clip_only import DEFAULT_METHOD, METHODS, UPSAMPLERS
    from rs_helpers.ovss.pipeline import DEFAULT_GENERATOR, PROPOSAL_GENERATORS, SELECTORS

    p = kinds.add_parser("ovss", help="open-vocabulary segmentation on a benchmark (mIoU / IoU table)",
                         description=__doc__)
    p.add_argument("--dataset", help=f"one of: {', '.join(list_datasets('ovss'))}")
    p.add_argument("--root", default=None, help="the dataset's folder (default: $RS_HELPERS_BENCHMARKS/<usual name>);"
                                                " not needed for --dataset samples")
    p.add_argument("--split", default=None, help="split (default: the protocol's)")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS,
                   help="sam-clip: SAM masks vote on the CLIP map (the paper); clip: CLIP alone, SegEarth-OV's "
                        "own segmentation, no SAM; sam3: SAM 3 alone, SegEarth-OV3's fusion (default %(default)s)")
    p.add_argument("--protocol", default=None,
                   help="segearth-ov or native (default: the dataset's own; segearth-ov for the 17 benchmarks, "
                        "native for the samples); --method sam3: segearth-ov3 or native (default segearth-ov3 "
                        "where it covers the dataset)")
    p.add_argument("--upsampler", default=None, choices=UPSAMPLERS,
                   help="the dense map's feature upsampler (default: the protocol's; segearth-ov: simfeatup, "
                        "native: none; random under the tiny profile)")
    p.add_argument("--limit", type=positive_int, default=None, help="evaluate the first N images only")
    p.add_argument("--out", default=None, help="results JSON (CSV files beside it); "
                                               "default outputs/eval_ovss_<dataset>_<split>.json")
    p.add_argument("--sam", default=DEFAULT_SAM, choices=SAM_VARIANTS, help="SAM variant (default %(default)s)")
    p.add_argument("--sam-checkpoint", default=None, help="a local SAM checkpoint instead of the download")
    p.add_argument("--clip", default=DEFAULT_CLIP, help="open_clip model name (default %(default)s)")
    p.add_argument("--clip-pretrained", default=DEFAULT_CLIP_PRETRAINED, help="open_clip pretrained tag or file")
    p.add_argument("--points-per-side", type=positive_int, default=None, help="SAM grid n x n (default 29; 8 under tiny)")
    p.add_argument("--points-per-batch", type=positive_int, default=64, help="grid points per SAM batch (memory)")
    p.add_argument("--selector", default="dense", choices=SELECTORS, help="dense (mask votes) or crop")
    p.add_argument("--proposals", default=DEFAULT_GENERATOR, choices=sorted(PROPOSAL_GENERATORS),
                   help="proposal generator (default %(default)s)")
    p.add_argument("--tau", type=fraction, default=0.5, help="binary sets: keep masks whose target fraction exceeds this")
    p.add_argument("--max-side", type=nonnegative_int, default=1024, help="working resolution's long side (0: native)")
    p.add_argument("--templates", default="imagenet80", help="prompt templates: imagenet80, short, aerial, single")
    add_sam3_arguments(p, protocol=True)
    p.add_argument("--list", action="store_true", help="list the benchmarks with their protocol and numbers")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_resume_options(p)
    add_overwrite(p)
    add_common(p)
    p.set_defaults(func=run)


def list_table() -> str:
    """The benchmarks with their kind, metric, protocol and the published numbers: the paper's,
    SegEarth-OV's and SegEarth-OV3's (SAM 3; only the four it states in its text)."""
    from rs_helpers.evaluation.datasets import dataset_class, list_datasets
    from rs_helpers.evaluation.protocols_sam3 import REPORTED_MIOU

    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    rows = [f"{'name':<14} {'kind':<10} {'metric':<6} {'paper':>6} {'SegEarth-OV':>11} {'SegEarth-OV3':>12}  protocol"]
    for name in list_datasets("ovss"):
        cls = dataset_class(name)
        metric = {"binary": "IoU", "multiclass": "mIoU"}.get(cls.kind, "both")
        rows.append(f"{name:<14} {cls.kind:<10} {metric:<6} {fmt(cls.paper):>6} {fmt(cls.segearth_ov):>11} "
                    f"{fmt(REPORTED_MIOU.get(name)):>12}  {cls.protocol}")
    rows.append("SegEarth-OV3 (SAM 3, --method sam3 --protocol segearth-ov3): arXiv 2512.08730 states these four "
                "in its text; its other tables are images, not recorded here.")
    return "\n".join(rows)


def run(args) -> int:
    from rs_helpers.commands.ovss import TINY_GRID
    from rs_helpers.commands.ovss_methods import check_sam3_options
    from rs_helpers.evaluation.datasets import get_dataset
    from rs_helpers.errors import BadInputError
    from rs_helpers.models.clip import check_clip, load_clip
    from rs_helpers.models.sam import load_sam
    from rs_helpers.commands.resume import keep_on_interrupt, open_log
    from rs_helpers.distributed import processes
    from rs_helpers.ovss.pipeline import OvssSettings
    from rs_helpers.evaluation.ovss_eval import (clip_segmenter, evaluate, format_table, lazy_segmenter,
                                                 model_segmenter, write_results)
    from rs_helpers.evaluation.method_settings import clip_settings, dense_settings, scope, upsampler_name
    from rs_helpers.evaluation.protocols import default_protocol, get_protocol
    from rs_helpers.ovss.clip_only import load_upsampler
    from rs_helpers.profile import TINY_BANNER, get_profile
    from rs_helpers.sam.proposals import ProposalSettings
    from rs_helpers.ovss.selection import SelectionSettings

    if args.list:
        print(list_table())
        return 0
    if not args.dataset:
        raise BadInputError("name a benchmark with --dataset (see --list)")
    dataset = get_dataset(args.dataset, root=args.root, split=args.split)  # layout errors before loading models
    profile = get_profile(args.profile)
    tiny = profile == "tiny"
    grid = args.points_per_side or (TINY_GRID if tiny else ProposalSettings.points_per_side)
    out = Path(args.out or f"outputs/eval_ovss_{dataset.name}_{dataset.split}.json")
    if out.suffix.lower() != ".json":
        raise BadInputError(f"--out {out}: give a .json path (CSV files are written beside it)")
    if args.method == "sam3":
        return run_sam3(args, dataset, out, profile)
    check_sam3_options(args, args.method)
    protocol = (get_protocol(args.protocol, dataset.name, "ovss") if args.protocol is not None
                else default_protocol(dataset.name, "ovss"))
    upsampler = upsampler_name(protocol, args.method, args.upsampler)
    clip_only = args.method == "clip"
    if clip_only and (args.sam_checkpoint or args.selector != "dense"):
        raise BadInputError(f"--{'sam-checkpoint' if args.sam_checkpoint else 'selector'} has no use with "
                            "--method clip (CLIP alone, no SAM masks); leave it out or use --method sam-clip")
    settings = OvssSettings(proposals=ProposalSettings(points_per_side=grid, points_per_batch=args.points_per_batch),
                            dense=dense_settings(protocol, args.templates),
                            selection=SelectionSettings(tau=args.tau), selector=args.selector,
                            max_side=args.max_side or None)
    described = {"method": args.method, "protocol": protocol.name, "upsampler": upsampler,
                 "clip": f"{args.clip}/{args.clip_pretrained}", "max_side": args.max_side, "templates": args.templates}
    if not clip_only:  # SAM's settings change nothing for CLIP alone: a resumed clip run does not compare them
        described.update({"sam": args.sam, "points_per_side": grid, "selector": args.selector, "tau": args.tau})
    recorded = {"eval": "ovss", "dataset": dataset.name, "split": dataset.split, "root": str(dataset.root or ""),
                "dataset_protocol": dataset.protocol, "profile": profile, **described}
    if not clip_only:
        recorded.update({"proposals": args.proposals, "sam_checkpoint": str(args.sam_checkpoint or "")})
    procs = processes(args.device)
    # checked now, not after hours of evaluation; a results file of the same settings resumes
    log = open_log(args, {"--out": out, "its images CSV": out.with_name(out.stem + "_images.csv"),
                          "its summary CSV": out.with_name(out.stem + "_summary.csv")},
                   inputs=[args.root, args.sam_checkpoint], settings=recorded, procs=procs)
    if tiny and procs.main:
        print(TINY_BANNER)
    check_clip(args.clip, args.clip_pretrained, profile=profile)  # a typo is exit 2, not "offline"
    device = procs.device(args.device)

    def build():  # only a process with samples left to do loads the models (SAM only for sam-clip)
        clip = load_clip(args.clip, args.clip_pretrained, profile=profile, device=device)
        up = load_upsampler(upsampler, clip, profile=profile)
        if clip_only:
            return clip_segmenter(clip, clip_settings(protocol, args.templates, args.max_side), upsampler=up)
        sam = load_sam(args.sam, checkpoint=args.sam_checkpoint, profile=profile, device=device)
        return model_segmenter(sam, clip, settings, generator=args.proposals, upsampler=up)

    line = scope(protocol, args.method, upsampler, args.max_side, tiny)
    with keep_on_interrupt(log):
        report = evaluate(dataset, lazy_segmenter(build), limit=args.limit, progress=not args.no_progress,
                          profile=profile, settings=described, log=log, procs=procs, protocol=protocol, scope=line)
    if not procs.main:
        return 0
    written = write_results(report, out)
    print(format_table(report))
    print("wrote " + ", ".join(str(p) for p in written) + f" (per-sample results: {log.path})")
    return 0


def run_sam3(args, dataset, out: Path, profile: str) -> int:
    """``--method sam3``: SAM 3 alone under segearth-ov3 (or native), SegEarth-OV3's numbers beside ours."""
    from rs_helpers.commands.ovss_methods import sam3_model_id, sam3_settings
    from rs_helpers.commands.resume import keep_on_interrupt, open_log
    from rs_helpers.distributed import processes
    from rs_helpers.errors import BadInputError
    from rs_helpers.evaluation.method_settings import (sam3_base_settings, sam3_class_map, sam3_describe,
                                                       sam3_protocol, sam3_scope)
    from rs_helpers.evaluation.ovss_eval import evaluate, format_table, lazy_segmenter, sam3_segmenter, write_results
    from rs_helpers.models.sam3 import load_sam3
    from rs_helpers.profile import TINY_BANNER

    used = [name for name, given in (("--sam-checkpoint", args.sam_checkpoint), ("--selector crop", args.selector != "dense"),
                                     ("--upsampler", args.upsampler)) if given]
    if used:
        raise BadInputError(f"{used[0]} has no use with --method sam3 (SAM 3 alone, no SAM 1 masks or CLIP map); "
                            "leave it out or use --method sam-clip")
    protocol = sam3_protocol(args.protocol, dataset.name)
    settings = sam3_settings(args, sam3_base_settings(protocol))
    class_map = sam3_class_map(protocol)
    model_id = sam3_model_id(args)
    # everything that changes a prediction, so that a resumed run only reuses results of the same settings
    described = {"method": "sam3", "protocol": "native" if protocol is None else protocol.name, "sam3": model_id,
                 "heads": ",".join(settings.heads), "confidence_threshold": settings.confidence_threshold,
                 "prob_thd": settings.prob_thd, "bg_idx": settings.bg_idx, "slide_crop": settings.slide_crop,
                 "slide_stride": settings.slide_stride, "class_names": class_map}
    recorded = {"eval": "ovss", "dataset": dataset.name, "split": dataset.split, "root": str(dataset.root or ""),
                "dataset_protocol": dataset.protocol, "profile": profile, **described}
    procs = processes(args.device)
    log = open_log(args, {"--out": out, "its images CSV": out.with_name(out.stem + "_images.csv"),
                          "its summary CSV": out.with_name(out.stem + "_summary.csv")},
                   inputs=[args.root], settings=recorded, procs=procs)
    if profile == "tiny" and procs.main:
        print(TINY_BANNER)
    device = procs.device(args.device)

    def build():  # only a process with samples left to do loads SAM 3 (never SAM 1 or CLIP)
        sam3 = load_sam3(model_id, profile=profile, device=device)
        return sam3_segmenter(sam3, settings, class_map=class_map)

    with keep_on_interrupt(log):
        report = evaluate(dataset, lazy_segmenter(build), limit=args.limit, progress=not args.no_progress,
                          profile=profile, settings=described, log=log, procs=procs)
    if not procs.main:
        return 0
    report.protocol_name = described["protocol"]
    report.protocol_settings = sam3_describe(protocol, settings)
    shown = model_id + (" asked for; tiny profile: a random tiny SAM 3" if profile == "tiny" else "")
    report.protocol_scope = sam3_scope(protocol, settings, shown, class_map)
    report.reported = {"SegEarth-OV3": None if protocol is None else protocol.reported_miou}
    written = write_results(report, out)
    print(format_table(report))
    print("wrote " + ", ".join(str(p) for p in written) + f" (per-sample results: {log.path})")
    return 0
