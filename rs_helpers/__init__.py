"""rs_helpers: the code behind the text-based remote-sensing segmentation notebooks.

Stages are found by file name: ``models`` (loading SAM, CLIP, Qwen-VL), ``images`` (reading
rasters), ``samples`` (the shipped data), ``plotting``, ``proposals`` (SAM grid masks),
``clip_dense`` (CLIP similarity maps), ``selection`` (masks to labels), ``clicks`` (click
prompts), and so on.
"""
__version__ = "0.1.0"
