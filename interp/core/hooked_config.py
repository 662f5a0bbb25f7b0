"""A ``HookedTransformerConfig`` from a Hugging Face config, for the families interp tests.

TransformerLens's ``convert_hf_model_config`` picks the family from the model's *name* before it reads
the config, so a local folder whose path contains "llama" or "gemma" gets a hard-coded (or no) config:
Llama-3.x folders fail (``'NoneType' object has no attribute 'hidden_size'``), Gemma-2/3 folders are
"not supported", and GPT-2 reads ``n_ctx``, which transformers 5 configs no longer have. Here the fields
come from the config alone; the weights are then converted by TransformerLens's own per-family
converters. Families not listed fall back to TransformerLens's converter.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SUPPORTED", "hooked_config_dict", "rope_parameters"]

SUPPORTED = frozenset({
    "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Gemma2ForCausalLM",
    "Gemma3ForCausalLM", "GPT2LMHeadModel", "GPTNeoXForCausalLM", "Phi3ForCausalLM",
})
"""Architectures whose HookedTransformer config is built here (the nine families of the matrix test)."""


def rope_parameters(config: Any, layer_type: str | None = None) -> dict[str, Any]:
    """The RoPE settings (``rope_type``, ``rope_theta``, scaling fields) of a config, old or new layout."""
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if layer_type is not None and isinstance(params.get(layer_type), dict):
        params = params[layer_type]
    out = dict(params)
    out.setdefault("rope_theta", getattr(config, "rope_theta", None) or 10000.0)
    out["rope_type"] = out.get("rope_type") or out.get("type") or "default"
    return out


def _unsupported_rope(arch: str, params: dict[str, Any], where: str = "") -> None:
    kind = params["rope_type"]
    if kind not in ("default", "linear", "llama3"):
        raise NotImplementedError(
            f"{arch}{where}: RoPE type {kind!r} is not built for the HookedTransformer front-end here; load the "
            "model with frontend='bridge' (the default), which runs the Hugging Face RoPE itself."
        )


def _rope_fields(arch: str, config: Any, d_head: int) -> dict[str, Any]:
    params = rope_parameters(config)
    _unsupported_rope(arch, params)
    partial = params.get("partial_rotary_factor", getattr(config, "partial_rotary_factor", None)) or 1.0
    fields: dict[str, Any] = dict(positional_embedding_type="rotary", rotary_adjacent_pairs=False,
                                  rotary_dim=round(float(partial) * d_head), rotary_base=float(params["rope_theta"]))
    if params["rope_type"] == "linear":
        fields["rotary_scaling_factor"] = float(params["factor"])
    if params["rope_type"] == "llama3":
        fields.update(
            use_NTK_by_parts_rope=True,
            NTK_original_ctx_len=int(params.get("original_max_position_embeddings", config.max_position_embeddings)),
            NTK_by_parts_low_freq_factor=float(params.get("low_freq_factor", 1.0)),
            NTK_by_parts_high_freq_factor=float(params.get("high_freq_factor", 4.0)),
            NTK_by_parts_factor=float(params.get("factor", 1.0)),
        )
    return fields


def _windows(config: Any, n_layers: int, *, all_layers: bool) -> dict[str, Any]:
    window = getattr(config, "sliding_window", None)
    types = getattr(config, "layer_types", None)
    if not window:
        return {}
    if types is not None:
        kinds = ["local" if t == "sliding_attention" else "global" for t in types]
    elif all_layers:  # Mistral / Phi-3: the window applies to every layer
        kinds = ["local"] * n_layers
    else:
        return {}
    if "local" not in kinds:
        return {}
    return dict(window_size=int(window), use_local_attn=True, attn_types=kinds)


def hooked_config_dict(config: Any) -> dict[str, Any]:
    """Fields of a ``HookedTransformerConfig`` for ``config`` (one of :data:`SUPPORTED`)."""
    arch = (getattr(config, "architectures", None) or [type(config).__name__])[0]
    if arch not in SUPPORTED:
        raise KeyError(arch)
    if arch == "GPT2LMHeadModel":
        d = config.n_embd
        return dict(
            d_model=d, d_head=d // config.n_head, n_heads=config.n_head, d_mlp=config.n_inner or 4 * d,
            n_layers=config.n_layer, n_ctx=config.n_positions, eps=config.layer_norm_epsilon,
            d_vocab=config.vocab_size, act_fn=config.activation_function,
            use_attn_scale=bool(getattr(config, "scale_attn_weights", True)),
            scale_attn_by_inverse_layer_idx=bool(config.scale_attn_by_inverse_layer_idx),
            normalization_type="LN", positional_embedding_type="standard", original_architecture=arch,
        )
    n_heads = config.num_attention_heads
    d_head = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_heads
    cfg: dict[str, Any] = dict(
        d_model=config.hidden_size, d_head=d_head, n_heads=n_heads, d_mlp=config.intermediate_size,
        n_layers=config.num_hidden_layers, n_ctx=config.max_position_embeddings, d_vocab=config.vocab_size,
        n_key_value_heads=n_kv if n_kv != n_heads else None, original_architecture=arch,
    )
    if arch == "GPTNeoXForCausalLM":
        cfg.update(eps=config.layer_norm_eps, act_fn=config.hidden_act, normalization_type="LN",
                   parallel_attn_mlp=bool(getattr(config, "use_parallel_residual", True)), default_prepend_bos=False,
                   **_rope_fields(arch, config, d_head))
        return cfg
    cfg.update(eps=config.rms_norm_eps, normalization_type="RMS", final_rms=True, gated_mlp=True)
    if arch in ("Gemma2ForCausalLM", "Gemma3ForCausalLM"):
        cfg.update(act_fn=getattr(config, "hidden_activation", None) or config.hidden_act,
                   use_normalization_before_and_after=True,
                   attn_scale=float(config.query_pre_attn_scalar) ** 0.5,
                   **_windows(config, config.num_hidden_layers, all_layers=False))
        cap_attn, cap_out = getattr(config, "attn_logit_softcapping", None), getattr(config, "final_logit_softcapping", None)
        if cap_attn:
            cfg["attn_scores_soft_cap"] = float(cap_attn)
        if cap_out:
            cfg["output_logits_soft_cap"] = float(cap_out)
        if arch == "Gemma2ForCausalLM":
            cfg.update(_rope_fields(arch, config, d_head))
            return cfg
        # Gemma-3: per layer type RoPE (local layers: their own base, never scaled), QK norm
        full, local = rope_parameters(config, "full_attention"), rope_parameters(config, "sliding_attention")
        _unsupported_rope(arch, full, " (global layers)")
        if local["rope_type"] != "default":
            raise NotImplementedError(f"{arch}: scaled RoPE on its sliding layers is not built for the "
                                      "HookedTransformer front-end; use frontend='bridge'.")
        cfg.update(positional_embedding_type="rotary", rotary_adjacent_pairs=False, rotary_dim=d_head,
                   rotary_base=float(full["rope_theta"]), rotary_base_local=float(local["rope_theta"]), use_qk_norm=True)
        if full["rope_type"] == "linear":
            cfg["rotary_scaling_factor"] = float(full["factor"])
        return cfg
    cfg.update(act_fn=config.hidden_act, **_rope_fields(arch, config, d_head))
    if arch in ("Qwen2ForCausalLM", "Qwen3ForCausalLM"):
        cfg.update(default_prepend_bos=False, **_windows(config, config.num_hidden_layers, all_layers=False))
        if arch == "Qwen3ForCausalLM":
            cfg["use_qk_norm"] = True
    if arch in ("MistralForCausalLM", "Phi3ForCausalLM"):
        cfg.update(_windows(config, config.num_hidden_layers, all_layers=True))
    return cfg
