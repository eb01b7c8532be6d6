"""The exercises of notebooks 00-04 are function problems (learntools-style): the student's function
runs on hidden inputs. For every exercise: our solution passes; a function fitted to the notebook's
example fails; every forbidden shortcut is refused with the "without" message, however it is reached,
and put back afterwards; each recognised wrong answer gets its own message; the two hint levels
exist and neither is the solution code. The references are the package's own functions."""
from __future__ import annotations

import ast
import re

import numpy as np
import pytest

from rs_helpers.teaching.exercises import PENDING, Incorrect, _inline_html, nb00, nb01, nb02, nb03, nb04
from rs_helpers.teaching.exercises.function_problems import FunctionExercise, _resolve
from rs_helpers.teaching.exercises.array_problems import softmax

MODULES = [nb00, nb01, nb02, nb03, nb04]
ALL = [(m, q) for m in MODULES for q in m.EXERCISES]
IDS = [f"{m.__name__.rsplit('.', 1)[1]}.{q.name}" for m, q in ALL]
BY_ID = dict(zip(IDS, (q for _, q in ALL)))


def solution(exercise) -> dict:
    namespace: dict = {}
    exec(exercise.setup + "\n" + exercise.solution_code.replace("print(", "(lambda *a, **k: None)("), namespace)
    return namespace


def right(exercise, function) -> None:
    ok, message = exercise.feedback(function)
    assert ok, f"a right answer was refused: {message}"


def wrong(exercise, function, fragment: str) -> None:
    ok, message = exercise.feedback(function)
    assert not ok, f"a wrong answer passed ({message})"
    assert fragment.lower() in message.lower(), f"expected a message with {fragment!r}, got {message!r}"


# the notebook's visible example, as the arguments of the student's function
EXAMPLES = {
    "nb00.q1": lambda ns: (ns["labels"], ns["road"]),
    "nb00.q2": lambda ns: (ns["raw"],),
    "nb01.q1": lambda ns: (ns["three"], ns["three_scores"], ns["single"], 1, "auto"),
    "nb01.q2": lambda ns: (ns["n"], ns["width"], ns["height"]),
    "nb01.q3": lambda ns: (ns["predicted_iou"], ns["stability_score"], 0.88, 0.95),
    "nb01.q4": lambda ns: (ns["boxes"], ns["scores"], 0.7),
    "nb02.q1": lambda ns: (ns["template_embeddings"], ns["patch_features"], 50.0),
    "nb02.q2": lambda ns: (ns["tokens"], ns["text"], ns["cls_lambda"]),
    "nb03.q1": lambda ns: (ns["clip_labels"], ns["mask"], len(ns["class_names"])),
    "nb03.q2": lambda ns: (ns["masks"], ns["clip_labels"], ns["target"], ns["tau"]),
    "nb04.q1": lambda ns: (ns["cm"],),
    "nb04.q2": lambda ns: (ns["pred"], ns["gt"], len(ns["class_names"])),
    "nb04.q3": lambda ns: (ns["pairs"], 2),
}


def _same_args(a: tuple, b: tuple) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.shape == y.shape
                    and np.array_equal(x, y)):
                return False
        elif isinstance(x, list) or isinstance(y, list):
            if repr(x) != repr(y):
                return False
        elif x != y:
            return False
    return True


# --------------------------------------------------------------------------- every exercise
def test_five_modules_with_function_problems_only():
    assert [len(m.EXERCISES) for m in MODULES] == [2, 4, 2, 2, 3]
    assert set(EXAMPLES) == set(IDS)


@pytest.mark.parametrize("exercise", [q for _, q in ALL], ids=IDS)
def test_a_function_problem_with_a_named_function(exercise):
    assert isinstance(exercise, FunctionExercise)
    name = exercise.function_name
    assert f"`{name}(" in exercise.task and f"answer = {name}" in exercise.task
    assert re.search(rf"^def {name}\(", exercise.solution_code, re.M)
    assert exercise.solution_code.strip().endswith(f"answer = {name}")
    assert exercise.solution_code.splitlines()[0].startswith(f"# {name}(")  # kept by the student stub


@pytest.mark.parametrize("exercise", [q for _, q in ALL], ids=IDS)
def test_our_solution_passes_every_hidden_case(exercise):
    ok, message = exercise.feedback(solution(exercise)["answer"])
    assert ok and f"all {len(exercise.cases())} hidden test cases" in message, message


@pytest.mark.parametrize("key", IDS)
def test_hidden_cases_are_not_the_visible_example_and_a_fitted_function_fails(key):
    exercise = BY_ID[key]
    namespace = solution(exercise)
    example = EXAMPLES[key](namespace)
    assert not any(_same_args(example, case) for case in exercise.cases())
    fitted = namespace["answer"](*example)  # the example's right answer, whatever the input
    ok, message = exercise.feedback(lambda *args, **kwargs: fitted)
    assert not ok and message


