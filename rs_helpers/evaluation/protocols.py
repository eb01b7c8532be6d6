"""Named evaluation protocols: the settings under which the literature's numbers were produced.

Users compare our scores with the tables of SegEarth-OV, RMSIN and SegEarth-R1. Each of those
was computed under its own rules (a probability threshold, the image size, what an empty
target scores, whether P@0.5 counts IoU >= 0.5 or > 0.5), so a number is comparable only under
the same rules. A protocol is one small frozen record of them; every field names, in a comment,
the official file it was read from.

* ``segearth-ov`` (:class:`OvssProtocol`, per dataset): the 17 open-vocabulary sets, as
  ``likyoo/SegEarth-OV`` evaluates them (``configs/cfg_<set>.py``, ``segearth_segmentor.py``).
* ``rmsin`` (:class:`ReferProtocol`): RRSIS-D and RefSegRS, as ``Lsan2401/RMSIN``'s ``test.py``.
* ``segearth-r1``: EarthReason, as ``earth-insights/SegEarth-R1``'s ``eval.py`` (LISA's
  conventions, ``dvlab-research/LISA`` ``train_ds.py`` ``validate``).
* ``native``: this package's own behaviour before the protocols existed, for comparison.

    >>> p = get_protocol("segearth-ov", "potsdam"); p.prob_thd, p.bg_idx
    (0.1, 5)
    >>> default_protocol("earthreason").name
    'segearth-r1'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from rs_helpers.errors import BadInputError
from rs_helpers.evaluation.datasets.registry import OVSS_REGISTRY, REFERRING_REGISTRY, canonical_name

KINDS = ("ovss", "refer")


@dataclass(frozen=True)
class OvssProtocol:
    """How an open-vocabulary segmentation benchmark is predicted and scored."""

    name: str
    dataset: str = ""
    # the official file the per-dataset values come from (SegEarth-OV configs/cfg_<set>.py)
    config: str = ""
    # configs/cfg_<set>.py model.prob_thd; segearth_segmentor.py postprocess_result: a pixel whose best
    # class probability is below it takes bg_idx
    prob_thd: float = 0.0
    # configs/cfg_<set>.py model.bg_idx (segearth_segmentor.py default 0); None: found by the name "background"
    bg_idx: int | None = None
    # configs/base_config.py cls_token_lambda=-0.3 (logits + lambda * cls_logits: we store the amount
    # removed, 0.3); configs/cfg_xBD.py cls_token_lambda=0
    cls_token_lambda: float = 0.3
    # configs/cfg_<set>.py test_pipeline Resize(scale=(448, 448), keep_ratio=True): mmcv's cv2 bilinear on
    # uint8 straight from full resolution, no antialiasing ("opencv-448")
    resize: str = "opencv-448"
    long_side: int = 448  # the same Resize(scale=(448, 448))
    # segearth_segmentor.py forward_slide: "the small patch will be used to decode without padding"
    # (compute_padsize pads only to a multiple of the patch size): "own-size"; "zero-pad" pads to 224
    short_crop: str = "own-size"
    # configs/base_config.py feature_up=True, feature_up_cfg=dict(model_name='jbu_one',
    # model_path='simfeatup_dev/weights/xclip_jbu_one_million_aid.ckpt'); "none" for no upsampler
    upsampler: str = "simfeatup"
    # segearth_segmentor.py forward_slide interpolates the logits to ori_shape before postprocess_result's
    # softmax; False: probabilities at the working size
    logits_to_original: bool = True
    slide_crop: int = 224  # segearth_segmentor.py SegEarthSegmentation(slide_crop=224)
    slide_stride: int = 112  # segearth_segmentor.py SegEarthSegmentation(slide_stride=112)
    logit_scale: float = 50.0  # segearth_segmentor.py SegEarthSegmentation(logit_scale=50)
    ignore_index: int = 255  # mmseg/evaluation/metrics/iou_metric.py IoUMetric(ignore_index=255)
    # configs/cfg_<set>.py dataset reduce_zero_label (mmseg LoveDADataset, PotsdamDataset, ISPRSDataset
    # default True): label 0 ignored, the others shifted down; our codecs do the same
    reduce_zero_label: bool = False
    kind: str = "ovss"


@dataclass(frozen=True)
class ReferProtocol:
    """How a referring or reasoning benchmark is scored (gIoU, cIoU, P@t)."""

    name: str
    source: str = ""  # the official evaluator these rules come from
    # RMSIN test.py: `if U == 0: this_iou = 0.0`; SegEarth-R1 eval.py compute_metric `acc_iou[union == 0] = 1.0`
    # and LISA train_ds.py validate `acc_iou[union_i == 0] += 1.0`
    both_empty_iou: float = 1.0
    # SegEarth-R1 eval.py: `best_iou[1] > threshold` (strict); RMSIN test.py: `this_iou >= eval_seg_iou`
    strict_precision: bool = False
    # SegEarth-R1 eval.py and LISA train_ds.py: `intersection / (union + 1e-5)`; RMSIN test.py: I*1.0/U
    iou_eps: float = 0.0
    # SegEarth-R1 eval.py and LISA train_ds.py: `intersection_meter.sum / (union_meter.sum + 1e-10)`
    ciou_eps: float = 0.0
    # cIoU when the cumulative union is 0 and ciou_eps is 0: RMSIN test.py cum_I / cum_U is 0/0 (nan);
    # None: both_empty_iou (native)
    empty_ciou: float | None = None
    # "native"; "square": RMSIN test.py get_transform T.Resize(img_size, img_size), the target resized
    # nearest (transforms.py Resize); "long-side-padded": SegEarth-R1 RS_val_dataset.py preprocess_mask
    # (cv2 INTER_NEAREST on the long side, zero padding split evenly)
    resolution: str = "native"
    # RMSIN args.py --img_size default 480; SegEarth-R1 RS_val_dataset.py image_size=1024
    size: int = 0
    # RRSIS-D parts of one annotation: "union", or "sum-one" (RMSIN refer/refer.py getMask np.sum(m, axis=2)
    # and data/dataset_refer_bert.py annot[ref_mask == 1] = 1)
    parts: str = "union"
    # RMSIN test.py eval_seg_iou_list; SegEarth-R1 eval.py thresholds
    thresholds: tuple = (0.5, 0.6, 0.7, 0.8, 0.9)
    kind: str = "refer"


# SegEarth-OV configs/cfg_<set>.py, per registry name: (config file, prob_thd, bg_idx, reduce_zero_label)
SEGEARTH_OV_CONFIGS = {
    "openearthmap": ("cfg_openearthmap.py", 0.1, 0, False),
    "loveda": ("cfg_loveda.py", 0.3, 0, True),
    "isaid": ("cfg_iSAID.py", 0.4, 0, False),
    "potsdam": ("cfg_potsdam.py", 0.1, 5, True),
    "vaihingen": ("cfg_vaihingen.py", 0.1, 5, True),
    "uavid": ("cfg_uavid.py", 0.3, 0, False),
    "udd5": ("cfg_udd5.py", 0.4, 4, False),
    "vdd": ("cfg_vdd.py", 0.3, 0, False),
    "whu-aerial": ("cfg_whu_aerial.py", 0.6, 0, False),
    "whu-sat-ii": ("cfg_whu_sat_II.py", 0.7, 0, False),
    "inria": ("cfg_inria.py", 0.6, 0, False),
    "xbd-pre": ("cfg_xBD.py", 0.0, 0, False),
    "chn6-cug": ("cfg_chn6-cug.py", 0.8, 0, False),
    "deepglobe": ("cfg_deepglobe_road.py", 0.7, 0, False),
    "massachusetts": ("cfg_massachusetts_road.py", 0.7, 0, False),
    "spacenet": ("cfg_spacenet_road.py", 0.7, 0, False),
    "wbs-si": ("cfg_wbs-si.py", 0.6, 0, False),
}
NO_CLS_TOKEN = {"xbd-pre"}  # configs/cfg_xBD.py cls_token_lambda=0

RMSIN = ReferProtocol(name="rmsin", source="Lsan2401/RMSIN test.py", both_empty_iou=0.0, strict_precision=False,
                      empty_ciou=float("nan"), resolution="square", size=480, parts="sum-one")
SEGEARTH_R1 = ReferProtocol(name="segearth-r1", source="earth-insights/SegEarth-R1 segearth_r1/eval_and_test/eval.py",
                            both_empty_iou=1.0, strict_precision=True, iou_eps=1e-5, ciou_eps=1e-10,
                            resolution="long-side-padded", size=1024)
NATIVE_REFER = ReferProtocol(name="native", source="rs_helpers/evaluation/refer_metrics.py")
# rs_helpers/ovss/clip_dense.py DenseSettings and ovss/pipeline.py: no threshold, background by name,
# the image resized to 1024 with PIL then antialiased to 448 in torch, short crops zero-padded, no upsampler
NATIVE_OVSS = OvssProtocol(name="native", config="rs_helpers/ovss/clip_dense.py", prob_thd=0.0, bg_idx=None,
                           resize="pil-1024-antialias-448", short_crop="zero-pad", upsampler="none",
                           logits_to_original=False)

PROTOCOLS = {"segearth-ov": ("ovss",), "rmsin": ("refer",), "segearth-r1": ("refer",), "native": KINDS}
DEFAULTS = {"rrsisd": "rmsin", "refsegrs": "rmsin", "earthreason": "segearth-r1"}


def list_protocols(kind: str | None = None) -> list[str]:
    """Protocol names (for ``kind`` "ovss" or "refer" only those that apply to it)."""
    if kind is not None and kind not in KINDS:
        raise BadInputError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return [name for name, kinds in PROTOCOLS.items() if kind is None or kind in kinds]


def protocol_name(name: str) -> str:
    """``"SegEarth_OV"``, ``"segearthr1"`` ... -> the protocol's name; unknown is a BadInputError."""
    squashed = "".join(ch for ch in str(name).lower() if ch.isalnum())
    for known in PROTOCOLS:
        if squashed == known.replace("-", ""):
            return known
    raise BadInputError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")


