"""``rs-seg clicks IMAGE MASK --out CLICKS.json``: simulate the clicks that reproduce a ground-truth
mask with SAM in the loop (how LoRA training targets are made)."""
from __future__ import annotations

from rs_helpers.commands.options import add_common, add_overwrite, add_sam_options, fraction, parse_bands, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "clicks", help="simulate SAM clicks that reproduce a ground-truth mask",
        description="First click at the point deepest inside the mask; then, with SAM in the loop, each "
                    "click goes to the deepest point of the larger error (positive on a missed part, "
                    "negative on a wrongly added part; equal errors: --tie), as RITM's click simulator does. "
                    "Writes pixel clicks in the format of `rs-seg refer --clicks-out` and prints the IoU "
                    "after each click. The clicks depend on the segmenter in the loop (--segmenter): with sam2 "
                    "or sam3 the file is {\"clicks\": [...], \"segmenter\": ..., \"segmenter_model\": ...}, "
                    "which rs-seg reads as the list.")
    parser.add_argument("image", help="PNG, JPEG, TIFF or GeoTIFF")
    parser.add_argument("mask", help="the ground-truth mask, same size as the image (nonzero = target)")
    parser.add_argument("--n", type=positive_int, default=6, help="at most N clicks (default 6)")
    parser.add_argument("--stop-iou", type=fraction, default=None,
                        help="stop once the IoU reaches this value (default: only when perfect)")
    add_sam_options(parser)
    add_tie_option(parser)
    parser.add_argument("--bands", default=None, help="1-based bands to use as RGB, e.g. 4,3,2")
    parser.add_argument("--out", required=True, help="clicks file to write (JSON, pixel coordinates)")
    add_overwrite(parser)
    add_common(parser)
    parser.set_defaults(func=run)


def add_tie_option(parser) -> None:
    """``--tie negative|positive``: the click that equal missed / wrongly added errors give
    (:data:`rs_helpers.refer.click_sim.TIE_RULES`; negative is RITM's rule and the default)."""
    parser.add_argument("--tie", choices=["negative", "positive"], default="negative",
                        help="when the deepest missed and wrongly added errors are equally deep: a negative "
                             "click (default, RITM's rule) or a positive one (the rule before)")


def run(args) -> int:
    import sys

    from rs_helpers.refer.click_sim import check_mask, sam_predictor_fn, simulate_clicks
    from rs_helpers.errors import BadInputError
    from rs_helpers.geo.rasters import read_image, read_mask
    from rs_helpers.commands.options import check_segmenter_options, load_segmenter, segmenter_label, segmenter_record
    from rs_helpers.profile import is_tiny

    from rs_helpers.geo.rasters import check_model_shape
    from rs_helpers.files import check_outputs

    check_segmenter_options(args)
    check_outputs({"--out": args.out}, inputs=[args.image, args.mask, args.sam_checkpoint], overwrite=args.overwrite)
    image = read_image(args.image, bands=parse_bands(args.bands))
    check_model_shape(image.height, image.width, path=args.image)
    gt = read_mask(args.mask)
    if gt.shape != (image.height, image.width):
        raise BadInputError(f"{args.mask} is {gt.shape[1]}x{gt.shape[0]} but the image is "
                            f"{image.width}x{image.height}: the mask must have the image's size")
    try:
        gt = check_mask(gt)
    except BadInputError as exc:
        raise BadInputError(f"{args.mask}: {exc}") from None
    sam = load_segmenter(args)
    predict = sam_predictor_fn(sam, image.rgb, multimask=args.multimask)
    sim = simulate_clicks(gt, predict, n_clicks=args.n, stop_iou=args.stop_iou, tie=args.tie)
    _write_with_segmenter(args.out, sim.clicks, segmenter_record(args))
    print(f"{len(sim.clicks)} clicks on the {image.width}x{image.height} image "
          f"(pixels x, y; IoU of SAM's mask after each click):")
    for k, (click, source, score) in enumerate(zip(sim.clicks, sim.sources, sim.ious), start=1):
        kind = "positive" if click.label else "negative"
        where = {"gt": "deepest in the mask", "fn": "missed part", "fp": "wrongly added part"}[source]
        print(f"  {k}. ({click.x}, {click.y}) {kind:8s} {where:19s} IoU {score:.3f}")
    print(f"stopped: {_REASONS[sim.stop_reason]}; clicks written to {args.out}")
    print(f"rules: tie {args.tie}, SAM multimask {args.multimask}")
    print(f"segmenter: {segmenter_label(args)}")
    if is_tiny(args.profile):
        print("TINY PROFILE: SAM is random; these clicks and IoUs are meaningless.", file=sys.stderr)
    return 0


def _write_with_segmenter(path, pixel_clicks, record: dict) -> None:
    """The clicks with the segmenter that chose them (``rs_helpers.refer.clicks.read_clicks`` reads the list)."""
    from rs_helpers.errors import BadInputError
    from rs_helpers.files import write_json_atomic
    from rs_helpers.refer.clicks import clicks_to_records

    try:
        write_json_atomic(path, {"clicks": clicks_to_records(pixel_clicks), **record}, indent=1)
    except OSError as exc:
        raise BadInputError(f"cannot write the clicks file {path} ({exc.strerror or exc})") from None


_REASONS = {
    "n_clicks": "reached the number of clicks",
    "perfect": "SAM's mask equals the ground truth",
    "iou": "reached --stop-iou",
    "stuck": "only already-clicked pixels are wrong",
}
