"""Notebooks 05-10: every exercise is a function problem. The solution passes the hidden cases; each
forbidden shortcut is refused with the "without" message; a function fitted to the notebook's example
fails; each recognised wrong function gets its own message; two hint levels, neither the solution."""
from __future__ import annotations

import inspect
import json
import math
import re

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

import rs_helpers.refer.clicks as clicks_module
from rs_helpers.geo.tiling import tile_grid, tile_starts
from rs_helpers.refer.click_sim import farthest_point, first_click, next_click, padded_distance, simulate_clicks
from rs_helpers.refer.clicks import Click, grid_to_pixel, interior_clicks, parse_clicks, to_pixels
from rs_helpers.refer.prompts import build_prompt
from rs_helpers.refer.vlm_qwen import build_messages
from rs_helpers.teaching.exercises import _inline_html, nb05, nb06, nb07, nb08, nb09, nb10
from rs_helpers.teaching.exercises.function_problems import FunctionExercise, _resolve

MODULES = [nb05, nb06, nb07, nb08, nb09, nb10]
ALL = [q for m in MODULES for q in m.EXERCISES]
IDS = [f"{q.__module__.rsplit('.', 1)[1]}.{q.name}" for q in ALL]
BY_ID = dict(zip(IDS, ALL))
EXAMPLE_ARGS = {  # the notebook's visible example, as the setup cell names it
    "nb05.q1": "query, n_clicks", "nb05.q2": "answer_text, width, height", "nb05.q3": "intersections, unions",
    "nb06.q1": "image, prompt, system_prompt", "nb06.q2": "noisy,", "nb06.q3": "width, height",
    "nb07.q1": "target,", "nb07.q2": "target, pred",
    "nb08.q1": "d_in, d_out, rank", "nb08.q2": "x, W, A, B, alpha",
    "nb09.q1": "height, width, tile, overlap", "nb09.q2": "height, width, tile, overlap",
    "nb10.q1": "query_logits, presence_logit", "nb10.q2": "masks, scores, semantic, presence, threshold",
    "nb10.q3": "class_scores, 0.3, 0",
}


def run(exercise) -> dict:
    namespace: dict = {}
    exec(exercise.setup + "\n" + exercise.solution_code, namespace)  # noqa: S102
    return namespace


def solution(exercise):
    return run(exercise)["answer"]


def right(exercise, answer):
    ok, message = exercise.feedback(answer)
    assert ok, f"a right answer was refused: {message}"


def wrong(exercise, answer, fragment):
    ok, message = exercise.feedback(answer)
    assert not ok, f"a wrong answer passed ({message})"
    assert fragment.lower() in message.lower(), f"expected a message with {fragment!r}, got {message!r}"


# --------------------------------------------------------------------------- every exercise
@pytest.mark.parametrize("exercise", ALL, ids=IDS)
def test_the_solution_passes_the_hidden_cases(exercise, capsys):
    assert isinstance(exercise, FunctionExercise)
    assert exercise.check(solution(exercise)) is True
    assert "Correct: right on all" in capsys.readouterr().out


@pytest.mark.parametrize("name", IDS)
def test_a_function_fitted_to_the_visible_example_fails(name):
    exercise = BY_ID[name]
    namespace = run(exercise)
    example = eval(EXAMPLE_ARGS[name], namespace)  # noqa: S307
    fitted = namespace["answer"](*example)
    ok, message = exercise.feedback(lambda *args: fitted)
    assert not ok and "returns nothing yet" not in message, message


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and np.array_equal(a, b)
    if hasattr(a, "tobytes") or hasattr(b, "tobytes"):
        return nb06._same_image(a, b)
    return a == b


@pytest.mark.parametrize("name", IDS)
def test_the_hidden_cases_are_not_the_visible_example(name):
    exercise = BY_ID[name]
    example = eval(EXAMPLE_ARGS[name], run(exercise))  # noqa: S307
    cases = exercise.cases()
    assert len(cases) >= 3 or name == "nb10.q1"
    for args in cases:
        assert not (len(args) == len(example) and all(_same(a, b) for a, b in zip(args, example))), args


@pytest.mark.parametrize("exercise", ALL, ids=IDS)
def test_a_stub_is_no_answer_yet_and_values_are_not_functions(exercise):
    ok, message = exercise.feedback(lambda *args: None)
    assert not ok and "returns nothing yet" in message

    def stub(*args):
        raise NotImplementedError("Exercise: replace this stub with your solution.")

    assert not exercise.feedback(stub)[0]
    wrong(exercise, 42, "the function itself")


