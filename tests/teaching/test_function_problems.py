"""Function problems: hidden cases, forbidden shortcuts (however imported, even when the student
swallows the refusal), the package's own internal calls still allowed, stubs, errors, two hints."""
from __future__ import annotations

import numpy as np
import pytest

import rs_helpers.geo
import rs_helpers.geo.rasters as rasters
import rs_helpers.ovss.vocabulary as vocabulary
from rs_helpers.geo.rasters import stretch_to_uint8
from rs_helpers.teaching.exercises import PENDING, Incorrect
from rs_helpers.teaching.exercises.function_problems import FunctionExercise, forbidding


class Stretch(FunctionExercise):
    """Percentile stretch without the package's stretch_to_uint8 (the hidden cases differ)."""

    name, function_name = "q9", "stretch"
    forbidden = ("rs_helpers.geo.rasters:stretch_to_uint8",)
    hints = ("a nudge", "a closer hint")

    def cases(self):
        rng = np.random.default_rng(7)
        return [(rng.integers(0, 4000, (5, 6)).astype(np.uint16),), (np.arange(30.0).reshape(5, 6),)]

    def expected(self, band):
        return stretch_to_uint8(band)

    def compare(self, got, want, args):
        if np.asarray(got).shape != want.shape or np.abs(np.asarray(got, int) - want).max() > 1:
            raise Incorrect(f"for {self.describe(args)} the values differ.")


def by_hand(band):
    lo, hi = np.percentile(band, [2, 98])
    return (np.clip((band.astype(float) - lo) / max(hi - lo, 1e-9), 0, 1) * 255 + 0.5).astype(np.uint8)


def test_a_right_function_passes_every_hidden_case():
    ok, message = Stretch().feedback(by_hand)
    assert ok and "2 hidden test cases" in message


def test_an_answer_fitted_to_one_example_fails_on_the_hidden_cases():
    example = np.arange(30.0).reshape(5, 6)
    fitted = stretch_to_uint8(example)
    ok, message = Stretch().feedback(lambda band: fitted)
    assert not ok and "stretch(<array 5x6 uint16>)" in message


def shortcut_global(band):
    return stretch_to_uint8(band)


def shortcut_module(band):
    return rasters.stretch_to_uint8(band)


def shortcut_lazy_export(band):
    from rs_helpers.geo import stretch_to_uint8 as renamed

    return renamed(band)


def shortcut_swallowed(band):
    try:
        return stretch_to_uint8(band)
    except Exception:
        return by_hand(band)


@pytest.mark.parametrize("shortcut", [shortcut_global, shortcut_module, shortcut_lazy_export, shortcut_swallowed])
def test_the_forbidden_call_is_caught_however_it_is_reached(shortcut):
    ok, message = Stretch().feedback(shortcut)
    assert not ok and "without `stretch_to_uint8`" in message
    # and everything is put back: the module, the lazy export, this test module's global
    assert rasters.stretch_to_uint8 is stretch_to_uint8 is globals()["stretch_to_uint8"]
    assert rs_helpers.geo.stretch_to_uint8 is stretch_to_uint8
    assert stretch_to_uint8(np.arange(4.0)).dtype == np.uint8


def test_the_package_may_still_call_a_forbidden_function_internally():
    def student(text):  # parse_classes calls _check_name itself: allowed
        return vocabulary.parse_classes(text).names

    with forbidding(["rs_helpers.ovss.vocabulary:_check_name"], student) as refused:
        assert student("road;water") == ["road", "water"]
        with pytest.raises(Exception, match="_check_name"):
            vocabulary._check_name("road")  # called from here, outside the package
    assert refused == ["_check_name"]
    assert vocabulary._check_name.__name__ == "_check_name" and not hasattr(vocabulary._check_name, "__wrapped__")


def test_a_closure_holding_the_forbidden_function_is_caught_too():
    def make():
        inner = stretch_to_uint8
        return lambda band: inner(band)

    ok, message = Stretch().feedback(make())
    assert not ok and "without" in message


def test_stub_error_and_non_function_answers():
    q = Stretch()
    ok, message = q.feedback(lambda band: None)  # the stub's body is `...`
    assert not ok and PENDING in message and "`stretch`" in message

    def stub(band):
        raise NotImplementedError("q9: write this function")  # the student copy's stub

    assert q.feedback(stub) == (False, message)
    ok, message = q.feedback(lambda band: band / 0 if band.ndim == 1 else 1 / 0)
    assert not ok and "raised ZeroDivisionError" in message
    ok, message = q.feedback(by_hand(np.arange(30.0).reshape(5, 6)))
    assert not ok and "give the function itself" in message
    assert q.feedback(...) == (False, PENDING)


def test_hints_come_in_two_levels_then_stay_at_the_closest(capsys):
    q = Stretch()
    assert "1/2: a nudge" in q.hint() and "again" in capsys.readouterr().out
    assert "2/2: a closer hint" in q.hint()
    assert "2/2: a closer hint" in q.hint()
    assert "1/2: a nudge" in q.hint(1)


def test_named_cases_name_the_case_in_messages():
    class Double(FunctionExercise):
        function_name = "double"

        def named_cases(self):
            return [("a small number", (2,)), ("a negative one", (-7,))]

        def expected(self, x):
            return 2 * x

    q = Double()
    assert q.feedback(lambda x: 2 * x) == (True, "right on all 2 hidden test cases.")
    ok, message = q.feedback(lambda x: abs(2 * x))
    assert not ok and message == "for the case 'a negative one' it returned 14; want -14."


def test_no_way_round_the_guard_and_everything_is_put_back_outside_the_package_too():
    import torchvision.ops

    nms = torchvision.ops.nms

    class Nms(FunctionExercise):
        function_name, forbidden = "my_nms", ("torchvision.ops:nms",)

        def cases(self):
            import torch

            return [(torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10]]), torch.tensor([0.9, 0.8]), 0.5)]

        def expected(self, boxes, scores, threshold):
            return nms(boxes, scores, threshold).tolist()

        def compare(self, got, want, args):
            if list(got) != want:
                raise Incorrect("wrong boxes kept.")

    q = Nms()
    ok, message = q.feedback(lambda b, s, t: torchvision.ops.nms.__wrapped__(b, s, t).tolist())
    assert not ok  # the guard has no __wrapped__: calling it fails like any other way round
    ok, message = q.feedback(torchvision.ops.nms)
    assert not ok and "`nms` is a library's own function" in message
    assert torchvision.ops.nms is nms  # a library's module gets its original back


def test_the_package_s_own_function_is_not_an_answer():
    ok, message = Stretch().feedback(stretch_to_uint8)
    assert not ok and "`stretch_to_uint8` is the package's own function" in message
    from rs_helpers.teaching.exercises import nb00

    ok, message = nb00.q2.feedback(nb00.q2.expected)  # a checker's own reference, a bound method
    assert not ok and "the package's own function" in message