@pytest.mark.parametrize("exercise", [q for _, q in ALL], ids=IDS)
def test_the_student_copys_stub_and_non_functions(exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError("Exercise: replace this stub with your solution.")

    ok, message = exercise.feedback(stub)
    assert not ok and PENDING in message and f"`{exercise.function_name}`" in message
    assert exercise.feedback(lambda *args: None)[0] is False
    ok, message = exercise.feedback(0.5)
    assert not ok and "give the function itself" in message


@pytest.mark.parametrize("exercise", [q for _, q in ALL], ids=IDS)
def test_two_hint_levels_neither_is_the_solution(exercise, capsys):
    hints = tuple(exercise.hints)
    assert len(hints) == 2 and hints[0] == exercise.hint_text and hints[0] != hints[1]
    assert all(len(h) > 40 for h in hints)
    code = [line.strip() for line in exercise.solution_code.splitlines()
            if line.strip() and not line.strip().startswith(("#", "print(", "answer ="))]
    for hint in hints:
        for line in code:
            assert line not in hint, f"{exercise.name}: a hint holds the solution line {line!r}"
        outside = re.sub(r"<code>.*?</code>", "", _inline_html(hint))
        assert "`" not in outside, f"{exercise.name}: an unbalanced code span in a hint"
    assert "1/2:" in exercise.hint(1) and "2/2:" in exercise.hint(2)
    capsys.readouterr()


@pytest.mark.parametrize("exercise", [q for _, q in ALL], ids=IDS)
def test_setup_cells_do_not_import_what_is_forbidden(exercise):
    imported = set()
    for node in ast.walk(ast.parse(exercise.setup or "pass")):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported |= {alias.asname or alias.name for alias in node.names}
    for dotted in exercise.forbidden:
        attr = dotted.partition(":")[2]
        assert attr not in imported and attr not in exercise.setup, f"{exercise.name}: the setup imports {attr}"


# --------------------------------------------------------------------------- forbidden shortcuts
FORBIDDEN = [(key, dotted) for key in IDS for dotted in BY_ID[key].forbidden]


@pytest.mark.parametrize("key, dotted", FORBIDDEN, ids=[f"{k}:{d.rsplit(':', 1)[1]}" for k, d in FORBIDDEN])
def test_every_forbidden_name_is_refused_by_module_global_and_swallowed(key, dotted):
    exercise = BY_ID[key]
    module, attr = _resolve(dotted)
    original = getattr(module, attr)
    assert callable(original)
    honest = solution(exercise)["answer"]

    def by_module(*args):
        getattr(module, attr)(*args)
        return honest(*args)

    namespace = {"shortcut": original, "honest": honest}
    exec("def by_global(*args):\n    try:\n        shortcut(*args)\n    except Exception:\n        pass\n"
         "    return honest(*args)", namespace)
    for student in (by_module, namespace["by_global"]):
        ok, message = exercise.feedback(student)
        assert not ok and f"without `{attr}`" in message, message
    assert getattr(module, attr) is original and namespace["shortcut"] is original  # put back


def _stretch(band):
    from rs_helpers.geo.rasters import stretch_to_uint8

    return stretch_to_uint8(band)


def _grid_points(n, width, height):
    from rs_helpers.sam import grid_points  # the lazy export

    return grid_points(n, width, height)


def _box_nms(boxes, scores, thresh):
    from rs_helpers.sam.proposals import box_nms

    return box_nms(boxes, scores, thresh)


def _torchvision_nms(boxes, scores, thresh):
    import torch
    from torchvision.ops import nms

    return nms(torch.as_tensor(boxes, dtype=torch.float32), torch.as_tensor(scores, dtype=torch.float32),
               thresh).numpy()


def _use_multimask(three, scores, single, n_clicks, multimask):
    from rs_helpers.sam.from_clicks import use_multimask

    return three[int(np.argmax(scores))] if use_multimask(multimask, n_clicks) else single


def _majority(labels, mask, k):
    from rs_helpers.ovss.selection import class_fractions

    return int(class_fractions(mask[None], labels, k)[0].argmax())


def _select_binary(masks, labels, target, tau):
    from rs_helpers.ovss.selection import SelectionSettings, select_binary

    k = max(int(labels.max()) + 1, target + 1)
    return select_binary(masks, labels, target, k, SelectionSettings(tau=tau)).labels == 1


def _confusion_iou(cm):
    from rs_helpers.evaluation import ConfusionMatrix

    matrix = ConfusionMatrix(len(cm))
    matrix.matrix = np.asarray(cm, np.int64)
    return matrix.iou()


def _mean_iou(pred, gt, k):
    from rs_helpers.evaluation.metrics import mean_iou

    return mean_iou(pred, gt, k)


def _dataset_miou(pairs, k):
    from rs_helpers.evaluation.metrics import confusion_matrix

    cm = confusion_matrix(*pairs[0], k)
    for pred, gt in pairs[1:]:
        cm += confusion_matrix(pred, gt, k)
    return cm.miou()


SHORTCUTS = [  # one-line library calls that give the right answer: refused all the same
    ("nb00.q2", _stretch, "stretch_to_uint8"), ("nb01.q1", _use_multimask, "use_multimask"),
    ("nb01.q2", _grid_points, "grid_points"), ("nb01.q4", _box_nms, "box_nms"), ("nb01.q4", _torchvision_nms, "nms"),
    ("nb02.q1", lambda *a: nb02.reference_probabilities(*a), "reference_probabilities"),
    ("nb02.q2", lambda *a: nb02.reference_bias_removed(*a), "reference_bias_removed"),
    ("nb03.q1", _majority, "class_fractions"), ("nb03.q2", _select_binary, "select_binary"),
    ("nb04.q1", _confusion_iou, "ConfusionMatrix"), ("nb04.q2", _mean_iou, "mean_iou"),
    ("nb04.q3", _dataset_miou, "confusion_matrix"),
]


@pytest.mark.parametrize("key, shortcut, name", SHORTCUTS, ids=[f"{k}:{n}" for k, _, n in SHORTCUTS])
def test_library_shortcuts_that_give_the_right_answer_are_refused(key, shortcut, name):
    import torchvision.ops

    exercise = BY_ID[key]
    originals = [getattr(*_resolve(d)) for d in exercise.forbidden]
    before = torchvision.ops.nms
    ok, message = exercise.feedback(shortcut)
    assert not ok and f"without `{name}`" in message, message
    assert [getattr(*_resolve(d)) for d in exercise.forbidden] == originals
    assert torchvision.ops.nms is before
    right(exercise, solution(exercise)["answer"])  # and the honest answer still passes afterwards


PACKAGE_ANSWERS = [("nb00.q2", "rs_helpers.geo.rasters:stretch_to_uint8"), ("nb01.q2", "rs_helpers.sam.proposals:grid_points"),
                   ("nb01.q4", "rs_helpers.sam.proposals:box_nms"), ("nb02.q1", "rs_helpers.teaching.exercises.nb02:reference_probabilities"),
                   ("nb04.q2", "rs_helpers.evaluation.metrics:mean_iou")]


@pytest.mark.parametrize("key, dotted", PACKAGE_ANSWERS, ids=[k for k, _ in PACKAGE_ANSWERS])
def test_the_packages_own_function_as_the_answer_is_refused(key, dotted):
    import functools

    exercise = BY_ID[key]
    function = getattr(*_resolve(dotted))
    name = dotted.rsplit(":", 1)[1]
    for answer in (function, functools.partial(function)):
        ok, message = exercise.feedback(answer)
        assert not ok and f"`{name}` is the package's own function" in message, message
    ok, message = exercise.feedback(exercise.expected)  # the checker's own reference
    assert not ok and "`expected` is the package's own function" in message


def test_sam_still_runs_nms_after_the_nms_check(tiny_sam):
    from rs_helpers.sam import ProposalSettings, generate_reference

    assert not nb01.q4.feedback(_torchvision_nms)[0]
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    generate_reference(tiny_sam, image, ProposalSettings(points_per_side=2))  # calls torchvision's nms


# --------------------------------------------------------------------------- wrong answers, by name
def _fraction(labels, c):
    return float((labels[labels != 255] == c).mean())


def _stretch_by_hand(band, clip=True, cast=True, round_=True, flat_guard=True):
    low, high = np.percentile(band, [2, 98])
    if flat_guard and high <= low:
        high = low + 1
    scaled = (band.astype(np.float64) - low) / (high - low)
    if clip:
        scaled = np.clip(scaled, 0, 1)
    out = scaled * 255
    out = np.round(out) if round_ else out
    if not cast:
        return out
    with np.errstate(invalid="ignore"):
        return out.astype(np.int64).astype(np.uint8)


def _minmax(band):
    lo, hi = float(band.min()), float(band.max())
    return np.round((band - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)


def _kept(rule):
    def kept_mask(three, scores, single, n_clicks, multimask="auto"):
        return rule(three, np.asarray(scores), single, n_clicks, multimask)
    return kept_mask


def _auto(three, scores, single, n, mode):
    multi = mode == "always" or (mode == "auto" and n < 2)
    return three[int(np.argmax(scores))] if multi else single


def _grid_of(fx, fy):
    xs, ys = np.meshgrid(fx, fy)
    return np.stack([xs.ravel(), ys.ravel()], 1)


def _centres(n):
    return (np.arange(n) + 0.5) / n


def _iou_matrix(boxes, plus_one=False, over="union"):
    e = 1.0 if plus_one else 0.0
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    area = (x2 - x1 + e) * (y2 - y1 + e)
    w = np.clip(np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]) + e, 0, None)
    h = np.clip(np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]) + e, 0, None)
    inter = w * h
    return inter / (np.minimum(area[:, None], area[None]) if over == "min" else area[:, None] + area[None] - inter)


