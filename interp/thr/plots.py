"""Figure builders of THR results: the token grid of a group, the THR histogram, GRPO training curves.
``THRResult.plot``, ``GRPOLog.plot`` and ``widgets.THRViewer`` all draw with these, in one palette
(:mod:`interp.viz.palettes`: blue = THR > 0 / correct, red = THR < 0 / incorrect).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import plotly.graph_objects as go

from interp.viz.display import visible_token
from interp.viz.figures import wrap_title
from interp.viz.palettes import RESPONSE_COLOURS, RUN_COLOURS, THR_SCALE

if TYPE_CHECKING:
    from interp.thr.experiment import RunResult
    from interp.thr.result import GRPOLog, THRResult
    from interp.thr.training_log import THRTrainingLog

__all__ = ["Filter", "token_figure", "histogram_figure", "training_figure", "rollout_token_figure", "eval_figure",
           "eval_curve_figure", "pass_at_k_figure"]

Filter = Literal["all", "correct", "incorrect"]


def _rows(result: THRResult, group: int, which: Filter) -> list[int]:
    rows = list(result.group(group))
    if which == "all":
        return rows
    correct = result.correct
    return [i for i in rows if correct[i] == (which == "correct")]


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
        colorscale=THR_SCALE, zmid=0.0, zmin=-zmax, zmax=zmax, xgap=1, ygap=2,
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


def histogram_figure(result: THRResult, group: int | None = None, *, beta: float = 1.0, log_y: bool = False) -> go.Figure:
    """THR histogram (one group, or all groups with mixed rewards), correct vs incorrect."""
    df = result.to_frame(beta=beta)
    df = df[df.advantage != 0] if group is None else df[df.group == group]
    fig = go.Figure()
    for name, part in (("correct", df[df.advantage > 0]), ("incorrect", df[df.advantage < 0])):
        fig.add_trace(go.Histogram(x=part.thr, name=name, marker_color=RESPONSE_COLOURS[name], opacity=0.7, nbinsx=50))
    fig.update_layout(barmode="overlay", xaxis_title="THR", yaxis_title="tokens", yaxis_type="log" if log_y else None,
                      title="THR histogram" + (" (groups with mixed rewards)" if group is None else f" (group {group})"))
    return fig


def training_figure(logs: Sequence[GRPOLog], columns: Sequence[str] = ("reward_mean", "thr_density")) -> go.Figure:
    """Training curves of one or more GRPO runs, one panel per column."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(columns), subplot_titles=list(columns))
    palette = RUN_COLOURS
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


