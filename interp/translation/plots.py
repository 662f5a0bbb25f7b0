"""Figure builders of translation-probe reports: the source x target heatmap of a rate, the
language of each layer's answer, outcomes by resource level, and one example's layer x step grid
and first-token probabilities. ``ProbeReport.plot`` / ``plot_example`` / ``plot_example_probs`` and
``widgets.LensExplorer`` draw with these (colours from :mod:`interp.viz.palettes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from interp.viz.display import visible_token
from interp.viz.palettes import (LANGUAGE_COLOURS, LOGPROB_SCALE, MISSING_COLOUR, NO_LANGUAGE_COLOUR, OUTCOME_COLOURS,
                                 RATE_SCALE)

if TYPE_CHECKING:
    from interp.translation.generate import GenerationTrace
    from interp.translation.report import Metric, ProbeReport

__all__ = ["pair_heatmap", "presence_figure", "outcomes_figure", "example_grid_figure",
           "example_probs_figure", "trace_figure", "OUTCOME_BARS"]

OUTCOME_BARS: tuple[tuple[str, str, str], ...] = (
    ("accuracy", "correct", "correct"),
    ("translation_failure_rate", "translation failure", "translation_failure"),
    ("target_lost_rate", "target lost", "target_lost"),
    ("task_failure_rate", "task failure", "task_failure"),
)
"""(``by_resource`` column, bar name, outcome) of each stacked bar of :func:`outcomes_figure`."""


def pair_heatmap(report: ProbeReport, metric: Metric = "translation_failure_share") -> go.Figure:
    """Source x target grid of ``metric`` (one cell per pair run), targets ordered by resource level."""
    frame = report.by_pair()
    order = report.meta.get("languages", [])
    srcs = [c for c in order if c in set(frame.src)]
    tgts = [c for c in order if c in set(frame.tgt)]
    z = [[None] * len(tgts) for _ in srcs]
    for row in frame.to_dict("records"):
        z[srcs.index(row["src"])][tgts.index(row["tgt"])] = row[metric]
    res = report.meta.get("resource", {})
    labels = [f"{t} ({res.get(t, '?')})" for t in tgts]
    rank = {"high": 0, "mid": 1, "low": 2}
    levels = [rank.get(res.get(t), 3) for t in tgts]
    ordered = levels == sorted(levels) and len(set(levels)) > 1
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=srcs, colorscale=RATE_SCALE, zmin=0, zmax=1,
                               colorbar=dict(title=None, thickness=10),
                               hovertemplate="%{y} → %{x}: %{z:.2f}<extra></extra>"))
    # Codes only on the axis, every one shown (plotly drops crowded category labels and the
    # "(high)" suffixes overlapped at paper widths); resource levels go in the hover and the axis
    # title. Grey marks pairs not run (source = target), so no empty cell reads as a value.
    fig.update_layout(title=f"{metric.replace('_', ' ')} by pair", yaxis_title="source", plot_bgcolor=MISSING_COLOUR,
                      xaxis=dict(tickmode="array", tickvals=labels, ticktext=list(tgts), tickangle=-90,
                                 title="target (high → low resource)" if ordered else "target"))
    return fig


def presence_figure(report: ProbeReport) -> go.Figure:
    """Share of examples whose layer string is in the target / source / English / another language."""
    frame = report.language_presence(relative=True)
    fig = go.Figure()
    for col in ["target", "source", "pivot (en)", "other"]:
        if col in frame.columns:
            fig.add_trace(go.Scatter(x=frame.index, y=frame[col], mode="lines+markers", name=col))
    fig.update_layout(title="Language of each layer's decoded answer", xaxis_title="layer",
                      yaxis_title="share of examples", yaxis_range=[0, 1])
    return fig


def outcomes_figure(report: ProbeReport) -> go.Figure:
    """Outcome shares per target resource level, stacked, in the outcome colours."""
    frame = report.by_resource()
    fig = go.Figure()
    for col, name, outcome in OUTCOME_BARS:
        fig.add_trace(go.Bar(x=frame.target_resource, y=frame[col], name=name, marker_color=OUTCOME_COLOURS[outcome]))
    fig.update_layout(barmode="stack", title="Outcomes by target resource level",
                      xaxis_title="target resource level", yaxis_title="share of examples")
    return fig


def example_grid_figure(report: ProbeReport, index: int = 0) -> go.Figure:
    """Layer x generation-step grid of one example: each cell's top-1 token, rows coloured by the
    language of that layer's decoded string, top-k with probabilities on hover."""
    row = report.rows[index]
    langs = list(report.meta.get("languages", [])) or sorted({x for x in row["layer_languages"] if x})
    codes = [None] + langs
    n_steps = max((len(r) for r in row["grid"]), default=0)
    labels = [f"L{layer}" if layer else "embed" for layer in report.layers]
    z, text, hover = [], [], []
    for li, cells in enumerate(row["grid"]):
        lang = row["layer_languages"][li]
        z.append([codes.index(lang) if lang in codes else 0] * max(1, n_steps))
        text.append([visible_token(c[0][0]) if c else "" for c in cells] or [""])
        hover.append(["<br>".join(f"{repr(t)[1:-1]}: {p:.3f}" for t, p in c) for c in cells] or [""])
    n_codes = len(codes)
    scale = []
    for i in range(n_codes):  # a stepped colorscale: one flat band per language
        colour = NO_LANGUAGE_COLOUR if i == 0 else LANGUAGE_COLOURS[(i - 1) % len(LANGUAGE_COLOURS)]
        scale += [[i / n_codes, colour], [(i + 1) / n_codes, colour]]
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"step {t}" for t in range(max(1, n_steps))], y=labels, text=text, texttemplate="%{text}",
        customdata=hover, hovertemplate="%{y}, %{x}<br>%{customdata}<extra></extra>", colorscale=scale,
        zmin=-0.5, zmax=n_codes - 0.5, xgap=1, ygap=1,
        colorbar=dict(title="language", tickvals=list(range(n_codes)), ticktext=["none"] + langs),
    ))
    fig.update_layout(
        title=(f"{row['pair']}: {row['source_word']} → {row['final']!r} "
               f"[{row['outcome'].replace('_', ' ')}] (refs: {', '.join(row['references'])})"),
        xaxis_title="generated step", yaxis_title="layer",
        # tall enough for one colourbar tick per language (they overlapped in short figures)
        height=max(420, 140 + 26 * len(labels), 120 + 20 * n_codes),
    )
    return fig


