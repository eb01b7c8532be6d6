"""LoRA training data: referring / reasoning samples turned into (prompt, target answer) lines.

For every sample, :func:`rs_helpers.refer.click_sim.simulate_clicks` runs frozen SAM in the loop on the
ground-truth mask; the clicks it finds, moved to the 0-1000 grid, are the answer the model is
taught to write, formatted by :func:`rs_helpers.refer.clicks.format_clicks` (the exact string that
:func:`rs_helpers.refer.clicks.parse_clicks` reads back to the same clicks).

One JSON object per line (the format ``rs-seg train-lora`` reads)::

    {"image": "/abs/path.png", "text": "...", "task": "referring", "n_clicks": 6,
     "clicks": [{"x": 512, "y": 300, "label": 1}, ...], "answer": "{\\"clicks\\": [...]}",
     "id": "...", "iou": 0.87, "stop_reason": "n_clicks", "tie": "negative", "multimask": "auto",
     "segmenter": "sam", "segmenter_model": "vit_l", "dataset": "rrsisd", "root": "/abs/RRSIS-D", "split": "train"}

``n_clicks`` is the N of the prompt ("write up to N clicks"), kept even when the simulation
stopped early, so training prompts match inference prompts. ``id``, ``iou`` (SAM's IoU with the
simulated clicks) and ``stop_reason`` are for inspection; the trainer ignores them. ``tie`` and
``multimask`` record the click-simulation rules used (:mod:`rs_helpers.refer.click_sim`'s tie rule,
:mod:`rs_helpers.sam.from_clicks`' multimask rule), so files made under other rules can be told apart;
``segmenter`` / ``segmenter_model`` (given by ``rs-seg lora-data``: sam, sam2 or sam3 and the model id) name
the model in the loop, since the clicks that reproduce a mask depend on it.

``dataset`` / ``root`` / ``split`` say where the sample came from (registry name, absolute root or
null for the shipped samples, split; all null when unknown): with them a held-out file is itself a
referring dataset, ``rs-seg eval refer --dataset jsonl --root heldout.jsonl`` (the trainer ignores
them too).

A sample whose target is empty (EarthReason has some) is written with the no-target answer
``{"clicks": [], "reason": "..."}`` (:func:`rs_helpers.refer.clicks.no_target_answer`), ``"clicks": []``,
``"iou": null`` and ``"stop_reason": "no_target"``: SAM is not run for it, and a tuned model learns to
say "nothing here" (as SegEarth-R1 trains on its empty targets). ``skip_empty=True``
(``rs-seg lora-data --skip-empty``) skips such samples instead, as before.

Samples are grouped by image so that SAM embeds each image once. A held-out split is drawn by
*image* (never the same image in training and evaluation), with a fixed seed.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from rs_helpers.refer.click_sim import DEFAULT_TIE, Predict, check_tie, sam_predictor_fn, simulate_clicks
from rs_helpers.refer.clicks import clicks_to_records, format_clicks, no_target_answer, parse_clicks
from rs_helpers.errors import BadInputError
from rs_helpers.refer.prompts import DEFAULT_N_CLICKS, TASKS
from rs_helpers.sam.from_clicks import DEFAULT_MULTIMASK, multimask_mode


@dataclass
class LoraDataSummary:
    """What :func:`build_examples` made: the ``examples`` (dicts, one per line) and the ``skipped``
    samples as ``(id, reason)``; after :func:`write_lora_data` also the files written."""

    examples: list[dict]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    train: list[dict] = field(default_factory=list)
    holdout: list[dict] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def mean_iou(self) -> float | None:
        """SAM's mean IoU over the examples with a target (None when there is none)."""
        ious = [e["iou"] for e in self.examples if e.get("iou") is not None]
        return float(np.mean(ious)) if ious else None

    @property
    def no_target(self) -> int:
        """How many examples are empty-target samples with the no-target answer."""
        return sum(1 for e in self.examples if not e.get("clicks"))


