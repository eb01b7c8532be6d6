"""Click prompts: the one format every model writes, the one parser that reads them all.

A model answers ``{"clicks": [{"x": 512, "y": 300, "label": 1}, ...]}`` with x and y integers
on a 0-1000 grid relative to the image width and height (0 = left/top edge, 1000 =
right/bottom edge) and label 1 (positive: on the target) or 0 (negative: not on it).
The same grid serves GPT-5, Qwen-VL (which grounds natively on 0-1000) and the LoRA targets.

**No target**: when nothing matches, the one answer is ``{"clicks": [], "reason": "<why, briefly>"}``
(:func:`no_target_answer`; :func:`format_clicks` of no clicks). :func:`parse_clicks` returns ``[]``
for it and only for it (an empty ``"clicks"`` list and a non-empty ``"reason"`` string); any other
answer without usable clicks (``{"clicks": []}`` alone, ``[]``, prose) is a :class:`ClickParseError`.

:func:`parse_clicks` also reads what models write when they drift from the format: JSON inside
code fences or prose, trailing commas, single quotes, a bare list of points, Qwen's native
``{"point_2d": [x, y]}``, ``(x, y)``, ``[x, y]`` and ``<point>x y</point>``. Reasoning blocks
(``<think>...</think>``) are skipped, and a ``{"clicks": [...]}`` object wins over points merely
mentioned in prose. Anything it cannot read raises :class:`ClickParseError`, quoting the answer.

Clicks files (``rs-seg refer --clicks-out``, ``rs-seg clicks``) hold *pixel* coordinates:
``[{"x": px, "y": px, "label": 0|1}, ...]``.
"""
from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from rs_helpers.errors import BadInputError

GRID = 1000
_QUOTE_LIMIT = 400
_NUM = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_KV_CLICK = re.compile(
    rf"""["']?x["']?\s*[:=]\s*["']?({_NUM})["']?\s*,\s*["']?y["']?\s*[:=]\s*["']?({_NUM})["']?"""
    rf"""(?:\s*,\s*["']?label["']?\s*[:=]\s*["']?(\w+)["']?)?""")
_POINT_TAG = re.compile(rf"<point[^>]*>\s*[\(\[]?\s*({_NUM})\s*[,\s]\s*({_NUM})\s*[\)\]]?\s*</point>", re.I)
_PAIR = re.compile(rf"[\(\[]\s*({_NUM})\s*,\s*({_NUM})\s*[\)\]]")
_LIST_KEYS = ("clicks", "points", "point_prompts", "click_points")
_REASONING = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.S | re.I)
_OPEN_REASONING = re.compile(r"<(think|thinking|reasoning)>", re.I)
NO_TARGET_REASON = "nothing in the image matches the request"  # the reason written in LoRA targets
_POSITIVE = {"1", "positive", "pos", "foreground", "fg", "true", "+", "include", "yes"}
_NEGATIVE = {"0", "negative", "neg", "background", "bg", "false", "-", "exclude", "no"}


class ClickParseError(BadInputError):
    """A model answer holds no usable clicks. ``.answer`` is the answer that was read."""

    def __init__(self, reason: str, answer: str = ""):
        self.reason, self.answer = reason, answer
        super().__init__(f"{reason}; the answer was: {quote(answer)}")


@dataclass(frozen=True)
class Click:
    """One click: ``x``, ``y`` (grid units 0..1000, or pixels in a clicks file) and ``label``
    (1 positive, 0 negative)."""

    x: int
    y: int
    label: int = 1