def _dataset(dataset: str | None, kind: str | None) -> tuple[str | None, str | None]:
    """(registry name, kind) of a dataset name; ``kind`` settles names in both registries."""
    if dataset is None:
        return None, kind
    registries = {"ovss": OVSS_REGISTRY, "refer": REFERRING_REGISTRY}
    for k in ([kind] if kind else []) + [k for k in KINDS if k != kind]:
        try:
            return canonical_name(dataset, registries[k]), k
        except BadInputError:
            continue
    names = list(OVSS_REGISTRY) + [n for n in REFERRING_REGISTRY if n not in OVSS_REGISTRY]
    raise BadInputError(f"unknown dataset {dataset!r}; choose one of {', '.join(names)}")


def get_protocol(name: str, dataset: str | None = None, kind: str | None = None):
    """The protocol ``name`` for ``dataset`` (needed by ``segearth-ov``, whose values are per dataset).

    ``kind`` ("ovss" or "refer") picks which ``native`` is meant when no dataset says it. A protocol
    that does not apply to the dataset (``rmsin`` on LoveDA, ``segearth-ov`` on RRSIS-D or on the
    shipped samples) is a :class:`BadInputError` naming the ones that do.
    """
    name = protocol_name(name)
    dataset, kind = _dataset(dataset, kind)
    if kind is None:
        kind = PROTOCOLS[name][0]
        if len(PROTOCOLS[name]) > 1:
            raise BadInputError(f"protocol {name!r} exists for ovss and refer: say which (kind=...)")
    if kind not in PROTOCOLS[name]:
        raise BadInputError(f"protocol {name!r} is not for {kind} scoring"
                            + (f" of {dataset}" if dataset else "")
                            + f"; choose one of {', '.join(list_protocols(kind))}")
    if name == "native":
        return NATIVE_OVSS if kind == "ovss" else NATIVE_REFER
    if name == "rmsin":
        return RMSIN
    if name == "segearth-r1":
        return SEGEARTH_R1
    if dataset is None:
        raise BadInputError("the segearth-ov protocol is per dataset: name the dataset")
    if dataset not in SEGEARTH_OV_CONFIGS:
        raise BadInputError(f"the segearth-ov protocol covers the 17 benchmarks, not {dataset!r}; use native")
    config, prob_thd, bg_idx, reduce_zero = SEGEARTH_OV_CONFIGS[dataset]
    return OvssProtocol(name="segearth-ov", dataset=dataset, config=f"configs/{config}", prob_thd=prob_thd,
                        bg_idx=bg_idx, cls_token_lambda=0.0 if dataset in NO_CLS_TOKEN else 0.3,
                        reduce_zero_label=reduce_zero)


