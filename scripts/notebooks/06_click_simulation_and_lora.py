# %% [markdown]
# # 06 · Click simulation and LoRA tuning of Qwen-VL
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. turn a ground-truth mask into the clicks SAM needs to reproduce it (click simulation, SAM in the loop);
# 2. build a LoRA training file of (image, text, target answer) lines with `rs-seg lora-data`;
# 3. say what LoRA trains in Qwen3-VL and count its parameters with `peft`;
# 4. run a short LoRA training with `transformers`' Trainer and compare the model before and after on held-out samples;
# 5. plan a real run on a Colab T4.
#
# **Prerequisites.** Notebook 04 (the click format, the prompt, gIoU) and notebook 05 (Qwen3-VL, the chat template).
#
# **Time.** About 20 minutes to read and run on a CPU under the tiny profile, plus 15 for the three
# exercises. With real weights, the click simulation takes seconds per sample on a GPU (minutes on a
# CPU), and training needs a GPU.

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings
# Every cost knob is here. Under the tiny profile (CI) the models are random, the data is three
# queries on two 256 px images and training is four steps: **every number below is then meaningless**.
# The full column is a walk-through on the 21 shipped queries, far too few for a useful adapter; a
# real run uses RRSIS-D or EarthReason (section 9).

# %%
from rs_helpers.teaching import pick

S = pick(
    full=dict(sam="vit_l", n_clicks=6, example="wv_1m_2014-m_3708035_ne_17_1-2_field_largest",
              sample_ids=None, holdout=0.3, base="Qwen/Qwen3-VL-2B-Instruct", rank=32, alpha=64,
              dropout=0.05, epochs=3, lr=1e-4, grad_accum=8, max_steps=None, logging_steps=5,
              save_steps=100, max_pixels=1024 * 1024, max_new_tokens=256, work_dir="runs/06_lora",
              figure_size=3.2),
    tiny=dict(sample_ids=["wv_1m_2014-m_3708035_ne_17_1-2_road", "wv_1m_2014-m_3708035_ne_17_1-2_field_largest",
                          "wv_1m_2014-m_3708035_ne_17_1-0_forest"],
              holdout=0.5, rank=4, alpha=8, lr=1e-3, grad_accum=1, max_steps=4, logging_steps=1, save_steps=2,
              max_pixels=64 * 64, max_new_tokens=16, work_dir=None),
)
S

# %%
import tempfile
from pathlib import Path

from rs_helpers.profile import is_tiny

WORK = Path(S["work_dir"] or tempfile.mkdtemp(prefix="rs_seg_06_"))
WORK.mkdir(parents=True, exist_ok=True)
print("outputs go to", WORK.resolve())
TINY = "TINY PROFILE: random models, MEANINGLESS" if is_tiny() else None
if TINY:
    print("TINY PROFILE: random SAM and Qwen; every click, mask, loss and score below is MEANINGLESS.")

# %% [markdown]
# ## 1. Why simulate clicks?
# In notebooks 04 and 05 a vision-language model writes click prompts and SAM turns them into a
# mask. To *teach* a model to write good clicks we need target clicks, but the datasets give masks.
# The method makes the targets by simulating a careful annotator with frozen SAM in the loop
# ([`docs/method.md`](../docs/method.md), "Click simulation"):
#
# 1. the first click is positive, at the point deepest inside the mask (the maximum of its distance transform);
# 2. SAM segments from the clicks so far;
# 3. the next click goes to the deepest point of the larger error: positive on the part SAM missed
#    (false negatives), negative on the part it wrongly added (false positives);
# 4. repeat until 6 clicks. The ordered list is the answer the model learns to write.
#
# The targets are thus the clicks *this SAM* needs, not clicks a person would choose.

# %%
import matplotlib.pyplot as plt

from rs_helpers.teaching import plot_distance_maps
from rs_helpers.samples import load_referring

queries = load_referring()
query = next(q for q in queries if q.id == S["example"])
image, target = query.load()
print(f"[{query.task}] {query.text} | {image.width} x {image.height} px, target {int(target.sum())} px")
plot_distance_maps(target, size=S["figure_size"], title=TINY);

