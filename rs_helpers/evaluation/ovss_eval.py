"""Benchmark evaluation of open-vocabulary segmentation: run a segmenter over a dataset, accumulate
one confusion matrix per group, and report mIoU (multi-class) or foreground IoU (binary) beside
the numbers the paper and SegEarth-OV report.

``evaluate(dataset, segmenter)`` is model-agnostic: ``segmenter(image, classes, binary)`` returns
a label map, so tests can pass an oracle. ``model_segmenter(sam, clip, settings)`` wraps the real
pipeline (:func:`rs_helpers.ovss.pipeline.segment`), ``clip_segmenter(clip, settings)`` the CLIP-only
baseline (:func:`rs_helpers.ovss.clip_only.segment_clip`), ``sam3_segmenter(sam3, settings)`` SAM 3
alone (:func:`rs_helpers.ovss.sam3_fusion.segment_sam3`). Metrics come from
:mod:`rs_helpers.evaluation.metrics`; the named protocol, when given, heads the report.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rs_helpers.evaluation.datasets.codec import IGNORE
from rs_helpers.evaluation.datasets.base import OvssDataset, SegSample
from rs_helpers.errors import BadInputError, RsError
from rs_helpers.evaluation.metrics import ConfusionMatrix, confusion_matrix
from rs_helpers.distributed import Processes
from rs_helpers.evaluation.results_log import ResultsLog
from rs_helpers.files import atomic_path

Segmenter = Callable[..., np.ndarray]  # (image: RasterImage, classes: list[str], binary: bool) -> H x W uint8


@dataclass
class ImageResult:
    """One image: its score (mIoU over the classes present in it, or foreground IoU), size, time."""

    id: str
    group: str
    score: float | None
    width: int
    height: int
    labelled_pixels: int
    seconds: float
    error: str = ""


@dataclass
class GroupResult:
    """A vocabulary group (the whole dataset, or one family of the mixed samples)."""

    name: str
    binary: bool
    class_names: list
    confusion: "ConfusionMatrix"
    n_images: int = 0
    paper: float | None = None
    segearth_ov: float | None = None

    @property
    def metric(self) -> str:
        return "IoU" if self.binary else "mIoU"

    @property
    def per_class_iou(self) -> list:
        """IoU per class (0..1), None for classes absent from ground truth and prediction."""
        return [None if math.isnan(v) else float(v) for v in self.confusion.iou()]

    @property
    def value(self) -> float | None:
        """mIoU (classes absent from prediction and ground truth are skipped) or foreground IoU, in %."""
        return _percent(self.confusion, self.binary)


@dataclass
class EvalReport:
    dataset: str
    title: str
    split: str
    root: str
    protocol: str
    profile: str
    settings: dict
    groups: list = field(default_factory=list)
    images: list = field(default_factory=list)
    seconds: float = 0.0
    limit: int | None = None
    resumed: int = 0  # samples taken from the results file instead of computed in this run
    # the named protocol (rs_helpers.evaluation.protocols): its name, describe() line and which of its
    # fields the method applied (method_settings.scope); "" when none was given
    protocol_name: str = ""
    protocol_settings: str = ""
    protocol_scope: str = ""
    reported: dict = field(default_factory=dict)  # another method's published numbers, {"SegEarth-OV3": 47.4}

    @property
    def tiny(self) -> bool:
        return self.profile == "tiny"

    @property
    def skipped(self) -> list:
        """The samples left out of the scores, as ``(id, why)``: unreadable files, wrong sizes,
        inputs the segmenter refused."""
        return [(r.id, r.error) for r in self.images if r.error]

    def summary(self) -> dict:
        out = {k: getattr(self, k) for k in ("dataset", "title", "split", "root", "protocol", "protocol_name",
                                             "protocol_settings", "protocol_scope", "profile", "limit", "settings",
                                             "reported")}
        out["seconds"] = round(self.seconds, 3)
        out["n_images"] = len(self.images)
        out["failed"] = [r.id for r in self.images if r.error]
        out["n_skipped"] = len(out["failed"])
        out["skipped"] = [{"id": r.id, "error": r.error} for r in self.images if r.error]
        out["groups"] = [{"name": g.name, "metric": g.metric, "ours": _round(g.value), "paper": g.paper,
                          "segearth_ov": g.segearth_ov, "n_images": g.n_images,
                          "per_class_iou": {n: _round(None if v is None else 100 * v)
                                            for n, v in zip(g.class_names, g.per_class_iou)},
                          "confusion": g.confusion.matrix.tolist(),
                          "unmatched": g.confusion.unmatched.tolist()} for g in self.groups]
        if self.tiny:
            out["note"] = "TINY PROFILE: random models, these numbers are MEANINGLESS"
        return out


def _round(value, digits: int = 2):
    return None if value is None else round(float(value), digits)


def _percent(cm: ConfusionMatrix, binary: bool) -> float | None:
    value = cm.foreground_iou(1) if binary else cm.miou()
    return None if math.isnan(value) else 100.0 * value


def evaluate(dataset: OvssDataset, segmenter: Segmenter, limit: int | None = None, progress: bool = True,
             profile: str = "full", settings: dict | None = None, on_image: Callable | None = None,
             log: ResultsLog | None = None, procs: Processes = Processes(), protocol=None,
             scope: str = "") -> EvalReport | None:
    """Segment every sample (the first ``limit``) and accumulate one confusion matrix per group.

    A sample that fails to load (a missing, truncated or corrupt file, complex pixels, labels of
    the wrong size: whatever the reader raised) or that the segmenter refuses (a
    :class:`BadInputError`, ``OSError`` or ``ValueError``) is recorded with its error and left
    out of every score, so one broken file does not end a long run; the scores of the other
    samples are exactly what they would be without it. Missing weights
    (:class:`WeightsUnavailableError`) and Ctrl-C still stop the run. Samples are cheap records
    whose files are read by ``sample.load()`` here, inside that guard.
    ``on_image(result, prediction, labels)`` sees each image scored in this run.

    ``log`` (a :class:`ResultsLog`) makes the run resumable: samples it already holds are not
    computed again, each new one is appended the moment it is done. ``procs`` splits the samples
    left to do into one contiguous block per process; rank 0 gathers every record and returns the
    report, built from all records in dataset order (the other ranks return None), so the metrics
    equal those of one uninterrupted process exactly.

    ``protocol`` (an :class:`~rs_helpers.evaluation.protocols.OvssProtocol`) and ``scope`` (which of
    its fields the segmenter applied) are recorded in the report and printed at its top.
    """
    from tqdm.auto import tqdm

    if limit is not None and limit < 1:
        raise BadInputError("--limit must be at least 1")
    samples: Sequence[SegSample] = dataset.samples[:limit] if limit else dataset.samples
    keys = sample_keys(samples)
    done = log.load() if log is not None else {}
    pending = [(k, s) for k, s in zip(keys, samples) if k not in done]
    start = time.perf_counter()
    mine = procs.shard(pending)
    bar = tqdm(total=len(pending), desc=f"eval {dataset.name}", unit="img", disable=not (progress and procs.main))
    others = log.records_by_others() if log is not None and procs.distributed else 0
    new: dict[str, dict] = {}
    try:
        for key, sample in mine:
            record = _evaluate_one(dataset, sample, key, segmenter, on_image)
            if log is not None:
                log.append(record)
            new[key] = record
            if bar.disable:
                continue
            bar.n = len(new) + (log.records_by_others() - others if log is not None and procs.distributed else 0)
            bar.set_postfix_str("" if record["error"] else f"last {_fmt(record['score'])}")
            bar.refresh()
    finally:
        bar.close()
        if log is not None:
            log.close()
    if procs.collect(done, new) is None:
        return None
    records = [done[k] for k in keys]
    report = _report(dataset, samples, records, limit=limit, profile=profile, settings=settings)
    if protocol is not None:
        from rs_helpers.evaluation.protocols import describe

        classes = list(getattr(dataset, "classes", None) or []) or None
        report.protocol_name, report.protocol_settings = protocol.name, describe(protocol, classes)
        report.protocol_scope = scope
    report.seconds = time.perf_counter() - start
    report.resumed = len(samples) - len(pending)
    if log is not None and procs.distributed:
        log.consolidate(records)
    return report


def sample_keys(samples: Sequence) -> list[str]:
    """One unique key per sample: its id, with ``#2``, ``#3``, ... on repeats."""
    seen: dict[str, int] = {}
    keys = []
    for sample in samples:
        n = seen[sample.id] = seen.get(sample.id, 0) + 1
        keys.append(sample.id if n == 1 else f"{sample.id}#{n}")
    return keys


