"""Baselines for CorrSteer in the same vector API: difference of means and random-feature controls.

Difference of means (CAA-style): mean residual on correct minus incorrect samples at a hook, pooled
over the same positions as the collection. Random controls: random SAE features at the same
hook, at the same norm as the CorrSteer vector (one control is not a baseline: use several).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from interp.core.validate import Check
from interp.steering.errors import SteeringConfigError
from interp.steering.saes import sae_hook_name
from interp.steering.steer import SteeringVector

if TYPE_CHECKING:
    from sae_lens import SAE

    from interp.steering.collect import Collection

__all__ = ["diff_of_means", "random_features"]


def diff_of_means(collection: "Collection", hook: str, *, norm: float | None = None) -> SteeringVector:
    """Mean pooled residual of correct minus incorrect samples at ``hook``, rescaled to ``norm`` if given."""
    Check("diff_of_means", SteeringConfigError).number("norm", norm, ge=0, optional=True)
    if hook not in collection.resid_stats:
        raise KeyError(f"No residual statistics for {hook!r}; collected hooks: {collection.hooks}.")
    s = collection.resid_stats[hook]
    direction = (s.mean_active(1) - s.mean_active(0)).float()
    length = float(direction.norm())
    if length == 0:
        raise ValueError(f"Correct and incorrect samples have identical mean residuals at {hook!r}.")
    coef = 1.0 if norm is None else norm / length
    return SteeringVector(hook, direction, coef, "diff_means", None, {"raw_norm": length})


def random_features(
    sae: "SAE[Any]", n: int, *, norm: float, seed: int = 0, exclude: tuple[int, ...] = ()
) -> list[SteeringVector]:
    """``n`` distinct random features of ``sae`` (not in ``exclude``), each scaled to ``norm``."""
    c = Check("random_features", SteeringConfigError)
    c.integer("n", n, min=0)
    c.number("norm", norm, ge=0)
    c.integer("seed", seed, min=0)
    g = torch.Generator().manual_seed(seed)
    pool = torch.tensor([i for i in range(sae.cfg.d_sae) if i not in set(exclude)])
    if n > len(pool):
        raise SteeringConfigError(f"Asked for {n} random features but the SAE has only {len(pool)} to choose from.")
    picks = pool[torch.randperm(len(pool), generator=g)[:n]].tolist()
    out = []
    for i in picks:
        row = sae.W_dec[i].detach().clone()
        length = float(row.norm())
        out.append(SteeringVector(sae_hook_name(sae), row, norm / max(length, 1e-12), "random", int(i), {"seed": seed}))
    return out