def _nms_variant(strict=True, chain=False, ascending=False, plus_one=False, over="union"):
    def nms(boxes, scores, thresh):
        boxes, scores = np.asarray(boxes, float), np.asarray(scores)
        if len(boxes) == 0:
            return np.zeros(0, int)
        iou = _iou_matrix(boxes, plus_one, over)
        beyond = (iou > thresh) if strict else (iou >= thresh)
        order = np.argsort(scores if ascending else -scores)
        kept = []
        for p, i in enumerate(order):
            judges = order[:p] if chain else kept
            if not any(beyond[i, j] for j in judges):
                kept.append(int(i))
        return np.array(kept, int)
    return nms


def _naive_ious(pred, gt, k, ignore=True):
    keep = gt != 255 if ignore else np.ones(gt.shape, bool)
    out = np.full(k, np.nan)
    for c in range(k):
        p, g = (pred == c) & keep, (gt == c) & keep
        if (p | g).sum():
            out[c] = (p & g).sum() / (p | g).sum()
    return out


def _recipe(e, p, s, axis=1):
    return softmax(s * _unit(p.astype(float)) @ _unit(_unit(e.astype(float)).mean(1)).T, axis=axis)


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _bias(tokens, text, lam, variant="right"):
    u = _unit(tokens.astype(np.float64))
    patch, cls = u[:, 1:] @ text.T, u[:, :1] @ text.T
    return {"right": patch - lam * cls, "plain": patch, "plus": patch + lam * cls, "whole": patch - cls,
            "raw": tokens[:, 1:] @ text.T - lam * (tokens[:, :1] @ text.T),
            "raw_cls": patch - lam * (tokens[:, :1] @ text.T),
            "tokens": _unit(tokens[:, 1:] - lam * tokens[:, :1]) @ text.T,
            "first": patch - lam * cls[:1], "mean_cls": patch - lam * cls.mean(0, keepdims=True),
            "mean_patch": patch - lam * patch.mean(1, keepdims=True),
            "with_cls": u @ text.T - lam * cls, "transposed": (patch - lam * cls).transpose(0, 2, 1)}[variant]


