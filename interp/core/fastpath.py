"""Host activations on the fastest exact path: fused attention, and the forward stopped at the last hook.

TransformerLens's attention materialises the score and pattern tensors ``[batch, heads, q, k]`` (so
that ``hook_attn_scores`` / ``hook_pattern`` can see them) and ``run_with_cache(stop_at_layer=L+1)``
still runs the MLP of the last layer. Producing training activations needs neither: this module runs
the same HookedTransformer, through its own modules and hook points, but

- swaps each attention layer's score/softmax/weighted-sum for one ``scaled_dot_product_attention``
  call (causal, the layer's own ``attn_scale``, grouped K/V repeated as TransformerLens does), which
  never builds the pattern (memory bounded at any host batch) and is several times faster on CPU;
- stops the forward the moment the last requested hook has fired (a Lorsa of layer L needs
  ``blocks.L.hook_attn_out``: nothing after layer L's attention runs).

Every other module (embeddings, norms, Q/K/V projections with their QK norms, rotary, MLPs) is the
host's own, and every hook point outside the attention pattern fires as usual, so the activations
equal ``run_with_cache``'s up to float rounding (tests/test_fastpath.py checks hook by hook). A layer
whose attention the fused call cannot reproduce (soft-capping, ALiBi, local windows, attention sinks,
QKV clipping, OLMo's full-width QK norm, per-head results, a KV cache or padding mask, a request for
``hook_attn_scores`` / ``hook_pattern``, or a hook the caller already put on them) runs TransformerLens's
own attention; :func:`fused_reason` says why. The TransformerBridge counterpart is
:mod:`interp.core.bridge_fastpath`.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from jaxtyping import Int
from torch import Tensor

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["host_activations", "fused_reason", "fused_attention"]

_PATTERN_HOOKS = ("attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_result")
_OLMO_QK = ("OlmoeForCausalLM", "Olmo2ForCausalLM", "Olmo3ForCausalLM")


def fused_reason(model: "HookedTransformer", layer: int) -> str | None:
    """``None`` when layer ``layer``'s attention can run as one fused SDPA call, else why it cannot."""
    cfg = model.cfg
    attn = model.blocks[layer].attn
    checks = [
        (cfg.positional_embedding_type in ("alibi", "relative_positional_bias"), f"{cfg.positional_embedding_type} positions"),
        ((getattr(attn, "_attention_dir_override", None) or cfg.attention_dir) != "causal", "non-causal attention"),
        (getattr(attn, "attn_type", "global") != "global", "local (windowed) attention"),
        (getattr(cfg, "attn_scores_soft_cap", -1.0) not in (None, -1.0, 0.0), "attention soft-capping"),
        (bool(getattr(cfg, "use_logn_attn", False)), "log-n attention scaling"),
        (bool(getattr(cfg, "use_attention_sinks", False)), "attention sinks"),
        (getattr(cfg, "clip_qkv", None) is not None, "QKV clipping"),
        (cfg.original_architecture in _OLMO_QK, "OLMo full-width QK norm"),
        (bool(cfg.use_attn_result), "use_attn_result (per-head results)"),
        (bool(getattr(cfg, "load_in_4bit", False)), "4-bit weights"),
        (type(attn).forward is not _abstract_forward(), f"{type(attn).__name__} has its own forward"),
    ]
    for bad, why in checks:
        if bad:
            return why
    return None


def _abstract_forward():
    from transformer_lens.components.abstract_attention import AbstractAttention

    return AbstractAttention.forward


def _fused_forward(self, query_input, key_input, value_input, past_kv_cache_entry=None, additive_attention_mask=None,
                   attention_mask=None, position_bias=None):
    """TransformerLens's attention forward with the scores/softmax/z replaced by one SDPA call."""
    if past_kv_cache_entry is not None or additive_attention_mask is not None or attention_mask is not None \
            or position_bias is not None:
        return type(self).forward(self, query_input, key_input, value_input, past_kv_cache_entry,
                                  additive_attention_mask, attention_mask, position_bias)
    q, k, v = self.calculate_qkv_matrices(query_input, key_input, value_input)  # [batch, pos, heads, d_head]
    if self.cfg.positional_embedding_type == "rotary":
        q = self.hook_rot_q(self.apply_rotary(q, 0, None))
        k = self.hook_rot_k(self.apply_rotary(k, 0, None))
    repeat = getattr(self, "repeat_kv_heads", 1)
    if repeat > 1 and not self.cfg.ungroup_grouped_query_attention:
        k = torch.repeat_interleave(k, dim=2, repeats=repeat)
        v = torch.repeat_interleave(v, dim=2, repeats=repeat)
    v = v.to(q.dtype)
    z = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True,
                                       scale=1.0 / float(self.attn_scale)).transpose(1, 2)
    z = self.hook_z(z)  # [batch, pos, heads, d_head], as TransformerLens's calculate_z_scores returns it
    w = self.W_O.reshape(-1, self.W_O.shape[-1]).T  # [d_model, heads * d_head]
    z = z.reshape(z.shape[0], z.shape[1], -1).to(w.dtype)
    return F.linear(z, w.to(z.device), self.b_O.to(z.device))