def example_probs_figure(report: ProbeReport, index: int = 0) -> go.Figure:
    """Per-layer probability (first generated step) of the target word's first token versus the best
    word of any other language and English's."""
    row = report.rows[index]
    probs = row["first_token_prob"]
    tgt = row["tgt"]
    layers = report.layers
    fig = go.Figure()
    if tgt in probs:
        fig.add_trace(go.Scatter(x=layers, y=probs[tgt], mode="lines+markers", name=f"target ({tgt})"))
    others = {lang: v for lang, v in probs.items() if lang != tgt}
    if others:
        best = [max(others, key=lambda lang: others[lang][li]) for li in range(len(layers))]
        fig.add_trace(go.Scatter(x=layers, y=[others[b][li] for li, b in enumerate(best)], mode="lines+markers",
                                 name="best other language", text=best,
                                 hovertemplate="layer %{x}: %{text} %{y:.3f}<extra></extra>"))
    if "en" in others:
        fig.add_trace(go.Scatter(x=layers, y=others["en"], mode="lines", line=dict(dash="dot"), name="English"))
    fig.update_layout(title=f"First answer token probability by layer ({row['pair']}: {row['source_word']})",
                      xaxis_title="layer", yaxis_title="probability", yaxis_range=[0, 1])
    return fig


def trace_figure(trace: GenerationTrace, example: int = 0) -> go.Figure:
    """Layer x generated-step heatmap of one example of a :class:`~interp.translation.generate.GenerationTrace`:
    each cell's top-1 token, coloured by its log-prob (the output layer on top)."""
    n = max(1, trace.n_steps[example])
    tokens = trace.step_tokens(example)
    lp = trace.top_logprobs[example, :, :n, 0].numpy()
    labels = [f"L{layer}" if layer else "embed" for layer in trace.layers]
    fig = go.Figure(go.Heatmap(z=lp, x=[f"step {t}" for t in range(n)], y=labels,
                               text=[[visible_token(t) for t in row] or [""] for row in tokens], texttemplate="%{text}",
                               colorscale=LOGPROB_SCALE, zmax=0.0, colorbar=dict(title="log p")))
    fig.update_layout(title=f"Generation-time lens, example {example}: {trace.answers[example]!r}",
                      xaxis_title="generated step", yaxis_title="layer")
    return fig
