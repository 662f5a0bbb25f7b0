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

from interp.display import visible_token
from interp.thr.result import GRPOLog, THRResult

__all__ = ["THRViewer", "token_figure", "histogram_figure", "training_figure"]

View = Literal["tokens", "histogram", "training"]
Filter = Literal["all", "correct", "incorrect"]
_SCALE = "RdBu"  # red = THR < 0 (exploration), blue = THR > 0 (exploitation)


def _rows(result: THRResult, group: int, which: Filter) -> list[int]:
    adv = result.advantages
    rows = list(result.group(group))
    if which == "correct":
        rows = [i for i in rows if adv[i] > 0 or (adv[i] == 0 and result.rewards[i] > 0)]
    elif which == "incorrect":
        rows = [i for i in rows if not (adv[i] > 0 or (adv[i] == 0 and result.rewards[i] > 0))]
    return rows


def token_figure(result: THRResult, group: int = 0, *, p: float = 0.5, which: Filter = "all",
                 dominant_only: bool = False, beta: float = 1.0) -> go.Figure:
    """Heatmap of one group: a row per response, a cell per token, colour = THR."""
    rows = _rows(result, group, which)
    weights = result.weights(p, beta=beta)
    dominant = result.dominant(beta)
    width = max([result.thr[i].numel() for i in rows] + [1])
    z = np.full((len(rows), width), np.nan)
    text = np.full((len(rows), width), "", dtype=object)
    custom = np.full((len(rows), width, 4), np.nan)
    for r, i in enumerate(rows):
        n = result.thr[i].numel()
        thr = result.thr[i].numpy().astype(float)
        keep = dominant[i].numpy() if dominant_only else np.ones(n, dtype=bool)
        z[r, :n] = np.where(keep, thr, np.nan)
        text[r, :n] = [visible_token(t) for t in result.token_text[i]]
        custom[r, :n] = np.stack([thr, result.prob[i].numpy(), result.entropy[i].numpy(), weights[i].numpy()], -1)
    finite = np.abs(z[np.isfinite(z)])
    zmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    adv = result.advantages
    labels = [f"{'✓' if adv[i] > 0 else ('✗' if adv[i] < 0 else '·')} r={float(result.rewards[i]):.2f} #{i}" for i in rows]
    fig = go.Figure(go.Heatmap(
        z=z, text=text, texttemplate="%{text}", textfont=dict(size=12), customdata=custom,
        colorscale=_SCALE, zmid=0.0, zmin=-zmax, zmax=zmax, xgap=1, ygap=2,
        colorbar=dict(title="THR"),
        hovertemplate="token %{text}<br>THR %{customdata[0]:.4g}<br>prob %{customdata[1]:.3f}"
                      "<br>entropy %{customdata[2]:.3f}<br>weight (p=" + f"{p:+.2f}" + ") %{customdata[3]:.2f}<extra></extra>",
    ))
    tau = result.threshold(group, beta)
    fig.update_layout(
        title=f"Group {group}: {html.escape(result.prompts[group][:60])}… (τ={tau:.3g})",
        xaxis=dict(title="response token", showgrid=False),
        yaxis=dict(tickvals=list(range(len(rows))), ticktext=labels, autorange="reversed", showgrid=False),
        height=max(320, 160 + 34 * len(rows)),  # rows stay tall enough to read their tokens
    )
    return fig


def histogram_figure(result: THRResult, group: int | None = None, *, beta: float = 1.0) -> go.Figure:
    """THR histogram (one group, or all groups with mixed rewards), correct vs incorrect."""
    df = result.to_frame(beta=beta)
    df = df[df.advantage != 0] if group is None else df[df.group == group]
    fig = go.Figure()
    for name, part, colour in (("correct", df[df.advantage > 0], "#2166ac"), ("incorrect", df[df.advantage < 0], "#b2182b")):
        fig.add_trace(go.Histogram(x=part.thr, name=name, marker_color=colour, opacity=0.7, nbinsx=50))
    fig.update_layout(barmode="overlay", xaxis_title="THR", yaxis_title="tokens",
                      title="THR histogram" + ("" if group is None else f" (group {group})"))
    return fig


def training_figure(logs: Sequence[GRPOLog], columns: Sequence[str] = ("reward_mean", "thr_density")) -> go.Figure:
    """Training curves of one or more GRPO runs, one panel per column."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(columns), subplot_titles=list(columns))
    palette = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"]
    for k, log in enumerate(logs):
        df = log.to_frame()
        for c, col in enumerate(columns):
            if col in df:
                # markers too: a NaN (no group with mixed rewards) breaks the line and would hide lone points
                fig.add_trace(go.Scatter(x=df["step"], y=df[col], mode="lines+markers", marker=dict(size=4),
                                         name=log.name, legendgroup=log.name,
                                         showlegend=c == 0, line=dict(color=palette[k % len(palette)])), 1, c + 1)
    fig.update_xaxes(title_text="step")
    fig.update_layout(legend_title_text="run")  # panel titles name the curves; a figure title would collide
    return fig


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
        """Write the current view as a paper figure (``interp.figures.export``)."""
        from interp.figures import export, paper_layout

        return export(paper_layout(self.figure(), width), path, formats=tuple(formats))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # the widget view for a live kernel plus a static figure, so exported HTML is never blank
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/html"] = self.figure().to_html(include_plotlyjs="cdn", full_html=False)
        bundle["text/plain"] = f"THRViewer({self.result.n_groups} groups x {self.result.group_size})"
        return bundle
