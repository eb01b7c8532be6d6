"""The generative branch: a VLM writes click prompts, SAM turns them into one mask.

    text ──build_prompt──▶ prompt ──VLM.ask(image)──▶ answer ──parse_clicks──▶ grid clicks
         ──to_pixels──▶ pixel clicks ──SAM (all at once)──▶ mask

Each arrow is a function of its own (``rs_helpers.refer.prompts``, ``.vlm``, ``.clicks``,
``.sam_clicks``); :func:`refer` chains them and keeps every intermediate in a
:class:`ReferResult`, so a notebook can show each stage and an evaluation can log them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rs_helpers.refer.clicks import Click, ClickParseError, parse_clicks, to_pixels
from rs_helpers.errors import NoClicksError
from rs_helpers.geo.rasters import RasterImage
from rs_helpers.refer.prompts import DEFAULT_N_CLICKS, build_prompt, check_query_text
from rs_helpers.sam.from_clicks import make_predictor, predict_mask
from rs_helpers.refer.vlm import VLMBackend


@dataclass
class ReferResult:
    """Everything one query produced: the ``mask`` (H x W bool), the ``clicks`` on the 0-1000
    grid and in pixels, the model's raw ``answer``, the ``prompt`` it saw, the token ``usage``,
    SAM's predicted IoU ``score`` and the seconds each stage took (``timings``)."""

    mask: np.ndarray
    clicks: list[Click]
    pixel_clicks: list[Click]
    answer: str
    prompt: str
    usage: dict
    score: float = 0.0
    timings: dict = field(default_factory=dict)


def _rgb(image) -> np.ndarray:
    return image.rgb if isinstance(image, RasterImage) else np.asarray(image)


def _cut_off_hint(answer, backend) -> str:
    """What to change when the answer stopped at its token limit rather than ending."""
    if getattr(answer, "finish_reason", None) != "length":
        return ""
    if backend.name.startswith("openai:"):
        return ("; the answer was cut off at its token limit (finish_reason=length): reasoning models such as "
                "GPT-5 spend completion tokens on thinking first, so raise --max-new-tokens "
                "(max_completion_tokens) or lower --reasoning-effort")
    return "; the answer was cut off at its token limit: raise --max-new-tokens"


def ask_for_clicks(image, text: str, backend: VLMBackend, task: str = "referring",
                   n_clicks: int = DEFAULT_N_CLICKS, text_name: str = "--text") -> tuple[list[Click], str, str, dict]:
    """Ask ``backend`` for clicks: returns ``(grid clicks, raw answer, prompt, usage)``.

    The text is checked first (not blank, valid UTF-8: :class:`BadInputError` naming
    ``text_name``), so a bad query is the user's input error, never a failed request.
    An answer without usable clicks raises :class:`NoClicksError` carrying the raw answer
    (``.raw_answer``) and the call's token usage (``.usage``).
    At most ``n_clicks`` clicks are kept (the first ones).
    """
    check_query_text(text, text_name)
    prompt = build_prompt(text, task=task, n_clicks=n_clicks)
    answer = backend.ask(_rgb(image), prompt)
    try:
        clicks = parse_clicks(answer.text, max_clicks=n_clicks)
    except ClickParseError as exc:
        error = NoClicksError(f"{backend.name} gave no usable clicks ({exc.reason}){_cut_off_hint(answer, backend)}",
                              answer.text)
        error.usage = dict(answer.usage)  # the call still cost tokens
        raise error from None
    return clicks, answer.text, prompt, dict(answer.usage)


def refer(image, text: str, backend: VLMBackend, sam=None, task: str = "referring",
          n_clicks: int = DEFAULT_N_CLICKS, multimask: bool = True, predictor=None,
          text_name: str = "the query text") -> ReferResult:
    """Segment what ``text`` refers to in ``image`` (a RasterImage or H x W x 3 uint8 array).

    ``sam``: a SAM model (``rs_helpers.models.sam.load_sam``); or pass ``predictor``, a
    ``SamPredictor`` already holding this image (to ask several queries of one image).
    ``multimask``: keep SAM's best-scoring of three masks (True) or ask for one (False).
    ``text_name``: how an error about the text names it.
    """
    rgb = _rgb(image)
    height, width = rgb.shape[:2]
    timings = {}
    start = time.perf_counter()
    clicks, answer, prompt, usage = ask_for_clicks(rgb, text, backend, task=task, n_clicks=n_clicks,
                                                   text_name=text_name)
    timings["vlm_s"] = time.perf_counter() - start
    pixel_clicks = to_pixels(clicks, width, height)
    start = time.perf_counter()
    if predictor is None:
        if sam is None:
            raise ValueError("refer() needs sam= or predictor=")
        predictor = make_predictor(sam, rgb)
        timings["sam_embed_s"] = time.perf_counter() - start
        start = time.perf_counter()
    result = predict_mask(predictor, pixel_clicks, multimask=multimask)
    timings["sam_predict_s"] = time.perf_counter() - start
    return ReferResult(mask=result.mask, clicks=clicks, pixel_clicks=pixel_clicks, answer=answer,
                       prompt=prompt, usage=usage, score=result.score, timings=timings)
