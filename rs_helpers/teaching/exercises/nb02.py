"""Exercises for notebook 02 (the dense CLIP map): function problems on hidden random inputs (meaningful under
the tiny profile too): prompt templates and the logit-scale softmax, and the CLS-bias removal (checked against
the tiny CLIP in the tests). References: the package's own functions."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from rs_helpers.teaching.exercises import Incorrect
from rs_helpers.teaching.exercises.array_problems import ArrayFunctionExercise, softmax, unit

CLASS_NAMES = ["building", "road", "tree", "water"]


# --------------------------------------------------------------------------- 1: templates and the softmax
def make_embeddings(rng, n_classes: int, n_templates: int, dim: int, n_patches: int):
    """Random CLIP-like inputs: close class directions (as in CLIP), templates and patches of norms 0.3-4."""
    base = rng.normal(size=dim)
    classes = unit(base + 0.35 * rng.normal(size=(n_classes, dim)))
    templates = (unit(classes[:, None, :] + 0.35 * rng.normal(size=(n_classes, n_templates, dim)))
                 * rng.uniform(0.3, 3.0, (n_classes, n_templates, 1)))
    patches = unit(base + 0.6 * rng.normal(size=(n_patches, dim))) * rng.uniform(0.5, 4.0, (n_patches, 1))
    return templates.astype(np.float32), patches.astype(np.float32)


def example_embeddings() -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """``(template_embeddings, patch_features, class_names, templates)``: 4 classes x 3 templates x 8, 5 patches."""
    return make_embeddings(np.random.default_rng(20), 4, 3, 8, 5) + (
        list(CLASS_NAMES), ["a photo of a {}.", "an aerial photo of a {}.", "a satellite image of a {}."])


def reference_probabilities(template_embeddings, patch_features, logit_scale) -> np.ndarray:
    """P x C: what the package computes, its text encoder replaced by a table of the given embeddings."""
    import torch
    import torch.nn.functional as F

    from rs_helpers.ovss.clip_dense import probabilities
    from rs_helpers.ovss.vocabulary import encode_vocabulary

    emb = np.asarray(template_embeddings, np.float32)
    names, templates = [f"class {c}" for c in range(emb.shape[0])], [f"template {t}: {{}}" for t in range(emb.shape[1])]
    index = {t.format(name): i for i, (name, t) in enumerate((n, t) for n in names for t in templates)}
    table = torch.as_tensor(emb.reshape(-1, emb.shape[-1]))  # rows in encode_vocabulary's order
    clip = SimpleNamespace(device=torch.device("cpu"), tokenizer=lambda batch: torch.tensor([index[t] for t in batch]),
                           model=SimpleNamespace(encode_text=lambda tokens: table[tokens]))
    text = encode_vocabulary(clip, names, templates=templates, cache=None)
    rows = text.embeddings @ F.normalize(torch.as_tensor(np.asarray(patch_features, np.float32)), dim=-1).T  # R x P
    return probabilities(rows[:, None, :], text, float(logit_scale))[:, 0, :].T.double().numpy()


def _variant(emb, patches, scale, pre=True, post=True, patch_norm=True, axis=1):
    """The recipe with one step changed (the checker's wrong versions)."""
    e, p = emb.astype(np.float64), patches.astype(np.float64)
    m = (unit(e) if pre else e).mean(1)
    return softmax(scale * (unit(p) if patch_norm else p) @ (unit(m) if post else m).T, axis=axis)


class TemplateSoftmax(ArrayFunctionExercise):
    name = "q1"
    title = "Prompt templates and the logit-scale softmax"
    function_name = "class_probabilities"
    forbidden = ("rs_helpers.ovss.vocabulary:encode_vocabulary", "rs_helpers.ovss.clip_dense:probabilities",
                 "rs_helpers.ovss.clip_dense:dense_map", f"{__name__}:reference_probabilities", f"{__name__}:_variant")
    task = ("`template_embeddings` (C x T x D) is CLIP's text encoder output for class c in template t, **not "
            "normalised**; `patch_features` (P x D) are projected patch tokens, not normalised either. Write "
            "`class_probabilities(template_embeddings, patch_features, logit_scale)` returning the P x C class "
            "probabilities of sections 1 and 2: (1) L2-normalise every template embedding, average over the "
            "templates, normalise the mean again; (2) the cosine of every patch with every class; (3) per patch, "
            "the softmax over the classes of `logit_scale` times the cosine. Write it **without** the package's "
            "`encode_vocabulary` or `probabilities`, then set `answer = class_probabilities`: the check calls it "
            "on random embeddings of its own (one template only among them, `logit_scale` 50 or 100).")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb02 import example_embeddings

template_embeddings, patch_features, class_names, templates = example_embeddings()
print("classes x templates x dimensions:", template_embeddings.shape, "| patches:", patch_features.shape)
print("norms of the template embeddings:\\n", np.linalg.norm(template_embeddings, axis=-1).round(2))'''
    hint_text = ("Each step runs along one axis: normalise along D, average along T, softmax along C. The norms "
                 "printed above are far from 1, so every normalisation changes the answer.")
    hints = (hint_text, "`np.linalg.norm(x, axis=-1, keepdims=True)` is each vector's length; with unit vectors all "
                        "cosines are one matrix product (P x D times D x C). Subtract each row's maximum before "
                        "`np.exp`, or `logit_scale` 100 overflows.")
    solution_code = '''# class_probabilities(template_embeddings, patch_features, logit_scale) -> P x C probabilities
def class_probabilities(template_embeddings, patch_features, logit_scale=50.0):
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    classes = unit(unit(template_embeddings).mean(axis=1))  # C x D
    logits = logit_scale * unit(patch_features) @ classes.T  # P x C
    logits = logits - logits.max(axis=1, keepdims=True)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

print(class_probabilities(template_embeddings, patch_features).round(3))
answer = class_probabilities'''
    tolerance = 1e-4
    not_right = "not the recipe: normalise, average, normalise; cosine; softmax of logit_scale x cosine over classes."
    confirmation = "As `encode_vocabulary`, then `probabilities` in `dense_map` (synonyms: more rows, max-pooled)."

    def cases(self):
        rng = np.random.default_rng(120)
        return [make_embeddings(rng, 5, 4, 16, 7) + (50.0,), make_embeddings(rng, 3, 1, 12, 4) + (50.0,),  # 1 template
                make_embeddings(rng, 6, 7, 24, 9) + (100.0,), make_embeddings(rng, 2, 5, 8, 3) + (50.0,)]

    def expected(self, template_embeddings, patch_features, logit_scale):
        return reference_probabilities(template_embeddings, patch_features, logit_scale)

    def read(self, got, want, args, where):
        if np.shape(got) == want.T.shape != want.shape:
            raise Incorrect(f"{where} the result has shape {np.shape(got)} (classes x patches); want P x C "
                            f"{want.shape}, one row of class probabilities per patch.")
        return super().read(got, want, args, where)

    def wrong_versions(self, emb, patches, scale):
        v = lambda **kw: lambda: _variant(emb, patches, scale, **kw)  # noqa: E731
        cos = lambda: unit(patches.astype(np.float64)) @ unit(unit(emb.astype(np.float64)).mean(1)).T  # noqa: E731
        return [(cos, "these are the cosine similarities: take the softmax over the classes of `logit_scale` x them."),
                (lambda: scale * cos(), "these are the scaled logits: take the softmax over the classes."),
                (v(pre=False), "normalise every template embedding *before* averaging: the raw embeddings have "
                               "different lengths, so the longest templates would outweigh the others."),
                (v(post=False), "normalise the mean of the templates again: a mean of unit vectors is shorter than 1, "
                                "so its dot products are not cosines, and the softmax comes out too flat."),
                (v(patch_norm=False), "normalise the patch features too: a cosine divides by both lengths."),
                (v(axis=0), "the softmax runs over the classes (each patch's probabilities sum to 1), not the patches."),
                (lambda: _variant(emb, patches, 1.0), "the logit scale is missing: multiply the cosines by "
                                                      "`logit_scale` before the softmax, or it is nearly uniform.")]

    def fallback(self, array, want, args):
        return self.not_right if np.isfinite(array).all() else (
            f"NaN or inf: with a logit scale of {args[2]:g} `np.exp` overflows; subtract each patch's largest logit first.")


# --------------------------------------------------------------------------- 2: the CLS-bias removal
def make_tokens(rng, windows: int, patches: int, dim: int, rows: int):
    """Random ``(tokens, text)``: W x (1 + P) x D tokens (CLS first) sharing a per-window part; R unit rows."""
    tokens = rng.normal(size=(windows, 1, dim)) * 1.5 + rng.normal(size=(windows, 1 + patches, dim))
    tokens = tokens * rng.uniform(0.5, 3.0, (windows, 1 + patches, 1))
    return tokens.astype(np.float32), unit(rng.normal(size=(rows, dim))).astype(np.float32)


def example_tokens() -> tuple[np.ndarray, np.ndarray]:
    """``(tokens, text)`` for the notebook: 2 windows of 1 + 4 tokens of 6 dimensions, 3 text rows."""
    return make_tokens(np.random.default_rng(21), 2, 4, 6, 3)


def reference_bias_removed(tokens, text, cls_lambda) -> np.ndarray:
    """W x P x R: ``_window_logits``' similarities (before the reshape to the patch grid)."""
    import torch
    import torch.nn.functional as F

    tokens, emb = (torch.as_tensor(np.asarray(a, np.float32)) for a in (tokens, text))
    cls = F.normalize(tokens[:, :1], dim=-1) @ emb.T  # W x 1 x R
    logits = F.normalize(tokens[:, 1:], dim=-1) @ emb.T  # W x P x R
    return (logits - cls_lambda * cls if cls_lambda else logits).double().numpy()


class ClsBiasRemoval(ArrayFunctionExercise):
    name = "q2"
    title = "Remove the CLS token's bias"
    function_name = "remove_cls_bias"
    forbidden = ("rs_helpers.ovss.clip_dense:cls_bias", "rs_helpers.ovss.clip_dense:_window_logits",
                 "rs_helpers.ovss.clip_dense:similarity_map", f"{__name__}:reference_bias_removed")
    task = ("CLIP reads the image in windows; for each, `encode_tokens` returns the **CLS token first, then the P "
            "patch tokens**: `tokens` (W x (1 + P) x D) holds them, not normalised; `text` (R x D) holds one text "
            "embedding per (class, synonym) row, **of unit length**. Write `remove_cls_bias(tokens, text, "
            "cls_lambda)` returning the W x P x R similarities of section 2: the cosine of every patch with every "
            "row **minus `cls_lambda` times the cosine of that window's own CLS token with the same row**, "
            "**without** the package's `cls_bias`. Then set `answer = remove_cls_bias`: the check calls it on "
            "random tokens of its own (one or three windows, `cls_lambda` 0, 0.3 and 0.6).")
    setup = '''import numpy as np

from rs_helpers.teaching.exercises.nb02 import example_tokens

tokens, text = example_tokens()
cls_lambda = 0.3
print("windows x (1 + patches) x dimensions:", tokens.shape, "| text rows:", text.shape)'''
    hint_text = ("Split each window's tokens into its CLS token (position 0) and its patches, normalise both, and "
                 "compare each with the text rows. The amount subtracted is one number per window and text row.")
    hints = (hint_text, "`tokens[:, :1]` keeps the CLS axis (W x 1 x D): its similarity with the text, W x 1 x R, "
                        "broadcasts over the patches of `tokens[:, 1:]` (W x P x R). The text rows are unit already.")
    solution_code = '''# remove_cls_bias(tokens, text, cls_lambda) -> W x P x R similarities
def remove_cls_bias(tokens, text, cls_lambda=0.3):
    unit = tokens / np.linalg.norm(tokens, axis=-1, keepdims=True)
    cls_similarity = unit[:, :1] @ text.T  # W x 1 x R
    patch_similarity = unit[:, 1:] @ text.T  # W x P x R
    return patch_similarity - cls_lambda * cls_similarity

print(remove_cls_bias(tokens, text, cls_lambda).round(3))
answer = remove_cls_bias'''
    tolerance = 1e-5
    not_right = "not cos(patch, text) - cls_lambda * cos(CLS, text), window by window."
    confirmation = "`cls_bias` reports the amount subtracted, `cls_lambda` x cos(CLS, text), per window and text row."

    def cases(self):
        rng = np.random.default_rng(121)
        return [make_tokens(rng, 3, 6, 10, 4) + (0.3,), make_tokens(rng, 1, 9, 8, 5) + (0.3,),  # one window
                make_tokens(rng, 3, 4, 12, 3) + (0.6,), make_tokens(rng, 2, 5, 6, 2) + (0.0,)]  # no removal

    def expected(self, tokens, text, cls_lambda):
        return reference_bias_removed(tokens, text, cls_lambda)

    def read(self, got, want, args, where):
        (w, p, r), shape = want.shape, np.shape(got)
        if shape == (w, p + 1, r):
            raise Incorrect(f"{where} the result has shape {shape}: the CLS token is not a patch; return the "
                            f"similarities of the P patches only, W x P x R = {want.shape}.")
        if shape == (w, r, p) != want.shape:
            raise Incorrect(f"{where} the result has shape {shape} (W x R x P); want W x P x R = {want.shape}.")
        return super().read(got, want, args, where)

    def wrong_versions(self, tokens, text, lam):
        t = tokens.astype(np.float64)
        patch, cls = unit(t)[:, 1:] @ text.T, unit(t)[:, :1] @ text.T
        own = "each window has its own CLS token: subtract window w's similarity from window w's patches"
        return [(lambda: patch, "that is the plain patch similarity: subtract `cls_lambda` times the CLS similarity."),
                (lambda: patch + lam * cls, "subtract the CLS similarity, do not add it."),
                (lambda: patch - cls, "subtract `cls_lambda` times the CLS similarity, not all of it."),
                (lambda: t[:, 1:] @ text.T - lam * (t[:, :1] @ text.T),
                 "normalise the tokens first: without it these are dot products, not cosine similarities."),
                (lambda: patch - lam * (t[:, :1] @ text.T), "normalise the CLS token as well as the patches."),
                (lambda: unit(t[:, 1:] - lam * t[:, :1]) @ text.T,
                 "subtract the CLS token's *similarity* from each patch's similarity, not the token from the tokens."),
                (lambda: patch - lam * cls[:1], own + "."),
                (lambda: patch - lam * cls.mean(0, keepdims=True), own + ", not the mean over windows.")]


q1 = TemplateSoftmax()
q2 = ClsBiasRemoval()
EXERCISES = [q1, q2]
