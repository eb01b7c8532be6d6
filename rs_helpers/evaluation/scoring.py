"""Scoring saved predictions (the engine of ``rs-seg score``): masks or label maps in a folder
against ground truth, under a named protocol (:mod:`rs_helpers.evaluation.protocols`).

* :func:`score_refer`: binary masks paired with ground-truth masks by file stem (PNG or TIFF,
  > 0 is target), scored by :class:`~rs_helpers.evaluation.refer_metrics.ReferScores` with the
  protocol's rules, at its scoring resolution.
* :func:`score_ovss`: class-index label maps (as ``rs-seg ovss --out`` writes them) against a
  benchmark's ground truth, decoded by the dataset's codec, summed into one confusion matrix
  (mmseg's ``IoUMetric``: mIoU over the classes present, or the foreground IoU of a binary set).

Every ground-truth file needs its prediction: a missing one is a :class:`BadInputError` naming
it, never a silent skip. Predictions without ground truth are listed (``extra``), not scored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rs_helpers.errors import BadInputError, RsError
from rs_helpers.evaluation.metrics import ConfusionMatrix, confusion_matrix
from rs_helpers.evaluation.protocols import background_index, get_protocol
from rs_helpers.evaluation.refer_metrics import THRESHOLDS, ReferScores, intersection_union, to_protocol_resolution

MASK_EXTS = (".png", ".tif", ".tiff")


# --------------------------------------------------------------------------- files
def list_masks(folder: str | Path, option: str) -> dict[str, Path]:
    """PNG and TIFF files of ``folder`` by stem (hidden and temporary files left out)."""
    folder = Path(folder)
    if not folder.exists():
        raise BadInputError(f"{option} {folder}: no such folder")
    if not folder.is_dir():
        raise BadInputError(f"{option} {folder} is a file; give the folder that holds the masks")
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise BadInputError(f"{option} {folder} cannot be listed ({exc.strerror or exc})") from None
    found: dict[str, Path] = {}
    for path in entries:
        if path.name.startswith(".") or path.suffix.lower() not in MASK_EXTS:
            continue
        if path.stem in found:
            raise BadInputError(f"{option}: {found[path.stem].name} and {path.name} in {folder} share the stem "
                                f"{path.stem!r}; keep one of them")
        found[path.stem] = path
    if not found:
        raise BadInputError(f"{option} {folder} holds no PNG or TIFF file")
    return found


def read_raw(path: Path) -> np.ndarray:
    """Band 1 of a mask or label raster; any failure to read it is a one-line :class:`BadInputError`."""
    from rs_helpers.geo.rasters import read_mask

    try:
        return np.asarray(read_mask(path))
    except RsError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file can raise anything from the decoder
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise BadInputError(f"{path} cannot be read ({detail})") from None


def read_binary(path: Path) -> np.ndarray:
    """A mask as bool: > 0 is the target (NaN is not)."""
    raw = read_raw(path)
    with np.errstate(invalid="ignore"):
        return raw > 0


def _size(shape) -> str:
    return f"{shape[1]}x{shape[0]}"


def _missing(kind: str, names: list[str], pred_dir: Path) -> BadInputError:
    more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
    return BadInputError(f"no prediction for {kind} {names[0]}{more}: put its mask in {pred_dir} under the same "
                         "name (.png, .tif or .tiff)")


# --------------------------------------------------------------------------- referring
@dataclass
class ReferRun:
    """The outcome of :func:`score_refer`."""

    protocol: object
    scores: ReferScores
    records: list = field(default_factory=list)
    extra: list = field(default_factory=list)  # prediction files with no ground truth

    def summary(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.scores.summary().items()}

    def to_json(self) -> dict:
        return {"kind": "refer", "protocol": self.protocol.name, "summary": self.summary(),
                "unscored_predictions": self.extra, "samples": self.records}


def score_refer(pred_dir: str | Path, gt_dir: str | Path, protocol=None) -> ReferRun:
    """Score every ground-truth mask of ``gt_dir`` against the prediction of the same stem."""
    protocol = protocol or get_protocol("native", kind="refer")
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    gts, preds = list_masks(gt_dir, "--gt"), list_masks(pred_dir, "--pred")
    if gt_dir.resolve() == pred_dir.resolve():
        raise BadInputError(f"--pred and --gt are the same folder ({gt_dir}); give the predictions their own")
    missing = [str(gts[s]) for s in gts if s not in preds]
    if missing:
        raise _missing("ground truth", missing, pred_dir)
    run = ReferRun(protocol, ReferScores.for_protocol(protocol), extra=[p.name for s, p in preds.items() if s not in gts])
    for stem, gt_path in gts.items():
        target, pred = read_binary(gt_path), read_binary(preds[stem])
        try:
            pred_s, target_s = to_protocol_resolution(pred, target, protocol)
        except BadInputError:
            raise BadInputError(f"prediction {preds[stem]} is {_size(pred.shape)} but its ground truth {gt_path} is "
                                f"{_size(target.shape)}") from None
        inter, union = intersection_union(pred_s, target_s)
        value = run.scores.add_counts(inter, union)
        run.records.append({"stem": stem, "prediction": str(preds[stem]), "ground_truth": str(gt_path),
                            "intersection": inter, "union": union, "iou": value})
    return run


def _pct(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def refer_score_line(run: ReferRun) -> str:
    """``score: gIoU G cIoU C P@0.5 A ... P@0.9 E (N samples, protocol NAME)`` (percent)."""
    s = run.scores.summary()
    cells = [f"gIoU {_pct(s['gIoU'])}", f"cIoU {_pct(s['cIoU'])}"] + [f"P@{t:.1f} {_pct(s[f'P@{t:.1f}'])}"
                                                                    for t in THRESHOLDS]
    return f"score: {' '.join(cells)} ({s['n']} samples, protocol {run.protocol.name})"


# --------------------------------------------------------------------------- open vocabulary
@dataclass
class OvssRun:
    """The outcome of :func:`score_ovss`: one confusion matrix over every image."""

    protocol: object
    dataset: str
    class_names: list
    binary: bool
    confusion: ConfusionMatrix
    records: list = field(default_factory=list)
    extra: list = field(default_factory=list)
    outside: int = 0  # predicted pixels (on labelled ground truth) outside the class range: misses

    @property
    def metric(self) -> str:
        return "IoU" if self.binary else "mIoU"

    @property
    def value(self) -> float:
        """mIoU over the classes present in ground truth or prediction, or the foreground IoU (0..1)."""
        return self.confusion.foreground_iou(1) if self.binary else self.confusion.miou()

    def to_json(self) -> dict:
        value = self.value
        return {"kind": "ovss", "dataset": self.dataset, "protocol": self.protocol.name, "metric": self.metric,
                "value": None if math.isnan(value) else value, "n_images": len(self.records),
                "outside_class_range_pixels": self.outside, "unscored_predictions": self.extra,
                **self.confusion.to_dict(self.class_names), "images": self.records}


def _legend_map(path: Path, classes: list, binary: bool) -> dict[int, int] | None:
    """``map.png``'s legend (``map.legend.json``, written by ``rs-seg ovss``) as {label: dataset class},
    so that a map made with the classes in another order is still scored right; None: no legend."""
    from rs_helpers.files import read_json_file

    legend = path.with_name(path.stem + ".legend.json")
    if not legend.is_file():
        return None
    data = read_json_file(legend, "legend")
    entries = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("index"), int)
                                                and isinstance(e.get("name"), str) for e in entries):
        raise BadInputError(f"{legend}: not an rs-seg legend (want \"classes\": [{{\"index\", \"name\"}}, ...])")
    if bool(data.get("binary")) != binary:
        raise BadInputError(f"{legend}: the map is {'binary' if data.get('binary') else 'multi-class'}, but the "
                            f"dataset is {'binary' if binary else 'multi-class'}")
    if binary:
        return None
    names = {}
    for index, entry in enumerate(classes):
        for synonym in str(entry).split(","):
            names.setdefault(synonym.strip().lower(), index)
    mapping = {}
    for entry in entries:
        if entry["name"].strip().lower() not in names:
            raise BadInputError(f"{legend}: class {entry['name']!r} is not one of the dataset's classes")
        mapping[entry["index"]] = names[entry["name"].strip().lower()]
    return mapping


def _classes(raw: np.ndarray, path: Path, binary: bool, mapping: dict | None) -> np.ndarray:
    """A label map's values as class indices (int64); a binary set's target is > 0."""
    if binary:
        with np.errstate(invalid="ignore"):
            return (raw > 0).astype(np.int64)
    if raw.dtype.kind == "f":
        if not np.isfinite(raw).all() or not np.array_equal(raw, np.round(raw)):
            raise BadInputError(f"{path} holds values that are not class indices (fractions, NaN or inf)")
    labels = raw.astype(np.int64)
    if mapping:
        out = labels.copy()
        for src, dst in mapping.items():
            out[labels == src] = dst
        labels = out
    return labels


def _prediction_for(sample, preds: dict[str, Path]) -> Path | None:
    """The prediction of a sample: named by its id, or by its image's stem (whole images only)."""
    if sample.id in preds:
        return preds[sample.id]
    if sample.window is None:
        return preds.get(Path(sample.image).stem)
    return None


