"""``rs-seg doctor``: versions, device, cache and which weights are present."""
from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("doctor", help="check the environment: versions, device, cached weights")
    parser.set_defaults(func=run)


def run(args) -> int:
    from rs_helpers.models.doctor import format_checks, run_checks

    checks = run_checks()
    print(format_checks(checks))
    return 0 if all(c.ok for c in checks) else 1
