"""Initialising a Lorsa from the host attention layer (the authors' recommended init).

QK heads copy the host query/key weights *and biases* (the public code forgot the biases), with
the host's input norm weight folded in (Gemma's 1 + w), since ``ln1.hook_normalized`` is read before it
is applied; GQA key heads are repeated per query head. The host is read through
:mod:`interp.core.frontend`, so a TransformerBridge and a HookedTransformer give the same Lorsa. Each OV head's w_V lies in its parent head's value subspace and its w_O goes through the
parent's OV circuit, so E[w_V w_O^T] is the parent's W_V W_O.

:func:`init_ov_active_subspace` is the authors' alternative OV init (reconstructed from their code,
``llamascopium`` ``LowRankSparseAttention.init_W_V_with_active_subspace_per_head``, not from the paper):
w_V isotropic in the principal subspace of the parent's value-read projection of the data, w_O the
parent's OV circuit applied to it, both unit norm. :func:`geometric_median` (Weiszfeld) is used
for the decoder bias when asked.
"""

from __future__ import annotations

from collections.abc import Callable
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

__all__ = ["HostAttention", "host_attention", "init_from_host", "init_ov_active_subspace", "geometric_median"]


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


def _host_of(lorsa: Lorsa, model: "HookedTransformer", layer: int | None, who: str) -> HostAttention:
    """The host attention of ``layer`` (default: the Lorsa config's), checked against the Lorsa's width."""
    layer = lorsa.cfg.layer if layer is None else layer
    if layer is None:
        raise ValueError(f"{who} needs the host layer: pass layer= or build the config with from_model.")
    host = host_attention(model, layer)
    d_model = host.W_Q.shape[1]
    if d_model != lorsa.cfg.d_model:
        raise ValueError(f"Lorsa d_model={lorsa.cfg.d_model} does not match the model's d_model={d_model}.")
    return host


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
    host = _host_of(lorsa, model, layer, "init_from_host")
    n_heads, _, d_head = host.W_Q.shape
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


@torch.no_grad()
def init_ov_active_subspace(
    lorsa: Lorsa,
    model: "HookedTransformer",
    x: Float[Tensor, "batch pos d_model"],
    mask: Tensor | None = None,
    layer: int | None = None,
    *,
    seed: int = 0,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> Lorsa:
    """The authors' "active-subspace" OV init, on a batch ``x`` of the (normalised) Lorsa input.

    For host head h, project the tokens onto the head's value-read subspace, p = W_V^h W_V^h^T x,
    and take the top-d_head principal directions U_h of p (demeaned, over the kept tokens; one
    batched ``eigh`` of the d_model x d_model covariances, no loop over heads). OV head i with parent
    h gets w_V = U_h c_i (c_i ~ N(0, I)), w_O = w_V^T W_V^h W_O^h (the host head's output for
    input direction w_V), both scaled to unit norm, b_V = 0. So every w_V lies in the column space
    of W_V^h and every w_O in the row space of W_O^h; decoder norms are all equal, so the top-K
    selection (z * ||w_O||) starts unbiased. Reconstructed from their code
    (``init_W_V_with_active_subspace_per_head``: they take the first d_qk_head columns of a random
    normal W_V against the SVD basis; this is the same distribution). QK weights are left as they are.
    ``reduce`` sums a tensor over processes, so data-parallel ranks build the same heads.

    Example:
        >>> init_from_host(lorsa, model, 2)                                # doctest: +SKIP
        >>> init_ov_active_subspace(lorsa, model, x, mask, 2)              # doctest: +SKIP
    """
    cfg = lorsa.cfg
    host = _host_of(lorsa, model, layer, "init_ov_active_subspace")
    n_heads, d_model, d_head = host.W_V.shape
    dev = lorsa.W_V.device
    W_V, W_O = host.W_V.to(dev).float(), host.W_O.to(dev).float()
    pts = x.reshape(-1, d_model).to(dev).double()
    if mask is not None:
        pts = pts[mask.reshape(-1).to(dev)]
    red = reduce if reduce is not None else (lambda t: t)
    n = red(pts.new_tensor([pts.shape[0]]))
    mean = red(pts.sum(0)) / n.clamp_min(1)
    cov = (red(pts.T @ pts) / n.clamp_min(1) - torch.outer(mean, mean)).float()  # [d, d], over every rank's tokens
    proj = W_V @ W_V.transpose(1, 2)  # [h, d, d]: x -> W_V W_V^T x
    c_h = proj @ cov @ proj.transpose(1, 2)  # covariance of the projected tokens, per head
    _, vecs = torch.linalg.eigh(c_h)  # ascending eigenvalues
    U = vecs[..., -d_head:]  # [h, d, d_head]: the head's active subspace
    parent = (torch.arange(cfg.n_qk_heads, device=dev) % n_heads).repeat_interleave(cfg.group_size)
    gen = torch.Generator().manual_seed(seed)
    c = torch.randn(cfg.n_ov_heads, d_head, generator=gen).to(dev)
    w_v = torch.einsum("ide,ie->id", U[parent], c)
    w_o = torch.einsum("id,ide,ief->if", w_v, W_V[parent], W_O[parent])
    lorsa.W_V.copy_(w_v / w_v.norm(dim=-1, keepdim=True).clamp_min(1e-8))
    lorsa.W_O.copy_(w_o / w_o.norm(dim=-1, keepdim=True).clamp_min(1e-8))
    lorsa.b_V.zero_()
    return lorsa


@torch.no_grad()
def geometric_median(
    points: Float[Tensor, "n d"],
    weights: Float[Tensor, " n"] | None = None,
    *,
    n_iter: int = 100,
    tol: float = 1e-6,
    eps: float = 1e-8,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> Float[Tensor, " d"]:
    """The point minimising the (weighted) sum of Euclidean distances to ``points``: Weiszfeld's
    iterations y <- sum_i w_i x_i / d_i / sum_i w_i / d_i (d_i = ||x_i - y||, floored at ``eps``),
    vectorised, on the points' device, from the weighted mean, until the step is below ``tol``
    times the points' spread. ``reduce`` sums a tensor over processes (data parallel: each rank
    holds its own points), so every rank gets the same median.

    Example:
        >>> pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0]])
        >>> geometric_median(pts)  # the mean is (2.75, 2.75)
        tensor([0.5000, 0.5000])
    """
    red = reduce if reduce is not None else (lambda t: t)
    pts = points.double()
    w = torch.ones(pts.shape[0], dtype=pts.dtype, device=pts.device) if weights is None else weights.to(pts)
    sums = red(torch.cat([(w[:, None] * pts).sum(0), w.sum()[None]]))
    y = sums[:-1] / sums[-1].clamp_min(1e-300)
    spread = red(torch.stack([(w * (pts - y).norm(dim=-1)).sum(), w.sum()]))
    scale = float(spread[0] / spread[1].clamp_min(1e-300)) or 1.0
    for _ in range(n_iter):
        inv = w / (pts - y).norm(dim=-1).clamp_min(eps * scale)
        sums = red(torch.cat([(inv[:, None] * pts).sum(0), inv.sum()[None]]))
        y_new = sums[:-1] / sums[-1]
        step = float((y_new - y).norm())
        y = y_new
        if step <= tol * scale:
            break
    return y.to(points.dtype)
