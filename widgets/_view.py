"""The one FigureWidget helper under the four widgets: fill a live ``FigureWidget`` from a library
figure in place, show the live view with a static fallback (so an exported notebook is never
blank, even offline), and export the current figures as paper figures.

A widget subclasses :class:`FigureView`, builds its controls and its ``panes`` (named :class:`Pane`
figure widgets, the main one first), and redraws a pane with :func:`fill` from a figure builder of
``interp/<method>/plots.py``. Nothing here computes anything about a result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any, ClassVar

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import traitlets
from plotly.basewidget import BaseFigureWidget

__all__ = ["FigureView", "Pane", "fill", "sync_for_display", "figures_html", "WIDGET_MIME"]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# plotly.js (4.8 MB) travels in the first static fallback of a kernel session only, like plotly's own
# "notebook" renderer: exported HTML then needs no CDN, and a notebook does not carry one copy per
# widget. interp.app.notebooks.notebook_html moves that copy into the page head (and inlines one when
# that output was cleared); a plain `jupyter nbconvert` needs the notebook run top to bottom.
_plotlyjs_shipped = False


# Front-end module of a Pane: plotly's own FigureWidget module, imported once per page and started
# after anywidget's start-up window. anywidget gives a model's module 2 s to load and initialise; past
# that it drops every later message to the model, so the figure stays as it was created (empty) and
# never redraws. plotly's module is 5 MB of JavaScript, compiled afresh for every FigureWidget: on a
# busy machine the first ones missed the window and drew blank, dead charts.
_PANE_ESM = """
const modules = (globalThis[Symbol.for("interp.plotly-figurewidget")] ??= new Map());

function plotlyModule(model) {
  const id = model.get("_plotly_module_id");
  if (!modules.has(id)) {
    const url = URL.createObjectURL(new Blob([model.get("_plotly_module")], { type: "text/javascript" }));
    const loading = import(url).finally(() => URL.revokeObjectURL(url));
    loading.catch(() => modules.delete(id));
    modules.set(id, loading);
  }
  return modules.get(id);
}

