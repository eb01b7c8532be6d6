"""Exercises for notebook 05 (Qwen3-VL locally): the chat messages the processor expects, clicks
picked out of a noisy answer, and how many tokens an image costs."""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Exercise, Incorrect, as_clicks, as_number, same_points

SYSTEM = "You place click prompts for a segmentation model. Answer only with the JSON you are asked for."
PROMPT = "Segment: the largest building in the top-left quarter. Answer with 4 clicks on the 0-1000 grid."

_IMAGE = None


def chat_inputs():
    """``(image, prompt, system_prompt)``: a small PIL image (the same object on every call), the
    user prompt and the system prompt."""
    global _IMAGE
    if _IMAGE is None:
        from PIL import Image

        _IMAGE = Image.fromarray(np.full((64, 64, 3), 120, np.uint8), "RGB")
    return _IMAGE, PROMPT, SYSTEM


def _text_of(content) -> str | None:
    """The text of a message's content: a plain string or a list holding one text item."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [c.get("text") for c in content if isinstance(c, dict) and c.get("type") == "text"]
        return texts[0] if len(texts) == 1 else None
    return None


def _same_image(a, b) -> bool:
    if a is b:
        return True
    try:
        return a.size == b.size and a.mode == b.mode and a.tobytes() == b.tobytes()
    except AttributeError:
        return False


class ChatMessages(Exercise):
    name = "q1"
    title = "The chat messages for Qwen"
    task = ("Write the `messages` list that Qwen's processor turns into the chat (what `build_messages` in "
            "`rs_helpers.refer.vlm_qwen` does): a **system** turn holding `system_prompt`, then one **user** turn whose "
            "content is a list with the **image** item `{\"type\": \"image\", \"image\": image}` and the **text** "
            "item with `prompt`. Each turn is a dict with `\"role\"` and `\"content\"`. No assistant turn: the "
            "processor opens it (`add_generation_prompt=True`).")
    setup = '''from rs_helpers.teaching.exercises.nb05 import chat_inputs

image, prompt, system_prompt = chat_inputs()'''
    hint_text = ('Two dicts: `{"role": "system", "content": [{"type": "text", "text": system_prompt}]}` and '
                 '`{"role": "user", "content": [...]}` with the image item first, then the text item.')
    solution_code = '''answer = [
    {"role": "system", "content": [{"type": "text", "text": system_prompt}]},
    {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}]},
]'''

    def __init__(self, image=None, prompt: str = PROMPT, system_prompt: str = SYSTEM):
        self._image, self.prompt, self.system = image, prompt, system_prompt

    def image(self):
        return self._image if self._image is not None else chat_inputs()[0]

    def expected(self) -> list[dict]:
        from rs_helpers.refer.vlm_qwen import build_messages

        return build_messages(self.image(), self.prompt, self.system)

    def verify(self, answer):
        if not isinstance(answer, (list, tuple)) or not all(isinstance(m, dict) for m in answer):
            raise Incorrect("want a list of dicts, one per turn, each with \"role\" and \"content\".")
        if not all("role" in m and "content" in m for m in answer):
            raise Incorrect("every turn needs the keys \"role\" and \"content\".")
        roles = [m["role"] for m in answer]
        if "assistant" in roles:
            raise Incorrect("leave the assistant turn out: the model writes it; `add_generation_prompt=True` opens it.")
        unknown = [r for r in roles if r not in ("system", "user")]
        if unknown:
            raise Incorrect(f"role {unknown[0]!r} is not one the chat template knows: use \"system\" and \"user\".")
        if roles != ["system", "user"]:
            if "system" not in roles:
                raise Incorrect("the system turn is missing: start with {\"role\": \"system\", ...} holding the system prompt.")
            raise Incorrect(f"want exactly two turns, system then user; got {roles}.")
        system, user = answer
        if _text_of(system["content"]) != self.system:
            raise Incorrect("the system turn must hold exactly `system_prompt` (as a text item, or a plain string).")
        content = user["content"]
        if isinstance(content, str):
            raise Incorrect("the user content is a plain string, so the model never sees the image: make it a list "
                            "with an image item and a text item.")
        if not isinstance(content, list) or not all(isinstance(c, dict) for c in content):
            raise Incorrect("the user content must be a list of items (dicts with a \"type\").")
        types = [c.get("type") for c in content]
        if "image_url" in types:
            raise Incorrect("that is the OpenAI format (`image_url` with a base64 data URL). Qwen's processor takes "
                            "{\"type\": \"image\", \"image\": <PIL image>}.")
        images = [c for c in content if c.get("type") == "image"]
        if not images:
            raise Incorrect("the user turn has no image item: add {\"type\": \"image\", \"image\": image}.")
        if len(images) > 1:
            raise Incorrect("one image item is enough; this user turn has several.")
        if not _same_image(images[0].get("image"), self.image()):
            raise Incorrect("the image item must hold the image itself under the key \"image\".")
        if _text_of(content) != self.prompt:
            raise Incorrect("the user turn needs exactly one text item holding `prompt`.")
        if len(content) != 2:
            raise Incorrect("the user content holds exactly two items: the image and the text.")
        note = "the same chat as `build_messages(image, prompt, system_prompt)`."
        if types != ["image", "text"]:
            note += " (Qwen's own examples put the image before the text; either order works with the template.)"
        return note


NOISY_ANSWER = '''Sure! The building you mean is near the top-left; the grid runs from (0, 0) to (1000, 1000).
```json
{"clicks": [
  {"x": 212, "y": 180, "label": 1},
  {"x": 260, "y": 215, "label": 1},
  {"x": 236, "y": 330, "label": 0},
]}
```
I hope these 3 clicks help!'''


class NoisyClicks(Exercise):
    name = "q2"
    title = "Clicks out of a noisy answer"
    task = ("Small models rarely answer with bare JSON. Pick the clicks out of `noisy`: give them as a list of "
            "`(x, y, label)` on the 0-1000 grid. Only the clicks count, not numbers mentioned in the prose. Any "
            "order is accepted. Try it with `re` and `json` first; then compare with `parse_clicks(noisy)`.")
    setup = '''import json
import re

from rs_helpers.teaching.exercises.nb05 import NOISY_ANSWER

noisy = NOISY_ANSWER
print(noisy)'''
    hint_text = ("The clicks sit in a code fence that opens with `` ```json ``: `re.search(r\"```json(.*?)```\", noisy, re.S)` finds it. "
                 "`json.loads` refuses the trailing comma before `]`; remove it with `re.sub(r\",\\s*([}\\]])\", r\"\\1\", text)`.")
    solution_code = '''block = re.search(r"```json(.*?)```", noisy, re.S).group(1)
block = re.sub(r",\\s*([}\\]])", r"\\1", block)  # drop trailing commas
answer = [(c["x"], c["y"], c["label"]) for c in json.loads(block)["clicks"]]
answer'''

    def __init__(self, noisy: str = NOISY_ANSWER):
        self.noisy = noisy

    def expected(self) -> np.ndarray:
        from rs_helpers.refer.clicks import parse_clicks

        return np.array([[c.x, c.y, c.label] for c in parse_clicks(self.noisy)], float)

    def verify(self, answer):
        clicks = as_clicks(answer, "a list of clicks (x, y, label)")
        want = self.expected()
        weight = np.array([1.0, 1.0, 1e6])
        if len(clicks) == len(want) and same_points(clicks * weight, want * weight, 0.5):
            return f"{len(want)} clicks, the same as `parse_clicks(noisy)`."
        if len(clicks) == len(want) and same_points(clicks[:, :2], want[:, :2], 0.5):
            raise Incorrect("the places are right, the labels not: one click is negative (label 0).")
        if len(clicks) == len(want) and same_points(clicks[:, 1::-1], want[:, :2], 0.5):
            raise Incorrect("x and y are swapped: give (x, y, label).")
        if len(clicks) > len(want):
            raise Incorrect(f"{len(clicks)} clicks: the answer holds {len(want)}; the others are numbers from the "
                            "prose (the grid's corners, the count). Read only the JSON block.")
        if len(clicks) < len(want):
            raise Incorrect(f"{len(clicks)} clicks: the answer holds {len(want)}. Did the trailing comma stop "
                            "`json.loads`?")
        raise Incorrect("not the clicks of the JSON block.")


class ImageTokens(Exercise):
    name = "q3"
    title = "What an image costs"
    task = ("Qwen3-VL cuts the image into 16 x 16 pixel patches and merges each 2 x 2 group of patches into **one "
            "token**, so one `<|image_pad|>` token stands for a 32 x 32 pixel block. How many image tokens does a "
            "**640 x 480** image cost (its sides are already multiples of 32)?")
    setup = '''width, height = 640, 480'''
    hint_text = "Count the 32-pixel blocks along each side, then multiply."
    solution_code = '''answer = (width // 32) * (height // 32)
answer'''

    def __init__(self, width: int = 640, height: int = 480, block: int = 32):
        self.width, self.height, self.block = width, height, block

    def expected(self) -> int:
        return (self.width // self.block) * (self.height // self.block)

    def verify(self, answer):
        value = as_number(answer, "one number of tokens")
        want = self.expected()
        if value == want:
            return f"{want} tokens: halve both sides and it drops to {want // 4}; that is why `max_pixels` is a cost knob."
        w, h = self.width, self.height
        candidates = [
            (w * h, "that is the number of pixels; one token covers a 32 x 32 block."),
            ((w // 16) * (h // 16), "that counts the 16 x 16 patches before merging: every 2 x 2 patches make one token."),
            (w * h / 32, "a token covers a 32 x 32 block (1024 pixels), not 32 pixels."),
            ((w // 32) + (h // 32), "multiply the blocks along the two sides, do not add them."),
            (round(w / 28) * round(h / 28), "28-pixel tokens are Qwen2-VL / Qwen2.5-VL (14-pixel patches); Qwen3-VL "
                                            "uses 16-pixel patches, 32 pixels per token."),
            (w * h / 28 ** 2, "28-pixel tokens are Qwen2-VL / Qwen2.5-VL; Qwen3-VL uses 32 pixels per token."),
            (w * h / 14 ** 2, "14-pixel patches without merging are Qwen2-VL's; Qwen3-VL: 32 x 32 pixels per token."),
        ]
        for candidate, message in candidates:
            if abs(value - candidate) <= 1:
                raise Incorrect(message)
        raise Incorrect(f"not the number of 32 x 32 blocks in a {w} x {h} image.")


q1 = ChatMessages()
q2 = NoisyClicks()
q3 = ImageTokens()
EXERCISES = [q1, q2, q3]
