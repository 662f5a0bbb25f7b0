"""The logit, tuned and Jacobian lenses side by side: held-out KL(model's output || lens) per layer.

The lower the KL at a layer, the more faithfully that lens reads the model's eventual prediction out
of the layer's residual. Measure on windows none of the lenses was fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Int
from torch import Tensor

from interp.core.frontend import n_layers as n_layers_of
from interp.core.tokens import check_tokens
from interp.core.validate import Check
from interp.lens.errors import LensConfigError
from interp.lens.result import layer_label
from interp.core.frontend import input_device
from interp.lens.kl import _kl_per_layer, _residuals_and_final

if TYPE_CHECKING:
    import pandas as pd
    from transformer_lens import HookedTransformer

__all__ = ["LensComparison", "compare_lenses"]


@dataclass
class LensComparison:
    """Held-out KL per layer of several lenses. ``frame``: one row per (lens, layer) with columns
    ``lens``, ``layer`` (lens index), ``layer_label`` and ``kl`` (nats per token)."""

    frame: "pd.DataFrame"
    n_windows: int
    n_tokens: int
    """Tokens the KL was averaged over (positions ``from_position`` onwards of every window)."""
    from_position: int = 0

    def table(self) -> "pd.DataFrame":
        """Layers as rows, lenses as columns."""
        wide = self.frame.pivot(index="layer", columns="lens", values="kl")
        wide = wide[list(dict.fromkeys(self.frame["lens"]))]
        wide.index = [layer_label(int(i), 0) for i in wide.index]
        return wide

    def plot(self, *, title: str | None = None):
        """One line per lens (:func:`interp.lens.plots.lens_kl_figure`)."""
        from interp.lens.plots import lens_kl_figure

        return lens_kl_figure(self.frame, title=title)

    def __repr__(self) -> str:
        means = self.frame.groupby("lens", sort=False)["kl"].mean()
        body = ", ".join(f"{k} {v:.3f}" for k, v in means.items())
        return f"LensComparison(mean held-out KL per layer: {body}; {self.n_windows} windows, {self.n_tokens} tokens)"

    def _repr_html_(self) -> str:
        return (f"<div><b>LensComparison</b>: held-out KL(model || lens), nats per token, on {self.n_windows} "
                f"windows ({self.n_tokens} tokens from position {self.from_position}){self.table().to_html(float_format=lambda v: f'{v:.4f}')}</div>")


def compare_lenses(
    model: "HookedTransformer",
    tokens: Int[Tensor, "n ctx"],
    *,
    tuned: Any = None,
    jacobian: Any = None,
    logit: bool = True,
    batch_size: int = 32,
    from_position: int = 0,
) -> LensComparison:
    """Held-out KL per lens index ``0..n_layers-1`` of the logit lens and of the given tuned and Jacobian
    lenses (objects, or ``"attached"`` for the ones attached to ``model``), batched over ``tokens``.
    ``from_position`` leaves the first positions of every window out of the average (e.g. the
    ``skip_first`` positions a Jacobian lens was not fitted on); 0 averages over every token, as
    :func:`~interp.lens.kl.kl_by_layer` does.

    Example:
        >>> cmp = compare_lenses(model, held_out, tuned=tlens, jacobian=jlens)   # doctest: +SKIP
        >>> cmp.table(); cmp.plot()                                               # doctest: +SKIP
    """
    import pandas as pd

    from interp.lens.decode import lens_name, resolve_lens

    tokens = check_tokens(model, tokens)
    c = Check("compare_lenses", LensConfigError)
    c.boolean("logit", logit)
    c.integer("batch_size", batch_size, min=1)
    c.integer("from_position", from_position, min=0)
    if from_position >= tokens.shape[1]:
        c.fail("from_position", from_position, f"less than the window length {tokens.shape[1]}")
    lenses: dict[str, Any] = {"logit": None} if logit else {}
    for name, lens in (("tuned", tuned), ("jacobian", jacobian)):
        if lens is not None:
            found = resolve_lens(model, name if isinstance(lens, str) and lens == "attached" else lens)
            lenses[lens_name(found)] = found  # named by what it is, whichever argument carried it
    if not lenses:
        raise LensConfigError("compare_lenses has nothing to compare: keep logit=True or pass tuned= / jacobian=.")
    n = n_layers_of(model)
    totals = {name: torch.zeros(n) for name in lenses}
    kept = 0
    with torch.no_grad():
        for start in range(0, tokens.shape[0], batch_size):  # one forward per batch serves every lens
            part = tokens[start:start + batch_size]
            resid, final_lp = _residuals_and_final(model, part.to(input_device(model)))
            pos = torch.arange(part.shape[1], device=resid.device).repeat(part.shape[0])  # rows are (window, pos)
            sel = pos >= from_position
            resid, final_lp = resid[sel], final_lp[sel]
            for name, lens in lenses.items():  # _kl_per_layer returns the mean over the rows it gets
                totals[name] += _kl_per_layer(model, lens, resid, final_lp, 4096).cpu() * resid.shape[0]
            kept += resid.shape[0]
    rows = []
    for name, total in totals.items():
        kl = total / kept
        rows += [dict(lens=name, layer=i, layer_label=layer_label(i, n), kl=float(kl[i])) for i in range(n)]
    return LensComparison(pd.DataFrame(rows), int(tokens.shape[0]), kept, from_position)
