"""The click format, its parser (with the no-target answer), grid <-> pixel conversion and clicks files."""
from __future__ import annotations

import json

import numpy as np

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rs_helpers.refer.clicks import (
    GRID,
    NO_TARGET_REASON,
    Click,
    ClickParseError,
    format_clicks,
    grid_to_pixel,
    no_target_answer,
    no_target_reason,
    parse_clicks,
    pixel_to_grid,
    read_clicks,
    to_grid,
    to_pixels,
    write_clicks,
)
from rs_helpers.errors import BadInputError

grid_clicks = st.builds(Click, st.integers(0, GRID), st.integers(0, GRID), st.integers(0, 1))
click_lists = st.lists(grid_clicks, min_size=1, max_size=12)
# prose without brackets, digits or quotes, so it cannot look like a point itself
prose = st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs"),
                                       blacklist_characters="[](){}<>\"'`,:=0123456789"), max_size=60)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- known answers
CANONICAL = '{"clicks": [{"x": 512, "y": 300, "label": 1}, {"x": 10, "y": 990, "label": 0}]}'
EXPECTED = [Click(512, 300, 1), Click(10, 990, 0)]


@pytest.mark.parametrize("answer", [
    CANONICAL,
    f"Sure, here you go:\n```json\n{CANONICAL}\n```\nHope this helps!",
    f"The clicks are {CANONICAL} as requested.",
    '{"clicks": [{"x": 512, "y": 300, "label": 1}, {"x": 10, "y": 990, "label": 0},],}',
    "{'clicks': [{'x': 512, 'y': 300, 'label': 1}, {'x': 10, 'y': 990, 'label': 0}]}",
    '{"clicks": [[512, 300, 1], [10, 990, 0]]}',
    '{"clicks": [{"x": "512", "y": "300", "label": "positive"}, {"x": 10, "y": 990, "label": "negative"}]}',
    '{"clicks": [{"x": 512.2, "y": 299.6, "label": 1}, {"x": 10, "y": 990, "label": false}]}',
    '{"answer": {"clicks": [{"x": 512, "y": 300, "label": 1}, {"x": 10, "y": 990, "label": 0}]}}',
    # cut off by a token limit after two complete clicks
    '{"clicks": [{"x": 512, "y": 300, "label": 1}, {"x": 10, "y": 990, "label": 0}, {"x": 4',
    'x=512, y=300, label=1 then x=10, y=990, label=0',
])
def test_parses_the_format_and_its_drifts(answer):
    assert parse_clicks(answer) == EXPECTED


@pytest.mark.parametrize("answer, expected", [
    ("[(512, 300), (10, 990)]", [Click(512, 300), Click(10, 990)]),
    ("Click at (512, 300) and at (10, 990).", [Click(512, 300), Click(10, 990)]),
    ("[[512, 300], [10, 990]]", [Click(512, 300), Click(10, 990)]),
    ("[512, 300]", [Click(512, 300)]),
    ("<point>512 300</point> <point>(10, 990)</point>", [Click(512, 300), Click(10, 990)]),
    ('[{"point_2d": [512, 300], "label": "building"}]', [Click(512, 300)]),
    ('```json\n[{"point_2d": [512, 300], "label": "the tall building"}, {"point_2d": [10, 990]}]\n```',
     [Click(512, 300), Click(10, 990)]),
    ('[{"bbox_2d": [500, 280, 524, 320], "label": "roof"}]', [Click(512, 300)]),
    ('[{"x": 512, "y": 300}]', [Click(512, 300)]),
])
def test_qwen_native_forms_and_bare_lists_are_positive(answer, expected):
    assert parse_clicks(answer) == expected


