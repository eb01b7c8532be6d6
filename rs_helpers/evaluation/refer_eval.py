"""Evaluate the generative branch on a referring / reasoning dataset.

Every sample goes through :func:`rs_helpers.refer.pipeline.refer`; its IoU, clicks, raw answer and token
usage are kept in a per-sample record. A sample whose answer holds no usable clicks (or whose
request failed, or whose image could not be read) counts as an empty prediction, IoU 0, and is
listed under ``failures`` with its error.
The summary (gIoU, cIoU, P@0.5..0.9) is printed beside the paper's numbers.
"""
from __future__ import annotations

import itertools
import types
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from rs_helpers.refer.clicks import clicks_to_records
from rs_helpers.errors import BadInputError, NoClicksError, RsError, WeightsUnavailableError
from rs_helpers.files import write_text_atomic
from rs_helpers.profile import get_profile
from rs_helpers.refer.prompts import DEFAULT_N_CLICKS
from rs_helpers.refer.pipeline import refer
from rs_helpers.distributed import Processes
from rs_helpers.evaluation.refer_metrics import THRESHOLDS, ReferScores, intersection_union, to_protocol_resolution
from rs_helpers.evaluation.protocols import describe
from rs_helpers.evaluation.results_log import ResultsLog
from rs_helpers.sam.from_clicks import make_predictor
from rs_helpers.refer.vlm import UsageMeter, VLMBackend

MAX_CONSECUTIVE_REQUEST_ERRORS = 5
TINY_NOTE = "TINY PROFILE: random models; these scores are meaningless (they only exercise the code)."