def _evaluate_one(dataset, sample, key: str, segmenter: Segmenter, on_image: Callable | None) -> dict:
    """One sample's record: its :class:`ImageResult` fields plus its confusion counts."""
    classes, binary, group = dataset.vocabulary_for(sample), dataset.is_binary(sample), dataset.group_of(sample)
    tick = time.perf_counter()
    try:
        image, labels = _load(sample)
        pred = np.asarray(segmenter(image, classes, binary))
        if pred.shape != labels.shape:
            raise BadInputError(f"prediction is {pred.shape}, labels are {labels.shape}")
    except (BadInputError, OSError, ValueError) as exc:  # recorded per image, the run goes on
        result = ImageResult(sample.id, group, None, 0, 0, 0, time.perf_counter() - tick, error=_reason(exc))
        return {**asdict(result), "key": key}
    cm = confusion_matrix(pred, labels, len(classes), IGNORE)
    result = ImageResult(sample.id, group, _percent(cm, binary), int(labels.shape[1]), int(labels.shape[0]),
                         int((labels != IGNORE).sum()), time.perf_counter() - tick)
    if on_image is not None:
        on_image(result, pred, labels)
    return {**asdict(result), "key": key, "confusion": cm.matrix.tolist(), "unmatched": cm.unmatched.tolist()}