@pytest.mark.parametrize("exercise", ALL, ids=IDS)
def test_two_hint_levels_neither_holds_the_solution(exercise):
    assert len(exercise.hints) == 2 and exercise.hints[0] == exercise.hint_text
    assert all(len(h) > 40 for h in exercise.hints) and exercise.hints[0] != exercise.hints[1]
    code = [line.strip() for line in exercise.solution_code.splitlines()
            if line.strip() and not line.strip().startswith(("#", "def ", "print(", "answer =", '"""', "return ("))]
    for hint in exercise.hints:
        assert not any(line in hint for line in code if len(line) > 12), hint
        outside = re.sub(r"<code>.*?</code>", "", _inline_html(hint))
        assert "`" not in outside, f"an unbalanced code span: {hint}"


@pytest.mark.parametrize("exercise", ALL, ids=IDS)
def test_the_solution_cell_hands_in_the_named_function(exercise):
    namespace = run(exercise)
    assert namespace["answer"] is namespace[exercise.function_name]
    assert f"`{exercise.function_name}(" in exercise.task


# --------------------------------------------------------------------------- forbidden shortcuts
SHORTCUTS = {  # exercise -> {forbidden attribute: a function that takes the shortcut}
    "nb05.q1": {"build_prompt": lambda q, n: build_prompt(q, "referring", n)},
    "nb05.q2": {"parse_clicks": lambda t, w, h: [(c.x, c.y, c.label) for c in to_pixels(parse_clicks(t), w, h)],
                "to_pixels": lambda t, w, h: to_pixels([Click(**c) for c in json.loads(t)["clicks"]], w, h),
                "grid_to_pixel": lambda t, w, h: [(grid_to_pixel(c["x"], w), grid_to_pixel(c["y"], h), c["label"])
                                                  for c in json.loads(t)["clicks"]]},
    "nb06.q1": {"build_messages": lambda i, p, s: build_messages(i, p, s)},
    "nb06.q2": {"parse_clicks": lambda t: parse_clicks(t),
                "_parse": lambda t: clicks_module._parse(t)[0]},
    "nb07.q1": {"first_click": lambda m: (first_click(m)[0].x, first_click(m)[0].y),
                "padded_distance": lambda m: np.unravel_index(padded_distance(m).argmax(), m.shape)[::-1],
                "farthest_point": lambda m: farthest_point(distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1])[:2],
                "simulate_clicks": lambda m: simulate_clicks(m, lambda p, l: m, 1).clicks[0],
                "interior_clicks": lambda m: interior_clicks(m, 1, 0)[0],
                "next_click": lambda m: next_click(m, np.zeros_like(m))[0]},
    "nb07.q2": {"next_click": lambda t, p: next_click(t, p)[0],
                "padded_distance": lambda t, p: (0, 0, int(padded_distance(t & ~p).max() > 0)),
                "farthest_point": lambda t, p: farthest_point(distance_transform_edt(np.pad(t & ~p, 1)))[:2] + (1,),
                "first_click": lambda t, p: first_click(t)[0],
                "simulate_clicks": lambda t, p: simulate_clicks(t, lambda pts, lab: p, 2).clicks[-1],
                "interior_clicks": lambda t, p: interior_clicks(t, 1, 1)[-1]},
    "nb08.q2": {"get_peft_model": lambda x, W, A, B, alpha: _peft_forward(x, W, A, B, alpha),
                "Linear": lambda x, W, A, B, alpha: _lora_linear_forward(x, W, A, B, alpha),
                "lora_output": lambda x, W, A, B, alpha: nb08.lora_output(x, W, A, B, alpha)},
    "nb09.q1": {"tile_grid": lambda h, w, t, o: tile_grid(h, w, t, o),
                "tile_starts": lambda h, w, t, o: [(r, c) for r in tile_starts(h, t, o) for c in tile_starts(w, t, o)]},
    "nb09.q2": {"tile_grid": lambda h, w, t, o: len(tile_grid(h, w, t, o)),
                "tile_starts": lambda h, w, t, o: len(tile_starts(h, t, o)) * len(tile_starts(w, t, o))},
}
SHORTCUT_CASES = [(name, attr) for name, table in SHORTCUTS.items() for attr in table]


def test_every_forbidden_name_exists_and_has_a_shortcut_test():
    for name, exercise in BY_ID.items():
        attrs = []
        for dotted in exercise.forbidden:
            module, attr = _resolve(dotted)
            assert callable(getattr(module, attr)), dotted
            attrs.append(attr)
        if name != "nb10.q3":  # test_nb10.py tries labels_from_scores
            assert sorted(attrs) == sorted(SHORTCUTS.get(name, {})), name


