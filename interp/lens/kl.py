"""Held-out KL(model's final distribution || a lens's distribution) per layer, and the loss the tuned
lens trains on: one hand-written KL with two unembedding matmuls per chunk of rows (bf16 where the
hardware has it), its backward chunk by chunk so memory stays bounded by the chunk. The logit lens is
``lens=None``; the tuned and Jacobian lenses (:class:`~interp.lens.fitted.FittedLens`) translate first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.core.activations import fused_forward
from interp.core.frontend import final_norm, input_device, output_device, output_softcap, unembed_weights, vocab_size
from interp.core.frontend import n_layers as n_layers_of
from interp.core.tokens import check_tokens
from interp.core.validate import Check
from interp.lens.errors import LensConfigError
from interp.lens.layers import layer_hook_name

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

    from interp.lens.fitted import FittedLens

__all__ = ["kl_by_layer", "unembedding_for_loss", "Precision"]

Precision = Literal["auto", "float32", "bfloat16"]


def kl_by_layer(
    model: "HookedTransformer", tokens: Int[Tensor, "n ctx"], lens: "FittedLens | None" = None, *, rows_chunk: int = 4096
) -> Float[Tensor, "n_layers"]:
    """Mean KL(model's final distribution || lens distribution) per lens index ``0..n_layers-1``;
    ``lens=None`` measures the plain logit lens (how unfaithful it is, layer by layer)."""
    tokens = check_tokens(model, tokens)
    Check("kl_by_layer", LensConfigError).integer("rows_chunk", rows_chunk, min=1)
    if lens is not None:
        lens.check_model(model)
    with torch.no_grad():
        resid, final_lp = _residuals_and_final(model, tokens.to(input_device(model)))
        return _kl_per_layer(model, lens, resid, final_lp, rows_chunk).cpu()


def _residuals_and_final(model: "HookedTransformer", tokens: Tensor):
    """Residuals at lens indices 0..n_layers-1 ([batch*pos, n_layers, d]) and the final log-probs."""

    n = n_layers_of(model)
    names = [layer_hook_name(i, n) for i in range(n)]
    # Attention as one fused SDPA call (no [batch, heads, q, k] pattern; ~3x faster for stories260K at 8 x 128
    # on CPU, equal to float rounding): the lens needs residuals and logits only.
    with fused_forward(model):
        logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    head = output_device(model)  # a split model's layers live on several devices
    resid = torch.stack([cache[name].to(head) for name in names], dim=2)  # [batch, pos, n_layers, d]
    resid = resid.reshape(-1, n, resid.shape[-1])
    final_lp = logits.reshape(-1, logits.shape[-1]).to(head).float().log_softmax(-1)
    return resid, final_lp


def _rows_chunk(model, n_layers: int, rows_chunk: int) -> int:
    # bound the [n_layers, rows, vocab] logit block to ~2**27 floats (512 MiB) for big vocabularies
    return max(1, min(rows_chunk, 2**27 // (n_layers * vocab_size(model))))


def _bf16_matmuls(device: torch.device) -> bool:
    """Whether bfloat16 matmuls are native (fast) here: CUDA with bf16 support, or a CPU oneDNN can use."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def unembedding_for_loss(model, precision: Precision = "auto") -> Tensor:
    """``W_U`` in the dtype of the loss's matmuls (the model's own tensor when it already has that dtype)."""
    W_U = unembed_weights(model)[0]
    if precision == "auto":
        precision = "bfloat16" if _bf16_matmuls(W_U.device) else "float32"
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    return W_U if W_U.dtype == dtype else W_U.detach().to(dtype)


def _mm(a: Tensor, W: Tensor) -> Tensor:
    """``a @ W`` computed in ``W``'s dtype, the result in ``a``'s."""
    return a @ W if W.dtype == a.dtype else (a.to(W.dtype) @ W).to(a.dtype)


class _LensKL(torch.autograd.Function):
    """KL(p || softmax(h W_U + b_U)) per layer and row, with a lean hand-written backward.

    KL = sum_v p log p + logsumexp(z) - p . z, and p . z = h . (W_U p) + p . b_U, so the only
    [layers, rows, vocab] tensor is z itself, turned in place into exp(z - max) and kept for the
    backward: dKL/dh = softmax(z) W_U^T - W_U p. Two matmuls with W_U (in ``W``'s dtype) and three
    passes over z, against about ten for autograd through log_softmax (measured by bench/tuned.py)."""

    @staticmethod
    def forward(ctx, h, W, b_U, p, neg_entropy):  # h [n, rows, d], W [d, vocab], p [rows, vocab], neg_entropy [rows]
        n, rows, d = h.shape
        z = _mm(h.reshape(n * rows, d), W).add_(b_U).view(n, rows, -1)
        m = z.amax(-1, keepdim=True)
        e = z.sub_(m).exp_()  # z is not needed again: p . z comes from t below
        s = e.sum(-1)
        t = _mm(p, W.T)  # [rows, d]: W_U p for every row
        kl = neg_entropy + m[..., 0] + s.log() - (h * t).sum(-1) - p @ b_U.to(p.dtype)
        ctx.save_for_backward(e, s, t, W)
        return kl

    @staticmethod
    def backward(ctx, g):  # g [n, rows]
        e, s, t, W = ctx.saved_tensors
        n, rows, vocab = e.shape
        soft_w = _mm(e.view(n * rows, vocab), W.T).view(n, rows, -1) / s[..., None]  # softmax(z) W_U^T
        return (soft_w - t) * g[..., None], None, None, None, None


def _chunk_kl(model, lens: "FittedLens | None", x: Tensor, final_lp: Tensor, W_mm: Tensor | None = None) -> Tensor:
    """KL(final || lens) of every layer and row of one chunk: ``x`` is [n_layers, rows, d]; ``W_mm`` is
    ``W_U`` in the dtype of the matmuls (default: as the model holds it)."""
    if lens is not None:
        x = lens.translate_all(x)
    norm = final_norm(model)
    h = norm(x) if norm is not None else x
    W_U, b = unembed_weights(model)
    W = W_U if W_mm is None else W_mm
    b_U = b.float() if b is not None else torch.zeros(W.shape[1], device=W.device)
    p = final_lp.exp()
    neg_entropy = (p * final_lp).sum(-1)  # [rows]
    cap = output_softcap(model)
    if cap <= 0:
        return _LensKL.apply(h.float().contiguous(), W, b_U, p, neg_entropy)
    # soft-capped logits (Gemma-2): plain autograd through the cap
    z = cap * torch.tanh(_mm(h.float(), W).add_(b_U) / cap)
    return neg_entropy[None] + torch.logsumexp(z, -1) - (z * p[None]).sum(-1)


def _kl_per_layer(model, lens: "FittedLens | None", resid: Tensor, final_lp: Tensor, rows_chunk: int,
                  *, backward: bool = False, W_mm: Tensor | None = None) -> Tensor:
    """Mean KL per layer over the rows of ``resid`` ([rows, n_layers, d]). With ``backward``, the gradient
    of the sum over layers of these means is accumulated chunk by chunk (memory bounded by the chunk),
    and the detached means are returned."""
    rows, n = resid.shape[0], resid.shape[1]
    total = torch.zeros(n, device=resid.device)
    step = _rows_chunk(model, n, rows_chunk)
    for start in range(0, rows, step):
        x = resid[start:start + step].transpose(0, 1)  # [n, rows_chunk, d]
        kl = _chunk_kl(model, lens, x, final_lp[start:start + step], W_mm).sum(-1) / rows  # [n]
        if backward:
            kl.sum().backward()  # every translator gets its own layer's gradient (a sum, not a mean)
            kl = kl.detach()
        total = total + kl
    return total
