"""``rs-seg eval ovss``: open-vocabulary segmentation on a benchmark (or the shipped samples).

Prints mIoU (multi-class sets) or foreground IoU (binary sets) beside the numbers the paper and
SegEarth-OV report, and writes the summary and per-image results as JSON and CSV.
"""
from __future__ import annotations

from pathlib import Path


def register(kinds) -> None:
    from rs_helpers.commands.options import add_common, add_overwrite, fraction, nonnegative_int, positive_int
    from rs_helpers.evaluation.datasets import list_datasets
    from rs_helpers.models.clip import DEFAULT_CLIP, DEFAULT_CLIP_PRETRAINED
    from rs_helpers.models.sam import DEFAULT_SAM, SAM_VARIANTS
    from rs_helpers.ovss.pipeline import DEFAULT_GENERATOR, PROPOSAL_GENERATORS, SELECTORS

    p = kinds.add_parser("ovss", help="open-vocabulary segmentation on a benchmark (mIoU / IoU table)",
                         description=__doc__)
    p.add_argument("--dataset", help=f"one of: {', '.join(list_datasets('ovss'))}")
    p.add_argument("--root", default=None, help="the dataset's folder (default: $RS_HELPERS_BENCHMARKS/<usual name>);"
                                                " not needed for --dataset samples")
    p.add_argument("--split", default=None, help="split (default: the protocol's)")
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
    p.add_argument("--list", action="store_true", help="list the benchmarks with their protocol and numbers")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_overwrite(p)
    add_common(p)
    p.set_defaults(func=run)


def list_table() -> str:
    from rs_helpers.evaluation.datasets import dataset_class, list_datasets

    rows = [f"{'name':<14} {'kind':<10} {'metric':<6} {'paper':>6} {'SegEarth-OV':>11}  protocol"]
    for name in list_datasets("ovss"):
        cls = dataset_class(name)
        metric = {"binary": "IoU", "multiclass": "mIoU"}.get(cls.kind, "both")
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        rows.append(f"{name:<14} {cls.kind:<10} {metric:<6} {fmt(cls.paper):>6} {fmt(cls.segearth_ov):>11}  "
                    f"{cls.protocol}")
    return "\n".join(rows)


def run(args) -> int:
    from rs_helpers.ovss.clip_dense import DenseSettings
    from rs_helpers.commands.ovss import TINY_GRID
    from rs_helpers.evaluation.datasets import get_dataset
    from rs_helpers.errors import BadInputError
    from rs_helpers.models.clip import check_clip, load_clip
    from rs_helpers.models.sam import load_sam
    from rs_helpers.files import check_outputs
    from rs_helpers.ovss.pipeline import OvssSettings
    from rs_helpers.evaluation.ovss_eval import evaluate, format_table, model_segmenter, write_results
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
    # checked now, not after hours of evaluation
    check_outputs({"--out": out, "its images CSV": out.with_name(out.stem + "_images.csv"),
                   "its summary CSV": out.with_name(out.stem + "_summary.csv")},
                  inputs=[args.root, args.sam_checkpoint], overwrite=args.overwrite)
    settings = OvssSettings(proposals=ProposalSettings(points_per_side=grid, points_per_batch=args.points_per_batch),
                            dense=DenseSettings(templates=args.templates),
                            selection=SelectionSettings(tau=args.tau), selector=args.selector,
                            max_side=args.max_side or None)
    if tiny:
        print(TINY_BANNER)
    check_clip(args.clip, args.clip_pretrained, profile=profile)  # a typo is exit 2, not "offline"
    sam = load_sam(args.sam, checkpoint=args.sam_checkpoint, profile=profile, device=args.device)
    clip = load_clip(args.clip, args.clip_pretrained, profile=profile, device=args.device)
    described = {"sam": args.sam, "clip": f"{args.clip}/{args.clip_pretrained}", "points_per_side": grid,
                 "selector": args.selector, "tau": args.tau, "max_side": args.max_side, "templates": args.templates}
    report = evaluate(dataset, model_segmenter(sam, clip, settings, generator=args.proposals), limit=args.limit,
                      progress=not args.no_progress, profile=profile, settings=described)
    written = write_results(report, out)
    print(format_table(report))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