export default () => {
  let plotly;
  return {
    initialize({ model }) {
      // not awaited: anywidget's window must close on a module that has initialised
      plotly = plotlyModule(model).then(async (mod) => {
        const widget = typeof mod.default === "function" ? await mod.default() : mod.default;
        await widget.initialize?.({ model });
        return widget;
      });
      plotly.catch((err) => console.error("[interp] plotly's FigureWidget module failed to load", err));
    },
    async render({ model, el }) {
      return (await plotly).render({ model, el });
    },
  };
};
"""
_PLOTLY_MODULE = str(BaseFigureWidget._esm)  # the file's text (anywidget reads it once per process)
_PLOTLY_MODULE_ID = hashlib.sha1(_PLOTLY_MODULE.encode()).hexdigest()[:16]


class Pane(go.FigureWidget):
    """A plotly ``FigureWidget`` whose front-end module is imported once per page and cannot miss
    anywidget's start-up window (a pane never draws blank on a busy machine); everything else is
    plotly's. Panes of every widget are ``Pane``s, redrawn with :func:`fill`.

    >>> pane = Pane(); fill(pane, go.Figure(go.Bar(y=[1, 2])))   # doctest: +SKIP
    """

    _esm = _PANE_ESM
    _plotly_module = traitlets.Unicode(_PLOTLY_MODULE).tag(sync=True)
    _plotly_module_id = traitlets.Unicode(_PLOTLY_MODULE_ID).tag(sync=True)


def _json_safe(value: Any) -> Any:
    # A widget message is JSON, where NaN does not exist: plotly sends arrays of 2 or more dimensions
    # as nested lists, and jupyter_client then turns each NaN into the string "nan" (with a deprecation
    # warning). None is what plotly.js reads as a gap.
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim > 1 and np.isnan(value).any():
        return np.where(np.isnan(value), None, value).tolist()
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def fill(target: go.FigureWidget, source: go.Figure) -> None:
    """Replace a FigureWidget's traces and layout with ``source``'s, in place: the widget (and so
    the view on screen) stays the same object, only its content changes.

    The frontend merges a new layout into the old one, so top-level layout keys the new figure
    lacks (the last figure's title, a second axis, subplot titles) are removed explicitly. The full
    state follows the edits (:func:`sync_for_display`): a view that starts later draws from it, even
    where the edits reached the frontend model before plotly's module listened to them.
    """
    new_layout = source.layout.to_plotly_json()
    stale = [k for k in target.layout.to_plotly_json() if k not in new_layout]
    with target.batch_update():
        target.data = []
        for trace in source.data:
            target.add_trace(_json_safe(trace.to_plotly_json()))
        if stale:
            target.plotly_relayout({k: None for k in stale})
        target.layout = source.layout
    sync_for_display(target)


def sync_for_display(pane: go.FigureWidget) -> None:
    """Hand the frontend ``pane``'s current traces and layout, the state a new view draws from.

    Edits made before any view exists travel as messages that the frontend model may not listen to
    yet (its 5 MB script is still loading), and the view then draws the state the widget was built
    with, often an empty figure. A FigureWidget displayed on its own syncs itself this way; one
    inside a box is not asked, so the widgets do it for every pane when they are displayed.
    """
    pane._widget_layout = deepcopy(pane._layout_obj._props)
    pane._widget_data = deepcopy(pane._data)


def figures_html(figures: Sequence[go.Figure]) -> str:
    """Static HTML of ``figures`` (one div each); plotly.js inlined with the first figure of the
    first call in this session, so a page holding every output renders offline."""
    global _plotlyjs_shipped
    parts = []
    for fig in figures:
        parts.append(pio.to_html(fig, include_plotlyjs=not _plotlyjs_shipped, full_html=False))
        _plotlyjs_shipped = True
    return "".join(parts)


class FigureView:
    """Base of the widgets: ``widget`` (the live ipywidgets view) and ``panes`` (its figure panes,
    name -> ``FigureWidget``, main first) are set by the subclass.

    Class settings: ``exported`` (the panes :meth:`export` writes; all by default),
    ``export_width`` / ``export_height_in`` (the paper size).

    Example:
        >>> class Bars(FigureView):                                                  # doctest: +SKIP
        ...     def __init__(self, fig):
        ...         self.panes = {"main": Pane()}; fill(self.panes["main"], fig)
        ...         self.widget = W.VBox([self.panes["main"]])
        >>> Bars(go.Figure(go.Bar(y=[1, 2]))).export("out/bars")                    # doctest: +SKIP
    """

    widget: W.Widget
    panes: dict[str, go.FigureWidget]
    exported: ClassVar[tuple[str, ...] | None] = None
    export_width: ClassVar[str] = "double"
    export_height_in: ClassVar[float | None] = None

    # ---- figures --------------------------------------------------------------------------
    def figures(self) -> list[go.Figure]:
        """The panes as they are on screen now, as plain plotly figures (main first)."""
        return [go.Figure(pane) for pane in self.panes.values()]

    def figure(self) -> go.Figure:
        """The main pane as a plain plotly figure."""
        return go.Figure(next(iter(self.panes.values())))

    # ---- static fallback --------------------------------------------------------------------
    def _static_before(self) -> str:
        """HTML shown above the static figures (a badge, say)."""
        return ""

    def _static_after(self) -> str:
        """HTML shown below the static figures (tables)."""
        return ""

    def static_html(self) -> str:
        """What a reader without a kernel sees: the figures on screen now plus the widget's text."""
        return self._static_before() + figures_html(self.figures()) + self._static_after()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # The live view for a kernel plus static HTML, so an executed notebook exported to HTML is never blank.
        for pane in self.panes.values():
            sync_for_display(pane)
        live = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        live = live[0] if isinstance(live, tuple) else live
        bundle = {k: v for k, v in live.items() if k != "text/plain"}
        bundle["text/html"] = self.static_html()
        bundle["text/plain"] = repr(self)
        return bundle

    # ---- paper figures ----------------------------------------------------------------------
    def export(self, path: str | Path, *, width: str | float | None = None,
               formats: Sequence[str] = ("png", "pdf", "svg")) -> list[Path]:
        """Write the exported panes as paper figures (``interp.viz.figures``, one browser start):
        the main pane at ``path``, any other pane ``name`` at ``path_name``.

        >>> view.export("out/figure", width="single", formats=("png",))   # doctest: +SKIP
        """
        from interp.viz import figures as paper

        path = Path(path)
        names = list(self.panes)
        chosen = names if self.exported is None else [n for n in names if n in self.exported]
        items = []
        for name in chosen:
            fig = paper.paper_layout(go.Figure(self.panes[name]), width or self.export_width,
                                     height_in=self.export_height_in)
            items.append((fig, path if name == names[0] else path.with_name(f"{path.name}_{name}")))
        return paper.export_many(items, formats=tuple(formats))
