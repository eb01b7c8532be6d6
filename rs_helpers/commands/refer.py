"""``rs-seg refer IMAGE --text ...``: one mask for a referring expression or a reasoning question."""
from __future__ import annotations

from rs_helpers.commands.options import add_common, add_overwrite, add_sam_options, add_vlm_options, backend_options, parse_bands, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "refer", help="segment what a sentence refers to (a VLM writes clicks, SAM makes the mask)",
        description="A vision-language model reads the image and the text and answers with click "
                    "prompts on a 0-1000 grid; SAM (or SAM 2.1 or SAM 3's tracker: --segmenter) turns all "
                    "clicks into one mask. An answer that there "
                    "is no target ({\"clicks\": [], \"reason\": ...}) gives an empty mask. Exit 4 (and "
                    "the raw answer printed) when the answer holds no usable clicks.")
    parser.add_argument("image", nargs="+", help="PNG, JPEG, TIFF or GeoTIFF; several images or a folder: "
                                                 "--out is a folder, one mask per scene")
    parser.add_argument("--text", required=True, help='e.g. "the largest building in the top-left"')
    parser.add_argument("--task", choices=["referring", "reasoning", "semantic"], default="referring",
                        help="referring expression (default) or a reasoning question")
    add_vlm_options(parser)
    add_sam_options(parser)
    parser.add_argument("--n-clicks", type=positive_int, default=6, help="ask for up to N clicks (default 6)")
    parser.add_argument("--bands", default=None, help="1-based bands to use as RGB, e.g. 4,3,2")
    parser.add_argument("--out", required=True, help="mask to write: .png (0/255) or .tif (GeoTIFF, keeps the CRS)")
    parser.add_argument("--clicks-out", default=None, help="write the clicks here (JSON, pixel coordinates)")
    from rs_helpers.commands.options import add_vector_arguments

    add_vector_arguments(parser)  # --geojson --to-wgs84 --simplify --min-area
    add_overwrite(parser)
    add_common(parser)
    parser.set_defaults(func=run)


def check_text(text: str, option: str = "--text") -> None:
    """A query the model can read: not empty, and valid UTF-8 (argv may carry undecodable bytes)."""
    from rs_helpers.errors import BadInputError

    if not text or not text.strip():
        raise BadInputError(f"{option} is empty: write what to segment, e.g. \"the largest building\"")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInputError(f"{option} holds bytes that are not UTF-8: retype it or set a UTF-8 locale") from None


def run(args) -> int:
    from rs_helpers.commands.batch import is_batch, run_batch
    from rs_helpers.commands.options import check_segmenter_options

    check_segmenter_options(args)
    if isinstance(args.image, list):
        if is_batch(args.image):
            return run_batch(args, run, lambda out: [out], not_per_scene=("--clicks-out", "--geojson"))
        args.image = args.image[0]
    return run_image(args)


