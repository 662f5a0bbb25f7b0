"""Check that an executed notebook's HTML export shows a static figure for every interp widget."""

from __future__ import annotations

import base64
import json
import re

import nbformat
import numpy as np

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGETS = ("LensExplorer", "HeadBrowser", "SteeringPanel", "THRViewer", "THRTrainingViewer")
_PLOT_DIV = re.compile(r'<div id="([0-9a-f-]{36})" class="plotly-graph-div"')
_NEW_PLOT = re.compile(r'Plotly\.newPlot\(\s*"([0-9a-f-]{36})",\s*')


def _typed_arrays(value):
    # plotly writes numpy arrays as {"dtype", "bdata" (base64), "shape"}; give them back as arrays
    if isinstance(value, dict) and set(value) >= {"dtype", "bdata"}:
        shape = [int(n) for n in str(value.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).reshape(shape)
    if isinstance(value, dict):
        return {k: _typed_arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed_arrays(v) for v in value]
    return value


def static_figures(html: str) -> list[dict]:
    """The figures a static HTML page draws, as plotly.js would get them: ``{"id", "data", "layout"}``
    from each ``Plotly.newPlot(id, data, layout, config)`` call in page order (typed arrays decoded)."""
    decoder = json.JSONDecoder()
    out = []
    for match in _NEW_PLOT.finditer(html):
        data, end = decoder.raw_decode(html, match.end())
        end = re.compile(r"\s*,\s*").match(html, end).end()
        layout, _ = decoder.raw_decode(html, end)
        out.append({"id": match.group(1), "data": _typed_arrays(data), "layout": layout})
    return out


def assert_every_widget_has_a_static_figure(run, expected: str) -> None:
    """Every widget output of ours in ``run.executed`` carries a text/html plotly figure, and each of
    those figures is in ``run.html`` (so a reader without a kernel never sees a blank output)."""
    nb = nbformat.read(run.executed, as_version=4)
    html = run.html.read_text()
    seen = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            plain = data.get("text/plain", "")
            name = plain.split("(")[0]
            if WIDGET_MIME not in data or name not in WIDGETS:
                continue
            ids = _PLOT_DIV.findall(data.get("text/html", ""))
            assert ids, f"{name} output has no static plotly figure beside its widget view"
            missing = [i for i in ids if i not in html]
            assert not missing, f"{name}'s static figure {missing} is not in the exported HTML"
            seen.append(name)
    assert expected in seen, f"no {expected} output in {run.executed} (saw {seen})"


def widget_figure_ids(nb) -> dict[str, list[str]]:
    """The ids of the static plotly figures beside each interp widget view in ``nb``, by widget name."""
    out: dict[str, list[str]] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            name = data.get("text/plain", "").split("(")[0]
            if WIDGET_MIME in data and name in WIDGETS:
                out.setdefault(name, []).extend(_PLOT_DIV.findall(data.get("text/html", "")))
    return out
