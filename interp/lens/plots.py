"""Figure builders of lens results: the layer x position heatmap of one prompt. ``LensResult.plot``
and ``widgets.LensExplorer`` draw with these (colours from :mod:`interp.viz.palettes`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from interp.viz.display import visible_token
from interp.viz.palettes import LOGPROB_SCALE

if TYPE_CHECKING:
    from interp.lens.result import LensResult

__all__ = ["lens_figure"]


def lens_figure(result: LensResult, example: int = 0, *, title: str | None = None) -> go.Figure:
    """Layer x position heatmap of one prompt: the text is each cell's top token, the colour its
    log-prob; hovering shows the top-5.

    >>> fig = lens_figure(decode_layers(model, ["Once upon a time"], positions="all"))  # doctest: +SKIP
    """
    valid = result.position_valid[example]
    lp = result.top_logprobs[example, :, valid, 0].numpy()
    n_show = min(5, result.top_ids.shape[-1])
    strings = [result.top_tokens(example, r) for r in range(n_show)]
    cols = valid.nonzero().reshape(-1).tolist()
    text = [[visible_token(strings[0][li][p]) for p in cols] for li in range(len(result.layers))]
    hover = [
        [
            "<br>".join(
                f"{repr(strings[r][li][p])[1:-1]}: {result.top_logprobs[example, li, p, r].exp():.3f}"
                for r in range(n_show)
            )
            for p in cols
        ]
        for li in range(len(result.layers))
    ]
    inputs = result.input_tokens(example)
    xlab = [f"{j}:{visible_token(inputs[p])}" for j, p in enumerate(cols)]
    fig = go.Figure(
        go.Heatmap(
            z=lp, x=xlab, y=result.layer_labels, text=text, texttemplate="%{text}",
            customdata=hover, hovertemplate="%{y} @ %{x}<br>%{customdata}<extra></extra>",
            colorscale=LOGPROB_SCALE, zmax=0.0, colorbar=dict(title="log p"),
        )
    )
    fig.update_layout(
        title=title or f"{'Tuned' if result.lens == 'tuned' else 'Logit'} lens (example {example})",
        xaxis_title="position: input token", yaxis_title="layer",
    )
    return fig
