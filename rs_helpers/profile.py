"""Model profiles: ``full`` (real pretrained weights) or ``tiny`` (random small models).

The tiny profile exists so that tests, CI and notebooks can exercise every code path
offline in seconds. Its models are randomly initialised: their masks, labels and clicks are
meaningless, and every place that uses them says so loudly.
"""
from __future__ import annotations

import contextlib
import os
import sys

PROFILES = ("full", "tiny")
ENV_VAR = "RS_HELPERS_PROFILE"

TINY_BANNER = (
    "*** TINY PROFILE: models are tiny and randomly initialised. ***\n"
    "*** Their masks, labels and clicks are MEANINGLESS: they only exercise the code. ***\n"
    "*** Use the full profile (real weights) for results. ***"
)

_announced: set[str] = set()


def get_profile(explicit: str | None = None) -> str:
    """Return the active profile: ``explicit`` if given, else ``$RS_HELPERS_PROFILE``, else full."""
    value = (explicit or os.environ.get(ENV_VAR) or "full").strip().lower()
    if value not in PROFILES:
        from rs_helpers.errors import BadInputError

        raise BadInputError(f"unknown profile {value!r}; choose one of {', '.join(PROFILES)}")
    return value


def is_tiny(explicit: str | None = None) -> bool:
    return get_profile(explicit) == "tiny"


def announce_tiny(what: str, stream=None) -> None:
    """Print the tiny-profile warning on stderr, once per kind of model per process."""
    if what in _announced:
        return
    _announced.add(what)
    stream = stream or sys.stderr
    print(f"{TINY_BANNER}\n(tiny model in use: {what})", file=stream, flush=True)


def banner_html(profile: str | None = None) -> str:
    """An HTML banner for notebooks: red for tiny, green for full."""
    if get_profile(profile) == "tiny":
        body = TINY_BANNER.replace("\n", "<br>")
        return (
            '<div style="border:3px solid #c00;background:#fee;padding:8px;font-weight:bold">'
            f"{body}</div>"
        )
    return (
        '<div style="border:2px solid #080;background:#efe;padding:6px">'
        "Full profile: real pretrained weights (downloaded once, then cached).</div>"
    )


TINY_SEED = 0


@contextlib.contextmanager
def seeded(seed: int = TINY_SEED):
    """Fork the global RNG so that tiny models are identical on every build."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
