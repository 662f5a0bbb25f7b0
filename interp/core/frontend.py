"""Which front-end a model is, and the few facts every method reads off it, in one place.

interp takes the user's model as it comes: a TransformerLens ``HookedTransformer``, a TransformerLens
``TransformerBridge`` (the maintained front-end, wrapping a Hugging Face model), or, where a method
needs no hooks (THR's policy), a plain Hugging Face ``*ForCausalLM``. Methods ask this module instead
of reaching into ``model.cfg`` or ``model.config`` themselves.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import torch

__all__ = ["Frontend", "frontend", "is_hooked", "is_bridge", "is_hf", "input_device", "n_ctx", "vocab_size"]

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


def input_device(model: Any) -> torch.device:
    """Where input ids must live: the device of the token embedding (the first one of a split model)."""
    kind = frontend(model)
    if kind == "hooked":
        return model.embed.W_E.device
    hf = model.original_model if kind == "bridge" else model
    return hf.get_input_embeddings().weight.device


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
    cfg = getattr(model, "cfg", None)
    if cfg is not None and getattr(cfg, "d_vocab_out", None):
        return int(cfg.d_vocab_out)
    if cfg is not None and getattr(cfg, "d_vocab", None):
        return int(cfg.d_vocab)
    return int(model.get_output_embeddings().weight.shape[0])
