"""Headless notebook execution with parameter injection (papermill-style, without papermill).

The first code cell tagged ``parameters`` holds the defaults; overrides are injected as a new cell
right after it, so a notebook reads the same whether run by a person, ``interp demo`` or a test.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "NotebookRun",
    "NotebookExecutionError",
    "execute_notebook",
    "inject_parameters",
    "notebook_html",
    "static_copy",
]

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


class NotebookExecutionError(RuntimeError):
    """A cell failed; the message names the notebook and cell and carries the traceback."""


@dataclass(frozen=True)
class NotebookRun:
    """Where an executed notebook was written and how long it took."""

    source: Path
    executed: Path
    html: Path | None
    seconds: float


def inject_parameters(nb: Any, parameters: Mapping[str, Any]) -> Any:
    """Insert a cell assigning ``parameters`` after the ``parameters``-tagged cell (in place).

    Values must be Python literals (their ``repr`` is what the cell contains).
    """
    import nbformat

    if not parameters:
        return nb
    for name in parameters:
        if not str(name).isidentifier():
            raise ValueError(f"Parameter name {name!r} is not a Python identifier.")
    lines = ["# Parameters injected by interp.app.notebooks.execute_notebook"]
    lines += [f"{name} = {value!r}" for name, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    index = next(
        (i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])),
        None,
    )
    if index is None:
        raise ValueError(
            "The notebook has no cell tagged 'parameters'; tag the cell that holds the defaults "
            "(cell metadata {'tags': ['parameters']}) so overrides can be injected after it."
        )
    nb.cells.insert(index + 1, cell)
    return nb


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def static_copy(nb: Any) -> Any:
    """A copy of ``nb`` fit for static HTML: outputs that carry both a widget view and a static
    ``text/html`` fallback keep only the fallback, and plotly figures shown with the plotly mime type
    alone get an HTML rendering.

    nbconvert renders a widget view in preference to everything else, and without a live kernel
    (or a network for the widget manager's scripts) that shows nothing; interp's widgets put a
    static figure beside their view, and this makes it the one that is shown.
    """
    import copy

    import plotly.io as pio

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_MIME in data and "text/html" in data:
                del data[WIDGET_MIME]
            if PLOTLY_MIME in data and "text/html" not in data:
                # JupyterLab renders the plotly mime type itself; nbconvert cannot, so give the page
                # the same figure as HTML (plotly.js is inlined once by notebook_html).
                data["text/html"] = pio.to_html(data[PLOTLY_MIME], include_plotlyjs=False, full_html=False)
    return nb


_EXTERNAL_SCRIPT = re.compile(r'<script\b[^>]*\bsrc="(?:https?:)?//[^"]*"[^>]*>\s*</script>\s*')
_CDN_IMPORT = re.compile(r'<script type="module">\s*import\s*"(?:https?:)?//[^"]*"\s*;?\s*</script>\s*')
_MATHJAX = re.compile(r"mathjax", re.IGNORECASE)
_TEX = re.compile(r"\$[^$\n]+\$|\\\(|\\\[|\\begin\{")


def notebook_html(nb: Any) -> str:
    """HTML of an executed notebook in which every interp widget shows its static figure, and which
    loads nothing from the network: plotly.js is inlined once in the head, and the scripts a static page
    does not need are dropped (require.js, plotly's CDN loaders, MathJax; MathJax's script stays only
    where a markdown cell holds TeX math, which has no offline copy). nbconvert's mermaid loader stays:
    it imports mermaid only for a page that holds a mermaid diagram."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(static_copy(nb))
    if "Plotly.newPlot" in body:
        # Make the page self-contained: drop the copy of plotly.js a widget's static fallback carries
        # (the first of a kernel session), and inline plotly.js once in the head, before every figure,
        # so the figures render offline (no network on many research machines).
        from plotly.offline import get_plotlyjs

        plotlyjs = get_plotlyjs()
        body = body.replace(plotlyjs, "")
        body = body.replace("</head>", f'<script type="text/javascript">{plotlyjs}</script>\n</head>', 1)
    math = any(_TEX.search(c.source) for c in nb.cells if c.cell_type == "markdown")
    body = _EXTERNAL_SCRIPT.sub(lambda m: m.group(0) if math and _MATHJAX.search(m.group(0)) else "", body)
    return _CDN_IMPORT.sub("", body)


def _kernel_manager(kernel_name: str, socket_dir: str) -> dict[str, Any]:
    """A kernel on a local IPC transport where the OS has one (POSIX): the same machine, sockets under
    ``socket_dir`` (an absolute path: the kernel runs in the notebook's folder, the client here), and no
    "Kernel is running over TCP without encryption" warning on every run. On Windows nbclient's default
    TCP kernel is kept."""
    if os.name == "nt":
        return {}
    from jupyter_client.manager import AsyncKernelManager  # nbclient drives its kernel asynchronously

    return {"km": AsyncKernelManager(kernel_name=kernel_name, transport="ipc", ip=os.path.join(socket_dir, "kernel"))}


def execute_notebook(
    path: str | os.PathLike[str],
    *,
    parameters: Mapping[str, Any] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    timeout: int = 1200,
    html: bool = True,
    kernel_name: str = "python3",
) -> NotebookRun:
    """Execute a notebook headless in its own folder and write the executed copy (and HTML).

    Raises :class:`NotebookExecutionError` on the first failing cell.

    >>> run = execute_notebook("notebooks/01_translation_barrier.ipynb",
    ...                        parameters={"OUT_DIR": "/tmp/out"}, out_dir="/tmp/out")  # doctest: +SKIP
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    source = Path(path).resolve()
    if not source.is_file():
        raise FileNotFoundError(f"No notebook at {source}.")
    out = Path(out_dir) if out_dir is not None else source.parent
    out.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(source, as_version=4)
    inject_parameters(nb, dict(parameters or {}))
    start = time.perf_counter()
    executed = out / f"{source.stem}.executed.ipynb" if out == source.parent else out / source.name
    try:
        with tempfile.TemporaryDirectory(prefix="interp-kernel-") as socket_dir:
            client = NotebookClient(
                nb, timeout=timeout, kernel_name=kernel_name, resources={"metadata": {"path": str(source.parent)}},
                **_kernel_manager(kernel_name, socket_dir),
            )
            # the kernel manager is ours (made above): the client shuts its kernel down when the notebook
            # ends (nbclient only does so for managers it made), so no kernel outlives us and warns
            # "Parent appears to have exited" on the console
            client.owns_km = True
            client.execute()
    except CellExecutionError as err:
        nbformat.write(nb, executed)
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # ANSI colours make logs unreadable
        raise NotebookExecutionError(f"{source.name} failed (partial output in {executed}):\n{message}") from err
    seconds = time.perf_counter() - start
    nbformat.write(nb, executed)
    html_path = None
    if html:
        html_path = out / f"{source.stem}.html"
        html_path.write_text(notebook_html(nb), encoding="utf-8")
    return NotebookRun(source=source, executed=executed, html=html_path, seconds=seconds)
