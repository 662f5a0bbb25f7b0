"""Initialising a Lorsa from the host attention layer (the authors' recommended init).

QK heads copy the host query/key weights *and biases* (the public code forgot the biases), with
the host's input norm weight folded in, since ``ln1.hook_normalized`` is read before it is
applied. Each OV head's w_V lies in its parent head's value subspace and its w_O goes through the
parent's OV circuit, so E[w_V w_O^T] is the parent's W_V W_O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float
from torch import Tensor

from interp.lorsa.config import check_supported
from interp.lorsa.model import Lorsa

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["HostAttention", "host_attention", "init_from_host"]


@dataclass
class HostAttention:
    """Host attention weights acting on ``hook_normalized`` (norm weight/bias folded in);
    key/value heads expanded to one per query head for GQA hosts."""

    W_Q: Float[Tensor, "n_heads d_model d_head"]
    b_Q: Float[Tensor, "n_heads d_head"]
    W_K: Float[Tensor, "n_heads d_model d_head"]
    b_K: Float[Tensor, "n_heads d_head"]
    W_V: Float[Tensor, "n_heads d_model d_head"]
    b_V: Float[Tensor, "n_heads d_head"]
    W_O: Float[Tensor, "n_heads d_head d_model"]
    q_norm_w: Tensor | None = None
    k_norm_w: Tensor | None = None


@torch.no_grad()
def host_attention(model: "HookedTransformer", layer: int) -> HostAttention:
    """Read attention layer ``layer`` of ``model`` as weights acting on its ``hook_normalized`` input."""
    check_supported(model)
    block = model.blocks[layer]
    attn = block.attn
    w = getattr(block.ln1, "w", None) if hasattr(block, "ln1") else None
    b = getattr(block.ln1, "b", None) if hasattr(block, "ln1") else None

    def fold(W: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
        W2 = W.float().clone()
        b2 = bias.float().clone()
        if b is not None:
            b2 = b2 + torch.einsum("d,hde->he", b.float(), W.float())
        if w is not None:
            W2 = W2 * w.float()[None, :, None]
        return W2, b2

    W_Q, b_Q = fold(attn.W_Q, attn.b_Q)
    W_K, b_K = fold(attn.W_K, attn.b_K)  # GQA: TransformerLens's W_K/b_K are already expanded
    W_V, b_V = fold(attn.W_V, attn.b_V)
    q_norm = getattr(attn, "q_norm", None) if model.cfg.use_qk_norm else None
    k_norm = getattr(attn, "k_norm", None) if model.cfg.use_qk_norm else None
    return HostAttention(
        W_Q, b_Q, W_K, b_K, W_V, b_V, attn.W_O.float().clone(),
        q_norm.w.float().clone() if q_norm is not None else None,
        k_norm.w.float().clone() if k_norm is not None else None,
    )


@torch.no_grad()
def init_from_host(
    lorsa: Lorsa,
    model: "HookedTransformer",
    layer: int | None = None,
    *,
    in_scale: float = 1.0,
    out_scale: float = 1.0,
    init_ov: bool = True,
    seed: int = 0,
) -> Lorsa:
    """Copy the host's QK circuit into ``lorsa`` and put each OV head in its parent head's OV circuit.

    ``lorsa`` acts on ``in_scale * x`` and predicts ``out_scale * y`` (the training normalisation),
    so the copied weights are rescaled to keep the attention pattern identical. QK head h copies
    host head ``h % n_heads``; OV head i's parent is its QK head's host head.

    Example:
        >>> cfg = LorsaConfig.from_model(model, 2, expansion=8, top_k=16)  # doctest: +SKIP
        >>> lorsa = init_from_host(Lorsa(cfg), model, 2)                   # doctest: +SKIP
    """
    cfg = lorsa.cfg
    layer = cfg.layer if layer is None else layer
    if layer is None:
        raise ValueError("init_from_host needs the host layer: pass layer= or build the config with from_model.")
    host = host_attention(model, layer)
    n_heads, d_model, d_head = host.W_Q.shape
    if d_model != cfg.d_model:
        raise ValueError(f"Lorsa d_model={cfg.d_model} does not match the model's d_model={d_model}.")
    dev = lorsa.W_Q.device
    qk_src = torch.arange(cfg.n_qk_heads) % n_heads
    if cfg.d_qk_head == d_head:
        lorsa.W_Q.copy_(host.W_Q[qk_src] / in_scale)
        lorsa.W_K.copy_(host.W_K[qk_src] / in_scale)
        lorsa.b_Q.copy_(host.b_Q[qk_src])
        lorsa.b_K.copy_(host.b_K[qk_src])
        if cfg.qk_norm and host.q_norm_w is not None:
            lorsa.q_norm_w.copy_(host.q_norm_w)
            lorsa.k_norm_w.copy_(host.k_norm_w)
    if not init_ov:
        return lorsa
    gen = torch.Generator().manual_seed(seed)
    host_dev = host.W_V.device
    parent = qk_src.repeat_interleave(cfg.group_size).to(host_dev)  # [n_ov]
    # r ~ N(0, I / d_head): E[r r^T] = I / d_head, so sum over a group's heads approximates W_V W_O.
    # Drawn on the CPU (the same init on every device), then moved to the host weights' device.
    r = (torch.randn(cfg.n_ov_heads, d_head, generator=gen) / d_head**0.5).to(host_dev)
    w_v = torch.einsum("ide,ie->id", host.W_V[parent], r) / in_scale
    b_v = torch.einsum("ie,ie->i", host.b_V[parent], r)
    w_o = torch.einsum("ie,ied->id", r, host.W_O[parent]) * out_scale
    # Unit-norm value directions keep every head's activation on one scale; the decoder carries the size.
    v_norm = w_v.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    lorsa.W_V.copy_((w_v / v_norm).to(dev))
    lorsa.b_V.copy_((b_v / v_norm.squeeze(-1)).to(dev))
    lorsa.W_O.copy_((w_o * v_norm).to(dev))
    return lorsa