@pytest.mark.parametrize("answer, reason", [
    ('{"clicks": []}', "empty"),
    ("[]", "empty"),
    ("I cannot see any building in this image.", "no click"),
    ("", "no click"),
    ('{"clicks": [{"x": 1200, "y": 300, "label": 1}]}', "outside"),
    ('{"clicks": [{"x": -3, "y": 300, "label": 1}]}', "outside"),
    ("(1001, 5)", "outside"),
    ('{"clicks": [{"x": "left", "y": 300, "label": 1}]}', "not a number"),
    ('{"clicks": [{"x": null, "y": 300, "label": 1}]}', "not a number"),
    ('{"clicks": [{"x": true, "y": 300, "label": 1}]}', "not a number"),
    ('{"clicks": [{"x": NaN, "y": 300, "label": 1}]}', "not a number"),
    ('{"clicks": [{"x": 5, "y": 300, "label": 2}]}', "label"),
    ('{"clicks": [{"x": 5}]}', "not a click"),
    ('{"clicks": "somewhere"}', "not a list"),
])
def test_bad_answers_raise_quoting_the_answer(answer, reason):
    with pytest.raises(ClickParseError) as info:
        parse_clicks(answer)
    assert reason in str(info.value)
    assert repr(answer)[:40] in str(info.value)
    assert info.value.answer == answer
    assert isinstance(info.value, BadInputError)


# --------------------------------------------------------------------------- the no-target answer
@pytest.mark.parametrize("answer, reason", [
    ('{"clicks": [], "reason": "there is no airport in this image"}', "there is no airport in this image"),
    ('{"reason": "no ship", "clicks": []}', "no ship"),
    ('```json\n{"clicks": [], "reason": "  no road here ",}\n```', "no road here"),
    ("Looking carefully... {'clicks': [], 'reason': 'only water'}", "only water"),
    ('<think>maybe {"clicks": [{"x": 5, "y": 5, "label": 1}]}</think>{"clicks": [], "reason": "none"}', "none"),
    ('{"clicks": [], "reason": "nothing"} (there is a dock at (512, 300) but it is not a harbour)', "nothing"),
])
def test_the_no_target_answer_parses_to_no_clicks(answer, reason):
    assert parse_clicks(answer) == [] and parse_clicks(answer, max_clicks=3) == []
    assert no_target_reason(answer) == reason


@pytest.mark.parametrize("answer", [
    '{"clicks": []}', '{"clicks": [], "reason": ""}', '{"clicks": [], "reason": "   "}',
    '{"clicks": [], "reason": 5}', '{"clicks": [], "reason": null}', '{"points": [], "reason": "none"}',
    '[]', '{"reason": "no target"}', "There is no target in this image.", '{"clicks": [], "no_target": true}',
])
def test_other_answers_without_clicks_still_raise(answer):
    with pytest.raises(ClickParseError):
        parse_clicks(answer)
    assert no_target_reason(answer) is None


def test_clicks_beside_a_reason_are_clicks():
    answer = '{"clicks": [{"x": 5, "y": 6, "label": 1}], "reason": "the roof"}'
    assert parse_clicks(answer) == [Click(5, 6, 1)] and no_target_reason(answer) is None


def test_formatting_no_clicks_gives_the_no_target_answer():
    assert format_clicks([]) == no_target_answer() == json.dumps({"clicks": [], "reason": NO_TARGET_REASON})
    assert parse_clicks(format_clicks([])) == [] and no_target_reason(format_clicks([])) == NO_TARGET_REASON
    assert json.loads(format_clicks([], reason="no  river\nhere")) == {"clicks": [], "reason": "no river here"}
    for bad in ("", "  ", None):
        with pytest.raises(BadInputError, match="reason"):
            no_target_answer(bad)


def test_long_answers_are_quoted_shortened():
    answer = "no " * 1000
    with pytest.raises(ClickParseError) as info:
        parse_clicks(answer)
    assert len(str(info.value)) < 600 and "[...]" in str(info.value)


def test_max_clicks_keeps_the_first():
    assert parse_clicks(CANONICAL, max_clicks=1) == EXPECTED[:1]


def test_format_is_exactly_the_documented_form():
    assert format_clicks(EXPECTED) == CANONICAL
    with pytest.raises(BadInputError):
        format_clicks([Click(1001, 0, 1)])
    with pytest.raises(BadInputError):
        format_clicks([Click(5, 0, 3)])


@pytest.mark.parametrize("answer", [
    f"<think>The roof is near (120, 340), or [500, 600]; x=7, y=8 is grass.</think>\n{CANONICAL}",
    f"<THINKING>maybe {{'x': 900, 'y': 900}}</THINKING> ```json\n{CANONICAL}\n```",
    f"The target is near [500, 600]. {CANONICAL}",  # the asked-for object wins over prose pairs
])
def test_reasoning_and_prose_points_do_not_beat_the_answer(answer):
    assert parse_clicks(answer) == EXPECTED


