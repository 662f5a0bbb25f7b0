"""The FigureWidget helper under the four widgets: in-place fills, the live + static bundle, plotly.js
shipped once (no CDN), and paper export of the chosen panes."""

from __future__ import annotations

import copy
import re

import ipywidgets as W
import nbformat
import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

import widgets._view as view
from widgets._view import WIDGET_MIME, FigureView, Pane, figures_html, fill


class Two(FigureView):
    exported = ("main",)
    export_width = "single"

    def __init__(self):
        self.panes = {"main": Pane(), "side": Pane()}
        fill(self.panes["main"], go.Figure(go.Bar(y=[1, 2, 3], name="main-bars"), layout=dict(title="main")))
        fill(self.panes["side"], go.Figure(go.Scatter(y=[3, 1]), layout=dict(title="side")))
        self.widget = W.VBox(list(self.panes.values()))

    def _static_before(self) -> str:
        return "<p>before</p>"

    def _static_after(self) -> str:
        return "<p>after</p>"

    def __repr__(self) -> str:
        return "Two()"


def test_fill_replaces_content_in_place():
    target = go.FigureWidget(go.Scatter(y=[1]))
    same = target
    fill(target, go.Figure([go.Bar(y=[4, 5]), go.Bar(y=[6])], layout=dict(title="new", barmode="stack")))
    assert target is same
    assert [t.type for t in target.data] == ["bar", "bar"] and list(target.data[0].y) == [4, 5]
    assert target.layout.title.text == "new" and target.layout.barmode == "stack"
    fill(target, go.Figure())
    assert len(target.data) == 0


def _frontend_layout(pane: go.FigureWidget):
    """Replay, as plotly's frontend model does, every layout message the pane sends from now on onto
    the layout the frontend holds now: a key set to null is removed, any other value replaces that key."""
    state = copy.deepcopy(pane._widget_layout)

    def apply(edits):
        for path, value in edits.items():
            *parents, leaf = path.split(".")
            node = state
            for key in parents:
                node = node.setdefault(key, {})
            if value is None:
                node.pop(leaf, None)
            else:
                node[leaf] = copy.deepcopy(value)

    pane.observe(lambda c: c["new"] and apply(c["new"]["relayout_data"]), "_py2js_relayout")
    pane.observe(lambda c: c["new"] and apply(c["new"]["layout_data"]), "_py2js_update")
    return state


def test_fill_leaves_no_stale_layout_on_the_frontend():
    """The frontend merges layouts: what the last figure set and the new one does not (its title, a
    second axis, subplot titles) must be removed, or a histogram keeps a heatmap's title."""
    from plotly.subplots import make_subplots

    pane = go.FigureWidget()
    seen = _frontend_layout(pane)
    fill(pane, go.Figure(go.Heatmap(z=[[1, 2]]), layout=dict(title="token grid", height=500)))
    two = make_subplots(rows=1, cols=2, subplot_titles=("a", "b"))
    two.add_trace(go.Scatter(y=[1]), 1, 1).add_trace(go.Scatter(y=[2]), 1, 2)
    fill(pane, two)
    assert "title" not in seen and "height" not in seen and seen["xaxis2"]["domain"] == list(two.layout.xaxis2.domain)
    fill(pane, go.Figure(go.Histogram(x=[1, 2]), layout=dict(title="histogram")))
    assert seen["title"] == {"text": "histogram"} and not {"xaxis2", "yaxis2", "annotations"} & set(seen)
    assert seen == pane.layout.to_plotly_json()


