"""Figure builders of CorrSteer results: accuracy and side-effect ratio per condition, the sorted
feature-correctness correlations per hook, and a feature's direct logit readout.
``SteeringReport.plot``, ``Collection.plot`` and ``widgets.SteeringPanel`` draw with these
(colours from :mod:`interp.viz.palettes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go
import torch

from interp.viz.palettes import CONDITION_COLOURS, NEUTRAL_COLOUR, OTHER_CONDITION_COLOUR, READOUT_COLOURS

if TYPE_CHECKING:
    import pandas as pd

    from interp.steering.collect import Collection
    from interp.steering.report import SteeringReport
    from interp.steering.sae_training import SAEQuality

__all__ = ["conditions_figure", "correlations_figure", "readout_figure", "sae_quality_figure"]


def conditions_figure(report: SteeringReport) -> go.Figure:
    """Held-out accuracy per condition with 95% CIs (left) and the side-effect ratio (right)."""
    from plotly.subplots import make_subplots

    f = report.to_frame()
    colours = [CONDITION_COLOURS.get(k, OTHER_CONDITION_COLOUR) for k in f["kind"]]
    # Short panel titles: long ones ran into each other at paper widths; the task goes on the axis.
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.1,
                        subplot_titles=("Held-out accuracy (95% CI)", "Side-effect ratio"))
    fig.add_trace(go.Bar(
        x=f["condition"], y=f["accuracy"], marker_color=colours,
        error_y=dict(type="data", symmetric=False, array=f["ci_high"] - f["accuracy"],
                     arrayminus=f["accuracy"] - f["ci_low"]), name="accuracy", showlegend=False), 1, 1)
    fig.add_hline(y=float(f.loc[f["condition"] == "unsteered", "accuracy"].iloc[0]), line_dash="dot", row=1, col=1)
    g = f[f["kind"] != "unsteered"]
    # A SER of 0 (nothing broke) or undefined (no answer changed) draws no bar; label every
    # bar so an empty-looking panel still says what was measured.
    ser_text = [f"{v:.2f}" if c else "n/a" for v, c in zip(g["ser"], g["n_changed"])]
    crowded = len(g) > 8  # upright labels of many narrow bars run into each other
    fig.add_trace(go.Bar(x=g["condition"], y=g["ser"].fillna(0.0), text=ser_text, textposition="outside",
                         textangle=-90 if crowded else 0, textfont_size=9 if crowded else None,
                         constraintext="none", cliponaxis=False, customdata=list(zip(g["n_changed"], g["n"])),
                         marker_color=[CONDITION_COLOURS.get(k, OTHER_CONDITION_COLOUR) for k in g["kind"]],
                         name="SER", showlegend=False,
                         hovertemplate="%{x}: SER %{y:.3f}; %{customdata[0]} of %{customdata[1]} answers "
                                       "changed<extra></extra>"), 1, 2)
    fig.update_yaxes(title_text=f"accuracy, {report.task}", row=1, col=1)
    fig.update_yaxes(range=[0, 1.12], tickvals=[0, 0.25, 0.5, 0.75, 1], row=1, col=2)
    fig.update_layout(margin=dict(t=60))  # the subplot titles carry the task; no overlapping figure title
    return fig


def correlations_figure(collection: Collection, top: int = 50) -> go.Figure:
    """The ``top`` largest correlations of each hook, sorted: how far the best features stand out."""
    fig = go.Figure()
    for h, r in collection.correlations().items():
        vals = torch.sort(r, descending=True).values[:top].numpy()
        fig.add_trace(go.Scatter(y=vals, mode="lines+markers", name=h))
    fig.update_layout(title=f"Feature-correctness correlation ({collection.task_name}, pooling={collection.pooling})",
                      xaxis_title="feature rank", yaxis_title="Pearson r")
    return fig


def readout_figure(frame: pd.DataFrame, title: str) -> go.Figure:
    """Horizontal bars of the tokens a feature's decoder promotes (blue) and suppresses (red): the
    frame of :func:`interp.steering.features.logit_readout` (columns ``direction``, ``token``,
    ``logit``), drawn top row first."""
    f = frame.iloc[::-1]
    colours = [READOUT_COLOURS[d] for d in f["direction"]]
    fig = go.Figure(go.Bar(x=f["logit"], y=[repr(t) for t in f["token"]], orientation="h", marker_color=colours))
    fig.update_layout(title=title, xaxis_title="direct logit (W_dec · W_U)", yaxis=dict(automargin=True),
                      height=420, margin=dict(l=120))
    return fig


def sae_quality_figure(quality: SAEQuality) -> go.Figure:
    """Next-token loss with the hook clean, replaced by the SAE's reconstruction and zero-ablated, with
    explained variance, L0 and the fraction of loss recovered in the title."""
    names = ["clean", "SAE spliced", "zero-ablated"]
    values = [quality.ce_clean, quality.ce_spliced, quality.ce_zero_ablation]
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=NEUTRAL_COLOUR, text=[f"{v:.3f}" for v in values],
                           textposition="outside", cliponaxis=False))
    fig.update_layout(title=f"SAE at {quality.hook_name}<br><sup>EV {quality.explained_variance:.3f} · L0 "
                            f"{quality.l0:.1f} · loss recovered {quality.loss_recovered:.1%} · {quality.n_tokens} tokens</sup>",
                      yaxis_title="next-token loss (nats)")
    return fig
