"""Pick steering features from correlation statistics: top-r per hook and the S / A / P variants.

CorrSteer (Cho et al. 2025): per hook, the feature whose pooled activation correlates most with
correctness, with coefficient = its mean pooled activation on correct samples. S keeps the best
single feature over all hooks, A steers with every hook's feature at once, P keeps the hooks whose
solo steering beats the unsteered model on a validation split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import torch

from interp.core.validate import Check
from interp.steering.errors import SteeringConfigError
from interp.steering.stats import CorrelationStats
from interp.steering.steer import SteeringVector

if TYPE_CHECKING:
    from sae_lens import SAE

    from interp.steering.collect import Collection

__all__ = ["Sign", "Variant", "SelectedFeature", "select_features", "variant_s", "variant_a", "variant_p", "to_vectors"]

Sign = Literal["positive", "negative", "abs"]
Variant = Literal["S", "A", "P"]


@dataclass(frozen=True)
class SelectedFeature:
    """One chosen SAE feature: where, which, how strongly it correlates, and its coefficient."""

    hook: str
    feature: int
    r: float
    coefficient: float
    firing_rate: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def select_features(
    stats: "Collection | Mapping[str, CorrelationStats]", per_hook: int = 1, sign: Sign = "positive"
) -> list[SelectedFeature]:
    """Top ``per_hook`` features of each hook by r (``sign="positive"``, the paper's choice: subtracting
    negative-r features hurts), by -r, or by |r|. Coefficient = mean pooled activation on correct samples.

    Example:
        >>> chosen = select_features(collection, per_hook=1)    # doctest: +SKIP
        >>> variant_s(chosen)                                   # doctest: +SKIP
    """
    by_hook = stats.stats if hasattr(stats, "stats") else stats
    if sign not in ("positive", "negative", "abs"):
        raise ValueError(f"sign must be 'positive', 'negative' or 'abs', got {sign!r}.")
    Check("select_features", SteeringConfigError).integer("per_hook", per_hook, min=1)
    out: list[SelectedFeature] = []
    for hook, s in by_hook.items():
        r = s.correlation()
        key = {"positive": r, "negative": -r, "abs": r.abs()}[sign]
        key = torch.where(s.zero_variance, torch.full_like(key, -torch.inf), key)
        coef, rate = s.mean_active(1), s.firing_rate()
        for i in torch.argsort(key, descending=True, stable=True)[:per_hook].tolist():
            if not torch.isfinite(key[i]):
                continue
            out.append(SelectedFeature(hook, int(i), float(r[i]), float(coef[i]), float(rate[i])))
    return out


def variant_s(selected: Sequence[SelectedFeature]) -> list[SelectedFeature]:
    """S: the single feature with the largest r over all hooks."""
    if not selected:
        return []
    return [max(selected, key=lambda f: f.r)]


def variant_a(selected: Sequence[SelectedFeature]) -> list[SelectedFeature]:
    """A: the top feature of every hook, steered together."""
    best: dict[str, SelectedFeature] = {}
    for f in selected:
        if f.hook not in best or f.r > best[f.hook].r:
            best[f.hook] = f
    return list(best.values())


def variant_p(selected: Sequence[SelectedFeature], solo_accuracy: Mapping[str, float], baseline: float) -> list[SelectedFeature]:
    """P: A restricted to hooks whose solo steering beat the unsteered ``baseline`` accuracy on validation."""
    return [f for f in variant_a(selected) if solo_accuracy.get(f.hook, -1.0) > baseline]


def to_vectors(features: Sequence[SelectedFeature], saes: Mapping[str, "SAE[Any]"], scale: float = 1.0) -> list[SteeringVector]:
    """Steering vectors ``scale * coefficient * W_dec[feature]`` at each feature's own hook."""
    return [SteeringVector.from_sae(saes[f.hook], f.feature, f.coefficient * scale, r=f.r) for f in features]


def features_frame(features: Sequence[SelectedFeature]) -> pd.DataFrame:
    return pd.DataFrame([f.to_dict() for f in features], columns=["hook", "feature", "r", "coefficient", "firing_rate"])
