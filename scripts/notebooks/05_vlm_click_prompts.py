# %% [markdown]
# # 05 · A vision-language model writes click prompts for SAM
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. explain why the generative branch asks a vision-language model (VLM) for *clicks* rather than for a mask;
# 2. read the prompt and the one click format (`{"clicks": [{"x": .., "y": .., "label": 1}]}` on a 0-1000 grid);
# 3. ask GPT-5 through the `openai` client (or replay stored answers offline), parse its answer and turn the clicks into a SAM mask;
# 4. score referring / reasoning segmentation with gIoU, cIoU and P@0.5..0.9.
#
# **Prerequisites.** Notebook 00 (data, profiles); notebook 01 helps (SAM basics).
# An OpenAI API key is optional: without one the notebook replays stored answers.
#
# **Time.** About 20 minutes (a few cents of API use with a key), plus 15 for the three exercises.
#
# {{COMPUTE}}

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings
# Every cost knob sits here. `queries` is how many of the 21 shipped queries the evaluation runs.

# %%
from rs_helpers.teaching import pick

S = pick(
    full=dict(openai_model="gpt-5", n_clicks=6, sam="vit_l", queries=21, example=1, figure_size=5),
    # classroom: real weights, laptop-sized settings (SAM ViT-B, 16 x 16 grid, 512 px)
    classroom=dict(sam="vit_b", queries=6),
    tiny=dict(queries=3, figure_size=4),
)
S

# %% [markdown]
# ## 1. Why clicks and not masks?
# A sentence such as *"the largest building in the bottom-left quarter"* needs two skills:
# **understanding** (which object is meant: reading, counting, comparing, reasoning about the
# scene) and **delineation** (its exact outline). Large VLMs are good at the first and poor at the
# second: they cannot output pixels, and image-generating models asked to "paint the mask"
# (GPT-Image-1 in the paper) draw outlines that drift from the real object.
# SAM has the opposite profile: it follows boundaries precisely but does not read text.
#
# So the generative branch splits the work. The VLM answers with a handful of **click prompts**
# (a few dozen output tokens), and frozen SAM turns all of them into **one mask**. The paper found
# this beats asking an image model for the mask directly, and it needs no new decoder: the same
# recipe works zero-shot with GPT-5 and, after LoRA tuning, with a 2B-parameter Qwen3-VL
# (notebooks 06 to 08).

# %% [markdown]
# ## 2. The prompt
# The prompt names the task, the 0-1000 grid (x from the left edge, y from the top edge, relative
# to the image size, so it does not matter how large the image is), the labels (1 = on the target,
# 0 = exclude) and the exact JSON to write. Reasoning questions get the same instructions with a
# line asking the model to work out which region answers the question.
# (The paper does not publish its prompt wording; this one is ours.)
#
# *Try it:* build the prompt for a reasoning question with `task="reasoning"`.

# %%
from rs_helpers.refer import SYSTEM_PROMPT, build_prompt
from rs_helpers.samples import load_referring

queries = load_referring()
query = queries[S["example"]]
image, target = query.load()
prompt = build_prompt(query.text, task=query.task, n_clicks=S["n_clicks"])
print("SYSTEM:", SYSTEM_PROMPT, "\n")
print("USER (plus the image):\n" + prompt)

# %% [markdown]
# ## 3. Asking GPT-5
# `make_backend("openai:gpt-5")` sends the image as a base64 PNG data URL with the prompt through
# the Chat Completions API. The same code talks to any OpenAI-compatible server (vLLM, Ollama):
# pass `base_url=` (or `--base-url` on the command line). The client retries rate limits (429)
# and server errors (5xx) with exponential backoff; token usage is recorded per call.
#
# GPT-5 is a *reasoning* model: it spends completion tokens thinking before it writes the answer.
# `make_backend("openai:gpt-5", request_options={"reasoning_effort": "low"})` makes it quicker and
# cheaper (`--reasoning-effort low` on the command line). An empty answer with
# `finish_reason == "length"` means the thinking used up the token limit: raise
# `max_completion_tokens` (`--max-new-tokens`).
#
# **Without `OPENAI_API_KEY`** the notebook replays answers stored in
# `data/stored_answers/`. Read their label: they are **hand-written example answers in the GPT-5
# format, NOT model output** (made from the ground-truth masks, so they are better than GPT-5
# would do). They let the notebook run offline and in CI; they say nothing about GPT-5.
#
# On Colab: add the key under *Secrets* (the key icon on the left, with notebook access on), then
# run this before the next cell:
#
# ```python
# import os
# from google.colab import userdata
# os.environ["OPENAI_API_KEY"] = userdata.get("OPENAI_API_KEY")
# ```