@pytest.mark.parametrize("name, attr", SHORTCUT_CASES, ids=[f"{n}-{a}" for n, a in SHORTCUT_CASES])
def test_each_forbidden_shortcut_is_refused(name, attr):
    wrong(BY_ID[name], SHORTCUTS[name][attr], f"without `{attr}`")
    module, _ = _resolve(next(d for d in BY_ID[name].forbidden if d.endswith(":" + attr)))
    assert not hasattr(getattr(module, attr), "__wrapped__")  # put back afterwards


# --------------------------------------------------------------------------- 05
def _prompt():
    return solution(nb05.q1)


def _fractions(text):
    return re.sub(r'("[xy]": )(\d+)', lambda m: f"{m.group(1)}{int(m.group(2)) / 1000}", text)


def test_nb05_prompt_the_package_prompt_passes_and_wrong_prompts_are_told_apart():
    good = _prompt()
    q = nb05.q1
    for query, n in q.cases():  # the reference passes its own checks
        q.compare(build_prompt(query, "referring", n), q.expected(query, n), (query, n))
    quoted = lambda q_: q_.replace('"', "'")  # noqa: E731
    wrong(q, lambda q_, n: good(q_, n).replace(f'"{quoted(q_)}"', quoted(q_)), "between double quotes")
    wrong(q, lambda q_, n: good(q_, n).replace(quoted(q_), q_), "ends your quotation early")
    wrong(q, lambda q_, n: good(nb05.EXAMPLE_QUERY[0], n), "does not hold the query")
    wrong(q, lambda q_, n: good(q_, 4), "up to `n_clicks` clicks")
    wrong(q, lambda q_, n: good(q_, n).replace("0-1000 grid", "grid"), "give the grid")
    wrong(q, lambda q_, n: good(q_, n).replace("left edge", "first column").replace("top edge", "first row"),
          "where 0 is")
    wrong(q, lambda q_, n: good(q_, n).replace("positive", "").replace("negative", ""), "what the labels mean")
    wrong(q, lambda q_, n: good(q_, n).replace("JSON only", "this only"), "json only")
    wrong(q, lambda q_, n: "\n".join(line for line in good(q_, n).splitlines() if '"label"' not in line),
          "show one example answer")
    wrong(q, lambda q_, n: good(q_, n).replace('"x"', '"col"'), 'keys "x", "y" and "label"')
    wrong(q, lambda q_, n: _fractions(good(q_, n)), "fractions")
    wrong(q, lambda q_, n: re.sub(r'("x": )(\d+)', lambda m: f"{m.group(1)}{int(m.group(2)) * 4}", good(q_, n)),
          "outside 0..1000")
    wrong(q, lambda q_, n: re.sub(r'("x": \d+)', r'\1.5', good(q_, n)), "whole numbers")
    wrong(q, lambda q_, n: good(q_, n).replace('"label": 0', '"label": 1'), "negative click (label 0)")
    wrong(q, lambda q_, n: good(q_, n).replace('"label": 0', '"label": "negative"'), "negative click (label 0)")
    wrong(q, lambda q_, n: good(q_, n).rsplit("\n", 1)[0], "the one answer")
    wrong(q, lambda q_, n: good(q_, n).replace(', "reason": "<why, in a few words>"', ""), "alone is refused")
    wrong(q, lambda q_, n: [good(q_, n)], "one string")


def _read(t):
    return json.loads(t)["clicks"]


def _scaled(sx, sy, swap=False, rnd=round):
    def f(t, w, h):
        out = [(rnd(c["x"] * sx(w, h)), rnd(c["y"] * sy(w, h)), c["label"]) for c in _read(t)]
        return [(y, x, lab) for x, y, lab in out] if swap else out
    return f