def _report(dataset, samples, records: list[dict], **fields) -> EvalReport:
    """The report of ``records`` (one per sample, in dataset order): summed confusion per group."""
    report = EvalReport(dataset=dataset.name, title=dataset.title, split=dataset.split,
                        root=str(dataset.root) if dataset.root else "", protocol=dataset.protocol,
                        profile=fields["profile"], settings=fields["settings"] or {}, limit=fields["limit"])
    groups: dict[str, GroupResult] = {}
    for sample, record in zip(samples, records):
        classes, binary, group = dataset.vocabulary_for(sample), dataset.is_binary(sample), dataset.group_of(sample)
        if group not in groups:
            names = [c.split(",")[0].strip() for c in classes]
            main = group == dataset.name
            groups[group] = GroupResult(group, binary, names, ConfusionMatrix(len(names), IGNORE),
                                        paper=getattr(dataset, "paper", None) if main else None,
                                        segearth_ov=getattr(dataset, "segearth_ov", None) if main else None)
        fields_ = {k: record[k] for k in ImageResult.__dataclass_fields__}
        report.images.append(ImageResult(**fields_))
        if record["error"]:
            continue
        cm = groups[group].confusion
        matrix, unmatched = np.asarray(record["confusion"], np.int64), np.asarray(record["unmatched"], np.int64)
        if matrix.shape != cm.matrix.shape or unmatched.shape != cm.unmatched.shape:
            raise BadInputError(f"the results file's record of {record['id']} has {len(matrix)} classes, the "
                                f"dataset {cm.n_classes}; use --fresh to start over")
        cm.matrix += matrix
        cm.unmatched += unmatched
        groups[group].n_images += 1
    report.groups = list(groups.values())
    return report


def _reason(exc: BaseException, limit: int = 200) -> str:
    """One line saying why a sample was skipped."""
    text = " ".join(str(exc).split())
    return (text or type(exc).__name__)[:limit]


def _load(sample) -> tuple:
    """``sample.load()`` where any failure to read the files is the sample's problem: a
    :class:`BadInputError`. Other :class:`RsError` (missing weights) and Ctrl-C pass through."""
    try:
        return sample.load()
    except RsError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreadable data, whatever the reader raised
        reason = _reason(exc)
        raise BadInputError(f"cannot read {sample.id} ({type(exc).__name__}"
                            + (f": {reason})" if reason != type(exc).__name__ else ")")) from None


def model_segmenter(sam, clip, settings=None, proposal_cache=None, text_cache=None, generator="fast",
                    upsampler=None) -> Segmenter:
    """The real pipeline as a segmenter: SAM grid proposals + CLIP selection (``ovss.segment``);
    ``upsampler``: the dense map's feature upsampler (SimFeatUp) or None."""
    from rs_helpers.ovss.pipeline import OvssSettings, segment

    settings = settings or OvssSettings()
    return lambda image, classes, binary: segment(
        image, list(classes), sam=sam, clip=clip, binary=binary, settings=settings, proposal_cache=proposal_cache,
        text_cache=text_cache, generator=generator, upsampler=upsampler).labels


def clip_segmenter(clip, settings=None, upsampler=None, text_cache=None) -> Segmenter:
    """CLIP alone as a segmenter (``ovss.clip_only.segment_clip``): SegEarth-OV's own segmentation
    with ``settings`` (:func:`rs_helpers.evaluation.method_settings.clip_settings` for a protocol)."""
    from rs_helpers.ovss.clip_only import SEGEARTH_OV_CLIP, segment_clip
    from rs_helpers.ovss.vocabulary import TextCache

    settings = settings or SEGEARTH_OV_CLIP
    text_cache = text_cache if text_cache is not None else TextCache()
    return lambda image, classes, binary: segment_clip(image, list(classes), clip=clip, binary=binary,
                                                       settings=settings, upsampler=upsampler,
                                                       text_cache=text_cache).labels


def sam3_segmenter(sam3, settings=None, class_map: dict | None = None, text_cache=None) -> Segmenter:
    """SAM 3 alone as a segmenter (``ovss.sam3_fusion.segment_sam3``); ``class_map``: class entries
    prompted under the protocol's names instead (``method_settings.sam3_class_map``)."""
    from rs_helpers.ovss.sam3_fusion import Sam3Settings, segment_sam3
    from rs_helpers.ovss.vocabulary import TextCache

    settings, class_map, cache = settings or Sam3Settings(), class_map or {}, text_cache or TextCache()
    return lambda image, classes, binary: segment_sam3(image, [class_map.get(c, c) for c in classes], sam3=sam3,
                                                       binary=binary, settings=settings, text_cache=cache).labels