def default_protocol(dataset: str, kind: str | None = None):
    """The dataset's own protocol: ``segearth-ov`` for the 17 open-vocabulary sets, ``rmsin`` for
    RRSIS-D and RefSegRS, ``segearth-r1`` for EarthReason, ``native`` for the shipped samples and
    the ``jsonl`` files."""
    name, kind = _dataset(dataset, kind)
    if kind == "ovss":
        return get_protocol("segearth-ov" if name in SEGEARTH_OV_CONFIGS else "native", name, "ovss")
    return get_protocol(DEFAULTS.get(name, "native"), name, "refer")


def background_index(protocol, classes: Sequence[str]) -> int | None:
    """The background class of a vocabulary under ``protocol``: its declared ``bg_idx`` (Potsdam and
    Vaihingen: 5, "clutter"), else the class named "background" (any synonym), else None."""
    bg = getattr(protocol, "bg_idx", None)
    if bg is not None:
        if not 0 <= bg < len(classes):
            raise BadInputError(f"protocol {protocol.name}: background index {bg} is outside the "
                                f"{len(classes)} classes")
        return int(bg)
    for i, entry in enumerate(classes):
        if "background" in (s.strip().lower() for s in str(entry).split(",")):
            return i
    return None


def _num(value: float) -> str:
    return f"{value:g}"


