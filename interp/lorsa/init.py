"""Initialising a Lorsa from the host attention layer (the authors' recommended init).

QK heads copy the host query/key weights *and biases* (the public code forgot the biases), with
the host's input norm weight folded in (Gemma's 1 + w), since ``ln1.hook_normalized`` is read before it
is applied; GQA key heads are repeated per query head. The host is read through
:mod:`interp.core.frontend`, so a TransformerBridge and a HookedTransformer give the same Lorsa. Each OV head's w_V lies in its parent head's value subspace and its w_O goes through the
parent's OV circuit, so E[w_V w_O^T] is the parent's W_V W_O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float
from torch import Tensor

from interp.core import frontend as fe
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
    """Read attention layer ``layer`` of ``model`` (a TransformerBridge or a HookedTransformer, through
    :mod:`interp.core.frontend`) as float32 weights acting on its ``hook_normalized`` input."""
    check_supported(model, layer)
    w = fe.attention_weights(model, layer)
    norm = fe.input_norm(model, layer)
    n_heads, n_kv = w.W_Q.shape[0], w.W_K.shape[0]
    kv_of = torch.arange(n_heads, device=w.W_K.device) // (n_heads // n_kv)  # GQA: query head -> its key/value head

    def fold(W: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
        W2, b2 = W.clone(), bias.clone()
        if norm.bias is not None:
            b2 = b2 + torch.einsum("d,hde->he", norm.bias.to(W.device), W)
        if norm.weight is not None:
            W2 = W2 * norm.weight.to(W.device)[None, :, None]
        return W2, b2

    W_Q, b_Q = fold(w.W_Q, w.b_Q)
    W_K, b_K = fold(w.W_K[kv_of], w.b_K[kv_of])
    W_V, b_V = fold(w.W_V[kv_of], w.b_V[kv_of])
    qk = fe.qk_norm(model, layer)
    return HostAttention(
        W_Q, b_Q, W_K, b_K, W_V, b_V, w.W_O.clone(),
        qk.q_weight.clone() if qk is not None else None,
        qk.k_weight.clone() if qk is not None else None,
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
    dev = lorsa.W_Q.device  # every tensor below lives here, whatever device the host layer is on
    qk_src = torch.arange(cfg.n_qk_heads, device=dev) % n_heads
    if cfg.d_qk_head == d_head:
        lorsa.W_Q.copy_(host.W_Q.to(dev)[qk_src] / in_scale)
        lorsa.W_K.copy_(host.W_K.to(dev)[qk_src] / in_scale)
        lorsa.b_Q.copy_(host.b_Q.to(dev)[qk_src])
        lorsa.b_K.copy_(host.b_K.to(dev)[qk_src])
        if cfg.qk_norm and host.q_norm_w is not None:
            lorsa.q_norm_w.copy_(host.q_norm_w)
            lorsa.k_norm_w.copy_(host.k_norm_w)
    if not init_ov:
        return lorsa
    parent = qk_src.repeat_interleave(cfg.group_size)  # [n_ov]
    # r ~ N(0, I / d_head): E[r r^T] = I / d_head, so sum over a group's heads approximates W_V W_O. Drawn
    # from a CPU generator so a seed gives the same Lorsa on every device, then moved to the Lorsa's.
    gen = torch.Generator().manual_seed(seed)
    r = (torch.randn(cfg.n_ov_heads, d_head, generator=gen) / d_head**0.5).to(dev)
    W_V, b_V, W_O = host.W_V.to(dev)[parent], host.b_V.to(dev)[parent], host.W_O.to(dev)[parent]
    w_v = torch.einsum("ide,ie->id", W_V, r) / in_scale
    b_v = torch.einsum("ie,ie->i", b_V, r)
    w_o = torch.einsum("ie,ied->id", r, W_O) * out_scale
    # Unit-norm value directions keep every head's activation on one scale; the decoder carries the size.
    v_norm = w_v.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    lorsa.W_V.copy_(w_v / v_norm)
    lorsa.b_V.copy_(b_v / v_norm.squeeze(-1))
    lorsa.W_O.copy_(w_o * v_norm)
    return lorsa