def rollout_token_figure(log: "THRTrainingLog", rollout: int = -1, group: int = 0, quantity: str = "thr") -> go.Figure:
    """One group of one logged rollout (:class:`~interp.thr.training_log.THRTrainingLog`): a row per response,
    a cell per token, colour = ``quantity`` (``thr``, ``advantage``, ``entropy`` or ``kl``) on THRViewer's
    diverging scale centred on 0; hovering shows all four.

    >>> fig = rollout_token_figure(callback.log, -1, 0, "thr")   # doctest: +SKIP
    """
    QUANTITIES = log.quantities  # noqa: N806 - thr, advantage, entropy, kl (no import: training_log imports us)
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity={quantity!r}: use one of {QUANTITIES}.")
    if not len(log):
        raise ValueError("The log holds no rollout yet.")
    r = log[rollout]
    rows = r.group(group)
    width = max([len(resp["tokens"]) for resp in rows] + [1])
    nan = float("nan")
    z = np.full((len(rows), width), np.nan)
    text = np.full((len(rows), width), "", dtype=object)
    custom = np.full((len(rows), width, len(QUANTITIES)), np.nan)
    for i, resp in enumerate(rows):
        n = len(resp["tokens"])
        vals = np.array([[nan if v is None else v for v in resp[q]] for q in QUANTITIES], dtype=float).T.reshape(n, -1)
        z[i, :n] = vals[:, QUANTITIES.index(quantity)]
        text[i, :n] = [visible_token(t) for t in resp["tokens"]]
        custom[i, :n] = vals
    finite = np.abs(z[np.isfinite(z)])
    zmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0

    def label(i: int, resp: dict) -> str:
        a = resp["seq_advantage"]
        mark = "·" if a is None or a == 0 else ("✓" if a > 0 else "✗")
        reward = "?" if resp["reward"] is None else f"{resp['reward']:.2f}"
        return f"{mark} r={reward} #{group * r.group_size + i}"

    fig = go.Figure(go.Heatmap(
        z=z, text=text, texttemplate="%{text}", textfont=dict(size=12), customdata=custom,
        colorscale=THR_SCALE, zmid=0.0, zmin=-zmax, zmax=zmax, xgap=1, ygap=2, colorbar=dict(title=quantity),
        hovertemplate="token %{text}<br>THR %{customdata[0]:.4g}<br>advantage %{customdata[1]:.3g}"
                      "<br>entropy %{customdata[2]:.3f}<br>KL %{customdata[3]:.4g}<extra></extra>",
    ))
    fig.update_layout(
        title=f"Step {r.step}, group {group}: {html.escape(rows[0]['prompt'][:60])}… ({quantity})",
        xaxis=dict(title="response token", showgrid=False),
        yaxis=dict(tickvals=list(range(len(rows))), ticktext=[label(i, resp) for i, resp in enumerate(rows)],
                   autorange="reversed", showgrid=False),
        height=max(320, 160 + 34 * len(rows)),
    )
    return fig


def eval_figure(flat: dict[str, float], title: str = "held-out evaluation") -> go.Figure:
    """Greedy accuracy, mean reward and pass@k of one evaluation (``EvalResult.flat()``), one bar each."""
    names = list(flat)
    fig = go.Figure(go.Bar(x=names, y=[flat[n] for n in names], marker_color=RUN_COLOURS[0],
                           text=[f"{flat[n]:.3f}" for n in names], textposition="outside"))
    fig.update_layout(title=title, yaxis=dict(title="rate", range=[0, 1.05]), showlegend=False)
    return fig


def eval_curve_figure(run: "RunResult", metrics: Sequence[str] = ("greedy", "pass@1")) -> go.Figure:
    """Held-out metrics of one GRPO run against the step (step 0 = the start)."""
    fig = go.Figure()
    for k, m in enumerate(metrics):
        pts = [(e["step"], e[m]) for e in run.evals if m in e]
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=m,
                                 line=dict(color=RUN_COLOURS[k % len(RUN_COLOURS)])))
    fig.update_layout(title=f"{run.variant} (seed {run.seed})", xaxis_title="step", yaxis_title="rate",
                      legend_title_text="metric")
    return fig


def pass_at_k_figure(frame: "Any", title: str = "pass@k") -> go.Figure:
    """pass@k against k (log axis), one line per run or variant with standard-error bars. ``frame`` has the
    columns ``variant``, ``k``, ``mean`` and ``se`` (NaN: no bar), e.g.
    :func:`interp.zoo.recovery.thr.pass_at_k_frame` of a card's summary."""
    fig = go.Figure()
    for n, (name, part) in enumerate(frame.groupby("variant", sort=False)):
        part = part.sort_values("k")
        fig.add_trace(go.Scatter(x=part["k"], y=part["mean"], mode="lines+markers", name=str(name),
                                 error_y=dict(type="data", array=part["se"].fillna(0).tolist(), visible=True),
                                 line=dict(color=RUN_COLOURS[n % len(RUN_COLOURS)])))
    fig.update_layout(title=wrap_title(title), xaxis=dict(title="k", type="log", tickvals=sorted(frame["k"].unique())),
                      yaxis=dict(title="pass@k", rangemode="tozero"), legend_title_text="run")
    return fig
