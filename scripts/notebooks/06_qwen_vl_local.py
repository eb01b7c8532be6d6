# %% [markdown]
# # 06 · Qwen3-VL on your own machine as the click writer
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. load Qwen3-VL-2B-Instruct locally (device and dtype chosen for you) behind the same interface as GPT-5;
# 2. read the chat template: where the image, the prompt and the answer go, and how many tokens each costs;
# 3. generate an answer greedily with a token limit and turn it into a SAM mask;
# 4. compare two click writers on the sample queries.
#
# **Prerequisites.** Notebook 05 (the prompt, the click format, the parser, the metrics).
#
# **Time.** About 20 minutes, plus 15 for the three exercises. The full model is a ~4.5 GB
# download and wants a GPU (a Colab T4 is enough); on a CPU each answer takes a minute or more.
#
# {{COMPUTE}}

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings

# %%
from rs_helpers.teaching import pick

S = pick(
    full=dict(model_id="Qwen/Qwen3-VL-2B-Instruct", max_new_tokens=256, max_pixels=1024 * 1024,
              n_clicks=6, sam="vit_l", queries=21, example=1, figure_size=5),
    # classroom: real weights, laptop-sized settings (SAM ViT-B, 16 x 16 grid, 512 px)
    classroom=dict(sam="vit_b", queries=3, max_new_tokens=128, max_pixels=512 * 512),
    tiny=dict(max_new_tokens=12, max_pixels=128 * 128, queries=2),
)
S

# %% [markdown]
# ## 1. Loading the model
# `make_backend("qwen:MODEL_ID_OR_DIR")` loads the model and its processor (tokenizer, image
# processor, chat template) through `transformers`, on CUDA, Apple MPS or the CPU, in bfloat16
# where the GPU supports it. A downloaded model folder works in place of the hub id, and
# `adapter=` adds a LoRA adapter trained in notebook 08. Qwen2.5-VL models load the same way.
#
# Under the tiny profile this is a 2-layer Qwen3-VL with random weights: it shows the mechanics,
# and its answers are gibberish.

# %%
from rs_helpers.refer import make_backend

qwen = make_backend(f"qwen:{S['model_id']}", max_new_tokens=S["max_new_tokens"], max_pixels=S["max_pixels"])
n_params = sum(p.numel() for p in qwen.model.parameters())
first = next(qwen.model.parameters())
print(f"{qwen.name}: {n_params / 1e6:.1f} M parameters, {first.dtype} on {first.device}")

# %% [markdown]
# ## 2. The chat template
# The prompt is the one from notebook 05. The processor's chat template wraps it in Qwen's chat
# format: a system turn, a user turn holding the image and the text, and the header of the
# assistant turn where the model starts writing. The image becomes a run of `<|image_pad|>`
# tokens (for Qwen3-VL one per 32 x 32 pixel block), which is why `max_pixels` is a cost knob.
# LoRA training (notebook 08) uses exactly this template, with the answer appended.

# %%
from rs_helpers.refer import build_prompt
from rs_helpers.samples import load_referring
from rs_helpers.refer import build_messages, to_pil

queries = load_referring()
query = queries[S["example"]]
image, target = query.load()
prompt = build_prompt(query.text, task=query.task, n_clicks=S["n_clicks"])

messages = build_messages(to_pil(image.rgb, S["max_pixels"]), prompt, qwen.system_prompt)
text = qwen.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
print(text)  # the processor expands the one <|image_pad|> placeholder into the image's tokens

pad = "<|image_pad|>"

inputs = qwen.inputs(image.rgb, prompt)
n_image = int((inputs["input_ids"] == qwen.processor.tokenizer.convert_tokens_to_ids(pad)).sum())
print(f"\n{inputs['input_ids'].shape[1]} prompt tokens, {n_image} of them for the image")

# %% [markdown]
# ## 3. Generation
# Greedy decoding (no sampling, so the same input gives the same answer) with a limit of
# `max_new_tokens`. Six clicks in the requested JSON take about 100 tokens. Qwen3-VL was trained to
# ground on a 0-1000 grid, which is why the suite uses that grid for every backend; when it drifts
# to its native `{"point_2d": [x, y]}` form the parser still reads it.

