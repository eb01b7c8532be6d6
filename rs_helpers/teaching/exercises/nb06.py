"""Exercises for notebook 06 (click simulation and LoRA): the first click, the next corrective
click (position and polarity), and the parameter count of one LoRA adapter."""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Exercise, Incorrect, as_array, as_number


def example_target() -> np.ndarray:
    """A 24 x 32 L-shaped target touching the left image border."""
    mask = np.zeros((24, 32), bool)
    mask[2:22, 0:10] = True
    mask[15:22, 0:30] = True
    return mask


def example_prediction() -> tuple[np.ndarray, np.ndarray]:
    """``(target, prediction)``: SAM missed a thin strip of the target and added a larger block of
    background in the top-right corner."""
    target = np.zeros((24, 32), bool)
    target[6:18, 6:22] = True
    pred = target.copy()
    pred[6:18, 6:9] = False  # a 3-pixel-wide strip missed (false negative)
    pred[0:10, 24:32] = True  # an 8 x 10 block of background taken (false positive)
    return target, pred


def mask_text(target: np.ndarray, pred: np.ndarray | None = None) -> str:
    """A mask as text, one character per pixel: ``#`` target, ``.`` background. With a prediction:
    ``#`` both, ``-`` target SAM missed (false negative), ``+`` background SAM took (false positive)."""
    target = np.asarray(target, bool)
    pred = target if pred is None else np.asarray(pred, bool)
    chars = np.full(target.shape, ".", "<U1")
    chars[target & pred] = "#"
    chars[target & ~pred] = "-"
    chars[~target & pred] = "+"
    return "\n".join("".join(row) for row in chars)


def _as_click(answer, want_label: bool) -> tuple[float, float, int | None]:
    if hasattr(answer, "x") and hasattr(answer, "y"):
        return float(answer.x), float(answer.y), int(getattr(answer, "label", 1))
    values = as_array(answer, "(x, y, label)" if want_label else "(x, y)")
    if values.dtype.kind not in "iuf" or values.ndim != 1 or values.size not in (2, 3):
        raise Incorrect(f"want one click as {'(x, y, label)' if want_label else '(x, y)'}, got {answer!r}.")
    label = int(values[2]) if values.size == 3 else None
    if want_label and label is None:
        raise Incorrect("give the polarity too: (x, y, label) with 1 = positive, 0 = negative.")
    return float(values[0]), float(values[1]), label


def _on(dist: np.ndarray, x: float, y: float) -> float | None:
    """The distance map's value at pixel (x, y), or None when it is not a pixel of the map."""
    if x != int(x) or y != int(y) or not (0 <= y < dist.shape[0] and 0 <= x < dist.shape[1]):
        return None
    return float(dist[int(y), int(x)])


