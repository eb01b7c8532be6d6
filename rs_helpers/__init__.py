"""rs_helpers: the code behind the text-based remote-sensing segmentation notebooks.

Stages are found by folder, in the order the notebooks meet them: ``models`` (loading SAM, CLIP,
Qwen-VL), ``geo`` (rasters, tiles, polygons), ``sam`` (grid proposals, masks from clicks),
``ovss`` (the contrastive branch: CLIP selects and labels SAM's masks), ``refer`` (the generative
branch: a vision-language model writes clicks for SAM), ``lora`` (tuning Qwen-VL on simulated
clicks), ``evaluation``, ``bench`` and ``teaching``; ``commands`` holds one file per ``rs-seg``
sub-command. CONTRIBUTING.md has the map and which way imports may point.
"""
__version__ = "0.1.0"