# %% [markdown]
# The map above is the distance of each target pixel to the nearest non-target pixel; the star is
# its maximum, the first click. **Outside the image counts as background**, so a target cut off by
# the image border is bounded there too and the click keeps away from the border. Ties go to the
# first pixel in reading order (top row first), so the clicks are deterministic.

# %% [markdown]
# ## 2. SAM in the loop, click by click
# `simulate_clicks(gt, predict, n_clicks)` takes any `predict(points, labels) -> mask`;
# `sam_predictor_fn(sam, image)` embeds the image once and returns SAM as such a function.
# Each panel shows SAM's mask after that click (blue), the target outline (yellow) and the clicks.
# The loop stops early when SAM's mask equals the target (nothing left to correct).

# %% tags=["gallery"]
from rs_helpers.teaching import plot_click_simulation
from rs_helpers.refer import sam_predictor_fn, simulate_clicks
from rs_helpers.models import load_sam

sam = load_sam(S["sam"])
sim = simulate_clicks(target, sam_predictor_fn(sam, image.rgb), n_clicks=S["n_clicks"], keep_masks=True)
plot_click_simulation(image.rgb, target, sim, size=S["figure_size"], title=TINY);

# %%
print(f"stopped: {sim.stop_reason}")
print(" k  pixel (x, y)   grid (x, y)   label  chosen from         depth px  IoU after")
for k, (pixel, grid) in enumerate(zip(sim.clicks, sim.grid_clicks()), start=1):
    print(f"{k:2d}  ({pixel.x:4d}, {pixel.y:4d})   ({grid.x:4d}, {grid.y:4d})   {pixel.label:5d}  "
          f"{sim.sources[k - 1]:18s} {sim.distances[k - 1]:8.1f}  {sim.ious[k - 1]:.3f}")

# %% [markdown]
# Why did the second click land where it did? The distance maps of the two error regions after the
# first click; the larger maximum wins, and a tie goes to the negative click (RITM's rule, the
# standard simulator of interactive segmentation).
#
# *Try it:* set `multimask=False` in `sam_predictor_fn`, or pass `stop_iou=0.9` to `simulate_clicks`,
# and watch how many clicks are needed.

# %%
plot_distance_maps(target, sim.masks[0], size=S["figure_size"], title=TINY);

# %% [markdown]
# On the command line, for any image and mask (the clicks file uses pixel coordinates, like
# `rs-seg refer --clicks-out`):
# ```
# rs-seg clicks IMAGE.png MASK.png --n 6 --sam vit_l --out clicks.json
# ```

# %% [markdown]
# ## 3. The training set
# `write_lora_data` simulates clicks for every sample (one SAM embedding per image), moves them to
# the 0-1000 grid and writes one JSON line per sample: image, text, task, the target clicks and the
# **answer**, the exact string the model should write. A fraction of the *images* is held out, so no
# held-out image is seen in training.

# %%
from rs_helpers.lora import read_jsonl, select_records, write_lora_data

records = [q for q in queries if S["sample_ids"] is None or q.id in S["sample_ids"]]
train_file, eval_file = WORK / "train.jsonl", WORK / "heldout.jsonl"
data = write_lora_data(records, train_file, sam, S["n_clicks"], holdout=S["holdout"], holdout_out=eval_file)
print(f"{len(data.train)} training lines, {len(data.holdout)} held out "
      f"(mean SAM IoU with the simulated clicks: {data.mean_iou:.3f})")
line = read_jsonl(train_file)[0]
{k: line[k] for k in ("image", "text", "task", "answer")}

# %% [markdown]
# The answer parses back to exactly the target clicks; the trainer refuses a file where it does
# not (and reports missing images or empty texts by line number before training).

# %%
from rs_helpers.refer import Click, parse_clicks

assert parse_clicks(line["answer"]) == [Click(**c) for c in line["clicks"]]
print("answer == target clicks")

# %% [markdown]
# The same from the command line, on the shipped samples or a benchmark:
# ```
# rs-seg lora-data --dataset samples --out train.jsonl --holdout 0.3 --holdout-out heldout.jsonl
# rs-seg lora-data --dataset rrsisd --root /data/RRSIS-D --split train --out rrsisd_train.jsonl
# ```