def test_nb05_clicks_to_pixels_other_correct_forms_and_wrong_answers():
    q = nb05.q2
    good = solution(q)
    right(q, _scaled(lambda w, h: (w - 1) / 1000, lambda w, h: (h - 1) / 1000, rnd=int))  # truncating: within 1 px
    right(q, lambda t, w, h: [(min(x, w - 1), min(y, h - 1), lab)  # width / 1000, clipped into the image
                              for x, y, lab in _scaled(lambda w, h: w / 1000, lambda w, h: h / 1000)(t, w, h)])
    right(q, lambda t, w, h: [Click(*c) for c in good(t, w, h)])
    right(q, lambda t, w, h: [{"x": x, "y": y, "label": lab} for x, y, lab in reversed(good(t, w, h))])
    wrong(q, lambda t, w, h: [(c["x"], c["y"], c["label"]) for c in _read(t)], "grid units")
    wrong(q, _scaled(lambda w, h: 1 / 1000, lambda w, h: 1 / 1000, rnd=float), "fractions")
    wrong(q, _scaled(lambda w, h: (w - 1) / 999, lambda w, h: (h - 1) / 999), "not 999")
    wrong(q, _scaled(lambda w, h: (w - 1) / 1000, lambda w, h: (h - 1) / 1000, swap=True), "swapped")
    wrong(q, _scaled(lambda w, h: (h - 1) / 1000, lambda w, h: (w - 1) / 1000), "with the width")
    wrong(q, _scaled(lambda w, h: w / 1000, lambda w, h: h / 1000), "last pixel")
    wrong(q, lambda t, w, h: [(x, y, 1 - lab) for x, y, lab in good(t, w, h)], "labels")
    wrong(q, lambda t, w, h: [(x, y) for x, y, _ in good(t, w, h)], "label too")
    wrong(q, lambda t, w, h: good(t, w, h)[:1], "the answer holds")
    wrong(q, lambda t, w, h: json.dumps(good(t, w, h)), "text")
    wrong(q, lambda t, w, h: [(x + w, y, lab) for x, y, lab in good(t, w, h)], "outside")
    wrong(q, lambda t, w, h: [(x - 300, y, lab) for x, y, lab in good(t, w, h)], "not the pixel clicks")


def test_nb05_giou_ciou_other_forms_and_wrong_answers():
    q = nb05.q3

    def parts(i, u):
        i, u = np.asarray(i, float), np.asarray(u, float)
        return i, u, i > 0, float(np.mean(i / u)), float(i.sum() / u.sum())

    def variant(make):
        return lambda i, u: make(*parts(i, u))

    right(q, variant(lambda i, u, ok, g, c: [round(g, 4), round(c, 4)]))
    right(q, variant(lambda i, u, ok, g, c: {"gIoU": g, "cIoU": c}))
    right(q, variant(lambda i, u, ok, g, c: np.array([g, c])))
    wrong(q, variant(lambda i, u, ok, g, c: (c, g)), "swapped")
    wrong(q, variant(lambda i, u, ok, g, c: (100 * g, 100 * c)), "percentages")
    wrong(q, variant(lambda i, u, ok, g, c: (g, u.sum() / i.sum())), "union over intersection")
    wrong(q, variant(lambda i, u, ok, g, c: (np.mean(i[ok] / u[ok]), c)), "left out the failed")
    wrong(q, variant(lambda i, u, ok, g, c: (g, i.sum() / u[ok].sum())), "total union")
    wrong(q, variant(lambda i, u, ok, g, c: (c, c)), "plain mean")
    wrong(q, variant(lambda i, u, ok, g, c: (g, g)), "total intersection")
    wrong(q, variant(lambda i, u, ok, g, c: (0.1, c)), "gIoU is wrong")
    wrong(q, variant(lambda i, u, ok, g, c: (g, 0.1)), "cIoU is wrong")
    wrong(q, variant(lambda i, u, ok, g, c: {"giou": g}), "keys")
    wrong(q, variant(lambda i, u, ok, g, c: [g, c, 0.5]), "two numbers")


# --------------------------------------------------------------------------- 06
def _turns(system, user_content):
    return lambda i, p, s: ([{"role": "system", "content": system(i, p, s)}] if s else []) + \
        [{"role": "user", "content": user_content(i, p, s)}]