def test_an_answer_cut_off_while_reasoning_says_so():
    with pytest.raises(ClickParseError, match="stops inside its reasoning"):
        parse_clicks("<think>I should click [500, 600] and then")


@FAST
@given(click_lists, grid_clicks, prose)
def test_pairs_inside_reasoning_never_leak(clicks, decoy, words):
    thought = f"<think>{words} [{decoy.x}, {decoy.y}] {format_clicks([decoy])}</think>"
    assert parse_clicks(thought + format_clicks(clicks)) == clicks


# --------------------------------------------------------------------------- properties
@FAST
@given(click_lists)
def test_format_parse_round_trip(clicks):
    assert parse_clicks(format_clicks(clicks)) == clicks


@FAST
@given(click_lists, prose, prose, st.booleans(), st.booleans())
def test_round_trip_inside_prose_fences_and_trailing_commas(clicks, before, after, fence, trailing):
    body = format_clicks(clicks)
    if trailing:
        body = body.replace("}]}", "},]}")
    if fence:
        body = f"```json\n{body}\n```"
    assert parse_clicks(f"{before}\n{body}\n{after}") == clicks


@FAST
@given(st.lists(st.tuples(st.integers(0, GRID), st.integers(0, GRID)), min_size=1, max_size=8),
       st.sampled_from(["({}, {})", "[{}, {}]", "<point>{} {}</point>"]), prose)
def test_native_point_forms_parse_as_positive(points, form, sep):
    answer = (sep or " ").join(form.format(x, y) for x, y in points)
    assert parse_clicks(answer) == [Click(x, y, 1) for x, y in points]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_valid_clicks_or_a_parse_error(text):
    try:
        clicks = parse_clicks(text)
    except ClickParseError as exc:
        assert exc.answer == text
        return
    assert clicks and all(0 <= c.x <= GRID and 0 <= c.y <= GRID and c.label in (0, 1) for c in clicks)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-2000, 2000) | st.floats(allow_nan=True) | st.text(max_size=5),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
                        st.sampled_from(["x", "y", "label", "clicks", "point_2d", "a"]), kids, max_size=4),
                    max_leaves=12))
def test_any_json_gives_valid_clicks_or_a_parse_error(value):
    text = json.dumps(value)
    try:
        clicks = parse_clicks(text)
    except ClickParseError:
        return
    assert all(0 <= c.x <= GRID and 0 <= c.y <= GRID and c.label in (0, 1) for c in clicks)


@FAST
@given(st.integers(2, 1001), st.data())
def test_pixel_grid_pixel_is_exact_up_to_1001_px(size, data):
    p = data.draw(st.integers(0, size - 1))
    assert grid_to_pixel(pixel_to_grid(p, size), size) == p


@FAST
@given(st.integers(1001, 20000), st.integers(0, GRID))
def test_grid_pixel_grid_is_exact_for_large_images(size, g):
    assert pixel_to_grid(grid_to_pixel(g, size), size) == g


