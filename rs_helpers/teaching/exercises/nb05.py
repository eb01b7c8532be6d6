"""Exercises for notebook 05 (a VLM writes click prompts): writing the click prompt, reading a
click answer into pixel clicks, and gIoU / cIoU from per-query intersections and unions.

Each answer is a function, run on hidden cases (:mod:`~rs_helpers.teaching.exercises.function_problems`);
the references are the package's :func:`~rs_helpers.refer.prompts.build_prompt`,
:func:`~rs_helpers.refer.clicks.parse_clicks` / :func:`~rs_helpers.refer.clicks.to_pixels` and
:class:`~rs_helpers.evaluation.refer_metrics.ReferScores`."""
from __future__ import annotations

import json
import re

import numpy as np

from rs_helpers.teaching.exercises import Incorrect, as_array, as_clicks, close, same_points
from rs_helpers.teaching.exercises.function_problems import FunctionExercise

EXAMPLE_QUERY = ("the two tennis courts next to the car park", 4)  # (query, n_clicks)
EXAMPLE_ANSWER = ('{"clicks": [{"x": 250, "y": 500, "label": 1}, {"x": 990, "y": 40, "label": 1}, '
                  '{"x": 1000, "y": 720, "label": 0}]}')
EXAMPLE_SIZE = (4000, 3000)  # width, height


def same_clicks(a: np.ndarray, b: np.ndarray, tol: float = 1.0 + 1e-9) -> bool:
    """Clicks match one to one (any order): positions within ``tol`` pixels, labels equal."""
    weight = np.array([1.0, 1.0, 1e6])
    return same_points(np.asarray(a, float) * weight, np.asarray(b, float) * weight, tol)


def click_objects(text: str) -> list[dict]:
    """The JSON objects with a ``"clicks"`` key written in ``text`` (a prompt's example answers), in order."""
    decoder, found, i = json.JSONDecoder(), [], text.find("{")
    while i != -1:
        try:
            value, end = decoder.raw_decode(text, i)
        except ValueError:
            value, end = None, i + 1
        if isinstance(value, dict) and "clicks" in value:
            found.append(value)
        else:
            end = i + 1  # look inside: an object may be nested in another value
        i = text.find("{", end)
    return found


# --------------------------------------------------------------------------- 1: the prompt
_GRID_WORDS = re.compile(r"\b0\s*(?:-|–|to|\.\.)\s*1000\b")


