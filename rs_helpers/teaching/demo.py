"""The main job behind ``make demo``: run the suite's commands on the samples, then execute
every notebook headless into ``outputs/`` (executed copies with their figures).

Steps run in order and stop at the first failure with that step's exit code, so that a
machine without network stops at the first model download with the one-line exit-3 message.

The notebooks run in nbclient, which plays the front end's part of ipywidgets' ``Output`` widget
(what is captured in it lands in the saved widget state). Its stand-in also sent that state back
to the kernel on the shell channel while waiting there for the cell's reply; that send can
swallow the socket's wake-up (jupyter_client sends through a plain shadow of the asyncio socket),
and the reply, in time, was then read only when the cell's timeout ran out (jupyter/nbclient#312).
Ours keeps the capture and sends nothing: nobody reads that copy in a headless kernel.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rs_helpers.errors import RsError, WeightsUnavailableError


@dataclass
class Step:
    title: str
    argv: list[str]


def command_steps(out: Path) -> list[Step]:
    """The sample commands (each issue adds its own here)."""
    from rs_helpers.samples import get_sample, load_referring

    import os

    from rs_helpers.profile import get_profile, is_tiny

    dubai = get_sample("dubai_tile2_part001")
    if os.environ.get("OPENAI_API_KEY"):
        vlm = "openai:gpt-5"
    elif get_profile() == "tiny":
        vlm = "replay"  # the tiny Qwen writes no clicks; replay the labelled stored example answers
    else:
        vlm = "qwen:Qwen/Qwen3-VL-2B-Instruct"
    query = next(q for q in load_referring() if q.id == "dubai_tile4_part001_water_largest")
    # --overwrite: the demo's folder holds the demo's own results, remade on every run
    return [
        Step("open-vocabulary segmentation of a sample",
             ["ovss", str(dubai.image), "--classes", "; ".join(dubai.vocabulary), "--points-per-side", "16",
              "--out", str(out / "ovss_dubai_tile2.png"), "--overwrite"]),
        Step("referring segmentation of a sample query",
             ["refer", str(query.image), "--text", query.text, "--vlm", vlm,
              "--out", str(out / "refer_dubai_tile4_water.png"), "--clicks-out", str(out / "refer_clicks.json"),
              "--overwrite"]),
    ]


def _save(nb, path: Path) -> None:
    """An executed notebook, written whole or not at all."""
    import nbformat

    from rs_helpers.files import open_atomic

    with open_atomic(path, "w", encoding="utf-8") as fh:
        nbformat.write(nb, fh)


def notebook_client(nb, timeout: int, path: Path):
    """An nbclient ``NotebookClient`` for ``nb`` (a notebook in ``path``) whose stand-in for the
    ``Output`` widget never writes to the shell channel (see the module docstring)."""
    from nbclient import NotebookClient
    from nbclient.output_widget import OutputWidget

    class QuietOutputWidget(OutputWidget):
        def sync_state(self) -> None:  # the kernel's copy of the outputs: unread headless
            pass

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.widget_registry = {"@jupyter-widgets/output": {"OutputModel": QuietOutputWidget}}
    return client


def execute_notebooks(notebooks: list[Path], out: Path, timeout: int = 1800) -> None:
    """Run each notebook top to bottom and save the executed copy (with figures) in ``out``."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    from rs_helpers.teaching.gallery import META_KEY, run_record

    out.mkdir(parents=True, exist_ok=True)
    record = run_record()  # how they ran, for the gallery (rs_helpers.teaching.gallery)
    for path in notebooks:
        start = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        nb.metadata[META_KEY] = record
        client = notebook_client(nb, timeout, path)
        try:
            client.execute()
        except CellTimeoutError:
            _save(nb, out / path.name)
            raise RsError(f"{path.name}: a cell ran longer than {timeout} s (partial copy in {out / path.name}); "
                          "if the kernel sat idle meanwhile, a message was lost: run the command again") from None
        except CellExecutionError as exc:
            _save(nb, out / path.name)
            last = [line for line in str(exc).splitlines() if line.strip()]
            reason = next((line for line in reversed(last) if "Error" in line), last[-1] if last else "")
            if "WeightsUnavailableError" in str(exc):
                raise WeightsUnavailableError(f"{path.name}: {reason.split(': ', 1)[-1]}") from None
            raise RsError(f"{path.name} failed: {reason} (partial copy in {out / path.name})") from None
        _save(nb, out / path.name)
        print(f"  {path.name}: {time.perf_counter() - start:.0f} s -> {out / path.name}", flush=True)


def run_demo(out: Path, notebooks_dir: Path, run_notebooks: bool = True) -> int:
    from rs_helpers.cli import main as cli_main
    from rs_helpers.profile import get_profile, is_tiny

    out.mkdir(parents=True, exist_ok=True)
    print(f"rs-seg demo, profile {get_profile()} -> {out}/", flush=True)
    for number, step in enumerate(command_steps(out), 1):
        print(f"[{number}] {step.title}: rs-seg {' '.join(step.argv)}", flush=True)
        code = cli_main(step.argv)
        if code:
            return code
    if run_notebooks:
        notebooks = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
        print(f"[notebooks] executing {len(notebooks)} notebooks", flush=True)
        try:
            # Tiny cells take seconds: a short limit stops a stuck one early. (A widget cell once
            # cost exactly this limit: a reply read late, see the module docstring; no longer.)
            execute_notebooks(notebooks, out / "notebooks", timeout=120 if is_tiny() else 1800)
        except RsError as exc:
            print(f"rs-seg: error: {exc}", file=sys.stderr)
            return exc.exit_code
    print(f"done: results in {out}/", flush=True)
    return 0
