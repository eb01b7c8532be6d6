"""Interactive exploration in notebooks: SAM's grid over one cached image embedding, and clicks.

Both explorers split into a pure, tested *state* and a thin ipywidgets layer:

* :class:`GridExplorerState` embeds the image once, runs the mask decoder once per grid density
  and keeps its raw low-resolution outputs, so that moving a threshold only re-filters them
  (:func:`rs_helpers.sam.fast_proposals.proposals_from_logits`, the fast generator's own
  post-processing: the same masks as :func:`~rs_helpers.sam.fast_proposals.generate_fast`).
  It also times what it runs, which gives notebooks an estimate for larger grids.
* :class:`ClickExplorerState` embeds the image once (``SamPredictor``) and turns the current
  clicks, added one by one or read from a model answer, into SAM's mask.

:func:`grid_explorer` and :func:`click_explorer` wrap them in sliders, buttons and a text box.
Every control has a default and the default state is drawn at once as an ordinary output (a PNG
image and a line of text), so "Run all" never waits and static copies show it; the box's output
area only shows the views that moving a control draws in a live session (why not the first one:
:mod:`rs_helpers.teaching.notebook`). Without ipywidgets only the default view is drawn.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch

from rs_helpers.refer.clicks import Click, parse_clicks, to_pixels
from rs_helpers.errors import BadInputError
from rs_helpers.sam.fast_proposals import DEFAULT_MARGIN, _autocast, proposals_from_logits
from rs_helpers.sam.proposals import ProposalSettings, Proposals
from rs_helpers.sam.from_clicks import ClickMask, make_predictor, predict_mask

TINY_TITLE = "TINY PROFILE: random SAM, these masks are MEANINGLESS"


def _tiny() -> bool:
    from rs_helpers.profile import is_tiny

    return is_tiny()


def _title(text: str) -> str:
    return f"{TINY_TITLE}\n{text}" if _tiny() else text


def _header(widgets, text: str):
    """The widget's first line: the tiny-profile warning in red, or ``text``."""
    return widgets.HTML(f"<b style='color:#c00'>{TINY_TITLE}</b>" if _tiny() else text)


def _check_image(image_rgb) -> np.ndarray:
    image_rgb = np.ascontiguousarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise BadInputError(f"want an H x W x 3 uint8 image, got {image_rgb.shape} {image_rgb.dtype}")
    return image_rgb