def quote(answer: str, limit: int = _QUOTE_LIMIT) -> str:
    """``answer`` as a repr, shortened in the middle when it is long."""
    if len(answer) > limit:
        answer = answer[: limit // 2] + " [...] " + answer[-limit // 2:]
    return repr(answer)


# --------------------------------------------------------------------------- formatting
def format_clicks(clicks: Iterable[Click], reason: str = NO_TARGET_REASON) -> str:
    """The canonical answer, exactly as models are asked to write it (and LoRA targets are);
    no clicks give the no-target answer with ``reason``."""
    items = []
    for c in clicks:
        if not (0 <= c.x <= GRID and 0 <= c.y <= GRID) or c.label not in (0, 1):
            raise BadInputError(f"{c} is not a click on the 0-{GRID} grid with label 0 or 1")
        items.append({"x": int(c.x), "y": int(c.y), "label": int(c.label)})
    return json.dumps({"clicks": items}) if items else no_target_answer(reason)


def no_target_answer(reason: str = NO_TARGET_REASON) -> str:
    """The one answer that says there is nothing to segment: ``{"clicks": [], "reason": ...}``."""
    if not isinstance(reason, str) or not reason.strip():
        raise BadInputError("a no-target answer needs a reason (non-empty text)")
    return json.dumps({"clicks": [], "reason": " ".join(reason.split())})


# --------------------------------------------------------------------------- parsing
def parse_clicks(answer: str, max_clicks: int | None = None) -> list[Click]:
    """Read the clicks in a model answer (grid units). Keeps the first ``max_clicks`` if given.

    Returns ``[]`` for the no-target answer (module docstring; :func:`no_target_reason` gives its
    reason). Raises :class:`ClickParseError` for no points, any other empty list, non-numeric
    values or coordinates outside 0..1000; the message quotes the answer.
    """
    return _parse(answer, max_clicks)[0]


def no_target_reason(answer: str) -> str | None:
    """The reason of a no-target answer (the one :func:`parse_clicks` reads as ``[]``), else None."""
    try:
        return _parse(answer)[1]
    except ClickParseError:
        return None


def _parse(answer: str, max_clicks: int | None = None) -> tuple[list[Click], str | None]:
    """``(clicks, None)``, or ``([], reason)`` for the no-target answer."""
    if not isinstance(answer, str):
        raise ClickParseError(f"the answer is a {type(answer).__name__}, not text", repr(answer))
    text = _REASONING.sub(" ", answer)  # reasoning models think aloud first; read only the answer
    unclosed = _OPEN_REASONING.search(text)
    if unclosed:
        text = text[:unclosed.start()]
    clicks, found = _from_json_candidates(text)
    reason = found.get("reason") if clicks == [] and isinstance(found, dict) and found.get("clicks") == [] else None
    if isinstance(reason, str) and reason.strip():  # the no-target answer {"clicks": [], "reason": "..."}
        return [], reason.strip()
    if clicks is None:
        clicks = _from_patterns(text)
    if clicks is None:
        reason = ("the answer stops inside its reasoning (<think> without </think>)" if unclosed and not text.strip()
                  else "no click points found")
        raise ClickParseError(reason, answer)
    if not clicks:
        raise ClickParseError("the answer lists no clicks (empty list)", answer)
    out = [_validate(x, y, label, answer) for x, y, label in clicks]
    return (out[:max_clicks] if max_clicks is not None else out), None


def _json_texts(answer: str) -> list[str]:
    """Texts that may be JSON: code-fence bodies first, then the whole answer."""
    texts = [m.group(1) for m in _FENCE.finditer(answer)]
    texts.append(answer)
    return texts


def _from_json_candidates(answer: str) -> tuple[list[tuple] | None, object]:
    """The first JSON (or Python-literal) value in the answer that is shaped like clicks, as
    ``(clicks or None, the {"clicks": ...} object they came from or None)``.

    When that value is one lone click (an object, or an ``[x, y]`` pair, as in prose or in a list
    cut off by a token limit), the lone clicks that follow it are collected too.
    """
    texts = [_TRAILING_COMMA.sub(r"\1", text) for text in _json_texts(answer)]
    for cleaned in texts:  # the asked-for {"clicks": [...]} wins over pairs mentioned in prose
        for value, _, _ in _decoded_values(cleaned):
            if isinstance(value, dict) and _has_list_key(value):
                return _clicks_from_value(value, answer), value
    for cleaned in texts:
        singles: list[tuple] = []
        last_end = -1
        for value, start, end in _decoded_values(cleaned):
            if singles and start < last_end:
                continue  # nested inside a click already taken
            found = _clicks_from_value(value, answer)
            if found is None:
                continue
            lone = (isinstance(value, dict) and not _has_list_key(value)) or _is_number_pair(value)
            if not lone or len(found) != 1:
                if singles:
                    break
                return found, None
            singles.extend(found)
            last_end = end
        if singles:
            return singles, None
    return None, None


def _has_list_key(value: dict) -> bool:
    return any(k in value for k in _LIST_KEYS)


def _decoded_values(text: str, max_starts: int = 200):
    """Every JSON value that starts at a ``{`` or ``[`` in ``text``, with its span (outermost
    first, then the values nested inside it)."""
    decoder = json.JSONDecoder()
    starts = 0
    for i, char in enumerate(text):
        if char not in "{[":
            continue
        starts += 1
        if starts > max_starts:
            return
        value, end = _decode_at(decoder, text, i)
        if end is not None:
            yield value, i, end


def _decode_at(decoder: json.JSONDecoder, text: str, i: int):
    try:
        value, end = decoder.raw_decode(text, i)
        return value, end
    except (ValueError, RecursionError):
        pass
    # Python literals ({'x': 1}, (1, 2)) that some models write instead of JSON.
    if "'" not in text[i: i + 20000] and "(" not in text[i: i + 20000]:
        return None, None
    depth, j = 0, i
    for j in range(i, min(len(text), i + 20000)):
        depth += text[j] in "{[("
        depth -= text[j] in "}])"
        if depth == 0:
            break
    else:
        return None, None
    try:
        return ast.literal_eval(text[i: j + 1]), j + 1
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None, None


def _clicks_from_value(value: Any, answer: str) -> list[tuple] | None:
    """Turn a decoded JSON value into (x, y, label) triples; None when it is not click-shaped."""
    if isinstance(value, dict):
        for key in _LIST_KEYS:
            if key in value:
                items = value[key]
                if not isinstance(items, (list, tuple)):
                    raise ClickParseError(f'"{key}" is not a list', answer)
                return [_item(v, answer, strict=True) for v in items]
        item = _item(value, answer, strict=False)
        return [item] if item is not None else None
    if isinstance(value, (list, tuple)):
        if not value:
            return []
        if _is_number_pair(value):
            return [(value[0], value[1], 1)]
        items = [_item(v, answer, strict=False) for v in value]
        if all(item is None for item in items):
            return None
        return [item for item in items if item is not None]
    return None


def _is_number_pair(value) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) in (2, 3)
            and all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in value)
            and any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value[:2]))


