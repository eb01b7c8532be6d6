"""``rs-seg info IMAGE``: size, bands, dtype, CRS and transform of a raster."""
from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="describe an image: size, bands, dtype, CRS, transform")
    parser.add_argument("image", help="PNG, JPEG, TIFF or GeoTIFF")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..images import describe, read_image

    facts = describe(args.image)
    image = read_image(args.image)  # also validates that it can be segmented
    facts["as RGB for the models"] = f"{image.width}x{image.height}x3 uint8 from bands {list(image.bands_used)}"
    width = max(len(k) for k in facts)
    for key, value in facts.items():
        if key == "transform" and value is not None:
            value = "(" + ", ".join(f"{v:.10g}" for v in value) + ")"
        print(f"{key.ljust(width)}  {value if value is not None else '-'}")
    return 0
