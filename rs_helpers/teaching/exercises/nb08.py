"""Exercises for notebook 08 (LoRA tuning): how many parameters one LoRA adapter trains, and the output
of a LoRA-adapted layer, W x + (alpha / r) B A x.

Each answer is a function, run on hidden cases (:mod:`~rs_helpers.teaching.exercises.function_problems`);
the references are the parameter count of A and B and the adapted layer's formula, both checked against
``peft`` in ``tests/teaching/test_exercises_0510.py``."""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Incorrect, as_number
from rs_helpers.teaching.exercises.array_problems import ArrayFunctionExercise
from rs_helpers.teaching.exercises.function_problems import FunctionExercise


# --------------------------------------------------------------------------- 1: the parameter count
class LoraParameters(FunctionExercise):
    name = "q1"
    title = "How many parameters does LoRA train?"
    function_name = "lora_parameters"
    task = ("LoRA replaces the update of a frozen weight W (shape d_out x d_in) by B A, with A of shape r x d_in and B "
            "of shape d_out x r. Write `lora_parameters(d_in, d_out, rank)` returning how many parameters a rank-r "
            "adapter on one such layer trains. Qwen3-VL-2B's MLP `up_proj`, for example, maps d_in = 2048 to "
            "d_out = 6144. The check calls it on layers of its own.")
    setup = '''d_in, d_out, rank = 2048, 6144, 32'''
    hints = ("What does LoRA add next to the frozen W? Count the entries of what it adds.",
             "A has r rows of d_in entries, B has d_out rows of r entries; W stays frozen and is not counted. Count "
             "both matrices and add.")
    hint_text = hints[0]
    solution_code = '''def lora_parameters(d_in, d_out, rank):
    """The number of trainable parameters of a rank-`rank` LoRA adapter on a d_in -> d_out layer."""
    return rank * d_in + d_out * rank

n = lora_parameters(d_in, d_out, rank)
print(f"{n:,} trainable parameters next to {d_in * d_out:,} frozen ones ({100 * n / (d_in * d_out):.1f}%)")
answer = lora_parameters'''

    def cases(self):
        return [(6144, 2048, 16), (896, 4864, 8), (2048, 2048, 64), (1024, 4096, 1)]

    def expected(self, d_in, d_out, rank):
        return rank * (d_in + d_out)  # A (r x d_in) and B (d_out x r); tests/teaching check it against peft

    def compare(self, got, want, args):
        di, do, r = args
        try:
            value = as_number(got, "one number of parameters")
        except Incorrect as error:
            raise Incorrect(f"for {self.describe(args)}: {error}") from None
        if value == want:
            return
        candidates = [
            (di * do, "that is the frozen weight W: LoRA trains only A and B."),
            (r * di, "that counts A only (r x d_in); add B (d_out x r)."),
            (r * do, "that counts B only (d_out x r); add A (r x d_in)."),
            (r * di * do, "A and B are added, not multiplied: r x d_in + d_out x r."),
            (2 * r * di, f"B is d_out x r with d_out = {do}, not d_in: the layer is not square."),
            (2 * r * do, f"A is r x d_in with d_in = {di}, not d_out: the layer is not square."),
            (r * r, "A and B are r x d_in and d_out x r, not r x r."),
            (r * (di + do) + di * do, "W stays frozen: count only A and B."),
        ]
        for candidate, message in candidates:
            if value == candidate and candidate != want:
                raise Incorrect(f"for {self.describe(args)} it returned {value:g}: {message}")
        raise Incorrect(f"for {self.describe(args)} it returned {value:g}: not the number of entries of A (r x d_in) "
                        "plus B (d_out x r).")


# --------------------------------------------------------------------------- 2: the adapted layer's output
def make_layer(rng, n: int, d_in: int, d_out: int, rank: int, alpha: float, trained: bool = True):
    """``(x, W, A, B, alpha)``: N inputs, a frozen d_out x d_in weight and a rank-r adapter (B all zero when
    not ``trained``: the adapter at step 0)."""
    x = rng.normal(size=(n, d_in))
    W = rng.normal(size=(d_out, d_in)) / np.sqrt(d_in)
    A = rng.normal(size=(rank, d_in)) / np.sqrt(d_in)
    B = rng.normal(scale=0.5, size=(d_out, rank)) if trained else np.zeros((d_out, rank))
    return x, W, A, B, float(alpha)


def example_layer() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """``(x, W, A, B, alpha)`` for the notebook: 3 inputs, a 6 -> 4 layer, a trained rank-2 adapter, alpha 4."""
    return make_layer(np.random.default_rng(8), 3, 6, 4, 2, 4.0)


def lora_output(x, W, A, B, alpha) -> np.ndarray:
    """N x d_out: the frozen layer plus the scaled low-rank correction, as peft's LoRA ``Linear`` computes it
    in eval mode (no dropout, no bias)."""
    x, W, A, B = (np.asarray(a, np.float64) for a in (x, W, A, B))
    return x @ W.T + (float(alpha) / A.shape[0]) * (x @ A.T) @ B.T


