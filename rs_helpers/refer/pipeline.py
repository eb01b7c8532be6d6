"""The generative branch: a VLM writes click prompts, SAM turns them into one mask.

    text ──build_prompt──▶ prompt ──VLM.ask(image)──▶ answer ──parse_clicks──▶ grid clicks
         ──to_pixels──▶ pixel clicks ──SAM (all at once)──▶ mask

Each arrow is a function of its own (``rs_helpers.refer.prompts``, ``.vlm``, ``.clicks``,
``rs_helpers.sam.from_clicks``); :func:`refer` chains them and keeps every intermediate in a
:class:`ReferResult`, so a notebook can show each stage and an evaluation can log them.

When the model gives the no-target answer (``{"clicks": [], "reason": ...}``, see
:mod:`rs_helpers.refer.clicks`) there are no clicks: SAM is not called and the mask is empty
(``ReferResult.no_target``). SAM sees the clicks under the ``multimask`` rule of
:mod:`rs_helpers.sam.from_clicks` (default "auto": best of three for one click, one mask for more).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rs_helpers.refer.clicks import Click, ClickParseError, no_target_reason, parse_clicks, to_pixels
from rs_helpers.errors import NoClicksError
from rs_helpers.geo.rasters import RasterImage
from rs_helpers.refer.prompts import DEFAULT_N_CLICKS, build_prompt, check_query_text
from rs_helpers.sam.from_clicks import DEFAULT_MULTIMASK, make_predictor, multimask_mode, predict_mask
from rs_helpers.refer.vlm import VLMBackend


@dataclass
class ReferResult:
    """Everything one query produced: the ``mask`` (H x W bool), the ``clicks`` on the 0-1000
    grid and in pixels, the model's raw ``answer``, the ``prompt`` it saw, the token ``usage``,
    SAM's predicted IoU ``score`` and the seconds each stage took (``timings``). No clicks means
    the model answered that there is no target: the mask is empty and SAM was not run."""

    mask: np.ndarray
    clicks: list[Click]
    pixel_clicks: list[Click]
    answer: str
    prompt: str
    usage: dict
    score: float = 0.0
    timings: dict = field(default_factory=dict)

    @property
    def no_target(self) -> bool:
        """The model said there is nothing to segment (the no-target answer)."""
        return not self.clicks

    @property
    def reason(self) -> str | None:
        """The reason of a no-target answer, else None."""
        return no_target_reason(self.answer) if self.no_target else None


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
    The no-target answer gives no clicks (``[]``); any other answer without usable clicks raises
    :class:`NoClicksError` carrying the raw answer (``.raw_answer``) and the call's token usage
    (``.usage``). At most ``n_clicks`` clicks are kept (the first ones).
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
          n_clicks: int = DEFAULT_N_CLICKS, multimask: bool | str = DEFAULT_MULTIMASK, predictor=None,
          text_name: str = "the query text") -> ReferResult:
    """Segment what ``text`` refers to in ``image`` (a RasterImage or H x W x 3 uint8 array).

    ``sam``: a SAM model (``rs_helpers.models.sam.load_sam``); or pass ``predictor``, a
    ``SamPredictor`` already holding this image (to ask several queries of one image).
    ``multimask``: "auto" (best of three for one click, one mask for more), "always" (True) or
    "never" (False); see :mod:`rs_helpers.sam.from_clicks`.
    ``text_name``: how an error about the text names it.
    A no-target answer gives an empty mask (score 0) without running SAM.
    """
    rgb = _rgb(image)
    height, width = rgb.shape[:2]
    multimask = multimask_mode(multimask)  # a bad rule fails before the model is asked
    if predictor is None and sam is None:
        raise ValueError("refer() needs sam= or predictor=")
    timings = {}
    start = time.perf_counter()
    clicks, answer, prompt, usage = ask_for_clicks(rgb, text, backend, task=task, n_clicks=n_clicks,
                                                   text_name=text_name)
    timings["vlm_s"] = time.perf_counter() - start
    pixel_clicks = to_pixels(clicks, width, height)
    if not clicks:  # the no-target answer: nothing to segment, SAM is not run
        return ReferResult(mask=np.zeros((height, width), bool), clicks=[], pixel_clicks=[], answer=answer,
                           prompt=prompt, usage=usage, score=0.0, timings=timings)
    start = time.perf_counter()
    if predictor is None:
        predictor = make_predictor(sam, rgb)
        timings["sam_embed_s"] = time.perf_counter() - start
        start = time.perf_counter()
    result = predict_mask(predictor, pixel_clicks, multimask=multimask)
    timings["sam_predict_s"] = time.perf_counter() - start
    return ReferResult(mask=result.mask, clicks=clicks, pixel_clicks=pixel_clicks, answer=answer,
                       prompt=prompt, usage=usage, score=result.score, timings=timings)