def lazy_segmenter(build: Callable[[], Segmenter]) -> Segmenter:
    """A segmenter made by ``build()`` on its first call: a resumed run with nothing left to do,
    or a process with no share of the samples, never loads a model."""
    made: list = []

    def run(image, classes, binary):
        if not made:
            made.append(build())
        return made[0](image, classes, binary)

    return run


# --------------------------------------------------------------------------- output
def write_results(report: EvalReport, out: str | Path) -> list[Path]:
    """``out`` (.json): the summary and every image; beside it ``*_images.csv`` and ``*_summary.csv``.
    The three files are written together, whole or not at all: each goes to a temporary name and
    all are renamed into place only once every one is complete."""
    out = Path(out)
    if out.suffix.lower() != ".json":
        raise BadInputError(f"--out {out}: give a .json path (CSV files are written beside it)")
    payload = report.summary()
    payload["images"] = [asdict(r) for r in report.images]
    images_csv = out.with_name(out.stem + "_images.csv")
    summary_csv = out.with_name(out.stem + "_summary.csv")
    paths = [out, images_csv, summary_csv]
    try:
        with contextlib.ExitStack() as stack:
            tmp_json, tmp_images, tmp_summary = [stack.enter_context(atomic_path(p)) for p in paths]
            tmp_json.write_text(json.dumps(payload, indent=2, default=_json_default), encoding="utf-8")
            with open(tmp_images, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["id", "group", "score", "width", "height", "labelled_pixels", "seconds", "error"])
                for r in report.images:
                    writer.writerow([r.id, r.group, _round(r.score), r.width, r.height, r.labelled_pixels,
                                     round(r.seconds, 3), r.error])
            with open(tmp_summary, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["dataset", "group", "metric", "ours", "paper", "segearth_ov", "n_images",
                                 "profile"])
                for g in report.groups:
                    writer.writerow([report.dataset, g.name, g.metric, _round(g.value), g.paper, g.segearth_ov,
                                     g.n_images, report.profile])
    except OSError as exc:  # a folder that is a file, no permission, a full disk: nothing written
        raise BadInputError(f"cannot write {exc.filename or out} ({exc.strerror or exc}); no result file "
                            "was written") from None
    return paths


def _json_default(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_table(report: EvalReport, per_class: bool = True) -> str:
    """The result table: ours beside the paper's and SegEarth-OV's numbers, then per-class IoU."""
    lines = []
    if report.tiny:
        lines += ["!" * 78, "!!  TINY PROFILE: random tiny models. These numbers are MEANINGLESS:",
                  "!!  they only show that the evaluation runs. Use --profile full for results.", "!" * 78]
    lines += [line for line in (report.protocol_settings, report.protocol_scope) if line]
    lines.append(f"{report.title} ({report.split}; {report.protocol})" if report.protocol
                 else f"{report.title} ({report.split})")
    failed = sum(1 for r in report.images if r.error)
    header = f"{'group':<20} {'metric':<6} {'ours':>6} {'paper':>6} {'SegEarth-OV':>12} {'images':>7}"
    header += "".join(f" {name:>12}" for name in report.reported)  # the main group's only
    lines += [header, "-" * len(header)]
    for g in report.groups:
        lines.append(f"{g.name:<20} {g.metric:<6} {_fmt(g.value):>6} {_fmt(g.paper):>6} {_fmt(g.segearth_ov):>12} "
                     f"{g.n_images:>7}" + "".join(f" {_fmt(v if g.name == report.dataset else None):>12}"
                                                  for v in report.reported.values()))
    if per_class:
        for g in report.groups:
            ious = g.per_class_iou
            cells = [f"{n} {_fmt(None if v is None else 100 * v)}" for n, v in zip(g.class_names, ious)]
            lines.append(f"  {g.name} per-class IoU: " + ", ".join(cells))
    note = f"{len(report.images) - failed} images in {report.seconds:.1f} s"
    if report.resumed:
        note += f" ({report.resumed} of them read back from the results file, not computed again)"
    if failed:
        shown = "; ".join(f"{i}: {why}" for i, why in report.skipped[:3])
        note += (f"; {failed} skipped, left out of the scores ({shown}"
                 + ("; ..." if failed > 3 else "") + "; every one is listed in the JSON)")
    if report.limit:
        note += f"; first {report.limit} only (--limit): not comparable with the full benchmark"
    lines.append(note)
    if report.tiny:
        lines.append("(tiny profile: the numbers above are MEANINGLESS)")
    return "\n".join(lines)
