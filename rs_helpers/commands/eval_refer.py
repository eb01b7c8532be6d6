"""``rs-seg eval refer``: gIoU / cIoU / P@t of the generative branch on a referring dataset.

``--dataset jsonl --root FILE.jsonl`` scores the samples named by a ``rs-seg lora-data`` file, e.g.
a LoRA adapter on its held-out split::

    rs-seg lora-data --dataset rrsisd --root /data/RRSIS-D --out train.jsonl --holdout 0.1 --holdout-out heldout.jsonl
    rs-seg train-lora --train train.jsonl --out adapter/
    rs-seg eval refer --dataset jsonl --root heldout.jsonl --vlm qwen:Qwen/Qwen3-VL-2B-Instruct --adapter adapter/

Resumable: every answered query is appended to ``OUT.results.jsonl`` at once (no query is paid
for twice), and a rerun with the same settings asks only what is missing (``--fresh`` starts
over). Launched by ``accelerate launch`` or ``torchrun``, the queries are split between the
processes and the scores equal those of one process.
"""
from __future__ import annotations

from rs_helpers.commands.options import add_common, add_overwrite, add_sam_options, add_vlm_options, backend_options, positive_int
from rs_helpers.commands.resume import add_resume_options

DATASETS = ("samples", "rrsisd", "refsegrs", "earthreason", "jsonl")


