"""rs_helpers: the code behind the text-based remote-sensing segmentation notebooks.

Stages are found by folder, in the order the notebooks meet them: ``models`` (loading SAM, CLIP,
Qwen-VL), ``geo`` (rasters, tiles, polygons), ``sam`` (grid proposals, masks from clicks),
``ovss`` (the contrastive branch: CLIP selects and labels SAM's masks), ``refer`` (the generative
branch: a vision-language model writes clicks for SAM), ``lora`` (tuning Qwen-VL on simulated
clicks), ``evaluation``, ``bench`` and ``teaching``; ``commands`` holds one file per ``rs-seg``
sub-command. CONTRIBUTING.md has the map and which way imports may point.
"""
__version__ = "0.1.0"


def lazy_exports(package: str, exports: dict[str, str]):
    """``__getattr__``, ``__dir__`` and ``__all__`` for a folder that exports ``name -> module``
    lazily: ``from rs_helpers.ovss import segment`` imports ``rs_helpers.ovss.pipeline`` only then,
    so importing a folder costs nothing and creates no import cycle (PEP 562)."""
    import importlib

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    def __dir__() -> list[str]:
        import sys

        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__, sorted(exports)