def _item(value: Any, answer: str, strict: bool) -> tuple | None:
    """One click from a dict or a [x, y(, label)] list; None (or an error if strict) otherwise."""
    if isinstance(value, dict):
        keys = {str(k).lower(): v for k, v in value.items()}
        label = keys.get("label", keys.get("polarity", keys.get("type", 1)))
        if "x" in keys and "y" in keys:
            return keys["x"], keys["y"], label
        for key in ("point_2d", "point", "coordinates", "xy"):
            if key in keys and isinstance(keys[key], (list, tuple)) and len(keys[key]) == 2:
                return keys[key][0], keys[key][1], label
        if "bbox_2d" in keys and isinstance(keys["bbox_2d"], (list, tuple)) and len(keys["bbox_2d"]) == 4:
            x0, y0, x1, y1 = (_number(v, answer) for v in keys["bbox_2d"])
            return (x0 + x1) / 2, (y0 + y1) / 2, label  # a box: click its centre
    elif isinstance(value, (list, tuple)) and len(value) in (2, 3):
        return value[0], value[1], value[2] if len(value) == 3 else 1
    if strict:
        raise ClickParseError(f"{value!r} is not a click (want {{\"x\": .., \"y\": .., \"label\": 0|1}})",
                              answer)
    return None


def _from_patterns(answer: str) -> list[tuple] | None:
    """Clicks written as text rather than JSON: key-value runs, <point> tags, (x, y) pairs."""
    for pattern in (_KV_CLICK, _POINT_TAG, _PAIR):
        found = [(m.group(1), m.group(2), (m.group(3) if pattern is _KV_CLICK and m.group(3) else 1))
                 for m in pattern.finditer(answer)]
        if found:
            return found
    return None


