"""LensExplorer: browse logit-lens results. For a ``ProbeReport``: filter by pair and outcome, pick
an example, and see its layer x generation-step grid (tokens coloured by language, top-k on
hover), the outcome badge, and the per-layer probability of the target word versus the best
other-language word. For a ``LensResult``: the layer x position heatmap of one prompt.
Presentation only: every figure comes from ``interp.lens`` / ``interp.translation``.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from interp.lens.result import LensResult
from interp.translation.report import ProbeReport
from interp.viz.palettes import NEUTRAL_COLOUR, OUTCOME_COLOURS, TEXT_ON_COLOUR
from widgets._view import FigureView, Pane, fill

__all__ = ["LensExplorer", "ALL", "NO_EXAMPLE"]

ALL = "(all)"  # the filter value that keeps every pair / outcome
NO_EXAMPLE = -1  # the example value when no example matches the filters


def _or_none(value: str | None) -> str | None:
    return None if value in (ALL, None) else value


class LensExplorer(FigureView):
    """Interactive view of a :class:`ProbeReport` or a :class:`LensResult`.

    Example:
        >>> from widgets import LensExplorer
        >>> explorer = LensExplorer(report)       # doctest: +SKIP
        >>> explorer                              # shows the widget (or static figures)  # doctest: +SKIP
        >>> explorer.export("out/example")        # the grid, and out/example_probs  # doctest: +SKIP
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
        self.grid = Pane()
        self.probs = Pane()
        self.badge = W.HTML()
        if isinstance(result, ProbeReport):
            self.panes = {"grid": self.grid, "probs": self.probs}
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
            self.widget = W.VBox([controls, self.badge, self.grid, self.probs])
            self._refilter()
        else:
            self.panes = {"grid": self.grid}
            n = result.top_ids.shape[0]
            self.pair = self.outcome = None
            self.example = W.Dropdown(options=list(range(n)), value=0, description="prompt")
            self.example.observe(self._redraw, names="value")
            self.widget = W.VBox([self.example, self.badge, self.grid])
            self._redraw()

    @property
    def view(self) -> W.Widget:
        """The live ipywidgets view (also ``widget``)."""
        return self.widget

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
            fill(self.grid, self.result.plot(i))
            self.badge.value = f"<b>{self.result.lens} lens</b>, final_norm={self.result.final_norm}"
            return
        if i is None or i == NO_EXAMPLE:
            fill(self.grid, go.Figure())
            fill(self.probs, go.Figure())
            self.badge.value = "<i>No example matches these filters.</i>"
            return
        row = self.result.rows[i]
        fill(self.grid, self.result.plot_example(i))
        fill(self.probs, self.result.plot_example_probs(i))
        self.badge.value = (
            f"<span style='background:{OUTCOME_COLOURS.get(row['outcome'], NEUTRAL_COLOUR)};color:{TEXT_ON_COLOUR};"
            f"padding:2px 8px;border-radius:4px'>{html.escape(row['outcome'].replace('_', ' '))}</span> "
            f"{html.escape(row['pair'])}: <b>{html.escape(row['source_word'])}</b> → "
            f"<b>{html.escape(row['final'])}</b> (references: {html.escape(', '.join(row['references']))})"
        )

    # ---- output ------------------------------------------------------------------------------
    def _static_before(self) -> str:
        return self.badge.value

    def __repr__(self) -> str:
        kind = "ProbeReport" if isinstance(self.result, ProbeReport) else "LensResult"
        return f"LensExplorer({kind}, example={self.example.value})"
