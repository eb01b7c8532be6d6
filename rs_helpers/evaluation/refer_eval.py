"""Evaluate the generative branch on a referring / reasoning dataset.

Every sample goes through :func:`rs_helpers.refer.pipeline.refer`; its IoU, clicks, raw answer and token
usage are kept in a per-sample record. A sample whose answer holds no usable clicks (or whose
request failed, or whose image could not be read) counts as an empty prediction, IoU 0, and is
listed under ``failures`` with its error.
The summary (gIoU, cIoU, P@0.5..0.9) is printed beside the paper's numbers.
"""
from __future__ import annotations

import itertools
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
from rs_helpers.evaluation.refer_metrics import THRESHOLDS, ReferScores, intersection_union
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
        lines = [f"{self.dataset} {self.split}: {s['n']} samples, {s['failures']} without usable clicks; "
                 f"{self.vlm} + SAM{' ' + self.sam if self.sam else ''}, up to {self.n_clicks} clicks"]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
        if methods:
            lines.append("(paper columns: gIoU on the full split, from method.md)")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "split": self.split, "vlm": self.vlm, "sam": self.sam,
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
                   multimask: bool = True, limit: int | None = None, progress: bool = True,
                   dataset: str = "samples", split: str = "all", sam_name: str = "",
                   reported: dict | None = None, profile: str | None = None) -> ReferEvaluation:
    """Run every sample (records with ``.id``, ``.text``, ``.task``, ``.image`` and ``.load()``
    returning ``(RasterImage, bool mask)``) and score it. ``limit`` keeps the first N samples.

    Consecutive samples on the same image share one SAM embedding. One bad sample never ends
    the run: an image or mask that cannot be read (``load()`` is called inside the guard), a bad
    query text, a failed request, an odd reply or an answer without clicks is recorded with its
    error and scores IoU 0. Only a missing or rejected API key (:class:`WeightsUnavailableError`:
    every sample would fail) and Ctrl-C stop the run, and so do ``MAX_CONSECUTIVE_REQUEST_ERRORS``
    failed requests in a row (the service is down, not the samples at fault); that error carries
    the samples scored so far as ``.evaluation``.
    """
    from tqdm.auto import tqdm

    from rs_helpers.refer.vlm_openai import VLMRequestError

    samples = list(itertools.islice(samples, limit) if limit else samples)
    profile = get_profile(profile)
    run = ReferEvaluation(dataset=dataset, split=split, vlm=getattr(backend, "name", "vlm"), sam=sam_name,
                          n_clicks=n_clicks, profile=profile, reported=dict(reported or {}),
                          note=TINY_NOTE if profile == "tiny" else "")
    last_image, predictor, request_errors = None, None, 0
    bar = tqdm(samples, desc=f"refer {dataset}", unit="query", disable=not progress)
    for sample in bar:
        sample_id = getattr(sample, "id", None)
        record = {"id": sample_id, "text": getattr(sample, "text", None), "task": getattr(sample, "task", None),
                  "image": str(getattr(sample, "image", "")), "target_pixels": 0, "error": None,
                  "answer": None, "clicks": [], "pixel_clicks": [], "usage": {}}
        target = None
        try:
            try:
                image, target = sample.load()
                target = np.asarray(target).astype(bool)
            except (RsError, KeyboardInterrupt):
                raise
            except Exception as exc:  # a damaged file can raise anything from PIL or rasterio
                raise BadInputError(f"cannot read sample {sample_id} ({type(exc).__name__}: "
                                    f"{' '.join(str(exc).split())[:200]})") from None
            record["target_pixels"] = int(np.count_nonzero(target))
            if str(sample.image) != last_image:
                last_image = None  # no stale embedding if this one fails
                predictor = make_predictor(sam, image.rgb)
                last_image = str(sample.image)
            result = refer(image, sample.text, backend, task=_task(sample.task), n_clicks=n_clicks,
                           multimask=multimask, predictor=predictor, text_name=f"the text of sample {sample_id}")
            inter, union = intersection_union(result.mask, target)
        except WeightsUnavailableError:
            raise
        except RsError as exc:
            request_errors = request_errors + 1 if isinstance(exc, VLMRequestError) else 0
            record.update(error=str(exc), answer=getattr(exc, "raw_answer", None), iou=0.0,
                          intersection=0, union=record["target_pixels"], pred_pixels=0)
            if target is not None:
                run.scores.add_failure(target)
            else:  # nothing to compare with: still a failed sample, IoU 0
                run.scores.failures += 1
                run.scores.ious.append(0.0)
            if isinstance(exc, NoClicksError):
                record["usage"] = getattr(exc, "usage", {})
                run.usage.add(record["usage"])
            run.records.append(record)
            if request_errors >= MAX_CONSECUTIVE_REQUEST_ERRORS:
                error = VLMRequestError(f"{MAX_CONSECUTIVE_REQUEST_ERRORS} requests in a row failed; "
                                        f"stopping (last: {exc})")
                error.evaluation = run
                raise error from None
        else:
            request_errors = 0
            record.update(answer=result.answer, clicks=clicks_to_records(result.clicks),
                          pixel_clicks=clicks_to_records(result.pixel_clicks), usage=result.usage,
                          intersection=inter, union=union, pred_pixels=int(result.mask.sum()),
                          score=result.score, iou=run.scores.add_counts(inter, union))
            run.usage.add(result.usage)
            run.records.append(record)
        bar.set_postfix(gIoU=f"{100 * run.scores.giou():.1f}", failed=run.scores.failures)
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
