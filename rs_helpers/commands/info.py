"""``rs-seg info IMAGE``: size, bands, dtype, CRS and transform of a raster.

Header only: no pixel is decoded, so it answers at once on a 30000 x 30000 PNG or a
decompression bomb. It still refuses (exit 2) what no command could read: a truncated or
corrupt file (checked from the file's structure), a 1-pixel image, complex pixels.
"""
from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="describe an image: size, bands, dtype, CRS, transform")
    parser.add_argument("image", help="PNG, JPEG, TIFF or GeoTIFF")
    parser.set_defaults(func=run)


def run(args) -> int:
    import warnings

    from rs_helpers.errors import BadInputError
    from rs_helpers.geo.rasters import (
        MODEL_LONG_SIDE,
        BandChoiceWarning,
        _facts,
        _open,
        check_model_shape,
        max_decode_mb,
        mib,
        plan_read,
    )
    from rs_helpers.geo.tiling import DEFAULT_TILE

    with _open(args.image) as src:
        facts = _facts(src, args.image)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BandChoiceWarning)  # said on the line below instead
            plan = plan_read(src, args.image)
    rgb = f"{plan.width}x{plan.height}x3 uint8 from bands {list(plan.bands)}"
    if plan.default_choice:
        rgb += f" (the first three of {plan.band_count}; choose others with --bands)"
    facts["as RGB for the models"] = rgb
    budget = max_decode_mb()
    decode = f"about {mib(plan.decode_mb)} to read whole"
    if budget is not None and plan.decode_mb > budget:
        decode += (f", over the {mib(budget)} budget: commands refuse it untiled; "
                   f"use rs-seg ovss --tile {DEFAULT_TILE}")
    facts["decode memory"] = decode
    try:
        h, w = check_model_shape(plan.height, plan.width)
        facts["SAM input"] = f"{w}x{h} (long side resized to {MODEL_LONG_SIDE})"
    except BadInputError as exc:
        facts["SAM input"] = f"unusable: {exc}"
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        if key == "transform" and value is not None:
            value = "(" + ", ".join(f"{v:.10g}" for v in value) + ")"
        print(f"{key.ljust(width)}  {value if value is not None else '-'}")
    return 0
