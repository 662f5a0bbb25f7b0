"""Memory-bounded unembedding of residual vectors: top-k and log-softmax through vocabulary chunks.

A 256k-token vocabulary times every layer and position does not fit in memory, so logits are
produced chunk by chunk while a running top-k and a running log-sum-exp are kept (the same
streaming trick as flash attention's softmax). Only ``[rows, k]`` ever outlives a chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from interp.core.frontend import output_softcap, unembed_weights
from interp.lens.errors import LensConfigError

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer
    from transformer_lens.model_bridge import TransformerBridge

DEFAULT_CHUNK = 8_192
"""Vocabulary columns unembedded at once. A vocabulary of at most this size is unembedded in one
call of the model's own op (so the last layer reproduces its logits bit for bit); larger ones are
streamed in chunks that read ``W_U`` in place (no copy of the unembedding matrix)."""


@dataclass
class Unembedded:
    """Top-k of the log-softmax over the vocabulary, plus log-probs of chosen targets."""

    top_ids: Int[Tensor, "rows k"]
    top_logprobs: Float[Tensor, "rows k"]
    top_logits: Float[Tensor, "rows k"]
    target_logprobs: Float[Tensor, "rows n_targets"] | None


def _softcap(logits: Tensor, cap: float) -> Tensor:
    # Gemma-2 style output soft-capping, applied exactly as the model's forward does
    return logits if not cap or cap <= 0 else cap * torch.tanh(logits / cap)


def _check_targets(target_ids: Tensor, rows: int, vocab: int) -> None:
    if target_ids.ndim != 2 or target_ids.shape[0] != rows:
        raise LensConfigError(f"target_ids must be shaped [rows, n_targets] = [{rows}, n]; got {tuple(target_ids.shape)}.")
    if target_ids.numel() and (int(target_ids.min()) < 0 or int(target_ids.max()) >= vocab):
        raise LensConfigError(f"target_ids must lie in [0, {vocab}); got values outside that range.")


def unembed_topk(
    model: "HookedTransformer | TransformerBridge",
    resid: Float[Tensor, "rows d_model"],
    *,
    k: int,
    target_ids: Int[Tensor, "rows n_targets"] | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    normalize: Callable[[Tensor], Tensor] | None = None,
) -> Unembedded:
    """Unembed ``resid`` (already translated by a lens; ``normalize`` is the final norm or None).

    Args:
        model: gives ``W_U``, ``b_U`` and the logit soft-cap (read through :mod:`interp.core.frontend`, so a
            bridge and a HookedTransformer are unembedded the same way).
        resid: one residual vector per row.
        k: how many top tokens to keep per row.
        target_ids: per-row token ids whose exact log-probs are wanted (e.g. an answer's tokens).
        chunk_size: vocabulary columns per matmul (bounds memory at ``rows x chunk_size`` floats).
        normalize: applied to ``resid`` first (``model.ln_final`` for the standard logit lens).

    Example:
        >>> out = unembed_topk(model, resid, k=5, normalize=model.ln_final)  # doctest: +SKIP
    """
    x = normalize(resid) if normalize is not None else resid
    W_U, b_U = unembed_weights(model)
    x = x.to(device=W_U.device, dtype=W_U.dtype)
    vocab = W_U.shape[1]
    k = min(k, vocab)
    cap = output_softcap(model)
    if chunk_size <= 0:
        raise LensConfigError(f"chunk_size must be positive, got {chunk_size}.")
    if vocab <= chunk_size:
        # one chunk: the model's own op and an ordinary log_softmax, so the last lens layer
        # reproduces the forward pass's logits and log-probs bit for bit
        logits = _softcap(F.linear(x, W_U.T.contiguous(), b_U).float(), cap)
        lp = logits.log_softmax(-1)
        top_lp, top_ids = lp.topk(k, dim=-1)
        target_lp = None
        if target_ids is not None:
            _check_targets(target_ids, x.shape[0], vocab)
            target_lp = lp.gather(-1, target_ids)
        return Unembedded(top_ids, top_lp, logits.gather(-1, top_ids), target_lp)
    top_vals: Tensor | None = None
    top_ids: Tensor | None = None
    lse: Tensor | None = None
    for start in range(0, vocab, chunk_size):
        stop = min(start + chunk_size, vocab)
        # a strided view of W_U's columns: BLAS reads it in place, nothing is copied
        cols = W_U[:, start:stop]
        logits = (torch.addmm(b_U[start:stop], x, cols) if b_U is not None else x @ cols).float()
        logits = _softcap(logits, cap)
        chunk_lse = torch.logsumexp(logits, dim=-1)
        lse = chunk_lse if lse is None else torch.logaddexp(lse, chunk_lse)
        vals, ids = logits.topk(min(k, stop - start), dim=-1)
        ids = ids + start
        if top_vals is None:
            top_vals, top_ids = vals, ids
        else:
            merged_vals = torch.cat([top_vals, vals], dim=-1)
            merged_ids = torch.cat([top_ids, ids], dim=-1)
            top_vals, order = merged_vals.topk(k, dim=-1)
            top_ids = merged_ids.gather(-1, order)
        del logits
    assert top_vals is not None and top_ids is not None and lse is not None
    target_lp = None
    if target_ids is not None:
        _check_targets(target_ids, x.shape[0], vocab)
        cols = W_U[:, target_ids]  # [d_model, rows, n_targets]
        t_logits = torch.einsum("rd,drn->rn", x, cols)
        if b_U is not None:
            t_logits = t_logits + b_U[target_ids]
        target_lp = _softcap(t_logits.float(), cap) - lse[:, None]
    return Unembedded(top_ids, top_vals - lse[:, None], top_vals, target_lp)
