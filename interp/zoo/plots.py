"""Figure builders of the zoo's own results: the loss curve of a training run (``TrainStats.plot``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from interp.viz.palettes import RUN_COLOURS

if TYPE_CHECKING:
    from interp.zoo.training import TrainStats

__all__ = ["loss_curve_figure"]


def loss_curve_figure(stats: "TrainStats") -> go.Figure:
    """Training loss against the step, with the final held-out loss as a dashed line."""
    fig = go.Figure()
    steps = [s for s, _ in stats.loss_curve]
    fig.add_trace(go.Scatter(x=steps, y=[v for _, v in stats.loss_curve], mode="lines+markers", name="train",
                             marker=dict(size=4), line=dict(color=RUN_COLOURS[0])))
    if steps and stats.val_loss == stats.val_loss:  # NaN: no held-out documents
        fig.add_trace(go.Scatter(x=[steps[0], steps[-1]], y=[stats.val_loss] * 2, mode="lines", name="held-out (final)",
                                 line=dict(color=RUN_COLOURS[1 % len(RUN_COLOURS)], dash="dash")))
    fig.update_layout(title=f"{stats.steps} steps, {stats.tokens:,} tokens", xaxis_title="step",
                      yaxis_title="next-token loss (nats)")
    return fig