# %% [markdown]
# ## 4. LoRA: what is trained
# LoRA keeps every weight matrix $W$ of the model frozen and learns a low-rank correction:
# $W x + \frac{\alpha}{r} B A x$, with $A$ of shape $r \times d_{in}$ and $B$ of shape $d_{out} \times r$
# for a small rank $r$ (32 in the method, $\alpha = 64$). Here the corrections sit on the language
# model's attention (`q, k, v, o`) and MLP (`gate, up, down`) projections; the vision tower, the
# embeddings and SAM stay frozen. $B$ starts at zero, so at step 0 the tuned model *is* the base model.
#
# `peft` adds the adapters and counts what is trainable:

# %%
from peft import get_peft_model

from rs_helpers.lora import LoraSettings, count_parameters, load_base, lora_config

settings = LoraSettings(base=S["base"], rank=S["rank"], alpha=S["alpha"], dropout=S["dropout"], epochs=S["epochs"],
                        lr=S["lr"], grad_accum=S["grad_accum"], max_steps=S["max_steps"],
                        logging_steps=S["logging_steps"], save_steps=S["save_steps"], n_clicks=S["n_clicks"],
                        max_pixels=S["max_pixels"])
qwen = load_base(settings)
peft_model = get_peft_model(qwen.model, lora_config(settings))
trainable, total = count_parameters(peft_model)
print(f"trainable {trainable:,} of {total:,} parameters ({100 * trainable / total:.2f}%)")
adapted = [name for name, module in peft_model.named_modules() if hasattr(module, "lora_A")]
print(f"{len(adapted)} adapted projections, {sum('visual' in n for n in adapted)} in the vision tower; "
      f"kinds: {sorted({n.rsplit('.', 1)[-1] for n in adapted})}")
first = peft_model.get_submodule(adapted[0])
print(adapted[0], "| A:", tuple(first.lora_A["default"].weight.shape), "B:",
      tuple(first.lora_B["default"].weight.shape), "| B is all zero:", bool((first.lora_B["default"].weight == 0).all()))
qwen.model = peft_model.unload()  # take the adapters out again: training below adds fresh ones

# %% [markdown]
# Only the answer carries loss. The training example is the inference chat (same template, same
# system prompt) with the answer appended; every prompt token, image tokens included, is labelled
# -100 and ignored by the loss:

# %%
from rs_helpers.geo import read_image
from rs_helpers.lora import read_train_file
from rs_helpers.refer import build_chat

example = read_train_file(train_file)[0]
chat = build_chat(qwen.processor, read_image(example.image).rgb, example.prompt, example.answer,
                  max_pixels=settings.max_pixels)
labels = chat["labels"][0]
learned = labels[labels != -100]
print(f"{labels.numel()} tokens, {int((labels == -100).sum())} without loss (prompt), {learned.numel()} with loss")
print("the tokens with loss decode to:", repr(qwen.processor.tokenizer.decode(learned)))

# %% [markdown]
# ## 5. Before training: the base model on the held-out samples
# gIoU/cIoU through the referring evaluation of notebook 04 (an answer without usable clicks
# scores IoU 0), and how often the answer parses or equals the target exactly.

# %%
from rs_helpers.lora import answer_metrics
from rs_helpers.evaluation import compare_table, evaluate_refer
from rs_helpers.refer import QwenBackend

held_out = select_records(records, data.holdout)
eval_lines = read_train_file(eval_file)
before = QwenBackend(qwen=qwen, max_new_tokens=S["max_new_tokens"], max_pixels=S["max_pixels"])
run_before = evaluate_refer(held_out, before, sam, n_clicks=S["n_clicks"], sam_name=S["sam"])
run_before.vlm = "before LoRA"
answers_before = answer_metrics(before, eval_lines)
print({k: v for k, v in answers_before.items() if k != "answers"})

# %% [markdown]
# ## 6. A short training run
# `train_lora` (also `rs-seg train-lora`) reads and checks the file, adds the adapters, and trains
# with `transformers`' Trainer: gradient accumulation, bf16 or fp16 on a GPU, gradient checkpointing
# on CUDA, a checkpoint every `save_steps` (resume with `resume=True`), a progress bar and the loss
# in the log. Only the adapter is saved, with the settings used.

# %%
import time

from rs_helpers.lora import train_lora

