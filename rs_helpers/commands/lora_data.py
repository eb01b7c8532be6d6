"""``rs-seg lora-data --dataset NAME --out TRAIN.jsonl``: LoRA training lines (prompt text and the
target click answer) from a referring / reasoning dataset, with SAM in the loop."""
from __future__ import annotations

from rs_helpers.commands.clicks import add_tie_option
from rs_helpers.commands.options import add_common, add_overwrite, add_sam_options, fraction, nonnegative_int, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lora-data", help="make LoRA training data: simulated SAM clicks as target answers",
        description="For every sample, simulate the clicks that make SAM reproduce the ground-truth "
                    "mask (rs-seg clicks), move them to the 0-1000 grid and write one JSON line: image, "
                    "text, task, clicks and the exact answer the model should write, with where the sample "
                    "came from (dataset, root, split) and the rules and segmenter the clicks were simulated "
                    "with (tie, multimask, segmenter, segmenter_model). A sample with an empty target gets the "
                    "no-target answer {\"clicks\": [], \"reason\": ...} (--skip-empty skips it). rs-seg train-lora "
                    "reads this file; a held-out file is also a dataset: rs-seg eval refer --dataset jsonl "
                    "--root heldout.jsonl.")
    parser.add_argument("--dataset", required=True,
                        help="samples (the shipped queries), rrsisd, earthreason or refsegrs")
    parser.add_argument("--root", default=None, help="the dataset folder (not needed for samples)")
    parser.add_argument("--split", default=None, help="split to read (default: the dataset's training split)")
    parser.add_argument("--out", required=True, help="training file to write (JSON lines)")
    parser.add_argument("--n-clicks", type=positive_int, default=6, help="at most N clicks per sample (default 6)")
    parser.add_argument("--stop-iou", type=fraction, default=None,
                        help="stop a sample's clicks once SAM's IoU reaches this (default: only when perfect)")
    add_sam_options(parser)
    add_tie_option(parser)
    parser.add_argument("--skip-empty", action="store_true",
                        help="skip samples whose target is empty (default: write them with the no-target answer)")
    parser.add_argument("--all-questions", action="store_true",
                        help="earthreason: one line per question of each image (default: its first question)")
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N samples")
    parser.add_argument("--holdout", type=fraction, default=0.0,
                        help="hold out this fraction of the images (all their samples) for evaluation")
    parser.add_argument("--holdout-out", default=None, help="where to write the held-out lines")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the held-out draw (default 0)")
    add_overwrite(parser)
    add_common(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    import sys
    import warnings

    from rs_helpers.evaluation.datasets import referring_class
    from rs_helpers.errors import BadInputError
    from rs_helpers.lora.data import load_records_with_source, write_lora_data
    from rs_helpers.commands.options import check_segmenter_options, load_segmenter, segmenter_label, segmenter_record
    from rs_helpers.profile import is_tiny

    from rs_helpers.files import check_outputs

    check_segmenter_options(args)
    if args.holdout >= 1:
        raise BadInputError("--holdout is the fraction held out: below 1 (e.g. 0.1), or training gets nothing")
    if args.holdout and not args.holdout_out:
        raise BadInputError("--holdout needs --holdout-out FILE")
    if args.holdout_out and not args.holdout:
        raise BadInputError("--holdout-out needs --holdout FRACTION (e.g. 0.1)")
    check_outputs({"--out": args.out, "--holdout-out": args.holdout_out},
                  inputs=[args.root, args.sam_checkpoint], overwrite=args.overwrite)
    split = args.split or ("train" if "train" in referring_class(args.dataset).splits else None)
    records, source = load_records_with_source(args.dataset, root=args.root, split=split, limit=args.limit,
                                               all_questions=args.all_questions)
    sam = load_segmenter(args)
    with warnings.catch_warnings():  # skipped samples are listed below, once
        warnings.simplefilter("ignore", UserWarning)
        summary = write_lora_data(records, args.out, sam, args.n_clicks, holdout=args.holdout,
                                  holdout_out=args.holdout_out, seed=args.seed,
                                  multimask=args.multimask, stop_iou=args.stop_iou, source=source,
                                  tie=args.tie, skip_empty=args.skip_empty, segmenter=segmenter_record(args))
    n_images = len({e["image"] for e in summary.examples})
    notes = [] if summary.mean_iou is None else [f"mean SAM IoU with the simulated clicks {summary.mean_iou:.3f}"]
    if summary.no_target:
        notes.append(f"{summary.no_target} with an empty target, written with the no-target answer")
    print(f"{len(summary.examples)} examples from {n_images} images ({'; '.join(notes)})")
    print(f"rules: tie {args.tie}, SAM multimask {args.multimask} (recorded on every line)")
    print(f"segmenter: {segmenter_label(args)} (recorded on every line)")
    print(f"train: {len(summary.train)} lines -> {args.out}")
    if args.holdout_out:
        print(f"held out: {len(summary.holdout)} lines -> {args.holdout_out}")
    for rid, reason in summary.skipped:
        print(f"skipped {rid}: {reason}")
    if is_tiny(args.profile):
        print("TINY PROFILE: SAM is random; these click targets are meaningless.", file=sys.stderr)
    return 0
