"""One palette for every figure and widget, so a colour means the same thing everywhere."""

from __future__ import annotations

__all__ = ["OUTCOME_COLOURS", "RESPONSE_COLOURS", "THR_SCALE", "RUN_COLOURS", "READOUT_COLOURS"]

OUTCOME_COLOURS: dict[str, str] = {
    "correct": "#2ca02c", "translation_failure": "#d62728", "target_lost": "#ff7f0e", "task_failure": "#7f7f7f",
}
"""Translation-probe outcomes."""

RESPONSE_COLOURS: dict[str, str] = {"correct": "#2166ac", "incorrect": "#b2182b"}
"""GRPO responses: blue correct (positive advantage), red incorrect; the ends of :data:`THR_SCALE`."""

THR_SCALE = "RdBu"
"""Diverging scale centred on 0: red = THR < 0 (exploration), blue = THR > 0 (exploitation)."""

RUN_COLOURS: list[str] = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"]
"""Categorical colours for runs / conditions drawn side by side."""

READOUT_COLOURS: dict[str, str] = {"promotes": "#2166ac", "suppresses": "#b2182b"}
"""Direct logit readouts: promoted tokens blue, suppressed red."""