def test_nb06_chat_messages_other_forms_and_wrong_answers():
    q = nb06.q1
    good = solution(q)
    text = lambda i, p, s: [{"type": "text", "text": p}]  # noqa: E731
    image = lambda i, p, s: [{"type": "image", "image": i}]  # noqa: E731
    plain = lambda i, p, s: s  # noqa: E731
    right(q, _turns(plain, lambda i, p, s: image(i, p, s) + text(i, p, s)))  # a plain-string system turn
    right(q, _turns(plain, lambda i, p, s: text(i, p, s) + image(i, p, s)))  # text first works too
    right(q, _turns(plain, lambda i, p, s: [{"type": "image", "image": i.copy()}] + text(i, p, s)))
    wrong(q, lambda i, p, s: good(i, p, s) + [{"role": "assistant", "content": "{}"}], "assistant")
    wrong(q, lambda i, p, s: [{**m, "role": "human" if m["role"] == "user" else m["role"]} for m in good(i, p, s)],
          "human")
    wrong(q, lambda i, p, s: [{"role": "system", "content": s}] + good(i, p, None), "no system prompt here")
    wrong(q, lambda i, p, s: good(i, p, None), "system turn is missing")
    wrong(q, lambda i, p, s: good(i, p, s)[::-1], "want the turns")
    wrong(q, lambda i, p, s: good(i, p, s and nb06.SYSTEM), "system_prompt")
    wrong(q, _turns(plain, lambda i, p, s: p), "never sees the image")
    wrong(q, _turns(plain, lambda i, p, s: [{"type": "image_url", "image_url": {"url": "data:..."}}] + text(i, p, s)),
          "openai")
    wrong(q, _turns(plain, text), "no image item")
    wrong(q, _turns(plain, lambda i, p, s: image(i, p, s) * 2 + text(i, p, s)), "several")
    wrong(q, _turns(plain, lambda i, p, s: [{"type": "image", "image": "photo.png"}] + text(i, p, s)),
          "image passed in")
    wrong(q, _turns(plain, lambda i, p, s: [{"type": "image", "image": nb06.chat_inputs()[0]}] + text(i, p, s)),
          "image passed in")
    wrong(q, _turns(plain, lambda i, p, s: image(i, p, s) + [{"type": "text", "text": "segment it"}]), "text item")
    wrong(q, _turns(plain, lambda i, p, s: image(i, p, s) + text(i, p, s) + [{"type": "video"}]), "exactly two items")
    wrong(q, lambda i, p, s: [{"role": "user"}], "role")
    wrong(q, lambda i, p, s: {"role": "user"}, "list of dicts")


def _json_clicks(t):
    block = re.sub(r",\s*([}\]])", r"\1", t[t.index("{"):t.rindex("}") + 1])
    return [(c["x"], c["y"], c["label"]) for c in json.loads(block)["clicks"]]


def test_nb06_noisy_clicks_other_forms_and_wrong_answers():
    q = nb06.q2
    right(q, lambda t: [Click(*c) for c in _json_clicks(t)])
    right(q, lambda t: {"clicks": [{"x": x, "y": y, "label": lab} for x, y, lab in _json_clicks(t)[::-1]]})
    wrong(q, lambda t: [(x, y, 1) for x, y, _ in _json_clicks(t)], "labels")
    wrong(q, lambda t: [(y, x, lab) for x, y, lab in _json_clicks(t)], "swapped")
    wrong(q, lambda t: _json_clicks(t) + [(0, 0, 1)], "numbers from the prose")
    wrong(q, lambda t: _json_clicks(t)[:1], "the answer holds")
    wrong(q, lambda t: [(x, y) for x, y, _ in _json_clicks(t)], "label too")
    wrong(q, lambda t: t, "text")
    wrong(q, lambda t: [(c["x"], c["y"], c["label"]) for c in json.loads(t[t.index("{"):t.rindex("}") + 1])["clicks"]],
          "drop the trailing commas")
    fenced = lambda t: _json_clicks(re.search(r"```json(.*?)```", t, re.S).group(1))  # noqa: E731
    wrong(q, fenced, "raised AttributeError")  # only fenced answers: fails on the bare one


