"""Exercises for notebook 10 (SAM 3): three small functions of SegEarth-OV3's fusion, each checked
on inputs of the checker's own with known answers.

1. ``object_score(query_logits, presence_logit)``: sigmoid(query logit) x sigmoid(presence logit);
2. ``fuse(masks, scores, semantic, presence, threshold)``: the kept instance masks weighted by their
   scores, the element-wise max over them, the max with the semantic map, times the presence;
3. ``choose_labels(class_scores, prob_thd, bg_idx)``: the argmax over classes, ``bg_idx`` where the
   best score is below ``prob_thd``.

The answer is the function itself (``answer = fuse``), checked as a function problem
(:mod:`~rs_helpers.teaching.exercises.function_problems`): the checker calls it on copies of its
inputs, compares with the reference (the package's :func:`~rs_helpers.ovss.sam3_fusion.labels_from_scores`
for 3; the fusion's formulas of :func:`~rs_helpers.ovss.sam3_fusion.view_scores` for 1 and 2, which
``tests/teaching/test_nb10.py`` checks against it) and, when the result is wrong, against the common
wrong versions (no sigmoid, no threshold, ``>=`` for ``>``, a sum for a max, the presence forgotten
or applied too early, the background as class 0, a softmax first, ...) to say what is wrong.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from rs_helpers.teaching.exercises import Incorrect, as_array
from rs_helpers.teaching.exercises.function_problems import FunctionExercise

TOL = 1e-5


def _sigmoid(x) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -np.asarray(x, float)))


class FusionExercise(FunctionExercise):
    """A function problem of this notebook: named hidden cases (``named_cases``: ``(name, args)``), an
    array answer compared with ``reference`` within ``TOL``, and ``wrong_versions`` of the case that
    explain a wrong answer when they give its values on every case."""

    confirmation = "well done."

    def reference(self, *args) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def wrong_versions(self, *args) -> list[tuple[Callable[[], np.ndarray], str]]:
        return []

    def failure_note(self, case: str) -> str:
        return ""

    def explain(self, got: np.ndarray, value, args, case: str) -> None:
        """Raise a specific Incorrect before the wrong versions are tried (e.g. a boolean answer)."""

    def expected(self, *args) -> np.ndarray:
        return np.asarray(self.reference(*args), float)

    def same(self, got: np.ndarray, want: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(got)) and np.allclose(got, want, atol=TOL, rtol=0))

    def read(self, value, want: np.ndarray, case: str) -> np.ndarray:
        array = as_array(value, f"an array shaped like {want.shape}")
        if array.dtype.kind not in "biuf":
            raise Incorrect(f"on the case '{case}' your function returned {array.dtype} values; want numbers.")
        if array.shape != want.shape:
            if array.size == want.size and array.squeeze().shape == want.squeeze().shape:
                array = array.reshape(want.shape)
            else:
                raise Incorrect(f"on the case '{case}' your function returned shape {array.shape}; want {want.shape}.")
        return array.astype(float)

    def compare(self, got, want, args) -> None:
        """Shape, type and :meth:`explain` per case; the values are judged over all cases in :meth:`verify`."""
        case = self._names[id(args)]
        array = self.read(got, want, case)
        if not self.same(array, want):
            self.explain(array, got, args, case)
        self._runs.append((args, want, array))

    def verify(self, answer):
        if isinstance(answer, (np.ndarray, list, tuple, int, float, np.generic)):
            raise Incorrect(f"want the function itself (`answer = {self.function_name}`), not a value it returns.")
        self._runs = []  # (args, want, got) per case, filled by compare
        try:
            done = super().verify(answer)
        except Incorrect as wrong:
            text = str(wrong)
            notes = [self.failure_note(c) for c in self._names.values() if f"'{c}' raised" in text]
            raise Incorrect(text + "".join(notes)) from None
        runs = self._runs
        wrong = [k for k, (_, want, got) in enumerate(runs) if not self.same(got, want)]
        if not wrong:
            return f"{done[:-1]}: {self.confirmation}"
        # a known wrong version explains the answer when it gives the answer's values on every case
        versions = [self.wrong_versions(*args) for args, _, _ in runs]
        for index in range(len(versions[0])):
            if all(self._matches(versions[k][index][0], got, want) for k, (_, want, got) in enumerate(runs)):
                raise Incorrect(versions[wrong[0]][index][1])
        args, want, got = runs[wrong[0]]
        raise Incorrect(f"not the right values on {self.describe(args)}.{self.show_case(want, got)}")

    def _matches(self, version, got: np.ndarray, want: np.ndarray) -> bool:
        try:
            candidate = np.asarray(version(), float).reshape(want.shape)
        except Exception:  # a wrong version that does not apply to this case
            return False
        return self.same(got, candidate)

    @staticmethod
    def show_case(want: np.ndarray, got: np.ndarray) -> str:
        if want.size > 16:
            return " Try your function on the notebook's example and compare it with the formula step by step."
        return f" Expected {np.round(want, 4).tolist()}, got {np.round(got, 4).tolist()}."


# --------------------------------------------------------------------------- 1: object scores
class ObjectScore(FusionExercise):
    name = "q1"
    title = "Object scores from logits"
    function_name = "object_score"
    task = ("SAM 3 scores each of its instance queries with a logit, and the whole prompt with a presence logit. "
            "Write `object_score(query_logits, presence_logit)`: `query_logits` is a 1-D NumPy array of Q query "
            "logits, `presence_logit` one number. Return the Q **object scores** `sigmoid(query logit) * "
            "sigmoid(presence logit)`, in the queries' order, where `sigmoid(x) = 1 / (1 + exp(-x))`. Then set "
            "`answer = object_score`: the check calls your function on inputs of its own.")
    setup = '''import numpy as np

query_logits = np.array([2.0, -1.0, 0.5, 4.0, -3.0])
presence_logit = 1.5'''
    hint_text = ("Both inputs are logits (any real number). Turn each into a probability on its own with the "
                 "sigmoid, then combine the two probabilities; NumPy broadcasts one number over the whole array.")
    hints = (hint_text, "A probability of a query holding the concept, times the probability that the concept is "
                        "there at all: `np.exp` works element-wise on the whole array of logits.")
    solution_code = '''# object_score(query_logits, presence_logit) -> Q scores; then answer = object_score
def object_score(query_logits, presence_logit):
    sigmoid = lambda x: 1 / (1 + np.exp(-np.asarray(x, float)))
    return sigmoid(query_logits) * sigmoid(presence_logit)

print(object_score(query_logits, presence_logit).round(3))
answer = object_score'''
    confirmation = ("these are SAM 3's object scores: a query with a confident logit still scores low when the "
                    "presence head doubts the concept is there at all.")

    def named_cases(self):
        rng = np.random.default_rng(8)
        return [("six queries, presence logit 0.8", (np.array([3.0, 0.0, -2.0, 1.2, -0.4, 5.0]), 0.8)),
                ("a concept that is probably absent (presence logit -2)", (np.array([4.0, 2.0, -1.0]), -2.0)),
                ("16 random queries", (rng.normal(0, 3, 16), 2.5))]

    def reference(self, logits, presence):
        return _sigmoid(logits) * _sigmoid(presence)

    def explain(self, got, value, args, case):
        if np.asarray(value).dtype == bool:
            raise Incorrect("return the scores themselves (fractions), not which queries pass a threshold.")
        want = self.reference(*args)
        if not np.allclose(got, want, atol=TOL) and np.allclose(np.sort(got), np.sort(want), atol=TOL):
            raise Incorrect("the right scores in another order: keep one score per query, in the queries' order.")

    def wrong_versions(self, logits, presence):
        s = _sigmoid
        softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        sign = "a sign slipped: sigmoid(x) = 1 / (1 + exp(-x)), so a large logit gives a score near 1."
        return [
            (lambda: s(logits),
             "the presence score is missing: multiply every query's probability by sigmoid(presence_logit)."),
            (lambda: s(logits) * presence,
             "`presence_logit` is a logit too: pass it through the sigmoid before multiplying."),
            (lambda: logits * s(presence),
             "the query logits must go through the sigmoid as well: a score is between 0 and 1."),
            (lambda: logits * presence, "both inputs are logits: turn each into a probability with the sigmoid first."),
            (lambda: s(logits + presence), "the sigmoid of the summed logits is not the product of the two "
                                           "probabilities: take the sigmoid of each, then multiply."),
            (lambda: s(logits * presence), "multiply the probabilities, not the logits: sigmoid of each first."),
            (lambda: s(logits) + s(presence), "combine the two probabilities by multiplying them, not adding."),
            (lambda: (s(logits) + s(presence)) / 2, "combine the two probabilities by multiplying them, not averaging."),
            (lambda: s(-logits) * s(-presence), sign),
            (lambda: softmax * s(presence), "each query is scored on its own with a sigmoid, not by a softmax over "
                                            "the queries: several queries can hold instances at once."),
        ]


# --------------------------------------------------------------------------- 2: the fusion
def example_heads() -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """``(masks, scores, semantic, presence, threshold)`` for the notebook: 3 queries on a 4 x 4 view.
    Query 0 holds the left half, query 1 the top half, query 2 (below the threshold) the bottom right."""
    masks = np.full((3, 4, 4), 0.1)
    masks[0, :, :2] = 0.8
    masks[1, :2, :] = 0.6
    masks[2, 2:, 2:] = 0.9
    scores = np.array([0.81, 0.45, 0.09])
    semantic = np.full((4, 4), 0.3)
    semantic[3, 3] = 0.7
    return masks, scores, semantic, 0.9, 0.4


def _instance(masks, scores, threshold, keep=None):
    kept = scores > threshold if keep is None else keep
    if not kept.any():
        return np.zeros(masks.shape[1:])
    return (masks[kept] * scores[kept][:, None, None]).max(axis=0)


class FuseHeads(FusionExercise):
    name = "q2"
    title = "Fuse the heads"
    function_name = "fuse"
    task = ("For one prompt on one view: `masks` holds Q instance masks (Q x H x W probabilities, already resized to "
            "the view), `scores` their Q object scores (exercise 1), `semantic` the semantic head's H x W "
            "probabilities, `presence` the presence probability (one number), `threshold` the confidence threshold. "
            "Write `fuse(masks, scores, semantic, presence, threshold)` returning SegEarth-OV3's H x W score map, in "
            "four steps: (1) keep the queries whose score is **above** `threshold` (strictly) and weight each kept "
            "mask by its score; (2) the instance map is the element-wise **max** over the kept, weighted masks (0 "
            "everywhere when no query is kept); (3) take the element-wise **max** with `semantic`; (4) multiply the "
            "result by `presence`. Then set `answer = fuse`: the check calls it on inputs of its own, one with no "
            "query kept.")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb10 import example_heads

masks, scores, semantic, presence, threshold = example_heads()
print("object scores:", scores, "| threshold:", threshold, "| presence:", presence)'''
    hint_text = ("A boolean index `scores > threshold` picks the kept queries along the first axis; `[:, None, None]` "
                 "lets their scores broadcast over H x W; `max(axis=0)` and `np.maximum` are the two maxima. Handle the "
                 "case with nothing kept before taking a max over an empty array.")
    hints = (hint_text, "The presence factor comes once, last, on the whole map: the object scores already hold it "
                        "once. Start the instance map from `np.zeros(semantic.shape)` when nothing is kept.")
    solution_code = '''# fuse(masks, scores, semantic, presence, threshold) -> H x W map; then answer = fuse
def fuse(masks, scores, semantic, presence, threshold):
    kept = scores > threshold
    instance = np.zeros(semantic.shape)
    if kept.any():
        instance = (masks[kept] * scores[kept][:, None, None]).max(axis=0)
    return np.maximum(instance, semantic) * presence

print(fuse(masks, scores, semantic, presence, threshold).round(3))
answer = fuse'''
    confirmation = ("that is SegEarth-OV3's fusion for one prompt: objects from the instance head, coverage from the "
                    "semantic head, and the presence score to silence concepts that are not there.")

    def named_cases(self):
        masks = np.full((4, 3, 5), 0.2)
        masks[0, :, :2] = 0.9      # query 0: the left two columns
        masks[1, 0, :] = 0.7       # query 1: the top row
        masks[2, 1:, 3:] = 0.95    # query 2: score exactly the threshold, so dropped
        masks[3, 1, 2] = 1.0       # query 3: one pixel, below the threshold
        scores = np.array([0.75, 0.5, 0.25, 0.2])
        semantic = np.full((3, 5), 0.1)
        semantic[2, :] = 0.6
        rng = np.random.default_rng(80)
        return [("four queries on a 3 x 5 view, one scored exactly at the threshold",
                 (masks, scores, semantic, 0.8, 0.25)),
                ("no query above the threshold", (masks, scores * 0.2, semantic, 0.5, 0.25)),
                ("six random queries on a 5 x 7 view",
                 (rng.random((6, 5, 7)), rng.random(6) * 0.8, rng.random((5, 7)) * 0.6, 0.7, 0.3))]

    def reference(self, masks, scores, semantic, presence, threshold):
        return np.maximum(_instance(masks, scores, threshold), semantic) * presence

    def failure_note(self, case):
        if case.startswith("no query"):
            return (" When no query is kept the instance map is 0 everywhere (a max over an empty array fails): "
                    "start from zeros.")
        return ""

    def wrong_versions(self, masks, scores, semantic, presence, threshold):
        inst = _instance(masks, scores, threshold)
        kept = scores > threshold
        all_q = np.ones_like(kept)
        weighted = masks * scores[:, None, None]
        total = weighted[kept].sum(0) if kept.any() else np.zeros(semantic.shape)
        mean = weighted[kept].mean(0) if kept.any() else np.zeros(semantic.shape)
        plain = masks[kept].max(0) if kept.any() else np.zeros(semantic.shape)
        after = "multiply by `presence` once, at the end: the whole fused map, after the max with the semantic map."
        return [
            (lambda: np.maximum(_instance(masks, scores, threshold, all_q), semantic) * presence,
             "a query counts only when its object score is above the threshold: drop the others first."),
            (lambda: np.maximum(_instance(masks, scores, threshold, scores >= threshold), semantic) * presence,
             "strictly above the threshold: a query whose score equals it is dropped (SegEarth-OV3 keeps score > "
             "threshold)."),
            (lambda: np.maximum(total, semantic) * presence,
             "combine the kept instance masks by their element-wise max, not their sum."),
            (lambda: np.maximum(mean, semantic) * presence,
             "combine the kept instance masks by their element-wise max, not their mean."),
            (lambda: np.maximum(plain, semantic) * presence,
             "weight each kept mask by its object score before taking the max."),
            (lambda: inst * presence, "the semantic head is missing: take the element-wise max with `semantic`."),
            (lambda: (inst + semantic) * presence, "take the element-wise max with the semantic map, not the sum."),
            (lambda: np.minimum(inst, semantic) * presence, "the element-wise max with the semantic map, not the min."),
            (lambda: np.maximum(inst, semantic), "the presence factor is missing: multiply the fused map by `presence`."),
            (lambda: np.maximum(inst, semantic * presence), after),
            (lambda: np.maximum(inst * presence, semantic), after),
            (lambda: np.maximum(inst, semantic) * presence ** 2, "multiply by `presence` once: the object scores "
                                                                 "already hold it, the final factor is the only other."),
        ]


# --------------------------------------------------------------------------- 3: labels
def example_scores() -> np.ndarray:
    """3 classes x 2 x 3 fused class scores for the notebook (a tie at one pixel, weak pixels)."""
    return np.array([[[0.7, 0.3, 0.4], [0.2, 0.6, 0.05]],
                     [[0.2, 0.1, 0.4], [0.6, 0.6, 0.02]],
                     [[0.1, 0.25, 0.0], [0.6, 0.2, 0.1]]])


class ChooseLabels(FusionExercise):
    name = "q3"
    title = "Labels, with prob_thd and the background"
    function_name = "choose_labels"
    forbidden = ("rs_helpers.ovss.sam3_fusion:labels_from_scores",)
    task = ("`class_scores` is a C x H x W array of fused scores, one map per class (after the max over each "
            "class's synonyms). Write `choose_labels(class_scores, prob_thd, bg_idx)` returning the H x W label map: "
            "each pixel takes the class of highest score (the **first** class on ties), except where that best "
            "score is **below** `prob_thd` (strictly): there it takes the class `bg_idx`. Write it with NumPy, "
            "without the package's `labels_from_scores`. Then set "
            "`answer = choose_labels`: the check calls it on inputs of its own (with a `bg_idx` that is not 0, as "
            "Potsdam's clutter is class 5 under SegEarth-OV3's protocol).")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb10 import example_scores

class_scores = example_scores()
print(class_scores)'''
    hint_text = ("`argmax(axis=0)` runs over the classes and already picks the first class on ties; `max(axis=0)` is "
                 "each pixel's best score. Compare the best score (not a normalised one) with `prob_thd` to find the "
                 "pixels to overwrite.")
    hints = (hint_text, "`labels[mask] = bg_idx` with a boolean mask of the weak pixels; \"below\" is `<`, so a "
                        "best score equal to `prob_thd` keeps its class.")
    solution_code = '''# choose_labels(class_scores, prob_thd, bg_idx) -> H x W labels; then answer = choose_labels
def choose_labels(class_scores, prob_thd, bg_idx):
    labels = class_scores.argmax(axis=0)
    labels[class_scores.max(axis=0) < prob_thd] = bg_idx
    return labels

print(choose_labels(class_scores, prob_thd=0.3, bg_idx=0))
answer = choose_labels'''
    confirmation = ("that is `rs_helpers.ovss.sam3_fusion.labels_from_scores`: with prob_thd 0 nothing goes to the "
                    "background, and a higher prob_thd turns doubtful pixels into the background class.")

    def named_cases(self):
        scores = np.zeros((4, 3, 4))
        scores[0] = [[0.9, 0.1, 0.25, 0.2], [0.3, 0.1, 0.1, 0.5], [0.1, 0.2, 0.6, 0.0]]
        scores[1] = [[0.2, 0.15, 0.1, 0.2], [0.3, 0.6, 0.0, 0.1], [0.7, 0.2, 0.6, 0.05]]
        scores[2] = [[0.1, 0.2, 0.2, 0.1], [0.1, 0.1, 0.05, 0.5], [0.0, 0.1, 0.1, 0.02]]
        scores[3] = [[0.0, 0.05, 0.0, 0.1], [0.0, 0.2, 0.0, 0.0], [0.1, 0.1, 0.0, 0.1]]
        rng = np.random.default_rng(88)
        return [("4 classes on a 3 x 4 view, prob_thd 0.25, bg_idx 3", (scores, 0.25, 3)),
                ("prob_thd 0: nothing is below it", (scores, 0.0, 3)),
                ("5 random classes on a 6 x 6 view, prob_thd 0.4, bg_idx 1", (rng.random((5, 6, 6)) * 0.7, 0.4, 1))]

    def reference(self, scores, prob_thd, bg_idx):
        import torch

        from rs_helpers.ovss.sam3_fusion import labels_from_scores

        return labels_from_scores(torch.from_numpy(scores), prob_thd, bg_idx)

    def explain(self, got, value, args, case):
        if np.asarray(value).dtype == bool:
            raise Incorrect("return each pixel's class index, not a mask.")
        if not np.allclose(got, np.round(got)):
            raise Incorrect("labels are class indices (whole numbers); return the argmax, not the scores.")

    def wrong_versions(self, scores, prob_thd, bg_idx):
        best, arg = scores.max(0), scores.argmax(0)
        e = np.exp(scores - scores.max(0))
        soft = e / e.sum(0)
        last = scores.shape[0] - 1 - scores[::-1].argmax(0)
        return [
            (lambda: arg, "pixels whose best score is below prob_thd must take the class bg_idx."),
            (lambda: np.where(best < prob_thd, 0, arg), f"the background is class `bg_idx` (here {bg_idx}), not class 0."),
            (lambda: np.where(best <= prob_thd, bg_idx, arg), "strictly below: a pixel whose best score equals "
                                                              "prob_thd keeps its class."),
            (lambda: np.where(soft.max(0) < prob_thd, bg_idx, soft.argmax(0)),
             "no softmax: SAM 3's class scores are not shares of one whole; compare each pixel's best score itself "
             "with prob_thd."),
            (lambda: np.where(best < prob_thd, bg_idx, last), "on ties the first class wins (as `np.argmax` decides)."),
            (lambda: np.where(scores.min(0) < prob_thd, bg_idx, arg), "compare the best score with prob_thd, "
                                                                      "not the lowest."),
        ]


q1 = ObjectScore()
q2 = FuseHeads()
q3 = ChooseLabels()
EXERCISES = [q1, q2, q3]