# %%
import os

from rs_helpers.refer import ReplayBackend
from rs_helpers.refer import make_backend

if os.environ.get("OPENAI_API_KEY"):
    backend = make_backend(f"openai:{S['openai_model']}")
    print("asking", backend.name, "at", backend.base_url or "api.openai.com")
else:
    backend = ReplayBackend.from_file()
    print("No OPENAI_API_KEY: replaying stored answers.")
    print(">>>", backend.label.upper(), "<<<")

answer = backend.ask(image.rgb, prompt)
print("\nquery:", query.text)
print("raw answer:\n" + answer.text)
print("usage:", answer.usage, "| finish reason:", answer.finish_reason)

# %% [markdown]
# ## 4. Parsing the answer
# Models drift from the requested format: JSON inside code fences or a sentence, trailing commas,
# Qwen's native `{"point_2d": [x, y]}` or `(x, y)` forms. One parser reads them all and rejects
# what it cannot use (no points, an empty list, coordinates off the grid, words instead of
# numbers) with an error that quotes the answer. Then the grid clicks become pixel clicks.

# %%
from rs_helpers.refer import ClickParseError, parse_clicks, to_pixels

clicks = parse_clicks(answer.text, max_clicks=S["n_clicks"])
pixel_clicks = to_pixels(clicks, image.width, image.height)
for grid, pixel in zip(clicks, pixel_clicks):
    print(f"grid ({grid.x:4d}, {grid.y:4d}) -> pixel ({pixel.x:4d}, {pixel.y:4d})  label {grid.label}")

# %% [markdown]
# The same parser on some drifting answers, and on answers it must refuse:
#
# *Try it:* write an answer of your own and see what the parser makes of it.

# %%
examples = [
    'Sure!\n```json\n{"clicks": [{"x": 120, "y": 640, "label": 1},]}\n```',
    '[{"point_2d": [120, 640], "label": "building"}]',
    "The target is at (120, 640) and (150, 655).",  # bare pairs carry no label: positive
    '{"clicks": []}',
    '{"clicks": [{"x": 1200, "y": 640, "label": 1}]}',
    "I cannot find a building in this image.",
]
for text in examples:
    try:
        print("OK    ", parse_clicks(text))
    except ClickParseError as error:
        print("REFUSE", error)

# %% [markdown]
# ## 5. SAM from the clicks
# All clicks go to SAM at once (`SamPredictor.predict` with positive label 1 and negative label 0).
# One click is ambiguous (a roof, the building, the block?), so for one click SAM proposes three
# masks and we keep the one with the highest predicted IoU; from two clicks on, the prompt is
# specific enough and SAM returns a single mask, as segment-anything advises (`multimask="auto"`,
# the default; `"always"` keeps the best of three, `"never"` asks for one mask). If the model
# answers that there is no target (`{"clicks": [], "reason": ...}`), SAM is skipped and the mask
# is empty. Green stars: positive clicks; red: negative; the target is drawn in gold (so the green
# stars stay visible on it), SAM's mask in blue.

# %% tags=["gallery"]
from rs_helpers.models import load_sam
from rs_helpers.teaching.figures import plot_clicks_on_target
from rs_helpers.profile import is_tiny
from rs_helpers.evaluation import iou
from rs_helpers.sam import mask_from_clicks

sam = load_sam(S["sam"])
result = mask_from_clicks(sam, image.rgb, pixel_clicks)
coords = [(c.x, c.y) for c in pixel_clicks]
labels = [c.label for c in pixel_clicks]

plot_clicks_on_target(image.rgb, target, result.mask, coords, labels,
                      mask_title=f"SAM mask (IoU {iou(result.mask, target):.2f})", size=S["figure_size"]);
if is_tiny():
    print("TINY PROFILE: SAM is random, so this mask is MEANINGLESS (it only exercises the code).")

# %% [markdown]
# ### Explore: place clicks yourself
# Start from the model's clicks above. Move the sliders (x, y in pixels; the yellow cross), pick
# positive or negative and press *add click*; *clear* removes them all. Or paste a click answer in
# the model format (0-1000 grid) into the text box: it goes through the same parser, and an
# answer it refuses shows the parser's message. The image is embedded once, so each new click
# costs only a decoder pass. The defaults are drawn at once, so "Run all" does not wait.
#
# *Try it:* put one negative click on a neighbouring object the mask spills into.