def test_display_and_fill_hand_the_frontend_the_current_state():
    """Edits made before plotly's frontend module listens are not applied by it; every fill and every
    display syncs each pane's traces and layout, the state a view draws from, as JSON (a NaN gap in a
    2-D array travels as null, not as the string "nan")."""
    import json

    import numpy as np
    from plotly.serializers import _py_to_js

    v = Two()
    v.panes["side"].add_trace(go.Bar(y=[1]))  # an edit of plotly's own: only its delta message travels
    assert v.panes["side"]._widget_data != v.panes["side"]._data
    v._repr_mimebundle_()
    assert v.panes["side"]._widget_data == v.panes["side"]._data
    fill(v.panes["side"], go.Figure(go.Heatmap(z=np.array([[1.0, np.nan], [2.0, 3.0]])), layout=dict(title="late")))
    for pane in v.panes.values():
        assert pane._widget_data == pane._data and pane._widget_layout == pane.layout.to_plotly_json()
    wire = json.dumps(_py_to_js(v.panes["side"]._widget_data, None), allow_nan=False)
    assert json.loads(wire)[0]["z"] == [[1.0, None], [2.0, 3.0]]


def test_plotlyjs_travels_once_per_session_and_never_from_a_cdn(monkeypatch):
    monkeypatch.setattr(view, "_plotlyjs_shipped", False)
    js = get_plotlyjs()
    figs = [go.Figure(go.Bar(y=[1])), go.Figure(go.Bar(y=[2]))]
    first, second = figures_html(figs), figures_html(figs)
    assert first.count(js) == 1 and js not in second
    assert first.index(js) < first.index('class="plotly-graph-div"')  # defined before the first figure draws
    for html in (first, second):
        assert len(re.findall(r'class="plotly-graph-div"', html)) == 2
        assert not re.search(r"<script[^>]*src=", html)


def test_bundle_holds_live_view_and_static_figures():
    from static_html import static_figures

    v = Two()
    bundle = v._repr_mimebundle_()
    assert bundle[WIDGET_MIME]["model_id"] == v.widget.model_id and bundle["text/plain"] == "Two()"
    html = bundle["text/html"]
    assert html.startswith("<p>before</p>") and html.endswith("<p>after</p>")
    shown = static_figures(html)
    assert [f["layout"]["title"]["text"] for f in shown] == ["main", "side"]
    assert shown[0]["data"][0]["y"] == [1, 2, 3] and v.figure().layout.title.text == "main"


def test_export_writes_the_chosen_panes_at_paper_size(tmp_path, monkeypatch):
    import interp.viz.figures as figures

    written = []
    monkeypatch.setattr(figures, "export_many", lambda items, formats: written.extend(
        (fig, path, formats) for fig, path in items) or [p for _, p in items])
    v = Two()
    v.export(tmp_path / "fig", formats=("svg",))
    ((fig, path, formats),) = written
    assert path == tmp_path / "fig" and formats == ("svg",)
    assert fig.layout.width == figures.paper_layout(go.Figure(), "single").layout.width
    assert list(fig.data[0].y) == [1, 2, 3]
    written.clear()
    Two.exported = None
    try:
        v.export(tmp_path / "fig", width="double")
    finally:
        Two.exported = ("main",)
    assert [p for _, p, _ in written] == [tmp_path / "fig", tmp_path / "fig_side"]
    assert all(f.layout.width == figures.paper_layout(go.Figure(), "double").layout.width for f, _, _ in written)


def test_exported_notebook_page_carries_plotlyjs_once_in_its_head(monkeypatch):
    """Widget outputs (the first of the session with plotly.js) and a plotly-mime figure before them:
    the page inlines plotly.js once, in the head, before any figure, and loads nothing from a CDN."""
    from interp.app.notebooks import PLOTLY_MIME, notebook_html

    monkeypatch.setattr(view, "_plotlyjs_shipped", False)
    nb = nbformat.v4.new_notebook()
    fig = go.Figure(go.Scatter(y=[1, 2], name="mime-only-trace"))
    outputs = [nbformat.v4.new_output("display_data", data={PLOTLY_MIME: fig.to_plotly_json(), "text/plain": "Figure"})]
    for _ in range(2):
        bundle = Two()._repr_mimebundle_()
        outputs.append(nbformat.v4.new_output("display_data", data=bundle))
    nb.cells.append(nbformat.v4.new_code_cell("views", outputs=outputs))
    assert get_plotlyjs() in outputs[1]["data"]["text/html"] and get_plotlyjs() not in outputs[2]["data"]["text/html"]
    page = notebook_html(nbformat.from_dict(nb))
    js = get_plotlyjs()
    assert page.count(js) == 1 and page.index(js) < page.index("</head>") < page.index("plotly-graph-div")
    assert not re.search(r'<script[^>]*src="https://cdn\.plot\.ly', page)
    assert "mime-only-trace" in page and len(re.findall(r'class="plotly-graph-div"', page)) == 5
    assert page.count("<p>before</p>") == 2


