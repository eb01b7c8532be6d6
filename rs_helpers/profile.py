"""Model profiles: ``full``, ``classroom`` (both real pretrained weights) or ``tiny``.

``full`` runs the paper's settings (SAM ViT-L, a 29 x 29 grid, 1024 px). ``classroom`` loads real
weights too but picks the cheaper settings a class can run on laptops (SAM ViT-B, a 16 x 16 grid,
512 px); each notebook's settings cell shows both. The tiny profile exists so that tests, CI and
notebooks can exercise every code path offline in seconds. Its models are randomly initialised:
their masks, labels and clicks are meaningless, and every place that uses them says so loudly.

``$RS_HELPERS_RANDOM_WEIGHTS=1`` (timing runs only, :mod:`rs_helpers.models.random_weights`)
keeps a real profile's architectures and settings but skips the weights: what it measures is
compute time, and it says so as loudly as the tiny profile.
"""
from __future__ import annotations

import contextlib
import os
import sys

PROFILES = ("full", "classroom", "tiny")
ENV_VAR = "RS_HELPERS_PROFILE"
RANDOM_WEIGHTS_ENV = "RS_HELPERS_RANDOM_WEIGHTS"

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


def random_weights(explicit: str | None = None) -> bool:
    """Whether a real profile's models are built with random weights (a timing run): set by
    ``$RS_HELPERS_RANDOM_WEIGHTS`` to 1/true/yes; never under the tiny profile."""
    flag = os.environ.get(RANDOM_WEIGHTS_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return flag and not is_tiny(explicit)


RANDOM_BANNER = (
    "*** RANDOM WEIGHTS (timing run): real architectures, randomly initialised. ***\n"
    "*** Masks, labels and clicks are MEANINGLESS; only the compute time is real. ***\n"
    f"*** Unset {RANDOM_WEIGHTS_ENV} for results. ***"
)


def announce_random(what: str, stream=None) -> None:
    """Print the random-weights warning on stderr, once per kind of model per process."""
    key = f"random:{what}"
    if key in _announced:
        return
    _announced.add(key)
    print(f"{RANDOM_BANNER}\n(random weights in use: {what})", file=stream or sys.stderr, flush=True)


def announce_tiny(what: str, stream=None) -> None:
    """Print the tiny-profile warning on stderr, once per kind of model per process."""
    if what in _announced:
        return
    _announced.add(what)
    stream = stream or sys.stderr
    print(f"{TINY_BANNER}\n(tiny model in use: {what})", file=stream, flush=True)


def banner_html(profile: str | None = None) -> str:
    """An HTML banner for notebooks: red for tiny and for random weights, green otherwise."""
    active = get_profile(profile)
    if active == "tiny" or random_weights(active):
        body = (TINY_BANNER if active == "tiny" else RANDOM_BANNER).replace("\n", "<br>")
        return (
            '<div style="border:3px solid #c00;background:#fee;padding:8px;font-weight:bold">'
            f"{body}</div>"
        )
    what = {"full": "Full profile: the paper's settings",
            "classroom": "Classroom profile: smaller models and settings (SAM ViT-B, 16 x 16 grid, 512 px)"}[active]
    return (
        '<div style="border:2px solid #080;background:#efe;padding:6px">'
        f"{what}, real pretrained weights (downloaded once, then cached).</div>"
    )


TINY_SEED = 0


@contextlib.contextmanager
def seeded(seed: int = TINY_SEED):
    """Fork the global RNG so that tiny models are identical on every build."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
