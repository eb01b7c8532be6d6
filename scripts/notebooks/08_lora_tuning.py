# %% [markdown]
# # 08 · LoRA tuning of Qwen-VL
# {{BADGE}}
#
# **Objectives.** After this notebook you can
# 1. say what LoRA trains in Qwen3-VL, count its parameters with `peft` and compute an adapted layer's output;
# 2. say which tokens of a training example carry the loss;
# 3. run a short LoRA training with `transformers`' Trainer and compare the model before and after on held-out samples;
# 4. plan a real run on a Colab T4.
#
# **Prerequisites.** Notebook 06 (Qwen3-VL, the chat template) and notebook 07 (click simulation, the
# training file); notebook 05 for gIoU and cIoU.
#
# **Time.** About 10 minutes to read and run on a CPU under the tiny profile, plus 10 for the two
# exercises. With real weights, training needs a GPU.
#
# {{COMPUTE}}
#
# The last step of the generative branch of the method (see [`docs/method.md`](../docs/method.md), the
# LoRA-tuned click writer): Qwen3-VL learns to write the clicks that notebook 07 simulated. SAM stays
# frozen, and so do the vision tower and every base weight: only small low-rank adapters on the language
# model train. The notebook first rebuilds its small training set with the package's helpers, as
# notebook 07 does, so it runs on its own.

# %%
# {{SETUP}}

# %% [markdown]
# ## Settings
# Every cost knob is here. Under the tiny profile (CI) the models are random, the data is three
# queries on two 256 px images and training is four steps: **every number below is then meaningless**.
# The full column is a walk-through on the 21 shipped queries, far too few for a useful adapter; a
# real run uses RRSIS-D or EarthReason (section 7).

# %%
from rs_helpers.teaching import pick