def _binary(rule):
    def binary_selection(masks, labels, target, tau=0.5):
        return rule(masks, labels, target, tau)
    return binary_selection


def _union(masks, keep):
    return masks[keep].any(0) if np.any(keep) else np.zeros(masks.shape[1:], bool)


def _share(masks, labels, target):
    return np.array([(labels[m] == target).mean() if m.any() else 0.0 for m in masks])


def _iou_parts(cm):
    cm = np.asarray(cm, float)
    tp = np.diag(cm)
    return tp, cm.sum(1), cm.sum(0)


def _ious(pred, gt, k, ignore=True):
    return _naive_ious(pred, gt, k, ignore)


def _dataset(rule):
    def dataset_miou(pairs, k):
        return rule(pairs, k)
    return dataset_miou


def _summed(pairs, k):
    inter, union = np.zeros(k), np.zeros(k)
    for pred, gt in pairs:
        v = gt != 255
        for c in range(k):
            p, g = (pred == c) & v, (gt == c) & v
            inter[c] += (p & g).sum()
            union[c] += (p | g).sum()
    return float(np.nanmean(np.divide(inter, union, out=np.full(k, np.nan), where=union > 0)))


WRONG = [
    # 00 q1: class fraction
    ("nb00.q1", lambda labels, c: 100 * _fraction(labels, c), "percentage"),
    ("nb00.q1", lambda labels, c: int((labels == c).sum()), "number of pixels"),
    ("nb00.q1", lambda labels, c: float((labels == c).mean()), "unlabelled ones (255) included"),
    ("nb00.q1", lambda labels, c: 1 - _fraction(labels, c), "*other*"),
    ("nb00.q1", lambda labels, c: labels == c, "return one number"),
    ("nb00.q1", lambda labels, c: 0.5, "want"),
    # 00 q2: stretch
    ("nb00.q2", lambda band: band.astype(np.uint8), "wrap around"),
    ("nb00.q2", lambda band: (band // 256).astype(np.uint8), "dividing by 256"),
    ("nb00.q2", _minmax, "min-max"),
    ("nb00.q2", lambda band: _stretch_by_hand(band, clip=False), "clip to 0..1"),
    ("nb00.q2", lambda band: np.clip((band - np.percentile(band, 2)) / np.ptp(np.percentile(band, [2, 98])), 0, 1),
     "scaled to 0..1"),
    ("nb00.q2", lambda band: _stretch_by_hand(band, cast=False), "cast to uint8"),
    ("nb00.q2", lambda band: _stretch_by_hand(band)[:5], "shape"),
    ("nb00.q2", lambda band: np.zeros_like(band, np.uint8), "not the 2-98"),
    ("nb00.q2", lambda band: _stretch_by_hand(band).astype(np.int8), "want uint8"),
    # 01 q1: multimask choice
    ("nb01.q1", _kept(lambda t, s, one, n, m: t[int(np.argmax(s))]), "two or more clicks"),
    ("nb01.q1", _kept(lambda t, s, one, n, m: one), "one click is ambiguous"),
    ("nb01.q1", _kept(lambda t, s, one, n, m: t[int(np.argmin(s))] if m != "never" and (m == "always" or n < 2)
                      else one), "*lowest*"),
    ("nb01.q1", _kept(lambda t, s, one, n, m: t[int(np.argmax(t.reshape(3, -1).sum(1)))]
                      if m != "never" and (m == "always" or n < 2) else one), "largest candidate"),
    ("nb01.q1", _kept(lambda t, s, one, n, m: t[int(np.argmin(t.reshape(3, -1).sum(1)))]
                      if m != "never" and (m == "always" or n < 2) else one), "smallest candidate"),
    ("nb01.q1", _kept(lambda t, s, one, n, m: t[0] if m != "never" and (m == "always" or n < 2) else one),
     "first candidate"),
    ("nb01.q1", _kept(lambda t, s, one, n, m: t.any(0) if m != "never" and (m == "always" or n < 2) else one),
     "union of the three"),
    ("nb01.q1", _kept(lambda t, s, one, n, m: _auto(t, s, one, n, m) if n != 2 else t[int(np.argmax(s))]),
     "two or more clicks"),
    ("nb01.q1", _kept(lambda t, s, one, n, m: _auto(t, s, one, n, "auto")), "\"always\" asks for three masks"),
    ("nb01.q1", _kept(lambda t, s, one, n, m: _auto(t, s, one, n, "auto" if m == "never" else m)), "\"never\""),
    ("nb01.q1", _kept(lambda t, s, one, n, m: int(np.argmax(s))), "not its index"),
    # 01 q2: the grid
    ("nb01.q2", lambda n, w, h: _grid_of(_centres(n) * w, _centres(n) * h).T, "transpose"),
    ("nb01.q2", lambda n, w, h: _grid_of(_centres(n) * w, _centres(n) * h).reshape(n, n, 2), "flatten"),
    ("nb01.q2", lambda n, w, h: _grid_of(_centres(n) * w, _centres(n) * h)[:, ::-1], "swapped"),
    ("nb01.q2", lambda n, w, h: _grid_of(_centres(n), _centres(n)), "fractions"),
    ("nb01.q2", lambda n, w, h: _grid_of(np.linspace(0, 1, n) * w, np.linspace(0, 1, n) * h), "edges"),
    ("nb01.q2", lambda n, w, h: _grid_of(np.linspace(0, w - 1, n), np.linspace(0, h - 1, n)), "edges"),
    ("nb01.q2", lambda n, w, h: _grid_of(np.arange(n) / n * w, np.arange(n) / n * h), "top-left corners"),
    ("nb01.q2", lambda n, w, h: _grid_of(_centres(n) * w, _centres(n) * h)[:-1], "points, but"),
    ("nb01.q2", lambda n, w, h: _grid_of(_centres(n) * w, _centres(n) * h) + 20, "not the grid"),
    # 01 q3: the filters
    ("nb01.q3", lambda i, s, ti, ts: (i > ti) | (s >= ts), "*either*"),
    ("nb01.q3", lambda i, s, ti, ts: ~((i > ti) & (s >= ts)), "*removed*"),
    ("nb01.q3", lambda i, s, ti, ts: (i >= ti) & (s > ts), "wrong way round"),
    ("nb01.q3", lambda i, s, ti, ts: (i >= ti) & (s >= ts), "does not pass"),
    ("nb01.q3", lambda i, s, ti, ts: (i > ti) & (s > ts), "equal to the threshold passes"),
    ("nb01.q3", lambda i, s, ti, ts: i > ti, "only the predicted-IoU"),
    ("nb01.q3", lambda i, s, ti, ts: s >= ts, "only the stability"),
    ("nb01.q3", lambda i, s, ti, ts: (i > 0.88) & (s >= 0.95), "default thresholds"),
    ("nb01.q3", lambda i, s, ti, ts: int(((i > ti) & (s >= ts)).sum()), "not a count"),
    ("nb01.q3", lambda i, s, ti, ts: np.flatnonzero((i > ti) & (s >= ts)), "indices"),
    # 01 q4: NMS
    ("nb01.q4", _nms_variant(strict=False), "equals the threshold"),
    ("nb01.q4", _nms_variant(chain=True), "removed box must not remove"),
    ("nb01.q4", _nms_variant(ascending=True), "lowest score"),
    ("nb01.q4", _nms_variant(plus_one=True), "exclusive"),
    ("nb01.q4", _nms_variant(over="min"), "smaller box's area"),
    ("nb01.q4", lambda b, s, t: np.sort(_nms_variant()(b, s, t)), "another order"),
    ("nb01.q4", lambda b, s, t: np.isin(np.arange(len(b)), _nms_variant()(b, s, t)), "boolean mask"),
    ("nb01.q4", lambda b, s, t: np.asarray(b)[_nms_variant()(b, s, t)], "it returned boxes"),
    # 02 q1: templates and the softmax
    ("nb02.q1", lambda e, p, s: _recipe(e, p, s).T, "classes x patches"),
    ("nb02.q1", lambda e, p, s: _unit(p.astype(float)) @ _unit(_unit(e.astype(float)).mean(1)).T, "cosine"),
    ("nb02.q1", lambda e, p, s: s * _unit(p.astype(float)) @ _unit(_unit(e.astype(float)).mean(1)).T, "scaled logits"),
    ("nb02.q1", lambda e, p, s: softmax(s * _unit(p) @ _unit(e.mean(1)).T), "*before* averaging"),
    ("nb02.q1", lambda e, p, s: softmax(s * _unit(p) @ _unit(e).mean(1).T), "mean of the templates again"),
    ("nb02.q1", lambda e, p, s: softmax(s * p @ _unit(_unit(e).mean(1)).T), "patch features too"),
    ("nb02.q1", lambda e, p, s: softmax(s * _unit(p) @ _unit(_unit(e).mean(1)).T, axis=0), "runs over the classes"),
    ("nb02.q1", lambda e, p, s: softmax(_unit(p) @ _unit(_unit(e).mean(1)).T), "logit scale is missing"),
    ("nb02.q1", lambda e, p, s: np.full((len(p), len(e)), np.nan), "NaN"),
    # 02 q2: the CLS bias
    ("nb02.q2", lambda t, x, lam: _bias(t, x, lam, "plain"), "plain patch similarity"),
    ("nb02.q2", lambda t, x, lam: _bias(t, x, lam, "plus"), "do not add it"),
    ("nb02.q2", lambda t, x, lam: _bias(t, x, lam, "whole"), "not all of it"),
    ("nb02.q2", lambda t, x, lam: _bias(t, x, lam, "raw"), "dot products"),
    ("nb02.q2", lambda t, x, lam: _bias(t, x, lam, "raw_cls"), "CLS token as well"),
    ("nb02.q2", lambda t, x, lam: _bias(t, x, lam, "tokens"), "not the token from the tokens"),
    ("nb02.q2", lambda t, x, lam: _bias(t, x, lam, "first"), "own CLS token"),
    ("nb02.q2", lambda t, x, lam: _bias(t, x, lam, "mean_cls"), "not the mean over windows"),
    ("nb02.q2", lambda t, x, lam: _bias(t, x, lam, "with_cls"), "the CLS token is not a patch"),
    ("nb02.q2", lambda t, x, lam: _bias(t, x, lam, "transposed"), "W x R x P"),
    # 03 q1: majority class
    ("nb03.q1", lambda labels, mask, k: int(np.bincount(labels.ravel(), minlength=k).argmax()), "inside the mask"),
    ("nb03.q1", lambda labels, mask, k: int(np.bincount(labels[~mask], minlength=k).argmax()), "inside the mask"),
    ("nb03.q1", lambda labels, mask, k: int(round(labels[mask].mean())), "names, not quantities"),
    ("nb03.q1", lambda labels, mask, k: int(np.median(labels[mask])), "names, not quantities"),
    ("nb03.q1", lambda labels, mask, k: int(k - 1 - np.bincount(labels[mask], minlength=k)[::-1].argmax()), "tie"),
    ("nb03.q1", lambda labels, mask, k: np.bincount(labels[mask], minlength=k), "votes?"),
    ("nb03.q1", lambda labels, mask, k: "road", "the text"),
    ("nb03.q1", lambda labels, mask, k: k + 3, "not a class index"),
    # 03 q2: binary selection
    ("nb03.q2", _binary(lambda m, l, t, tau: _union(m, _share(m, l, t) >= tau)), "exactly tau"),
    ("nb03.q2", _binary(lambda m, l, t, tau: _union(m, np.array(
        [np.bincount(l[x], minlength=max(l.max() + 1, t + 1)).argmax() == t for x in m]))), "multi-class vote"),
    ("nb03.q2", _binary(lambda m, l, t, tau: l == t), "pixel map"),
    ("nb03.q2", _binary(lambda m, l, t, tau: _union(m, _share(m, l, t) > tau) & (l == t)), "whole mask"),
    ("nb03.q2", _binary(lambda m, l, t, tau: _union(m, np.array(
        [((l == t) & x).sum() / (l == t).sum() for x in m]) > tau)), "target's area"),
    ("nb03.q2", _binary(lambda m, l, t, tau: m.any(0)), "union of all masks"),
    ("nb03.q2", _binary(lambda m, l, t, tau: _union(m, ~(_share(m, l, t) > tau))), "fail the test"),
    ("nb03.q2", _binary(lambda m, l, t, tau: _union(m, _share(m, l, t) > 0.5)), "tau = 0.5"),
    ("nb03.q2", _binary(lambda m, l, t, tau: np.flatnonzero(_share(m, l, t) > tau)), "not which masks"),
    ("nb03.q2", _binary(lambda m, l, t, tau: _union(m, _share(m, l, t) > tau)[:3]), "shape"),
    ("nb03.q2", _binary(lambda m, l, t, tau: _union(m, _share(m, l, t) > tau) * 3), "0/1"),
    ("nb03.q2", _binary(lambda m, l, t, tau: np.zeros(l.shape, bool)), "empty"),
    # 04 q1: IoU per class
    ("nb04.q1", lambda cm: (lambda tp, g, p: 100 * tp / (g + p - tp))(*_iou_parts(cm)), "percentages"),
    ("nb04.q1", lambda cm: (lambda tp, g, p: (g + p - tp) / tp)(*_iou_parts(cm)), "union over intersection"),
    ("nb04.q1", lambda cm: (lambda tp, g, p: 2 * tp / (g + p))(*_iou_parts(cm)), "dice"),
    ("nb04.q1", lambda cm: (lambda tp, g, p: tp / (g + p))(*_iou_parts(cm)), "twice"),
    ("nb04.q1", lambda cm: (lambda tp, g, p: tp / g)(*_iou_parts(cm)), "recall"),
    ("nb04.q1", lambda cm: (lambda tp, g, p: tp / p)(*_iou_parts(cm)), "precision"),
    ("nb04.q1", lambda cm: (lambda tp, g, p: np.nan_to_num(tp / np.maximum(g + p - tp, 1)))(*_iou_parts(cm)),
     "NaN, not 0"),
    ("nb04.q1", lambda cm: np.diag(cm)[:2], "shape"),
    ("nb04.q1", lambda cm: np.full(len(cm), 0.5), "not tp"),
    # 04 q2: mIoU with the ignore index
    ("nb04.q2", lambda pred, gt, k: 100 * float(np.nanmean(_ious(pred, gt, k))), "percentage"),
    ("nb04.q2", lambda pred, gt, k: float(np.nan_to_num(_ious(pred, gt, k)).mean()), "do not count it as 0"),
    ("nb04.q2", lambda pred, gt, k: float(np.nanmean(_ious(pred, gt, k, ignore=False))), "unlabelled pixels (255)"),
    ("nb04.q2", lambda pred, gt, k: float(np.nan_to_num(_ious(pred, gt, k, ignore=False)).mean()), "two slips"),
    ("nb04.q2", lambda pred, gt, k: float((pred[gt != 255] == gt[gt != 255]).mean()), "pixel accuracy"),
    ("nb04.q2", lambda pred, gt, k: float((pred == gt).mean()), "over all pixels"),
    ("nb04.q2", lambda pred, gt, k: _ious(pred, gt, k), "return one number"),
    ("nb04.q2", lambda pred, gt, k: 0.2, "want"),
    # 04 q3: the dataset mIoU
    ("nb04.q3", _dataset(lambda pairs, k: 100 * _summed(pairs, k)), "percentage"),
    ("nb04.q3", _dataset(lambda pairs, k: float(np.mean([np.nanmean(_ious(p, g, k)) for p, g in pairs]))),
     "per-image mIoUs"),
    ("nb04.q3", _dataset(lambda pairs, k: float(np.nanmean(np.nanmean([_ious(p, g, k) for p, g in pairs], 0)))),
     "each class's per-image IoUs"),
    ("nb04.q3", _dataset(lambda pairs, k: sum(int((p[g != 255] == g[g != 255]).sum()) for p, g in pairs)
                         / sum(int((g != 255).sum()) for _, g in pairs)), "pixel accuracy"),
    ("nb04.q3", _dataset(lambda pairs, k: 0.5), "accumulate"),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("key, student, fragment", WRONG, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(WRONG)])
def test_recognised_wrong_answers_get_their_message(key, student, fragment):
    wrong(BY_ID[key], student, fragment)


def test_incorrect_is_raised_by_verify_with_the_message():
    with pytest.raises(Incorrect, match="percentage"):
        nb00.q1.verify(lambda labels, c: 100 * _fraction(labels, c))


# --------------------------------------------------------------------------- the references are the package's
def test_the_example_filter_keeps_eight_and_the_thresholds_follow_segment_anything():
    iou, stab = nb01.example_scores()
    assert nb01.q3.expected(iou, stab, 0.88, 0.95).sum() == 8
    import inspect

    from segment_anything.automatic_mask_generator import SamAutomaticMaskGenerator

    source = inspect.getsource(SamAutomaticMaskGenerator._process_batch)
    assert 'data["iou_preds"] > self.pred_iou_thresh' in source
    assert 'data["stability_score"] >= self.stability_score_thresh' in source


def test_multimask_reference_is_the_packages_rule():
    from rs_helpers.sam.from_clicks import use_multimask

    for mode in ("auto", "always", "never"):
        for n in (1, 2, 3):
            three, scores, single = nb01.example_candidates()
            got = nb01.q1.expected(three, scores, single, n, mode)
            assert np.array_equal(got, three[1] if use_multimask(mode, n) else single)


def test_nms_cases_are_well_posed():
    """Distinct scores, no IoU within float32 noise of the threshold (but for the designed exact 0.5), and
    suppression happens in the random cases."""
    for boxes, scores, thresh in nb01.q4.cases():
        assert len(set(scores.tolist())) == len(scores)
        if len(boxes) < 2:
            continue
        iou = nb01._iou_matrix(boxes)[np.triu_indices(len(boxes), 1)]
        near = np.abs(iou - thresh) < 1e-6
        assert not near.any() or thresh == 0.5, (thresh, iou[near])
        if len(boxes) > 5:
            assert 2 <= len(nb01.q4.expected(boxes, scores, thresh)) < len(boxes)


def test_template_reference_is_the_recipe():
    emb, patches, _, _ = nb02.example_embeddings()
    classes = _unit(_unit(emb.astype(float)).mean(1))
    want = softmax(50 * _unit(patches.astype(float)) @ classes.T)
    np.testing.assert_allclose(nb02.reference_probabilities(emb, patches, 50), want, atol=1e-5)
    assert np.allclose(want.sum(1), 1) and 0.05 < want.max(1).min() and want.max(1).min() < 0.999  # not saturated


def test_cls_reference_is_what_the_dense_map_subtracts():
    import torch

    from rs_helpers.models import load_clip
    from rs_helpers.ovss.clip_dense import DenseSettings, _window_logits, cls_bias, crops, encode_tokens
    from rs_helpers.ovss.vocabulary import encode_vocabulary

    clip = load_clip("ViT-B-16", profile="tiny", device="cpu")
    image = np.random.default_rng(3).integers(0, 255, (180, 300, 3), dtype=np.uint8)
    settings = DenseSettings(templates="single", long_side=300)
    text = encode_vocabulary(clip, "building;road,street;water", "single", cache=None)
    batch = crops(clip, image, settings).batch
    with torch.no_grad():
        tokens = encode_tokens(clip.model.visual, batch, settings).float().numpy()
        logits = _window_logits(clip, batch, text, settings).numpy()  # B x R x gh x gw
    assert len(batch) > 1  # several windows, each with its own CLS token
    emb = text.embeddings.numpy()
    want = nb02.reference_bias_removed(tokens, emb, settings.cls_lambda)
    np.testing.assert_allclose(want, logits.reshape(*logits.shape[:2], -1).transpose(0, 2, 1), atol=1e-5)
    removed = nb02.reference_bias_removed(tokens, emb, 0.0) - want  # lambda x cos(CLS, row), for every patch
    np.testing.assert_allclose(removed, np.broadcast_to(cls_bias(clip, image, text, settings)[:, None, :],
                                                        removed.shape), atol=1e-5)
    right(nb02.q2, solution(nb02.q2)["answer"])
    got = solution(nb02.q2)["answer"](tokens, emb, settings.cls_lambda)
    np.testing.assert_allclose(got, want, atol=1e-5)


# --------------------------------------------------------------------------- any size
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), width=st.integers(8, 3000), height=st.integers(8, 3000))
def test_grid_comparison_any_size(n, width, height):
    q = nb01.q2
    want = q.expected(n, width, height)
    q.compare(want[::-1], want, (n, width, height))  # any order
    q.compare(np.round(want), want, (n, width, height))  # rounded pixels
    if abs(width - height) > 2 * n:  # swapping x and y must then be noticed
        with pytest.raises(Incorrect):
            q.compare(want[:, ::-1], want, (n, width, height))
