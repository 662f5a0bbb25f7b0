"""Next-token losses of a model with one hook replaced: clean, spliced (the hook's activation replaced
by a reconstruction, e.g. a Lorsa's or an SAE's) and zero-ablated, over the same predictions.

One rule for which positions are replaced and which predictions count, shared by every evaluator: a
reconstruction replaces the hook at the positions it was trained on (not BOS, not padding; BOS stays
the real activation unless asked), and every prediction whose target is a real token counts. Losses
are computed per token from the final residual in row chunks, so no ``[batch, ctx, d_vocab]`` logits
(nor float copies of them) are ever held: memory is ``batch x ctx x d_model`` plus one chunk.

Fraction of loss recovered = (L_ablated - L_spliced) / (L_ablated - L_clean): 1 means the splice is as
good as the real activation, 0 as bad as deleting it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

__all__ = ["token_losses", "splice_positions", "SpliceSums", "spliced_losses", "DEFAULT_ROW_FLOATS"]

DEFAULT_ROW_FLOATS = 2**24
"""Logits held at once while computing per-token losses (64 MiB of float32): rows per chunk = this / d_vocab."""

Hook = tuple[str, Callable[..., Any]]


def _final_residual_hook(model: Any) -> str:
    return f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"


@torch.no_grad()
def token_losses(
    model: Any,
    tokens: Int[Tensor, "batch ctx"],
    *,
    fwd_hooks: Sequence[Hook] = (),
    row_floats: int = DEFAULT_ROW_FLOATS,
) -> Float[Tensor, "batch ctx_minus_1"]:
    """Next-token cross-entropy at every position (``[batch, ctx-1]``, float32) from one forward pass with
    ``fwd_hooks``. The forward stops before the unembedding; the final norm, unembedding and soft-cap are
    applied to chunks of rows, each reduced to its loss at once."""
    kept: dict[str, Tensor] = {}

    def keep(act: Tensor, hook: Any) -> None:
        kept["h"] = act.detach()

    with model.hooks(fwd_hooks=[*fwd_hooks, (_final_residual_hook(model), keep)]):
        model(tokens, return_type=None)
    h = kept["h"][:, :-1]
    b, n, d = h.shape
    rows = h.reshape(-1, d)
    targets = tokens[:, 1:].reshape(-1).to(rows.device)
    has_norm = model.cfg.normalization_type is not None
    cap = float(getattr(model.cfg, "output_logits_soft_cap", 0.0) or 0.0)
    vocab = int(model.cfg.d_vocab_out if getattr(model.cfg, "d_vocab_out", None) else model.cfg.d_vocab)
    step = max(1, int(row_floats) // vocab)
    out = torch.empty(rows.shape[0], dtype=torch.float32, device=rows.device)
    for start in range(0, rows.shape[0], step):
        x = rows[start : start + step]
        logits = model.unembed((model.ln_final(x) if has_norm else x)[None])[0].float()
        if cap > 0:
            logits = cap * torch.tanh(logits / cap)
        t = targets[start : start + step]
        out[start : start + step] = torch.logsumexp(logits, -1) - logits.gather(-1, t[:, None])[:, 0]
    return out.view(b, n)


def splice_positions(tokens: Int[Tensor, "batch ctx"], *, bos_token_id: int | None, pad_token_id: int | None,
                     include_bos: bool = False) -> Bool[Tensor, "batch ctx"]:
    """Where a reconstruction replaces the real activation: every real token except BOS (unless
    ``include_bos``)."""
    from interp.core.tokens import token_mask

    if include_bos:
        return token_mask(tokens, bos_token_id=None, pad_token_id=pad_token_id)
    return token_mask(tokens, bos_token_id=bos_token_id, pad_token_id=pad_token_id)


@dataclass
class SpliceSums:
    """Summed next-token losses over counted predictions, accumulated batch by batch."""

    clean: float = 0.0
    spliced: float = 0.0
    ablated: float = 0.0
    n_predictions: int = 0

    def add(self, other: "SpliceSums") -> None:
        self.clean += other.clean
        self.spliced += other.spliced
        self.ablated += other.ablated
        self.n_predictions += other.n_predictions

    def means(self) -> tuple[float, float, float]:
        if self.n_predictions == 0:
            raise ValueError("No prediction was counted (every target is padding): nothing to evaluate.")
        n = self.n_predictions
        return self.clean / n, self.spliced / n, self.ablated / n

    @property
    def loss_recovered(self) -> float:
        clean, spliced, ablated = self.means()
        return (ablated - spliced) / (ablated - clean) if ablated != clean else float("nan")


@torch.no_grad()
def spliced_losses(
    model: Any,
    tokens: Int[Tensor, "batch ctx"],
    hook_name: str,
    reconstruct: Callable[[Tensor], Tensor],
    *,
    where: Bool[Tensor, "batch ctx"],
    pad_token_id: int | None = None,
    extra_hooks: Sequence[Hook] = (),
    row_floats: int = DEFAULT_ROW_FLOATS,
) -> SpliceSums:
    """Summed losses of one batch: clean, with ``hook_name`` replaced by ``reconstruct(activation)`` at
    ``where``, and zero-ablated at ``where``. Predictions count when their target is not padding.
    ``extra_hooks`` run in the spliced pass (e.g. to capture the reconstruction's input)."""

    def splice(act: Tensor, hook: Any) -> Tensor:
        return torch.where(where.unsqueeze(-1), reconstruct(act).to(act.dtype), act)

    def ablate(act: Tensor, hook: Any) -> Tensor:
        return torch.where(where.unsqueeze(-1), torch.zeros_like(act), act)

    counted = torch.ones_like(tokens[:, 1:], dtype=torch.bool) if pad_token_id is None else tokens[:, 1:] != pad_token_id
    counted = counted.to(where.device)
    clean = token_losses(model, tokens, row_floats=row_floats)
    spliced = token_losses(model, tokens, fwd_hooks=[*extra_hooks, (hook_name, splice)], row_floats=row_floats)
    ablated = token_losses(model, tokens, fwd_hooks=[(hook_name, ablate)], row_floats=row_floats)
    m = counted.float()
    return SpliceSums(float((clean * m).sum()), float((spliced * m).sum()), float((ablated * m).sum()), int(m.sum()))
