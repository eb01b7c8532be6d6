"""LoRA tuning of Qwen-VL to write click prompts (peft + transformers' Trainer).

What is trained: low-rank adapters on the attention (q, k, v, o) and MLP (gate, up, down)
projections of the language model only; the vision tower, the embeddings and SAM stay frozen.
The loss covers only the answer tokens: every prompt token (system text, image tokens, the
question) is labelled -100. Examples go through :func:`rs_helpers.refer.vlm_qwen.build_chat`, the
same function the Qwen backend uses at inference, so the chat template is identical.
Only the adapter is saved, with ``rs_train_settings.json`` recording the settings used.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from rs_helpers.refer.clicks import GRID, Click, no_target_answer, parse_clicks
from rs_helpers.device import native_bf16
from rs_helpers.errors import BadInputError
from rs_helpers.files import write_json_atomic
from rs_helpers.refer.prompts import DEFAULT_N_CLICKS, SYSTEM_PROMPT, TASKS, build_prompt
from rs_helpers.refer.vlm_qwen import IGNORE_INDEX, SETTINGS_FILE, build_chat

# Language-model projections only: the regex needs "language_model" in the module path, so the
# vision tower never matches (Qwen2.5-VL's vision MLP also has gate/up/down_proj).
LM_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TARGET_MODULES = r".*language_model.*\.(" + "|".join(LM_PROJECTIONS) + r")"
CHECKPOINTS = "checkpoints"
EVAL_FILE = "rs_eval.json"
MAX_REPORTED = 30
MAX_CLICKS = 100  # the most clicks a prompt may ask for ("write up to N clicks")


@dataclass
class LoraSettings:
    """Every knob of a LoRA run (saved as ``rs_train_settings.json`` beside the adapter)."""

    base: str = "Qwen/Qwen3-VL-2B-Instruct"
    rank: int = 32
    alpha: int = 64
    dropout: float = 0.05
    epochs: float = 3.0
    lr: float = 1e-4
    batch_size: int = 1
    grad_accum: int = 8
    max_steps: int | None = None  # overrides epochs when set
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    save_steps: int = 100
    logging_steps: int = 10
    gradient_checkpointing: bool | None = None  # None: on for cuda
    n_clicks: int = DEFAULT_N_CLICKS  # for records without their own "n_clicks"
    system_prompt: str | None = SYSTEM_PROMPT
    max_pixels: int | None = None  # shrink images to this many pixels (fewer image tokens)
    seed: int = 0
    profile: str | None = None
    device: str | None = None


@dataclass
class TrainRecord:
    """One validated line of a training file."""

    line: int
    image: Path
    text: str
    task: str
    clicks: list[Click]
    answer: str
    n_clicks: int = DEFAULT_N_CLICKS

    @property
    def prompt(self) -> str:
        return build_prompt(self.text, self.task, self.n_clicks)


@dataclass
class TrainResult:
    adapter_dir: Path
    global_step: int
    log: list[dict]  # trainer log entries ({"step", "loss", "learning_rate", ...})
    trainable_params: int
    total_params: int
    model: Any = field(repr=False, default=None)  # the PeftModel (base modified in place)
    eval: dict | None = None
    merged_dir: Path | None = None
    processes: int = 1  # data-parallel processes that trained it (accelerate launch / torchrun)
    main: bool = True  # False in the other processes, which save nothing

    @property
    def losses(self) -> list[float]:
        return [e["loss"] for e in self.log if "loss" in e]


# --------------------------------------------------------------------------- training file
def read_train_file(path: str | Path, n_clicks: int = DEFAULT_N_CLICKS) -> list[TrainRecord]:
    """Read and check a training JSONL file. Every problem of every line is collected first;
    if there is any, one :class:`BadInputError` lists them by line number (nothing is trained).

    Lines are read defensively: a line that is not UTF-8, not JSON, holds NaN / Infinity, nests
    absurdly deep, or has a field of the wrong type (a list where a string belongs, a float or
    a boolean where an integer belongs) is a problem of that line, never a traceback.

    An empty-target line (``rs-seg lora-data``) has ``"clicks": []`` and the no-target answer
    ``{"clicks": [], "reason": "..."}``; its record has no clicks. Any other answer without clicks
    is a problem of its line."""
    from rs_helpers.evaluation.datasets.jsonl import json_lines

    path = Path(path).expanduser()
    try:
        if not path.is_file():
            raise BadInputError(f"{path}: no such training file")
    except (OSError, ValueError) as exc:
        if isinstance(exc, BadInputError):
            raise
        raise BadInputError(f"{str(path)[:200]!r}: not a usable training file name ({exc})") from None
    records, problems = [], []
    for number, item in json_lines(path, "training file",
                                   on_error=lambda n, why: problems.append(f"line {n}: {why}")):
        record, issues = _check_line(item, number, path.parent, n_clicks)
        problems += [f"line {number}: {issue}" for issue in issues]
        if record is not None and not issues:
            records.append(record)
    if problems:  # already in line order: the lines are read one after the other
        shown = problems[:MAX_REPORTED] + ([f"... and {len(problems) - MAX_REPORTED} more"]
                                           if len(problems) > MAX_REPORTED else [])
        raise BadInputError(f"{path}: {len(problems)} problem(s), nothing trained:\n  " + "\n  ".join(shown))
    if not records:
        raise BadInputError(f"{path} holds no training examples")
    return records


def _short(value, limit: int = 80) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value)[:limit + 1]
    return text if len(text) <= limit else text[:limit] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _grid_click(c) -> Click | None:
    """A ``{"x", "y", "label"}`` record on the 0-1000 grid as a Click; None if it is not one."""
    if not isinstance(c, dict) or not all(_is_int(c.get(k)) for k in ("x", "y")):
        return None
    label = c.get("label", 1)
    if not _is_int(label) or label not in (0, 1) or not (0 <= c["x"] <= GRID and 0 <= c["y"] <= GRID):
        return None
    return Click(c["x"], c["y"], label)


def _check_line(item, number: int, root: Path, n_clicks: int) -> tuple[TrainRecord | None, list[str]]:
    """One parsed line checked field by field: (record, []) or (None, the problems)."""
    if not isinstance(item, dict):
        return None, [f"not a JSON object (got {type(item).__name__})"]
    issues = []
    image = item.get("image")
    image_path = None
    if not isinstance(image, str) or not image.strip():
        issues.append('no "image" path' if image is None else f'"image" must be a path string, got {_short(image)}')
    else:
        try:
            image_path = Path(image).expanduser()
            image_path = image_path if image_path.is_absolute() else root / image_path
            if not image_path.is_file():
                issues.append(f"image {image} not found (looked at {image_path})" if len(image) < 300
                              else f"image {_short(image, 120)} not found")
        except (OSError, ValueError) as exc:  # a NUL, a name too long, an unencodable name
            issues.append(f'"image" {_short(image)} is not a usable path ({exc})')
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        issues.append('empty "text"' if text is None or isinstance(text, str)
                      else f'"text" must be a string, got {_short(text)}')
    task = item.get("task") or "referring"
    if not isinstance(task, str):
        issues.append(f'"task" must be a string, got {_short(task)}')
        task = "referring"
    task = task.strip().lower()
    if task not in TASKS:
        issues.append(f"unknown task {task!r} (use {', '.join(TASKS)})")
    n = item.get("n_clicks", n_clicks)
    if not _is_int(n) or not 1 <= n <= MAX_CLICKS:
        issues.append(f'"n_clicks" must be an integer from 1 to {MAX_CLICKS}, got {_short(n)}')
        n = n_clicks
    answer = item.get("answer")
    parsed = None
    if not isinstance(answer, str) or not answer.strip():
        issues.append('empty "answer"' if answer is None or isinstance(answer, str)
                      else f'"answer" must be a string, got {_short(answer)}')
    else:
        try:
            parsed = parse_clicks(answer)
        except (BadInputError, ValueError, TypeError, RecursionError) as exc:
            hint = (f"; a line without clicks needs the no-target answer {no_target_answer()}"
                    if item.get("clicks") == [] else "")
            issues.append(f"answer cannot be parsed: {str(exc)[:300]}{hint}")
    clicks = parsed
    if "clicks" in item:
        given = item["clicks"]  # [] only with the no-target answer (checked against it below)
        clicks = [_grid_click(c) for c in given] if isinstance(given, list) else None
        if clicks is None or None in clicks:
            issues.append(f'"clicks" is not a list of {{"x", "y", "label"}} on the 0-{GRID} grid: '
                          f'{_short(given, 300)}')
            clicks = None
        if clicks is not None and parsed is not None and list(parsed) != clicks:
            issues.append(f'answer clicks {[tuple(c.__dict__.values()) for c in parsed]} disagree '
                          f'with "clicks" {[tuple(c.__dict__.values()) for c in clicks]}')
    if issues:
        return None, issues
    return TrainRecord(number, image_path, " ".join(text.split()), task, clicks, answer, n), []


# --------------------------------------------------------------------------- data
class ChatDataset(torch.utils.data.Dataset):
    """Training examples as :func:`build_chat` inputs (image read on access)."""

    def __init__(self, records: list[TrainRecord], processor, settings: LoraSettings):
        self.records, self.processor, self.settings = records, processor, settings

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        from rs_helpers.geo.rasters import read_image

        rec = self.records[index]
        inputs = build_chat(self.processor, read_image(rec.image).rgb, rec.prompt, rec.answer,
                            system_prompt=self.settings.system_prompt, max_pixels=self.settings.max_pixels)
        inputs.pop("prompt_length")
        return {k: (v[0] if k not in ("pixel_values", "image_grid_thw") else v) for k, v in inputs.items()}


def collate(examples: list[dict], pad_token_id: int) -> dict:
    """Right-pad token sequences (labels with -100); stack image patches and grids."""
    longest = max(e["input_ids"].shape[0] for e in examples)
    pads = {"input_ids": pad_token_id, "labels": IGNORE_INDEX, "attention_mask": 0,
            "mm_token_type_ids": 0, "token_type_ids": 0}
    batch = {}
    for key, pad in pads.items():
        if key in examples[0]:
            batch[key] = torch.stack([torch.nn.functional.pad(e[key], (0, longest - len(e[key])), value=pad)
                                      for e in examples])
    for key in ("pixel_values", "image_grid_thw"):
        batch[key] = torch.cat([e[key] for e in examples], dim=0)
    return batch


# --------------------------------------------------------------------------- model
def lora_config(settings: LoraSettings):
    from peft import LoraConfig

    return LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules=TARGET_MODULES, bias="none", task_type="CAUSAL_LM")


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def load_base(settings: LoraSettings):
    """The base model for training: fp32 on CPU/MPS, bf16 (or fp16) on CUDA."""
    from rs_helpers.device import pick_device, pick_dtype
    from rs_helpers.models.qwen import load_qwen

    device = pick_device(settings.device)
    dtype = pick_dtype(device) if device.type == "cuda" else torch.float32
    return load_qwen(settings.base, profile=settings.profile, device=device, dtype=dtype)


# --------------------------------------------------------------------------- training
def train_lora(train_file: str | Path, out_dir: str | Path, settings: LoraSettings | None = None, *,
               eval_file: str | Path | None = None, resume: bool = False, merge: bool = False,
               qwen=None, progress: bool = True, callbacks: list | None = None) -> TrainResult:
    """Train a LoRA adapter on ``train_file`` and save it in ``out_dir``.

    ``qwen``: an already loaded base (:class:`rs_helpers.models.qwen.QwenVL`); LoRA layers are injected
    into it in place. ``resume``: continue from the last checkpoint in ``out_dir/checkpoints``
    (the global step continues); without it, ``out_dir`` must hold no checkpoints. ``merge``: also
    save the merged model in ``out_dir/merged``. ``callbacks``: extra ``TrainerCallback``s.
    ``eval_file``: a held-out JSONL in the same format; answers are generated and scored after
    training (parse rate, exact answers, click distance) into ``out_dir/rs_eval.json``.
    """
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    settings = settings or LoraSettings()
    out_dir = Path(out_dir).expanduser()
    records = read_train_file(train_file, settings.n_clicks)
    eval_records = read_train_file(eval_file, settings.n_clicks) if eval_file else None
    checkpoint_dir = out_dir / CHECKPOINTS
    last = get_last_checkpoint(str(checkpoint_dir)) if checkpoint_dir.is_dir() else None
    if resume and last is None:
        raise BadInputError(f"--resume: no checkpoint in {checkpoint_dir}")
    if not resume and last is not None:
        raise BadInputError(f"{out_dir} holds checkpoints of an earlier run ({Path(last).name}); "
                            "continue it with --resume or choose another --out")
    qwen = qwen or load_base(settings)
    with torch.random.fork_rng(devices=[]):  # LoRA init does not depend on what ran before
        torch.manual_seed(settings.seed)
        model = get_peft_model(qwen.model, lora_config(settings))
    trainable, total = count_parameters(model)
    device = next(model.parameters()).device
    cuda = device.type == "cuda"
    bf16 = cuda and native_bf16(device)  # fp16 mixed precision on older GPUs (Colab's T4)
    checkpointing = cuda if settings.gradient_checkpointing is None else bool(settings.gradient_checkpointing)
    args = TrainingArguments(
        output_dir=str(checkpoint_dir), per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum, num_train_epochs=settings.epochs,
        max_steps=settings.max_steps or -1, learning_rate=settings.lr,
        lr_scheduler_type=settings.lr_scheduler, weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm, logging_steps=settings.logging_steps,
        save_strategy="steps", save_steps=settings.save_steps, save_total_limit=2,
        bf16=bf16, fp16=cuda and not bf16, use_cpu=device.type == "cpu", dataloader_pin_memory=cuda,
        report_to="none", remove_unused_columns=False, label_names=["labels"], seed=settings.seed,
        disable_tqdm=not progress, optim="adamw_torch", ddp_find_unused_parameters=False,
        **_version_args(TrainingArguments, settings.warmup_ratio, checkpointing),
    )
    pad_id = qwen.processor.tokenizer.pad_token_id
    trainer = Trainer(model=model, args=args, train_dataset=ChatDataset(records, qwen.processor, settings),
                      data_collator=lambda examples: collate(examples, pad_id), callbacks=callbacks)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    trainer.train(resume_from_checkpoint=last if resume else None)
    model.eval()
    result = TrainResult(adapter_dir=out_dir, global_step=int(trainer.state.global_step),
                         log=list(trainer.state.log_history), trainable_params=trainable,
                         total_params=total, model=model, processes=int(args.world_size),
                         main=trainer.is_world_process_zero())
    if not result.main:  # data parallel: every process holds the same weights; rank 0 saves them
        return result
    model.save_pretrained(str(out_dir))
    if eval_records:
        from rs_helpers.models.qwen import QwenVL
        from rs_helpers.refer.vlm_qwen import QwenBackend

        backend = QwenBackend(qwen=QwenVL(model, qwen.processor, qwen.model_id), max_new_tokens=256,
                              system_prompt=settings.system_prompt, max_pixels=settings.max_pixels)
        result.eval = answer_metrics(backend, eval_records, progress=progress)
        write_json_atomic(out_dir / EVAL_FILE, result.eval, indent=1)
    _write_settings(out_dir, settings, qwen.model_id, result, train_file, time.time() - started)
    if merge:
        result.merged_dir = out_dir / "merged"
        merged = model.merge_and_unload()
        merged.save_pretrained(str(result.merged_dir))
        qwen.processor.save_pretrained(str(result.merged_dir))
        result.model = merged
    return result


def _write_settings(out_dir: Path, settings: LoraSettings, base_id: str, result: TrainResult,
                    train_file, seconds: float) -> None:
    import peft
    import transformers

    from rs_helpers.profile import get_profile

    info = asdict(settings)
    info.update(profile=get_profile(settings.profile), base_loaded=base_id, train_file=str(train_file),
                global_step=result.global_step, processes=result.processes,
                effective_batch=settings.batch_size * settings.grad_accum * result.processes,
                trainable_params=result.trainable_params, total_params=result.total_params,
                target_modules=TARGET_MODULES, train_seconds=round(seconds, 1),
                final_loss=(result.losses[-1] if result.losses else None),
                versions={"transformers": transformers.__version__, "peft": peft.__version__,
                          "torch": torch.__version__})
    write_json_atomic(out_dir / SETTINGS_FILE, info, indent=1, default=str)


def _version_args(training_arguments, warmup_ratio: float, checkpointing: bool) -> dict:
    """Arguments whose names differ between transformers 4.5x and 5."""
    fields = training_arguments.__dataclass_fields__
    args = {"warmup_ratio": warmup_ratio} if "warmup_ratio" in fields else {"warmup_steps": warmup_ratio}
    name = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    args[name] = checkpointing
    args[name + "_kwargs"] = {"use_reentrant": False} if checkpointing else None
    return args


# --------------------------------------------------------------------------- evaluation
def answer_metrics(backend, records: list[TrainRecord], progress: bool = True) -> dict:
    """Ask ``backend`` every record's prompt and compare with the target answer: the share of
    answers that parse, that are exactly the target, and the mean distance (grid units) between
    the first predicted and first target click. (Mask IoU needs SAM and ground truth masks:
    ``rs-seg eval refer ... --adapter DIR``.)"""
    from tqdm.auto import tqdm

    from rs_helpers.geo.rasters import read_image

    parsed = exact = 0
    distances, rows = [], []
    for rec in tqdm(records, desc="eval answers", disable=not progress):
        answer = backend.ask(read_image(rec.image).rgb, rec.prompt).text
        row = {"line": rec.line, "answer": answer, "target": rec.answer}
        exact += answer.strip() == rec.answer.strip()
        try:
            clicks = parse_clicks(answer)
        except BadInputError:
            row["parsed"] = False
        else:
            parsed += 1
            row["parsed"] = True
            if clicks and rec.clicks:  # no distance when either is the no-target answer
                distances.append(math.dist((clicks[0].x, clicks[0].y), (rec.clicks[0].x, rec.clicks[0].y)))
        rows.append(row)
    n = len(records)
    return {"n": n, "parse_rate": parsed / n, "exact_rate": exact / n,
            "mean_first_click_distance": (sum(distances) / len(distances)) if distances else None,
            "answers": rows}