# %%
import time

start = time.perf_counter()
answer = qwen.ask(image.rgb, prompt)
print(f"{time.perf_counter() - start:.1f} s, usage {answer.usage}")
print("raw answer:", repr(answer.text))

# %% [markdown]
# ## 4. From the answer to a mask
# The pipeline function `refer` chains prompt, model, parser and SAM. An answer without usable
# clicks raises `NoClicksError` carrying the raw answer (exit code 4 on the command line):
# expect that under the tiny profile.

# %% tags=["gallery"]
import matplotlib.pyplot as plt

from rs_helpers.errors import NoClicksError
from rs_helpers.models import load_sam
from rs_helpers.teaching import show_image, show_mask, show_points
from rs_helpers.profile import is_tiny
from rs_helpers.refer import refer
from rs_helpers.evaluation import iou

sam = load_sam(S["sam"])
try:
    result = refer(image, query.text, qwen, sam=sam, task=query.task, n_clicks=S["n_clicks"])
except NoClicksError as error:
    print("no usable clicks:", error)
    print("raw answer:", repr(error.raw_answer))
else:
    ax = show_image(image.rgb, title=f"{query.text}\nIoU {iou(result.mask, target):.2f}")
    show_mask(result.mask, ax)
    show_points([(c.x, c.y) for c in result.pixel_clicks], [c.label for c in result.pixel_clicks], ax)
if is_tiny():
    print("TINY PROFILE: random Qwen and SAM; answers and masks are MEANINGLESS.")

# %% [markdown]
# ## 5. Comparing click writers on the samples
# The evaluation runs any backend. Here: local Qwen against GPT-5 when `OPENAI_API_KEY` is set,
# otherwise against the stored **hand-written example answers (NOT model output; clicks read off
# the ground truth)**, an optimistic reference of what good clicks give with this SAM.
# The paper's numbers on the real benchmarks: zero-shot GPT-5 24.9 gIoU on RRSIS-D test; Qwen3-VL-2B
# after LoRA tuning 67.6. Untuned Qwen3-VL-2B is not reported; expect it well below the tuned model.
#
# *Try it:* set `queries` to 21 in the settings (with a GPU) and look at which queries each model fails.

# %%
import os

from rs_helpers.evaluation import compare_table, evaluate_refer
from rs_helpers.refer import ReplayBackend

other = make_backend("openai:gpt-5") if os.environ.get("OPENAI_API_KEY") else ReplayBackend.from_file()
subset = queries[: S["queries"]]
runs = [evaluate_refer(subset, backend, sam, n_clicks=S["n_clicks"], dataset="samples", sam_name=S["sam"])
        for backend in (qwen, other)]
if isinstance(other, ReplayBackend):
    print(">>>", other.label.upper(), "<<<")
print(compare_table(runs))

# %% [markdown]
# ## 6. On the command line
# ```
# rs-seg refer IMAGE --text "the largest building in the top-left" --vlm qwen:Qwen/Qwen3-VL-2B-Instruct --out mask.png
# rs-seg refer IMAGE --text "..." --vlm qwen:./my-qwen-folder --adapter ./my-lora --out mask.png
# rs-seg eval refer --dataset rrsisd --root /data/RRSIS-D --vlm qwen:Qwen/Qwen3-VL-2B-Instruct --limit 200
# ```

# %% [markdown]
# ## Exercises
# Each exercise has a task, a cell for your answer (tagged `solution`: in the student copy it is a stub that
# raises `NotImplementedError` until you replace it) and a check. Most ask for a function: the check runs it
# on inputs you have not seen, so it must work in general, not only on the example. `q1.hint()` gives a nudge,
# a second call a closer hint; `q1.solution()` shows our solution.

# %%
from rs_helpers.teaching.exercises.nb06 import q1, q2, q3

