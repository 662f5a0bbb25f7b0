"""THRViewer: a group's responses as rows of tokens coloured by token hidden reward (diverging,
symmetric around 0), with reward badges, filters, hover details, a THR histogram and training
curves of GRPO runs. Presentation only: every number comes from ``interp.thr`` result objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import ipywidgets as W
import plotly.graph_objects as go

from interp.thr.plots import histogram_figure, token_figure, training_figure
from interp.thr.result import GRPOLog, THRResult
from widgets._view import FigureView, Pane, fill

__all__ = ["THRViewer"]

View = Literal["tokens", "histogram", "training"]


class THRViewer(FigureView):
    """Interactive view of a :class:`~interp.thr.result.THRResult` (and optional GRPO logs).

    "correct" / "incorrect" are ``THRResult.correct``; every figure is one of :mod:`interp.thr.plots`.

    >>> from widgets import THRViewer          # doctest: +SKIP
    >>> viewer = THRViewer(result, logs=[log])  # doctest: +SKIP
    >>> viewer.export("out/thr_tokens")         # doctest: +SKIP
    """

    def __init__(self, result: THRResult, logs: GRPOLog | Sequence[GRPOLog] | None = None, *, group: int | None = None,
                 p: float = 0.5, beta: float = 1.0):
        self.result = result
        self.logs = [logs] if isinstance(logs, GRPOLog) else list(logs or [])
        self.beta = beta
        active = result.active_groups
        if group is None:  # open on the first group that carries a signal
            group = active[0] if active else 0
        options = [(f"{b}{'' if b in active else ' (equal rewards)'}", b) for b in range(result.n_groups)]
        self.group = W.Dropdown(options=options, value=group, description="group")
        self.which = W.ToggleButtons(options=["all", "correct", "incorrect"], value="all", description="show")
        self.dominant_only = W.Checkbox(value=False, description="dominant only")
        self.p = W.FloatSlider(value=p, min=-0.95, max=0.95, step=0.05, description="p", continuous_update=False)
        views = ["tokens", "histogram"] + (["training"] if self.logs else [])
        self.view = W.ToggleButtons(options=views, value="tokens", description="view")
        stats = result.statistics(beta)  # of the whole batch: no control changes it
        self.stats = W.HTML(" · ".join(f"{k} {v:.3g}" for k, v in stats.items()))
        self.fig = Pane()
        self.panes = {"figure": self.fig}
        for w in (self.group, self.which, self.dominant_only, self.p, self.view):
            w.observe(lambda _change: self.refresh(), names="value")
        self.widget = W.VBox([W.HBox([self.view, self.group]), W.HBox([self.which, self.dominant_only, self.p]),
                              self.fig, self.stats])
        self.refresh()

    def current_figure(self) -> go.Figure:
        """The library figure of the current selection (:mod:`interp.thr.plots`)."""
        v: View = self.view.value
        if v == "training":
            return training_figure(self.logs)
        if v == "histogram":
            return histogram_figure(self.result, self.group.value, beta=self.beta)
        return token_figure(self.result, self.group.value, p=self.p.value, which=self.which.value,
                            dominant_only=self.dominant_only.value, beta=self.beta)

    def refresh(self) -> None:
        fill(self.fig, self.current_figure())

    def _static_after(self) -> str:
        return self.stats.value

    def __repr__(self) -> str:
        return f"THRViewer({self.result.n_groups} groups x {self.result.group_size})"
