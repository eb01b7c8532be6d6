"""Notebook 10: its three function exercises (function problems: the solution passes, each typical wrong
function fails with its own message, the package's one-line answer is refused, the references equal the
package's fusion) and the SAM 3 views helpers."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rs_helpers.ovss.sam3_fusion import Sam3Settings, class_scores, labels_from_scores, view_scores  # noqa: E402
from rs_helpers.teaching import sam3_views  # noqa: E402
from rs_helpers.teaching.exercises import nb10  # noqa: E402


def sig(x):
    return 1 / (1 + np.exp(-np.asarray(x, float)))


def right(exercise, answer):
    ok, message = exercise.feedback(answer)
    assert ok, f"a right answer was refused: {message}"
    return message


def wrong(exercise, answer, fragment):
    ok, message = exercise.feedback(answer)
    assert not ok, f"a wrong answer passed ({message})"
    assert fragment.lower() in message.lower(), f"expected a message with {fragment!r}, got {message!r}"


def solution(exercise):
    namespace: dict = {}
    exec(exercise.setup + "\n" + exercise.solution_code, namespace)  # noqa: S102
    return namespace["answer"]


# --------------------------------------------------------------------------- all three
@pytest.mark.parametrize("exercise", nb10.EXERCISES, ids=lambda q: q.name)
def test_the_solution_passes_and_values_are_not_functions(exercise, capsys):
    assert exercise.check(solution(exercise)) is True
    assert "Correct:" in capsys.readouterr().out
    wrong(exercise, np.zeros(3), "the function itself")
    wrong(exercise, 0.5, "the function itself")
    wrong(exercise, "object_score", "the function itself")


@pytest.mark.parametrize("exercise", nb10.EXERCISES, ids=lambda q: q.name)
def test_a_function_that_fails_or_returns_the_wrong_shape_is_refused_with_the_case(exercise):
    def broken(*args):
        raise KeyError("oops")

    wrong(exercise, broken, "raised KeyError")
    wrong(exercise, lambda *args: None, "returns nothing yet")
    wrong(exercise, lambda *args: np.zeros((2, 2, 2, 2)), "shape")
    wrong(exercise, lambda *args: "text", "want numbers")


@pytest.mark.parametrize("exercise", nb10.EXERCISES, ids=lambda q: q.name)
def test_hints_nudge_first_and_never_hold_the_solution(exercise):
    assert exercise.hints[0] == exercise.hint_text and len(exercise.hints) == 2
    code = [line.strip() for line in exercise.solution_code.splitlines()
            if line.strip() and not line.strip().startswith(("#", "def ", "print(", "answer ="))]
    for hint in exercise.hints:
        assert not any(line in hint for line in code), hint


@pytest.mark.parametrize("exercise", nb10.EXERCISES, ids=lambda q: q.name)
def test_the_inputs_are_copies_so_a_function_that_writes_into_them_changes_nothing(exercise):
    answer = solution(exercise)

    def vandal(*args):
        out = answer(*args)
        for a in args:
            if isinstance(a, np.ndarray):
                a[...] = 0
        return out

    right(exercise, vandal)
    right(exercise, answer)  # the checker's own cases are intact


@pytest.mark.parametrize("exercise", nb10.EXERCISES, ids=lambda q: q.name)
def test_every_wrong_version_is_wrong_and_told_apart_from_the_versions_before_it(exercise):
    """Each message is reachable: over the checker's cases its wrong version differs from the right
    answer somewhere, and from every version listed before it somewhere."""
    cases = exercise.named_cases()
    wants = [np.asarray(exercise.reference(*args), float) for _, args in cases]
    outputs = []  # per version: its output on every case (None where it does not apply)
    for index in range(len(exercise.wrong_versions(*cases[0][1]))):
        row = []
        for (_, args), want in zip(cases, wants):
            try:
                row.append(np.asarray(exercise.wrong_versions(*args)[index][0](), float).reshape(want.shape))
            except Exception:  # noqa: BLE001
                row.append(None)
        outputs.append(row)

    def same(a, b):
        return all(x is not None and y is not None and np.allclose(x, y, atol=1e-5) for x, y in zip(a, b))

    for index, row in enumerate(outputs):
        assert not same(row, wants), f"version {index} gives the right answer"
        for earlier in outputs[:index]:
            assert not same(row, earlier), f"version {index} is hidden by an earlier one"


# --------------------------------------------------------------------------- 1: object scores
def test_q1_known_answer_and_the_fusion_agrees():
    q = nb10.q1
    got = q.reference(np.array([0.0, 2.0]), 0.0)
    np.testing.assert_allclose(got, [0.25, 0.5 * sig(2.0)])
    # the fusion's object score: one query per prompt, a mask that is 1 everywhere, no threshold
    logits = torch.tensor([[1.5], [-0.7], [3.0]])
    presence = torch.tensor([[0.4], [2.0], [-1.0]])
    masks = torch.full((3, 1, 2, 2), 60.0)
    semantic = torch.full((3, 1, 2, 2), -60.0)
    fused = view_scores(logits, presence, masks, semantic, (2, 2),
                        Sam3Settings(confidence_threshold=0.0, heads=("instance",)))
    for p in range(3):
        want = q.reference(logits[p].numpy(), float(presence[p]))
        np.testing.assert_allclose(fused[p].numpy(), np.full((2, 2), want[0]), atol=1e-6)


def test_q1_accepts_other_correct_forms():
    q = nb10.q1
    right(q, lambda l, p: torch.sigmoid(torch.as_tensor(l)) * torch.sigmoid(torch.tensor(p)))
    right(q, lambda l, p: np.exp(l) / (1 + np.exp(l)) / (1 + np.exp(-p)))
    right(q, lambda l, p: (sig(l) * sig(p))[None, :])  # a row vector is read as the Q scores


def test_q1_typical_wrong_answers():
    q = nb10.q1
    wrong(q, lambda l, p: sig(l), "presence score is missing")
    wrong(q, lambda l, p: sig(l) * p, "is a logit too")
    wrong(q, lambda l, p: l * sig(p), "query logits must go through the sigmoid")
    wrong(q, lambda l, p: sig(l + p), "sigmoid of the summed logits")
    wrong(q, lambda l, p: sig(l) + sig(p), "not adding")
    wrong(q, lambda l, p: 1 / (1 + np.exp(l)) / (1 + np.exp(p)), "a sign slipped")
    wrong(q, lambda l, p: np.exp(l) / np.exp(l).sum() * sig(p), "not by a softmax")
    wrong(q, lambda l, p: sig(l) * sig(p) > 0.5, "not which queries pass")
    wrong(q, lambda l, p: np.sort(sig(l) * sig(p)), "another order")
    wrong(q, lambda l, p: sig(l) * sig(p) * 0.9, "not the right values")


# --------------------------------------------------------------------------- 2: the fusion
def test_q2_reference_equals_the_package_fusion_on_random_heads():
    q = nb10.q2
    g = torch.Generator().manual_seed(5)
    for confidence in (0.05, 0.3, 0.6):
        logits, presence = torch.randn(1, 7, generator=g) * 2, torch.randn(1, 1, generator=g) * 2
        mask_logits, semantic_logits = torch.randn(1, 7, 6, 5, generator=g) * 4, torch.randn(1, 1, 6, 5, generator=g) * 3
        package = view_scores(logits, presence, mask_logits, semantic_logits, (6, 5),
                              Sam3Settings(confidence_threshold=confidence))[0].numpy()
        p = float(sig(presence.item()))
        ours = q.reference(sig(mask_logits[0].numpy()), sig(logits[0].numpy()) * p,
                           sig(semantic_logits[0, 0].numpy()), p, confidence)
        np.testing.assert_allclose(ours, package, atol=1e-5)


def test_q2_the_notebook_example_has_the_hand_computed_map():
    masks, scores, semantic, presence, threshold = nb10.example_heads()
    instance = np.full((4, 4), 0.1 * 0.81)
    instance[:2, :] = 0.6 * 0.45
    instance[:, :2] = 0.8 * 0.81
    np.testing.assert_allclose(nb10.q2.reference(masks, scores, semantic, presence, threshold),
                               np.maximum(instance, semantic) * presence)


def _fuse(keep=lambda s, t: s > t, combine="max", weight=True, semantic_op=np.maximum, final=True,
          early=None, empty_zero=True):
    def fuse(masks, scores, semantic, presence, threshold):
        kept = keep(scores, threshold)
        chosen = masks[kept] * (scores[kept][:, None, None] if weight else 1)
        if not kept.any() and empty_zero:
            instance = np.zeros(semantic.shape)
        else:
            instance = getattr(chosen, combine)(axis=0)
        if early == "semantic":
            return np.maximum(instance, semantic * presence)
        if early == "instance":
            return np.maximum(instance * presence, semantic)
        out = semantic_op(instance, semantic)
        return out * presence if final else out
    return fuse


def test_q2_typical_wrong_answers():
    q = nb10.q2
    right(q, _fuse())
    wrong(q, _fuse(keep=lambda s, t: s > -1), "above the threshold: drop the others")
    wrong(q, _fuse(keep=lambda s, t: s >= t), "strictly above")
    wrong(q, _fuse(combine="sum"), "not their sum")
    wrong(q, _fuse(combine="mean"), "not their mean")
    wrong(q, _fuse(weight=False), "weight each kept mask")
    wrong(q, _fuse(semantic_op=lambda a, b: a), "semantic head is missing")
    wrong(q, _fuse(semantic_op=np.add), "not the sum")
    wrong(q, _fuse(semantic_op=np.minimum), "not the min")
    wrong(q, _fuse(final=False), "presence factor is missing")
    wrong(q, _fuse(early="semantic"), "once, at the end")
    wrong(q, _fuse(early="instance"), "once, at the end")
    wrong(q, _fuse(empty_zero=False), "start from zeros")  # max over an empty array raises


def test_q2_a_transposed_map_is_a_shape_error():
    q = nb10.q2
    good = _fuse()
    wrong(q, lambda *a: good(*a).T, "shape")


# --------------------------------------------------------------------------- 3: labels
def test_q3_reference_is_the_package_function_with_known_answers():
    scores = nb10.example_scores()
    # 0.3 is not below 0.3; ties (0.4, 0.6) go to the first class; 0.1 is below: the background
    assert nb10.q3.reference(scores, 0.3, 0).tolist() == [[0, 0, 0], [1, 0, 0]]
    assert nb10.q3.reference(scores, 0.3, 2).tolist() == [[0, 0, 0], [1, 0, 2]]
    assert np.array_equal(nb10.q3.reference(scores, 0.3, 2), labels_from_scores(torch.from_numpy(scores), 0.3, 2))


def test_q3_accepts_other_correct_forms():
    q = nb10.q3
    right(q, lambda s, t, b: np.where(s.max(0) < t, b, s.argmax(0)).astype(np.uint8))
    wrong(q, lambda s, t, b: labels_from_scores(torch.from_numpy(s), t, b), "without `labels_from_scores`")
    right(q, lambda s, t, b: np.where(s.max(0) < t, b, s.argmax(0)).astype(float))


def test_q3_typical_wrong_answers():
    q = nb10.q3
    wrong(q, lambda s, t, b: s.argmax(0), "must take the class bg_idx")
    wrong(q, lambda s, t, b: np.where(s.max(0) < t, 0, s.argmax(0)), "not class 0")
    wrong(q, lambda s, t, b: np.where(s.max(0) <= t, b, s.argmax(0)), "strictly below")

    def softmax_first(s, t, b):
        e = np.exp(s - s.max(0))
        p = e / e.sum(0)
        return np.where(p.max(0) < t, b, p.argmax(0))

    wrong(q, softmax_first, "no softmax")
    wrong(q, lambda s, t, b: np.where(s.max(0) < t, b, s.shape[0] - 1 - s[::-1].argmax(0)), "first class wins")
    wrong(q, lambda s, t, b: np.where(s.min(0) < t, b, s.argmax(0)), "not the lowest")
    wrong(q, lambda s, t, b: s.max(0) < t, "not a mask")
    wrong(q, lambda s, t, b: s.max(0), "whole numbers")
    wrong(q, lambda s, t, b: s.argmax(-1), "shape")


# --------------------------------------------------------------------------- sam3_views
def test_sigmoid_and_upsample():
    np.testing.assert_allclose(sam3_views.sigmoid([0.0, 1000.0, -1000.0]), [0.5, 1.0, 0.0])
    assert sam3_views.sigmoid(np.zeros(2, np.float32)).dtype == np.float32  # large mask stacks stay float32
    assert sam3_views.sigmoid(np.array([1, 2])).dtype == np.float64
    logits = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(sam3_views.upsample(logits, (4, 5)), logits, atol=1e-6)  # same size: unchanged
    up = sam3_views.upsample(logits, (8, 10))
    assert up.shape == (2, 3, 8, 10) and up.dtype == np.float32
    want = torch.nn.functional.interpolate(torch.from_numpy(logits[0]).unsqueeze(1), size=(8, 10), mode="bilinear",
                                           align_corners=False)[:, 0]
    np.testing.assert_allclose(up[0], want.numpy(), atol=1e-6)
    assert sam3_views.upsample(np.zeros((0, 4, 5)), (8, 10)).shape == (0, 8, 10)  # no kept mask


def test_stage_seconds_groups_each_method_and_the_rest_is_other():
    sam_clip = {"resize": 0.1, "proposals": 2.0, "proposals.sam encoder": 1.5, "clip_text": 0.3, "clip_dense": 0.5,
                "selection": 0.2, "upsample": 0.1, "total": 3.3}
    assert sam3_views.stage_seconds(sam_clip) == pytest.approx(
        {"text": 0.3, "image model": 2.5, "select / fuse": 0.2, "other": 0.3, "total": 3.3})
    sam3 = {"sam3_text": 0.1, "resize": 0.05, "sam3_vision": 1.0, "sam3_decoder": 0.5, "sam3_fusion": 0.2,
            "labels": 0.05, "total": 1.9}
    assert sam3_views.stage_seconds(sam3) == pytest.approx(
        {"text": 0.1, "image model": 1.5, "select / fuse": 0.25, "other": 0.05, "total": 1.9})
    assert sam3_views.stage_seconds({"clip_dense": 1.0})["total"] == pytest.approx(1.0)  # no total: the sum


def test_comparison_table_says_tiny_numbers_are_meaningless():
    rows = [dict(sample="dubai_tile2_part001", method="SAM 3", metric="mIoU", score=0.4567,
                 timings={"sam3_vision": 1.0, "total": 1.5}),
            dict(sample="atlanta_buildings", method="CLIP only", metric="fg IoU", score=float("nan"), timings={})]
    table = sam3_views.comparison_table(rows, tiny=True)
    lines = table.splitlines()
    assert "MEANINGLESS" in lines[0] and "score %" in lines[1]
    assert "45.7" in lines[3] and lines[3].rstrip().endswith("1.50") and " - " in lines[4]
    assert "MEANINGLESS" not in sam3_views.comparison_table(rows, tiny=False)


def test_count_regions_is_8_connected():
    mask = np.zeros((6, 6), bool)
    mask[0, 0] = mask[1, 1] = True  # diagonal neighbours: one region
    mask[4:, 4:] = True
    mask[0, 5] = True
    assert sam3_views.count_regions(mask) == 3
    assert sam3_views.region_areas(mask).tolist() == [2, 1, 4]  # in label order (row-major first pixel)
    assert sam3_views.count_regions(np.zeros((3, 3))) == 0 and sam3_views.region_areas(np.zeros((3, 3))).size == 0


def test_plots_draw_what_they_promise():
    fig = sam3_views.show_maps({"a": np.zeros((4, 4)), "b": np.ones((4, 4))}, suptitle="x", tiny=True)
    assert len(fig.axes) == 3  # two maps and the colour bar
    assert "MEANINGLESS" in fig._suptitle.get_text() and fig._suptitle.get_color() == "#c00"
    assert sam3_views.show_maps({"a": np.zeros((2, 2))}, suptitle="y", tiny=False)._suptitle.get_text() == "y"
    ax = sam3_views.show_query_scores(np.array([0.2, 0.9, 0.6, 0.4]), 0.5)
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([0.9, 0.6, 0.4, 0.2])  # highest first
    blue = matplotlib.colors.to_rgba("tab:blue")
    assert [p.get_facecolor() == blue for p in ax.patches] == [True, True, False, False]
    assert "2 of 4 queries kept" in ax.get_title()
    plt.close("all")


def test_show_methods_draws_image_truth_and_one_panel_per_method():
    from types import SimpleNamespace

    labels = np.array([[0, 1], [1, 1]], np.uint8)
    result = SimpleNamespace(labels=labels, palette=[(0, 0, 0), (255, 255, 255)], class_names=["background", "road"])
    fig = sam3_views.show_methods(np.zeros((2, 2, 3), np.uint8), labels, {"A": result, "B": result}, tiny=True)
    assert [ax.get_title() for ax in fig.axes] == ["image", "ground truth", "A", "B"]
    assert fig.axes[-1].get_legend() is not None and fig.axes[-2].get_legend() is None
    assert "MEANINGLESS" in fig._suptitle.get_text()
    fig = sam3_views.show_methods(np.zeros((2, 2, 3), np.uint8), None, {"A": result}, tiny=False)
    assert len(fig.axes) == 2 and fig._suptitle is None
    plt.close("all")


@pytest.fixture(scope="module")
def sam3():
    from rs_helpers.models.sam3 import load_sam3

    return load_sam3(profile="tiny", device="cpu")


def test_sam3_heads_shapes_and_the_fusion_rebuilt_step_by_step(sam3):
    rgb = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    heads = sam3_views.sam3_heads(sam3, rgb, ["road", "street"])
    q = heads.n_queries
    assert heads.query_logits.shape == (2, q) and heads.presence_logits.shape == (2,)
    assert heads.mask_logits.shape[:2] == (2, q) and heads.semantic_logits.shape == (2,) + heads.mask_logits.shape[2:]
    assert heads.view_hw == (90, 120)
    settings = Sam3Settings(slide_crop=0, confidence_threshold=0.4)
    fused = heads.fused(settings)
    package = class_scores(rgb, "building;road,street", sam3=sam3, settings=settings, text_cache=None)
    np.testing.assert_allclose(fused.max(0), package[1].numpy(), atol=1e-4)  # the class is the max over synonyms
    # the notebook's steps, for prompt 0
    presence = sam3_views.sigmoid(heads.presence_logits[0])
    score = sam3_views.sigmoid(heads.query_logits[0]) * presence
    kept = score > settings.confidence_threshold
    masks = sam3_views.sigmoid(sam3_views.upsample(heads.mask_logits[0][kept], heads.view_hw))
    step = np.maximum(nb10.q2.reference(masks, score[kept], np.zeros(heads.view_hw), 1.0, -1.0),
                      sam3_views.sigmoid(sam3_views.upsample(heads.semantic_logits[0], heads.view_hw))) * presence
    np.testing.assert_allclose(step, fused[0], atol=1e-5)