def _number(value: Any, answer: str) -> float:
    if isinstance(value, str) and re.fullmatch(rf"\s*{_NUM}\s*", value):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ClickParseError(f"click coordinate {value!r} is not a number", answer)
    return float(value)


def _label(value: Any, answer: str) -> int:
    if isinstance(value, bool) or (isinstance(value, (int, float)) and value in (0, 1)):
        return int(value)
    text = str(value).strip().lower()
    if text in _POSITIVE or text in _NEGATIVE:
        return int(text in _POSITIVE)
    if isinstance(value, str) and not re.fullmatch(_NUM, text):
        return 1  # Qwen names the object as the "label": a positive point on it
    raise ClickParseError(f"click label {value!r} is not 0 (negative) or 1 (positive)", answer)


def _validate(x: Any, y: Any, label: Any, answer: str) -> Click:
    fx, fy = _number(x, answer), _number(y, answer)
    if not (0 <= fx <= GRID and 0 <= fy <= GRID):
        raise ClickParseError(f"click ({x}, {y}) is outside the 0-{GRID} grid", answer)
    return Click(int(round(fx)), int(round(fy)), _label(label, answer))


# --------------------------------------------------------------------------- grid <-> pixels
def grid_to_pixel(value: int | float, size: int) -> int:
    """Grid unit (0..1000) to pixel index (0..size-1): the grid's ends are the edge pixels."""
    return int(min(size - 1, max(0, round(float(value) * (size - 1) / GRID))))


def pixel_to_grid(value: int | float, size: int) -> int:
    """Pixel index (0..size-1) to grid unit (0..1000); exact inverse of :func:`grid_to_pixel`
    whenever the pixel grid is the coarser of the two (size <= 1001)."""
    return 0 if size < 2 else int(min(GRID, max(0, round(float(value) * GRID / (size - 1)))))


def to_pixels(clicks: Iterable[Click], width: int, height: int) -> list[Click]:
    """Grid clicks to pixel clicks for a ``width`` x ``height`` image."""
    return [Click(grid_to_pixel(c.x, width), grid_to_pixel(c.y, height), int(c.label)) for c in clicks]


def to_grid(pixel_clicks: Iterable[Click], width: int, height: int) -> list[Click]:
    """Pixel clicks to grid clicks. Round trips lose at most half a step of the coarser grid:
    pixel -> grid -> pixel is exact for sides up to 1001 px and within one pixel up to 3001 px;
    grid -> pixel -> grid is exact for sides of 1001 px or more."""
    return [Click(pixel_to_grid(c.x, width), pixel_to_grid(c.y, height), int(c.label)) for c in pixel_clicks]


# --------------------------------------------------------------------------- clicks files
def clicks_to_records(clicks: Iterable[Click]) -> list[dict]:
    return [{"x": int(c.x), "y": int(c.y), "label": int(c.label)} for c in clicks]


def write_clicks(path: str | Path, pixel_clicks: Iterable[Click]) -> Path:
    """Write pixel clicks as ``[{"x": px, "y": px, "label": 0|1}, ...]``, whole or not at all."""
    from rs_helpers.files import write_json_atomic

    path = Path(path)
    try:
        return write_json_atomic(path, clicks_to_records(pixel_clicks), indent=1)
    except OSError as exc:
        raise BadInputError(f"cannot write the clicks file {path} ({exc.strerror or exc})") from None