def _caller_hooked_layers(model: "HookedTransformer") -> set[int]:
    """Layers whose score / pattern / result hook already carries a caller's hook (an ablation, a patch): the
    fused call has no pattern for it to see or change, so they keep TransformerLens's attention."""
    return {_layer_of(name) for name, hp in model.hook_dict.items()
            if name.endswith(_PATTERN_HOOKS) and (hp.fwd_hooks or hp._forward_hooks)}


@contextmanager
def fused_attention(model: "HookedTransformer", layers: Sequence[int] | None = None) -> Iterator[list[int]]:
    """Run the attention of ``layers`` (default: all that qualify, and whose score / pattern hooks the
    caller has not hooked: an ablation or a patch there keeps TransformerLens's attention) as fused SDPA
    inside the block; yields the layers actually fused. The host is restored on exit, also after an error.

    Example:
        >>> with fused_attention(model):                                        # doctest: +SKIP
        ...     logits, cache = model.run_with_cache(tokens, names_filter=names)
    """
    if layers is None:
        hooked = _caller_hooked_layers(model)
        layers = [i for i in range(model.cfg.n_layers) if i not in hooked]
    fused = [i for i in layers if fused_reason(model, i) is None]
    for i in fused:
        attn = model.blocks[i].attn
        attn.forward = types.MethodType(_fused_forward, attn)
    try:
        yield fused
    finally:
        for i in fused:
            model.blocks[i].attn.__dict__.pop("forward", None)


class _Done(Exception):
    """Raised by the last capture hook: every requested activation is in hand, the rest of the forward is skipped."""


def _layer_of(hook: str) -> int | None:
    parts = hook.split(".")
    return int(parts[1]) if len(parts) > 2 and parts[0] == "blocks" and parts[1].isdigit() else None


@torch.no_grad()
def host_activations(
    model: "HookedTransformer",
    tokens: Int[Tensor, "batch ctx"],
    hooks: Sequence[str],
    *,
    fused: bool = True,
    batch_size: int = 64,
) -> dict[str, Tensor]:
    """Activations ``{hook: [batch, ctx, ...]}`` of ``model`` on ``tokens`` (token ids; never re-tokenised),
    in host batches of ``batch_size`` sequences, the forward stopped at the last requested hook.

    ``fused=True`` runs attention as one SDPA call (see the module docstring); ``fused=False`` is
    TransformerLens's own attention, stopped early the same way.

    Example:
        >>> acts = host_activations(model, tokens, ["blocks.2.ln1.hook_normalized", "blocks.2.hook_attn_out"])  # doctest: +SKIP
    """
    from transformer_lens import HookedTransformer

    if not isinstance(model, HookedTransformer):
        raise TypeError(f"host_activations runs a HookedTransformer's own modules; got {type(model).__name__}. "
                        "For a TransformerBridge use interp.core.bridge_fastpath.bridge_activations "
                        "(ActivationStream picks the right one by itself).")
    hooks = list(dict.fromkeys([hooks] if isinstance(hooks, str) else hooks))
    unknown = [h for h in hooks if h not in model.hook_dict]
    if unknown:
        raise KeyError(f"Unknown hook(s) {unknown}; valid names are in model.hook_dict (e.g. {sorted(model.hook_dict)[:3]}).")
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be [batch, ctx] token ids, got shape {tuple(tokens.shape)}.")
    # Attention layers whose pattern is asked for, or already hooked by the caller (an ablation, a patch),
    # keep TransformerLens's attention: the fused call has no pattern for a hook to see or change.
    keep = {_layer_of(h) for h in hooks if h.endswith(_PATTERN_HOOKS)} | _caller_hooked_layers(model)
    top = max((_layer_of(h) for h in hooks if _layer_of(h) is not None), default=0)
    layers = [i for i in range(top + 1) if i not in keep] if fused else []
    return_type = "logits" if any(h.startswith("unembed.") for h in hooks) else None  # else the unembedding is skipped
    dev = model.cfg.device
    outs: dict[str, list[Tensor]] = {h: [] for h in hooks}
    with fused_attention(model, layers):
        for start in range(0, tokens.shape[0], batch_size):
            part = tokens[start : start + batch_size].to(dev)
            got: dict[str, Tensor] = {}

            def capture(act: Tensor, hook) -> Tensor:
                got[hook.name] = act.detach()
                if len(got) == len(hooks):
                    raise _Done
                return act

            try:
                with model.hooks(fwd_hooks=[(h, capture) for h in hooks]):
                    model(part, return_type=return_type, stop_at_layer=top + 1 if top + 1 < model.cfg.n_layers else None)
            except _Done:
                pass
            missing = [h for h in hooks if h not in got]
            if missing:
                raise RuntimeError(f"The forward never reached hook(s) {missing}: this model's configuration does not run "
                                   "them (e.g. hook_result needs use_attn_result, hook_attn_in use_attn_in).")
            for h in hooks:
                outs[h].append(got[h])
    return {h: torch.cat(v) if len(v) > 1 else v[0] for h, v in outs.items()}
