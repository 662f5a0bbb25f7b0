"""Parameter injection and headless execution of notebooks."""

from __future__ import annotations

import nbformat
import pytest

from interp.app.notebooks import NotebookExecutionError, execute_notebook, inject_parameters


def _notebook(path, body="print(N * 2)"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# test"),
        nbformat.v4.new_code_cell("N = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ]
    nbformat.write(nb, path)
    return path


def test_inject_after_parameters_cell(tmp_path):
    nb = nbformat.read(_notebook(tmp_path / "a.ipynb"), as_version=4)
    inject_parameters(nb, {"N": 21, "NAME": "x"})
    assert nb.cells[2].source.splitlines()[1:] == ["N = 21", "NAME = 'x'"]
    with pytest.raises(ValueError, match="identifier"):
        inject_parameters(nb, {"not valid": 1})


def test_missing_parameters_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    with pytest.raises(ValueError, match="tagged 'parameters'"):
        inject_parameters(nb, {"N": 1})


def test_execute_writes_outputs_and_html(tmp_path):
    run = execute_notebook(_notebook(tmp_path / "a.ipynb"), parameters={"N": 21}, out_dir=tmp_path / "out")
    nb = nbformat.read(run.executed, as_version=4)
    assert nb.cells[-1].outputs[0]["text"].strip() == "42"
    assert "42" in run.html.read_text()


def test_failing_cell_raises_with_name(tmp_path):
    path = _notebook(tmp_path / "bad.ipynb", body="raise RuntimeError('boom')")
    with pytest.raises(NotebookExecutionError, match=r"(?s)bad.ipynb failed.*RuntimeError: boom"):
        execute_notebook(path, out_dir=tmp_path / "out")


def test_html_export_shows_static_fallback_of_widgets(tmp_path):
    """A widget with a static text/html figure beside its view shows that figure in the HTML,
    with plotly.js inlined (no CDN: it must render offline)."""
    body = (
        "import ipywidgets as W, plotly.graph_objects as go\n"
        "class View:\n"
        "    def __init__(self):\n"
        "        self.fig = go.Figure(go.Bar(y=[1, 2, 3], name='marker-trace'))\n"
        "        self.box = W.VBox([W.Dropdown(options=['a', 'b']), W.HTML('live')])\n"
        "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
        "        bundle = self.box._repr_mimebundle_()\n"
        "        bundle['text/html'] = self.fig.to_html(include_plotlyjs='cdn', full_html=False)\n"
        "        return bundle\n"
        "View()"
    )
    run = execute_notebook(_notebook(tmp_path / "w.ipynb", body=body), out_dir=tmp_path / "out")
    nb = nbformat.read(run.executed, as_version=4)
    data = nb.cells[-1].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in data  # the live view is kept in the notebook
    html = run.html.read_text()
    assert "marker-trace" in html and "Plotly.newPlot" in html
    assert '<script src="https://cdn.plot.ly' not in html


def test_html_export_renders_plotly_mime_figures(tmp_path):
    body = (
        "import plotly.graph_objects as go, plotly.io as pio\n"
        "pio.renderers.default = 'plotly_mimetype'\n"
        "go.Figure(go.Scatter(y=[1, 2], name='mime-only-trace')).show()"
    )
    run = execute_notebook(_notebook(tmp_path / "p.ipynb", body=body), out_dir=tmp_path / "out")
    data = nbformat.read(run.executed, as_version=4).cells[-1].outputs[0]["data"]
    assert set(data) >= {"application/vnd.plotly.v1+json"} and "text/html" not in data
    html = run.html.read_text()
    assert "mime-only-trace" in html and "Plotly.newPlot" in html
