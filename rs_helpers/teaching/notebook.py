"""Small conveniences for the notebooks: the profile banner, the settings cell, and views that
never wait for a front end.

A cell's first view is an ordinary output (an image, text), drawn while the cell runs: that is
what executed copies, GitHub, nbviewer and exported HTML show, and it needs no front end. Only
later views, drawn by a control's callback in a live session, go into an ipywidgets ``Output``.
Nothing is captured into an ``Output`` while a cell runs: a headless client (nbclient, behind
``nbconvert --execute``, ``pytest --nbmake`` and ``make demo``) plays the front end's part of that
widget by sending its state back to the kernel on the shell channel, the channel on which it is
waiting for the cell's reply. That send can swallow the socket's wake-up, and the reply, sent in
time, is then read only when the client's per-cell timeout runs out (jupyter/nbclient#312).
"""
from __future__ import annotations

import io
import platform
from typing import Callable

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


def pick(full: dict, tiny: dict | None = None, profile: str | None = None,
         classroom: dict | None = None) -> dict:
    """The settings for the active profile: ``classroom`` or ``tiny`` overrides ``full`` key by
    key under its profile, so the settings cell shows the paper's defaults next to the cheaper
    ones. A key the override names must exist in ``full`` (a typo would otherwise go unseen)."""
    from rs_helpers.errors import BadInputError

    settings = dict(full)
    settings["profile"] = get_profile(profile)
    for name, override in (("classroom", classroom), ("tiny", tiny)):
        unknown = sorted(set(override or ()) - set(full))
        if unknown:
            raise BadInputError(f"pick(): {name} sets {', '.join(unknown)}, which full= does not have")
    override = {"classroom": classroom, "tiny": tiny}.get(settings["profile"])
    if override:
        settings.update(override)
    return settings


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes, whatever the backend (Agg shows figures as text only)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def show_figure(fig) -> None:
    """Display ``fig`` as a PNG image (also under Agg), then close it so that it is shown once."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    display(Image(data=figure_png(fig), format="png"))
    plt.close(fig)


def interactive_view(function: Callable[..., object], /, **controls):
    """``ipywidgets.interactive(function, **controls)`` without the wait for a front end.

    ``function`` runs at once with the controls' values and its figures and prints are ordinary
    outputs (see the module docstring); the returned box holds the controls and an output area
    where moving one runs ``function`` again (the default view stays above, to compare).
    ``controls``: ipywidgets value widgets; any other value is passed as it is, like
    ``ipywidgets.fixed``. Needs ipywidgets, as the controls do.
    """
    import ipywidgets as widgets
    from ipywidgets.widgets.interaction import show_inline_matplotlib_plots

    live = {name: c for name, c in controls.items() if isinstance(c, widgets.ValueWidget)}

    def values() -> dict:
        return {name: live[name].value if name in live else c for name, c in controls.items()}

    function(**values())
    out = widgets.Output()

    def update(_change=None):
        with out:
            out.clear_output(wait=True)
            function(**values())
            show_inline_matplotlib_plots()

    for control in live.values():
        control.observe(update, names="value")
    box = widgets.VBox([c for c in live.values() if isinstance(c, widgets.DOMWidget)] + [out],
                       _dom_classes=["widget-interact"])
    return box