# %%
from rs_helpers.teaching import click_explorer

click_explorer(sam, image.rgb, clicks=pixel_clicks)

# %% [markdown]
# ## 6. Scoring on the sample queries
# `evaluate_refer` runs every query through prompt -> VLM -> parser -> SAM and scores it:
#
# * **gIoU**: the mean of the per-query IoUs (every query weighs the same; RRSIS-D papers call it mIoU);
# * **cIoU**: total intersection over total union (large targets weigh more);
# * **P@t**: the share of queries with IoU at least t.
#
# A query whose answer has no usable clicks counts as IoU 0 and is listed. For reference, the paper
# reports GPT-5 zero-shot at 24.9 gIoU on RRSIS-D test and 47.4 on EarthReason (LoRA-tuned Qwen3-VL-2B:
# 67.6 and 72.7). The 21 shipped queries are template-made from coarse labels: a sanity check, not
# a benchmark.

# %%
from rs_helpers.evaluation import evaluate_refer

run = evaluate_refer(queries[: S["queries"]], backend, sam, n_clicks=S["n_clicks"], dataset="samples",
                     sam_name=S["sam"])
if isinstance(backend, ReplayBackend):
    print(">>>", backend.label.upper(), "<<< (clicks read off the ground truth: an optimistic reference)")
print(run.table())
for record in run.records:
    print(f"{record['iou']:.2f}  {record['text']}")

# %% [markdown]
# ## 7. The same from the command line
# `rs-seg refer` does all of the above for one image and writes the mask (a 0/255 PNG, or a
# GeoTIFF that keeps the CRS for `.tif`) and optionally the clicks in pixels:
#
# ```
# rs-seg refer IMAGE --text "the largest building in the top-left" --vlm openai:gpt-5 \
#        --out mask.png --clicks-out clicks.json
# rs-seg eval refer --dataset samples --vlm openai:gpt-5 --out results.json
# ```
# An answer with no usable clicks exits with code 4 and prints the raw answer. Here we call the
# command in-process, with the same backend choice as above.

# %%
import json
import tempfile
from pathlib import Path

from rs_helpers.cli import main

vlm = f"openai:{S['openai_model']}" if os.environ.get("OPENAI_API_KEY") else "replay"
out_dir = Path(tempfile.mkdtemp())
code = main(["refer", str(query.image), "--text", query.text, "--task", query.task, "--vlm", vlm,
             "--sam", S["sam"], "--out", str(out_dir / "mask.png"), "--clicks-out", str(out_dir / "clicks.json")])
print("exit code", code, "| clicks file (pixels):", json.loads((out_dir / "clicks.json").read_text()))

# %% [markdown]
# ## Exercises
# Each exercise has a task, a cell for your answer (tagged `solution`: in the student copy it is a stub that
# raises `NotImplementedError` until you replace it) and a check. Most ask for a function: the check runs it
# on inputs you have not seen, so it must work in general, not only on the example. `q1.hint()` gives a nudge,
# a second call a closer hint; `q1.solution()` shows our solution.

# %%
from rs_helpers.teaching.exercises.nb05 import q1, q2, q3

# %% [markdown]
# **Exercise 1 · Write the click prompt.** Write `click_prompt(query, n_clicks)` returning the user prompt
# that asks a VLM for click prompts on the region `query` describes, without `build_prompt`. A model can only
# follow what the prompt says, and our parser reads only one format, so the prompt must hold: the **query in
# double quotes** (a double quote inside the query becomes a single quote, or it would end the quotation
# early); **up to `n_clicks` clicks**; the **grid**: integers on a 0-1000 grid relative to the image, x from
# the **left** edge, y from the **top** edge (the image size is not needed: the grid is relative); the
# **labels**: 1 for a positive click on the target, 0 for a negative one on something to exclude; **JSON
# only**, shown as one example answer with a positive and a negative click, `{"clicks": [{"x": .., "y": ..,
# "label": 1}, ...]}`; and the one answer when nothing matches, `{"clicks": [], "reason": "..."}`. The check
# asks your function for prompts of its own and runs our parser on what a model that copies your example would
# answer.

# %%
import json

from rs_helpers.refer import parse_clicks
from rs_helpers.teaching.exercises.nb05 import EXAMPLE_QUERY

query, n_clicks = EXAMPLE_QUERY