start = time.perf_counter()
result = train_lora(train_file, WORK / "adapter", settings, qwen=qwen)
train_seconds = time.perf_counter() - start
steps = [e["step"] for e in result.log if "loss" in e]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(steps, result.losses, marker="o")
ax.set_xlabel("optimizer step")
ax.set_ylabel("loss (answer tokens)")
ax.set_title("training loss" + (" (TINY: meaningless)" if TINY else ""))
print(f"{result.global_step} steps in {train_seconds:.1f} s; saved:",
      sorted(p.name for p in result.adapter_dir.iterdir()))

# %% [markdown]
# ## 7. After training: the same held-out samples
# The tuned model answers through the same backend, now with the adapter in place.

# %%
from rs_helpers.models import QwenVL

after = QwenBackend(qwen=QwenVL(result.model, qwen.processor, qwen.model_id), max_new_tokens=S["max_new_tokens"],
                    max_pixels=S["max_pixels"])
run_after = evaluate_refer(held_out, after, sam, n_clicks=S["n_clicks"], sam_name=S["sam"])
run_after.vlm = "after LoRA"
answers_after = answer_metrics(after, eval_lines)
print(compare_table([run_before, run_after]))
for name, metrics in (("before", answers_before), ("after", answers_after)):
    print(f"{name}: parse rate {metrics['parse_rate']:.2f}, exact answers {metrics['exact_rate']:.2f}")

# %% [markdown]
# The saved adapter is what `rs-seg refer` loads:
# ```
# rs-seg refer IMAGE --text "the largest open field" --vlm qwen:Qwen/Qwen3-VL-2B-Instruct --adapter runs/06_lora/adapter --out mask.png
# rs-seg eval refer --dataset rrsisd --root /data/RRSIS-D --vlm qwen:Qwen/Qwen3-VL-2B-Instruct --adapter runs/06_lora/adapter
# ```
#
# The held-out evaluation above, on the command line (each line of `heldout.jsonl` names its sample): `rs-seg eval refer --dataset jsonl --root heldout.jsonl --vlm qwen:Qwen/Qwen3-VL-2B-Instruct --adapter adapter/`
# For reference, the paper reports 67.6 gIoU on RRSIS-D test after LoRA tuning Qwen3-VL-2B on the
# RRSIS-D training set (12,181 samples), and 72.7 on EarthReason; nothing here reproduces that.

# %% [markdown]
# ## 8. What it takes on a Colab T4
# **Not measured.** This suite was built without access to a GPU, so no memory or time figure is
# given for a T4 (or any GPU). The cell below measures peak GPU memory and training time when it runs
# on a CUDA GPU; on a CPU it says so. What drives the cost, for planning:
# * the T4 has 16 GB and no bfloat16, so training runs in fp16; gradient checkpointing is on for CUDA;
# * the frozen base weights: about 2 bytes per parameter in fp16 (arithmetic, not a measurement);
# * image tokens: one per 32 x 32 pixel block for Qwen3-VL, so `max_pixels` is the main activation knob;
# * LoRA's own weights, gradients and optimizer state are small (the trainable share printed in section 4).
#
# If a T4 runs out of memory: lower `max_pixels`, keep `batch_size=1` and raise `grad_accum`, or lower the rank.

# %%
import torch

if torch.cuda.is_available():
    print(f"measured on {torch.cuda.get_device_name()}: peak GPU memory "
          f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB, training {train_seconds:.0f} s "
          f"for {result.global_step} steps (profile {S['profile']})")
else:
    print("not measured: no GPU in this run")

# %% [markdown]
# ## 9. A real run
# ```
# rs-seg lora-data --dataset rrsisd --root /data/RRSIS-D --split train --out rrsisd_train.jsonl
# rs-seg lora-data --dataset rrsisd --root /data/RRSIS-D --split val --out rrsisd_val.jsonl
# rs-seg train-lora --train rrsisd_train.jsonl --out rrsisd_lora --rank 32 --alpha 64 --epochs 3 --lr 1e-4 --grad-accum 8
# rs-seg eval refer --dataset rrsisd --root /data/RRSIS-D --vlm qwen:Qwen/Qwen3-VL-2B-Instruct --adapter rrsisd_lora
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
# **Exercise 1 · The first simulated click.** The first simulated click is positive, at the mask pixel
# **farthest from the mask's boundary**: the maximum of the distance transform, where **outside the image
# counts as background** (pad the mask with one ring of background first). Write `deepest_pixel(mask)`
# returning that pixel as `(x, y)` (x = column, y = row) for a boolean mask, with `np.pad` and
# `distance_transform_edt`, without the package's click simulation (`first_click`, `padded_distance`, ...).
# Any pixel that ties for the maximum is accepted. The check calls it on masks of its own (touching the
# border, a ring, a single pixel, ...).

