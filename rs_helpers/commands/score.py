"""``rs-seg score refer|ovss``: score saved predictions against ground truth under a named protocol.

``score refer --pred DIR --gt DIR`` pairs binary masks by file stem (PNG or TIFF, > 0 is target)
and reports gIoU, cIoU and P@0.5..0.9. ``score ovss --pred DIR --dataset NAME --root DIR`` scores
class-index label maps (as ``rs-seg ovss --out`` writes them, named after the benchmark's images)
against the benchmark's ground truth: mIoU, or the foreground IoU of a binary set. The protocol
(``--protocol``; default: the dataset's own) is printed first; the last line is the score. A
ground-truth file without its prediction is an error. Nothing is written unless ``--json OUT``.
"""
from __future__ import annotations

import sys
from pathlib import Path


def register(subparsers) -> None:
    from rs_helpers.commands.options import add_overwrite
    from rs_helpers.evaluation.datasets import list_datasets
    from rs_helpers.evaluation.protocols import list_protocols

    parser = subparsers.add_parser("score", help="score saved masks or label maps under a protocol (gIoU / mIoU)",
                                   description=__doc__)
    kinds = parser.add_subparsers(dest="score_kind", metavar="KIND")
    r = kinds.add_parser("refer", help="binary masks against ground-truth masks (gIoU, cIoU, P@t)",
                         description="Score saved referring / reasoning masks, paired with the ground truth by stem.")
    r.add_argument("--pred", required=True, metavar="DIR", help="predicted masks (PNG or TIFF, > 0 is target)")
    r.add_argument("--gt", required=True, metavar="DIR", help="ground-truth masks, named as the predictions")
    r.add_argument("--protocol", default=None, choices=list_protocols("refer"),
                   help="scoring rules (default: the --dataset's own, else native)")
    r.add_argument("--dataset", default=None,
                   help="the benchmark the masks come from, to choose its protocol: rrsisd and refsegrs rmsin, "
                        "earthreason segearth-r1")
    o = kinds.add_parser("ovss", help="label maps against a benchmark's ground truth (mIoU / IoU)",
                         description="Score saved class-index label maps against an open-vocabulary benchmark.")
    o.add_argument("--pred", required=True, metavar="DIR",
                   help="label maps named by sample id or image stem (PNG or TIFF of class indices)")
    o.add_argument("--dataset", required=True, help=f"one of: {', '.join(list_datasets('ovss')[:-1])}")
    o.add_argument("--root", default=None, help="the dataset's folder (default: $RS_HELPERS_BENCHMARKS/<usual name>)")
    o.add_argument("--split", default=None, help="split (default: the protocol's)")
    o.add_argument("--protocol", default=None, choices=list_protocols("ovss"),
                   help="protocol printed with the score (default: the dataset's own)")
    for p, func in ((r, run_refer), (o, run_ovss)):
        p.add_argument("--json", default=None, metavar="OUT", help="also write the scores and every sample as JSON")
        add_overwrite(p)
        p.set_defaults(func=func)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _check_json(args, inputs: list) -> Path | None:
    """``--json``: a .json file, checked (and its folder made) before any scoring."""
    from rs_helpers.errors import BadInputError
    from rs_helpers.files import check_outputs

    if args.json is None:
        return None
    out = Path(args.json)
    if out.suffix.lower() != ".json":
        raise BadInputError(f"--json {out}: give a .json path")
    check_outputs({"--json": out}, inputs=inputs, overwrite=args.overwrite)
    return out


def _note(extra: list, folder: str, outside: int = 0, classes: int = 0) -> None:
    if extra:
        print(f"rs-seg: note: {len(extra)} file(s) in {folder} have no ground truth and were not scored "
              f"(e.g. {extra[0]})", file=sys.stderr)
    if outside:
        print(f"rs-seg: note: {outside} predicted pixels hold values outside 0..{classes - 1}; they count as misses",
              file=sys.stderr)


def _write(out: Path | None, payload: dict) -> None:
    from rs_helpers.files import write_json_atomic

    if out is not None:
        write_json_atomic(out, payload)
        print(f"wrote {out}")


def run_refer(args) -> int:
    from rs_helpers.evaluation.datasets.registry import REFERRING_REGISTRY, canonical_name
    from rs_helpers.evaluation.protocols import default_protocol, describe, get_protocol
    from rs_helpers.evaluation.scoring import refer_score_line, score_refer

    out = _check_json(args, [args.pred, args.gt])
    dataset = canonical_name(args.dataset, REFERRING_REGISTRY) if args.dataset else None
    if args.protocol:
        protocol = get_protocol(args.protocol, dataset, kind="refer")
    else:
        protocol = default_protocol(dataset, "refer") if dataset else get_protocol("native", kind="refer")
    run = score_refer(args.pred, args.gt, protocol)
    print(describe(protocol))
    _note(run.extra, args.pred)
    _write(out, run.to_json())
    print(refer_score_line(run))
    return 0


def run_ovss(args) -> int:
    from rs_helpers.evaluation.datasets import get_dataset
    from rs_helpers.evaluation.metrics import format_table
    from rs_helpers.evaluation.protocols import default_protocol, describe, get_protocol
    from rs_helpers.evaluation.scoring import ovss_score_line, score_ovss

    out = _check_json(args, [args.pred, args.root])
    dataset = get_dataset(args.dataset, root=args.root, split=args.split)
    protocol = (get_protocol(args.protocol, dataset.name, "ovss") if args.protocol
                else default_protocol(dataset.name, "ovss"))
    run = score_ovss(args.pred, dataset, protocol)
    print(describe(protocol, dataset.classes))
    _note(run.extra, args.pred, run.outside, len(run.class_names))
    print(format_table(run.class_names, run.confusion, title=f"{dataset.title} ({dataset.split}), per-class IoU"))
    _write(out, run.to_json())
    print(ovss_score_line(run))
    return 0
