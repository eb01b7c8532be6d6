"""What a named protocol (:mod:`rs_helpers.evaluation.protocols`) sets for each method of
``rs-seg eval ovss --method``.

* ``clip`` (CLIP alone, :func:`rs_helpers.ovss.clip_only.segment_clip`) is the method the
  ``segearth-ov`` protocol describes, so every field applies: the resize, the short crops, the
  CLS share removed, the upsampler, the threshold to the background class and the size at which
  the softmax is taken.
* ``sam-clip`` (the paper's pipeline) uses the dense map only to vote inside SAM's masks. The
  fields that make the map apply (resize, short crops, cls_token_lambda, window, logit scale,
  upsampler); ``prob_thd`` / ``bg_idx`` do not (each mask takes its majority class, no pixel is
  thresholded), nor ``logits_to_original`` (the map is computed at the working size).

* ``sam3`` (SAM 3 alone, :func:`rs_helpers.ovss.sam3_fusion.segment_sam3`) has its own protocol,
  ``segearth-ov3`` (:mod:`rs_helpers.evaluation.protocols_sam3`: SegEarth-OV3's per-dataset
  thresholds, background index, sliding windows and class names), or ``native`` (the fusion's
  defaults, for the samples): :func:`sam3_protocol`, :func:`sam3_base_settings`, :func:`sam3_scope`.

:func:`scope` writes this as the line printed under the protocol in the report.
"""
from __future__ import annotations

from dataclasses import replace

from rs_helpers.errors import BadInputError
from rs_helpers.ovss.clip_dense import SEGEARTH_OV, DenseSettings
from rs_helpers.ovss.clip_only import METHODS, UPSAMPLERS, ClipOnlySettings


def _opencv(protocol) -> bool:
    return str(protocol.resize).startswith("opencv")


def dense_settings(protocol, templates: str = "imagenet80") -> DenseSettings:
    """The dense map under ``protocol``: SegEarth-OV's exact path (``SEGEARTH_OV``: cv2-style
    resize, its pixel statistics and position-embedding rule) when the protocol resizes like
    OpenCV, else this package's native map; window, stride, long side, short crops, logit scale
    and the CLS share removed from the protocol."""
    base = SEGEARTH_OV if _opencv(protocol) else DenseSettings()
    return replace(base, templates=templates, long_side=protocol.long_side, short_crop=protocol.short_crop,
                   window=protocol.slide_crop, stride=protocol.slide_stride, logit_scale=protocol.logit_scale,
                   cls_lambda=protocol.cls_token_lambda)


def clip_settings(protocol, templates: str = "imagenet80", max_side: int | None = 1024) -> ClipOnlySettings:
    """The CLIP-only method under ``protocol``. ``max_side`` (``--max-side``) is the working size
    of a protocol that takes probabilities at the working size (native: PIL-resized first);
    one that brings the logits to the original size (segearth-ov) ignores it."""
    return ClipOnlySettings(dense=dense_settings(protocol, templates), prob_thd=float(protocol.prob_thd),
                            bg_idx=protocol.bg_idx,
                            max_side=None if protocol.logits_to_original else (max_side or None),
                            resize_first=not _opencv(protocol))


def upsampler_name(protocol, method: str, chosen: str | None = None) -> str:
    """``--upsampler`` when given, else the protocol's (both methods: the upsampler makes the map)."""
    if method not in METHODS:
        raise BadInputError(f"method {method!r}: choose one of {', '.join(METHODS)}")
    name = chosen or protocol.upsampler
    if name not in UPSAMPLERS:
        raise BadInputError(f"upsampler {name!r}: choose one of {', '.join(UPSAMPLERS)}")
    return name


def scope(protocol, method: str, upsampler: str, max_side: int | None = None, tiny: bool = False) -> str:
    """One line: which of the protocol's fields this run applies, and what it changed."""
    up = upsampler + (" (tiny profile: a random SimFeatUp)" if tiny and upsampler == "simfeatup" else "")
    if upsampler != protocol.upsampler:
        up += f" by --upsampler (the protocol's: {protocol.upsampler})"
    work = f"the working size, long side --max-side {max_side}" if max_side else "the image's own size"
    if method == "clip":
        size = "the original size" if protocol.logits_to_original else work
        fields = "all fields apply" if upsampler == protocol.upsampler else "all fields apply but the upsampler"
        return f"method clip (CLIP alone, no SAM): {fields}; upsampler {up}; labels from the probabilities at {size}"
    return (f"method sam-clip (SAM masks vote on the dense map): applied: resize, short crops, "
            f"cls_token_lambda, window, upsampler {up}; not applied: prob_thd and bg_idx (each mask takes "
            f"its majority class), logits to the original size (the map is made at {work})")