class ClickPrompt(FunctionExercise):
    name = "q1"
    title = "Write the click prompt"
    function_name = "click_prompt"
    forbidden = ("rs_helpers.refer.prompts:build_prompt",)
    task = ("Write `click_prompt(query, n_clicks)` returning the user prompt that asks a VLM for click prompts on the "
            "region `query` describes, without `build_prompt`. A model can only follow what the prompt says, and our "
            "parser reads only one format, so the prompt must hold: the **query in double quotes** (a double quote "
            "inside the query becomes a single quote, or it would end the quotation early); **up to `n_clicks` "
            "clicks**; the **grid**: integers on a 0-1000 grid relative to the image, x from the **left** edge, y "
            "from the **top** edge (the image size is not needed: the grid is relative); the **labels**: 1 for a "
            "positive click on the target, 0 for a negative one on something to exclude; **JSON only**, shown as "
            "one example answer with a positive and a negative click, `{\"clicks\": [{\"x\": .., \"y\": .., "
            "\"label\": 1}, ...]}`; and the one answer when nothing matches, `{\"clicks\": [], \"reason\": \"...\"}`. "
            "The check asks your function for prompts of its own and runs our parser on what a model that copies "
            "your example would answer.")
    setup = '''import json

from rs_helpers.refer import parse_clicks
from rs_helpers.teaching.exercises.nb05 import EXAMPLE_QUERY

query, n_clicks = EXAMPLE_QUERY'''
    hints = ("List what the model needs to write an answer the parser reads: which region, how many clicks, where "
             "(0, 0) is and where the grid ends, what each label means, the exact JSON and what to say when there "
             "is nothing to click. The prompt of section 2 does all of this; read it again.",
             "An f-string holds the query and the number. Write the two example answers with `json.dumps` of a "
             "dict (a `\"clicks\"` list of dicts with the keys `\"x\"`, `\"y\"`, `\"label\"`; one with label 0; "
             "then an empty list with a `\"reason\"`), so they are valid JSON; `parse_clicks` on your example "
             "shows what the model's copy would give.")
    hint_text = hints[0]
    solution_code = '''def click_prompt(query, n_clicks):
    """The user prompt asking a VLM for up to n_clicks clicks on the region that query describes."""
    quoted = query.replace('"', "'")  # a double quote inside would end the quotation
    example = json.dumps({"clicks": [{"x": 512, "y": 300, "label": 1}, {"x": 540, "y": 330, "label": 1},
                                     {"x": 610, "y": 300, "label": 0}]})
    no_target = json.dumps({"clicks": [], "reason": "<why, in a few words>"})
    return (f'Find the region that this description refers to: "{quoted}"\\n'
            f"Write up to {n_clicks} clicks for a segmentation model (SAM).\\n"
            "Coordinates are integers on a 0-1000 grid relative to the image: x from 0 (left edge) to 1000 "
            "(right edge), y from 0 (top edge) to 1000 (bottom edge).\\n"
            "Use label 1 for a positive click inside the target and label 0 for a negative click on "
            "something nearby that must be excluded.\\n"
            f"Answer with JSON only, exactly in this form:\\n{example}\\n"
            f"If nothing in the image matches, answer exactly in this form:\\n{no_target}")

print(click_prompt(query, n_clicks))
answer = click_prompt'''

    def cases(self):
        return [("the swimming pool closest to the river", 6), ('the building marked "B2" on the site plan', 3),
                ("all the roads", 1), ("the ship on the left, not the one at the pier", 10)]

    def expected(self, query, n_clicks):
        from rs_helpers.refer.prompts import build_prompt

        return build_prompt(query, "referring", n_clicks)

    def truth(self, query, n_clicks):
        """The grid clicks a model following the prompt answers with, for the simulation."""
        from rs_helpers.refer.clicks import Click

        rng = np.random.default_rng(len(query) * 31 + n_clicks)
        xs, ys = rng.integers(0, 1001, (2, min(n_clicks, 3)))
        return [Click(int(x), int(y), int(i < 2 or n_clicks == 1)) for i, (x, y) in enumerate(zip(xs, ys))]

    def compare(self, got, want, args):
        from rs_helpers.refer.clicks import ClickParseError, no_target_reason, parse_clicks

        query, n = args

        def wrong(message):
            raise Incorrect(f"for {self.describe(args)}: {message}")

        if not isinstance(got, str):
            wrong(f"it returned {type(got).__name__}; return the prompt as one string.")
        low, quoted = got.lower(), query.replace('"', "'")
        if f'"{quoted}"' not in got:
            if '"' in query and f'"{query}"' in got:
                wrong("the query holds a double quote, which ends your quotation early: replace the double quotes "
                      "inside the query with single quotes.")
            if query in got or quoted in got:
                wrong("put the query between double quotes, so the model sees where it starts and ends.")
            wrong(f"the prompt does not hold the query ({query!r}): the model knows only what the prompt says.")
        if not re.search(rf"(?<![\w.]){n}\b[^\n.]{{0,30}}?\bclicks?\b", got, re.I):
            wrong(f"ask for up to `n_clicks` clicks (here {n}): write the number into the prompt.")
        if not _GRID_WORDS.search(got):
            wrong("give the grid: x and y are integers on a 0-1000 grid relative to the image.")
        if "left" not in low or "top" not in low:
            wrong("say where 0 is: x runs from the left edge, y from the top edge (image rows count downwards).")
        if "positive" not in low or "negative" not in low:
            wrong("say what the labels mean: 1 for a positive click on the target, 0 for a negative click on "
                  "something to exclude.")
        if "json" not in low:
            wrong("ask for JSON only: prose around the clicks is what makes answers hard to read.")
        objects = click_objects(got)
        examples = [o for o in objects if o["clicks"]]
        if not examples:
            wrong('show one example answer as valid JSON, {"clicks": [{"x": .., "y": .., "label": 1}, ...]}: '
                  "models copy a worked example more faithfully than a description.")
        items = examples[0]["clicks"]
        if not isinstance(items, list) or not all(isinstance(c, dict) and {"x", "y", "label"} <= set(c) for c in items):
            wrong('each click of the example is a dict with the keys "x", "y" and "label": the format the parser '
                  "reads and the LoRA targets are written in.")
        values = [c[k] for c in items for k in ("x", "y")]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            wrong("the example's x and y must be numbers, not text.")
        if all(0 <= v <= 1 for v in values) and any(v != int(v) for v in values):
            wrong("the example's coordinates are fractions: a model copying it writes 0.42, which the parser reads "
                  "as grid unit 0. Use integers on the 0-1000 grid.")
        if any(v > 1000 or v < 0 for v in values):
            wrong("the example has coordinates outside 0..1000 (pixels?): a model copying it writes pixels, which "
                  "the parser refuses. Use the 0-1000 grid.")
        if any(v != int(v) for v in values):
            wrong("the example's coordinates must be whole numbers on the 0-1000 grid.")
        labels = [c["label"] for c in items]
        if not all(type(v) is int and v in (0, 1) for v in labels) or set(labels) != {0, 1}:
            wrong("the example needs a positive click (label 1) and a negative click (label 0), labels as the "
                  "numbers 1 and 0, so the model sees both.")
        empties = [o for o in objects if o["clicks"] == []]
        if not any(isinstance(o.get("reason"), str) and o["reason"].strip() for o in empties):
            if empties:
                wrong('`{"clicks": []}` alone is refused by the parser (it cannot tell "nothing there" from a broken '
                      'answer): the no-target answer also carries a "reason".')
            wrong('tell the model the one answer for "nothing matches": {"clicks": [], "reason": "..."}; without '
                  "it a model writes prose, which the parser refuses.")
        truth = self.truth(query, n)
        extra = {k: v for k, v in examples[0].items() if k != "clicks"}
        reply = json.dumps({"clicks": [{"x": c.x, "y": c.y, "label": c.label} for c in truth], **extra})
        try:
            parsed = parse_clicks(reply)
        except ClickParseError as error:
            wrong(f"a model copying your example answers {reply}, and the parser refuses it: {error.reason}.")
        if parsed != truth:
            wrong(f"a model copying your example answers {reply}, and the parser reads other clicks from it.")
        nothing = json.dumps({**next(o for o in empties if isinstance(o.get("reason"), str)), "reason": "no such ship"})
        if parse_clicks(nothing) != [] or no_target_reason(nothing) is None:
            wrong(f"the parser does not read your no-target answer {nothing} as 'no target'.")


