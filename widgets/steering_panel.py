"""SteeringPanel: CorrSteer's chosen features per hook, a feature's top task samples and logit readout,
a coefficient slider with unsteered vs steered generations side by side, and the accuracy / SER chart.
Presentation only: every number comes from ``interp.steering``.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from interp.core.tasks import TaskProtocol
from interp.steering.collect import Collection
from interp.steering.corrsteer import compare_generations
from interp.steering.features import logit_readout, top_examples
from interp.steering.plots import readout_figure
from interp.steering.report import SteeringReport
from interp.steering.saes import resolve_saes
from interp.steering.select import SelectedFeature, to_vectors
from widgets._view import FigureView, Pane, fill

__all__ = ["SteeringPanel"]


def _table(frame: Any) -> str:
    # Text cells wrap at a readable width instead of growing the table past the output area.
    style = ("<style>.interp-table td{max-width:38em;white-space:pre-wrap;vertical-align:top;"
             "font-family:monospace;font-size:12px}.interp-table td:first-child{white-space:nowrap}</style>")
    return style + frame.to_html(index=False, float_format=lambda x: f"{x:.3f}", escape=True, border=0,
                                 classes="interp-table")


class SteeringPanel(FigureView):
    """Explore a :class:`SteeringReport` with the model and SAEs that produced it.

    Example:
        >>> panel = SteeringPanel(report, model, saes, collection=col, task=splits.train)   # doctest: +SKIP
        >>> panel                                   # the live view (a static figure outside a kernel)
        >>> panel.export("out/corrsteer_panel")     # paper figure: accuracy and SER
    """

    exported = ("summary",)  # the paper figure is the accuracy / SER chart

    def __init__(self, report: SteeringReport, model: Any, saes: Any, *, collection: Collection | None = None,
                 task: TaskProtocol | None = None, prompt: str | None = None, max_new_tokens: int = 12) -> None:
        self.report, self.model, self.collection, self.task = report, model, collection, task
        self.saes = resolve_saes(model, saes)
        self.max_new_tokens = max_new_tokens
        self.features: list[SelectedFeature] = [f for f in report.selected if f.hook in self.saes]
        if not self.features:
            raise ValueError("None of the report's selected features belongs to the SAEs given; pass the SAEs used.")
        labels = [(f"{f.hook} #{f.feature} (r={f.r:.3f})", i) for i, f in enumerate(self.features)]
        self.feature_select = W.Dropdown(options=labels, value=0, description="feature")
        self.scale = W.FloatSlider(value=1.0, min=0.0, max=8.0, step=0.25, description="× coefficient",
                                   continuous_update=False, style={"description_width": "initial"})
        default_prompt = prompt or (task.examples[0].prompt if task is not None else "")
        self.prompt = W.Textarea(value=default_prompt, description="prompt", layout=W.Layout(width="98%", height="80px"))
        self.run_button = W.Button(description="generate")
        self.table = W.HTML(_table(report.features_frame()))
        self.examples = W.HTML()
        self.generations = W.HTML()
        self.readout = Pane()
        self.summary = Pane(report.plot())
        self.panes = {"summary": self.summary, "readout": self.readout}
        self.feature_select.observe(lambda _: self._refresh_feature(), names="value")
        self.scale.observe(lambda _: self._refresh_generations(), names="value")
        self.run_button.on_click(lambda _: self._refresh_generations())
        self._refresh_feature()
        self.widget = W.VBox([
            W.HTML("<b>Selected features</b> (r, coefficient = mean activation on correct samples, firing rate)"),
            self.table, self.summary,
            # The readout and the examples table stack: side by side, the table squeezed its prompts
            # into a one-word column beside the plot.
            W.HBox([self.feature_select, self.scale]), self.readout, self.examples,
            self.prompt, self.run_button, self.generations,
        ])

    # ------------------------------------------------------------------ state
    @property
    def feature(self) -> SelectedFeature:
        return self.features[self.feature_select.value]

    def readout_figure(self) -> go.Figure:
        """The selected feature's logit readout (:func:`interp.steering.features.logit_readout`,
        drawn by :func:`interp.steering.plots.readout_figure`)."""
        f = self.feature
        return readout_figure(logit_readout(self.model, self.saes[f.hook], f.feature, k=8),
                              f"{f.hook} #{f.feature}: logit readout")

    def _refresh_feature(self) -> None:
        fill(self.readout, self.readout_figure())
        f = self.feature
        if self.collection is not None and self.task is not None:
            frame = top_examples(self.collection, self.task, f.hook, f.feature)
            frame = frame.assign(prompt=frame["prompt"].str[-80:])
            self.examples.value = "<b>Top activating training samples</b>" + _table(frame)
        else:
            self.examples.value = "<i>Pass collection= and task= (the split collected on) to see top samples.</i>"
        self._refresh_generations()

    def _refresh_generations(self) -> None:
        prompt = self.prompt.value
        if not prompt.strip():
            self.generations.value = "<i>Type a prompt to compare generations.</i>"
            return
        f = self.feature
        stop = tuple(getattr(self.task, "stop", ()))
        plain, steered = compare_generations(self.model, [prompt], to_vectors([f], self.saes), scale=self.scale.value,
                                             max_new_tokens=self.max_new_tokens, stop=stop)
        self.last_generations = (plain[0], steered[0])
        self.generations.value = (
            "<table><tr><th>unsteered</th><th>steered "
            f"({html.escape(f.hook)} #{f.feature}, c={f.coefficient * self.scale.value:.3g})</th></tr>"
            f"<tr><td><pre>{html.escape(plain[0])}</pre></td><td><pre>{html.escape(steered[0])}</pre></td></tr></table>"
        )

    # ------------------------------------------------------------------ output
    def _static_after(self) -> str:
        return self.table.value + self.examples.value + self.generations.value

    def __repr__(self) -> str:
        return f"SteeringPanel({self.report.task}, {len(self.features)} features)"