# --------------------------------------------------------------------------- grid explorer
class GridExplorerState:
    """SAM grid proposals for one image at any grid density and thresholds, from one embedding.

    ``proposals(points_per_side, ...)`` runs the image encoder on the first call only, the
    decoder once per grid density (its raw logits are kept for the last ``max_grids`` densities),
    and otherwise only the filtering. ``iou_floor``: keep only points with a predicted IoU above
    it (saves memory; thresholds below it are then refused). ``encoder_calls`` and
    ``decoder_runs`` count the work done; ``encoder_seconds`` and ``decode_seconds`` time it.
    Memory: the kept logits are P x 3 x 256 x 256 float32 per grid for SAM (about 660 MB for
    29 x 29 points without a floor), hence ``max_grids`` and the floor.
    """

    def __init__(self, sam, image_rgb: np.ndarray, *, iou_floor: float | None = None, max_grids: int = 3,
                 batch_size: int | None = None, dtype: torch.dtype | None = None, margin: float = DEFAULT_MARGIN):
        from segment_anything.utils.transforms import ResizeLongestSide

        self.sam = sam
        self.image = _check_image(image_rgb)
        self.device = next(sam.parameters()).device
        self.iou_floor = iou_floor
        self.max_grids = max_grids
        self.batch_size = batch_size or (256 if self.device.type == "cuda" else 64)
        self.dtype = dtype
        self.margin = margin
        self.transform = ResizeLongestSide(sam.image_encoder.img_size)
        self._embedding: torch.Tensor | None = None
        self._raw: OrderedDict[int, tuple] = OrderedDict()  # points per side -> (low, iou, points)
        self.encoder_calls = 0
        self.decoder_runs = 0
        self.encoder_seconds = 0.0
        self.decode_seconds: dict[int, float] = {}

    @property
    def image_hw(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    def embedding(self) -> torch.Tensor:
        """SAM's image embedding, computed on the first call only."""
        if self._embedding is None:
            from rs_helpers.sam.fast_encoder import sdpa_attention

            start = time.perf_counter()
            with torch.no_grad(), _autocast(self.device, self.dtype):
                resized = self.transform.apply_image(self.image)
                tensor = torch.as_tensor(resized, device=self.device).permute(2, 0, 1).contiguous()[None]
                with sdpa_attention(self.sam.image_encoder):
                    self._embedding = self.sam.image_encoder(self.sam.preprocess(tensor))
            self.encoder_calls += 1
            self.encoder_seconds = time.perf_counter() - start
        return self._embedding

    def raw(self, points_per_side: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """The decoder's outputs for the n x n grid: (P x 3 x h x w logits, P x 3 IoU, P x 2 pixel points)."""
        n = int(points_per_side)
        if n < 1:
            raise BadInputError(f"points per side must be at least 1, got {points_per_side}")
        if n in self._raw:
            self._raw.move_to_end(n)
            return self._raw[n]
        from segment_anything.utils.amg import build_all_layer_point_grids

        from rs_helpers.sam.fast_decoder import FastDecoder, supports_fast_decoder

        embedding = self.embedding()
        start = time.perf_counter()
        h, w = self.image_hw
        points_all = build_all_layer_point_grids(n, 0, 1)[0] * np.array([[w, h]])
        fast = supports_fast_decoder(self.sam)
        decoder = FastDecoder(self.sam, upscale_chunk=64 if self.device.type == "cuda" else 16) if fast else None
        lows, ious, kept = [], [], []
        with torch.no_grad():
            with _autocast(self.device, self.dtype):
                shared = decoder.prepare(embedding) if fast else None
            for begin in range(0, len(points_all), self.batch_size):
                points = points_all[begin:begin + self.batch_size]
                coords = torch.as_tensor(self.transform.apply_coords(points, (h, w)), device=self.device)
                labels = torch.ones(len(points), dtype=torch.int, device=self.device)
                sparse, dense = self.sam.prompt_encoder(points=(coords[:, None, :], labels[:, None]),
                                                        boxes=None, masks=None)
                with _autocast(self.device, self.dtype):
                    if fast:
                        low, iou = decoder(sparse, *shared, iou_thresh=self.iou_floor)
                    else:  # another decoder layout: segment-anything's own call
                        low, iou = self.sam.mask_decoder(
                            image_embeddings=embedding, image_pe=self.sam.prompt_encoder.get_dense_pe(),
                            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True)
                low, iou = low.float(), iou.float()
                keep = torch.ones(len(points), dtype=torch.bool, device=iou.device)
                if self.iou_floor is not None:
                    keep = (iou > self.iou_floor).any(1)
                lows.append(low[keep])
                ious.append(iou[keep])
                kept.append(points[keep.cpu().numpy()])
        self.decoder_runs += 1
        result = (torch.cat(lows), torch.cat(ious), np.concatenate(kept))
        self._raw[n] = result
        while len(self._raw) > self.max_grids:
            self._raw.popitem(last=False)
        self.decode_seconds[n] = time.perf_counter() - start
        return result

    def settings(self, points_per_side: int, pred_iou_thresh: float = 0.88, stability_score_thresh: float = 0.95,
                 box_nms_thresh: float = 0.7) -> ProposalSettings:
        return ProposalSettings(points_per_side=int(points_per_side), pred_iou_thresh=float(pred_iou_thresh),
                                stability_score_thresh=float(stability_score_thresh),
                                box_nms_thresh=float(box_nms_thresh))

    def proposals(self, points_per_side: int = 16, pred_iou_thresh: float = 0.88,
                  stability_score_thresh: float = 0.95, box_nms_thresh: float = 0.7) -> Proposals:
        """The proposals :func:`~rs_helpers.sam.fast_proposals.generate_fast` returns for these settings."""
        if self.iou_floor is not None and (pred_iou_thresh <= 0.0 or pred_iou_thresh < self.iou_floor):
            raise BadInputError(f"pred_iou_thresh {pred_iou_thresh} is below this explorer's floor {self.iou_floor}")
        settings = self.settings(points_per_side, pred_iou_thresh, stability_score_thresh, box_nms_thresh)
        low, iou, points = self.raw(points_per_side)
        if len(points) == 0:
            return Proposals.empty(*self.image_hw)
        return proposals_from_logits(low, iou, points, self.image_hw, self.sam.image_encoder.img_size, settings,
                                     mask_threshold=self.sam.mask_threshold, margin=self.margin,
                                     batch_size=self.batch_size)

    def expected_seconds(self, points_per_side: int, with_encoder: bool = True) -> float:
        """Estimated seconds of a fresh run at this grid density, from what was timed here: the
        encoder plus the per-point decoder rate of the densest grid decoded so far (0 if none)."""
        if not self.decode_seconds:
            return self.encoder_seconds if with_encoder else 0.0
        n = max(self.decode_seconds)
        rate = self.decode_seconds[n] / (n * n)
        return (self.encoder_seconds if with_encoder else 0.0) + rate * int(points_per_side) ** 2


def _show_grid(state: GridExplorerState, values: dict, figsize: float):
    import matplotlib.pyplot as plt

    from rs_helpers.teaching.notebook import show_figure
    from rs_helpers.teaching.plotting import show_points, show_proposals

    start = time.perf_counter()
    proposals = state.proposals(**values)
    seconds = time.perf_counter() - start
    n = values["points_per_side"]
    fig, ax = plt.subplots(figsize=(figsize, figsize))
    show_proposals(state.image, proposals.masks, ax)
    h, w = state.image_hw
    from rs_helpers.sam.proposals import grid_points

    show_points(grid_points(n, w, h), [1] * n * n, ax, marker_size=max(8, 600 // (n * n) ** 0.5))
    ax.set_title(_title(f"{len(proposals)} masks from a {n} x {n} grid "
                        f"(IoU > {values['pred_iou_thresh']:.2f}, stability >= "
                        f"{values['stability_score_thresh']:.2f}, NMS {values['box_nms_thresh']:.2f})"),
                 fontsize=9, color="#c00" if _tiny() else "black")
    show_figure(fig)
    print(f"{len(proposals)} masks; {seconds:.2f} s for this view (encoder runs: {state.encoder_calls}, "
          f"decoder runs: {state.decoder_runs})")
    return proposals


def grid_explorer(sam, image_rgb: np.ndarray, *, points_per_side: int = 16, pred_iou_thresh: float = 0.88,
                  stability_score_thresh: float = 0.95, box_nms_thresh: float = 0.7,
                  max_points_per_side: int = 32, iou_floor: float = 0.5, figsize: float = 6.0):
    """Sliders for the grid density and the three thresholds over one cached image embedding.

    Draws the default view at once, as an ordinary output, and returns the widget box (``None``
    without ipywidgets). A new density runs the decoder once; a threshold only re-filters.
    """
    floor = iou_floor if 0.0 < iou_floor <= pred_iou_thresh else None
    state = GridExplorerState(sam, image_rgb, iou_floor=floor)
    values = dict(points_per_side=int(points_per_side), pred_iou_thresh=float(pred_iou_thresh),
                  stability_score_thresh=float(stability_score_thresh), box_nms_thresh=float(box_nms_thresh))
    _show_grid(state, values, figsize)  # never inside the Output widget: see the module docstring
    try:
        import ipywidgets as widgets
    except ImportError:
        print("ipywidgets is not installed: showing the default settings only")
        return None
    style = {"description_width": "150px"}
    layout = widgets.Layout(width="420px")
    sliders = {
        "points_per_side": widgets.IntSlider(value=values["points_per_side"], min=1,
                                             max=max(int(max_points_per_side), values["points_per_side"]),
                                             description="points per side", continuous_update=False,
                                             style=style, layout=layout),
        "pred_iou_thresh": widgets.FloatSlider(value=values["pred_iou_thresh"], min=floor or 0.0, max=0.99,
                                               step=0.01, description="predicted IoU >", continuous_update=False,
                                               style=style, layout=layout),
        "stability_score_thresh": widgets.FloatSlider(value=values["stability_score_thresh"], min=0.0, max=0.99,
                                                      step=0.01, description="stability >=",
                                                      continuous_update=False, style=style, layout=layout),
        "box_nms_thresh": widgets.FloatSlider(value=values["box_nms_thresh"], min=0.1, max=1.0, step=0.05,
                                              description="box NMS IoU", continuous_update=False,
                                              style=style, layout=layout),
    }
    out = widgets.Output()

    def render(_change=None):
        current = {k: s.value for k, s in sliders.items()}
        with out:
            out.clear_output(wait=True)
            _show_grid(state, current, figsize)

    for slider in sliders.values():
        slider.observe(render, names="value")
    header = _header(widgets, "<b>SAM grid proposals</b>: one image embedding; a new density reruns the decoder only")
    box = widgets.VBox([header, widgets.VBox(list(sliders.values())), out])
    box.state = state  # for inspection (and tests)
    return box


# --------------------------------------------------------------------------- click explorer
class ClickExplorerState:
    """Clicks on one image and SAM's mask for them; the image is embedded once.

    ``clicks`` are in pixels (default: one positive click at the centre). ``add``, ``clear``
    and ``set_text`` change them and return the current :class:`~rs_helpers.sam.from_clicks.ClickMask`
    (``None`` when there is no click). ``message`` says what went wrong last (a parse error,
    a click outside the image), or is empty.
    """

    def __init__(self, sam, image_rgb: np.ndarray, clicks: Sequence[Click] | None = None,
                 multimask: bool | str = "auto"):
        self.image = _check_image(image_rgb)
        self.predictor = make_predictor(sam, self.image)
        self.height, self.width = self.image.shape[:2]
        self.multimask = multimask
        self.clicks: list[Click] = (list(clicks) if clicks is not None
                                    else [Click(self.width // 2, self.height // 2, 1)])
        self.message = ""
        self._result: ClickMask | None = None
        self._asked: tuple | None = None

    def current(self) -> ClickMask | None:
        """SAM's mask for the current clicks (asked again only when they changed)."""
        if not self.clicks:
            return None
        key = tuple(self.clicks)
        if key != self._asked:
            self._result = predict_mask(self.predictor, self.clicks, multimask=self.multimask)
            self._asked = key
        return self._result

    def add(self, x: int, y: int, label: int = 1) -> ClickMask | None:
        click = Click(int(x), int(y), int(label))
        if not (0 <= click.x < self.width and 0 <= click.y < self.height) or click.label not in (0, 1):
            self.message = f"click {click} is outside the {self.width} x {self.height} image or not labelled 0/1"
            return self.current()
        self.message = ""
        self.clicks.append(click)
        return self.current()

    def clear(self) -> ClickMask | None:
        self.clicks = []
        self.message = ""
        return self.current()

    def set_text(self, answer: str) -> ClickMask | None:
        """Replace the clicks by those of a model answer (0-1000 grid); on a bad answer keep
        them and put the parser's message in ``message``."""
        try:
            grid = parse_clicks(answer)
        except BadInputError as error:
            self.message = str(error)
            return self.current()
        self.message = ""
        self.clicks = to_pixels(grid, self.width, self.height)
        return self.current()


def _show_clicks(state: ClickExplorerState, figsize: float, cursor: tuple[int, int] | None = None):
    import matplotlib.pyplot as plt

    from rs_helpers.teaching.notebook import show_figure
    from rs_helpers.teaching.plotting import show_image, show_mask, show_points

    result = state.current()
    fig, ax = plt.subplots(figsize=(figsize, figsize))
    if result is None:
        title = "no clicks: add one"
    elif not result.scores:
        title = "no positive click: empty mask"
    else:
        title = f"SAM mask from {len(state.clicks)} click(s), predicted IoU {result.score:.2f}"
    show_image(state.image, ax)
    ax.set_title(_title(title), fontsize=9, color="#c00" if _tiny() else "black")
    if result is not None:
        show_mask(result.mask, ax)
    if state.clicks:
        show_points([[c.x, c.y] for c in state.clicks], [c.label for c in state.clicks], ax)
    if cursor is not None:
        ax.plot([cursor[0]], [cursor[1]], marker="+", color="yellow", markersize=14, markeredgewidth=2)
    show_figure(fig)
    if state.message:
        print(state.message)
    print("clicks (pixels):", [(c.x, c.y, c.label) for c in state.clicks])
    return result


def click_explorer(sam, image_rgb: np.ndarray, clicks: Sequence[Click] | None = None, *, figsize: float = 6.0):
    """Place clicks with sliders (x, y, label) or paste a click answer; SAM's mask follows.

    ``clicks`` in pixels (default: one positive click at the centre). Draws the default view at
    once, as an ordinary output, and returns the widget box (``None`` without ipywidgets).
    """
    state = ClickExplorerState(sam, image_rgb, clicks)
    try:
        import ipywidgets as widgets
    except ImportError:
        widgets = None
    centre = (state.width // 2, state.height // 2)
    _show_clicks(state, figsize, cursor=None if widgets is None else centre)  # not in the Output (module doc)
    if widgets is None:
        print("ipywidgets is not installed: showing the default clicks only")
        return None
    style = {"description_width": "60px"}
    x = widgets.IntSlider(value=centre[0], min=0, max=state.width - 1, description="x (px)",
                          continuous_update=False, style=style)
    y = widgets.IntSlider(value=centre[1], min=0, max=state.height - 1, description="y (px)",
                          continuous_update=False, style=style)
    label = widgets.ToggleButtons(options=[("positive", 1), ("negative", 0)], value=1, description="label",
                                  style=style)
    add = widgets.Button(description="add click", button_style="success")
    clear = widgets.Button(description="clear", button_style="warning")
    text = widgets.Text(value="", placeholder='{"clicks": [{"x": 500, "y": 500, "label": 1}]}',
                        description="answer", continuous_update=False, style=style,
                        layout=widgets.Layout(width="90%"))
    use = widgets.Button(description="use answer")
    out = widgets.Output()

    def render(_change=None):
        with out:
            out.clear_output(wait=True)
            _show_clicks(state, figsize, cursor=(x.value, y.value))

    def on_add(_button):
        state.add(x.value, y.value, label.value)
        render()

    def on_clear(_button):
        state.clear()
        render()

    def on_text(_change=None):
        if text.value.strip():
            state.set_text(text.value)
            render()

    add.on_click(on_add)
    clear.on_click(on_clear)
    use.on_click(on_text)
    text.observe(on_text, names="value")
    x.observe(render, names="value")
    y.observe(render, names="value")
    header = _header(widgets, "<b>Clicks for SAM</b>: the yellow cross is where 'add click' puts the next one; "
                              "a model answer uses the 0-1000 grid")
    box = widgets.VBox([header, widgets.HBox([x, y]), widgets.HBox([label, add, clear]),
                        widgets.HBox([text, use]), out])
    box.state = state
    return box


__all__ = ["GridExplorerState", "ClickExplorerState", "grid_explorer", "click_explorer", "TINY_TITLE"]