# %%
import numpy as np
from scipy.ndimage import distance_transform_edt

from rs_helpers.teaching.exercises.nb06 import example_target, mask_text

target = example_target()
print(mask_text(target))  # '#' target, '.' background; row 0 at the top

# %% tags=["solution"]
def deepest_pixel(mask):
    """(x, y) of the mask pixel farthest from the background, outside the image counting as background."""
    depth = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(depth.argmax(), depth.shape)
    return int(col), int(row)

print(deepest_pixel(target))
answer = deepest_pixel

# %%
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · The next corrective click.** After some clicks SAM predicts `pred` for the target `target`.
# The next click goes to the deepest point (padded distance transform, as in exercise 1) of the **larger
# error**: the false negatives (target SAM missed: a **positive** click, label 1) or the false positives
# (background SAM took: a **negative** click, label 0), whichever has the larger maximum (on a tie, the
# negative one). Write `corrective_click(target, pred)` returning `(x, y, label)`, without the package's click
# simulation (your `deepest_pixel` may help). The check calls it on masks of its own.

# %%
import numpy as np
from scipy.ndimage import distance_transform_edt

from rs_helpers.teaching.exercises.nb06 import example_prediction, mask_text

target, pred = example_prediction()
print(mask_text(target, pred))  # '#' right, '-' target SAM missed, '+' background SAM took

# %% tags=["solution"]
def corrective_click(target, pred):
    """(x, y, label) of the next click: the deepest pixel of the larger error region."""
    def depth(region):
        return distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]

    fn, fp = depth(target & ~pred), depth(pred & ~target)
    region, label = (fn, 1) if fn.max() > fp.max() else (fp, 0)
    row, col = np.unravel_index(region.argmax(), region.shape)
    return int(col), int(row), label

print(corrective_click(target, pred))
answer = corrective_click

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# **Exercise 3 · How many parameters does LoRA train?** LoRA replaces the update of a frozen weight W (shape
# d_out x d_in) by B A, with A of shape r x d_in and B of shape d_out x r. Write `lora_parameters(d_in, d_out,
# rank)` returning how many parameters a rank-r adapter on one such layer trains. Qwen3-VL-2B's MLP `up_proj`,
# for example, maps d_in = 2048 to d_out = 6144. The check calls it on layers of its own.

# %%
d_in, d_out, rank = 2048, 6144, 32

# %% tags=["solution"]
def lora_parameters(d_in, d_out, rank):
    """The number of trainable parameters of a rank-`rank` LoRA adapter on a d_in -> d_out layer."""
    return rank * d_in + d_out * rank

n = lora_parameters(d_in, d_out, rank)
print(f"{n:,} trainable parameters next to {d_in * d_out:,} frozen ones ({100 * n / (d_in * d_out):.1f}%)")
answer = lora_parameters

# %%
q3.check(answer)
# q3.hint()
# q3.solution()

# %% [markdown]
# ### More to explore
# 1. Simulate clicks for the other sample queries. Which ones stop early, and why?
# 2. Change the border convention in your head: where would the first click of a target touching the
#    image border land if the outside counted as target? Check with `padded_distance` on a padded mask.
# 3. Count the trainable parameters of the whole model (`count_parameters`, section 4) for ranks 8, 16 and 32.
#    How does the count scale with the rank? Compare with exercise 3.

# %% [markdown]
# ## Summary
# * Click simulation turns masks into the clicks SAM needs: deepest point first, then the deepest
#   point of the larger error, positive or negative. Deterministic; stops early when SAM is perfect.
# * A training line holds the image, the text, the task and the exact answer string, which parses
#   back to the target clicks.
# * LoRA trains low-rank corrections of the language model's projections only; the loss covers only
#   the answer tokens; only the adapter is saved.
# * Under the tiny profile all of this runs in CI and every result is meaningless.
#
# ## What's next
# Notebook 07 works with large GeoTIFF scenes: tiling, stitching and georeferenced outputs.
