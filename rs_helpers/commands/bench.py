"""``rs-seg bench``: reference vs fast SAM grid proposals vs the floor, on the same images; with
``--method sam3``, SAM 3 with SegEarth-OV3's fusion, ours against the per-prompt loops."""
from __future__ import annotations

import json
import sys


def register(subparsers) -> None:
    from rs_helpers.commands.options import add_common, add_overwrite, nonnegative_float, positive_int

    parser = subparsers.add_parser(
        "bench", help="time SAM grid proposals: reference generator, fast path and the floor",
        description="Runs segment-anything's automatic mask generator (reference) and the fast path on the same "
                    "images in one process; reports per-stage times, the floor (unmodified encoder + decoder "
                    "forward for every grid point, fp32), peak memory and how well the masks match. The last "
                    "line is 'proposals: fast X.XXx faster than reference, Y.YYx the floor (masks N vs M, "
                    "matched P%%)'. --method sam3 instead times SAM 3 with SegEarth-OV3's fusion: our path "
                    "against SegEarth-OV3's per-prompt loop (and a whole forward per prompt) at 1 and N classes; "
                    "last line 'sam3: ours X.XXx faster than the SegEarth-OV3 loop (N classes, prompt batch B, "
                    "maps equal: yes|no, max score diff D)'.")
    add_common(parser)
    parser.add_argument("--method", default="sam", choices=["sam", "sam3"],
                        help="sam: SAM grid proposals and the SAM + CLIP pipeline (default); sam3: SAM 3, ours "
                             "vs one prompt at a time")
    parser.add_argument("--classes", type=positive_int, default=None, metavar="N",
                        help="--method sam3: vocabulary size, the first N of a fixed list of remote-sensing "
                             "class names (default 16)")
    parser.add_argument("--prompt-batch", type=positive_int, default=None,
                        help="--method sam3: prompts per grounding pass on our path (default 1 on a CPU, where "
                             "batching gains nothing, 8 on a GPU)")
    parser.add_argument("--skip-per-prompt", action="store_true",
                        help="--method sam3: leave out the whole-forward-per-prompt path (on a CPU the full "
                             "architecture spends about 50 s a prompt in it on 2 cores)")
    parser.add_argument("--sam", default="vit_b", choices=["vit_b", "vit_l", "vit_h"],
                        help="SAM variant (default vit_b)")
    parser.add_argument("--points-per-side", type=positive_int, default=None, help="grid size (default 16; tiny: 8)")
    parser.add_argument("--size", type=positive_int, default=None, help="image side in pixels (default 512; tiny: 128)")
    parser.add_argument("--images", type=positive_int, default=1, help="how many sample images (default 1)")
    parser.add_argument("--random-weights", action="store_true",
                        help="the architecture with random weights (speed does not depend on weight values)")
    parser.add_argument("--margin", type=nonnegative_float, default=None,
                        help="fast path: low-resolution stability pre-filter slack (1 = always exact)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="fast path: points per decoder call")
    parser.add_argument("--compile", action="store_true", help="fast path: try torch.compile on the decoder")
    parser.add_argument("--repeat", type=positive_int, default=1,
                        help="runs per path, alternating; the fastest counts (for shared machines; default 1)")
    parser.add_argument("--no-realistic", action="store_true",
                        help="skip the post-processing comparison on ground-truth-shaped masks")
    parser.add_argument("--memory-size", type=positive_int, default=None, metavar="PX",
                        help="instead: peak memory of the fast path alone on a PX x PX image")
    parser.add_argument("--pipeline", action="store_true",
                        help="instead: the whole OVSS pipeline (proposals + CLIP + selection), reference "
                             "generator + one CLIP call per mask vs the fast path with the dense selector; last "
                             "line 'pipeline: fast X.XXx faster than reference (...)'")
    parser.add_argument("--clip", default="ViT-B-16",
                        help="--pipeline: open_clip model name (default ViT-B-16; random weights with "
                             "--random-weights; tiny: the tiny CLIP)")
    parser.add_argument("--upsampler", action="store_true",
                        help="instead: SimFeatUp (SegEarth-OV's upsampler) computed in bands of rows against the "
                             "naive form on one window: peak memory and time, and their largest difference")
    parser.add_argument("--feat-dim", type=positive_int, default=None,
                        help="--upsampler: feature size (default 512, CLIP ViT-B/16; tiny: 64)")
    parser.add_argument("--out", default=None, help="also write the results as JSON to this file")
    add_overwrite(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from rs_helpers.files import check_outputs, write_text_atomic
    from rs_helpers.profile import is_tiny

    check_outputs({"--out": args.out}, overwrite=args.overwrite)  # before minutes of timing, not after
    tiny = is_tiny(args.profile)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True))
    if args.method == "sam3":
        result = _run_sam3(args, log)
    else:
        result = _run_sam(args, tiny, log)
    if args.out:
        write_text_atomic(args.out, json.dumps(result, indent=2, default=str))
    return 0


