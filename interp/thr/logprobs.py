"""Log-probabilities of chosen tokens, entropies and log-sum-exps through a model's output head, in
vocabulary chunks, with gradients: no ``[rows, vocab]`` tensor (nor a float32 copy of the unembedding) is
ever held.

GRPO needs ``log softmax(W h / T)[y]`` at every response token, with gradients, and the entropy of the
same distribution. The direct way materialises ``[n, P+R, V]`` logits and two float32 copies of them
(about 23 GB each for Qwen2.5's 151,936-token vocabulary at 16 x 8 responses of 300 tokens). Here the
head runs on ``chunk`` vocabulary rows at a time while a running max, sum of exponentials and sum of
``exp * logit`` are kept (the online log-sum-exp of flash attention), and a custom backward recomputes
each chunk: memory is ``rows_per_block x chunk`` floats plus the gradient of ``W`` itself.

>>> from interp.thr.logprobs import output_head, token_logprobs
>>> head = output_head(model)                                     # doctest: +SKIP
>>> logp, entropy, lse = token_logprobs(head, hidden, tokens)     # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from interp.core.frontend import frontend

__all__ = ["OutputHead", "output_head", "token_logprobs", "DEFAULT_VOCAB_CHUNK", "DEFAULT_BLOCK_FLOATS"]

DEFAULT_VOCAB_CHUNK = 8192
"""Vocabulary rows of the head applied at once."""

DEFAULT_BLOCK_FLOATS = 2**24
"""Logits held at once (64 MiB of float32): rows per block = this / chunk."""


@dataclass(frozen=True)
class OutputHead:
    """The model's unembedding as tensors: ``logits = softcap(h @ weight.T + bias)``.

    ``weight`` is ``[V, d]`` and is the model's own parameter (or a transposed view of it: TransformerLens
    keeps ``W_U`` as ``[d, V]``), so gradients reach the model and nothing is copied.
    """

    weight: Float[Tensor, "V d"]
    bias: Float[Tensor, " V"] | None = None
    softcap: float = 0.0

    @property
    def vocab_size(self) -> int:
        return int(self.weight.shape[0])

    def logits(self, h: Float[Tensor, "rows d"], start: int = 0, stop: int | None = None) -> Float[Tensor, "rows C"]:
        """float32 logits of vocabulary rows ``start:stop``, computed in the head's dtype like the model does."""
        stop = self.vocab_size if stop is None else stop
        w = self.weight[start:stop]
        b = None if self.bias is None else self.bias[start:stop]
        z = F.linear(h.to(w.dtype), w, b).to(_acc(w.dtype))
        return self.softcap * torch.tanh(z / self.softcap) if self.softcap > 0 else z

    def columns(self, h: Float[Tensor, "*rows d"], ids: Int[Tensor, " C"]) -> Float[Tensor, "*rows C"]:
        """float32 logits of the vocabulary entries ``ids`` only."""
        w = self.weight.index_select(0, ids)
        z = h.to(w.dtype) @ w.T
        if self.bias is not None:
            z = z + self.bias.index_select(0, ids)
        z = z.to(_acc(w.dtype))
        return self.softcap * torch.tanh(z / self.softcap) if self.softcap > 0 else z


def output_head(model: Any) -> OutputHead:
    """The output head of a HookedTransformer, a TransformerBridge or a Hugging Face causal LM, with its
    final-logit soft-cap (Gemma-2/3). The final norm is not part of it: it acts on the head's input."""
    kind = frontend(model)
    if kind == "hooked":
        cap = float(getattr(model.cfg, "output_logits_soft_cap", 0.0) or 0.0)
        return OutputHead(model.unembed.W_U.T, getattr(model.unembed, "b_U", None), max(cap, 0.0))
    hf = model.original_model if kind == "bridge" else model
    lm_head = hf.get_output_embeddings()
    if lm_head is None or not isinstance(getattr(lm_head, "weight", None), Tensor):
        raise ValueError(f"{type(hf).__name__} has no output embedding with a weight (get_output_embeddings()); "
                         "log-probabilities through the head need one.")
    cap = float(getattr(hf.config, "final_logit_softcapping", None) or 0.0)
    for attr in ("logit_scale", "logits_scaling"):  # Cohere / Granite rescale logits after the head
        if getattr(hf.config, attr, None) not in (None, 1, 1.0):
            raise ValueError(f"{type(hf).__name__} rescales its logits ({attr}={getattr(hf.config, attr)}), which "
                             "interp's chunked head does not mirror; use a model without logit scaling.")
    return OutputHead(lm_head.weight, getattr(lm_head, "bias", None), cap)