def example(record, sim, n_clicks: int = DEFAULT_N_CLICKS, *, tie: str = DEFAULT_TIE,
            multimask: bool | str = DEFAULT_MULTIMASK) -> dict:
    """One training line from a sample record (``.image``, ``.text``, ``.task``, ``.id``) and its
    click simulation (None: an empty target, written with the no-target answer). The answer is
    checked to parse back to exactly the target clicks. ``tie`` and ``multimask`` are the rules
    the simulation ran under, recorded on the line."""
    grid = sim.grid_clicks() if sim is not None else []
    answer = format_clicks(grid) if grid else no_target_answer()
    if parse_clicks(answer) != grid:  # the format and the parser are one contract
        raise AssertionError(f"answer {answer!r} does not parse back to {grid}")
    task = str(getattr(record, "task", "") or "referring").lower()
    if task not in TASKS:
        task = "referring"
    return {"image": str(Path(record.image).expanduser().resolve()), "text": " ".join(str(record.text).split()),
            "task": task, "n_clicks": int(n_clicks), "clicks": clicks_to_records(grid), "answer": answer,
            "id": str(getattr(record, "id", "")), "iou": _finite(sim.final_iou) if sim is not None else None,
            "stop_reason": sim.stop_reason if sim is not None else "no_target",
            "tie": tie, "multimask": multimask_mode(multimask)}


def _finite(value) -> float | None:
    """``value`` rounded, or None when it is not a finite number (JSON cannot hold NaN)."""
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


SOURCE_KEYS = ("dataset", "root", "split")
UNKNOWN_SOURCE = {"dataset": None, "root": None, "split": None}


def dataset_source(ds) -> dict:
    """The provenance fields of a loaded referring dataset: its registry name, its root as an
    absolute path (None for the shipped samples) and its split."""
    root = getattr(ds, "root", None)
    return {"dataset": str(ds.name), "root": None if root is None else str(Path(root).expanduser().resolve()),
            "split": getattr(ds, "split", None)}


def infer_source(records: Sequence) -> dict:
    """Provenance for records given without one: the shipped samples are recognised (id and image);
    anything else is unknown (all fields None)."""
    from rs_helpers.samples import load_referring

    try:
        shipped = {(s.id, str(Path(s.image).resolve())) for s in load_referring()}
    except (OSError, ValueError, KeyError, BadInputError):
        return dict(UNKNOWN_SOURCE)
    keys = {(str(getattr(r, "id", "")), str(Path(r.image).expanduser().resolve())) for r in records}
    if keys and keys <= shipped:
        return {"dataset": "samples", "root": None, "split": "all"}
    return dict(UNKNOWN_SOURCE)


def group_by_image(records: Sequence) -> list[list]:
    """Records grouped by image path, groups in order of first appearance (records keep theirs)."""
    groups: dict[str, list] = {}
    for record in records:
        groups.setdefault(str(Path(record.image).expanduser().resolve()), []).append(record)
    return list(groups.values())


def build_examples(records: Sequence, sam=None, n_clicks: int = DEFAULT_N_CLICKS, *,
                   multimask: bool | str = DEFAULT_MULTIMASK, stop_iou: float | None = None,
                   make_predict: Callable[[np.ndarray], Predict] | None = None,
                   progress: bool = True, source: dict | None = None, tie: str = DEFAULT_TIE,
                   skip_empty: bool = False, segmenter: dict | None = None) -> LoraDataSummary:
    """Simulate clicks for every record and return the training lines.

    ``records``: objects with ``.image``, ``.text``, ``.task``, ``.id`` and ``.load() -> (RasterImage,
    bool mask)`` (``rs_helpers.samples.ReferringSample`` and the dataset loaders' records).
    ``make_predict(image_rgb) -> predict``: how to get SAM for one image (default: ``sam`` through
    :func:`sam_predictor_fn`); it is called once per image, and only for an image with a target.
    ``multimask`` (SAM's masks, :mod:`rs_helpers.sam.from_clicks`) and ``tie``
    (:func:`rs_helpers.refer.click_sim.next_click`) are the simulation's rules, written on every line.
    A record whose mask is empty gives the no-target line (module docstring), or is skipped with
    ``skip_empty``. Records whose mask has the wrong size or cannot be read (whatever the reader
    raised: a truncated or corrupt image, complex pixels, an undecodable mask) are skipped and listed
    in ``skipped`` (with a warning), so one bad file does not end the run; missing weights and
    Ctrl-C still stop it.
    ``source``: the ``dataset`` / ``root`` / ``split`` written on every line (see
    :func:`dataset_source`); default: :func:`infer_source` (the shipped samples, else unknown).
    ``segmenter``: fields naming the model in the loop (``{"segmenter": ..., "segmenter_model": ...}``),
    written on every line.
    """
    from tqdm.auto import tqdm

    if int(n_clicks) < 1:
        raise BadInputError(f"n_clicks must be at least 1, got {n_clicks}")
    multimask, tie = multimask_mode(multimask), check_tie(tie)
    if make_predict is None:
        if sam is None:
            raise BadInputError("build_examples needs a SAM model (or make_predict)")
        make_predict = lambda rgb: sam_predictor_fn(sam, rgb, multimask=multimask)  # noqa: E731
    source = {key: (source or {}).get(key) for key in SOURCE_KEYS} if source else infer_source(records)
    summary = LoraDataSummary(examples=[])
    bar = tqdm(total=len(records), desc="simulating clicks", unit="sample", disable=not progress)
    for group in group_by_image(records):
        predict = None
        for record in group:
            rid = str(getattr(record, "id", record.image))
            try:
                image, mask = _load(record)
                mask = np.asarray(mask) > 0
                if mask.shape != (image.height, image.width):
                    raise BadInputError(f"mask {mask.shape[1]}x{mask.shape[0]} but image "
                                        f"{image.width}x{image.height}")
                if skip_empty and not mask.any():
                    raise BadInputError("empty target mask")
                if not str(record.text).strip():
                    raise BadInputError("empty text")
                sim = None  # an empty target: the no-target answer, SAM not needed
                if mask.any():
                    if predict is None:
                        predict = make_predict(image.rgb)  # one image embedding per image
                    sim = simulate_clicks(mask, predict, n_clicks=n_clicks, stop_iou=stop_iou, tie=tie)
                summary.examples.append({**example(record, sim, n_clicks, tie=tie, multimask=multimask),
                                         **dict(segmenter or {}), **source})
            except BadInputError as exc:
                summary.skipped.append((rid, str(exc)))
                warnings.warn(f"lora-data: skipped {rid}: {exc}", stacklevel=2)
            bar.update(1)
    bar.close()
    return summary