def sam3_protocol(name: str | None, dataset: str):
    """``--protocol`` for ``--method sam3``: a :class:`~rs_helpers.evaluation.protocols_sam3.Sam3Protocol`
    (``segearth-ov3``, the default on the benchmarks it covers) or None (``native``: the fusion's
    defaults, the default elsewhere, e.g. the samples)."""
    from rs_helpers.evaluation.protocols_sam3 import NAME, get_sam3_protocol, sam3_datasets

    squashed = None if name is None else "".join(ch for ch in str(name).lower() if ch.isalnum())
    if squashed is None:
        squashed = NAME.replace("-", "") if dataset in sam3_datasets() else "native"
    if squashed == "native":
        return None
    if squashed != NAME.replace("-", ""):
        raise BadInputError(f"--method sam3 takes --protocol {NAME} or native, not {name!r} (segearth-ov is "
                            "CLIP's protocol)")
    return get_sam3_protocol(dataset)


def sam3_base_settings(protocol):
    """The fusion's settings before the ``--sam3-*`` options: the protocol's, or the defaults (native)."""
    from rs_helpers.ovss.sam3_fusion import Sam3Settings

    return Sam3Settings() if protocol is None else protocol.settings()


def sam3_class_map(protocol) -> dict[str, str]:
    """The dataset's class entries that the protocol prompts under other names (``{ours: theirs}``)."""
    if protocol is None:
        return {}
    from rs_helpers.evaluation.protocols_sam3 import class_changes

    return {ours: theirs for _, ours, theirs in class_changes(protocol.dataset)}


def sam3_describe(protocol, settings) -> str:
    """The protocol line at the top of the report."""
    if protocol is not None:
        from rs_helpers.evaluation.protocols_sam3 import describe_sam3

        return describe_sam3(protocol)
    bg = "the class named background, else 0" if settings.bg_idx is None else f"bg_idx {settings.bg_idx}"
    return (f"protocol native (SAM 3, rs_helpers/ovss/sam3_fusion.py Sam3Settings, SegEarth-OV3's defaults): "
            f"views squashed to SAM 3's input, confidence > {settings.confidence_threshold:g}, prob_thd "
            f"{settings.prob_thd:g} -> {bg}, sliding windows of the model's input size over larger images; "
            "IoU from the summed confusion matrix, ignore 255")


def sam3_scope(protocol, settings, model_id: str, class_map: dict[str, str]) -> str:
    """One line: SAM 3 alone applies every field of its protocol; the options that changed one; the class names."""
    base = sam3_base_settings(protocol)
    changed = [f"{name} {getattr(settings, field):g} by --sam3-{option} (the protocol's: {getattr(base, field):g})"
               for field, name, option in (("confidence_threshold", "confidence", "confidence"),
                                           ("prob_thd", "prob_thd", "prob-thd"))
               if getattr(settings, field) != getattr(base, field)]
    if (settings.slide_crop, settings.slide_stride) != (base.slide_crop, base.slide_stride):
        window = lambda crop: {None: "the model's input size", 0: "the whole image"}.get(crop, f"{crop} px")  # noqa: E731
        changed.append(f"windows {window(settings.slide_crop)} by --sam3-window (the protocol's: "
                       f"{window(base.slide_crop)})")
    heads = "+".join(settings.heads) + (" by --sam3-heads" if settings.heads != base.heads else "")
    names = "; ".join(f"{a} -> {b}" for a, b in class_map.items())
    return (f"method sam3 (SAM 3 alone, {model_id}, no SAM 1 or CLIP): "
            + ("all fields apply" if not changed else "all fields apply but " + ", ".join(changed))
            + f"; heads {heads}" + (f"; class names prompted: {names}" if names else ""))
