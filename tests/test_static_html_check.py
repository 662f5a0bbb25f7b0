"""The static-figure check used by the notebook tests fails on a blank widget output."""

from __future__ import annotations

from types import SimpleNamespace

import nbformat
import plotly.graph_objects as go
import pytest

from static_html import WIDGET_MIME, assert_every_widget_has_a_static_figure


def _run(tmp_path, html_fallback: str, exported: str):
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output("display_data", data={
        WIDGET_MIME: {"model_id": "x", "version_major": 2, "version_minor": 0},
        "text/plain": "THRViewer(3 groups x 4)", **({"text/html": html_fallback} if html_fallback else {})})
    nb.cells.append(nbformat.v4.new_code_cell("viewer", outputs=[out]))
    nbformat.write(nb, tmp_path / "n.ipynb")
    (tmp_path / "n.html").write_text(exported)
    return SimpleNamespace(executed=tmp_path / "n.ipynb", html=tmp_path / "n.html")


def test_check_passes_only_when_the_figure_reaches_the_html(tmp_path):
    fig = go.Figure(go.Bar(y=[1])).to_html(include_plotlyjs=False, full_html=False)
    assert_every_widget_has_a_static_figure(_run(tmp_path, fig, "<html>" + fig + "</html>"), "THRViewer")
    with pytest.raises(AssertionError, match="not in the exported HTML"):
        assert_every_widget_has_a_static_figure(_run(tmp_path, fig, "<html>blank</html>"), "THRViewer")
    with pytest.raises(AssertionError, match="no static plotly figure"):
        assert_every_widget_has_a_static_figure(_run(tmp_path, "", "<html></html>"), "THRViewer")
    with pytest.raises(AssertionError, match="no HeadBrowser output"):
        assert_every_widget_has_a_static_figure(_run(tmp_path, fig, fig), "HeadBrowser")