@pytest.mark.parametrize("name", ["LensExplorer", "HeadBrowser", "SteeringPanel", "THRViewer"])
def test_every_widget_is_a_figure_view(name):
    import widgets

    assert issubclass(getattr(widgets, name), FigureView)


def test_exported_page_asks_no_cdn_for_anything(monkeypatch):
    """A figure shown through plotly's notebook_connected renderer (what the notebooks use, for their
    live HTML) carries CDN loaders of plotly.js and MathJax, and nbconvert adds require.js and MathJax:
    the exported page drops them all (its plotly.js is inline), and keeps the figure."""
    import plotly.io as pio

    from interp.app.notebooks import PLOTLY_MIME, notebook_html

    monkeypatch.setattr(view, "_plotlyjs_shipped", False)
    fig = go.Figure(go.Scatter(y=[1, 2], name="connected-trace"))
    connected = pio.renderers["notebook_connected"]
    loader = '<script type="module">import "https://cdn.plot.ly/plotly-3.0.0.min"</script>'
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("No math here, only a price: 5 dollars."))
    nb.cells.append(nbformat.v4.new_code_cell("fig", outputs=[
        nbformat.v4.new_output("display_data", data={"text/html": loader}),
        nbformat.v4.new_output("display_data", data={**connected.to_mimebundle(fig.to_dict()),
                                                    PLOTLY_MIME: fig.to_plotly_json()}),
        nbformat.v4.new_output("display_data", data=Two()._repr_mimebundle_()),
    ]))
    assert "cdn.plot.ly" in connected.to_mimebundle(fig.to_dict())["text/html"]  # what is dropped is there
    page = notebook_html(nbformat.from_dict(nb))
    assert not re.search(r"""<script[^>]*src=["']?(https?:)?//""", page), re.findall(r"<script[^>]*src=[^>]*>", page)
    assert not re.search(r"""import\s*["'](https?:)?//""", page)
    assert "connected-trace" in page and page.count(get_plotlyjs()) == 1
    nb.cells[0].source = "The residual $h_\\ell$ at layer $\\ell$."  # TeX math keeps MathJax, nothing else
    page = notebook_html(nbformat.from_dict(nb))
    kept = re.findall(r"""<script[^>]*src=["']?((?:https?:)?//[^"' >]*)""", page)
    assert kept and all("mathjax" in url.lower() for url in kept), kept


def test_every_pane_loads_plotlys_module_once_per_page():
    """Each widget's panes are Panes: a small front-end module that imports plotly's own (shipped
    beside it, with an id to share one import per page) and starts it outside anywidget's 2 s window."""
    import inspect

    from plotly.basewidget import BaseFigureWidget

    import widgets

    pane = Pane()
    assert isinstance(pane, go.FigureWidget) and pane._plotly_module == str(BaseFigureWidget._esm)
    assert len(pane._plotly_module) > 1_000_000 and "FigureModel" in pane._plotly_module  # the module, not its path
    assert len(pane._esm) < 3000 and "_plotly_module" in pane._esm and "initialize" in pane._esm
    for name in widgets.__all__:
        source = inspect.getsource(inspect.getmodule(getattr(widgets, name)))
        assert "FigureWidget(" not in source, f"{name} makes a plain FigureWidget pane; use widgets._view.Pane"
