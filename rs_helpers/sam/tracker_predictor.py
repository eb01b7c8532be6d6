"""SAM 2.1 and SAM 3's tracker behind segment-anything's ``SamPredictor`` interface.

:func:`rs_helpers.sam.from_clicks.predict_mask` (and so click simulation, LoRA data, ``rs-seg refer`` and
``rs-seg eval refer``) asks a predictor for ``original_size`` and ``predict(point_coords,
point_labels, multimask_output)``. :class:`TrackerPredictor` answers the same for a
:class:`rs_helpers.models.sam_tracker.ClickSegmenter`: the image is embedded once, when the predictor
is made, and every ``predict`` runs only the prompt encoder and mask decoder on that embedding. Its
masks and scores are those of transformers' documented path (``processor(images=, input_points=,
input_labels=)``, ``model(**inputs, multimask_output=)``, ``processor.post_process_masks``): the same
calls, with the image embedding computed once instead of per call; masks are logits > 0 at the
image's size, as ``post_process_masks`` thresholds by default.
"""
from __future__ import annotations

import numpy as np
import torch

from rs_helpers.errors import BadInputError
from rs_helpers.models.sam_tracker import ClickSegmenter


def is_click_segmenter(model) -> bool:
    """Whether ``model`` is a SAM 2.1 / SAM 3 tracker bundle (else it is segment-anything's SAM)."""
    return isinstance(model, ClickSegmenter)


class TrackerPredictor:
    """``SamPredictor``'s interface (``original_size``, ``predict``) for a :class:`ClickSegmenter`, with
    ``image_rgb`` (H x W x 3 uint8) embedded once, here."""

    def __init__(self, segmenter: ClickSegmenter, image_rgb: np.ndarray):
        image_rgb = np.asarray(image_rgb)
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise BadInputError(f"want an H x W x 3 uint8 image, got {image_rgb.shape} {image_rgb.dtype}")
        self.segmenter = segmenter
        self.original_size = (int(image_rgb.shape[0]), int(image_rgb.shape[1]))
        inputs = segmenter.processor(images=image_rgb, return_tensors="pt")
        self._original_sizes = inputs["original_sizes"]
        pixels = inputs["pixel_values"].to(device=segmenter.device, dtype=segmenter.dtype)
        with torch.inference_mode():
            self.image_embeddings = segmenter.model.get_image_embeddings(pixels)

    def predict(self, point_coords: np.ndarray, point_labels: np.ndarray, multimask_output: bool = True):
        """Masks for the clicks ``point_coords`` (N x 2 pixel (x, y)) with ``point_labels`` (N: 1 positive,
        0 negative), all prompting one object: ``(masks C x H x W bool, scores C float32 predicted IoU,
        low-res logits C x h x w float32)``, C = 3 with ``multimask_output``, else 1."""
        coords = np.asarray(point_coords, np.float64).reshape(-1, 2)
        labels = np.asarray(point_labels).reshape(-1)
        if len(coords) == 0 or len(coords) != len(labels):
            raise BadInputError(f"want N x 2 clicks and N labels, got {coords.shape} and {labels.shape}")
        seg = self.segmenter
        prompts = seg.processor(input_points=[[coords.tolist()]], input_labels=[[[int(v) for v in labels]]],
                                original_sizes=self._original_sizes, return_tensors="pt")
        with torch.inference_mode():
            out = seg.model(image_embeddings=self.image_embeddings,
                            input_points=prompts["input_points"].to(device=seg.device, dtype=seg.dtype),
                            input_labels=prompts["input_labels"].to(seg.device),
                            multimask_output=bool(multimask_output))
            logits = out.pred_masks.float().cpu()  # 1 x 1 x C x h x w
            masks = seg.processor.post_process_masks(logits, self._original_sizes)[0][0]
        return (masks.numpy().astype(bool), out.iou_scores[0, 0].float().cpu().numpy(), logits[0, 0].numpy())
