"""Small conveniences for the notebooks: the profile banner and the settings cell."""
from __future__ import annotations

import platform

from rs_helpers.profile import banner_html, get_profile


def setup_notebook(profile: str | None = None) -> str:
    """Show which profile is active (a loud red banner for tiny) and the device; return the profile."""
    import torch

    from rs_helpers.device import pick_device

    active = get_profile(profile)
    device = pick_device()
    text = f"profile: {active} | device: {device} | torch {torch.__version__} | Python {platform.python_version()}"
    try:
        from IPython.display import HTML, display

        display(HTML(banner_html(active) + f"<div style='font-family:monospace'>{text}</div>"))
    except ImportError:  # plain Python
        print(text)
    return active


def pick(full: dict, tiny: dict | None = None, profile: str | None = None) -> dict:
    """The settings for the active profile: ``tiny`` overrides ``full`` key by key under the
    tiny profile, so the settings cell shows the real defaults next to the cheap CI ones."""
    settings = dict(full)
    settings["profile"] = get_profile(profile)
    if settings["profile"] == "tiny" and tiny:
        settings.update(tiny)
    return settings
