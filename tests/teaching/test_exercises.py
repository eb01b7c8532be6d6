"""Exercise checkers, both ways: right answers pass, each common wrong answer fails with its own
message; hints and solutions exist; the notebooks hold the same solution cells as the modules."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from rs_helpers.teaching import exercises
from rs_helpers.refer.clicks import Click, parse_clicks
from rs_helpers.teaching.exercises import (
    Exercise,
    Incorrect,
    Message,
    nb00,
    nb01,
    nb02,
    nb03,
    nb04,
    nb05,
    nb06,
    nb07,
)
from rs_helpers.geo.tiling import tile_grid

ROOT = Path(__file__).resolve().parents[2]
MODULES = [nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07]
ALL = [(m, q) for m in MODULES for q in m.EXERCISES]
IDS = [f"{m.__name__.rsplit('.', 1)[1]}.{q.name}" for m, q in ALL]


def right(exercise: Exercise, answer) -> None:
    ok, message = exercise.feedback(answer)
    assert ok, f"a right answer was refused: {message}"


def wrong(exercise: Exercise, answer, fragment: str) -> None:
    ok, message = exercise.feedback(answer)
    assert not ok, f"a wrong answer passed ({message})"
    assert fragment.lower() in message.lower(), f"expected a message with {fragment!r}, got {message!r}"


def run_solution(exercise: Exercise) -> dict:
    namespace: dict = {}
    exec(exercise.setup + "\n" + exercise.solution_code, namespace)
    return namespace


# --------------------------------------------------------------------------- every exercise
def test_every_notebook_has_two_to_four_exercises():
    assert [m.__name__.rsplit(".", 1)[1] for m in exercises.exercise_modules()] == [f"nb{i:02d}" for i in range(8)]
    for module in MODULES:
        assert 2 <= len(module.EXERCISES) <= 4
        assert [q.name for q in module.EXERCISES] == [f"q{i}" for i in range(1, len(module.EXERCISES) + 1)]
        for q in module.EXERCISES:
            assert getattr(module, q.name) is q


@pytest.mark.parametrize("module, exercise", ALL, ids=IDS)
def test_own_solution_passes(module, exercise, capsys):
    namespace = run_solution(exercise)
    assert exercise.check(namespace["answer"]) is True
    assert "Correct:" in capsys.readouterr().out


@pytest.mark.parametrize("module, exercise", ALL, ids=IDS)
def test_texts_hint_and_solution(module, exercise, capsys):
    assert exercise.title and exercise.task and exercise.solution_code.strip()
    assert "answer =" in exercise.solution_code or "answer=" in exercise.solution_code
    hint = exercise.hint()
    assert isinstance(hint, str) and len(hint) > 20 and "Hint:" in capsys.readouterr().out
    solution = exercise.solution()
    assert exercise.solution_code.strip() in solution
    assert exercise.solution_code.strip() in capsys.readouterr().out


@pytest.mark.parametrize("module, exercise", ALL, ids=IDS)
def test_no_answer_yet(module, exercise, capsys):
    assert exercise.check(...) is False
    assert "No answer yet" in capsys.readouterr().out
    ok, message = exercise.feedback(None)
    assert not ok and message == exercises.PENDING


@pytest.mark.parametrize("module, exercise", ALL, ids=IDS)
def test_nonsense_is_refused_not_crashing(module, exercise):
    for junk in ("hello", object(), [[1, 2], [3]], -1):
        ok, message = exercise.feedback(junk)
        assert not ok and message


# --------------------------------------------------------------------------- display
def test_messages_are_plain_text_outside_notebooks(capsys):
    assert not exercises.in_notebook()
    shown = exercises.show("incorrect", "x is `y`")
    assert capsys.readouterr().out == "Not quite: x is `y`\n"
    assert isinstance(shown, Message) and shown == "Not quite: x is `y`"
    assert shown._ipython_display_() is None  # already shown: Jupyter does not repeat it


def test_messages_are_coloured_html_in_notebooks(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(exercises, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    exercises.show("correct", "a < b and `code`", code="x = 1")
    html = shown[0].data
    assert "#1a7f37" in html and "a &lt; b" in html and "<code>code</code>" in html and "<pre" in html


def test_check_returns_booleans(capsys):
    assert nb07.q2.check(169) is True
    assert nb07.q2.check(121) is False
    out = capsys.readouterr().out
    assert out.startswith("Correct:") and "Not quite:" in out


def test_notebook_cells_render_percent_format():
    text = exercises.notebook_cells(nb03)
    assert text.count('# %% tags=["solution"]') == 3
    assert "from rs_helpers.teaching.exercises.nb03 import q1, q2, q3" in text
    assert "q2.check(answer)" in text and "# q2.hint()" in text
    assert all(len(line) <= 120 for line in text.splitlines() if line.startswith("# "))


# --------------------------------------------------------------------------- notebooks hold the same cells
def _cells(path):
    return json.loads(path.read_text())["cells"]


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


NOTEBOOKS_WITH_EXERCISES = [p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
                            if "rs_helpers.teaching.exercises.nb" in p.read_text()]


@pytest.mark.parametrize("path", NOTEBOOKS_WITH_EXERCISES, ids=lambda p: p.stem)
def test_notebook_exercise_cells_match_their_module(path):
    module = {m.__name__.rsplit(".", 1)[1]: m for m in MODULES}[f"nb{path.name[:2]}"]
    cells = _cells(path)
    solutions = [_src(c).strip() for c in cells if "solution" in c.get("metadata", {}).get("tags", [])]
    code = [_src(c).strip() for c in cells if c["cell_type"] == "code"]
    assert solutions == [q.solution_code.strip() for q in module.EXERCISES]
    for q in module.EXERCISES:
        if q.setup.strip():
            assert q.setup.strip() in code, f"{path.name}: the setup cell of {q.name} differs from the module's"
        assert any(re.match(rf"{q.name}\.check\(answer\)", c) for c in code)


def test_notebooks_00_04_05_06_have_exercises():
    assert {p.name[:2] for p in NOTEBOOKS_WITH_EXERCISES} >= {"00", "04", "05", "06"}


# --------------------------------------------------------------------------- 00
def test_nb00_road_fraction():
    q = nb00.RoadFraction()
    f = q.expected()
    assert 0 < f < 1
    right(q, f)
    right(q, np.float32(f))
    wrong(q, 100 * f, "percentage")
    wrong(q, 1 - f, "other")
    wrong(q, f * q.labels().size, "number of road pixels")
    wrong(q, 0.0, "class index")
    wrong(q, 0.999, "not the fraction")
    wrong(q, "0.1", "want one number")
    wrong(q, [f, f], "want one number")


def test_nb00_road_fraction_leaves_unlabelled_pixels_out():
    labels = np.array([[1, 1, 0, 0], [0, 0, 255, 255]], np.uint8)
    q = nb00.RoadFraction(labels=labels, road=1)
    right(q, 2 / 6)
    wrong(q, 2 / 8, "unlabelled")


@pytest.fixture
def raw_band():
    rng = np.random.default_rng(0)
    raw = rng.integers(1000, 3000, size=(40, 50)).astype(np.uint16)
    raw[0, :5] = 60000  # a few extreme pixels
    raw[1, :5] = 10
    return raw


def test_nb00_stretch(raw_band):
    q = nb00.Stretch16To8(raw=raw_band)
    want = q.expected()
    right(q, want)
    low, high = np.percentile(raw_band, [2, 98])
    scaled = (raw_band.astype(float) - low) / (high - low)
    right(q, (np.clip(scaled, 0, 1) * 255).astype(np.uint8))  # truncating instead of rounding is fine
    wrong(q, raw_band.astype(np.uint8), "wrap")
    wrong(q, (raw_band // 256).astype(np.uint8), "dividing by 256")
    lo, hi = raw_band.min(), raw_band.max()
    wrong(q, np.round((raw_band - float(lo)) / (hi - lo) * 255).astype(np.uint8), "min-max")
    with np.errstate(invalid="ignore"):
        unclipped = (scaled * 255).astype(np.int64).astype(np.uint8)  # wraps outside the range
    wrong(q, unclipped, "clip")
    wrong(q, np.clip(scaled, 0, 1), "0..1")
    wrong(q, np.round(np.clip(scaled, 0, 1) * 255), "cast to uint8")
    wrong(q, want[:10], "shape")
    wrong(q, np.zeros_like(want), "not the 2-98")
    wrong(q, want.astype(np.int8), "uint8")


# --------------------------------------------------------------------------- 01
def test_nb01_grid_points():
    q = nb01.GridPoints()
    want = q.expected()
    right(q, want)
    right(q, want[np.random.default_rng(0).permutation(16)])
    right(q, np.round(want).astype(int).tolist())
    right(q, [tuple(p) for p in want])
    wrong(q, want.T, "transpose")
    wrong(q, want.reshape(4, 4, 2), "flatten")
    wrong(q, want[:, ::-1], "swapped")
    wrong(q, want / [640, 480], "fractions")
    edges = np.linspace(0, 1, 4)
    xs, ys = np.meshgrid(edges * 640, edges * 480)
    wrong(q, np.stack([xs.ravel(), ys.ravel()], 1), "edges")
    xs, ys = np.meshgrid(edges * 639, edges * 479)
    wrong(q, np.stack([xs.ravel(), ys.ravel()], 1), "edges")
    corners = np.arange(4) / 4
    xs, ys = np.meshgrid(corners * 640, corners * 480)
    wrong(q, np.stack([xs.ravel(), ys.ravel()], 1), "top-left corners")
    wrong(q, want[:10], "points")
    wrong(q, want + 20, "not the grid")


def test_nb01_grid_points_other_sizes():
    q = nb01.GridPoints(n=3, width=90, height=30)
    right(q, [(15, 5), (45, 5), (75, 5), (15, 15), (45, 15), (75, 15), (15, 25), (45, 25), (75, 25)])


def test_nb01_kept_masks():
    q = nb01.KeptMasks()
    assert q.expected() == 8
    right(q, 8)
    right(q, np.int64(8))
    right(q, 8.0)
    right(q, q.keep())
    wrong(q, 20, "either")
    wrong(q, 17, "removed")
    wrong(q, 9, "wrong way round")
    wrong(q, 10, "exactly 0.88")
    wrong(q, 7, "exactly 0.95")
    wrong(q, 12, "only the predicted-IoU")
    wrong(q, 16, "only the stability")
    wrong(q, 3, "not the number")
    wrong(q, ~q.keep(), "boolean array")
    wrong(q, "8", "integer")


# --------------------------------------------------------------------------- 02
def test_nb02_majority_class():
    q = nb02.MajorityClass()
    assert q.expected() == 2
    right(q, 2)
    right(q, np.uint8(2))
    right(q, "tree")
    wrong(q, 3, "whole image")
    wrong(q, 1, "mean or median")
    wrong(q, 0, "building has 6")
    wrong(q, 7, "not a class index")
    wrong(q, "water", "not the mask's majority")


def test_nb02_binary_selection():
    q = nb02.BinarySelection()
    want = q.expected()
    masks = q.masks
    right(q, want)
    right(q, want.astype(np.uint8))
    right(q, [0, 4])
    right(q, np.array([4, 0]))
    union = lambda *ids: masks[list(ids)].any(0)  # noqa: E731
    wrong(q, union(0, 1, 4), "exactly tau")
    wrong(q, [0, 1, 4], "exactly tau")
    wrong(q, union(0, 1, 2, 4), "multi-class vote")
    wrong(q, q.labels == 1, "pixel map")
    wrong(q, want & (q.labels == 1), "whole mask")
    wrong(q, masks.any(0), "union of all masks")
    wrong(q, union(1, 2, 3), "fail the test")
    wrong(q, np.zeros_like(want), "empty")
    wrong(q, union(0), "not the union")
    wrong(q, want[:4], "shape")
    wrong(q, [7], "indices run")
    wrong(q, want * 3, "0/1")


def test_nb02_binary_selection_fraction_is_over_the_mask():
    labels = np.zeros((10, 20), np.uint8)
    masks = np.zeros((2, 10, 20), bool)
    masks[0, :, :10] = True  # 100 px, 30 of them road: fraction 0.3, but 30 of all 40 road pixels
    labels[:3, :10] = 1
    masks[1, :2, 10:15] = True  # 10 px, 8 of them road: fraction 0.8, 8 of 40 road pixels
    labels[:2, 10:14] = 1
    labels[9, 19] = 1
    labels[9, 18] = 1
    q = nb02.BinarySelection(labels, masks, target=1, n_classes=2)
    right(q, masks[1])
    wrong(q, masks[0], "target's area")


# --------------------------------------------------------------------------- 03
def test_nb03_per_class_iou():
    q = nb03.PerClassIoU()
    want = q.expected()
    np.testing.assert_allclose(want, [50 / 75, 30 / 50, 20 / 35])
    right(q, want)
    right(q, list(np.round(want, 4)))
    cm = nb03.EXAMPLE_MATRIX
    tp, gt, pred = np.diag(cm), cm.sum(1), cm.sum(0)
    wrong(q, 100 * want, "percentages")
    wrong(q, (gt + pred - tp) / tp, "union over intersection")
    wrong(q, 2 * tp / (gt + pred), "dice")
    wrong(q, tp / (gt + pred), "twice")
    wrong(q, tp / gt, "recall")
    wrong(q, tp / pred, "precision")
    wrong(q, want[:2], "shape")
    wrong(q, want + 0.1, "not tp")


def test_nb03_mean_iou_with_ignore():
    q = nb03.MeanIoUWithIgnore()
    pred, gt, names = nb03.example_pair()
    want = q.expected()
    right(q, want)
    naive = nb03._naive_ious
    candidates = {
        "percentage": 100 * want,
        "do not count it as 0": np.nan_to_num(naive(pred, gt, 4, ignore=True)).mean(),
        "unlabelled pixels (255)": np.nanmean(naive(pred, gt, 4, ignore=False)),
        "two slips": np.nan_to_num(naive(pred, gt, 4, ignore=False)).mean(),
        "pixel accuracy": (pred[gt != 255] == gt[gt != 255]).mean(),
        "over all pixels": (pred == gt).mean(),
    }
    values = [want] + list(candidates.values())
    assert min(abs(a - b) for i, a in enumerate(values) for b in values[i + 1:]) > 2e-3, "candidates must differ"
    for fragment, value in candidates.items():
        wrong(q, value, fragment)
    wrong(q, 0.2, "not the miou")


def test_nb03_dataset_miou():
    q = nb03.DatasetMeanIoU()
    want = q.expected()
    right(q, want)
    from rs_helpers.evaluation.metrics import mean_iou

    per_image = np.mean([mean_iou(p, g, 2) for p, g in nb03.example_dataset()])
    assert abs(per_image - want) > 0.05
    wrong(q, per_image, "per-image")
    wrong(q, 29 / 32, "pixel accuracy")
    wrong(q, 100 * want, "percentage")
    wrong(q, 0.5, "accumulate")


# --------------------------------------------------------------------------- 04
def test_nb04_clicks_to_pixels():
    q = nb04.ClicksToPixels()
    want = q.expected()
    np.testing.assert_array_equal(want, [[1000, 1500, 1], [3959, 120, 1], [3999, 2159, 0]])
    right(q, [tuple(int(v) for v in row) for row in want])
    right(q, [Click(int(x), int(y), int(lab)) for x, y, lab in want])
    right(q, [{"x": int(x), "y": int(y), "label": int(lab)} for x, y, lab in want[::-1]])
    right(q, np.minimum(q._scaled(4000 / 1000, 3000 / 1000).round(), [3999, 2999, 1]))  # width/1000, clipped
    right(q, np.floor(q._scaled(3999 / 1000, 2999 / 1000)))  # truncation: within one pixel
    wrong(q, q._scaled(1, 1), "grid units")
    wrong(q, q._scaled(1 / 1000, 1 / 1000), "fractions")
    wrong(q, q._scaled(3999 / 999, 2999 / 999).round(), "999")
    wrong(q, q._scaled(3999 / 1000, 2999 / 1000, swap=True).round(), "swapped")
    wrong(q, q._scaled(2999 / 1000, 3999 / 1000).round(), "with the width")
    wrong(q, q._scaled(4000 / 1000, 3000 / 1000).round(), "last pixel")
    flipped = want.copy()
    flipped[:, 2] = 1 - flipped[:, 2]
    wrong(q, flipped, "labels")
    wrong(q, [(int(x), int(y)) for x, y, _ in want], "label too")
    wrong(q, want[:2], "clicks")
    wrong(q, json.dumps([1, 2]), "text")
    wrong(q, want + [500, 0, 0], "outside")
    wrong(q, want + [-300, 0, 0], "not the pixel clicks")


def test_nb04_giou_ciou():
    q = nb04.GiouCiou()
    g, c = q.expected()
    assert g == pytest.approx(0.5075) and c == pytest.approx(1360 / 2070)
    right(q, (g, c))
    right(q, [round(g, 4), round(c, 4)])
    right(q, {"gIoU": g, "cIoU": c})
    wrong(q, (c, g), "swapped")
    wrong(q, (100 * g, 100 * c), "percentages")
    inter, union = np.array(nb04.example_counts()[0], float), np.array(nb04.example_counts()[1], float)
    wrong(q, (g, union.sum() / inter.sum()), "union over intersection")
    ok = inter > 0
    wrong(q, (np.mean(inter[ok] / union[ok]), c), "left out the failed query")
    wrong(q, (g, inter.sum() / union[ok].sum()), "total union")
    wrong(q, (c, c), "plain mean")
    wrong(q, (g, g), "total intersection")
    wrong(q, (0.1, c), "gIoU is wrong")
    wrong(q, (g, 0.1), "cIoU is wrong")
    wrong(q, {"giou": g}, "keys")
    wrong(q, [g, c, 0.5], "two numbers")


# --------------------------------------------------------------------------- 05
def test_nb05_chat_messages():
    q = nb05.ChatMessages()
    image, prompt, system = nb05.chat_inputs()
    good = q.expected()
    right(q, good)
    right(q, [{"role": "system", "content": system},
              {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}]}])
    ok, note = q.feedback([good[0], {"role": "user", "content": list(reversed(good[1]["content"]))}])
    assert ok and "either order" in note
    copy = image.copy()
    right(q, [good[0], {"role": "user", "content": [{"type": "image", "image": copy}, {"type": "text", "text": prompt}]}])
    user = good[1]
    wrong(q, good + [{"role": "assistant", "content": "{}"}], "assistant")
    wrong(q, [{"role": "system", "content": system}, {"role": "human", "content": user["content"]}], "human")
    wrong(q, [user], "system turn is missing")
    wrong(q, [user, good[0]], "system then user")
    wrong(q, [{"role": "system", "content": "be nice"}, user], "system_prompt")
    wrong(q, [good[0], {"role": "user", "content": prompt}], "never sees the image")
    wrong(q, [good[0], {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:..."}},
                                                     {"type": "text", "text": prompt}]}], "openai")
    wrong(q, [good[0], {"role": "user", "content": [{"type": "text", "text": prompt}]}], "no image item")
    wrong(q, [good[0], {"role": "user", "content": [{"type": "image", "image": image}, {"type": "image", "image": image},
                                                     {"type": "text", "text": prompt}]}], "several")
    wrong(q, [good[0], {"role": "user", "content": [{"type": "image", "image": "photo.png"},
                                                     {"type": "text", "text": prompt}]}], "image itself")
    wrong(q, [good[0], {"role": "user", "content": [{"type": "image", "image": image},
                                                     {"type": "text", "text": "segment it"}]}], "text item")
    wrong(q, [good[0], {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt},
                                                     {"type": "video"}]}], "exactly two items")
    wrong(q, [{"role": "system"}, user], "role")
    wrong(q, {"role": "user"}, "list of dicts")


def test_nb05_noisy_clicks():
    q = nb05.NoisyClicks()
    clicks = parse_clicks(nb05.NOISY_ANSWER)
    right(q, clicks)
    right(q, [(c.x, c.y, c.label) for c in reversed(clicks)])
    right(q, {"clicks": [{"x": c.x, "y": c.y, "label": c.label} for c in clicks]})
    wrong(q, [(c.x, c.y, 1) for c in clicks], "labels")
    wrong(q, [(c.y, c.x, c.label) for c in clicks], "swapped")
    wrong(q, [(0, 0, 1), (1000, 1000, 1)] + [(c.x, c.y, c.label) for c in clicks], "prose")
    wrong(q, [(c.x, c.y, c.label) for c in clicks[:2]], "trailing comma")
    wrong(q, [(c.x, c.y) for c in clicks], "label too")
    wrong(q, [(1, 2, 1), (3, 4, 1), (5, 6, 0)], "not the clicks")
    wrong(q, nb05.NOISY_ANSWER, "text")


def test_nb05_image_tokens():
    q = nb05.ImageTokens()
    right(q, 300)
    right(q, 300.0)
    wrong(q, 640 * 480, "pixels")
    wrong(q, 1200, "before merging")
    wrong(q, 9600, "1024 pixels")
    wrong(q, 35, "multiply")
    wrong(q, 391, "28-pixel")
    wrong(q, 392, "28-pixel")
    wrong(q, 1567, "14-pixel")
    wrong(q, 301, "not the number")


# --------------------------------------------------------------------------- 06
def test_nb06_first_click():
    q = nb06.FirstClick()
    assert q.expected() == (5, 16)
    right(q, (5, 16))
    right(q, (5, 16, 1))
    right(q, Click(5, 16, 1))
    right(q, np.array([5, 16]))
    wrong(q, (16, 5), "swapped")
    wrong(q, (0, 11), "padding")
    wrong(q, (11, 14), "centroid")
    wrong(q, (5, 16, 0), "positive")
    wrong(q, (3, 5), "px from the background")
    wrong(q, (31, 0), "not a target pixel")
    wrong(q, (5.5, 16), "not a target pixel")
    wrong(q, (1, 2, 3, 4), "one click")


def test_nb06_first_click_accepts_any_tied_maximum():
    target = np.zeros((5, 8), bool)
    target[1:4, 1:7] = True  # a 3-pixel-high bar: the whole middle row ties
    q = nb06.FirstClick(target)
    for x in range(2, 6):
        right(q, (x, 2))


def test_nb06_next_click():
    q = nb06.NextClick()
    assert q.expected() == (27, 3, 0)
    right(q, (27, 3, 0))
    right(q, Click(27, 3, 0))
    right(q, (28, 4, 0))  # a tie for the deepest point of the false positives
    wrong(q, (27, 3, 1), "negative (label 0)")
    wrong(q, (3, 27, 0), "swapped")
    wrong(q, (7, 10, 1), "smaller error")
    wrong(q, (31, 0, 0), "padding")
    wrong(q, (13, 11, 1), "first click")
    wrong(q, (0, 23, 0), "not the deepest")
    wrong(q, (27, 3), "polarity")


def test_nb06_next_click_positive_case():
    target = np.zeros((12, 12), bool)
    target[2:10, 2:10] = True
    pred = np.zeros_like(target)
    pred[2:10, 2:4] = True  # SAM found only a sliver: the miss is larger
    q = nb06.NextClick(target, pred)
    x, y, label = q.expected()
    assert label == 1
    right(q, (x, y, 1))
    wrong(q, (x, y, 0), "positive (label 1)")


def test_nb06_lora_parameters():
    q = nb06.LoraParameters()
    right(q, 262144)
    right(q, 32 * (2048 + 6144))
    wrong(q, 2048 * 6144, "frozen")
    wrong(q, 32 * 2048, "A only")
    wrong(q, 32 * 6144, "B only")
    wrong(q, 32 * 2048 * 6144, "not multiplied")
    wrong(q, 2 * 32 * 2048, "d_out = 6144")
    wrong(q, 2 * 32 * 6144, "d_in = 2048")
    wrong(q, 32 * 32, "r x r")
    wrong(q, 1000, "entries")


# --------------------------------------------------------------------------- 07
def test_nb07_tile_offsets():
    q = nb07.TileOffsets()
    want = q.expected()
    assert sorted({r for r, _ in want}) == [0, 224, 444] and sorted({c for _, c in want}) == [0, 224, 448, 672, 744]
    right(q, want)
    shuffled = list(want)
    random.Random(0).shuffle(shuffled)
    right(q, shuffled)
    right(q, tile_grid(700, 1000, 256, 32))
    right(q, [(r, c, 256, 256) for r, c in want])
    grid = lambda rows, cols: [(r, c) for r in rows for c in cols]  # noqa: E731
    rows, cols = [0, 224, 444], [0, 224, 448, 672, 744]
    wrong(q, [(c, r) for r, c in want], "swapped")
    wrong(q, grid(rows, [0, 256, 512, 744]), "do not overlap")
    wrong(q, grid([0, 224, 448], cols), "past the scene")
    wrong(q, grid(rows, [0, 224, 448, 672]), "in no tile")
    wrong(q, grid(rows, [0, 224, 448, 600, 744]), "are not")
    wrong(q, grid(rows, [-10, 224, 448, 672, 744]), "negative")
    wrong(q, grid(rows, cols)[:-1], "pair every")
    wrong(q, want + want[:1], "each once")
    wrong(q, 15, "list of")
    wrong(q, [(0,)], "one window")


def test_nb07_tile_offsets_small_scene_is_one_tile():
    q = nb07.TileOffsets(width=200, height=100, tile=256, overlap=32)
    right(q, [(0, 0)])


def test_nb07_tile_count():
    q = nb07.TileCount()
    assert q.expected() == 169
    right(q, 169)
    wrong(q, 13, "one axis")
    wrong(q, 26, "multiply")
    wrong(q, 121, "ignores the overlap")
    wrong(q, 100, "last strip")
    wrong(q, 144, "round up")
    wrong(q, 10980 ** 2 / 1024 ** 2, "whole numbers")
    wrong(q, 50, "count the tile starts")


def test_incorrect_is_an_exception_with_the_message():
    with pytest.raises(Incorrect, match="percentage"):
        nb00.RoadFraction(labels=np.array([[1, 0]]), road=1).verify(50.0)


# --------------------------------------------------------------------------- any size
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), width=st.integers(8, 3000), height=st.integers(8, 3000))
def test_grid_checker_any_size(n, width, height):
    q = nb01.GridPoints(n=n, width=width, height=height)
    want = q.expected()
    right(q, want[::-1])
    if abs(width - height) > 2 * n:  # swapping x and y must then be noticed
        ok, _ = q.feedback(want[:, ::-1])
        assert not ok


@settings(max_examples=25, deadline=None)
@given(width=st.integers(1, 3000), height=st.integers(1, 3000), tile=st.integers(16, 600), data=st.data())
def test_tile_checker_any_size(width, height, tile, data):
    overlap = data.draw(st.integers(0, tile - 1))
    q = nb07.TileOffsets(width=width, height=height, tile=tile, overlap=overlap)
    namespace = {"width": width, "height": height, "tile": tile, "overlap": overlap}
    if width >= tile and height >= tile:  # the notebook's solution assumes a scene at least one tile large
        exec(q.solution_code.replace("print(", "(lambda *a: None)("), namespace)
        right(q, namespace["answer"])
    right(q, q.expected())
