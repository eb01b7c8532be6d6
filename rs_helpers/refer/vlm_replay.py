"""Stored answers played back as a backend (``replay:FILE.json``): offline notebooks and tests.

A bare ``replay`` plays the hand-written example answers shipped with the sample queries;
the file is read defensively (size, encoding, depth, shape), so a bad one is exit 2."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rs_helpers.errors import BadInputError
from rs_helpers.files import read_json_file
from rs_helpers.refer.vlm import UsageMeter, VLMAnswer, clean_usage

STORED_ANSWERS = "stored_answers/handwritten_examples.json"  # under the data folder


def stored_answers_path() -> Path:
    from rs_helpers.samples import data_root

    return data_root() / STORED_ANSWERS


class ReplayBackend:
    """Plays back stored answers instead of asking a model.

    The file holds ``{"label": ..., "model": ..., "answers": [{"text", "image_size": [w, h],
    "image_mean_rgb", "answer", "usage"}, ...]}``. ``ask`` picks the entry whose query text is
    in the prompt and whose image size matches (the mean colour breaks any remaining tie).
    ``label`` says what the answers are; show it wherever they are used. The answers are
    checked when loaded, so a wrong file fails at once (exit 2), naming itself and the problem.
    """

    def __init__(self, answers: list[dict], label: str = "", name: str = "replay", source: str | None = None):
        self.answers = check_stored_answers(answers, source or name)
        self.label = label
        self.name = name
        self.usage = UsageMeter()

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> "ReplayBackend":
        path = Path(path).expanduser() if path else stored_answers_path()
        data = read_json_file(path, "stored-answers file")
        if not isinstance(data, dict) or not isinstance(data.get("answers"), list):
            raise BadInputError(f"{path} is not a stored-answers file: want a JSON object with an "
                                "'answers' list of {\"text\", \"answer\", ...} objects")
        label = data.get("label")
        if label is not None and not isinstance(label, str):
            raise BadInputError(f"{path} is not a stored-answers file: 'label' is not text")
        return cls(data["answers"], label=label or "", name=f"replay:{path.name}", source=str(path))

    def find(self, image_rgb: np.ndarray, prompt: str) -> dict:
        height, width = np.asarray(image_rgb).shape[:2]
        squashed = " ".join(prompt.split())
        hits = [a for a in self.answers if _quoted(a.get("text", "")) in squashed
                and list(a.get("image_size") or [width, height]) == [width, height]]
        if not hits:
            raise BadInputError(f"{self.name}: no stored answer for this prompt and a {width}x{height} image")
        if len(hits) > 1:
            mean = np.asarray(image_rgb).reshape(-1, 3).mean(axis=0)
            hits.sort(key=lambda a: float(np.abs(np.asarray(a.get("image_mean_rgb") or mean) - mean).sum()))
        return hits[0]

    def ask(self, image_rgb: np.ndarray, prompt: str) -> VLMAnswer:
        entry = self.find(image_rgb, prompt)
        usage = clean_usage(entry.get("usage"))
        self.usage.add(usage)
        return VLMAnswer(text=str(entry["answer"]), usage=usage)


def _quoted(text: str) -> str:
    """The query text as :func:`rs_helpers.refer.prompts.build_prompt` quotes it."""
    return '"' + " ".join(str(text).split()).replace('"', "'") + '"'


def check_stored_answers(answers, source: str = "answers") -> list[dict]:
    """``answers`` as a list of entries the replay backend can use, else :class:`BadInputError`
    naming ``source`` and the first bad entry: each is an object with a non-empty string
    ``text`` and a string ``answer``; ``image_size`` (when given) is [width, height] in positive
    integers, ``image_mean_rgb`` three numbers and ``usage`` an object."""
    def bad(where: str, problem: str):
        return BadInputError(f"{source} is not a stored-answers file: {where} {problem}")

    if not isinstance(answers, list):
        raise bad("'answers'", "is not a list")
    for i, entry in enumerate(answers):
        where = f"answers[{i}]"
        if not isinstance(entry, dict):
            raise bad(where, "is not an object")
        for key in ("text", "answer"):
            if key not in entry:
                raise bad(where, f"has no '{key}'")
            if not isinstance(entry[key], str):
                raise bad(f"{where}.{key}", "is not text")
        if not entry["text"].strip():
            raise bad(f"{where}.text", "is empty")
        size = entry.get("image_size")
        if size is not None and not (isinstance(size, list) and len(size) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
            raise bad(f"{where}.image_size", "is not [width, height] in positive integers")
        mean = entry.get("image_mean_rgb")
        if mean is not None and not (isinstance(mean, list) and len(mean) == 3 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in mean)):
            raise bad(f"{where}.image_mean_rgb", "is not three finite numbers")
        if entry.get("usage") is not None and not isinstance(entry["usage"], dict):
            raise bad(f"{where}.usage", "is not an object")
    return list(answers)