def test_nb06_image_tokens_references_and_wrong_answers():
    q = nb06.q3
    for w, h in q.cases():  # the processor only rounds at these sizes
        assert q.expected(w, h) == round(w / 32) * round(h / 32)
        assert nb06.MIN_PIXELS <= w * h <= nb06.MAX_PIXELS and w % 32 != 16 and h % 32 != 16
    right(q, lambda w, h: float(round(w / 32) * round(h / 32)))
    wrong(q, lambda w, h: (w // 32) * (h // 32), "rounding down")
    wrong(q, lambda w, h: math.ceil(w / 32) * math.ceil(h / 32), "rounding up")
    wrong(q, lambda w, h: w * h, "number of pixels")
    wrong(q, lambda w, h: round(w / 16) * round(h / 16), "before merging")
    wrong(q, lambda w, h: w * h / 32, "1024 pixels")
    wrong(q, lambda w, h: w * h / 1024, "multiple of 32 first")
    wrong(q, lambda w, h: round(w / 32) + round(h / 32), "multiply")
    wrong(q, lambda w, h: round(w / 28) * round(h / 28), "28-pixel")
    wrong(q, lambda w, h: w * h / 14 ** 2, "14-pixel")
    wrong(q, lambda w, h: 300, "not the number")
    wrong(q, lambda w, h: "300", "one number")


# --------------------------------------------------------------------------- 07
def _depth(region, pad=True):
    region = np.asarray(region, bool)
    return distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1] if pad else distance_transform_edt(region)


def _argmax_xy(depth, last=False):
    flat = depth[::-1, ::-1] if last else depth
    row, col = np.unravel_index(flat.argmax(), flat.shape)
    if last:
        row, col = depth.shape[0] - 1 - row, depth.shape[1] - 1 - col
    return int(col), int(row)


def test_nb07_first_click_other_forms_and_wrong_answers():
    q = nb07.q1
    right(q, lambda m: _argmax_xy(_depth(m), last=True))  # another tied maximum
    right(q, lambda m: Click(*_argmax_xy(_depth(m)), 1))
    right(q, lambda m: np.array(_argmax_xy(_depth(m)) + (1,)))
    wrong(q, lambda m: _argmax_xy(_depth(m))[::-1], "swapped")
    wrong(q, lambda m: _argmax_xy(_depth(m, pad=False)), "padding")
    wrong(q, lambda m: tuple(int(round(v.mean())) for v in np.nonzero(m)[::-1]), "centroid")
    wrong(q, lambda m: _argmax_xy(_depth(m)) + (0,), "positive")
    wrong(q, lambda m: tuple(int(v[0]) for v in np.nonzero(m)[::-1]), "px from the background")
    wrong(q, lambda m: (m.shape[1] - 1, m.shape[0] - 1), "not a pixel of the mask")
    wrong(q, lambda m: (_argmax_xy(_depth(m))[0] + 0.5, _argmax_xy(_depth(m))[1]), "not a pixel of the mask")
    wrong(q, lambda m: (1, 2, 3, 4), "one click")


def _corrective(pad=True, tie_positive=False, swap_label=False, smaller=False, last=False):
    def f(target, pred):
        fn, fp = _depth(target & ~pred, pad), _depth(pred & ~target, pad)
        use_fn = fn.max() >= fp.max() if tie_positive else fn.max() > fp.max()
        if smaller:
            use_fn = not use_fn
        region, label = (fn, 1) if use_fn else (fp, 0)
        return _argmax_xy(region, last) + ((1 - label) if swap_label else label,)
    return f


def test_nb07_next_click_other_forms_and_wrong_answers():
    q = nb07.q2
    right(q, _corrective(last=True))  # another tied maximum of the same region
    right(q, lambda t, p: Click(*_corrective()(t, p)))
    wrong(q, _corrective(swap_label=True), "negative (label 0)")
    target, pred = nb07._predictions()[1][1]  # the sliver: a positive click
    assert nb07.q2.expected(target, pred)[2] == 1
    with pytest.raises(Exception, match="positive \\(label 1\\)"):
        q.compare(_corrective(swap_label=True)(target, pred), None, (target, pred))
    wrong(q, lambda t, p: _corrective()(t, p)[1::-1] + (_corrective()(t, p)[2],), "swapped")
    wrong(q, _corrective(smaller=True), "smaller error")
    wrong(q, _corrective(tie_positive=True), "on a tie the click is negative")
    wrong(q, _corrective(pad=False), "padding")
    wrong(q, lambda t, p: _argmax_xy(_depth(t)) + (1,), "first click")
    wrong(q, lambda t, p: (0, 0, 0), "not the deepest")
    wrong(q, lambda t, p: _corrective()(t, p)[:2], "polarity too")


# --------------------------------------------------------------------------- 08
def test_nb08_lora_parameters_agrees_with_peft_and_wrong_answers():
    import torch
    from peft import LoraConfig, get_peft_model

    q = nb08.q1
    for d_in, d_out, rank in [(12, 20, 3), (8, 8, 1)]:
        model = get_peft_model(torch.nn.Sequential(torch.nn.Linear(d_in, d_out, bias=False)),
                               LoraConfig(r=rank, target_modules=["0"]))
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert trained == q.expected(d_in, d_out, rank)
    right(q, lambda di, do, r: r * (di + do))
    right(q, lambda di, do, r: float(r * (di + do)))
    wrong(q, lambda di, do, r: di * do, "frozen")
    wrong(q, lambda di, do, r: r * di, "A only")
    wrong(q, lambda di, do, r: r * do, "B only")
    wrong(q, lambda di, do, r: r * di * do, "not multiplied")
    wrong(q, lambda di, do, r: 2 * r * di, "d_out = 2048")
    wrong(q, lambda di, do, r: 2 * r * do, "d_in = 6144")
    wrong(q, lambda di, do, r: r * r, "r x r")
    wrong(q, lambda di, do, r: r * (di + do) + di * do, "W stays frozen")
    wrong(q, lambda di, do, r: 262144, "entries")
    wrong(q, lambda di, do, r: "many", "one number")


def _peft_forward(x, W, A, B, alpha):
    """peft's own answer: a one-layer model with a LoRA adapter holding W, A and B, in eval mode."""
    import torch
    from peft import LoraConfig, get_peft_model

    (d_out, d_in), rank = W.shape, A.shape[0]
    model = get_peft_model(torch.nn.Sequential(torch.nn.Linear(d_in, d_out, bias=False)),
                           LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=["0"]))
    layer = model.base_model.model[0]
    with torch.no_grad():
        layer.base_layer.weight.copy_(torch.as_tensor(W))
        layer.lora_A["default"].weight.copy_(torch.as_tensor(A))
        layer.lora_B["default"].weight.copy_(torch.as_tensor(B))
        return model.eval()(torch.as_tensor(x, dtype=torch.float32)).double().numpy()