def register(kinds) -> None:
    parser = kinds.add_parser(
        "refer", help="referring / reasoning segmentation (VLM clicks + SAM) on a dataset",
        description="Runs every query of a referring or reasoning dataset through the VLM and SAM, "
                    "prints gIoU, cIoU and P@0.5..0.9 beside the paper's numbers, and writes the "
                    "per-sample results (IoU, clicks, raw answers, tokens) as JSON. Answers without "
                    "usable clicks count as IoU 0 and are listed.")
    parser.add_argument("--dataset", default="samples", help=f"one of {', '.join(DATASETS)} (default samples)")
    parser.add_argument("--root", default=None,
                        help="the dataset's folder (not needed for samples); for jsonl, a file from "
                             "rs-seg lora-data (e.g. its --holdout-out lines)")
    parser.add_argument("--split", default=None, help="test (default), val or train")
    add_vlm_options(parser)
    add_sam_options(parser)
    parser.add_argument("--n-clicks", type=positive_int, default=6, help="ask for up to N clicks (default 6)")
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N queries")
    parser.add_argument("--out", default=None, help="write the results here (JSON; default "
                                                     "outputs/eval_refer_<dataset>_<split>.json)")
    parser.add_argument("--protocol", default=None,
                        help="scoring rules: rmsin, segearth-r1 or native (default: the dataset's own; "
                             "rmsin for rrsisd and refsegrs, segearth-r1 for earthreason)")
    add_resume_options(parser)
    add_overwrite(parser)
    add_common(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    import sys

    from rs_helpers.errors import RsError
    from rs_helpers.evaluation.datasets import get_referring_dataset
    from rs_helpers.errors import BadInputError
    from rs_helpers.commands.options import check_segmenter_options, load_segmenter, segmenter_record
    from rs_helpers.profile import is_tiny
    from rs_helpers.evaluation.refer_eval import evaluate_refer
    from rs_helpers.refer.backends import make_backend

    from rs_helpers.commands.resume import keep_on_interrupt, open_log
    from rs_helpers.distributed import processes
    from rs_helpers.evaluation.protocols import default_protocol, get_protocol
    from rs_helpers.profile import get_profile

    check_segmenter_options(args)
    if args.out and not args.out.lower().endswith(".json"):
        raise BadInputError(f"--out {args.out}: give a .json path")
    replay = args.vlm.split(":", 1)[1] if args.vlm.lower().startswith("replay:") else None
    ds = get_referring_dataset(args.dataset, root=args.root, split=args.split)
    kind_of = "samples" if args.dataset in ("samples", "jsonl") else args.dataset
    protocol = (get_protocol(args.protocol, kind_of, "refer") if args.protocol
                else default_protocol(kind_of, "refer"))
    if hasattr(ds, "set_parts"):
        ds.set_parts(protocol.parts)  # RMSIN: overlapping polygon parts summed, only 1 kept
    out = args.out or f"outputs/eval_refer_{args.dataset}_{ds.split}.json"
    segmenter = segmenter_record(args)
    # SAM 1 keeps the settings it always had (its earlier results files resume); the others name their model
    which = ({"sam": args.sam, "sam_checkpoint": str(args.sam_checkpoint or "")} if args.segmenter == "sam"
             else segmenter)
    recorded = {"eval": "refer", "dataset": args.dataset, "root": str(args.root or ""), "split": ds.split,
                "vlm": args.vlm, "base_url": args.base_url or "", "adapter": str(args.adapter or ""),
                **which, "n_clicks": args.n_clicks,
                "multimask": args.multimask, "profile": get_profile(args.profile),
                "protocol": protocol.name,
                **{k: v for k, v in sorted(backend_options(args).items()) if k != "api_key"}}
    procs = processes(args.device)
    # checked now, not after every (paid) model call; a results file of the same settings resumes
    log = open_log(args, {"--out": out}, inputs=[args.root, args.sam_checkpoint, replay], settings=recorded,
                   procs=procs)
    device = procs.device(args.device)
    backend = make_backend(args.vlm, base_url=args.base_url, adapter=args.adapter, profile=args.profile,
                           device=device, **backend_options(args))
    try:
        with keep_on_interrupt(log):
            result = evaluate_refer(
                ds.samples, backend,
                lambda: load_segmenter(args, device=device),
                n_clicks=args.n_clicks, multimask=args.multimask, limit=args.limit,
                dataset=getattr(ds, "title", args.dataset) or args.dataset, split=ds.split,
                sam_name=_sam_name(args) + (" (tiny)" if is_tiny(args.profile) else ""), segmenter=segmenter,
                reported=getattr(ds, "reported", {}), profile=args.profile, log=log, procs=procs,
                progress=procs.main, protocol=protocol)
    except RsError as exc:  # the service went down mid-run: keep and show what was scored
        partial = getattr(exc, "evaluation", None)
        if partial is None:
            raise
        print(f"stopped early; the samples scored so far (kept in {log.path}: the same command resumes):",
              file=sys.stderr)
        report(args, backend, partial, out=out)
        raise
    if procs.main:
        report(args, backend, result, out=out)
    return 0


def _sam_name(args) -> str:
    """What the table prints after "SAM": the SAM 1 variant, or "2.1 MODEL" / "3 tracker MODEL"."""
    from rs_helpers.commands.options import segmenter_source
    from rs_helpers.models.sam_tracker import NAMES, resolve_model_id

    if args.segmenter == "sam":
        return args.sam
    return f"{NAMES[args.segmenter].removeprefix('SAM ')} {resolve_model_id(args.segmenter, segmenter_source(args))}"


def report(args, backend, result, out) -> None:
    """The table, the failures, the token count, and the per-sample results file."""
    label = getattr(backend, "label", "")
    if label:
        print(f"answers: {label}")
    print(result.table())
    failures = result.failures
    if failures:
        print(f"{len(failures)} without usable clicks (IoU 0):")
        for f in failures[:20]:
            answer = (f["answer"] or "").replace("\n", " ")
            print(f"  {f['id']}: {answer[:80]!r}" if f["answer"] is not None else f"  {f['id']}: {f['error']}")
        if len(failures) > 20:
            print(f"  ... and {len(failures) - 20} more (see the results file)")
    usage = result.usage.as_dict()
    print(f"tokens: {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion "
          f"over {usage['calls']} calls")
    if out:
        result.save(out)
        print(f"per-sample results written to {out}")
