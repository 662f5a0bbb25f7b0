"""Which front-end a model is, and every fact a method reads off it, in one place.

interp takes the user's model as it comes: a TransformerLens ``TransformerBridge`` (the maintained
front-end, wrapping a Hugging Face model; what :func:`interp.load_model` returns), a TransformerLens
``HookedTransformer``, or, where a method needs no hooks (THR's policy), a plain Hugging Face
``*ForCausalLM``. Methods ask this module instead of reaching into ``model.cfg`` or ``model.config``,
because the two front-ends keep their facts in different places: a HookedTransformer computes its
attention from ``model.cfg`` (so that is the truth for it), while a bridge runs the Hugging Face
modules, whose own attributes (``scaling``, ``sliding_window``, the rotary module's ``inv_freq``) are
the truth; the bridge's ``cfg`` leaves several of them at defaults (``attn_scale=-1``, ``rotary_base``).

One accessor per fact, each answering for both front-ends: sizes (:func:`n_layers`, :func:`d_model`,
:func:`n_heads`, :func:`n_kv_heads`, :func:`d_head`, :func:`vocab_size`, :func:`n_ctx`), the output
path (:func:`final_norm`, :func:`unembed_weights`, :func:`output_softcap`, :func:`final_hook`), and
per attention layer (:func:`attn_scale`, :func:`attn_softcap`, :func:`sliding_window`, :func:`rope`,
:func:`qk_norm`, :func:`input_norm`, :func:`attention_weights`, :func:`attention_unsupported`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = [
    "Frontend", "frontend", "is_hooked", "is_bridge", "is_hf", "hf_model", "hf_config", "architecture",
    "input_device", "output_device", "layer_device", "devices", "model_dtype", "n_ctx", "vocab_size", "n_layers", "d_model", "n_heads",
    "n_kv_heads", "d_head", "normalization", "final_norm", "final_hook", "unembed_weights", "output_softcap",
    "positional_embedding", "attn_scale", "attn_softcap", "sliding_window", "Rope", "rope", "QKNorm", "qk_norm",
    "InputNorm", "input_norm", "AttentionWeights", "attention_weights", "attention_unsupported",
]

Frontend = Literal["hooked", "bridge", "hf"]


def _tl_class(name: str) -> type | None:
    # Only look the class up when TransformerLens is already imported: a model cannot be one of its
    # classes otherwise, and importing it costs seconds.
    if "transformer_lens" not in sys.modules:
        return None
    if name == "HookedTransformer":
        from transformer_lens import HookedTransformer

        return HookedTransformer
    from transformer_lens.model_bridge import TransformerBridge

    return TransformerBridge


def frontend(model: Any) -> Frontend:
    """``"hooked"`` (HookedTransformer), ``"bridge"`` (TransformerBridge) or ``"hf"`` (a Hugging Face
    causal LM); a clear error for anything else."""
    hooked, bridge = _tl_class("HookedTransformer"), _tl_class("TransformerBridge")
    if hooked is not None and isinstance(model, hooked):
        return "hooked"
    if bridge is not None and isinstance(model, bridge):
        return "bridge"
    if hasattr(model, "get_output_embeddings") and hasattr(model, "config"):
        return "hf"
    raise TypeError(
        f"interp works with a TransformerLens HookedTransformer or TransformerBridge (or, for THR, a Hugging Face "
        f"*ForCausalLM); got {type(model).__name__}. Load one with interp.load_model(...)."
    )


def is_hooked(model: Any) -> bool:
    return frontend(model) == "hooked"


def is_bridge(model: Any) -> bool:
    return frontend(model) == "bridge"


def is_hf(model: Any) -> bool:
    return frontend(model) == "hf"


def hf_model(model: Any) -> Any:
    """The Hugging Face model a bridge wraps (or the model itself); an error for a HookedTransformer."""
    kind = frontend(model)
    if kind == "hooked":
        raise TypeError("A HookedTransformer holds no Hugging Face model; this needs a bridge or an HF model.")
    return model.original_model if kind == "bridge" else model


def hf_config(model: Any) -> Any:
    """The Hugging Face (text) config of a bridge or HF model."""
    config = hf_model(model).config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def architecture(model: Any) -> str:
    """The Hugging Face architecture name (``"Gemma2ForCausalLM"``...), for messages and per-family rules."""
    if frontend(model) == "hooked":
        return str(model.cfg.original_architecture or model.cfg.model_name)
    archs = getattr(hf_model(model).config, "architectures", None)
    return str(archs[0]) if archs else type(hf_model(model)).__name__


# ----------------------------------------------------------------------------------- devices and sizes
def input_device(model: Any) -> torch.device:
    """Where input ids must live: the device of the token embedding (the first one of a split model)."""
    if frontend(model) == "hooked":
        return model.embed.W_E.device
    return hf_model(model).get_input_embeddings().weight.device


def devices(model: Any) -> list[torch.device]:
    """Every device holding a parameter, in order of first appearance (several for a split model)."""
    seen: dict[str, torch.device] = {}
    for p in model.parameters():
        seen.setdefault(str(p.device), p.device)
    return list(seen.values())


def output_device(model: Any) -> torch.device:
    """Where the head lives (the last device of a split model): residuals go there before the final norm."""
    return unembed_weights(model)[0].device


def layer_device(model: Any, layer: int) -> torch.device:
    """Where block ``layer`` runs (its activations live there; a Lorsa for it is trained there)."""
    return next(model.blocks[layer].parameters()).device


def model_dtype(model: Any) -> torch.dtype:
    """The dtype of the token embedding (the compute dtype of a bf16 / fp16 model)."""
    if frontend(model) == "hooked":
        return model.embed.W_E.dtype
    return hf_model(model).get_input_embeddings().weight.dtype


def n_ctx(model: Any) -> int | None:
    """The context length the model was built for (None when it declares none)."""
    cfg = getattr(model, "cfg", None)
    if cfg is not None and getattr(cfg, "n_ctx", None):
        return int(cfg.n_ctx)
    config = getattr(model, "config", None)
    for attr in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, attr, None) if config is not None else None
        if value:
            return int(value)
    return None


def vocab_size(model: Any) -> int:
    """Width of the model's logits."""
    if frontend(model) != "hf":
        return int(unembed_weights(model)[0].shape[1])
    return int(model.get_output_embeddings().weight.shape[0])