def _load_labels(sample) -> np.ndarray:
    try:
        return sample.load_labels()
    except RsError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged label file can raise anything
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise BadInputError(f"the ground truth of {sample.id} ({sample.label}) cannot be read ({detail})") from None


def score_ovss(pred_dir: str | Path, dataset, protocol=None) -> OvssRun:
    """Score a folder of label maps against every sample of an OVSS benchmark (a loaded dataset)."""
    if dataset.name == "samples":
        raise BadInputError("the shipped samples mix vocabularies; score a benchmark, or use rs-seg eval ovss "
                            "--dataset samples")
    protocol = protocol or get_protocol("native", dataset.name, "ovss")
    pred_dir = Path(pred_dir)
    preds = list_masks(pred_dir, "--pred")
    pairs, missing = [], []
    for sample in dataset.samples:
        path = _prediction_for(sample, preds)
        if path is None:
            where = f"{sample.label}" + (f" window {sample.window}" if sample.window else "")
            missing.append(f"{where} (sample {sample.id})")
        else:
            pairs.append((sample, path))
    if missing:
        raise _missing("the ground truth", missing, pred_dir)
    used = {p for _, p in pairs}
    classes, binary = list(dataset.classes), bool(dataset.binary)
    names = [c.split(",")[0].strip() for c in classes]
    run = OvssRun(protocol, dataset.name, names, binary, ConfusionMatrix(len(classes), protocol.ignore_index),
                  extra=[p.name for p in preds.values() if p not in used])
    for sample, path in pairs:
        labels = _load_labels(sample)
        pred = _classes(read_raw(path), path, binary, _legend_map(path, classes, binary))
        if pred.shape != labels.shape:
            raise BadInputError(f"prediction {path} is {_size(pred.shape)} but the ground truth of {sample.id} "
                                f"({sample.label}) is {_size(labels.shape)}")
        cm = confusion_matrix(pred, labels, len(classes), protocol.ignore_index)
        run.confusion += cm
        run.outside += int(cm.unmatched.sum())
        score = cm.foreground_iou(1) if binary else cm.miou()
        run.records.append({"id": sample.id, "prediction": str(path), "labelled_pixels": int(cm.total),
                            "score": None if math.isnan(score) else score})
    return run


def ovss_score_line(run: OvssRun) -> str:
    """``score: mIoU M (N images, K classes, protocol NAME)`` (binary sets: ``score: IoU M ...``)."""
    return (f"score: {run.metric} {_pct(run.value)} ({len(run.records)} images, {len(run.class_names)} classes, "
            f"protocol {run.protocol.name})")


def label_from_probabilities(probs: np.ndarray, protocol, classes: list) -> np.ndarray:
    """Class probabilities (C x H x W) to labels as SegEarth-OV's ``postprocess_result`` does: the
    argmax, and ``bg_idx`` where the best probability is below the protocol's ``prob_thd``."""
    probs = np.asarray(probs)
    if probs.ndim != 3 or probs.shape[0] != len(classes):
        raise BadInputError(f"probabilities {probs.shape} do not fit {len(classes)} classes (want C x H x W)")
    labels = probs.argmax(0).astype(np.uint8)
    bg = background_index(protocol, classes)
    if bg is not None and protocol.prob_thd > 0:
        labels[probs.max(0) < protocol.prob_thd] = bg
    return labels


__all__ = ["OvssRun", "ReferRun", "label_from_probabilities", "list_masks", "ovss_score_line",
           "refer_score_line", "score_ovss", "score_refer"]