def run_image(args) -> int:
    """One image, one query, one mask (empty, SAM not loaded, for the no-target answer)."""
    import sys

    from rs_helpers.commands.batch import cached
    import time

    import numpy as np

    from rs_helpers.refer.clicks import no_target_reason, to_pixels, write_clicks
    from rs_helpers.errors import BadInputError
    from rs_helpers.geo.rasters import read_image, write_label_raster
    from rs_helpers.commands.options import load_segmenter, segmenter_cache_key, segmenter_label
    from rs_helpers.profile import is_tiny
    from rs_helpers.refer.pipeline import ReferResult, ask_for_clicks
    from rs_helpers.sam.from_clicks import make_predictor, predict_mask
    from rs_helpers.refer.backends import make_backend

    from rs_helpers.geo.rasters import check_model_shape
    from rs_helpers.commands.options import check_vector_args
    from rs_helpers.files import atomic_path, check_outputs

    if not args.out.lower().endswith((".png", ".tif", ".tiff")):
        raise BadInputError(f"--out {args.out}: write .png, .tif or .tiff")
    check_text(args.text)
    replay = args.vlm.split(":", 1)[1] if args.vlm.lower().startswith("replay:") else None
    check_outputs({"--out": args.out, "--clicks-out": args.clicks_out, "--geojson": args.geojson},
                  inputs=[args.image, args.sam_checkpoint, replay], overwrite=args.overwrite)
    image = read_image(args.image, bands=parse_bands(args.bands))
    check_model_shape(image.height, image.width, path=args.image)
    check_vector_args(args, image.crs)
    backend = cached(args, "vlm", lambda: make_backend(args.vlm, base_url=args.base_url, adapter=args.adapter,
                                                       profile=args.profile, device=args.device,
                                                       **backend_options(args)))
    # Ask the model first: an answer without clicks exits 4 before SAM is loaded.
    start = time.perf_counter()
    clicks, answer, prompt, usage = ask_for_clicks(image, args.text, backend, task=args.task,
                                                   n_clicks=args.n_clicks)
    vlm_s = time.perf_counter() - start
    if clicks:
        start = time.perf_counter()
        sam = cached(args, segmenter_cache_key(args), lambda: load_segmenter(args))
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        predictor = make_predictor(sam, image.rgb)
        embed_s = time.perf_counter() - start
        start = time.perf_counter()
        pixel_clicks = to_pixels(clicks, image.width, image.height)
        sam_mask = predict_mask(predictor, pixel_clicks, multimask=args.multimask)
        predict_s = time.perf_counter() - start
        result = ReferResult(mask=sam_mask.mask, clicks=clicks, pixel_clicks=pixel_clicks, answer=answer,
                             prompt=prompt, usage=usage, score=sam_mask.score)
    else:  # the no-target answer: an empty mask, SAM neither loaded nor run
        result = ReferResult(mask=np.zeros((image.height, image.width), bool), clicks=[], pixel_clicks=[],
                             answer=answer, prompt=prompt, usage=usage, score=0.0)
    mask = result.mask.astype(np.uint8) * 255
    with atomic_path(args.out) as tmp:
        write_label_raster(tmp, mask, like=image)
    if clicks:
        print(f"{backend.name} clicks (x, y, label) on the 0-1000 grid -> pixels of the "
              f"{image.width}x{image.height} image:")
        for grid, pixel in zip(result.clicks, result.pixel_clicks):
            kind = "positive" if grid.label else "negative"
            print(f"  ({grid.x:4d}, {grid.y:4d}) -> ({pixel.x}, {pixel.y})  {kind}")
    else:
        print(f"{backend.name} answered that there is no target ({no_target_reason(answer)}): "
              "no clicks, SAM not run, the mask is empty")
    if args.clicks_out:
        write_clicks(args.clicks_out, result.pixel_clicks)
        print(f"clicks written to {args.clicks_out}" + ("" if clicks else " (an empty list)"))
    usage = result.usage
    print(f"tokens: {usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} completion")
    if clicks:
        print(f"mask: {int(result.mask.sum())} pixels ({100 * result.mask.mean():.1f}% of the image), "
              f"SAM score {result.score:.3f}; written to {args.out}")
        print(f"segmenter: {segmenter_label(args)}")
        print(f"time: VLM {vlm_s:.1f}s, SAM load {load_s:.1f}s, SAM embed {embed_s:.1f}s, "
              f"SAM predict {predict_s:.2f}s")
    else:
        print(f"mask: empty (no target); written to {args.out}")
        print(f"time: VLM {vlm_s:.1f}s, SAM skipped")
    from rs_helpers.commands.options import export_from_args

    export_from_args(args, result.mask, transform=image.transform, crs=image.crs, class_names={1: args.text})
    if is_tiny(args.profile):
        print("TINY PROFILE: the models are random; this mask and these clicks are meaningless.", file=sys.stderr)
    return 0
