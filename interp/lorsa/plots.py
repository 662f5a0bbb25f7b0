"""Figure builders of Lorsa results (the z-pattern heatmap); result objects' ``.plot()`` and
``widgets.HeadBrowser`` draw with these."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

if TYPE_CHECKING:
    from interp.lorsa.analyze import ZPattern

__all__ = ["z_pattern_figure"]


def z_pattern_figure(zp: "ZPattern") -> go.Figure:
    """Heatmap of a :class:`~interp.lorsa.analyze.ZPattern`: how much of the head's activation at each
    query token it read from each source token (diverging, centred on 0)."""
    m = float(zp.values.abs().max()) or 1.0
    fig = go.Figure(go.Heatmap(z=zp.values.numpy(), x=zp.labels, y=zp.labels, colorscale="RdBu", zmid=0, zmin=-m,
                               zmax=m, colorbar=dict(title="z")))  # a long colourbar title squeezed the map
    fig.update_layout(title=f"Lorsa L{zp.layer} head {zp.head}: z-pattern", xaxis_title="source token",
                      yaxis_title="query token", yaxis_autorange="reversed", width=560, height=520)
    return fig