def _cfg_or_hf(model: Any, tl_name: str, *hf_names: str) -> int:
    if frontend(model) != "hf":
        return int(getattr(model.cfg, tl_name))
    config = hf_config(model)
    for name in hf_names:
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    raise AttributeError(f"{type(config).__name__} has none of {hf_names}.")


def n_layers(model: Any) -> int:
    return _cfg_or_hf(model, "n_layers", "num_hidden_layers", "n_layer")


def d_model(model: Any) -> int:
    return _cfg_or_hf(model, "d_model", "hidden_size", "n_embd")


def n_heads(model: Any) -> int:
    """Query heads per attention layer."""
    return _cfg_or_hf(model, "n_heads", "num_attention_heads", "n_head")


def n_kv_heads(model: Any) -> int:
    """Key/value heads per attention layer (fewer than :func:`n_heads` under GQA)."""
    if frontend(model) != "hf":
        return int(getattr(model.cfg, "n_key_value_heads", None) or model.cfg.n_heads)
    config = hf_config(model)
    return int(getattr(config, "num_key_value_heads", None) or n_heads(model))


def d_head(model: Any) -> int:
    if frontend(model) != "hf":
        return int(model.cfg.d_head)
    config = hf_config(model)
    return int(getattr(config, "head_dim", None) or d_model(model) // n_heads(model))


# ----------------------------------------------------------------------------------- the output path
def normalization(model: Any) -> Literal["LN", "RMS"] | None:
    """The kind of norm in the blocks and before the head (``None``: no norm)."""
    kind = getattr(model.cfg, "normalization_type", None) if frontend(model) != "hf" else "RMS"
    if kind in ("LN", "LNPre"):
        return "LN"
    if kind in ("RMS", "RMSPre"):
        return "RMS"
    return None


def final_norm(model: Any) -> Any | None:
    """The module applied to the last residual before the unembedding (None when the model has none).
    Calling it on any ``[..., d_model]`` tensor is exact: it is a per-position op."""
    if frontend(model) == "hf":
        raise TypeError("final_norm needs a TransformerLens front-end (bridge or HookedTransformer).")
    if normalization(model) is None:
        return None
    return getattr(model, "ln_final", None)


def final_hook(model: Any) -> str:
    """Hook holding the last block's output (the final norm's input)."""
    return f"blocks.{n_layers(model) - 1}.hook_resid_post"


def unembed_weights(model: Any) -> tuple[Float[Tensor, "d_model vocab"], Float[Tensor, " vocab"] | None]:
    """``(W_U, b_U)`` of the head, read in place (``W_U`` may be a transposed view: never a copy);
    ``b_U`` is None when the head has no bias."""
    kind = frontend(model)
    if kind == "hooked":
        return model.unembed.W_U, model.unembed.b_U
    head = hf_model(model).get_output_embeddings()
    head = getattr(head, "original_component", head)  # the bridge wraps lm_head
    return head.weight.T, getattr(head, "bias", None)


def output_softcap(model: Any) -> float:
    """Gemma-2 style final logit soft-cap ``c`` (logits = c tanh(z / c)); 0.0 when there is none."""
    if frontend(model) == "hooked":
        value = getattr(model.cfg, "output_logits_soft_cap", 0.0)
    else:
        value = getattr(hf_config(model), "final_logit_softcapping", None)
    return float(value) if value and value > 0 else 0.0


# ----------------------------------------------------------------------------------- attention facts
def _check_layer(model: Any, layer: int) -> None:
    n = n_layers(model)
    if not isinstance(layer, int) or not 0 <= layer < n:
        raise ValueError(f"layer={layer!r} is out of range: this model has {n} layers, so use 0..{n - 1}.")


def _hf_attn(model: Any, layer: int) -> Any:
    attn = model.blocks[layer].attn
    return getattr(attn, "original_component", attn)


def positional_embedding(model: Any) -> str:
    """``"rotary"``, ``"standard"`` (learned absolute positions added to the residual, GPT-2), or
    TransformerLens's name for another scheme (``"alibi"``, ``"shortformer"``...)."""
    if frontend(model) == "hooked":
        return str(model.cfg.positional_embedding_type)
    if _rotary_module(model) is not None:
        return "rotary"
    return str(getattr(model.cfg, "positional_embedding_type", "standard"))


def attn_scale(model: Any, layer: int) -> float:
    """What attention scores are divided by (sqrt(d_head), sqrt(query_pre_attn_scalar) on Gemma, times
    layer + 1 on GPT-2 variants that scale by the inverse layer index)."""
    _check_layer(model, layer)
    if frontend(model) == "hooked":
        return float(model.blocks[layer].attn.attn_scale)
    hf = _hf_attn(model, layer)
    scaling = getattr(hf, "scaling", None)
    if scaling is None:
        raise NotImplementedError(
            f"{architecture(model)}: the attention module {type(hf).__name__} does not expose its score scale "
            "(`scaling`), so interp cannot read it."
        )
    scale = 1.0 / float(scaling)
    if getattr(hf, "scale_attn_by_inverse_layer_idx", False):
        scale *= layer + 1
    return scale


def attn_softcap(model: Any, layer: int) -> float:
    """Gemma-2's attention-score soft-cap ``c`` (scores = c tanh(s / c)); 0.0 when there is none."""
    _check_layer(model, layer)
    if frontend(model) == "hooked":
        value = getattr(model.cfg, "attn_scores_soft_cap", 0.0)
    else:
        hf = _hf_attn(model, layer)
        value = getattr(hf, "attn_logit_softcapping", None)
        if value is None:
            value = getattr(hf_config(model), "attn_logit_softcapping", None)
    return float(value) if value and value > 0 else 0.0


def sliding_window(model: Any, layer: int) -> int | None:
    """The layer's sliding window ``w`` (query t sees keys s with t - s < w), None for global attention."""
    _check_layer(model, layer)
    if frontend(model) == "hooked":
        attn = model.blocks[layer].attn
        return int(model.cfg.window_size) if getattr(attn, "attn_type", "global") == "local" else None
    hf = _hf_attn(model, layer)
    if hasattr(hf, "sliding_window"):  # Gemma-2/3, Qwen2/3: set per layer type
        value = hf.sliding_window
    else:  # Mistral, Phi-3: the config's window applies to every layer (or to its sliding layer types)
        config = hf_config(model)
        value = getattr(config, "sliding_window", None)
        types = getattr(config, "layer_types", None)
        if value is not None and types is not None and types[layer] != "sliding_attention":
            value = None
    return int(value) if value else None


# Hugging Face families whose RoPE rotates the two halves of each head (Llama's rotate_half) or
# adjacent pairs (GPT-J's rotate_every_two); the HF modules do not say which, so it is listed here.
_ROTATE_HALF = frozenset({
    "LlamaForCausalLM", "MistralForCausalLM", "MixtralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
    "Qwen2MoeForCausalLM", "Qwen3MoeForCausalLM", "GemmaForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM",
    "Gemma3ForConditionalGeneration", "GPTNeoXForCausalLM", "PhiForCausalLM", "Phi3ForCausalLM",
    "OlmoForCausalLM", "StableLmForCausalLM", "GraniteForCausalLM", "Starcoder2ForCausalLM",
})
_ADJACENT_PAIRS = frozenset({"GPTJForCausalLM", "CodeGenForCausalLM", "CohereForCausalLM"})
_STATIC_ROPE = frozenset({"default", "linear", "llama3", "yarn"})


@dataclass(frozen=True)
class Rope:
    """One layer's rotary embedding: angle(pos, i) = pos * inv_freq[i] on the first ``dim`` features of
    each head, cos/sin multiplied by ``attention_scaling`` (YaRN's mscale; 1 otherwise)."""

    inv_freq: Float[Tensor, " half"]
    adjacent_pairs: bool
    attention_scaling: float
    rope_type: str

    @property
    def dim(self) -> int:
        return 2 * int(self.inv_freq.shape[0])


def _rotary_module(model: Any) -> Any | None:
    for module in hf_model(model).modules():
        inner = getattr(module, "original_component", module)
        if type(inner).__name__.endswith("RotaryEmbedding"):
            return inner
    return None


def rope(model: Any, layer: int) -> Rope | None:
    """The layer's RoPE (None without one), read where the front-end computes it: TransformerLens's own
    sin/cos formula (float64) for a HookedTransformer, the Hugging Face rotary module's ``inv_freq`` for a
    bridge. Raises ``NotImplementedError`` for RoPE whose frequencies change with the sequence length
    (``dynamic``, ``longrope``) or whose layout is unknown."""
    _check_layer(model, layer)
    if frontend(model) == "hooked":
        c = model.cfg
        if c.positional_embedding_type != "rotary":
            return None
        attn = model.blocks[layer].attn
        rd = int(c.rotary_dim or c.d_head)
        sin, cos = attn.calculate_sin_cos_rotary(rd, 2, base=attn._rotary_base(), dtype=torch.float64)
        angle = torch.atan2(sin[1], cos[1])  # angle at position 1 = inv_freq (all below pi)
        amp = float(torch.sqrt(sin[1, 0] ** 2 + cos[1, 0] ** 2))
        half = angle[::2] if c.rotary_adjacent_pairs else angle[: rd // 2]
        kind = "llama3" if c.use_NTK_by_parts_rope else "yarn" if getattr(c, "use_yarn_rope", False) else "default"
        return Rope(half.clone(), bool(c.rotary_adjacent_pairs), amp, kind)
    rot = _rotary_module(model)
    if rot is None:
        return None
    arch = architecture(model)
    types = getattr(hf_config(model), "layer_types", None)
    layer_type = types[layer] if types is not None else None
    inv = getattr(rot, f"{layer_type}_inv_freq", None) if layer_type else None
    scaling = getattr(rot, f"{layer_type}_attention_scaling", None) if layer_type else None
    kind = rot.rope_type.get(layer_type, "default") if isinstance(rot.rope_type, dict) else rot.rope_type
    if inv is None:
        inv, scaling = rot.inv_freq, getattr(rot, "attention_scaling", 1.0)
    if kind not in _STATIC_ROPE:
        raise NotImplementedError(
            f"{arch} layer {layer} uses RoPE type {kind!r}, whose frequencies change with the sequence length; "
            f"interp mirrors only static RoPE ({', '.join(sorted(_STATIC_ROPE))}). Use a checkpoint without "
            "that rope scaling (e.g. Phi-3-mini-4k instead of -128k)."
        )
    if arch in _ROTATE_HALF:
        adjacent = False
    elif arch in _ADJACENT_PAIRS:
        adjacent = True
    else:
        raise NotImplementedError(
            f"interp does not know whether {arch} rotates halves or adjacent pairs of each head; load it with "
            "frontend='hooked' (TransformerLens's cfg.rotary_adjacent_pairs says), or add it to "
            "interp.core.frontend._ROTATE_HALF / _ADJACENT_PAIRS."
        )
    return Rope(inv.detach().double().cpu().clone(), adjacent, float(scaling or 1.0), str(kind))


@dataclass(frozen=True)
class QKNorm:
    """Per-head RMSNorm on queries and keys (Qwen3, Gemma-3): effective weights and eps."""

    q_weight: Float[Tensor, " d_head"]
    k_weight: Float[Tensor, " d_head"]
    eps: float


def _norm_eps(module: Any, default: float) -> float:
    for name in ("eps", "variance_epsilon"):
        value = getattr(module, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    return default


def _offset_norms(model: Any) -> bool:
    # Gemma's RMSNorm stores w - 1 (its output is x_hat * (1 + w)); the bridge's adapter says so
    return bool(getattr(model.cfg, "rmsnorm_uses_offset", False))


def qk_norm(model: Any, layer: int) -> QKNorm | None:
    """The layer's per-head QK norm, or None. Full-width QK norms (OLMo-2) are reported by
    :func:`attention_unsupported` instead."""
    _check_layer(model, layer)
    if frontend(model) == "hooked":
        attn = model.blocks[layer].attn
        if not model.cfg.use_qk_norm or getattr(attn, "q_norm", None) is None:
            return None
        if attn.q_norm.w.shape[-1] != model.cfg.d_head:
            return None
        return QKNorm(attn.q_norm.w.detach().float().clone(), attn.k_norm.w.detach().float().clone(), float(model.cfg.eps))
    hf = _hf_attn(model, layer)
    qn, kn = getattr(hf, "q_norm", None), getattr(hf, "k_norm", None)
    if qn is None or kn is None:
        return None
    qn, kn = getattr(qn, "original_component", qn), getattr(kn, "original_component", kn)
    if qn.weight.shape[-1] != d_head(model):
        return None
    off = 1.0 if _offset_norms(model) else 0.0
    return QKNorm(qn.weight.detach().float() + off, kn.weight.detach().float() + off, _norm_eps(qn, 1e-6))


@dataclass(frozen=True)
class InputNorm:
    """The norm in front of the attention layer: ``x_hat * weight + bias`` applied to ``ln1.hook_normalized``."""

    kind: Literal["LN", "RMS"] | None
    weight: Float[Tensor, " d_model"] | None
    bias: Float[Tensor, " d_model"] | None


def input_norm(model: Any, layer: int) -> InputNorm:
    """The attention layer's input norm (effective weight: Gemma's 1 + w); weights None when folded."""
    _check_layer(model, layer)
    kind = normalization(model)
    block = model.blocks[layer]
    if kind is None or not hasattr(block, "ln1"):
        return InputNorm(None, None, None)
    ln = block.ln1
    if frontend(model) == "hooked":
        w, b = getattr(ln, "w", None), getattr(ln, "b", None)
        return InputNorm(kind, None if w is None else w.detach().float(), None if b is None else b.detach().float())
    inner = getattr(ln, "original_component", ln)
    w, b = getattr(inner, "weight", None), getattr(inner, "bias", None)
    off = 1.0 if (kind == "RMS" and _offset_norms(model)) else 0.0
    return InputNorm(kind, None if w is None else w.detach().float() + off, None if b is None else b.detach().float())


@dataclass(frozen=True)
class AttentionWeights:
    """One attention layer's weights in TransformerLens layout, key/value heads NOT expanded (GQA):
    ``q = x W_Q + b_Q`` per head, ``out = sum_h z_h W_O[h] + b_O``. Copies in float32."""

    W_Q: Float[Tensor, "n_heads d_model d_head"]
    b_Q: Float[Tensor, "n_heads d_head"]
    W_K: Float[Tensor, "n_kv d_model d_head"]
    b_K: Float[Tensor, "n_kv d_head"]
    W_V: Float[Tensor, "n_kv d_model d_head"]
    b_V: Float[Tensor, "n_kv d_head"]
    W_O: Float[Tensor, "n_heads d_head d_model"]
    b_O: Float[Tensor, " d_model"]


def attention_weights(model: Any, layer: int) -> AttentionWeights:
    """Read attention layer ``layer`` (the bridge splits fused QKV and Conv1D layouts itself)."""
    _check_layer(model, layer)
    attn = model.blocks[layer].attn
    h, kv, e, d = n_heads(model), n_kv_heads(model), d_head(model), d_model(model)

    def get(name: str, shape: tuple[int, ...]) -> Tensor:
        value = getattr(attn, "_" + name, None) if frontend(model) == "hooked" else None
        if value is None:
            value = getattr(attn, name, None)
        if value is None:  # no bias
            return torch.zeros(shape, dtype=torch.float32, device=attn.W_Q.device)
        value = value.detach().float().clone()
        if value.shape != shape and name[-1] in "KV" and value.shape[0] == h and h != kv:
            value = value[:: h // kv].clone()  # an expanded GQA copy: keep one per key/value head
        return value.reshape(shape)

    return AttentionWeights(
        get("W_Q", (h, d, e)), get("b_Q", (h, e)), get("W_K", (kv, d, e)), get("b_K", (kv, e)),
        get("W_V", (kv, d, e)), get("b_V", (kv, e)), get("W_O", (h, e, d)), get("b_O", (d,)),
    )


def attention_unsupported(model: Any, layer: int) -> list[str]:
    """Features of attention layer ``layer`` that interp's attention mirror (Lorsa) cannot reproduce,
    each as a short phrase naming the feature; empty when everything is mirrored."""
    _check_layer(model, layer)
    problems = []
    pos = positional_embedding(model)
    if pos not in ("standard", "rotary"):
        problems.append(f"positional embedding {pos!r} (only learned absolute positions and RoPE are mirrored)")
    try:
        rope(model, layer)
    except NotImplementedError as err:
        problems.append(str(err))
    if frontend(model) == "hooked":
        c = model.cfg
        if getattr(c, "use_logn_attn", False):
            problems.append("log-n attention scaling (Qwen-1)")
        if c.use_qk_norm and qk_norm(model, layer) is None:
            problems.append(f"{c.original_architecture} full-width QK norm (over all heads at once)")
        if getattr(c, "attention_dir", "causal") != "causal":
            problems.append(f"attention_dir={c.attention_dir!r} (only causal attention)")
    else:
        hf = _hf_attn(model, layer)
        qn = getattr(hf, "q_norm", None)
        if qn is not None and qk_norm(model, layer) is None:
            problems.append(f"{architecture(model)} full-width QK norm (over all heads at once)")
        if getattr(hf, "is_causal", True) is False:
            problems.append("non-causal attention")
        try:
            attn_scale(model, layer)
        except NotImplementedError as err:
            problems.append(str(err))
    return problems