# %% tags=["solution"]
def click_prompt(query, n_clicks):
    """The user prompt asking a VLM for up to n_clicks clicks on the region that query describes."""
    quoted = query.replace('"', "'")  # a double quote inside would end the quotation
    example = json.dumps({"clicks": [{"x": 512, "y": 300, "label": 1}, {"x": 540, "y": 330, "label": 1},
                                     {"x": 610, "y": 300, "label": 0}]})
    no_target = json.dumps({"clicks": [], "reason": "<why, in a few words>"})
    return (f'Find the region that this description refers to: "{quoted}"\n'
            f"Write up to {n_clicks} clicks for a segmentation model (SAM).\n"
            "Coordinates are integers on a 0-1000 grid relative to the image: x from 0 (left edge) to 1000 "
            "(right edge), y from 0 (top edge) to 1000 (bottom edge).\n"
            "Use label 1 for a positive click inside the target and label 0 for a negative click on "
            "something nearby that must be excluded.\n"
            f"Answer with JSON only, exactly in this form:\n{example}\n"
            f"If nothing in the image matches, answer exactly in this form:\n{no_target}")

print(click_prompt(query, n_clicks))
answer = click_prompt

# %%
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · From a click answer to pixel coordinates.** A model answered `answer_text` in the asked-for
# JSON, `{"clicks": [...]}` (the no-target answer has an empty list). Its clicks are on the 0-1000 grid: x
# from the left edge, y from the top edge, **0 is the first pixel and 1000 the last one**. Write
# `to_pixel_clicks(answer_text, width, height)` returning the clicks in **pixels** of a `width` x `height`
# image, as a list of `(x, y, label)` with integer x (column) and y (row). Use `json`, without `parse_clicks`,
# `to_pixels` or `grid_to_pixel`. Any order is accepted; a pixel off by one from rounding is fine. The check
# calls your function on answers and image sizes of its own.

# %%
import json

from rs_helpers.teaching.exercises.nb05 import EXAMPLE_ANSWER, EXAMPLE_SIZE

answer_text = EXAMPLE_ANSWER
width, height = EXAMPLE_SIZE
print(answer_text, "| image", width, "x", height)

# %% tags=["solution"]
def to_pixel_clicks(answer_text, width, height):
    """The clicks of a grid answer as pixel (x, y, label) tuples of a width x height image."""
    clicks = json.loads(answer_text)["clicks"]
    return [(round(c["x"] * (width - 1) / 1000), round(c["y"] * (height - 1) / 1000), c["label"]) for c in clicks]

print(to_pixel_clicks(answer_text, width, height))
answer = to_pixel_clicks

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# **Exercise 3 · gIoU and cIoU.** For N queries, `intersections[i]` and `unions[i]` are the pixel counts of
# prediction AND target and prediction OR target. A failed query (no usable clicks: an empty prediction) has
# intersection 0. Write `giou_ciou(intersections, unions)` returning **(gIoU, cIoU)** as fractions: gIoU is
# the mean of the per-query IoUs, cIoU the total intersection over the total union. The check calls it on
# counts of its own.

# %%
import numpy as np

from rs_helpers.teaching.exercises.nb05 import example_counts

intersections, unions = example_counts()
print("intersections", intersections, "| unions", unions)

# %% tags=["solution"]
def giou_ciou(intersections, unions):
    """(gIoU, cIoU) of queries with these pixel intersections and unions."""
    inter, union = np.asarray(intersections, float), np.asarray(unions, float)
    return float(np.mean(inter / union)), float(inter.sum() / union.sum())

print(giou_ciou(intersections, unions))
answer = giou_ciou

# %%
q3.check(answer)
# q3.hint()
# q3.solution()

# %% [markdown]
# ### More to explore
# 1. Ask for 2, 4 and 6 clicks (`n_clicks`). Does gIoU rise with more clicks, as the paper reports for the tuned model?
# 2. Compare `multimask=True` and `multimask=False` in `mask_from_clicks`.
# 3. With a key: which queries does GPT-5 get wrong? Look at its clicks on the image.

# %% [markdown]
# ## Summary
# * The VLM decides *where* (a few clicks on a 0-1000 grid), SAM decides *the outline*.
# * One click format and one tolerant parser serve every model; unusable answers fail loudly.
# * gIoU averages per-query IoU, cIoU pools pixels; failures count as IoU 0.
#
# ## What's next
# Notebook 06 runs the same pipeline with Qwen3-VL on your own machine; notebook 07 simulates the clicks to
# learn from, and notebook 08 tunes Qwen3-VL on them with LoRA.
