"""Benchmark evaluation of open-vocabulary segmentation: run a segmenter over a dataset, accumulate
one confusion matrix per group, and report mIoU (multi-class) or foreground IoU (binary) beside
the numbers the paper and SegEarth-OV report.

``evaluate(dataset, segmenter)`` is model-agnostic: ``segmenter(image, classes, binary)`` returns
a label map, so tests can pass an oracle. ``model_segmenter(sam, clip, settings)`` wraps the real
pipeline (:func:`rs_helpers.ovss.pipeline.segment`). Metrics come from :mod:`rs_helpers.evaluation.metrics`.
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

    @property
    def tiny(self) -> bool:
        return self.profile == "tiny"

    @property
    def skipped(self) -> list:
        """The samples left out of the scores, as ``(id, why)``: unreadable files, wrong sizes,
        inputs the segmenter refused."""
        return [(r.id, r.error) for r in self.images if r.error]

    def summary(self) -> dict:
        out = {k: getattr(self, k) for k in ("dataset", "title", "split", "root", "protocol", "profile", "limit",
                                             "settings")}
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
             profile: str = "full", settings: dict | None = None, on_image: Callable | None = None) -> EvalReport:
    """Segment every sample (the first ``limit``) and accumulate one confusion matrix per group.

    A sample that fails to load (a missing, truncated or corrupt file, complex pixels, labels of
    the wrong size: whatever the reader raised) or that the segmenter refuses (a
    :class:`BadInputError`, ``OSError`` or ``ValueError``) is recorded with its error and left
    out of every score, so one broken file does not end a long run; the scores of the other
    samples are exactly what they would be without it. Missing weights
    (:class:`WeightsUnavailableError`) and Ctrl-C still stop the run. Samples are cheap records
    whose files are read by ``sample.load()`` here, inside that guard.
    ``on_image(result, prediction, labels)`` sees each scored image.
    """
    from tqdm.auto import tqdm

    if limit is not None and limit < 1:
        raise BadInputError("--limit must be at least 1")
    samples: Sequence[SegSample] = dataset.samples[:limit] if limit else dataset.samples
    report = EvalReport(dataset=dataset.name, title=dataset.title, split=dataset.split,
                        root=str(dataset.root) if dataset.root else "", protocol=dataset.protocol,
                        profile=profile, settings=settings or {}, limit=limit)
    groups: dict[str, GroupResult] = {}
    start = time.perf_counter()
    bar = tqdm(samples, desc=f"eval {dataset.name}", unit="img", disable=not progress)
    for sample in bar:
        classes, binary, group = dataset.vocabulary_for(sample), dataset.is_binary(sample), dataset.group_of(sample)
        if group not in groups:
            names = [c.split(",")[0].strip() for c in classes]
            groups[group] = GroupResult(group, binary, names, ConfusionMatrix(len(names), IGNORE),
                                        paper=getattr(dataset, "paper", None) if group == dataset.name else None,
                                        segearth_ov=getattr(dataset, "segearth_ov", None) if group == dataset.name else None)
        tick = time.perf_counter()
        try:
            image, labels = _load(sample)
            pred = np.asarray(segmenter(image, classes, binary))
            if pred.shape != labels.shape:
                raise BadInputError(f"prediction is {pred.shape}, labels are {labels.shape}")
        except (BadInputError, OSError, ValueError) as exc:  # recorded per image, the run goes on
            report.images.append(ImageResult(sample.id, group, None, 0, 0, 0, time.perf_counter() - tick,
                                             error=_reason(exc)))
            continue
        cm = confusion_matrix(pred, labels, len(classes), IGNORE)
        score = _percent(cm, binary)
        groups[group].confusion += cm
        groups[group].n_images += 1
        result = ImageResult(sample.id, group, score, int(labels.shape[1]), int(labels.shape[0]),
                             int((labels != IGNORE).sum()), time.perf_counter() - tick)
        report.images.append(result)
        if on_image is not None:
            on_image(result, pred, labels)
        if progress:
            current = groups[group].value
            bar.set_postfix_str(f"{groups[group].metric} {current:.1f}" if current is not None else "")
    report.groups = list(groups.values())
    report.seconds = time.perf_counter() - start
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


def model_segmenter(sam, clip, settings=None, proposal_cache=None, text_cache=None, generator="fast") -> Segmenter:
    """The real pipeline as a segmenter: SAM grid proposals + CLIP selection (``ovss.segment``)."""
    from rs_helpers.ovss.pipeline import OvssSettings, segment

    settings = settings or OvssSettings()

    def run(image, classes, binary):
        result = segment(image, list(classes), sam=sam, clip=clip, binary=binary, settings=settings,
                         proposal_cache=proposal_cache, text_cache=text_cache, generator=generator)
        return result.labels

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
    lines.append(f"{report.title} ({report.split}; {report.protocol})" if report.protocol
                 else f"{report.title} ({report.split})")
    failed = sum(1 for r in report.images if r.error)
    header = f"{'group':<20} {'metric':<6} {'ours':>6} {'paper':>6} {'SegEarth-OV':>12} {'images':>7}"
    lines += [header, "-" * len(header)]
    for g in report.groups:
        lines.append(f"{g.name:<20} {g.metric:<6} {_fmt(g.value):>6} {_fmt(g.paper):>6} {_fmt(g.segearth_ov):>12} "
                     f"{g.n_images:>7}")
    if per_class:
        for g in report.groups:
            ious = g.per_class_iou
            cells = [f"{n} {_fmt(None if v is None else 100 * v)}" for n, v in zip(g.class_names, ious)]
            lines.append(f"  {g.name} per-class IoU: " + ", ".join(cells))
    note = f"{len(report.images) - failed} images in {report.seconds:.1f} s"
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
