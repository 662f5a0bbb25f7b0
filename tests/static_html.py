"""Check that an executed notebook's HTML export shows a static figure for every interp widget."""

from __future__ import annotations

import re

import nbformat

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGETS = ("LensExplorer", "HeadBrowser", "SteeringPanel", "THRViewer")
_PLOT_DIV = re.compile(r'<div id="([0-9a-f-]{36})" class="plotly-graph-div"')


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
