"""Figure of a feature-selection comparison (:class:`interp.steering.selectors.SelectorComparison`):
each rule's paired accuracy change over the unsteered model with its 95% CI, ranked, over the range
the random-feature controls reached, and the side-effect ratio."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from interp.viz.palettes import CONDITION_COLOURS, OTHER_CONDITION_COLOUR, SELECTOR_COLOURS

if TYPE_CHECKING:
    from interp.steering.selectors import SelectorComparison

__all__ = ["selectors_figure"]


def selectors_figure(comparison: "SelectorComparison") -> go.Figure:
    """Left: accuracy change (percentage points, paired bootstrap 95% CI) per rule and baseline, best
    first, with the random controls' range shaded. Right: side-effect ratio."""
    from plotly.subplots import make_subplots

    r = comparison.ranking()
    r = r[r["kind"] != "unsteered"]
    colours = {**CONDITION_COLOURS, **SELECTOR_COLOURS}
    c = [colours.get(k, OTHER_CONDITION_COLOUR) for k in r["kind"]]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.64, 0.36], horizontal_spacing=0.12,
                        subplot_titles=("Accuracy change vs unsteered (pp, 95% CI)", "Side-effect ratio"))
    d = r["delta"] * 100
    fig.add_trace(go.Bar(x=r["condition"], y=d, marker_color=c, showlegend=False, name="change",
                         error_y=dict(type="data", symmetric=False, array=r["delta_high"] * 100 - d,
                                      arrayminus=d - r["delta_low"] * 100)), 1, 1)
    n_random = int((comparison.report.to_frame()["kind"] == "random").sum())
    lo, hi = float(r["random_delta_min"].iloc[0]) * 100, float(r["random_delta_max"].iloc[0]) * 100
    # After the bars: plotly skips shapes on a subplot that holds no data yet.
    if lo == lo and hi == hi:  # not NaN: there were random controls
        # Darker than the random bars' grey with edges drawn: the band must show on the default grey background.
        fig.add_hrect(y0=lo, y1=hi, fillcolor="#777777", opacity=0.3, line=dict(width=1, dash="dash", color="#444444"),
                      row=1, col=1, layer="below")
        fig.add_annotation(x=1, xref="x domain", y=hi, yref="y", text=f"range of {n_random} random controls", showarrow=False,
                           xanchor="right", yanchor="bottom", font=dict(size=10))
    fig.add_hline(y=0, line_dash="dot", row=1, col=1)
    ser_text = [f"{v:.2f}" if n else "n/a" for v, n in zip(r["ser"], r["n_changed"])]
    fig.add_trace(go.Bar(x=r["condition"], y=r["ser"].fillna(0.0), marker_color=c, text=ser_text,
                         textposition="outside", cliponaxis=False, showlegend=False, name="SER"), 1, 2)
    fig.update_yaxes(title_text=f"pp, {comparison.report.task}", row=1, col=1)
    fig.update_yaxes(range=[0, 1.12], row=1, col=2)
    fig.update_layout(margin=dict(t=60))
    return fig
