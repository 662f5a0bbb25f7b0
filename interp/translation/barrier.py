"""The translation-barrier headline numbers of a :class:`~interp.translation.report.ProbeReport`, with
their uncertainty (Bafna et al. 2025; Wendler et al. 2024): how often a pivot language's form (English)
decodes in the middle layers, the layer where the target language takes over, and the outcome
shares per target resource level. Shares carry Wilson 95% intervals (binomial over examples); the
takeover layer carries a bootstrap interval over examples.

>>> stats = barrier_stats(report)            # doctest: +SKIP
>>> stats.pivot_in_middle, stats.takeover    # doctest: +SKIP
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from interp.translation.matching import Outcome

if TYPE_CHECKING:
    from interp.translation.report import ProbeReport

__all__ = ["Share", "wilson", "middle_layers", "BarrierStats", "barrier_stats", "takeover_from_counts"]

OUTCOMES = tuple(o.value for o in Outcome)
_LEVELS = ("high", "mid", "low", "unknown")


@dataclass(frozen=True)
class Share:
    """``k`` of ``n`` examples, with a Wilson score interval (``z`` = 1.96: 95%)."""

    k: int
    n: int
    lo: float
    hi: float

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    def to_dict(self) -> dict[str, float]:
        return dict(k=self.k, n=self.n, value=round(self.value, 4), lo=round(self.lo, 4), hi=round(self.hi, 4))

    def __repr__(self) -> str:
        return f"{self.value:.3f} [{self.lo:.3f}, {self.hi:.3f}] (n={self.n})"


def wilson(k: int, n: int, z: float = 1.96) -> Share:
    """Wilson score interval for ``k`` successes in ``n`` trials (exact at 0 and n, unlike Wald).

    >>> wilson(0, 10).hi > 0, round(wilson(5, 10).lo, 3)
    (True, 0.237)
    """
    if not 0 <= k <= n:
        raise ValueError(f"Need 0 <= k <= n; got k={k}, n={n}.")
    if n == 0:
        return Share(0, 0, float("nan"), float("nan"))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Share(k, n, max(0.0, centre - half), min(1.0, centre + half))


def middle_layers(n_layers: int) -> list[int]:
    """Lens indices counted as "middle": ``ceil(n/4) .. floor(3n/4)`` (for 8 blocks: 2..6), fixed
    before looking at any model, so the pivot share is not tuned to where a curve peaks."""
    return list(range(math.ceil(n_layers / 4), math.floor(3 * n_layers / 4) + 1))


def takeover_from_counts(on_target: np.ndarray, best_rival: np.ndarray, layers: Sequence[int]) -> list[int | None]:
    """``ProbeReport.takeover_layer`` for many count tables at once: per row of ``[b, n_layers]``
    counts, the first layer from which the target beats every single other language at every later
    layer (``None`` when it does not win the last layer)."""
    return _first_of_final_run((on_target > 0) & (on_target > best_rival), layers)


def _first_of_final_run(wins: np.ndarray, layers: Sequence[int]) -> list[int | None]:
    """Per row of booleans ``[b, n_layers]``: the first layer of the run of ``True`` that ends at the
    last layer (``None`` when the last layer is ``False``)."""
    out: list[int | None] = []
    for row in wins:
        j = len(layers)
        while j > 0 and row[j - 1]:
            j -= 1
        out.append(None if j == len(layers) else layers[j])
    return out


def _interval(values: list[int | None], never: int) -> tuple[tuple[int | None, int | None], dict[str, float]]:
    """95% percentile interval and distribution of bootstrapped layers (``None`` = never)."""
    vals = np.array([never if t is None else t for t in values])
    lo, hi = (int(v) for v in np.percentile(vals, [2.5, 97.5], method="nearest"))
    dist = {("never" if v == never else str(v)): round(float((vals == v).mean()), 4) for v in np.unique(vals)}
    return (None if lo == never else lo, None if hi == never else hi), dist


@dataclass
class BarrierStats:
    """Headline numbers of one probe run over pairs without the pivot language.

    ``pivot_in_middle``: examples whose pivot-language form decodes at one middle layer or more;
    ``pivot_by_layer`` / ``target_by_layer``: per inspected layer; ``takeover``: the report's takeover
    layer (target decoded more often than any single other language from there on) with a bootstrap
    95% interval (``takeover_ci``; ``None`` = the target never takes over); ``majority``: the first
    layer from which the target is decoded in more than half of the examples at every later layer
    (an absolute threshold: the relative takeover can come early when every rival is rare);
    ``outcomes``: level -> outcome -> share; ``translation_failure_share``: level -> translation
    failures among the errors; ``pivot_in_middle_by_target``: ``pivot_in_middle`` per target
    resource level (a pivot can serve some targets and not others).
    """

    pivot: str
    lens: str
    n_layers: int
    layers: list[int]
    middle: list[int]
    n_examples: int
    pivot_in_middle: Share
    pivot_by_layer: list[Share]
    target_by_layer: list[Share]
    takeover: int | None
    takeover_ci: tuple[int | None, int | None]
    takeover_bootstrap: dict[str, float]
    majority: int | None
    majority_ci: tuple[int | None, int | None]
    outcomes: dict[str, dict[str, Share]]
    translation_failure_share: dict[str, Share]
    pivot_in_middle_by_target: dict[str, Share] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(
            pivot=self.pivot, lens=self.lens, n_layers=self.n_layers, layers=self.layers, middle_layers=self.middle,
            n_examples=self.n_examples, pivot_in_middle=self.pivot_in_middle.to_dict(),
            pivot_by_layer=[s.to_dict() for s in self.pivot_by_layer],
            target_by_layer=[s.to_dict() for s in self.target_by_layer],
            takeover_layer=self.takeover, takeover_ci=list(self.takeover_ci),
            takeover_bootstrap=self.takeover_bootstrap, majority_layer=self.majority,
            majority_ci=list(self.majority_ci),
            outcomes={lvl: {o: s.to_dict() for o, s in per.items()} for lvl, per in self.outcomes.items()},
            translation_failure_share={lvl: s.to_dict() for lvl, s in self.translation_failure_share.items()},
            pivot_in_middle_by_target={lvl: s.to_dict() for lvl, s in self.pivot_in_middle_by_target.items()},
        )

    def to_frame(self):
        """One row per (target resource level, outcome): share and its interval."""
        import pandas as pd

        rows = [dict(target_resource=lvl, outcome=o, **s.to_dict()) for lvl, per in self.outcomes.items()
                for o, s in per.items()]
        rows += [dict(target_resource=lvl, outcome="translation_failure_share_of_errors", **s.to_dict())
                 for lvl, s in self.translation_failure_share.items()]
        return pd.DataFrame(rows)

    def plot(self):
        """Share of examples decoded in the pivot and in the target language, per layer, with 95%
        bands, the middle layers shaded and the takeover layer marked."""
        import plotly.graph_objects as go

        fig = go.Figure()
        for name, shares, colour in ((f"pivot ({self.pivot})", self.pivot_by_layer, "#1f77b4"),
                                     ("target", self.target_by_layer, "#d62728")):
            fig.add_trace(go.Scatter(x=self.layers + self.layers[::-1], y=[s.hi for s in shares] + [s.lo for s in shares][::-1],
                                     fill="toself", line=dict(width=0), fillcolor=colour, opacity=0.2,
                                     hoverinfo="skip", showlegend=False))
            fig.add_trace(go.Scatter(x=self.layers, y=[s.value for s in shares], mode="lines+markers",
                                     line=dict(color=colour), name=name))
        fig.add_vrect(x0=self.middle[0] - 0.5, x1=self.middle[-1] + 0.5, fillcolor="grey", opacity=0.08, line_width=0)
        if self.takeover is not None:
            fig.add_vline(x=self.takeover, line_dash="dot", annotation_text=f"takeover {self.takeover}")
        if self.majority is not None and self.majority != self.takeover:
            fig.add_vline(x=self.majority, line_dash="dash", annotation_text=f"target > 50% from {self.majority}",
                          annotation_position="bottom right")
        fig.update_layout(title=f"{self.lens} lens: pivot vs target by layer (n={self.n_examples})",
                          xaxis_title="layer", yaxis_title="share of examples", yaxis_range=[0, 1])
        return fig

    def __repr__(self) -> str:
        return (f"BarrierStats({self.lens} lens, n={self.n_examples}: {self.pivot} in middle layers "
                f"{self.pivot_in_middle!r}, takeover {self.takeover} {list(self.takeover_ci)}, "
                f"majority from {self.majority} {list(self.majority_ci)})")

    def _repr_html_(self) -> str:
        table = self.to_frame().pivot_table(index="target_resource", columns="outcome", values="value").to_html(
            float_format=lambda v: f"{v:.2f}")
        return (f"<div><b>BarrierStats</b> ({html.escape(self.lens)} lens, {self.n_examples} examples): "
                f"{html.escape(self.pivot)} decodes in a middle layer ({self.middle[0]}-{self.middle[-1]}) in "
                f"{html.escape(repr(self.pivot_in_middle))}; target takes over at layer {self.takeover} "
                f"(95% bootstrap {list(self.takeover_ci)}), decoded in most examples from layer {self.majority} "
                f"({list(self.majority_ci)}){table}</div>")


def barrier_stats(report: "ProbeReport", *, pivot: str = "en", middle: Sequence[int] | None = None,
                  n_boot: int = 1000, seed: int = 0, z: float = 1.96) -> BarrierStats:
    """Headline translation-barrier numbers over the report's examples whose source and target are
    both not ``pivot`` (pivot pairs would show the pivot trivially)."""
    rows = [r for r in report.rows if pivot not in (r["src"], r["tgt"])]
    if not rows:
        raise ValueError(f"The report has no example without the pivot {pivot!r} as source or target.")
    layers = report.layers
    n_layers = int(report.meta.get("n_layers", layers[-1]))
    mid = list(middle) if middle is not None else middle_layers(n_layers)
    missing = [m for m in mid if m not in layers]
    if missing:
        raise ValueError(f"Middle layers {missing} were not inspected by this report (it has {layers}).")
    mid_idx = [layers.index(m) for m in mid]
    langs = list(dict.fromkeys([pivot] + [lang for r in rows for lang in r["layer_languages"] if lang]))
    code = {lang: i for i, lang in enumerate(langs)}
    lang_ids = np.array([[code[lang] if lang else -1 for lang in r["layer_languages"]] for r in rows])  # [N, L]
    tgt_ids = np.array([code.get(r["tgt"], -2) for r in rows])
    is_target = lang_ids == tgt_ids[:, None]
    is_pivot = lang_ids == code[pivot]
    n = len(rows)

    pivot_mid_rows = is_pivot[:, mid_idx].any(1)  # [N]
    pivot_mid = int(pivot_mid_rows.sum())
    per_layer_pivot = [wilson(int(k), n, z) for k in is_pivot.sum(0)]
    per_layer_target = [wilson(int(k), n, z) for k in is_target.sum(0)]

    # takeover: counts of target vs each rival language per layer, bootstrapped over examples
    rival = np.stack([(lang_ids == i) & ~is_target for i in range(len(langs))], axis=-1)  # [N, L, n_langs]
    rng = np.random.default_rng(seed)
    weights = np.vstack([np.ones(n, dtype=np.int64), rng.multinomial(n, np.full(n, 1 / n), size=n_boot)])
    on_target = weights @ is_target.astype(np.int64)  # [B+1, L]
    rivals = np.einsum("bn,nlk->blk", weights, rival.astype(np.int64)).max(-1)
    takeovers = takeover_from_counts(on_target, rivals, layers)
    never = n_layers + 1
    ci, dist = _interval(takeovers[1:], never)
    majorities = _first_of_final_run(2 * on_target > n, layers)
    majority_ci, _ = _interval(majorities[1:], never)

    outcomes: dict[str, dict[str, Share]] = {}
    tf_share: dict[str, Share] = {}
    levels = sorted({r["target_resource"] for r in rows}, key=lambda x: _LEVELS.index(x) if x in _LEVELS else 9)
    for lvl in ["all"] + levels:
        sel = [r["outcome"] for r in rows if lvl == "all" or r["target_resource"] == lvl]
        outcomes[lvl] = {o: wilson(sum(x == o for x in sel), len(sel), z) for o in OUTCOMES}
        errors = [x for x in sel if x != Outcome.CORRECT.value]
        tf_share[lvl] = wilson(sum(x == Outcome.TRANSLATION_FAILURE.value for x in errors), len(errors), z)
    resource = np.array([r["target_resource"] for r in rows])
    pivot_by_target = {lvl: wilson(int(pivot_mid_rows[resource == lvl].sum()), int((resource == lvl).sum()), z)
                       for lvl in levels}
    return BarrierStats(
        pivot=pivot, lens=str(report.meta.get("lens", "logit")), n_layers=n_layers, layers=list(layers), middle=mid,
        n_examples=n, pivot_in_middle=wilson(pivot_mid, n, z), pivot_by_layer=per_layer_pivot,
        target_by_layer=per_layer_target, takeover=takeovers[0], takeover_ci=ci, takeover_bootstrap=dist,
        majority=majorities[0], majority_ci=majority_ci, outcomes=outcomes, translation_failure_share=tf_share,
        pivot_in_middle_by_target=pivot_by_target, meta=dict(n_boot=n_boot, seed=seed, z=z),
    )