def _acc(dtype: torch.dtype) -> torch.dtype:
    # float32 accumulation for every model dtype, float64 for float64 models (gradcheck, exact references)
    return torch.float64 if dtype == torch.float64 else torch.float32


def _blocks(n: int, chunk: int, block_floats: int) -> list[tuple[int, int]]:
    step = max(1, int(block_floats) // max(chunk, 1))
    return [(r0, min(r0 + step, n)) for r0 in range(0, n, step)]


class _TokenLogprob(torch.autograd.Function):
    """logp[i] = log softmax(softcap(W h_i + b) / T)[y_i]; entropy and log-sum-exp ride along without
    gradients. Backward recomputes each chunk: d logp / d z = (onehot(y) - p) / T times the soft-cap's
    derivative 1 - (z / cap)^2."""

    @staticmethod
    def forward(ctx, h, weight, bias, tokens, inv_t: float, softcap: float, chunk: int, block_floats: int):
        head = OutputHead(weight, bias, softcap)
        n, V = h.shape[0], weight.shape[0]
        acc = dict(dtype=_acc(weight.dtype), device=h.device)
        logp = torch.empty(n, **acc)
        ent = torch.empty_like(logp)
        lse = torch.empty_like(logp)
        for r0, r1 in _blocks(n, chunk, block_floats):
            hr, yr = h[r0:r1], tokens[r0:r1]
            m = torch.full((r1 - r0,), -torch.inf, **acc)
            s0 = torch.zeros(r1 - r0, **acc)   # sum exp(s - m)
            s1 = torch.zeros(r1 - r0, **acc)   # sum exp(s - m) * s
            zy = torch.zeros(r1 - r0, **acc)
            for c0 in range(0, V, chunk):
                c1 = min(c0 + chunk, V)
                s = head.logits(hr, c0, c1) * inv_t
                here = (yr >= c0) & (yr < c1)
                picked = s.gather(1, (yr - c0).clamp(0, c1 - c0 - 1)[:, None])[:, 0]
                zy = torch.where(here, picked, zy)
                new_m = torch.maximum(m, s.amax(1))
                safe_m = torch.where(torch.isfinite(new_m), new_m, torch.zeros_like(new_m))
                scale = torch.exp(m - safe_m)
                e = torch.exp(s - safe_m[:, None])
                s0 = s0 * scale + e.sum(1)
                s1 = s1 * scale + (e * torch.where(torch.isfinite(s), s, torch.zeros_like(s))).sum(1)
                m = new_m
            safe_m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
            lse_r = safe_m + torch.log(s0)
            lse[r0:r1] = lse_r
            logp[r0:r1] = zy - lse_r
            ent[r0:r1] = lse_r - s1 / s0
        ctx.save_for_backward(h, weight, bias, tokens, lse)
        ctx.settings = (inv_t, softcap, chunk, block_floats)
        ctx.mark_non_differentiable(ent, lse)
        return logp, ent, lse

    @staticmethod
    def backward(ctx, g_logp, g_ent, g_lse):
        h, weight, bias, tokens, lse = ctx.saved_tensors
        inv_t, softcap, chunk, block_floats = ctx.settings
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        head = OutputHead(weight, bias, softcap)
        n, V = h.shape[0], weight.shape[0]
        acc = _acc(weight.dtype)
        g = g_logp.to(acc)
        grad_h = torch.zeros(h.shape, dtype=acc, device=h.device) if need_h else None
        grad_w = torch.zeros_like(weight) if need_w else None     # the parameter's own dtype: no float32 W copy
        grad_b = torch.zeros_like(bias) if (need_b and bias is not None) else None
        blocks = _blocks(n, chunk, block_floats)
        # the two matmuls run in the head's dtype, as autograd through the model's own head would (bf16 on a
        # bf16 model: no float32 copy of any part of W), and accumulate in float32
        mm = weight.dtype
        for c0 in range(0, V, chunk):
            c1 = min(c0 + chunk, V)
            w = weight[c0:c1]                                          # a view, [C, d]
            # one row block: the chunk's gradient in one matmul; several: summed in float32 first
            acc_w = torch.zeros(w.shape, dtype=acc, device=w.device) if (need_w and len(blocks) > 1) else None
            for r0, r1 in blocks:
                hr, yr = h[r0:r1], tokens[r0:r1]
                z = head.logits(hr, c0, c1)
                # gu = (onehot(y) - p) * g / T, built in place: -p, then +1 where the target falls in the chunk
                gu = torch.exp(z * inv_t - lse[r0:r1, None]).neg_()
                rows = ((yr >= c0) & (yr < c1)).nonzero()[:, 0]
                gu[rows, yr[rows] - c0] += 1
                gu.mul_(g[r0:r1, None] * inv_t)
                if softcap > 0:
                    gu.mul_(1 - (z / softcap) ** 2)
                del z
                gm = gu.to(mm)
                if need_h:
                    grad_h[r0:r1] += (gm @ w).to(acc)
                if need_w:
                    if acc_w is None:  # straight into the gradient's rows: no [C, d] temporary
                        grad_w[c0:c1].addmm_(gm.T, hr.to(mm))
                    else:
                        acc_w.addmm_(gm.T.to(acc), hr.to(acc))
                if grad_b is not None:
                    grad_b[c0:c1] += gu.sum(0).to(grad_b.dtype)
            if acc_w is not None:
                grad_w[c0:c1] = acc_w.to(grad_w.dtype)
        return (grad_h.to(h.dtype) if need_h else None, grad_w, grad_b, None, None, None, None, None)


def token_logprobs(
    head: OutputHead,
    hidden: Float[Tensor, "rows d"],
    tokens: Int[Tensor, " rows"],
    *,
    temperature: float = 1.0,
    chunk_size: int = DEFAULT_VOCAB_CHUNK,
    block_floats: int = DEFAULT_BLOCK_FLOATS,
) -> tuple[Float[Tensor, " rows"], Float[Tensor, " rows"], Float[Tensor, " rows"]]:
    """``log softmax(logits / temperature)[tokens]`` (differentiable in ``hidden`` and the head's weights),
    the entropy of that distribution and its log-sum-exp (both without gradients), all float32, for each
    row of ``hidden`` (the head's input: after the final norm).

    Equal to ``torch.log_softmax(head.logits(hidden) * (1 / temperature), -1).gather(...)`` up to float
    rounding, with memory ``rows_per_block x chunk_size`` floats instead of ``rows x V``.

    >>> head = OutputHead(torch.randn(50, 8))
    >>> h, y = torch.randn(3, 8), torch.tensor([0, 7, 49])
    >>> logp, ent, lse = token_logprobs(head, h, y, chunk_size=16)    # 4 chunks of the vocabulary
    >>> direct = torch.log_softmax(head.logits(h), -1).gather(1, y[:, None])[:, 0]
    >>> torch.allclose(logp, direct, atol=1e-5)
    True
    """
    if hidden.ndim != 2 or tokens.ndim != 1 or tokens.shape[0] != hidden.shape[0]:
        raise ValueError(f"hidden must be [rows, d] and tokens [rows]; got {tuple(hidden.shape)} and {tuple(tokens.shape)}.")
    if hidden.shape[-1] != head.weight.shape[-1]:
        raise ValueError(f"hidden has width {hidden.shape[-1]} but the head reads vectors of width {head.weight.shape[-1]}.")
    if not (temperature > 0):
        raise ValueError(f"temperature must be > 0; got {temperature}.")
    if chunk_size <= 0 or block_floats <= 0:
        raise ValueError(f"chunk_size and block_floats must be positive; got {chunk_size} and {block_floats}.")
    tokens = tokens.to(device=hidden.device, dtype=torch.long)
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= head.vocab_size):
        raise ValueError(f"token ids must lie in [0, {head.vocab_size}).")
    return _TokenLogprob.apply(hidden, head.weight, head.bias, tokens, 1.0 / float(temperature), float(head.softcap),
                               int(chunk_size), int(block_floats))
