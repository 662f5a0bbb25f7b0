"""Bridge activations on the fastest exact path: Hugging Face's own SDPA attention, the forward stopped at the last hook.

TransformerLens's ``TransformerBridge`` re-implements each attention eagerly so that
``hook_attn_scores`` / ``hook_pattern`` can see the ``[batch, heads, q, k]`` tensors (scores, a
causal / window mask rebuilt in TransformerLens, a float32 softmax, a NaN scrub of the pattern):
on stories260K that is ~95% of ``run_with_cache``'s time, and ``run_with_cache(stop_at_layer=L+1)``
still runs layer L's MLP. Training activations need neither. :func:`bridge_activations` runs the
same bridge, through its own embeddings, norms (with their ``hook_normalized``), LinearBridges and
Hugging Face decoder layers, but

- for each attention bridge at layers up to the last requested one whose internals nobody asks for
  or hooks, fires ``attn.hook_in``, calls the wrapped Hugging Face attention module itself
  (``original_component``) with ``_attn_implementation="sdpa"`` for that call (so rotary, partial
  rotary, GQA, QK norm, biases, ``query_pre_attn_scalar`` and sliding windows are Hugging Face's own,
  with the mask the decoder built), and fires ``attn.hook_out`` on its output;
- stops the forward the moment the last requested hook fired (a Lorsa of layer L needs
  ``blocks.L.hook_attn_out``: nothing after layer L's attention runs).

The activations equal the bridge's ``run_with_cache`` up to float rounding
(tests/test_bridge_fastpath.py checks hook by hook on the nine family twins, and against
transformers' own forward). A layer the fused call could not reproduce (attention soft-capping,
attention sinks, per-head results / split inputs, gated queries, a non-empty KV cache, an attention
bridge class not verified here, a request for or a caller's hook on any hook inside the attention
such as ``hook_pattern``, ``hook_q`` of a joint-QKV bridge, ``hook_rot_q``) keeps the bridge's eager
attention; :func:`bridge_fused_reason` says why for the model-level cases.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Int
from torch import Tensor

from interp.core.fastpath import _Done, _layer_of
from interp.core.frontend import input_device

if TYPE_CHECKING:
    from transformer_lens.model_bridge import TransformerBridge

__all__ = ["bridge_activations", "bridge_fused_reason", "bridge_fused_attention"]

_VERIFIED = ("PositionEmbeddingsAttentionBridge", "JointQKVAttentionBridge", "JointQKVPositionEmbeddingsAttentionBridge")
"""Attention bridge classes whose output the fused call was checked to reproduce (the nine family twins)."""


def _attn(model: "TransformerBridge", layer: int) -> Any:
    return model.blocks[layer].attn


def bridge_fused_reason(model: "TransformerBridge", layer: int) -> str | None:
    """``None`` when layer ``layer``'s attention bridge can run as Hugging Face's SDPA attention, else why not.

    Example:
        >>> bridge_fused_reason(gemma2_bridge, 0)  # doctest: +SKIP
        'attention soft-capping'
    """
    attn = _attn(model, layer)
    hf = attn._modules.get("_original_component")
    if hf is None:
        return "no Hugging Face attention module"
    hf_cfg = getattr(hf, "config", None)
    cfg = model.cfg
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    checks = [
        (getattr(hf, "attn_logit_softcapping", None) is not None
         or getattr(hf_cfg, "attn_logit_softcapping", None) is not None, "attention soft-capping"),
        (type(attn).__name__ not in _VERIFIED, f"{type(attn).__name__} is not a verified attention bridge"),
        (hf_cfg is None or not hasattr(hf_cfg, "_attn_implementation"), "Hugging Face attention without a config"),
        ("sdpa" not in ALL_ATTENTION_FUNCTIONS, "transformers has no SDPA attention"),
        (getattr(model.original_model, "_supports_sdpa", True) is False, "the Hugging Face model does not support SDPA"),
        (getattr(hf, "sinks", None) is not None, "attention sinks"),
        (getattr(hf, "key_multiplier", None) is not None, "scaled keys (key_multiplier)"),
        (getattr(hf, "is_causal", True) is not True, "non-causal attention"),
        (bool(getattr(cfg, "use_attn_result", False)), "use_attn_result (per-head results)"),
        (bool(getattr(cfg, "use_split_qkv_input", False)) or bool(getattr(cfg, "use_attn_in", False)),
         "split Q/K/V inputs"),
        (bool(getattr(cfg, "gated_q_proj", False)), "gated queries"),
        (attn.training and float(getattr(hf, "attention_dropout", 0.0) or 0.0) > 0, "attention dropout in training mode"),
    ]
    for bad, why in checks:
        if bad:
            return why
    return None


def _cache_empty(cache: Any) -> bool:
    if cache is None:
        return True
    try:
        return int(cache.get_seq_length()) == 0
    except Exception:
        return False


def _no_empty_rows(mask: Tensor | None) -> bool:
    """True when no query row of a [batch, 1, q, k] mask is masked out entirely (SDPA gives NaN there, the bridge
    zeros): a causal row always sees its own position, so the diagonal being open suffices (O(batch * q))."""
    if mask is None:
        return True
    if not isinstance(mask, Tensor) or mask.ndim != 4 or mask.shape[-1] != mask.shape[-2]:
        return False
    diag = mask.diagonal(dim1=-2, dim2=-1)
    return bool(diag.all()) if mask.dtype == torch.bool else bool((diag == 0).all())


def _fused_forward(self, *args: Any, **kwargs: Any) -> Any:
    """The attention bridge's forward with its eager re-implementation replaced by HF's module under SDPA."""
    cache = kwargs.get("past_key_values", kwargs.get("layer_past"))
    mask = kwargs.get("attention_mask")
    if len(args) > 1 or not _cache_empty(cache) or (args and "hidden_states" in kwargs) or not _no_empty_rows(mask):
        return type(self).forward(self, *args, **kwargs)
    kwargs = dict(kwargs)
    hidden = kwargs.pop("hidden_states") if "hidden_states" in kwargs else args[0]
    for key in ("past_key_values", "layer_past"):
        if key in kwargs:
            kwargs[key] = None
    kwargs.pop("use_cache", None)
    hf = self._modules["_original_component"]
    hidden = self.hook_in(hidden)
    cfg = hf.config
    before = cfg._attn_implementation
    cfg._attn_implementation = "sdpa"
    try:
        out = hf(hidden, **kwargs)
    finally:
        cfg._attn_implementation = before
    attn_out = out[0] if isinstance(out, tuple) else out
    attn_out = self.hook_out(attn_out)
    return (attn_out, None) if isinstance(out, tuple) else attn_out


@contextmanager
def bridge_fused_attention(model: "TransformerBridge", layers: Sequence[int] | None = None) -> Iterator[list[int]]:
    """Run the attention bridges of ``layers`` (default: all that qualify and whose internal hook points carry
    no caller's hook) as Hugging Face's SDPA attention; yields the layers actually fused. The bridge is
    restored on exit, also after an error.

    Example:
        >>> with bridge_fused_attention(model, [0, 1]) as fused:  # doctest: +SKIP
        ...     model(tokens)
    """
    if layers is None:
        hooked = _internal_hook_layers(model, [], model.cfg.n_layers - 1)
        layers = [i for i in range(model.cfg.n_layers) if i not in hooked]
    fused = [i for i in layers if bridge_fused_reason(model, i) is None]
    try:
        for i in fused:
            # The bridge's __setattr__ forwards unknown names to the HF module: set on the bridge itself.
            object.__setattr__(_attn(model, i), "forward", types.MethodType(_fused_forward, _attn(model, i)))
        yield fused
    finally:
        for i in fused:
            _attn(model, i).__dict__.pop("forward", None)


def _internal_hook_layers(model: "TransformerBridge", hooks: Sequence[str], top: int) -> set[int]:
    """Layers whose attention has a hook point (other than its hook_in / hook_out) that is requested in ``hooks``
    or already carries a caller's hook: the fused call never fires those, so the layer stays eager."""
    hook_dict = model.hook_dict
    wanted = {id(hook_dict[h]) for h in hooks}
    keep: set[int] = set()
    for i in range(top + 1):
        attn = _attn(model, i)
        ends = {id(attn.hook_in), id(attn.hook_out)}
        for _, mod in attn.named_modules():
            if mod.__class__.__name__ != "HookPoint" or id(mod) in ends:
                continue
            if id(mod) in wanted or mod._forward_hooks or mod._forward_pre_hooks or getattr(mod, "fwd_hooks", None):
                keep.add(i)
                break
    return keep


@torch.no_grad()
def bridge_activations(
    model: "TransformerBridge",
    tokens: Int[Tensor, "batch ctx"],
    hooks: Sequence[str],
    *,
    fused: bool = True,
    batch_size: int = 64,
) -> dict[str, Tensor]:
    """Activations ``{hook: [batch, ctx, ...]}`` of a ``TransformerBridge`` on ``tokens`` (token ids; never
    re-tokenised), in host batches of ``batch_size`` sequences, the forward stopped at the last requested hook.

    ``fused=True`` runs qualifying attention layers as Hugging Face's SDPA attention (module docstring);
    ``fused=False`` keeps the bridge's eager attention, stopped early the same way.

    Example:
        >>> acts = bridge_activations(model, tokens, ["blocks.2.ln1.hook_normalized", "blocks.2.hook_attn_out"])  # doctest: +SKIP
        >>> acts["blocks.2.hook_attn_out"].shape  # doctest: +SKIP
        torch.Size([64, 256, 64])
    """
    hooks = list(dict.fromkeys([hooks] if isinstance(hooks, str) else hooks))
    hook_dict = model.hook_dict
    unknown = [h for h in hooks if h not in hook_dict]
    if unknown:
        raise KeyError(f"Unknown hook(s) {unknown}; valid names are in model.hook_dict (e.g. {sorted(hook_dict)[:3]}).")
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be [batch, ctx] token ids, got shape {tuple(tokens.shape)}.")
    layered = [_layer_of(h) for h in hooks if _layer_of(h) is not None]
    top = max(layered, default=model.cfg.n_layers - 1)
    if any(_layer_of(h) is None and not h.startswith(("hook_embed", "embed.", "hook_pos_embed", "pos_embed."))
           for h in hooks):
        top = model.cfg.n_layers - 1  # final norm / unembedding: every layer runs
    keep = _internal_hook_layers(model, hooks, top) if fused else set()
    layers = [i for i in range(top + 1) if i not in keep] if fused else []
    dev = input_device(model)  # the embedding's device (the first of a split model)
    outs: dict[str, list[Tensor]] = {h: [] for h in hooks}
    with bridge_fused_attention(model, layers):
        for start in range(0, tokens.shape[0], batch_size):
            part = tokens[start : start + batch_size].to(dev)
            got: dict[str, Tensor] = {}

            # Hook points can be reached under several names (aliases): capture under the requested name.
            def capture_as(name: str):
                def fn(act: Tensor, hook: Any) -> Tensor:
                    got[name] = act.detach()
                    if len(got) == len(hooks):
                        raise _Done
                    return act
                return fn

            try:
                with model.hooks(fwd_hooks=[(h, capture_as(h)) for h in hooks]):
                    model(part)
            except _Done:
                pass
            missing = [h for h in hooks if h not in got]
            if missing:
                raise RuntimeError(f"The forward never reached hook(s) {missing}: this bridge's configuration does not "
                                   "run them (e.g. hook_result needs use_attn_result).")
            for h in hooks:
                outs[h].append(got[h])
    # A hook without a batch dimension of its own (the rotary tables, [1, ctx, d]) is the same in every host batch.
    shared = {h for h, v in outs.items() if v[0].ndim == 0 or v[0].shape[0] != min(batch_size, tokens.shape[0])}
    return {h: v[0] if h in shared or len(v) == 1 else torch.cat(v) for h, v in outs.items()}
