"""EarthReason (Li et al., 2025, released with SegEarth-R1): 5,434 images with implicit
"reasoning" questions whose answer is a region; 2,371 / 1,135 / 1,928 train / val / test.

Published format (Hugging Face ``earth-insights/EarthReason``, ``RSReasonSeg``):
``{split}/images/<name>.jpg|png``, ``{split}/labels/<name>.png`` (non-zero = target) and
``{split}/QAs/<name>.json`` with ``{"questions": [...], "answer": [...]}``; files are matched
by name. An empty ``answer`` list marks an image without the target (empty mask). ``text`` is
the first question, as SegEarth-R1 evaluates; ``expand_questions()`` yields one record per
question (for training data).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from rs_helpers.errors import BadInputError
from rs_helpers.samples import ReferringSample
from rs_helpers.evaluation.datasets.base import LayoutMismatch, ReferringDataset, list_files
from rs_helpers.files import read_json_file


@dataclass
class ReasoningSample(ReferringSample):
    """A reasoning query with every question and the published answer text."""

    questions: list = field(default_factory=list)
    answer: str = ""


def _texts(value, path: Path, key: str) -> list[str]:
    """A QA field as a list of strings: one string counts as a list of one."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise BadInputError(f"{path}: \"{key}\" must be a list of strings, got {str(value)[:80]}")
    return [str(v) for v in value]


def _answers(value) -> list[str]:
    """The published answers, for inspection only: any list is kept as text."""
    if isinstance(value, str):
        return [value]
    return [str(v)[:1000] for v in value] if isinstance(value, list) else []


def read_qa(path: Path) -> dict:
    """One QA file checked: ``{"questions": [str], "answer": [...], "class": str}`` (``answer`` and
    ``class`` optional). A file that is not that is a :class:`BadInputError` naming it."""
    record = read_json_file(path, "QA file")
    if not isinstance(record, dict):
        raise BadInputError(f"{path}: want a JSON object with \"questions\", got {type(record).__name__}")
    target = record.get("class", record.get("category", ""))
    if not isinstance(target, (str, int)) or isinstance(target, bool):
        raise BadInputError(f"{path}: \"class\" must be a string, got {str(target)[:80]}")
    return {"questions": _texts(record.get("questions"), path, "questions"),
            "answer": _answers(record.get("answer")), "class": str(target or "")}


class EarthReason(ReferringDataset):
    name = "earthreason"
    title = "EarthReason"
    task = "reasoning"
    splits = ("test", "val", "train")
    default_split = "test"
    folders = ("RSReasonSeg", "rs_reason_seg/RSReasonSeg", "EarthReason")
    url = "https://huggingface.co/datasets/earth-insights/EarthReason"
    reported = {  # gIoU, docs/method.md
        "paper: LoRA Qwen3-VL-2B": {"test": 72.7},
        "paper: GPT-5 zero-shot": {"test": 47.4},
        "SegEarth-R1": {"test": 70.75},
    }
    layout = """
RSReasonSeg/                       (EarthReason release)
  test/images/xxx.jpg ...          (also val/, train/; a doubled test/test/ is accepted)
  test/labels/xxx.png ...          (non-zero = target)
  test/QAs/xxx.json ...            ({"questions": [...], "answer": [...]})
"""

    def find(self, root: Path) -> list[ReasoningSample]:
        base = next((root / p for p in (self.split, f"{self.split}/{self.split}") if (root / p / "images").is_dir()), None)
        if base is None:
            raise LayoutMismatch(f"no {self.split}/images/ in {root}")
        labels = {p.stem: p for p in list_files(base / "labels", (".png",))}
        qas = {p.stem: p for p in list_files(base / "QAs", (".json", ".txt"))}
        if not labels or not qas:
            raise LayoutMismatch(f"no labels/*.png and QAs/*.json next to {base / 'images'}")
        out = []
        for image in list_files(base / "images", (".jpg", ".jpeg", ".png")):
            if image.stem not in labels or image.stem not in qas:
                continue
            record = read_qa(qas[image.stem])
            questions = [q for q in record["questions"] if q.strip()]
            if not questions:
                continue
            answers = record["answer"]
            out.append(ReasoningSample(
                id=f"earthreason_{image.stem}", image=image, text=str(questions[0]).strip(), task="reasoning",
                target_class=record["class"], mask=labels[image.stem],
                bbox_xyxy=None, questions=[str(q).strip() for q in questions],
                answer=str(answers[0]) if answers else ""))
        return out

    def expand_questions(self) -> list[ReasoningSample]:
        """One record per question (ids suffixed ``_q<k>``), e.g. to build training data."""
        return [replace(s, id=f"{s.id}_q{k}", text=q) for s in self.records for k, q in enumerate(s.questions)]