def _lora_linear_forward(x, W, A, B, alpha):
    """The same through peft's LoRA ``Linear`` layer directly, without a model around it."""
    import torch
    from peft import LoraConfig
    from peft.tuners.lora import Linear

    (d_out, d_in), rank = W.shape, A.shape[0]
    # peft >= 0.15 takes the LoraConfig as well; 0.13 (the floor) only the keywords
    extra = {"config": LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0)} if (
        "config" in inspect.signature(Linear.__init__).parameters) else {}
    layer = Linear(torch.nn.Linear(d_in, d_out, bias=False), "default", r=rank, lora_alpha=alpha, **extra)
    with torch.no_grad():
        layer.base_layer.weight.copy_(torch.as_tensor(W))
        layer.lora_A["default"].weight.copy_(torch.as_tensor(A))
        layer.lora_B["default"].weight.copy_(torch.as_tensor(B))
        return layer.eval()(torch.as_tensor(x, dtype=torch.float32)).double().numpy()


def _adapted(scale=lambda alpha, rank, d_in, d_out: alpha / rank):
    def lora_forward(x, W, A, B, alpha):
        return x @ W.T + scale(alpha, A.shape[0], W.shape[1], W.shape[0]) * (x @ A.T) @ B.T
    return lora_forward


def test_nb08_lora_forward_agrees_with_peft_and_wrong_answers():
    q = nb08.q2
    for args in q.cases() + [nb08.example_layer()]:
        want = q.expected(*args)
        np.testing.assert_allclose(_peft_forward(*args), want, atol=1e-5)
        np.testing.assert_allclose(_lora_linear_forward(*args), want, atol=1e-5)
    x, W, A, B, alpha = next(args for args in q.cases() if not args[3].any())  # step 0: B is all zero
    assert np.allclose(q.expected(x, W, A, B, alpha), x @ W.T)
    right(q, _adapted())
    right(q, lambda x, W, A, B, a: (W @ x.T + a / A.shape[0] * B @ (A @ x.T)).T)  # column vectors
    right(q, lambda x, W, A, B, a: x @ (W + a / A.shape[0] * B @ A).T)  # the merged weight
    right(q, lambda x, W, A, B, a: _adapted()(x, W, A, B, a).tolist())
    right(q, lambda x, W, A, B, a: _adapted()(x, W, A, B, a).astype(np.float32))
    wrong(q, lambda x, W, A, B, a: x @ W.T, "frozen layer alone")
    wrong(q, lambda x, W, A, B, a: a / A.shape[0] * (x @ A.T) @ B.T, "correction alone")
    wrong(q, _adapted(lambda a, r, di, do: 1.0), "scaled by alpha / r (here 6 / 3 = 2)")
    wrong(q, _adapted(lambda a, r, di, do: a), "not by alpha alone")
    wrong(q, _adapted(lambda a, r, di, do: r / a), "not r / alpha")
    wrong(q, _adapted(lambda a, r, di, do: a / di), "not d_in")
    wrong(q, _adapted(lambda a, r, di, do: a / do), "not d_out")
    wrong(q, lambda x, W, A, B, a: a / A.shape[0] * (x @ W.T + (x @ A.T) @ B.T), "only the correction is scaled")
    wrong(q, _adapted(lambda a, r, di, do: -a / r), "do not subtract")
    wrong(q, lambda x, W, A, B, a: _adapted()(x, W, A, B, a).T, "(d_out x N)")
    wrong(q, lambda x, W, A, B, a: _adapted()(x, W, A, B, a)[:, :3], "shape")
    wrong(q, lambda x, W, A, B, a: np.full(_adapted()(x, W, A, B, a).shape, "W x"), "want numbers")
    wrong(q, lambda x, W, A, B, a: _adapted()(x, W, A, B, a) + 0.01, "not W x + (alpha / r) B A x")