# --------------------------------------------------------------------------- 2: clicks to pixels
def _answer(*clicks) -> str:
    from rs_helpers.refer.clicks import Click, format_clicks

    return format_clicks([Click(*c) for c in clicks])


class ClicksToPixels(FunctionExercise):
    name = "q2"
    title = "From a click answer to pixel coordinates"
    function_name = "to_pixel_clicks"
    forbidden = ("rs_helpers.refer.clicks:parse_clicks", "rs_helpers.refer.clicks:to_pixels",
                 "rs_helpers.refer.clicks:grid_to_pixel")
    task = ("A model answered `answer_text` in the asked-for JSON, `{\"clicks\": [...]}` (the no-target answer has "
            "an empty list). Its clicks are on the 0-1000 grid: x from the left edge, y from the top edge, **0 is "
            "the first pixel and 1000 the last one**. Write `to_pixel_clicks(answer_text, width, height)` returning "
            "the clicks in **pixels** of a `width` x `height` image, as a list of `(x, y, label)` with integer x "
            "(column) and y (row). Use `json`, without `parse_clicks`, `to_pixels` or `grid_to_pixel`. Any order "
            "is accepted; a pixel off by one from rounding is fine. The check calls your function on answers and "
            "image sizes of its own.")
    setup = '''import json

from rs_helpers.teaching.exercises.nb05 import EXAMPLE_ANSWER, EXAMPLE_SIZE

answer_text = EXAMPLE_ANSWER
width, height = EXAMPLE_SIZE
print(answer_text, "| image", width, "x", height)'''
    hints = ("Two steps: read the JSON into Python values, then scale each grid value to a pixel index. Which pixel "
             "must grid 0 land on, and which one grid 1000?",
             "`json.loads` gives a dict whose `\"clicks\"` is a list of dicts. Grid 1000 is the last pixel, index "
             "`side - 1`, so scale by `(side - 1) / 1000` and round; x goes with the width, y with the height.")
    hint_text = hints[0]
    solution_code = '''def to_pixel_clicks(answer_text, width, height):
    """The clicks of a grid answer as pixel (x, y, label) tuples of a width x height image."""
    clicks = json.loads(answer_text)["clicks"]
    return [(round(c["x"] * (width - 1) / 1000), round(c["y"] * (height - 1) / 1000), c["label"]) for c in clicks]

print(to_pixel_clicks(answer_text, width, height))
answer = to_pixel_clicks'''

    def cases(self):
        from rs_helpers.refer.clicks import no_target_answer

        rng = np.random.default_rng(404)
        scattered = zip(rng.integers(0, 1001, 5).tolist(), rng.integers(0, 1001, 5).tolist(), [1, 0, 1, 1, 0])
        return [(_answer((1000, 620, 0), (130, 1000, 1), (500, 250, 1)), 5000, 2500),
                (_answer(*scattered), 1920, 1080),
                (_answer((0, 0, 1), (999, 3, 1)), 300, 2000),
                (no_target_answer("no harbour in this image"), 800, 600),
                (_answer((333, 667, 1)), 1001, 1001)]

    def expected(self, text, width, height):
        from rs_helpers.refer.clicks import parse_clicks, to_pixels

        pixels = to_pixels(parse_clicks(text), width, height)
        return np.array([[c.x, c.y, c.label] for c in pixels], float).reshape(-1, 3)

    def compare(self, got, want, args):
        from rs_helpers.refer.clicks import parse_clicks

        text, w, h = args

        def wrong(message):
            raise Incorrect(f"for {self.describe(args)}: {message}")

        try:
            clicks = as_clicks(got, "a list of pixel clicks (x, y, label)")
        except Incorrect as error:
            wrong(str(error))
        if len(clicks) != len(want):
            wrong(f"{len(clicks)} clicks; the answer holds {len(want)}.")
        inside = ((clicks[:, 0] >= 0) & (clicks[:, 0] < w) & (clicks[:, 1] >= 0) & (clicks[:, 1] < h)).all()
        if same_clicks(clicks, want) and inside:
            return
        if not same_clicks(clicks, want) and same_points(clicks[:, :2], want[:, :2], 1.0 + 1e-9):
            wrong("the places are right but not the labels: keep each click's label (1 positive, 0 negative).")
        grid = np.array([[c.x, c.y, c.label] for c in parse_clicks(text)], float)

        def scaled(sx, sy, swap=False):
            xs, ys = grid[:, 0] * sx, grid[:, 1] * sy
            return np.stack([ys, xs, grid[:, 2]] if swap else [xs, ys, grid[:, 2]], axis=1)

        candidates = [
            (scaled(1, 1), "these are still grid units (0..1000): scale x by (width - 1) / 1000 and y by "
                           "(height - 1) / 1000."),
            (scaled(1 / 1000, 1 / 1000), "these are fractions of the side: multiply x by (width - 1) and y by "
                                         "(height - 1)."),
            (scaled((w - 1) / 999, (h - 1) / 999), "the grid runs from 0 to 1000 inclusive: divide by 1000, not 999."),
            (scaled((w - 1) / 1000, (h - 1) / 1000, swap=True), "x and y are swapped: give (x, y) = (column, row)."),
            (scaled((h - 1) / 1000, (w - 1) / 1000), "x scales with the width and y with the height, not the other "
                                                     "way round."),
            (scaled(w / 1000, h / 1000), f"1000 on the grid is the last pixel, index width - 1 = {w - 1}: scale by "
                                         "(width - 1) / 1000, or the click at 1000 falls outside the image."),
        ]
        for candidate, message in candidates:
            if same_clicks(clicks, candidate) and not np.array_equal(np.round(candidate), want):
                wrong(message)
        if not inside:
            x, y = clicks[~((clicks[:, 0] >= 0) & (clicks[:, 0] < w) & (clicks[:, 1] >= 0) & (clicks[:, 1] < h))][0, :2]
            wrong(f"pixel ({x:g}, {y:g}) lies outside the {w} x {h} image (x 0..{w - 1}, y 0..{h - 1}).")
        wrong("not the pixel clicks: pixel = round(grid * (side - 1) / 1000), x with the width, y with the height.")