class LoraForward(ArrayFunctionExercise):
    name = "q2"
    title = "The output of a LoRA-adapted layer"
    function_name = "lora_forward"
    forbidden = ("peft:get_peft_model", "peft.tuners.lora:Linear", f"{__name__}:lora_output")
    task = ("A LoRA adapter leaves the frozen weight W (d_out x d_in) as it is and adds a low-rank correction "
            "(section 2): the adapted layer maps an input x to **W x + (alpha / r) B A x**, with A of shape r x d_in, "
            "B of shape d_out x r and r the rank. Write `lora_forward(x, W, A, B, alpha)` returning the outputs for "
            "N inputs at once: `x` is N x d_in (one input per row) and the result is **N x d_out**; read the rank "
            "from the shapes; no bias and no dropout (as at inference). Write it with NumPy, **without** peft "
            "(`get_peft_model` or its LoRA `Linear` layer), then set `answer = lora_forward`: the check calls it on "
            "layers of its own (an adapter at step 0, with B all zero, among them, and alpha equal to the rank "
            "or larger).")
    setup = '''from rs_helpers.teaching.exercises.nb08 import example_layer

x, W, A, B, alpha = example_layer()
print("x:", x.shape, "| W:", W.shape, "| A:", A.shape, "| B:", B.shape, "| alpha:", alpha)'''
    hints = ("Start from the frozen layer alone, then add the correction: A brings each input down to r numbers, B "
             "brings them back up to d_out, and the factor alpha / r scales what comes out before it is added.",
             "With one input per row, applying a matrix M to every row is a product with M transposed (`x @ M.T`). "
             "The rank is the number of rows of A, and the scale is alpha divided by the rank, not alpha alone.")
    hint_text = hints[0]
    solution_code = '''def lora_forward(x, W, A, B, alpha):
    """W x + (alpha / r) B A x for every row x of `x`: N x d_in -> N x d_out."""
    rank = A.shape[0]
    return x @ W.T + (alpha / rank) * (x @ A.T) @ B.T

print(lora_forward(x, W, A, B, alpha).round(3))
answer = lora_forward'''
    tolerance = 1e-6
    not_right = "not W x + (alpha / r) B A x for each row of x."
    confirmation = "As peft's LoRA `Linear` computes it at inference; at step 0 (B = 0) it is the base layer exactly."

    def named_cases(self):
        rng = np.random.default_rng(808)
        return [("5 inputs, a 10 -> 7 layer, rank 3, alpha 6 (alpha = 2 r, as in the method)",
                 make_layer(rng, 5, 10, 7, 3, 6.0)),
                ("4 inputs, an 8 -> 12 layer, rank 4, alpha 4 (a scale of 1)", make_layer(rng, 4, 8, 12, 4, 4.0)),
                ("3 inputs, a 6 -> 9 layer at step 0 (B all zero), rank 2, alpha 16",
                 make_layer(rng, 3, 6, 9, 2, 16.0, trained=False)),
                ("one input, a 12 -> 5 layer, rank 1, alpha 2", make_layer(rng, 1, 12, 5, 1, 2.0)),
                ("6 inputs, a square 16 -> 16 layer, rank 8, alpha 16", make_layer(rng, 6, 16, 16, 8, 16.0))]

    def expected(self, x, W, A, B, alpha):
        return lora_output(x, W, A, B, alpha)

    def read(self, got, want, args, where):
        if np.shape(got) == want.T.shape != want.shape:
            raise Incorrect(f"{where} the result has shape {np.shape(got)} (d_out x N); want N x d_out {want.shape}, "
                            "one output row per input row.")
        return super().read(got, want, args, where)

    def wrong_versions(self, x, W, A, B, alpha):
        x, W, A, B = (np.asarray(a, np.float64) for a in (x, W, A, B))
        r, (d_out, d_in) = A.shape[0], W.shape
        base, low = x @ W.T, (x @ A.T) @ B.T
        with_scale = lambda s: lambda: base + s * low  # noqa: E731
        return [(lambda: base, "that is the frozen layer alone, W x: add the correction (alpha / r) B A x."),
                (lambda: alpha / r * low, "that is the correction alone: the frozen W x stays in the output, and "
                                          "LoRA adds its correction to it."),
                (with_scale(1.0), f"the correction is scaled by alpha / r (here {alpha:g} / {r} = {alpha / r:g}) "
                                  "before it is added."),
                (with_scale(alpha), "scale the correction by alpha / r, not by alpha alone."),
                (with_scale(r / alpha), "the scale is alpha / r, not r / alpha."),
                (with_scale(alpha / d_in), f"the rank r is the number of rows of A (r x d_in), {r} here, not d_in."),
                (with_scale(alpha / d_out), f"the rank r is the number of rows of A (r x d_in), {r} here, not d_out."),
                (lambda: alpha / r * (base + low), "only the correction is scaled: W x is added as it is."),
                (lambda: base - alpha / r * low, "add the correction, do not subtract it.")]


q1 = LoraParameters()
q2 = LoraForward()
EXERCISES = [q1, q2]
