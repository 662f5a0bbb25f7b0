"""Figure builders of Lorsa results: the z-pattern heatmap, head firing frequencies, head-type scores
against the host's heads, a head's top activations and training curves. Result objects' ``.plot()``
and ``widgets.HeadBrowser`` draw with these (colours from :mod:`interp.viz.palettes`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from interp.viz.palettes import DIVERGING_SCALE, HEAD_SOURCE_COLOURS, LEGEND_BACKGROUND

if TYPE_CHECKING:
    from interp.lorsa.analyze import HeadScores, TopContexts, ZPattern
    from interp.lorsa.evaluate import LorsaEval
    from interp.lorsa.train import LorsaTrainResult

__all__ = ["z_pattern_figure", "frequency_figure", "head_scores_figure", "top_activations_figure",
           "training_figure"]


def z_pattern_figure(zp: ZPattern) -> go.Figure:
    """Heatmap of a :class:`~interp.lorsa.analyze.ZPattern`: how much of the head's activation at each
    query token it read from each source token (diverging, centred on 0)."""
    m = float(zp.values.abs().max()) or 1.0
    fig = go.Figure(go.Heatmap(z=zp.values.numpy(), x=zp.labels, y=zp.labels, colorscale=DIVERGING_SCALE, zmid=0,
                               zmin=-m, zmax=m, colorbar=dict(title="z")))  # a long colourbar title squeezed the map
    fig.update_layout(title=f"Lorsa L{zp.layer} head {zp.head}: z-pattern", xaxis_title="source token",
                      yaxis_title="query token", yaxis_autorange="reversed", width=560, height=520)
    return fig


def frequency_figure(ev: LorsaEval) -> go.Figure:
    """Histogram of log10 head firing frequency (heads that never fired at -7), with the headline
    numbers of the evaluation as a subtitle."""
    import plotly.express as px

    freq = ev.head_frequency.clamp_min(1e-7).log10()
    dead = int((ev.head_frequency == 0).sum())
    # two title lines: one line was clipped at single-column width
    fig = px.histogram(x=freq.numpy(), nbins=50, labels={"x": "log10 firing frequency (never fired: -7)"},
                       title=f"Lorsa L{ev.layer} head firing frequency<br>"
                             f"<sup>EV {ev.explained_variance:.3f} · loss recovered {ev.loss_recovered:.1%} · "
                             f"L0 {ev.l0:.1f} · {dead} never fired</sup>")
    fig.update_yaxes(title_text="heads")
    return fig


def head_scores_figure(scores: HeadScores, score: str = "induction") -> go.Figure:
    """Histogram of a type score over the Lorsa heads, with the host heads as labelled markers in a
    strip below on the same x axis (lines over the bars hid them where the bars were tall)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.82, 0.18], vertical_spacing=0.03)
    fig.add_trace(go.Histogram(x=scores.lorsa[score].dropna(), name="Lorsa heads", nbinsx=40,
                               marker_color=HEAD_SOURCE_COLOURS["lorsa"]), 1, 1)
    host = scores.host.dropna(subset=[score])
    names = [f"host head {int(h)}" for h in (host["head"] if "head" in host else host.index)]
    fig.add_trace(go.Scatter(x=host[score], y=[0] * len(host), mode="markers", text=names, name="host heads",
                             marker=dict(symbol="line-ns-open", size=18, color=HEAD_SOURCE_COLOURS["host"],
                                         line=dict(width=2)),
                             hovertemplate="%{text}: %{x:.3f}<extra></extra>"), 2, 1)
    # log counts: most heads score near 0, and the few specialised ones are the point of the plot
    fig.update_yaxes(title_text="Lorsa heads", type="log", row=1, col=1)
    fig.update_yaxes(visible=False, row=2, col=1)
    fig.update_xaxes(title_text=f"{score.replace('_', ' ')} score ({scores.weighting}-weighted)", row=2, col=1)
    fig.update_layout(title=f"{score.replace('_', ' ')} score: Lorsa vs host heads", bargap=0.05,
                      legend=dict(x=0.99, xanchor="right", y=0.99, yanchor="top", bgcolor=LEGEND_BACKGROUND))
    return fig


def top_activations_figure(tops: TopContexts, head: int = 0) -> go.Figure:
    """Bars of one head's top activations, largest first."""
    import plotly.express as px

    return px.bar(tops.for_head(head), y="activation", title=f"Lorsa head {head}: top activations")


def training_figure(result: LorsaTrainResult) -> go.Figure:
    """MSE and fraction of variance unexplained against the step (log scale)."""
    import plotly.express as px

    return px.line(result.to_frame(), x="step", y=["mse", "fvu"], log_y=True, title="Lorsa training")