# --------------------------------------------------------------------------- 3: gIoU and cIoU
def example_counts() -> tuple[list[int], list[int]]:
    """Pixel intersections and unions of five queries; the second one failed (no usable clicks):
    its prediction is empty, so its intersection is 0 and its union is the target's area."""
    return [120, 0, 900, 40, 300], [200, 150, 1000, 400, 320]


class GiouCiou(FunctionExercise):
    name = "q3"
    title = "gIoU and cIoU"
    function_name = "giou_ciou"
    task = ("For N queries, `intersections[i]` and `unions[i]` are the pixel counts of prediction AND target and "
            "prediction OR target. A failed query (no usable clicks: an empty prediction) has intersection 0. Write "
            "`giou_ciou(intersections, unions)` returning **(gIoU, cIoU)** as fractions: gIoU is the mean of the "
            "per-query IoUs, cIoU the total intersection over the total union. The check calls it on counts of its "
            "own.")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb05 import example_counts

intersections, unions = example_counts()
print("intersections", intersections, "| unions", unions)'''
    hints = ("One IoU per query first, then two different averages: one over the queries, one over the pixels. "
             "What happens to a failed query in each?",
             "A query's IoU is its intersection over its union; gIoU averages those (a failure counts, with IoU 0). "
             "cIoU adds up all intersections and all unions first and divides once, so large targets weigh more.")
    hint_text = hints[0]
    solution_code = '''def giou_ciou(intersections, unions):
    """(gIoU, cIoU) of queries with these pixel intersections and unions."""
    inter, union = np.asarray(intersections, float), np.asarray(unions, float)
    return float(np.mean(inter / union)), float(inter.sum() / union.sum())

