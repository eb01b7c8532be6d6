"""What ``rs-seg eval ovss|refer`` share for resumable, multi-process runs.

The results file (``OUT.results.jsonl``, :mod:`rs_helpers.evaluation.results_log`) is the eval's
own checkpoint: a rerun with the same settings resumes from it, so it is not an output that
``--overwrite`` guards, and the report beside it, made from it, may then be rewritten.
``--fresh`` throws the results file away and starts over.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path


def add_resume_options(parser) -> None:
    parser.add_argument("--fresh", action="store_true",
                        help="start over: discard the results file of an earlier run of this eval "
                             "(by default a rerun resumes from it)")


def open_log(args, report_files: dict, inputs: list, settings: dict, procs):
    """Check the outputs, apply ``--fresh`` and return the :class:`ResultsLog` (settings checked).

    ``report_files`` maps option names to the report paths; the first is the report itself."""
    from rs_helpers.evaluation.results_log import ResultsLog, rank_files, results_path
    from rs_helpers.files import check_outputs

    report = Path(next(iter(report_files.values())))
    path = results_path(report)
    check_outputs({"its results file": path}, inputs=inputs, overwrite=True)
    log = ResultsLog(path, settings, rank=procs.rank)
    resuming = bool(rank_files(path)) and not args.fresh
    check_outputs(report_files, inputs=inputs, overwrite=args.overwrite or args.fresh or resuming)
    if args.fresh and procs.main:
        log.discard()
    procs.barrier()  # no rank reads before rank 0 has discarded
    done = log.load()  # other settings: exit 2 here, before any model is loaded
    if done and procs.main:
        print(f"resuming: {len(done)} samples already in {path} (--fresh starts over)", file=sys.stderr)
    return log


@contextmanager
def keep_on_interrupt(log):
    """Ctrl-C, SIGTERM or SIGHUP: say what is kept and how to resume, then stop as usual."""
    try:
        yield
    except KeyboardInterrupt:
        kept = len(log.load()) if log.path.exists() else 0
        print(f"stopped: {kept} finished samples are kept in {log.path}; run the same command again to "
              "resume", file=sys.stderr)
        raise