S = pick(
    full=dict(sam="vit_l", n_clicks=6, sample_ids=None, holdout=0.3, base="Qwen/Qwen3-VL-2B-Instruct", rank=32,
              alpha=64, dropout=0.05, epochs=3, lr=1e-4, grad_accum=8, max_steps=None, logging_steps=5,
              save_steps=100, max_pixels=1024 * 1024, max_new_tokens=256, work_dir="runs/08_lora"),
    # classroom: real weights, laptop-sized settings (SAM ViT-B, 16 x 16 grid, 512 px)
    classroom=dict(sam="vit_b", sample_ids=["dubai_tile2_part001_building_centre", "dubai_tile3_part002_water_largest", "atlanta_sn4_building_centre",
                               "wv_1m_2014-m_3708035_ne_17_1-2_road", "wv_1m_2014-m_3708035_ne_17_1-2_field_largest",
                               "wv_1m_2014-m_3708035_ne_17_1-0_forest"],
                   rank=8, alpha=16, grad_accum=1, max_steps=6, logging_steps=1, save_steps=3, max_pixels=256 * 256,
                   max_new_tokens=128),
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

WORK = Path(S["work_dir"] or tempfile.mkdtemp(prefix="rs_seg_08_"))
WORK.mkdir(parents=True, exist_ok=True)
print("outputs go to", WORK.resolve())
TINY = "TINY PROFILE: random models, MEANINGLESS" if is_tiny() else None
if TINY:
    print("TINY PROFILE: random SAM and Qwen; every click, mask, loss and score below is MEANINGLESS.")

# %% [markdown]
# ## 1. The training set, rebuilt
# Notebook 07 simulated the clicks SAM needs for each sample and wrote them to a training file. The same
# package helper, `write_lora_data`, does it again here: one SAM embedding per image, the clicks moved to
# the 0-1000 grid, one JSON line per sample whose **answer** is the exact string the model should write.
# A fraction of the *images* is held out for the before/after comparison, so no held-out image is seen in
# training. (On the command line: `rs-seg lora-data`, as in notebook 07.)

# %%
from rs_helpers.lora import read_jsonl, select_records, write_lora_data
from rs_helpers.models import load_sam
from rs_helpers.samples import load_referring

queries = load_referring()
records = [q for q in queries if S["sample_ids"] is None or q.id in S["sample_ids"]]
sam = load_sam(S["sam"])
train_file, eval_file = WORK / "train.jsonl", WORK / "heldout.jsonl"
data = write_lora_data(records, train_file, sam, S["n_clicks"], holdout=S["holdout"], holdout_out=eval_file)
print(f"{len(data.train)} training lines, {len(data.holdout)} held out "
      f"(mean SAM IoU with the simulated clicks: {data.mean_iou:.3f})")
print("first answer to learn:", read_jsonl(train_file)[0]["answer"])

# %% [markdown]
# ## 2. LoRA: what is trained
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
# ## 3. Before training: the base model on the held-out samples
# gIoU/cIoU through the referring evaluation of notebook 05 (an answer without usable clicks
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
# ## 4. A short training run
# `train_lora` (also `rs-seg train-lora`) reads and checks the file, adds the adapters, and trains
# with `transformers`' Trainer: gradient accumulation, bf16 or fp16 on a GPU, gradient checkpointing
# on CUDA, a checkpoint every `save_steps` (resume with `resume=True`), a progress bar and the loss
# in the log. Only the adapter is saved, with the settings used.

# %% tags=["gallery"]
import time

import matplotlib.pyplot as plt

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
# ## 5. After training: the same held-out samples
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
# rs-seg refer IMAGE --text "the largest open field" --vlm qwen:Qwen/Qwen3-VL-2B-Instruct --adapter runs/08_lora/adapter --out mask.png
# rs-seg eval refer --dataset rrsisd --root /data/RRSIS-D --vlm qwen:Qwen/Qwen3-VL-2B-Instruct --adapter runs/08_lora/adapter
# ```
#
# The held-out evaluation above, on the command line (each line of `heldout.jsonl` names its sample): `rs-seg eval refer --dataset jsonl --root heldout.jsonl --vlm qwen:Qwen/Qwen3-VL-2B-Instruct --adapter adapter/`
# For reference, the paper reports 67.6 gIoU on RRSIS-D test after LoRA tuning Qwen3-VL-2B on the
# RRSIS-D training set (12,181 samples), and 72.7 on EarthReason; nothing here reproduces that.

# %% [markdown]
# ## 6. What it takes on a Colab T4
# **Not measured.** This suite was built without access to a GPU, so no memory or time figure is
# given for a T4 (or any GPU). The cell below measures peak GPU memory and training time when it runs
# on a CUDA GPU; on a CPU it says so. What drives the cost, for planning:
# * the T4 has 16 GB and no bfloat16, so training runs in fp16; gradient checkpointing is on for CUDA;
# * the frozen base weights: about 2 bytes per parameter in fp16 (arithmetic, not a measurement);
# * image tokens: one per 32 x 32 pixel block for Qwen3-VL, so `max_pixels` is the main activation knob;
# * LoRA's own weights, gradients and optimizer state are small (the trainable share printed in section 2).
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
# ## 7. A real run
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
from rs_helpers.teaching.exercises.nb08 import q1, q2

# %% [markdown]
# **Exercise 1 · How many parameters does LoRA train?** LoRA replaces the update of a frozen weight W (shape
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
q1.check(answer)
# q1.hint()
# q1.solution()

# %% [markdown]
# **Exercise 2 · The output of a LoRA-adapted layer.** A LoRA adapter leaves the frozen weight W (d_out x
# d_in) as it is and adds a low-rank correction (section 2): the adapted layer maps an input x to **W x +
# (alpha / r) B A x**, with A of shape r x d_in, B of shape d_out x r and r the rank. Write `lora_forward(x,
# W, A, B, alpha)` returning the outputs for N inputs at once: `x` is N x d_in (one input per row) and the
# result is **N x d_out**; read the rank from the shapes; no bias and no dropout (as at inference). Write it
# with NumPy, **without** peft (`get_peft_model` or its LoRA `Linear` layer), then set `answer =
# lora_forward`: the check calls it on layers of its own (an adapter at step 0, with B all zero, among them,
# and alpha equal to the rank or larger).

# %%
from rs_helpers.teaching.exercises.nb08 import example_layer

x, W, A, B, alpha = example_layer()
print("x:", x.shape, "| W:", W.shape, "| A:", A.shape, "| B:", B.shape, "| alpha:", alpha)

# %% tags=["solution"]
def lora_forward(x, W, A, B, alpha):
    """W x + (alpha / r) B A x for every row x of `x`: N x d_in -> N x d_out."""
    rank = A.shape[0]
    return x @ W.T + (alpha / rank) * (x @ A.T) @ B.T

print(lora_forward(x, W, A, B, alpha).round(3))
answer = lora_forward

# %%
q2.check(answer)
# q2.hint()
# q2.solution()

# %% [markdown]
# ### More to explore
# 1. Count the trainable parameters of the whole model (`count_parameters`, section 2) for ranks 8, 16 and 32.
#    How does the count scale with the rank? Compare with exercise 1.
# 2. With your `lora_forward` of exercise 2, check that an adapter at step 0 (B all zero) leaves the layer's
#    output unchanged, whatever A is. Why must B, and not A, start at zero for training to move at all?
# 3. Under the tiny profile, raise `max_steps` to 20 and watch the loss of section 4. (A random model can
#    still memorise a few answers: a falling loss here says nothing about the real model.)

# %% [markdown]
# ## Summary
# * LoRA trains low-rank corrections W x + (alpha / r) B A x of the language model's projections only;
#   B starts at zero, so at step 0 the tuned model is the base model.
# * A rank-r adapter on a d_in -> d_out layer trains r (d_in + d_out) parameters, a small share of the model.
# * The training example is the inference chat with the answer appended; only the answer tokens carry loss;
#   only the adapter is saved.
# * Before and after are compared on held-out images through the same referring evaluation (gIoU, cIoU)
#   and the rates of answers that parse and that equal the target.
# * Under the tiny profile all of this runs in CI and every result is meaningless.
#
# ## What's next
# **09 · Large GeoTIFF scenes**: back to the contrastive branch, on whole scenes: tiling, seamless
# stitching and georeferenced outputs.