class FirstClick(Exercise):
    name = "q1"
    title = "The first simulated click"
    task = ("The first simulated click is positive, at the target pixel **farthest from the target's boundary**: "
            "the maximum of the distance transform, where **outside the image counts as background** (pad the "
            "mask with one ring of background first). Give it as pixel `(x, y)` (x = column, y = row) for the "
            "L-shaped `target`. Any pixel that ties for the maximum is accepted.")
    setup = '''import numpy as np
from scipy.ndimage import distance_transform_edt

from rs_helpers.teaching.exercises.nb06 import example_target, mask_text

target = example_target()
print(mask_text(target))  # '#' target, '.' background; row 0 at the top'''
    hint_text = ("`np.pad(target, 1)` adds the ring of background; `distance_transform_edt` of that gives every "
                 "target pixel its distance to the nearest background; cut the ring off again (`[1:-1, 1:-1]`) and "
                 "find the maximum with `np.unravel_index(d.argmax(), d.shape)`, which gives (row, column).")
    solution_code = '''depth = distance_transform_edt(np.pad(target, 1))[1:-1, 1:-1]
row, col = np.unravel_index(depth.argmax(), depth.shape)
answer = (int(col), int(row))  # (x, y)
answer'''

    def __init__(self, target: np.ndarray | None = None):
        self.target = example_target() if target is None else np.asarray(target, bool)

    def expected(self) -> tuple[int, int]:
        from rs_helpers.refer.click_sim import first_click

        click, _ = first_click(self.target)
        return click.x, click.y

    def verify(self, answer):
        from scipy.ndimage import distance_transform_edt

        from rs_helpers.refer.click_sim import padded_distance

        x, y, label = _as_click(answer, want_label=False)
        if label == 0:
            raise Incorrect("the first click is positive (label 1): it says where the target is.")
        depth = padded_distance(self.target)
        best = float(depth.max())
        value = _on(depth, x, y)
        if value is not None and value >= best - 1e-9:
            return f"({x:g}, {y:g}) lies {best:.1f} px from the nearest background pixel."
        swapped = _on(depth, y, x)
        if swapped is not None and swapped >= best - 1e-9:
            raise Incorrect("x and y are swapped: `unravel_index` gives (row, column) = (y, x); answer (x, y).")
        plain = distance_transform_edt(self.target)
        if _on(plain, x, y) is not None and _on(plain, x, y) >= plain.max() - 1e-9:
            raise Incorrect("without the padding the image border does not count as background, so the click "
                            "drifts onto the border of the cut-off target. Pad with one ring of background first.")
        ys, xs = np.nonzero(self.target)
        if abs(x - xs.mean()) <= 1 and abs(y - ys.mean()) <= 1:
            raise Incorrect("that is the centroid: for an L shape it can even lie outside the target. Use the "
                            "maximum of the distance transform.")
        if value is None or value == 0:
            raise Incorrect(f"({x:g}, {y:g}) is not a target pixel.")
        raise Incorrect(f"({x:g}, {y:g}) is {value:.1f} px from the background; the deepest pixel is {best:.1f} px deep.")


class NextClick(Exercise):
    name = "q2"
    title = "The next corrective click"
    task = ("After some clicks SAM predicts `pred` for the target `target`. The next click goes to the deepest point "
            "(padded distance transform, as in exercise 1) of the **larger error**: the false negatives (target "
            "SAM missed: a **positive** click, label 1) or the false positives (background SAM took: a "
            "**negative** click, label 0), whichever has the larger maximum (on a tie, the negative one). "
            "Give `(x, y, label)`.")
    setup = '''import numpy as np
from scipy.ndimage import distance_transform_edt

from rs_helpers.teaching.exercises.nb06 import example_prediction, mask_text

target, pred = example_prediction()
print(mask_text(target, pred))  # '#' right, '-' target SAM missed, '+' background SAM took'''
    hint_text = ("False negatives: `target & ~pred`; false positives: `pred & ~target`. Compute the padded distance "
                 "map of each, compare their maxima, and click at the larger one (a tie goes to the negative click, as in RITM).")
    solution_code = '''def depth(region):
    return distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]

fn, fp = depth(target & ~pred), depth(pred & ~target)
region, label = (fn, 1) if fn.max() > fp.max() else (fp, 0)
row, col = np.unravel_index(region.argmax(), region.shape)
answer = (int(col), int(row), label)
answer'''

    def __init__(self, target: np.ndarray | None = None, pred: np.ndarray | None = None):
        if target is None:
            target, pred = example_prediction()
        self.target, self.pred = np.asarray(target, bool), np.asarray(pred, bool)

    def expected(self) -> tuple[int, int, int]:
        from rs_helpers.refer.click_sim import next_click

        click, _, _ = next_click(self.target, self.pred)
        return click.x, click.y, click.label

    def verify(self, answer):
        from scipy.ndimage import distance_transform_edt

        from rs_helpers.refer.click_sim import padded_distance

        x, y, label = _as_click(answer, want_label=True)
        fn, fp = self.target & ~self.pred, self.pred & ~self.target
        fn_d, fp_d = padded_distance(fn), padded_distance(fp)
        use_fn = fn_d.max() > fp_d.max()  # RITM: a tie is a negative click
        chosen, other = (fn_d, fp_d) if use_fn else (fp_d, fn_d)
        want_label = 1 if use_fn else 0
        at = _on(chosen, x, y)
        deepest = at is not None and at >= chosen.max() - 1e-9
        if deepest and label == want_label:
            kind = "false negative: a positive" if use_fn else "false positive: a negative"
            return f"the larger error is the {kind} click at depth {chosen.max():.1f} px."
        if deepest:
            if want_label == 0:
                raise Incorrect("right place, wrong polarity: that region is background SAM wrongly took (false "
                                "positive), so the click is negative (label 0).")
            raise Incorrect("right place, wrong polarity: that region is target SAM missed (false negative), so the "
                            "click is positive (label 1).")
        swapped = _on(chosen, y, x)
        if swapped is not None and swapped >= chosen.max() - 1e-9:
            raise Incorrect("x and y are swapped: (x, y) = (column, row).")
        at_other = _on(other, x, y)
        if at_other is not None and at_other >= other.max() - 1e-9:
            raise Incorrect(f"that is the deepest point of the smaller error (depth {other.max():.1f} px); the other "
                            f"error reaches {chosen.max():.1f} px, so the click goes there.")
        region = fn if use_fn else fp
        plain = distance_transform_edt(region)
        if _on(plain, x, y) is not None and _on(plain, x, y) >= plain.max() - 1e-9:
            raise Incorrect("without the padding the image border does not count as background; pad the error region "
                            "with one ring of background first.")
        if _on(padded_distance(self.target), x, y) is not None and \
                _on(padded_distance(self.target), x, y) >= padded_distance(self.target).max() - 1e-9:
            raise Incorrect("that is the deepest point of the target, the first click; the next click corrects SAM's "
                            "error: use the false-negative and false-positive regions.")
        raise Incorrect("not the deepest point of the larger error region.")