def _load(record):
    """``record.load()``, where any failure to read the sample's files (a truncated or corrupt
    image, complex pixels, a mask that cannot be decoded) is the sample's problem: a
    :class:`BadInputError` that skips it. Missing weights and Ctrl-C still stop the run."""
    from rs_helpers.errors import RsError

    try:
        return record.load()
    except RsError:  # BadInputError is already the sample's problem; other RsErrors stop the run
        raise
    except Exception as exc:  # noqa: BLE001 - unreadable data, whatever the reader raised
        reason = str(exc).splitlines()[0][:200] if str(exc).strip() else ""
        raise BadInputError(f"cannot read the sample ({type(exc).__name__}{': ' + reason if reason else ''})") from None


def split_holdout(examples: Sequence[dict], fraction: float, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, held-out) split by image: ``ceil(fraction * images)`` images, drawn with ``seed``,
    go to the held-out set with all their lines; at least one image stays on each side when there
    are two or more images. ``fraction`` 0 gives no held-out lines."""
    if not 0 <= fraction < 1:
        raise BadInputError(f"the held-out fraction must be in [0, 1), got {fraction}")
    images = sorted({e["image"] for e in examples})
    if fraction == 0 or len(images) < 2:
        if fraction > 0:
            warnings.warn("lora-data: one image only, nothing held out", stacklevel=2)
        return list(examples), []
    n_held = min(len(images) - 1, max(1, math.ceil(fraction * len(images))))
    order = np.random.default_rng(seed).permutation(len(images))
    held = {images[i] for i in order[:n_held]}
    return ([e for e in examples if e["image"] not in held], [e for e in examples if e["image"] in held])


def select_records(records: Sequence, lines: Iterable[dict]) -> list:
    """The records (in their order) whose ids appear in ``lines``: e.g. the held-out samples,
    to evaluate masks on them with ``rs_helpers.evaluation.refer_eval.evaluate_refer``."""
    ids = {str(line.get("id")) for line in lines}
    return [r for r in records if str(getattr(r, "id", "")) in ids]


def jsonl_line(value: dict) -> str:
    """One line of a JSON lines file: UTF-8 where it can be, ``\\u`` escapes where a text holds
    characters UTF-8 cannot store (lone surrogates); never NaN or Infinity (refused on reading)."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, allow_nan=False)
    return text + "\n"


def write_jsonl(path: str | Path, lines: Iterable[dict]) -> Path:
    """Write one JSON object a line, whole or not at all (an earlier file stays if this fails)."""
    return write_jsonl_files([(path, lines)])[0]