# %% [markdown]
# **Exercise 1 · The chat messages for Qwen.** Write `chat_messages(image, prompt, system_prompt)` returning
# the `messages` list that Qwen's processor turns into the chat, without `build_messages`: a **system** turn
# holding `system_prompt` (left out when `system_prompt` is None), then one **user** turn whose content is a
# list with the **image** item `{"type": "image", "image": image}` and the **text** item with `prompt`. Each
# turn is a dict with `"role"` and `"content"`. No assistant turn: the processor opens it
# (`add_generation_prompt=True`). The check calls your function with images and prompts of its own.

# %%
from rs_helpers.teaching.exercises.nb06 import chat_inputs

image, prompt, system_prompt = chat_inputs()

# %% tags=["solution"]
def chat_messages(image, prompt, system_prompt):
    """The chat for Qwen's processor: an optional system turn, then one user turn with the image and the prompt."""
    messages = []
    if system_prompt:
        messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    messages.append({"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}]})
    return messages

print(chat_messages(image, prompt, system_prompt))
answer = chat_messages

# %%
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · Clicks out of a noisy answer.** Small models rarely answer with bare JSON. Write
# `clicks_from_answer(text)` returning the clicks of a model answer as a list of `(x, y, label)` on the 0-1000
# grid, with `re` and `json`, without `parse_clicks`. The answer holds one `{"clicks": [...]}` object, perhaps
# inside a code fence (`` ```json ... ``` ``), perhaps with trailing commas; the prose around it may mention
# other numbers and brackets, but no braces. The no-target answer `{"clicks": [], "reason": ...}` gives `[]`.
# Only the clicks count; any order is accepted. The check calls your function on answers of its own;
# afterwards compare it with `parse_clicks` on `noisy`.

# %%
import json
import re

from rs_helpers.teaching.exercises.nb06 import NOISY_ANSWER

noisy = NOISY_ANSWER
print(noisy)

# %% tags=["solution"]
def clicks_from_answer(text):
    """The (x, y, label) grid clicks of the {"clicks": [...]} object in a model's answer."""
    block = text[text.index("{"):text.rindex("}") + 1]  # the JSON object, without the prose
    block = re.sub(r",\s*([}\]])", r"\1", block)  # drop trailing commas
    return [(c["x"], c["y"], c["label"]) for c in json.loads(block)["clicks"]]

print(clicks_from_answer(noisy))
answer = clicks_from_answer

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# **Exercise 3 · What an image costs.** Qwen3-VL cuts the image into 16 x 16 pixel patches and merges each 2 x
# 2 group of patches into **one token**, so one `<|image_pad|>` token stands for a 32 x 32 pixel block. First
# its processor resizes the image so that both sides are multiples of 32: each side is **rounded to the
# nearest multiple of 32** (for images between 256 x 256 and 4096 x 4096 pixels in area, as here, that is all
# it does). Write `image_tokens(width, height)` returning how many image tokens such an image costs. The check
# calls it on sizes of its own.

# %%
width, height = 640, 480

# %% tags=["solution"]
def image_tokens(width, height):
    """The number of <|image_pad|> tokens Qwen3-VL spends on a width x height image."""
    return round(width / 32) * round(height / 32)

print(image_tokens(width, height), "tokens for", width, "x", height)
answer = image_tokens

# %%
q3.check(answer)
# q3.hint()
# q3.solution()

# %% [markdown]
# ### More to explore
# 1. Halve `max_pixels`. How many image tokens remain, how much faster is an answer, does IoU change?
# 2. Try `Qwen/Qwen2.5-VL-3B-Instruct` as `model_id`.
# 3. Read the raw answers of the failed queries: is the format wrong, or the place?

# %% [markdown]
# ## Summary
# * A local Qwen-VL sits behind the same `ask(image, prompt)` interface as GPT-5; the prompt,
#   parser, SAM step and metrics do not change.
# * The chat template puts the image tokens and the prompt in a user turn; the model writes the
#   assistant turn greedily, up to a token limit.
# * An untuned 2B model is a weak click writer; notebook 08 tunes it.
#
# ## What's next
# Notebook 07 simulates clicks from ground-truth masks, and notebook 08 LoRA-tunes Qwen3-VL to write them.
