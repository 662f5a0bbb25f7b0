"""THRTrainingViewer: token-level view of a GRPO run's THR log (``THRCallback`` in TRL, or any loop that fills
:class:`~interp.thr.training_log.THRTrainingLog`): a step slider, a group picker, and the group's responses as
rows of tokens coloured by THR, advantage, entropy or KL (THRViewer's diverging scale), with the rollout's
summary statistics below. Presentation only: every number comes from the log.
"""

from __future__ import annotations

import ipywidgets as W
import plotly.graph_objects as go

from interp.thr.plots import rollout_token_figure
from interp.thr.training_log import QUANTITIES, THRTrainingLog
from widgets._view import FigureView, Pane, fill

__all__ = ["THRTrainingViewer"]


class THRTrainingViewer(FigureView):
    """Browse a :class:`~interp.thr.training_log.THRTrainingLog` rollout by rollout.

    >>> from widgets import THRTrainingViewer        # doctest: +SKIP
    >>> THRTrainingViewer(callback.log)              # doctest: +SKIP
    >>> THRTrainingViewer(THRTrainingLog.load("out/thr_log.jsonl")).export("out/thr_training")  # doctest: +SKIP
    """

    def __init__(self, log: THRTrainingLog, *, rollout: int = -1, group: int = 0, quantity: str = "thr"):
        if not isinstance(log, THRTrainingLog):
            raise TypeError(f"THRTrainingViewer shows a THRTrainingLog; got {type(log).__name__}.")
        if not len(log):
            raise ValueError("The log holds no rollout yet: train with THRCallback attached first.")
        if quantity not in QUANTITIES:
            raise ValueError(f"quantity={quantity!r}: use one of {QUANTITIES}.")
        self.log = log
        n = len(log)
        self.rollout = W.IntSlider(value=rollout % n, min=0, max=n - 1, description="rollout", continuous_update=False)
        self.step_label = W.HTML()
        self.group = W.Dropdown(options=self._groups(rollout % n), value=group, description="group")
        self.quantity = W.ToggleButtons(options=list(QUANTITIES), value=quantity, description="colour")
        self.stats = W.HTML()
        self.fig = Pane()
        self.panes = {"figure": self.fig}
        self.rollout.observe(self._on_rollout, names="value")
        for w in (self.group, self.quantity):
            w.observe(lambda _change: self.refresh(), names="value")
        self.widget = W.VBox([W.HBox([self.rollout, self.step_label]), W.HBox([self.group, self.quantity]),
                              self.fig, self.stats])
        self.refresh()

    def _groups(self, rollout: int) -> list[tuple[str, int]]:
        r = self.log[rollout]
        out = []
        for b in range(r.n_groups):
            adv = [resp["seq_advantage"] for resp in r.group(b)]
            flat = all(a is None or a == 0 for a in adv)
            out.append((f"{b}{' (equal rewards)' if flat else ''}", b))
        return out

    def _on_rollout(self, _change) -> None:
        options = self._groups(self.rollout.value)
        keep = self.group.value if self.group.value < len(options) else 0
        with self.group.hold_trait_notifications():
            self.group.options = options
            self.group.value = keep
        self.refresh()

    def current_figure(self) -> go.Figure:
        """The library figure of the current selection (:func:`interp.thr.plots.rollout_token_figure`)."""
        return rollout_token_figure(self.log, self.rollout.value, self.group.value, self.quantity.value)

    def refresh(self) -> None:
        r = self.log[self.rollout.value]
        self.step_label.value = f"step {r.step}"
        self.stats.value = " · ".join(f"{k} {v:.3g}" for k, v in r.stats.items() if v is not None)
        fill(self.fig, self.current_figure())

    def _static_after(self) -> str:
        return self.stats.value

    def __repr__(self) -> str:
        return f"THRTrainingViewer({self.log!r})"
