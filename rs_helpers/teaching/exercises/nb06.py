"""Exercises for notebook 06 (Qwen3-VL locally): the chat messages the processor expects, clicks
picked out of a noisy answer, and how many tokens an image costs.

Each answer is a function, run on hidden cases (:mod:`~rs_helpers.teaching.exercises.function_problems`);
the references are the package's :func:`~rs_helpers.refer.vlm_qwen.build_messages` and
:func:`~rs_helpers.refer.clicks.parse_clicks`, and the Qwen-VL image processor's ``smart_resize``."""
from __future__ import annotations

import numpy as np

from rs_helpers.teaching.exercises import Incorrect, as_clicks, as_number, same_points
from rs_helpers.teaching.exercises.function_problems import FunctionExercise

SYSTEM = "You place click prompts for a segmentation model. Answer only with the JSON you are asked for."
PROMPT = "Segment: the largest building in the top-left quarter. Answer with 4 clicks on the 0-1000 grid."

_IMAGE = None


def _image(width: int, height: int, grey: int):
    from PIL import Image

    return Image.fromarray(np.full((height, width, 3), grey, np.uint8), "RGB")


def chat_inputs():
    """``(image, prompt, system_prompt)``: a small PIL image (the same object on every call), the
    user prompt and the system prompt."""
    global _IMAGE
    if _IMAGE is None:
        _IMAGE = _image(64, 64, 120)
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


class ChatMessages(FunctionExercise):
    name = "q1"
    title = "The chat messages for Qwen"
    function_name = "chat_messages"
    forbidden = ("rs_helpers.refer.vlm_qwen:build_messages",)
    task = ("Write `chat_messages(image, prompt, system_prompt)` returning the `messages` list that Qwen's processor "
            "turns into the chat, without `build_messages`: a **system** turn holding `system_prompt` (left out "
            "when `system_prompt` is None), then one **user** turn whose content is a list with the **image** item "
            "`{\"type\": \"image\", \"image\": image}` and the **text** item with `prompt`. Each turn is a dict "
            "with `\"role\"` and `\"content\"`. No assistant turn: the processor opens it "
            "(`add_generation_prompt=True`). The check calls your function with images and prompts of its own.")
    setup = '''from rs_helpers.teaching.exercises.nb06 import chat_inputs

image, prompt, system_prompt = chat_inputs()'''
    hints = ("Section 2 printed the chat that the template made from such a list: one dict per turn, in order. What "
             "does the user turn hold besides the text, and what changes when there is no system prompt?",
             "Each content is a list of typed items, e.g. `{\"type\": \"text\", \"text\": ...}`; the user turn has "
             "the image item first, then the text item. Add the system turn only when there is a system prompt.")
    hint_text = hints[0]
    solution_code = '''def chat_messages(image, prompt, system_prompt):
    """The chat for Qwen's processor: an optional system turn, then one user turn with the image and the prompt."""
    messages = []
    if system_prompt:
        messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    messages.append({"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}]})
    return messages

print(chat_messages(image, prompt, system_prompt))
answer = chat_messages'''

    def cases(self):
        return [(_image(48, 32, 30), "Segment: the road along the river. Answer with 6 clicks.", "Answer with JSON."),
                (_image(20, 70, 200), "Which field is ready for harvest? Click on it.", None),
                (_image(33, 33, 90), "Segment: every tennis court.", SYSTEM)]

    def expected(self, image, prompt, system_prompt):
        from rs_helpers.refer.vlm_qwen import build_messages

        return build_messages(image, prompt, system_prompt)

    def compare(self, got, want, args):
        image, prompt, system_prompt = args

        def wrong(message):
            raise Incorrect(f"for {self.describe(args)}: {message}")

        if not isinstance(got, (list, tuple)) or not all(isinstance(m, dict) for m in got):
            wrong("want a list of dicts, one per turn, each with \"role\" and \"content\".")
        if not all("role" in m and "content" in m for m in got):
            wrong("every turn needs the keys \"role\" and \"content\".")
        roles = [m["role"] for m in got]
        if "assistant" in roles:
            wrong("leave the assistant turn out: the model writes it; `add_generation_prompt=True` opens it.")
        unknown = [r for r in roles if r not in ("system", "user")]
        if unknown:
            wrong(f"role {unknown[0]!r} is not one the chat template knows: use \"system\" and \"user\".")
        want_roles = ["system", "user"] if system_prompt else ["user"]
        if roles != want_roles:
            if not system_prompt and "system" in roles:
                wrong("there is no system prompt here (None): leave the system turn out.")
            if "system" not in roles:
                wrong("the system turn is missing: start with {\"role\": \"system\", ...} holding the system prompt.")
            wrong(f"want the turns {want_roles}; got {roles}.")
        if system_prompt and _text_of(got[0]["content"]) != system_prompt:
            wrong("the system turn must hold exactly `system_prompt` (as a text item, or a plain string).")
        content = got[-1]["content"]
        if isinstance(content, str):
            wrong("the user content is a plain string, so the model never sees the image: make it a list with an "
                  "image item and a text item.")
        if not isinstance(content, list) or not all(isinstance(c, dict) for c in content):
            wrong("the user content must be a list of items (dicts with a \"type\").")
        types = [c.get("type") for c in content]
        if "image_url" in types:
            wrong("that is the OpenAI format (`image_url` with a base64 data URL). Qwen's processor takes "
                  "{\"type\": \"image\", \"image\": <PIL image>}.")
        images = [c for c in content if c.get("type") == "image"]
        if not images:
            wrong("the user turn has no image item: add {\"type\": \"image\", \"image\": image}.")
        if len(images) > 1:
            wrong("one image item is enough; this user turn has several.")
        if not _same_image(images[0].get("image"), image):
            wrong("the image item must hold the image passed in, itself, under the key \"image\".")
        if _text_of(content) != prompt:
            wrong("the user turn needs exactly one text item holding `prompt`.")
        if len(content) != 2:
            wrong("the user content holds exactly two items: the image and the text.")