print(giou_ciou(intersections, unions))
answer = giou_ciou'''

    def cases(self):
        return [([50, 0, 700, 12, 260, 0], [100, 80, 1000, 300, 280, 40]), ([30, 3000], [40, 4000]),
                ([0, 0, 10], [25, 50, 10]), ([90], [100])]

    def expected(self, intersections, unions):
        from rs_helpers.evaluation.refer_metrics import ReferScores

        scores = ReferScores()
        for i, u in zip(intersections, unions):
            scores.add_counts(int(i), int(u))
        return scores.giou(), scores.ciou()

    def compare(self, got, want, args):
        def wrong(message):
            raise Incorrect(f"for {self.describe(args)}: {message}")

        if isinstance(got, dict):
            keys = {str(k).lower(): v for k, v in got.items()}
            if "giou" not in keys or "ciou" not in keys:
                wrong('a dict needs the keys "gIoU" and "cIoU".')
            got = (keys["giou"], keys["ciou"])
        values = as_array(got, "two numbers (gIoU, cIoU)")
        if values.dtype.kind not in "iuf" or values.shape != (2,):
            wrong(f"want two numbers (gIoU, cIoU), got shape {values.shape}.")
        g, c = (float(v) for v in values)
        want_g, want_c = want
        tol = 1e-3
        if close(g, want_g, tol) and close(c, want_c, tol):
            return
        inter, union = np.asarray(args[0], float), np.asarray(args[1], float)
        ok = inter > 0
        if close(g, want_c, tol) and close(c, want_g, tol):
            wrong("swapped: gIoU (the mean of per-query IoUs) comes first, then cIoU (pooled pixels).")
        if close(g, 100 * want_g, 0.1) or close(c, 100 * want_c, 0.1):
            wrong("these are percentages: give fractions between 0 and 1.")
        if ok.any() and (close(c, union.sum() / inter.sum(), tol)
                         or close(g, float(np.mean(union[ok] / inter[ok])), tol)):
            wrong("that is union over intersection (above 1): IoU is intersection / union.")
        if not close(g, want_g, tol):
            if ok.any() and not ok.all() and close(g, float(np.mean(inter[ok] / union[ok])), tol):
                wrong("gIoU left out the failed queries: a failure counts as IoU 0 and stays in the mean.")
            if close(g, want_c, tol):
                wrong("the gIoU is the cIoU: gIoU is the plain mean of the per-query IoUs.")
            wrong("gIoU is wrong: the mean of intersection / union over the queries.")
        if ok.any() and not ok.all() and close(c, inter.sum() / union[ok].sum(), tol):
            wrong("cIoU left out the failed queries: their target area stays in the total union.")
        if close(c, want_g, tol):
            wrong("the cIoU is the gIoU: cIoU is total intersection / total union.")
        wrong("cIoU is wrong: the sum of the intersections over the sum of the unions.")


q1 = ClickPrompt()
q2 = ClicksToPixels()
q3 = GiouCiou()
EXERCISES = [q1, q2, q3]