def write_jsonl_files(files: Sequence[tuple[str | Path, Iterable[dict]]]) -> list[Path]:
    """Write several JSON lines files together: each goes to a temporary name and all are renamed
    into place only once every one is complete, so a failure leaves none of them half written."""
    import contextlib

    from rs_helpers.files import atomic_path

    paths = [Path(path).expanduser() for path, _ in files]
    try:
        with contextlib.ExitStack() as stack:
            temps = [stack.enter_context(atomic_path(path)) for path in paths]
            for tmp, (_, lines) in zip(temps, files):
                with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                    for line in lines:
                        f.write(jsonl_line(line))
    except ValueError as exc:  # a value JSON cannot hold (NaN): said plainly, nothing written
        if isinstance(exc, BadInputError):
            raise
        raise BadInputError(f"{paths[0]}: cannot write a line ({exc}); nothing was written") from None
    except OSError as exc:  # a folder that is a file, no permission, a full disk
        where = exc.filename or paths[0]
        raise BadInputError(f"cannot write {where} ({exc.strerror or exc}); nothing was written") from None
    return paths


def read_jsonl(path: str | Path) -> list[dict]:
    """The lines of a training file as dicts (``rs_helpers.lora.train.read_train_file`` checks
    their fields). A line that is not UTF-8, not JSON, holds NaN / Infinity, nests too deep or is
    not an object is a :class:`BadInputError` naming the file and the line."""
    from rs_helpers.evaluation.datasets.jsonl import json_lines

    path = Path(path).expanduser()
    out = []
    for number, value in json_lines(path, "training file"):
        if not isinstance(value, dict):
            raise BadInputError(f"{path}: line {number}: not a JSON object (got {type(value).__name__})")
        out.append(value)
    return out


def load_records(dataset: str, root: str | Path | None = None, split: str | None = None,
                 limit: int | None = None, all_questions: bool = False) -> list:
    """The first ``limit`` records of a referring / reasoning dataset (``samples``, ``rrsisd``,
    ``earthreason``, ``refsegrs``). ``all_questions``: one record per question for datasets that
    ask several questions per image (EarthReason); otherwise each image's first question."""
    return load_records_with_source(dataset, root, split, limit, all_questions)[0]


def load_records_with_source(dataset: str, root: str | Path | None = None, split: str | None = None,
                             limit: int | None = None, all_questions: bool = False) -> tuple[list, dict]:
    """:func:`load_records` and the dataset's provenance (:func:`dataset_source`) to write on the lines."""
    from rs_helpers.evaluation.datasets import get_referring_dataset

    ds = get_referring_dataset(dataset, root=root, split=split)
    if all_questions:
        if not hasattr(ds, "expand_questions"):
            raise BadInputError(f"--all-questions: {dataset} has one text per sample (it is for earthreason)")
        records = list(ds.expand_questions())
    else:
        records = list(ds.samples)
    if limit is not None:
        if limit < 1:
            raise BadInputError(f"--limit must be at least 1, got {limit}")
        records = records[:limit]
    if not records:
        raise BadInputError(f"dataset {dataset!r} has no samples" + (f" in split {split!r}" if split else ""))
    return records, dataset_source(ds)


def write_lora_data(records: Sequence, out: str | Path, sam=None, n_clicks: int = DEFAULT_N_CLICKS, *,
                    holdout: float = 0.0, holdout_out: str | Path | None = None, seed: int = 0,
                    multimask: bool | str = DEFAULT_MULTIMASK, stop_iou: float | None = None,
                    make_predict: Callable[[np.ndarray], Predict] | None = None,
                    progress: bool = True, source: dict | None = None, tie: str = DEFAULT_TIE,
                    skip_empty: bool = False, segmenter: dict | None = None) -> LoraDataSummary:
    """Build the examples and write the training file (and the held-out file if ``holdout``).
    ``source``, ``multimask``, ``tie``, ``skip_empty``, ``segmenter``: as in :func:`build_examples`."""
    if holdout and not holdout_out:
        raise BadInputError("a held-out fraction needs a file to write it to (--holdout-out)")
    summary = build_examples(records, sam, n_clicks, multimask=multimask, stop_iou=stop_iou,
                             make_predict=make_predict, progress=progress, source=source, tie=tie,
                             skip_empty=skip_empty, segmenter=segmenter)
    if not summary.examples:
        reasons = "; ".join(f"{i}: {r}" for i, r in summary.skipped[:5])
        raise BadInputError(f"no usable sample ({reasons})")
    summary.train, summary.holdout = split_holdout(summary.examples, holdout, seed)
    files = [(out, summary.train)] + ([(holdout_out, summary.holdout)] if holdout_out and holdout else [])
    summary.files.extend(write_jsonl_files(files))  # both files or neither
    return summary