# --------------------------------------------------------------------------- 09
def _offsets(starts):
    return lambda h, w, t, o: [(r, c) for r in starts(h, t, o) for c in starts(w, t, o)]


def _starts(step=lambda t, o: t - o, shift=True, ceil=False, always_shift=False):
    def starts(length, tile, overlap):
        if length <= tile:
            return [0]
        s = step(tile, overlap)
        end = length if ceil else length - tile + 1
        out = list(range(0, end, s))
        if always_shift or (shift and out[-1] + tile < length):
            out.append(length - tile)
        return out
    return starts


def test_nb09_tile_offsets_other_forms_and_wrong_answers():
    q = nb09.q1
    good = solution(q)
    right(q, lambda h, w, t, o: good(h, w, t, o)[::-1])
    right(q, lambda h, w, t, o: [(r, c, t, t) for r, c in good(h, w, t, o)])
    right(q, lambda h, w, t, o: np.array(good(h, w, t, o)))
    wrong(q, lambda h, w, t, o: [(c, r) for r, c in good(h, w, t, o)], "swapped")
    wrong(q, _offsets(_starts(step=lambda t, o: t)), "do not overlap")
    wrong(q, _offsets(_starts(step=lambda t, o: o or t)), "the step is the overlap")
    wrong(q, _offsets(_starts(shift=False)), "in no tile")
    wrong(q, _offsets(_starts(shift=False, ceil=True)), "past the scene")
    wrong(q, _offsets(_starts(always_shift=True)), "each once")
    wrong(q, lambda h, w, t, o: [(-1, c) if r == 0 else (r, c) for r, c in good(h, w, t, o)], "negative")
    wrong(q, lambda h, w, t, o: [(r, c) for r in range(0, h - t + 1, t - o) for c in range(0, w - t + 1, t - o)]
          + [(h - t, w - t)], "pair every")

    def old_solution(h, w, tile, overlap):  # the version that assumed a scene at least one tile large
        def starts(length):
            out = list(range(0, length - tile + 1, tile - overlap))
            if out[-1] + tile < length:
                out.append(length - tile)
            return out
        return [(r, c) for r in starts(h) for c in starts(w)]

    wrong(q, old_solution, "raised IndexError")
    wrong(q, lambda h, w, t, o: good(h, w, t, o)[:-1], "pair every")
    wrong(q, lambda h, w, t, o: good(h, w, t, o) + good(h, w, t, o)[:1], "each once")
    wrong(q, lambda h, w, t, o: len(good(h, w, t, o)), "list of")
    wrong(q, lambda h, w, t, o: [(0,)], "one window")


def test_nb09_tile_count_wrong_answers():
    q = nb09.q2

    def per_axis(length, t, o):
        return 1 if length <= t else math.ceil((length - t) / (t - o)) + 1

    right(q, lambda h, w, t, o: float(per_axis(h, t, o) * per_axis(w, t, o)))
    wrong(q, lambda h, w, t, o: per_axis(w, t, o), "along the width alone")
    wrong(q, lambda h, w, t, o: per_axis(h, t, o), "along the height alone")
    wrong(q, lambda h, w, t, o: per_axis(h, t, o) + per_axis(w, t, o), "multiply")
    wrong(q, lambda h, w, t, o: math.ceil(w / t) * math.ceil(h / t), "ignores the overlap")
    wrong(q, lambda h, w, t, o: max(1, w // t) * max(1, h // t), "last strip")
    wrong(q, lambda h, w, t, o: max(1, (w - t) // (t - o) + 1) * max(1, (h - t) // (t - o) + 1), "round up")
    wrong(q, lambda h, w, t, o: (math.ceil((w - t) / (t - o)) + 1) * (math.ceil((h - t) / (t - o)) + 1),
          "no longer than a tile")
    wrong(q, lambda h, w, t, o: w * h / t ** 2, "whole numbers")
    wrong(q, lambda h, w, t, o: 169, "count the tile starts")
    wrong(q, lambda h, w, t, o: [per_axis(h, t, o), per_axis(w, t, o)], "one number")


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_the_notebook_source_holds_the_rendered_exercise_cells(module):
    from pathlib import Path

    from rs_helpers.teaching.exercises import notebook_cells

    root = Path(__file__).resolve().parents[2] / "scripts" / "notebooks"
    source = next(root.glob(f"{module.__name__[-2:]}_*.py")).read_text()
    assert notebook_cells(module).rstrip("\n") in source, "re-render the exercise section and rebuild the notebook"