NOISY_ANSWER = '''Sure! The building you mean is near the top-left; the grid runs from (0, 0) to (1000, 1000).
```json
{"clicks": [
  {"x": 212, "y": 180, "label": 1},
  {"x": 260, "y": 215, "label": 1},
  {"x": 236, "y": 330, "label": 0},
]}
```
I hope these 3 clicks help!'''

_HIDDEN_ANSWERS = [
    '''Looking at the scene, the pool is right of centre [about 60% across].
```json
{"clicks": [{"x": 640, "y": 420, "label": 1}, {"x": 655, "y": 447, "label": 1},
            {"x": 700, "y": 300, "label": 0}, {"x": 12, "y": 998, "label": 0},]}
```
That makes 4 clicks in total (2 positive, 2 negative).''',
    'Here you go: {"clicks": [{"x": 0, "y": 1000, "label": 1}]} -- the field in the bottom-left corner (0, 1000).',
    '''```
{
  "clicks": [
    {"x": 505, "y": 93, "label": 1},
    {"x": 498, "y": 120, "label": 1},
  ],
}
```''',
    'There is no bridge in this image (I checked all 4 quarters).\n```json\n{"clicks": [], "reason": "no bridge"}\n```',
]


class NoisyClicks(FunctionExercise):
    name = "q2"
    title = "Clicks out of a noisy answer"
    function_name = "clicks_from_answer"
    forbidden = ("rs_helpers.refer.clicks:parse_clicks", "rs_helpers.refer.clicks:_parse")
    task = ("Small models rarely answer with bare JSON. Write `clicks_from_answer(text)` returning the clicks of a "
            "model answer as a list of `(x, y, label)` on the 0-1000 grid, with `re` and `json`, without "
            "`parse_clicks`. The answer holds one `{\"clicks\": [...]}` object, perhaps inside a code fence "
            "(`` ```json ... ``` ``), "
            "perhaps with trailing commas; the prose around it may mention other numbers and brackets, but no "
            "braces. The no-target answer `{\"clicks\": [], \"reason\": ...}` gives `[]`. Only the clicks count; "
            "any order is accepted. The check calls your function on answers of its own; afterwards compare it "
            "with `parse_clicks` on `noisy`.")
    setup = '''import json
import re

from rs_helpers.teaching.exercises.nb06 import NOISY_ANSWER

noisy = NOISY_ANSWER
print(noisy)'''
    hints = ("Two problems: the JSON sits among prose, and it is not quite JSON. Cut the object out first (where "
             "does it start, where does it end?), then see what `json.loads` complains about.",
             "The object starts at the first `{` and ends at the last `}` (`str.index`, `str.rindex`). A regular "
             "expression that matches a comma, optional whitespace and a closing `]` or `}` lets you drop trailing "
             "commas with `re.sub`, keeping the bracket.")
    hint_text = hints[0]
    solution_code = '''def clicks_from_answer(text):
    """The (x, y, label) grid clicks of the {"clicks": [...]} object in a model's answer."""
    block = text[text.index("{"):text.rindex("}") + 1]  # the JSON object, without the prose
    block = re.sub(r",\\s*([}\\]])", r"\\1", block)  # drop trailing commas
    return [(c["x"], c["y"], c["label"]) for c in json.loads(block)["clicks"]]

print(clicks_from_answer(noisy))
answer = clicks_from_answer'''

    def cases(self):
        return [(text,) for text in _HIDDEN_ANSWERS]

    def expected(self, text):
        from rs_helpers.refer.clicks import parse_clicks

        return np.array([[c.x, c.y, c.label] for c in parse_clicks(text)], float).reshape(-1, 3)

    def describe(self, args):
        text = repr(args[0])
        return f"`{self.function_name}({text if len(text) <= 90 else text[:60] + ' ... ' + text[-25:]})`"

    def verify(self, answer):
        try:
            return super().verify(answer)
        except Incorrect as error:
            if "JSONDecodeError" in str(error):
                raise Incorrect(f"{error}. `json.loads` reads clean JSON only: cut the prose off and drop the "
                                "trailing commas first.") from None
            raise

    def compare(self, got, want, args):
        def wrong(message):
            raise Incorrect(f"for {self.describe(args)}: {message}")

        try:
            clicks = as_clicks(got, "a list of clicks (x, y, label)")
        except Incorrect as error:
            wrong(str(error))
        weight = np.array([1.0, 1.0, 1e6])
        if len(clicks) == len(want) and same_points(clicks * weight, want * weight, 0.5):
            return
        if len(clicks) == len(want) and len(want) and same_points(clicks[:, :2], want[:, :2], 0.5):
            wrong("the places are right, the labels not: keep each click's label (1 positive, 0 negative).")
        if len(clicks) == len(want) and len(want) and same_points(clicks[:, 1::-1], want[:, :2], 0.5):
            wrong("x and y are swapped: give (x, y, label).")
        if len(clicks) > len(want):
            wrong(f"{len(clicks)} clicks: the answer holds {len(want)}; the others are numbers from the prose. "
                  "Read only the JSON object.")
        if len(clicks) < len(want):
            wrong(f"{len(clicks)} clicks: the answer holds {len(want)}.")
        wrong("not the clicks of the JSON object.")


