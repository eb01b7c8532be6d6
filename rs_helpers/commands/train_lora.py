"""``rs-seg train-lora --train TRAIN.jsonl --out ADAPTER_DIR``: LoRA-tune Qwen-VL to write clicks."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from rs_helpers.commands.options import add_common, add_overwrite, fraction, nonnegative_int, positive_float, positive_int
    from rs_helpers.lora.train import LoraSettings

    d = LoraSettings()
    parser = subparsers.add_parser(
        "train-lora", help="LoRA-tune Qwen-VL on a click training file (from rs-seg lora-data)",
        description="Train a LoRA adapter on the language model of Qwen-VL (attention and MLP "
                    "projections; vision tower frozen), loss on the answer tokens only. Saves only "
                    "the adapter plus rs_train_settings.json; use it with "
                    "`rs-seg refer --vlm qwen:BASE --adapter ADAPTER_DIR`.",
        epilog="Score the adapter on the held-out lines of rs-seg lora-data (gIoU / cIoU): "
               "rs-seg eval refer --dataset jsonl --root heldout.jsonl --vlm qwen:BASE --adapter ADAPTER_DIR",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--train", required=True, help="training JSONL (image, text, task, clicks, answer)")
    parser.add_argument("--out", required=True, help="adapter folder (checkpoints go to OUT/checkpoints)")
    parser.add_argument("--base", default=d.base, help="base model: hub id or local folder")
    parser.add_argument("--rank", type=positive_int, default=d.rank, help="LoRA rank r")
    parser.add_argument("--alpha", type=positive_int, default=d.alpha, help="LoRA alpha (scale alpha/r)")
    parser.add_argument("--dropout", type=fraction, default=d.dropout, help="LoRA dropout")
    parser.add_argument("--epochs", type=positive_float, default=d.epochs)
    parser.add_argument("--lr", type=positive_float, default=d.lr, help="peak learning rate")
    parser.add_argument("--lr-scheduler", default=d.lr_scheduler,
                        help="learning-rate schedule: cosine, linear, constant, ... (transformers' SchedulerType)")
    parser.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="examples per device step")
    parser.add_argument("--grad-accum", type=positive_int, default=d.grad_accum, help="gradient accumulation steps")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="stop after N optimizer steps (overrides --epochs)")
    parser.add_argument("--save-steps", type=positive_int, default=d.save_steps, help="checkpoint every N steps")
    parser.add_argument("--logging-steps", type=positive_int, default=d.logging_steps,
                        help="log the loss every N steps")
    parser.add_argument("--n-clicks", type=positive_int, default=d.n_clicks,
                        help="clicks asked for in the prompt (records may set n_clicks)")
    parser.add_argument("--max-pixels", type=positive_int, default=None,
                        help="shrink images to at most this many pixels")
    parser.add_argument("--no-system-prompt", action="store_true", help="train without the system prompt")
    gc = parser.add_mutually_exclusive_group()
    gc.add_argument("--gradient-checkpointing", dest="gradient_checkpointing", action="store_true", default=None,
                    help="recompute activations to save memory (default: on for cuda)")
    gc.add_argument("--no-gradient-checkpointing", dest="gradient_checkpointing", action="store_false")
    parser.add_argument("--seed", type=nonnegative_int, default=d.seed)
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in OUT/checkpoints")
    parser.add_argument("--eval", default=None, metavar="JSONL",
                        help="held-out file: score generated answers after training")
    parser.add_argument("--merge", action="store_true",
                        help="also save the base model with the adapter merged in OUT/merged")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overwrite(parser)
    add_common(parser)
    parser.set_defaults(func=run)


def scheduler_names() -> list[str]:
    """The schedules the Trainer accepts, so a typo stops at the option instead of after loading Qwen."""
    from transformers.trainer_utils import SchedulerType

    return [s.value for s in SchedulerType]


def check_run_outputs(args) -> None:
    """--out is a folder for the adapter: an existing adapter is replaced only with --overwrite
    (or continued with --resume); --train and --eval are never inside it as outputs."""
    from pathlib import Path

    from rs_helpers.errors import BadInputError
    from rs_helpers.files import check_outputs

    if args.lr_scheduler not in scheduler_names():
        raise BadInputError(f"--lr-scheduler {args.lr_scheduler!r}: choose one of {', '.join(scheduler_names())}")
    out = Path(args.out)
    check_outputs({"--out": out}, inputs=[args.train, args.eval], folders=["--out"], overwrite=True,
                  create=False)  # a usable folder name, not a file, not an input
    if (out / "adapter_config.json").exists() and not (args.overwrite or args.resume):
        raise BadInputError(f"--out {out} holds an adapter already; add --overwrite to replace it "
                            "(or --resume to continue its training)")
    for option in ("--train", "--eval"):
        value = getattr(args, option[2:])
        if value and not Path(value).is_file():
            raise BadInputError(f"{option} {value}: no such file" if not Path(value).exists()
                                else f"{option} {value} is not a file")
    check_outputs({"--out": out / "adapter_config.json"}, inputs=[args.train, args.eval], overwrite=True)


def run(args) -> int:
    import sys

    from rs_helpers.lora.train import LoraSettings, train_lora
    from rs_helpers.profile import is_tiny
    from rs_helpers.refer.prompts import SYSTEM_PROMPT

    from rs_helpers.distributed import processes

    check_run_outputs(args)
    procs = processes(args.device)  # accelerate launch / torchrun: one data-parallel replica each
    settings = LoraSettings(
        base=args.base, rank=args.rank, alpha=args.alpha, dropout=args.dropout, epochs=args.epochs,
        lr=args.lr, lr_scheduler=args.lr_scheduler, batch_size=args.batch_size, grad_accum=args.grad_accum,
        max_steps=args.max_steps, save_steps=args.save_steps, logging_steps=args.logging_steps,
        n_clicks=args.n_clicks, max_pixels=args.max_pixels,
        system_prompt=None if args.no_system_prompt else SYSTEM_PROMPT,
        gradient_checkpointing=args.gradient_checkpointing, seed=args.seed,
        profile=args.profile, device=procs.device(args.device),
    )
    result = train_lora(args.train, args.out, settings, eval_file=args.eval, resume=args.resume,
                        merge=args.merge, progress=not args.quiet)
    if not result.main:
        return 0
    losses = result.losses
    if result.processes > 1:
        print(f"data parallel over {result.processes} processes: effective batch "
              f"{args.batch_size} x {args.grad_accum} x {result.processes} = "
              f"{args.batch_size * args.grad_accum * result.processes}")
    print(f"trained {result.trainable_params:,} of {result.total_params:,} parameters "
          f"({100 * result.trainable_params / max(result.total_params, 1):.2f}%), {result.global_step} steps")
    if losses:
        print(f"loss: first {losses[0]:.4f}, last {losses[-1]:.4f}")
    print(f"adapter: {result.adapter_dir}")
    if result.merged_dir:
        print(f"merged model: {result.merged_dir}")
    if result.eval:
        e = result.eval
        dist = e["mean_first_click_distance"]
        print(f"held-out ({e['n']}): parsed {e['parse_rate']:.0%}, exact {e['exact_rate']:.0%}, "
              f"first-click distance {'-' if dist is None else f'{dist:.1f}'} (0-1000 grid)")
    if is_tiny(args.profile):
        print("TINY PROFILE: a random tiny base model; this adapter and its answers are meaningless.",
              file=sys.stderr)
    return 0
