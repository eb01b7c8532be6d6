"""Exercises for notebook 02 (CLIP as mask selector): a mask's majority class in a CLIP label
map, and binary selection of whole masks with the threshold tau."""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Exercise, Incorrect, as_array, as_number

CLASS_NAMES = ["building", "road", "tree", "water"]


def example_maps() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(clip_labels, mask, class_names)``: a 12 x 12 CLIP label map (mostly water), and one SAM
    mask of 30 pixels where CLIP says tree 14 times, road 10 times and building 6 times."""
    labels = np.full((12, 12), 3, np.uint8)
    labels[10, :] = 1  # a road outside the mask
    mask = np.zeros((12, 12), bool)
    mask[3:8, 4:10] = True
    inside = np.array([2] * 14 + [1] * 10 + [0] * 6, np.uint8)
    labels[mask] = inside[np.random.default_rng(2).permutation(inside.size)]
    return labels, mask, list(CLASS_NAMES)


class MajorityClass(Exercise):
    name = "q1"
    title = "A mask's majority class"
    task = ("In multi-class selection each SAM mask takes the class that most of its pixels have in CLIP's "
            "label map (a vote). `clip_labels` is a 12 x 12 CLIP label map (class indices into "
            "`class_names`) and `mask` one SAM mask (boolean). Which class index does the mask take?")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb02 import example_maps

clip_labels, mask, class_names = example_maps()
print(class_names)
print(clip_labels)
print(mask.astype(int))'''
    hint_text = ("`clip_labels[mask]` is the 1-D array of the labels under the mask; "
                 "`np.bincount(..., minlength=len(class_names))` counts each class; `argmax` picks the winner.")
    solution_code = '''votes = np.bincount(clip_labels[mask], minlength=len(class_names))
answer = int(votes.argmax())
print(dict(zip(class_names, votes.tolist())), "->", class_names[answer])'''

    def __init__(self, clip_labels: np.ndarray | None = None, mask: np.ndarray | None = None,
                 class_names: list[str] | None = None):
        if clip_labels is None:
            clip_labels, mask, class_names = example_maps()
        self.labels, self.mask = np.asarray(clip_labels), np.asarray(mask, bool)
        self.class_names = list(class_names or [str(i) for i in range(int(self.labels.max()) + 1)])

    def counts(self) -> np.ndarray:
        return np.bincount(self.labels[self.mask].ravel(), minlength=len(self.class_names))

    def expected(self) -> int:
        from rs_helpers.ovss.selection import class_fractions

        return int(class_fractions(self.mask[None], self.labels, len(self.class_names))[0].argmax())

    def verify(self, answer):
        want = self.expected()
        counts = self.counts()
        if isinstance(answer, str):
            if answer.strip().lower() == self.class_names[want].lower():
                return f"{self.class_names[want]} (index {want}): {counts[want]} of the mask's {counts.sum()} pixels."
            raise Incorrect(f"{answer!r} is not the mask's majority class.")
        value = as_number(answer, "one class index (an integer)")
        if value == want:
            return f"{self.class_names[want]}: {counts[want]} of the mask's {counts.sum()} pixels vote for it."
        image = np.bincount(self.labels.ravel(), minlength=len(self.class_names))
        outside = np.bincount(self.labels[~self.mask].ravel(), minlength=len(self.class_names))
        if value in (image.argmax(), outside.argmax()):
            raise Incorrect("that is the most frequent class of the whole image (or outside the mask): count only "
                            "the pixels inside the mask, `clip_labels[mask]`.")
        if value == round(float(self.labels[self.mask].mean())) or value == float(np.median(self.labels[self.mask])):
            raise Incorrect("class indices are names, not quantities: their mean or median means nothing. "
                            "Count how often each index occurs and take the most frequent.")
        if 0 <= value < len(counts) and value == int(value):
            raise Incorrect(f"{self.class_names[int(value)]} has {counts[int(value)]} of the mask's "
                            f"{counts.sum()} pixels; another class has more.")
        raise Incorrect(f"{value:g} is not a class index (0..{len(self.class_names) - 1}).")


def example_selection() -> tuple[np.ndarray, np.ndarray, int, list[str]]:
    """``(clip_labels, masks, target, class_names)``: a 16 x 16 CLIP map and five SAM masks
    whose road fractions are 0.8, 0.5, 0.45, 0.125 and 0.6 (the target is road, index 1)."""
    names = ["background", "road", "building"]
    labels = np.zeros((16, 16), np.uint8)
    masks = np.zeros((5, 16, 16), bool)
    # (rows, cols, road pixels, building pixels): the rest of each mask is background
    layout = [((slice(0, 4), slice(0, 5)), 16, 0), ((slice(0, 4), slice(6, 10)), 8, 8),
              ((slice(5, 10), slice(0, 4)), 9, 5), ((slice(5, 11), slice(6, 14)), 6, 42),
              ((slice(12, 15), slice(0, 5)), 9, 0)]
    for i, ((rows, cols), road, building) in enumerate(layout):
        masks[i][rows, cols] = True
        block = np.array([1] * road + [2] * building + [0] * (masks[i].sum() - road - building), np.uint8)
        labels[masks[i]] = block[np.random.default_rng(10 + i).permutation(block.size)]
    labels[15, 6:16] = 1  # road that no mask covers
    return labels, masks, 1, names


class BinarySelection(Exercise):
    name = "q2"
    title = "Binary selection with tau"
    task = ("For one class (binary extraction), a SAM mask is **kept when the fraction of its pixels that "
            "CLIP labels as the target exceeds tau** (strictly), and the answer is the **union of the kept "
            "masks**. `masks` holds 5 SAM masks (5 x 16 x 16, boolean), `clip_labels` the CLIP label map and "
            "`target` the road index. With **tau = 0.5**, give the answer mask (16 x 16, boolean or 0/1). "
            "(The list of kept mask indices is accepted too.)")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb02 import example_selection

clip_labels, masks, target, class_names = example_selection()
tau = 0.5
print("target:", class_names[target], "| mask areas:", masks.sum(axis=(1, 2)))'''
    hint_text = ("For mask i the target fraction is `(clip_labels[masks[i]] == target).mean()`. Keep the masks "
                 "whose fraction is `> tau`, then OR the kept masks together (`masks[keep].any(axis=0)`).")
    solution_code = '''fractions = np.array([(clip_labels[m] == target).mean() for m in masks])
keep = fractions > tau
answer = masks[keep].any(axis=0)
print("road fraction per mask:", fractions.round(3), "-> kept:", np.flatnonzero(keep))'''

    def __init__(self, clip_labels: np.ndarray | None = None, masks: np.ndarray | None = None,
                 target: int | None = None, n_classes: int | None = None, tau: float = 0.5):
        if clip_labels is None:
            clip_labels, masks, target, names = example_selection()
            n_classes = len(names)
        self.labels, self.masks = np.asarray(clip_labels), np.asarray(masks, bool)
        self.target, self.tau = int(target), float(tau)
        self.n_classes = int(n_classes or int(self.labels.max()) + 1)

    def fractions(self) -> np.ndarray:
        from rs_helpers.ovss.selection import class_fractions

        return class_fractions(self.masks, self.labels, self.n_classes)

    def kept(self) -> np.ndarray:
        return self.fractions()[:, self.target] > self.tau

    def expected(self) -> np.ndarray:
        from rs_helpers.ovss.selection import SelectionSettings, select_binary

        result = select_binary(self.masks, self.labels, self.target, self.n_classes, SelectionSettings(tau=self.tau))
        return result.labels == 1

    def _union(self, keep: np.ndarray) -> np.ndarray:
        return self.masks[np.asarray(keep, bool)].any(axis=0) if np.any(keep) else np.zeros(self.labels.shape, bool)

    def verify(self, answer):
        want = self.expected()
        shape = self.labels.shape
        array = as_array(answer, f"a boolean mask of shape {shape}")
        if array.ndim == 1 and array.size <= len(self.masks) and array.dtype.kind in "iu":
            indices = {int(i) for i in array}
            if indices - set(range(len(self.masks))):
                raise Incorrect(f"mask indices run from 0 to {len(self.masks) - 1}.")
            keep = np.isin(np.arange(len(self.masks)), list(indices))
            if np.array_equal(keep, self.kept()):
                return f"masks {sorted(indices)} are kept; their union is the answer."
            array = self._union(keep)
        if array.shape != shape:
            raise Incorrect(f"want a mask of shape {shape} (the image), got {array.shape}.")
        if array.dtype.kind not in "biuf" or not np.isin(np.unique(array), [0, 1]).all():
            raise Incorrect("want a boolean (or 0/1) mask: True where the answer is the target.")
        array = array.astype(bool)
        if np.array_equal(array, want):
            kept = np.flatnonzero(self.kept())
            return f"masks {kept.tolist()} pass tau = {self.tau:g}; the answer is their union."
        if not array.any() and want.any():
            raise Incorrect("the answer is empty, but some masks have a target fraction above tau.")
        fractions = self.fractions()
        road = fractions[:, self.target]
        clip = self.labels == self.target
        target_area = max(int(clip.sum()), 1)
        recall = np.array([(clip & m).sum() / target_area for m in self.masks])
        wrong = [
            (self._union(road >= self.tau), "a mask with exactly tau of its pixels on the target is not kept: the "
                                            "rule is fraction > tau (strict)."),
            (self._union(fractions.argmax(1) == self.target), "that is the multi-class vote (the target is the "
             "most frequent class); binary selection keeps a mask when its target fraction exceeds tau, "
             "whatever the other classes do."),
            (clip, "that is CLIP's own pixel map: selection keeps *whole SAM masks*, so the answer follows SAM's "
                   "boundaries."),
            (self._union(self.kept()) & clip, "keep the whole mask, not only its pixels that CLIP calls the target: "
                                              "SAM's boundary replaces CLIP's blurry one."),
            (self._union(recall > self.tau), "you divided by the target's area in the whole image; the fraction is "
                                             "over the mask's own pixels: (target pixels in the mask) / (mask area)."),
            (self.masks.any(axis=0), "that is the union of all masks: keep only those above tau."),
            (self._union(~self.kept()), "that is the union of the masks that fail the test: keep those with "
                                        "fraction > tau."),
        ]
        for candidate, message in wrong:
            if np.array_equal(array, candidate):
                raise Incorrect(message)
        raise Incorrect("not the union of the masks whose target fraction exceeds tau.")


q1 = MajorityClass()
q2 = BinarySelection()
EXERCISES = [q1, q2]