# Qwen3-VL's processor: 16-pixel patches, 2 x 2 merged into one token; images between these sizes are only rounded
FACTOR, MIN_PIXELS, MAX_PIXELS = 32, 256 * 256, 4096 * 4096


class ImageTokens(FunctionExercise):
    name = "q3"
    title = "What an image costs"
    function_name = "image_tokens"
    task = ("Qwen3-VL cuts the image into 16 x 16 pixel patches and merges each 2 x 2 group of patches into **one "
            "token**, so one `<|image_pad|>` token stands for a 32 x 32 pixel block. First its processor resizes "
            "the image so that both sides are multiples of 32: each side is **rounded to the nearest multiple of "
            "32** (for images between 256 x 256 and 4096 x 4096 pixels in area, as here, that is all it does). "
            "Write `image_tokens(width, height)` returning how many image tokens such an image costs. The check "
            "calls it on sizes of its own.")
    setup = '''width, height = 640, 480'''
    hints = ("Two steps: the size the processor resizes the image to, then how many 32 x 32 blocks that size holds.",
             "A side of `s` pixels becomes `s / 32` blocks rounded to the nearest whole number (650 px: 20 blocks, "
             "660 px: 21); the "
             "tokens are the blocks along the width times the blocks along the height.")
    hint_text = hints[0]
    solution_code = '''def image_tokens(width, height):
    """The number of <|image_pad|> tokens Qwen3-VL spends on a width x height image."""
    return round(width / 32) * round(height / 32)

print(image_tokens(width, height), "tokens for", width, "x", height)
answer = image_tokens'''

    def cases(self):
        return [(1000, 700), (500, 1990), (300, 250), (4000, 3000), (1024, 1024)]

    def expected(self, width, height):
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        h, w = smart_resize(height, width, factor=FACTOR, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
        return (h // FACTOR) * (w // FACTOR)

    def compare(self, got, want, args):
        import math

        w, h = args
        try:
            value = as_number(got, "one number of tokens")
        except Incorrect as error:
            raise Incorrect(f"for {self.describe(args)}: {error}") from None
        if value == want:
            return
        candidates = [
            (w * h, "that is the number of pixels; one token covers a 32 x 32 block."),
            ((w // 32) * (h // 32), "rounding down: the processor rounds each side to the nearest multiple of 32."),
            (math.ceil(w / 32) * math.ceil(h / 32), "rounding up: the processor rounds each side to the nearest "
                                                    "multiple of 32."),
            (round(w / 16) * round(h / 16), "that counts the 16 x 16 patches before merging: every 2 x 2 patches "
                                            "make one token."),
            (w * h / 32, "a token covers a 32 x 32 block (1024 pixels), not 32 pixels."),
            (w * h / 32 ** 2, "round each side to a multiple of 32 first: a token is a whole 32 x 32 block."),
            (round(w / 32) + round(h / 32), "multiply the blocks along the two sides, do not add them."),
            (round(w / 28) * round(h / 28), "28-pixel tokens are Qwen2-VL / Qwen2.5-VL (14-pixel patches); Qwen3-VL "
                                            "uses 16-pixel patches, 32 pixels per token."),
            (w * h / 14 ** 2, "14-pixel patches without merging are Qwen2-VL's; Qwen3-VL: 32 x 32 pixels per token."),
        ]
        for candidate, message in candidates:
            if abs(value - candidate) <= 0.5 and candidate != want:
                raise Incorrect(f"for {self.describe(args)} it returned {value:g}: {message}")
        raise Incorrect(f"for {self.describe(args)} it returned {value:g}: not the number of 32 x 32 blocks of a "
                        f"{w} x {h} image rounded to multiples of 32.")


q1 = ChatMessages()
q2 = NoisyClicks()
q3 = ImageTokens()
EXERCISES = [q1, q2, q3]