def _run_sam3(args, log) -> dict:
    from rs_helpers.bench.sam3 import Sam3BenchConfig, format_sam3_report, run_sam3_bench
    from rs_helpers.errors import BadInputError

    for flag, given in (("--pipeline", args.pipeline), ("--upsampler", args.upsampler),
                        ("--memory-size", args.memory_size)):
        if given:
            raise BadInputError(f"{flag} measures SAM 1; drop it with --method sam3")
    config = Sam3BenchConfig(device=args.device, profile=args.profile, classes=args.classes or 16,
                             size=args.size or 512, images=args.images, repeat=args.repeat,
                             random_weights=args.random_weights, prompt_batch=args.prompt_batch,
                             per_prompt=not args.skip_per_prompt)
    result = run_sam3_bench(config, log=log)
    print(format_sam3_report(result))
    return result


def _run_sam(args, tiny, log) -> dict:
    from rs_helpers.bench.proposals import BenchConfig, format_report, load_bench_sam, memory_probe, run_bench
    from rs_helpers.errors import BadInputError

    for flag, given in (("--classes", args.classes), ("--prompt-batch", args.prompt_batch),
                        ("--skip-per-prompt", args.skip_per_prompt or None)):
        if given is not None:
            raise BadInputError(f"{flag} is for --method sam3")
    config = BenchConfig(
        variant=args.sam, device=args.device, profile=args.profile,
        points_per_side=args.points_per_side or (8 if tiny else 16), size=args.size or (128 if tiny else 512),
        images=args.images, random_weights=args.random_weights, margin=args.margin, compile=args.compile,
        batch_size=args.batch_size, realistic=not args.no_realistic, repeat=args.repeat,
    )
    if args.upsampler:
        from rs_helpers.bench.upsampler import measure_upsampler

        result = measure_upsampler(feat_dim=args.feat_dim or (64 if tiny else 512), device=args.device,
                                   repeats=args.repeat)
    elif args.pipeline:
        from rs_helpers.bench.pipeline import PipelineConfig, format_pipeline_report, run_pipeline_bench

        result = run_pipeline_bench(PipelineConfig(
            variant=args.sam, clip=args.clip, device=args.device, profile=args.profile,
            points_per_side=config.points_per_side, size=config.size, images=args.images,
            random_weights=args.random_weights, repeat=args.repeat), log=log)
        print(format_pipeline_report(result))
    elif args.memory_size:
        sam, description = load_bench_sam(config)
        options = {"compile": config.compile}
        if config.margin is not None:
            options["margin"] = config.margin
        result = memory_probe(sam, args.memory_size, config.points_per_side, next(sam.parameters()).device, **options)
        result["model"] = description
        print(f"rs-seg bench --memory-size: {description}")
        print(result.pop("stages"))
        print(f"fast path on a {result['size']} x {result['size']} image, {config.points_per_side} x "
              f"{config.points_per_side} grid: {result['seconds']:.1f} s, {result['masks']} masks "
              f"(output array {result['output_mib']:.0f} MiB); peak memory {result['peak_mib']:.0f} MiB "
              f"({result['peak_kind']}; process RSS before the call {result['rss_before_mib']:.0f} MiB)")
    else:
        result = run_bench(config, log=log)
        print(format_report(result))
    return result
