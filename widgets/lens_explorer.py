"""LensExplorer: browse logit-lens results. For a ``ProbeReport``: filter by pair and outcome, pick
an example, and see its layer x generation-step grid (tokens coloured by language, top-k on
hover), the outcome badge, and the per-layer probability of the target word versus the best
other-language word. For a ``LensResult``: the layer x position heatmap of one prompt.
Presentation only: every figure comes from ``interp.lens`` / ``interp.translation``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from interp.lens.result import LensResult
from interp.translation.report import ProbeReport

__all__ = ["LensExplorer", "ALL"]

_BADGE = {"correct": "#2ca02c", "translation_failure": "#d62728", "target_lost": "#ff7f0e", "task_failure": "#7f7f7f"}


ALL = "(all)"  # the filter value that keeps every pair / outcome
NO_EXAMPLE = -1  # the example value when no example matches the filters


def _or_none(value: str | None) -> str | None:
    return None if value in (ALL, None) else value


def _fill(target: go.FigureWidget, source: go.Figure) -> None:
    """Replace a FigureWidget's content in place (keeps the widget, updates the view)."""
    with target.batch_update():
        target.data = []
        for trace in source.data:
            target.add_trace(trace)
        target.layout = source.layout


class LensExplorer:
    """Interactive view of a :class:`ProbeReport` or a :class:`LensResult`.

    Example:
        >>> from widgets import LensExplorer
        >>> explorer = LensExplorer(report)       # doctest: +SKIP
        >>> explorer                              # shows the widget (or static figures)  # doctest: +SKIP
        >>> explorer.export("out/example")        # doctest: +SKIP
    """

    def __init__(self, result: ProbeReport | LensResult):
        if not isinstance(result, (ProbeReport, LensResult)):
            raise TypeError(
                f"LensExplorer shows a ProbeReport (TranslationProbe.run) or a LensResult (decode_layers); "
                f"got {type(result).__name__}."
            )
        if isinstance(result, ProbeReport) and not len(result):
            raise ValueError("This ProbeReport has no examples to show.")
        self.result = result
        self.grid = go.FigureWidget()
        self.probs = go.FigureWidget()
        self.badge = W.HTML()
        if isinstance(result, ProbeReport):
            pairs = list(dict.fromkeys(r["pair"] for r in result.rows))
            outcomes = list(dict.fromkeys(r["outcome"] for r in result.rows))
            # "all" is a string, not None: a Dropdown whose value is None shows a blank box in the browser
            self.pair = W.Dropdown(options=[("all pairs", ALL)] + [(p, p) for p in pairs], value=ALL,
                                   description="pair")
            self.outcome = W.Dropdown(options=[("all outcomes", ALL)] + [(o.replace("_", " "), o) for o in outcomes],
                                      value=ALL, description="outcome")
            self.example = W.Dropdown(description="example")
            self.pair.observe(self._refilter, names="value")
            self.outcome.observe(self._refilter, names="value")
            self.example.observe(self._redraw, names="value")
            controls = W.HBox([self.pair, self.outcome, self.example])
            self.view = W.VBox([controls, self.badge, self.grid, self.probs])
            self._refilter()
        else:
            n = result.top_ids.shape[0]
            self.pair = self.outcome = None
            self.example = W.Dropdown(options=list(range(n)), value=0, description="prompt")
            self.example.observe(self._redraw, names="value")
            self.view = W.VBox([self.example, self.badge, self.grid])
            self._redraw()

    # ---- callbacks --------------------------------------------------------------------------
    def _refilter(self, *_: Any) -> None:
        rows = self.result.select(pair=_or_none(self.pair.value), outcome=_or_none(self.outcome.value))
        options = [(f"{self.result.rows[i]['pair']} {self.result.rows[i]['source_word']} → "
                    f"{self.result.rows[i]['final']}", i) for i in rows]
        current = self.example.value
        self.example.options = options or [("(no example matches)", NO_EXAMPLE)]
        self.example.value = current if current in rows else (rows[0] if rows else NO_EXAMPLE)
        self._redraw()

    def _redraw(self, *_: Any) -> None:
        i = self.example.value
        if isinstance(self.result, LensResult):
            _fill(self.grid, self.result.plot(i))
            self.badge.value = f"<b>{self.result.lens} lens</b>, final_norm={self.result.final_norm}"
            return
        if i is None or i == NO_EXAMPLE:
            _fill(self.grid, go.Figure())
            _fill(self.probs, go.Figure())
            self.badge.value = "<i>No example matches these filters.</i>"
            return
        row = self.result.rows[i]
        _fill(self.grid, self.result.plot_example(i))
        _fill(self.probs, self.result.plot_example_probs(i))
        colour = _BADGE.get(row["outcome"], "#333")
        self.badge.value = (
            f"<span style='background:{colour};color:white;padding:2px 8px;border-radius:4px'>"
            f"{html.escape(row['outcome'].replace('_', ' '))}</span> "
            f"{html.escape(row['pair'])}: <b>{html.escape(row['source_word'])}</b> → "
            f"<b>{html.escape(row['final'])}</b> (references: {html.escape(', '.join(row['references']))})"
        )

    # ---- output ------------------------------------------------------------------------------
    def figures(self) -> list[go.Figure]:
        """The current views as plain plotly figures."""
        figs = [go.Figure(self.grid)]
        if isinstance(self.result, ProbeReport):
            figs.append(go.Figure(self.probs))
        return figs

    def export(self, path: str | Path, *, width: str = "double", formats=("png", "pdf", "svg")) -> list[Path]:
        """Write the current views as paper figures: ``path`` (the grid) and ``path_probs``."""
        from interp.viz.figures import export_many, paper_layout

        path = Path(path)
        items = []
        for j, fig in enumerate(self.figures()):
            items.append((paper_layout(fig, width), path if j == 0 else path.with_name(path.name + "_probs")))
        return export_many(items, formats=formats)

    def _static_html(self) -> str:
        return "".join(fig.to_html(include_plotlyjs="cdn", full_html=False) for fig in self.figures())

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        bundle = {"text/html": self.badge.value + self._static_html(), "text/plain": repr(self)}
        widget = self.view._repr_mimebundle_(include=include, exclude=exclude)
        if widget:
            data = widget[0] if isinstance(widget, tuple) else widget
            bundle.update({k: v for k, v in data.items() if k != "text/plain"})
        return bundle

    def __repr__(self) -> str:
        kind = "ProbeReport" if isinstance(self.result, ProbeReport) else "LensResult"
        return f"LensExplorer({kind}, example={self.example.value})"
