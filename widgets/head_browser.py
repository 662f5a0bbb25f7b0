"""HeadBrowser: browse Lorsa heads (sorted by frequency, type score or loss contribution), with
each head's top contexts (activating token highlighted), the z-pattern of a chosen context as a
heatmap, its OV readout and its type scores. Presentation only: all numbers come from
``interp.lorsa.analyze``.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as ipw
import plotly.graph_objects as go
import torch

from interp.lorsa.analyze import HeadScores, TopContexts, context_strings, context_z_pattern, ov_readout
from interp.lorsa.model import Lorsa
from interp.viz.palettes import HIGHLIGHT_COLOUR
from widgets._view import FigureView, Pane, fill

__all__ = ["HeadBrowser", "SORT_KEYS"]

SORT_KEYS = ("frequency", "loss_contribution", "induction", "previous_token", "sink", "successor")


class HeadBrowser(FigureView):
    """Interactive Lorsa head browser over precomputed library results.

    Args:
        lorsa, model: the trained Lorsa and its host model.
        tops: :func:`interp.lorsa.analyze.top_contexts` (its tokens are the contexts shown).
        scores: :func:`interp.lorsa.analyze.head_scores`.
        loss_contribution: :func:`interp.lorsa.analyze.head_loss_attribution` (optional sort key).
        window: tokens of context shown before the activation.

    Example:
        >>> tops = top_contexts(model, lorsa, tokens, k=8); scores = head_scores(model, lorsa, tokens[:32])  # doctest: +SKIP
        >>> browser = HeadBrowser(lorsa, model, tops, scores)  # doctest: +SKIP
        >>> browser.sort.value = "induction"; browser          # doctest: +SKIP
        >>> browser.export("out/lorsa_head")                   # doctest: +SKIP
    """

    export_width = "single"
    export_height_in = 3.4

    def __init__(self, lorsa: Lorsa, model: Any, tops: TopContexts, scores: HeadScores, *,
                 loss_contribution: torch.Tensor | None = None, window: int = 24):
        if not isinstance(tops, TopContexts) or not isinstance(scores, HeadScores):
            raise TypeError("HeadBrowser shows library results: pass tops=top_contexts(...) and scores=head_scores(...).")
        self.lorsa, self.model, self.window = lorsa, model, window
        self.tops, self.scores = tops, scores
        n = lorsa.cfg.n_ov_heads
        self.loss_contribution = loss_contribution if loss_contribution is not None else torch.full((n,), float("nan"))
        self.table = self.scores.lorsa.set_index("head").assign(
            frequency=self.tops.frequency.numpy(), loss_contribution=self.loss_contribution.numpy())

        self.sort = ipw.Dropdown(options=list(SORT_KEYS), value="frequency", description="sort by")
        self.head = ipw.Dropdown(description="head")
        self.context = ipw.IntSlider(min=0, max=max(0, self.tops.values.shape[1] - 1), value=0, description="context")
        self.fig = Pane()
        self.panes = {"z_pattern": self.fig}
        self.contexts_html, self.readout_html, self.scores_html = ipw.HTML(), ipw.HTML(), ipw.HTML()
        self.sort.observe(lambda _: self._fill_heads(), names="value")
        self.head.observe(lambda _: self._show(), names="value")
        self.context.observe(lambda _: self._draw(), names="value")
        self.widget = ipw.VBox([
            ipw.HBox([self.sort, self.head, self.context]),
            ipw.HBox([self.fig, ipw.VBox([self.scores_html, self.readout_html])]),
            self.contexts_html,
        ])
        self._fill_heads()

    # ----------------------------------------------------------------------------- state
    def ranked_heads(self) -> list[int]:
        """Heads that fired at least once, best first under the current sort key."""
        fired = self.table[self.table["frequency"] > 0]
        return [int(h) for h in fired.sort_values(self.sort.value, ascending=False, na_position="last").index]

    def _fill_heads(self) -> None:
        heads = self.ranked_heads()[:200]
        key = self.sort.value
        self.head.options = [(f"{h}  ({key} {self.table.loc[h, key]:.3g})", h) for h in heads]
        if heads:
            self.head.value = heads[0]

    def _show(self) -> None:
        h = self.head.value
        if h is None:
            return
        n_ctx = int((self.tops.values[h] != 0).sum())
        self.context.max = max(0, n_ctx - 1)
        self.context.value = 0
        rows = []
        for j in range(n_ctx):
            seq, pos = int(self.tops.seq[h, j]), int(self.tops.pos[h, j])
            before, here, after = context_strings(self.model, self.tops.tokens, seq, pos, window=self.window)
            rows.append(f"<tr><td>{self.tops.values[h, j]:.2f}</td><td style='font-family:monospace'>{html.escape(before)}"
                        f"<b style='background:{HIGHLIGHT_COLOUR}'>{html.escape(here)}</b>{html.escape(after)}</td></tr>")
        self.contexts_html.value = f"<table><tr><th>z</th><th>top contexts of head {h}</th></tr>{''.join(rows)}</table>"
        ro = ov_readout(self.model, self.lorsa, h, k=8)
        self.readout_html.value = "<b>OV readout</b>" + ro.to_html(index=False, float_format="%.3f")
        row = self.table.loc[h]
        self.scores_html.value = "<b>type scores</b><br>" + "<br>".join(
            f"{k}: {row[k]:.3f}" for k in SORT_KEYS)
        self._draw()

    def z_pattern_figure(self) -> go.Figure:
        """The z-pattern of the selected head on the selected top context
        (:func:`interp.lorsa.analyze.context_z_pattern`, drawn by ``ZPattern.plot``)."""
        h, j = self.head.value, self.context.value
        if h is None or self.tops.values[h, j] == 0:
            return go.Figure().update_layout(title="no activation to show")
        seq, pos = int(self.tops.seq[h, j]), int(self.tops.pos[h, j])
        return context_z_pattern(self.model, self.lorsa, self.tops.tokens, seq, pos, h, window=self.window).plot()

    def _draw(self) -> None:
        fill(self.fig, self.z_pattern_figure())

    # ----------------------------------------------------------------------------- output
    def _static_after(self) -> str:
        return self.scores_html.value + self.readout_html.value + self.contexts_html.value

    def __repr__(self) -> str:
        return f"HeadBrowser(layer={self.lorsa.cfg.layer}, n_ov={self.lorsa.cfg.n_ov_heads}, head={self.head.value})"