_CLICK_SHAPE = '{"x": px, "y": px, "label": 0|1}'


def read_clicks(path: str | Path, width: int | None = None, height: int | None = None) -> list[Click]:
    """Read a clicks file (pixel coordinates); checks them against the image size if given.
    Anything but a non-empty list of integer clicks (a file that is not UTF-8 or not JSON, NaN,
    floats, booleans, absurd nesting) is a :class:`BadInputError` naming the file."""
    from rs_helpers.files import parse_json, read_text_file

    path = Path(path)
    records = parse_json(read_text_file(path, "clicks file"), str(path), max_depth=16)
    if isinstance(records, dict) and "clicks" in records:
        records = records["clicks"]
    if not isinstance(records, list) or not records:
        raise BadInputError(f"{path}: want a non-empty list [{_CLICK_SHAPE}, ...]")
    out = []
    for i, r in enumerate(records):
        ok = (isinstance(r, dict) and all(isinstance(r.get(k), int) and not isinstance(r.get(k), bool)
                                          for k in ("x", "y", "label")) and r["label"] in (0, 1)
              and r["x"] >= 0 and r["y"] >= 0)
        if not ok:
            raise BadInputError(f"{path}: entry {i} {str(r)[:120]} is not {_CLICK_SHAPE}")
        if (width is not None and r["x"] >= width) or (height is not None and r["y"] >= height):
            raise BadInputError(f"{path}: click {i} ({r['x']}, {r['y']}) lies outside the "
                                f"{width}x{height} image")
        out.append(Click(r["x"], r["y"], r["label"]))
    return out


# --------------------------------------------------------------------------- clicks from a mask
def interior_clicks(mask, n_positive: int = 4, n_negative: int = 1, ring: tuple[int, int] = (4, 20)) -> list[Click]:
    """Pixel clicks read off a ground-truth mask: "what a careful annotator would click".

    Positive: the interior point farthest from the boundary (the image border counts as
    boundary), then points spread over the deep interior (farthest-point sampling over pixels
    at least 35% as deep as the deepest one). Negative: points just outside the target, in a
    ring ``ring`` pixels away from it, nearest the first click. Used for the shipped example
    answers and as an oracle baseline; the SAM-in-the-loop click simulation is another module.
    """
    import numpy as np
    from scipy.ndimage import distance_transform_edt

    mask = np.asarray(mask).astype(bool)
    if not mask.any():
        raise BadInputError("the mask is empty: there is nothing to click on")
    depth = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    first = np.unravel_index(int(np.argmax(depth)), depth.shape)
    chosen = [first]
    ys, xs = np.nonzero(depth >= max(1.0, 0.35 * depth.max()))
    step = max(1, len(ys) // 20000)
    ys, xs = ys[::step], xs[::step]
    spacing = max(3.0, 0.5 * depth.max())
    for _ in range(max(0, n_positive - 1)):
        gaps = np.min([np.hypot(ys - y, xs - x) for y, x in chosen], axis=0)
        best = int(np.argmax(gaps))
        if gaps[best] < spacing:
            break
        chosen.append((ys[best], xs[best]))
    clicks = [Click(int(x), int(y), 1) for y, x in chosen]
    if n_negative > 0 and not mask.all():
        outside = distance_transform_edt(~mask)
        ny, nx = np.nonzero((outside >= ring[0]) & (outside <= ring[1]))
        for _ in range(n_negative):
            if not len(ny):
                break
            taken = [(c.y, c.x) for c in clicks]
            gaps = np.min([np.hypot(ny - y, nx - x) for y, x in taken], axis=0)
            near = np.hypot(ny - first[0], nx - first[1])
            best = int(np.argmin(np.where(gaps >= ring[1], near, np.inf)))
            if not np.isfinite(near[best]) or gaps[best] < ring[1]:
                break
            clicks.append(Click(int(nx[best]), int(ny[best]), 0))
    return clicks