class LoraParameters(Exercise):
    name = "q3"
    title = "How many parameters does LoRA train?"
    task = ("LoRA replaces the update of a frozen weight W (shape d_out x d_in) by B A, with A of shape r x d_in and B "
            "of shape d_out x r. Qwen3-VL-2B's MLP `up_proj` maps d_in = 2048 to d_out = 6144. How many parameters "
            "does a **rank r = 32** adapter on this one layer train?")
    setup = '''d_in, d_out, rank = 2048, 6144, 32'''
    hint_text = "Count the entries of A and of B and add them. W itself stays frozen."
    solution_code = '''answer = rank * d_in + d_out * rank
print(f"{answer:,} trainable parameters next to {d_in * d_out:,} frozen ones ({100 * answer / (d_in * d_out):.1f}%)")'''

    def __init__(self, d_in: int = 2048, d_out: int = 6144, rank: int = 32):
        self.d_in, self.d_out, self.rank = d_in, d_out, rank

    def expected(self) -> int:
        return self.rank * (self.d_in + self.d_out)

    def verify(self, answer):
        value = as_number(answer, "one number of parameters")
        want = self.expected()
        if value == want:
            return f"{want:,}: linear in the rank, {100 * want / (self.d_in * self.d_out):.1f}% of the frozen layer."
        r, di, do = self.rank, self.d_in, self.d_out
        candidates = [
            (di * do, "that is the frozen weight W: LoRA trains only A and B."),
            (r * di, "that counts A only (r x d_in); add B (d_out x r)."),
            (r * do, "that counts B only (d_out x r); add A (r x d_in)."),
            (r * di * do, "A and B are added, not multiplied: r x d_in + d_out x r."),
            (2 * r * di, "B is d_out x r with d_out = 6144, not d_in: the layer is not square."),
            (2 * r * do, "A is r x d_in with d_in = 2048: the layer is not square."),
            (r * r, "A and B are r x d_in and d_out x r, not r x r."),
        ]
        for candidate, message in candidates:
            if value == candidate:
                raise Incorrect(message)
        raise Incorrect("not the number of entries of A (r x d_in) plus B (d_out x r).")


q1 = FirstClick()
q2 = NextClick()
q3 = LoraParameters()
EXERCISES = [q1, q2, q3]
