"""THRViewer: a group's responses as rows of tokens coloured by token hidden reward (diverging,
symmetric around 0), with reward badges, filters, hover details, a THR histogram and training
curves of GRPO runs. Presentation only: every number comes from ``interp.thr`` result objects.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from interp.thr.plots import histogram_figure, token_figure, training_figure
from interp.thr.result import GRPOLog, THRResult

__all__ = ["THRViewer"]

View = Literal["tokens", "histogram", "training"]


class THRViewer:
    """Interactive view of a :class:`~interp.thr.result.THRResult` (and optional GRPO logs).

    >>> from widgets import THRViewer          # doctest: +SKIP
    >>> viewer = THRViewer(result, logs=[log])  # doctest: +SKIP
    >>> viewer.export("out/thr_tokens")         # doctest: +SKIP
    """

    def __init__(self, result: THRResult, logs: GRPOLog | Sequence[GRPOLog] | None = None, *, group: int | None = None,
                 p: float = 0.5, beta: float = 1.0):
        self.result = result
        self.logs = [logs] if isinstance(logs, GRPOLog) else list(logs or [])
        self.beta = beta
        active = [b for b in range(result.n_groups) if (result.advantages[list(result.group(b))] != 0).any()]
        if group is None:  # open on the first group that carries a signal
            group = active[0] if active else 0
        options = [(f"{b}{'' if b in active else ' (equal rewards)'}", b) for b in range(result.n_groups)]
        self.group = W.Dropdown(options=options, value=group, description="group")
        self.which = W.ToggleButtons(options=["all", "correct", "incorrect"], value="all", description="show")
        self.dominant_only = W.Checkbox(value=False, description="dominant only")
        self.p = W.FloatSlider(value=p, min=-0.95, max=0.95, step=0.05, description="p", continuous_update=False)
        views = ["tokens", "histogram"] + (["training"] if self.logs else [])
        self.view = W.ToggleButtons(options=views, value="tokens", description="view")
        self.stats = W.HTML()
        self.fig = go.FigureWidget()
        for w in (self.group, self.which, self.dominant_only, self.p, self.view):
            w.observe(lambda _change: self.refresh(), names="value")
        self.widget = W.VBox([W.HBox([self.view, self.group]), W.HBox([self.which, self.dominant_only, self.p]),
                              self.fig, self.stats])
        self.refresh()

    def figure(self) -> go.Figure:
        """The static plotly figure of the current selection."""
        v: View = self.view.value
        if v == "training":
            return training_figure(self.logs)
        if v == "histogram":
            return histogram_figure(self.result, self.group.value, beta=self.beta)
        return token_figure(self.result, self.group.value, p=self.p.value, which=self.which.value,
                            dominant_only=self.dominant_only.value, beta=self.beta)

    def refresh(self) -> None:
        new = self.figure()
        with self.fig.batch_update():
            self.fig.data = []
            self.fig.layout = new.layout
            self.fig.add_traces(list(new.data))
        s = self.result.statistics(self.beta)
        self.stats.value = " · ".join(f"{k} {v:.3g}" for k, v in s.items())

    def export(self, path: str | Path, *, width: Literal["single", "double"] = "double",
               formats: Sequence[str] = ("png", "pdf", "svg")) -> list[Path]:
        """Write the current view as a paper figure (``interp.viz.figures.export``)."""
        from interp.viz.figures import export, paper_layout

        return export(paper_layout(self.figure(), width), path, formats=tuple(formats))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # the widget view for a live kernel plus a static figure, so exported HTML is never blank
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/html"] = self.figure().to_html(include_plotlyjs="cdn", full_html=False)
        bundle["text/plain"] = f"THRViewer({self.result.n_groups} groups x {self.result.group_size})"
        return bundle