def describe(protocol, classes: Sequence[str] | None = None) -> str:
    """One line of the protocol's settings, for the top of a report."""
    if protocol.kind == "ovss":
        where = f"{protocol.dataset}, SegEarth-OV {protocol.config}" if protocol.dataset else protocol.config
        if protocol.bg_idx is None:
            bg = "no probability threshold, background by name"
        else:
            bg_name = ""
            if classes is not None and 0 <= protocol.bg_idx < len(classes):
                bg_name = f" ({str(classes[protocol.bg_idx]).split(',')[0].strip()})"
            bg = f"prob_thd {_num(protocol.prob_thd)} -> bg_idx {protocol.bg_idx}{bg_name}"
        resize = {"opencv-448": f"long side {protocol.long_side} by cv2 bilinear, no antialias",
                  "pil-1024-antialias-448": "PIL to 1024, then antialiased to 448"}.get(protocol.resize, protocol.resize)
        crops = "short crops at their own size" if protocol.short_crop == "own-size" else "short crops zero-padded"
        logits = "logits to the original size before softmax" if protocol.logits_to_original \
            else "probabilities at the working size"
        return (f"protocol {protocol.name} ({where}): {bg}, cls_token_lambda {_num(protocol.cls_token_lambda)}, "
                f"{resize}, {crops}, upsampler {protocol.upsampler}, {logits}; "
                f"IoU from the summed confusion matrix, ignore {protocol.ignore_index}")
    empty = f"both empty -> IoU {_num(protocol.both_empty_iou)}"
    test = "IoU > k" if protocol.strict_precision else "IoU >= k"
    ratio = f"I/(U+{_num(protocol.iou_eps)})" if protocol.iou_eps else "I/U"
    size = {"native": "native resolution", "square": f"scored at {protocol.size} x {protocol.size} (nearest)",
            "long-side-padded": f"long side {protocol.size} (nearest), zero-padded square"}.get(
                protocol.resolution, protocol.resolution)
    parts = "RRSIS-D parts summed, only 1 kept" if protocol.parts == "sum-one" else "RRSIS-D parts united"
    return (f"protocol {protocol.name} ({protocol.source}): {empty}; P@k counts {test}; IoU = {ratio}; "
            f"{size}; {parts}")
