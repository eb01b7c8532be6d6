"""Exercises for notebook 03 (CLIP as mask selector): function problems on hidden random inputs (meaningful
under the tiny profile too): a mask's vote in multi-class selection, and binary selection with tau. References:
the package's own functions (``rs_helpers.ovss.selection``)."""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Incorrect
from rs_helpers.teaching.exercises.array_problems import ArrayFunctionExercise

CLASS_NAMES = ["building", "road", "tree", "water"]


# --------------------------------------------------------------------------- 1: a mask's majority class
def _vote_case(rng, shape, n_classes, counts, background):
    """A label map of ``background`` with one mask of ``counts[c]`` pixels of class c (row by row)."""
    labels, area, mask = np.full(shape, background, np.uint8), int(sum(counts)), np.zeros(shape, bool)
    rows, cols = np.divmod(np.arange(area), shape[1] - 4)  # row by row from (1, 2)
    mask[rows + 1, cols + 2] = True
    labels[mask] = rng.permutation(np.concatenate([np.full(k, c, np.uint8) for c, k in enumerate(counts)]))
    return labels, mask, n_classes


def example_maps() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(clip_labels, mask, class_names)``: a 12 x 12 map, mostly water; the mask: 14 tree, 10 road, 6 building."""
    return _vote_case(np.random.default_rng(2), (12, 12), 4, [6, 10, 14, 0], background=3)[:2] + (list(CLASS_NAMES),)


class MajorityClass(ArrayFunctionExercise):
    name = "q1"
    title = "A mask's majority class"
    function_name = "majority_class"
    forbidden = ("rs_helpers.ovss.selection:class_fractions", "rs_helpers.ovss.selection:select_semantic",
                 "rs_helpers.ovss.selection:mask_scores")
    task = ("In multi-class selection each SAM mask takes the class that most of its pixels have in CLIP's label "
            "map (a vote). Write `majority_class(clip_labels, mask, n_classes)` (`clip_labels`: H x W class indices "
            "0..n_classes-1; `mask`: one H x W boolean SAM mask) returning the **class index** (an integer) the "
            "mask takes, the lowest index on a tie, **without** the package's `class_fractions`. Then set `answer "
            "= majority_class`: the check calls it on maps of its own, a tie and a one-pixel mask among them.")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb03 import example_maps

clip_labels, mask, class_names = example_maps()
print(class_names, clip_labels, mask.astype(int), sep="\\n")'''
    hint_text = ("Only the pixels under the mask vote. Count how often each class index occurs among them; the "
                 "answer is the index with the largest count.")
    hints = (hint_text, "A boolean index, `clip_labels[mask]`, gives the 1-D array of the labels under the mask; "
                        "`np.bincount` with `minlength` counts every class; `argmax` returns the first largest.")
    solution_code = '''# majority_class(clip_labels, mask, n_classes) -> a class index
def majority_class(clip_labels, mask, n_classes):
    votes = np.bincount(clip_labels[mask], minlength=n_classes)
    return int(votes.argmax())

winner = majority_class(clip_labels, mask, len(class_names))
print(winner, class_names[winner])
answer = majority_class'''
    tolerance = 0.0

    def cases(self):
        rng = np.random.default_rng(122)
        one = np.where(np.arange(42).reshape(6, 7) == 17, 1, 4).astype(np.uint8)  # class 1 at one pixel
        return [_vote_case(rng, (14, 16), 5, [3, 12, 5, 0, 9], background=4),  # the image's majority is 4
                _vote_case(rng, (10, 12), 4, [11, 4, 6, 2], background=3),  # class 0 wins
                _vote_case(rng, (12, 12), 4, [2, 8, 1, 8], background=0),  # a tie of 1 and 3: 1
                _vote_case(rng, (9, 15), 6, [1, 2, 0, 3, 9, 10], background=2), (one, one == 1, 5)]  # one pixel

    def expected(self, clip_labels, mask, n_classes):
        from rs_helpers.ovss.selection import class_fractions

        return int(class_fractions(np.asarray(mask, bool)[None], clip_labels, n_classes)[0].argmax())

    def read(self, got, want, args, where):
        if np.ndim(got) == 1 and len(got) == args[2]:
            raise Incorrect(f"{where} it returned {args[2]} numbers (the votes?): return one class index, the winner.")
        return super().read(got, want, args, where)

    def wrong_versions(self, labels, mask, k):
        inside = labels[mask]
        counts = np.bincount(inside, minlength=k)
        elsewhere = "that is the most frequent class of the whole image (or outside the mask): count inside the mask."
        quantities = ("class indices are names, not quantities: their mean or median means nothing. Count how often "
                      "each index occurs and take the most frequent.")
        return [(lambda: np.bincount(labels.ravel(), minlength=k).argmax(), elsewhere),
                (lambda: np.bincount(labels[~mask], minlength=k).argmax(), elsewhere),
                (lambda: np.flatnonzero(counts == counts.max())[-1], "on a tie the lowest index wins (as `argmax` does)."),
                (lambda: round(float(inside.mean())), quantities), (lambda: np.median(inside), quantities)]

    def fallback(self, array, want, args):
        labels, mask, k = args
        value, counts = float(array), np.bincount(labels[mask], minlength=k)
        if value not in range(k):
            return f"that is not a class index (0..{k - 1})."
        return f"class {int(value)} has {counts[int(value)]} of the mask's {counts.sum()} pixels, class {want} more."


# --------------------------------------------------------------------------- 2: binary selection with tau
def _selection_case(seed: int, shape, boxes, fractions, target: int, n_classes: int, split=()):
    """``(masks, clip_labels)``: masks on ``boxes`` (top, left, h, w) with target ``fractions``, the rest one other
    class, or two alternating for masks in ``split`` (so the target can be the most frequent below half)."""
    rng = np.random.default_rng(seed)
    others = [c for c in range(n_classes) if c != target]
    labels, masks = rng.choice(others, size=shape).astype(np.uint8), np.zeros((len(boxes),) + tuple(shape), bool)
    for i, ((top, left, h, w), share) in enumerate(zip(boxes, fractions)):
        masks[i, top:top + h, left:left + w] = True
        hits = int(round(share * h * w))
        rest = [others[j % 2] if i in split else others[0] for j in range(h * w - hits)]
        labels[masks[i]] = rng.permutation(np.array([target] * hits + rest, np.uint8))
    labels[-1, :] = target  # target pixels that no mask covers
    return masks, labels


BOXES = [(0, 0, 4, 5), (0, 6, 4, 5), (5, 0, 5, 4), (5, 6, 6, 8), (12, 0, 3, 6)]


def example_selection() -> tuple[np.ndarray, np.ndarray, int, list[str]]:
    """``(clip_labels, masks, target, class_names)``: five masks with road fractions 0.8, 0.5, 0.45, 0.15, 0.6."""
    masks, labels = _selection_case(10, (16, 16), BOXES, [0.8, 0.5, 0.45, 0.15, 0.6], 1, 3, split=(2,))
    return labels, masks, 1, ["background", "road", "building"]


class BinarySelection(ArrayFunctionExercise):
    name = "q2"
    title = "Binary selection with tau"
    function_name = "binary_selection"
    forbidden = ("rs_helpers.ovss.selection:select_binary", "rs_helpers.ovss.selection:class_fractions",
                 "rs_helpers.ovss.selection:mask_scores", "rs_helpers.ovss.selection:select_from_scores")
    task = ("For one class (binary extraction), a SAM mask is **kept when the fraction of its pixels that CLIP "
            "labels as the target exceeds tau** (strictly); the answer is the **union of the kept masks**. Write "
            "`binary_selection(masks, clip_labels, target, tau)` (`masks`: N x H x W boolean; `clip_labels`: H x W; "
            "`target`: a class index) returning the H x W boolean answer, **without** the package's "
            "`select_binary` or `class_fractions`. Then set `answer = binary_selection`: the check calls it on masks "
            "of its own, with a fraction exactly at tau, tau = 0.3 and a case where no mask is kept.")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb03 import example_selection

clip_labels, masks, target, class_names = example_selection()
tau = 0.5
print("target:", class_names[target], "| mask areas:", masks.sum(axis=(1, 2)))'''
    hint_text = ("Two steps: a test per mask (what share of *its own* pixels CLIP calls the target, compared with "
                 "tau), then one map from the masks that pass.")
    hints = (hint_text, "For mask i, `clip_labels[masks[i]] == target` is a boolean array over the mask's pixels, "
                        "and its mean is the share. Keep the shares `> tau`; `.any(axis=0)` unites the kept masks.")
    solution_code = '''# binary_selection(masks, clip_labels, target, tau) -> H x W boolean answer
def binary_selection(masks, clip_labels, target, tau=0.5):
    fractions = np.array([(clip_labels[m] == target).mean() if m.any() else 0.0 for m in masks])
    return masks[fractions > tau].any(axis=0)  # all False when no mask is kept

selected = binary_selection(masks, clip_labels, target, tau)
print("pixels selected:", selected.sum())
answer = binary_selection'''
    not_right = "not the union of the masks whose target fraction exceeds tau."

    def cases(self):
        labels, masks = np.zeros((10, 20), np.uint8), np.zeros((3, 10, 20), bool)
        masks[0, :, :10], labels[:3, :10] = True, 1  # most of the target's pixels, but mostly something else
        masks[1, :2, 10:15], labels[:2, 10:14] = True, 1  # mostly target
        masks[2, 5:7, 15:18], labels[9, 18:] = True, 1  # no target at all
        return [(masks, labels, 1, 0.5),
                _selection_case(30, (16, 16), BOXES, [0.9, 0.5, 0.4, 0.25, 0.65], 1, 3) + (1, 0.5),  # one at tau
                _selection_case(31, (14, 18), BOXES[:4], [0.35, 0.2, 0.8, 0.4], 2, 4, split=(3,)) + (2, 0.3),
                _selection_case(32, (12, 12), BOXES[:3], [0.1, 0.45, 0.3], 1, 3) + (1, 0.5)]  # none kept

    def expected(self, masks, clip_labels, target, tau):
        from rs_helpers.ovss.selection import SelectionSettings, select_binary

        k = max(int(clip_labels.max()) + 1, int(target) + 1)
        return select_binary(masks, clip_labels, int(target), k, SelectionSettings(tau=float(tau))).labels == 1

    def read(self, got, want, args, where):
        if np.ndim(got) == 1 and np.size(got) <= len(args[0]):
            raise Incorrect(f"{where} it returned {np.asarray(got).tolist()}: return the answer mask (H x W), the union "
                            "of the kept masks, not which masks are kept.")
        array = super().read(got, want, args, where)
        if not np.isin(np.unique(array), [0, 1]).all():
            raise Incorrect(f"{where}: want a boolean (or 0/1) mask, True where the answer is the target.")
        if not array.any() and want.any():
            raise Incorrect(f"{where}: the answer is empty, but some masks have a target fraction above tau.")
        return array.astype(bool)

    def wrong_versions(self, masks, labels, target, tau):
        share = np.array([(labels[m] == target).mean() if m.any() else 0.0 for m in masks])
        clip, k = labels == target, max(int(labels.max()) + 1, target + 1)
        recall = np.array([(clip & m).sum() / max(int(clip.sum()), 1) for m in masks])
        votes = np.array([np.bincount(labels[m], minlength=k).argmax() if m.any() else -1 for m in masks])
        union = lambda keep: masks[keep].any(axis=0)  # noqa: E731
        return [(lambda: union(share >= tau), "a mask with exactly tau of its pixels on the target is not kept: the "
                                              "rule is fraction > tau (strict)."),
                (lambda: union(votes == target), "that is the multi-class vote (the target is the most frequent "
                                                 "class); binary selection keeps a mask when its target fraction "
                                                 "exceeds tau, whatever the other classes do."),
                (lambda: clip, "that is CLIP's own pixel map: selection keeps *whole SAM masks*, with SAM's boundaries."),
                (lambda: union(share > tau) & clip, "keep the whole mask, not only its pixels that CLIP calls the "
                                                    "target: SAM's boundary replaces CLIP's blurry one."),
                (lambda: union(recall > tau), "you divided by the target's area in the whole image; the fraction is "
                                              "over the mask's own pixels: (target pixels in the mask) / (mask area)."),
                (lambda: masks.any(axis=0), "that is the union of all masks: keep only those above tau."),
                (lambda: union(~(share > tau) & masks.any(axis=(1, 2))),
                 "that is the union of the masks that fail the test: keep those with fraction > tau."),
                (lambda: union(share > 0.5), "that uses tau = 0.5: use the `tau` the function is given.")]


q1 = MajorityClass()
q2 = BinarySelection()
EXERCISES = [q1, q2]