@FAST
@given(st.integers(2, 20000), st.integers(2, 20000), click_lists)
def test_round_trips_within_one_step_of_the_coarser_grid(width, height, clicks):
    # grid -> pixel -> grid: off by at most half a pixel, in grid units (1 when pixels are finer)
    back = to_grid(to_pixels(clicks, width, height), width, height)
    gx, gy = max(1, -(-GRID // (2 * (width - 1)))), max(1, -(-GRID // (2 * (height - 1))))
    assert all(abs(a.x - b.x) <= gx and abs(a.y - b.y) <= gy and a.label == b.label for a, b in zip(clicks, back))
    # pixel -> grid -> pixel: off by at most half a grid step, in pixels (0 when the grid is finer)
    pixels = to_pixels(clicks, width, height)
    assert all(0 <= c.x < width and 0 <= c.y < height for c in pixels)
    again = to_pixels(to_grid(pixels, width, height), width, height)
    px, py = -(-(width - 1) // (2 * GRID)), -(-(height - 1) // (2 * GRID))
    assert all(abs(a.x - b.x) <= px and abs(a.y - b.y) <= py for a, b in zip(pixels, again))


def test_grid_ends_are_the_edge_pixels():
    assert to_pixels([Click(0, 0, 1), Click(GRID, GRID, 0)], 640, 480) == [Click(0, 0, 1), Click(639, 479, 0)]
    assert to_grid([Click(639, 479, 1)], 640, 480) == [Click(GRID, GRID, 1)]


# --------------------------------------------------------------------------- clicks files
@FAST
@given(st.lists(st.builds(Click, st.integers(0, 500), st.integers(0, 500), st.integers(0, 1)), min_size=1, max_size=6))
def test_clicks_file_round_trip(tmp_path_factory, clicks):
    path = write_clicks(tmp_path_factory.mktemp("c") / "clicks.json", clicks)
    assert json.loads(path.read_text()) == [{"x": c.x, "y": c.y, "label": c.label} for c in clicks]
    assert read_clicks(path, width=501, height=501) == clicks


@pytest.mark.parametrize("content", [
    "not json", "[]", "{}", '[{"x": 1, "y": 2}]', '[{"x": 1.5, "y": 2, "label": 1}]',
    '[{"x": 1, "y": 2, "label": 3}]', '[{"x": -1, "y": 2, "label": 1}]', '[{"x": 100, "y": 2, "label": 1}]',
])
def test_bad_clicks_files(tmp_path, content):
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(BadInputError):
        read_clicks(path, width=64, height=64)


def test_missing_clicks_file(tmp_path):
    with pytest.raises(BadInputError, match="no such"):
        read_clicks(tmp_path / "nope.json")


# --------------------------------------------------------------------------- clicks from a mask
def test_interior_clicks_on_a_square():
    from rs_helpers.refer.clicks import interior_clicks

    mask = np.zeros((60, 80), bool)
    mask[10:41, 20:51] = True  # 31 x 31 square centred on (35, 25)
    clicks = interior_clicks(mask, n_positive=3, n_negative=1)
    assert clicks[0] == Click(35, 25, 1)
    positives = [c for c in clicks if c.label == 1]
    negatives = [c for c in clicks if c.label == 0]
    assert 1 <= len(positives) <= 3 and all(mask[c.y, c.x] for c in positives)
    assert len(negatives) == 1 and not mask[negatives[0].y, negatives[0].x]
    assert len(set(clicks)) == len(clicks)


def test_interior_clicks_edge_cases():
    from rs_helpers.refer.clicks import interior_clicks

    border = np.zeros((40, 40), bool)
    border[:, :10] = True  # touches the image border: the first click keeps away from it
    first = interior_clicks(border, n_positive=1, n_negative=0)[0]
    assert first.x in (4, 5) and 0 < first.y < 39
    tiny = np.zeros((40, 40), bool)
    tiny[20, 20] = True
    assert interior_clicks(tiny)[0] == Click(20, 20, 1)
    full = np.ones((10, 10), bool)
    assert all(c.label == 1 for c in interior_clicks(full))  # nowhere to put a negative
    with pytest.raises(BadInputError):
        interior_clicks(np.zeros((5, 5), bool))


def test_the_stored_example_answers_parse_onto_their_targets():
    """The shipped replay file: labelled as hand-written, one answer per sample query, each
    parsing to clicks that land inside (positive) or outside (negative) the target."""
    from rs_helpers.samples import load_referring
    from rs_helpers.refer.vlm_replay import ReplayBackend, stored_answers_path

    data = json.loads(stored_answers_path().read_text())
    assert "NOT model output" in data["label"] and data["model"] is None
    replay = ReplayBackend.from_file()
    from rs_helpers.refer.prompts import build_prompt

    queries = load_referring()
    assert {a["id"] for a in data["answers"]} == {q.id for q in queries}
    for q in queries:
        image, target = q.load()
        answer = replay.ask(image.rgb, build_prompt(q.text, q.task))
        for c in to_pixels(parse_clicks(answer.text), image.width, image.height):
            assert bool(target[c.y, c.x]) == bool(c.label), q.id
