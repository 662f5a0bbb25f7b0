"""Figure builders of the shared layer's results: the answer lengths of a :class:`~interp.core.generation.Generation`.
``Generation.plot`` draws with this (plotly's default colours: the core has no palette of its own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

if TYPE_CHECKING:
    from interp.core.generation import Generation

__all__ = ["generation_figure"]


def generation_figure(gen: Generation) -> go.Figure:
    """Bars of each row's answer length in tokens (hover: the answer text), with the step budget as a line.

    >>> generation_figure(generate(model, ["Once upon a time"], 8))  # doctest: +SKIP
    """
    texts = gen.texts()
    fig = go.Figure(go.Bar(x=list(range(len(texts))), y=gen.answer_lengths.tolist(), customdata=texts,
                           hovertemplate="row %{x}: %{y} tokens<br>%{customdata}<extra></extra>"))
    fig.add_hline(y=gen.n_steps, line_dash="dot", annotation_text=f"{gen.n_steps} steps")
    fig.update_layout(title="Generated answer lengths", xaxis_title="row", yaxis_title="answer tokens")
    return fig
