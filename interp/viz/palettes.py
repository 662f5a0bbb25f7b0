"""One palette for every figure and widget, so a colour means the same thing everywhere.

Every colour and colour scale that a figure builder (``interp/<method>/plots.py``) or a widget uses
is named here; a builder never writes a colour literal of its own (``tests/test_plots.py`` checks).
"""

from __future__ import annotations

__all__ = [
    "OUTCOME_COLOURS", "RESPONSE_COLOURS", "THR_SCALE", "DIVERGING_SCALE", "LOGPROB_SCALE", "RATE_SCALE",
    "MISSING_COLOUR", "LANGUAGE_COLOURS", "NO_LANGUAGE_COLOUR", "RUN_COLOURS", "READOUT_COLOURS",
    "CONDITION_COLOURS", "OTHER_CONDITION_COLOUR", "HEAD_SOURCE_COLOURS", "HIGHLIGHT_COLOUR", "TEXT_ON_COLOUR",
    "NEUTRAL_COLOUR", "LEGEND_BACKGROUND",
]

OUTCOME_COLOURS: dict[str, str] = {
    "correct": "#2ca02c", "translation_failure": "#d62728", "target_lost": "#ff7f0e", "task_failure": "#7f7f7f",
}
"""Translation-probe outcomes (the explorer's badge, the outcomes bar chart)."""

RESPONSE_COLOURS: dict[str, str] = {"correct": "#2166ac", "incorrect": "#b2182b"}
"""GRPO responses: blue correct (positive advantage), red incorrect; the ends of :data:`THR_SCALE`."""

DIVERGING_SCALE = "RdBu"
"""Signed quantities centred on 0 (red < 0 < blue): THR, Lorsa z-patterns."""

THR_SCALE = DIVERGING_SCALE
"""Diverging scale centred on 0: red = THR < 0 (exploration), blue = THR > 0 (exploitation)."""

LOGPROB_SCALE = "Viridis"
"""Log-probabilities of lens decodings (bright = likely)."""

RATE_SCALE = "Magma"
"""Rates in [0, 1] per language pair (translation heatmaps)."""

MISSING_COLOUR = "#d0d0d0"
"""Background behind cells that were not measured (e.g. source = target pairs)."""

NO_LANGUAGE_COLOUR = "#d9d9d9"
"""A layer whose decoded string belongs to no language."""

LANGUAGE_COLOURS: list[str] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
]
"""Languages in the order of a run's language list (cycled when there are more)."""

RUN_COLOURS: list[str] = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"]
"""Categorical colours for runs / conditions drawn side by side."""

READOUT_COLOURS: dict[str, str] = {"promotes": "#2166ac", "suppresses": "#b2182b"}
"""Direct logit readouts: promoted tokens blue, suppressed red."""

CONDITION_COLOURS: dict[str, str] = {
    "unsteered": "#555555", "corrsteer": "#1f77b4", "diff_means": "#ff7f0e", "random": "#bbbbbb",
}
"""Steering conditions by kind (CorrSteer report)."""

OTHER_CONDITION_COLOUR = "#999999"
"""A steering condition of a kind not in :data:`CONDITION_COLOURS`."""

HEAD_SOURCE_COLOURS: dict[str, str] = {"lorsa": "#1f77b4", "host": "crimson"}
"""Lorsa heads versus the host model's own attention heads."""

HIGHLIGHT_COLOUR = "#fdd835"
"""The activating token in a context shown as text."""

TEXT_ON_COLOUR = "white"
"""Text drawn on a coloured badge."""

NEUTRAL_COLOUR = "#333333"
"""A badge or mark of a category the palette does not name."""

LEGEND_BACKGROUND = "rgba(255,255,255,0.7)"
"""A legend drawn over data: translucent white, so the data shows through."""