@dataclass
class ReferEvaluation:
    """The outcome of :func:`evaluate_refer`: scores, per-sample records and the settings used."""

    dataset: str
    split: str
    vlm: str
    sam: str
    n_clicks: int
    profile: str
    scores: ReferScores = field(default_factory=ReferScores)
    records: list[dict] = field(default_factory=list)
    usage: UsageMeter = field(default_factory=UsageMeter)
    reported: dict = field(default_factory=dict)  # {method: {split: gIoU %}}
    note: str = ""
    protocol: object = None  # a ReferProtocol (None: native)
    segmenter: dict = field(default_factory=dict)  # {"segmenter": sam|sam2|sam3, "segmenter_model": id}

    @property
    def failures(self) -> list[dict]:
        return [{"id": r["id"], "error": r["error"], "answer": r["answer"]} for r in self.records if r["error"]]

    def summary(self) -> dict:
        return self.scores.summary()

    def table(self) -> str:
        """gIoU, cIoU and P@t in percent, beside the gIoU numbers the paper reports."""
        s = self.summary()
        methods = [m for m, by_split in self.reported.items() if self.split in by_split]
        header = ["metric", "this run"] + methods
        rows = [header]
        for key in ["gIoU", "cIoU"] + [f"P@{t:.1f}" for t in THRESHOLDS]:
            row = [key, _pct(s[key])]
            for m in methods:
                row.append(f"{self.reported[m][self.split]:.1f}" if key == "gIoU" else "-")
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [describe(self.protocol)] if self.protocol is not None else []
        lines += [f"{self.dataset} {self.split}: {s['n']} samples, {s['failures']} without usable clicks; "
                 f"{self.vlm} + SAM{' ' + self.sam if self.sam else ''}, up to {self.n_clicks} clicks"]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        if methods:
            lines.append("(paper columns: gIoU on the full split, from docs/method.md)")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "split": self.split, "vlm": self.vlm, "sam": self.sam, **self.segmenter,
                "protocol": describe(self.protocol) if self.protocol is not None else "native",
                "n_clicks": self.n_clicks, "profile": self.profile, "note": self.note,
                "summary": _jsonable(self.summary()), "usage": self.usage.as_dict(),
                "reported_gIoU": self.reported, "failures": self.failures, "samples": self.records}

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` whole or not at all (an earlier file stays intact)."""
        return write_text_atomic(path, json.dumps(self.to_json(), indent=1) + "\n")


def _pct(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def _jsonable(summary: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}


def evaluate_refer(samples: Iterable, backend: VLMBackend, sam, *, n_clicks: int = DEFAULT_N_CLICKS,
                   multimask: bool | str = "auto", limit: int | None = None, progress: bool = True,
                   dataset: str = "samples", split: str = "all", sam_name: str = "",
                   reported: dict | None = None, profile: str | None = None,
                   log: ResultsLog | None = None, procs: Processes = Processes(),
                   protocol=None, segmenter: dict | None = None) -> ReferEvaluation | None:
    """Run every sample (records with ``.id``, ``.text``, ``.task``, ``.image`` and ``.load()``
    returning ``(RasterImage, bool mask)``) and score it. ``limit`` keeps the first N samples.

    Consecutive samples on the same image share one SAM embedding. One bad sample never ends
    the run: an image or mask that cannot be read (``load()`` is called inside the guard), a bad
    query text, a failed request, an odd reply or an answer without clicks is recorded with its
    error and scores IoU 0. Only a missing or rejected API key (:class:`WeightsUnavailableError`:
    every sample would fail) and Ctrl-C stop the run, and so do ``MAX_CONSECUTIVE_REQUEST_ERRORS``
    failed requests in a row (the service is down, not the samples at fault); that error carries
    the samples scored so far as ``.evaluation``.

    ``log`` and ``procs`` make the run resumable and shared between processes exactly as in
    :func:`rs_helpers.evaluation.ovss_eval.evaluate`: done samples are read back, not asked
    again; rank 0 returns the evaluation of every record in dataset order, the others None.
    ``sam`` may be a zero-argument callable that loads SAM, called only if there is work.
    ``protocol`` (:mod:`rs_helpers.evaluation.protocols`, None: native) sets the scoring rules:
    the resolution masks are compared at, what a both-empty sample scores, strict or >= P@k.
    ``sam`` may also be a SAM 2.1 / SAM 3 tracker bundle (:func:`rs_helpers.sam.from_clicks.make_predictor`);
    ``segmenter`` (``{"segmenter": ..., "segmenter_model": ...}``) names it in the report.
    """
    from tqdm.auto import tqdm

    from rs_helpers.evaluation.ovss_eval import sample_keys

    samples = list(itertools.islice(samples, limit) if limit else samples)
    profile = get_profile(profile)
    keys = sample_keys(samples)
    done = log.load() if log is not None else {}
    pending = [(k, s) for k, s in zip(keys, samples) if k not in done]
    run = ReferEvaluation(dataset=dataset, split=split, vlm=getattr(backend, "name", "vlm"), sam=sam_name,
                          n_clicks=n_clicks, profile=profile, reported=dict(reported or {}),
                          note=TINY_NOTE if profile == "tiny" else "", protocol=protocol,
                          segmenter=dict(segmenter or {}))
    new: dict[str, dict] = {}
    bar = tqdm(total=len(pending), desc=f"refer {dataset}", unit="query", disable=not (progress and procs.main))
    try:
        shared = log is not None and procs.distributed
        baseline = log.records_by_others() if shared else 0
        others = (lambda: log.records_by_others() - baseline) if shared else (lambda: 0)
        _run_share(procs.shard(pending), backend, sam, n_clicks, multimask, log, new, bar, protocol, others,
                   partial=lambda: _filled(run, [r for r in list(done.values()) + list(new.values())]))
    finally:
        bar.close()
        if log is not None:
            log.close()
    if procs.collect(done, new) is None:
        return None
    records = [done[k] for k in keys]
    if log is not None and procs.distributed:
        log.consolidate(records)
    return _filled(run, records)


def _run_share(share, backend, sam, n_clicks, multimask, log, new: dict, bar, protocol, others, partial) -> None:
    """This process's samples, each recorded in ``new`` (and the log) as soon as it is done;
    ``others()`` counts what the other processes finished meanwhile (the bar shows the total)."""
    from rs_helpers.refer.vlm_openai import VLMRequestError

    last_image, predictor, request_errors, scores = None, None, 0, _scores(protocol)
    for key, sample in share:
        sample_id = getattr(sample, "id", None)
        record = {"id": sample_id, "key": key, "text": getattr(sample, "text", None),
                  "task": getattr(sample, "task", None), "image": str(getattr(sample, "image", "")),
                  "target_pixels": 0, "error": None, "answer": None, "clicks": [], "pixel_clicks": [],
                  "usage": {}, "loaded": False, "called": False}
        try:
            try:
                image, target = sample.load()
                target = np.asarray(target).astype(bool)
            except (RsError, KeyboardInterrupt):
                raise
            except Exception as exc:  # a damaged file can raise anything from PIL or rasterio
                raise BadInputError(f"cannot read sample {sample_id} ({type(exc).__name__}: "
                                    f"{' '.join(str(exc).split())[:200]})") from None
            # the target's area where it is scored (RMSIN: 480 x 480; SegEarth-R1: a 1024 frame)
            record.update(loaded=True, target_pixels=int(np.count_nonzero(
                to_protocol_resolution(target, target, protocol)[1])))
            if str(sample.image) != last_image:
                last_image = None  # no stale embedding if this one fails
                if isinstance(sam, types.FunctionType):
                    sam = sam()  # loaded on the first sample of this share
                predictor = make_predictor(sam, image.rgb)
                last_image = str(sample.image)
            result = refer(image, sample.text, backend, task=_task(sample.task), n_clicks=n_clicks,
                           multimask=multimask, predictor=predictor, text_name=f"the text of sample {sample_id}")
            inter, union = intersection_union(*to_protocol_resolution(result.mask, target, protocol))
        except WeightsUnavailableError:
            raise
        except RsError as exc:
            request_errors = request_errors + 1 if isinstance(exc, VLMRequestError) else 0
            record.update(error=str(exc), answer=getattr(exc, "raw_answer", None), iou=0.0,
                          intersection=0, union=record["target_pixels"], pred_pixels=0)
            if isinstance(exc, NoClicksError):
                record.update(usage=getattr(exc, "usage", {}), called=True)
            _keep(record, log, new)
            if request_errors >= MAX_CONSECUTIVE_REQUEST_ERRORS:
                error = VLMRequestError(f"{MAX_CONSECUTIVE_REQUEST_ERRORS} requests in a row failed; "
                                        f"stopping (last: {exc})")
                error.evaluation = partial()
                raise error from None
        else:
            request_errors = 0
            # the no-target answer is a prediction (an empty mask), not a failure: IoU 0 against a
            # target, the protocol's both-empty value (ReferScores.empty_iou) against an empty one
            record.update(answer=result.answer, clicks=clicks_to_records(result.clicks),
                          no_target=result.no_target, pixel_clicks=clicks_to_records(result.pixel_clicks), usage=result.usage, called=True,
                          intersection=inter, union=union, pred_pixels=int(result.mask.sum()),
                          score=result.score, iou=scores.add_counts(inter, union))
            _keep(record, log, new)
        _add(scores, record)
        if not bar.disable:
            bar.n = len(new) + others()
            bar.set_postfix(gIoU=f"{100 * scores.giou():.1f}", failed=scores.failures)


def _keep(record: dict, log, new: dict) -> None:
    new[record["key"]] = record
    if log is not None:
        log.append(record)


def _add(scores: ReferScores, record: dict) -> None:
    """Score one record: a sample that was never loaded has no target to compare with (IoU 0);
    a failed one is an empty prediction against its target."""
    if record["error"]:
        scores.failures += 1
    if not record["loaded"]:
        scores.ious.append(0.0)
    elif record["error"]:
        scores.add_counts(0, record["target_pixels"])


def _scores(protocol) -> ReferScores:
    return ReferScores() if protocol is None else ReferScores.for_protocol(protocol)


def _filled(run: ReferEvaluation, records: list[dict]) -> ReferEvaluation:
    """``run`` with its scores, usage and records rebuilt from ``records`` (dataset order)."""
    run.scores, run.usage, run.records = _scores(run.protocol), UsageMeter(), list(records)
    for record in records:
        if record["error"] or not record["loaded"]:
            _add(run.scores, record)
        else:
            run.scores.add_counts(record["intersection"], record["union"])
        if record["called"]:
            run.usage.add(record["usage"])
    return run


def _task(task: str) -> str:
    return task if task in ("referring", "reasoning", "semantic") else "referring"


def compare_table(runs: list[ReferEvaluation]) -> str:
    """Several evaluations side by side (one column per run, scores in percent)."""
    keys = ["n", "failures", "gIoU", "cIoU"] + [f"P@{t:.1f}" for t in THRESHOLDS]
    rows = [["metric"] + [r.vlm for r in runs]]
    for key in keys:
        rows.append([key] + [str(r.summary()[key]) if key in ("n", "failures") else _pct(r.summary()[key])
                             for r in runs])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    notes = sorted({r.note for r in runs if r.note})
    return "\n".join(lines + notes)
