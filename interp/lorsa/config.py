"""Configuration of a Lorsa layer (He et al. 2025, arXiv 2504.20938) and how it is read off a host.

``LorsaConfig.from_model`` copies every positional and scaling setting from the TransformerLens
config, so a Lorsa always uses the same RoPE layout, base, rotary dim and attention scale as the
layer it replaces (the maintained public code defaults to adjacent-pair RoPE and silently breaks
the model-based init on rotate-half Llama hosts).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from interp.core.errors import InterpConfigError
from interp.core.validate import Check

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["Activation", "LorsaConfig", "LorsaConfigError", "UnsupportedModelError", "hook_names"]

Activation = Literal["relu", "signed"]
"""How the per-token top-K is taken over the dense head activations z~.

- ``"relu"`` (default): ReLU, then keep the K largest z~_i * ||w_O^i||. Activations are
  non-negative, so "head i fired" has one meaning and top contexts are well defined; this is
  the choice of the authors' maintained code.
- ``"signed"``: keep the K largest |z~_i| * ||w_O^i|| with their signs (the original paper code).
  Twice the expressive range per head, but a head's positive and negative firings usually mean
  different things, which makes interpretation harder.
"""

ACTIVATIONS: tuple[str, ...] = ("relu", "signed")


class LorsaConfigError(InterpConfigError):
    """A Lorsa configuration that cannot work; the message says what to change."""


class UnsupportedModelError(LorsaConfigError):
    """The host model's attention has a feature Lorsa does not reproduce."""


def hook_names(model: "HookedTransformer", layer: int) -> tuple[str, str]:
    """Input and target hook of a Lorsa replacing attention layer ``layer`` of ``model``.

    Input is the attention layer's normalised input (``blocks.L.ln1.hook_normalized``; the
    residual stream when the model has no norm), target ``blocks.L.hook_attn_out``.
    """
    n_layers = model.cfg.n_layers
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < n_layers:
        raise LorsaConfigError(
            f"layer={layer!r} is out of range: this model has {n_layers} layers, so use 0..{n_layers - 1}."
        )
    if model.cfg.normalization_type is None:
        return f"blocks.{layer}.hook_resid_pre", f"blocks.{layer}.hook_attn_out"
    return f"blocks.{layer}.ln1.hook_normalized", f"blocks.{layer}.hook_attn_out"


@dataclass
class LorsaConfig:
    """Shape, sparsity and positional settings of one Lorsa layer.

    ``n_ov_heads`` rank-1 OV heads share ``n_qk_heads`` QK heads of width ``d_qk_head``: OV head i
    reads the attention pattern of QK head ``i // (n_ov_heads // n_qk_heads)``.

    Example:
        >>> cfg = LorsaConfig(d_model=64, n_qk_heads=8, d_qk_head=8, n_ov_heads=512, top_k=16)
        >>> cfg.group_size
        64
    """

    d_model: int
    n_qk_heads: int
    d_qk_head: int
    n_ov_heads: int
    top_k: int
    activation: Activation = "relu"
    # Positional settings, mirrored from the host (see from_model).
    rotary: bool = False
    rotary_dim: int | None = None
    rotary_base: float = 10000.0
    rotary_adjacent_pairs: bool = False
    rotary_scaling_factor: float = 1.0
    qk_norm: bool = False
    qk_norm_eps: float = 1e-6
    attn_scale: float | None = None  # scores are divided by this; None means sqrt(d_qk_head)
    # Where it reads and writes in the host (TransformerLens hook names).
    layer: int | None = None
    hook_in: str | None = None
    hook_out: str | None = None
    # Runtime knob: compute z~ in chunks of this many query positions (bounds memory, skips masked
    # work). None: automatic (128); 0: one causal attention call over all positions.
    query_chunk_size: int | None = None

    def __post_init__(self) -> None:
        c = Check(self, LorsaConfigError)
        for name in ("d_model", "n_qk_heads", "d_qk_head", "n_ov_heads", "top_k"):
            c.integer(name, min=1)
        for flag in ("rotary", "rotary_adjacent_pairs", "qk_norm"):
            c.boolean(flag)
        c.integer("rotary_dim", min=2, optional=True, fix="None takes d_qk_head.")
        c.number("rotary_base", gt=0)
        c.number("rotary_scaling_factor", gt=0)
        c.number("qk_norm_eps", gt=0)
        c.number("attn_scale", gt=0, optional=True, fix="None means sqrt(d_qk_head).")
        c.integer("layer", min=0, optional=True)
        c.text("hook_in", optional=True)
        c.text("hook_out", optional=True)
        c.integer("query_chunk_size", min=0, optional=True, fix="0: no chunking; None: automatic (128).")
        if (self.hook_in is None) != (self.hook_out is None):
            c.fail("hook_out" if self.hook_out is None else "hook_in", self.hook_out if self.hook_out is None else
                   self.hook_in, "set together with the other hook (both None, or both hook names)",
                   "Build the config with LorsaConfig.from_model(model, layer).")
        if self.layer is not None and self.hook_in is not None:
            for name in ("hook_in", "hook_out"):
                c.require(str(getattr(self, name)).startswith(f"blocks.{self.layer}."), name, getattr(self, name),
                          f"a hook of layer {self.layer} (blocks.{self.layer}....) since layer={self.layer}",
                          "Build the config with LorsaConfig.from_model(model, layer).")
        if self.n_ov_heads % self.n_qk_heads:
            raise LorsaConfigError(
                f"n_ov_heads={self.n_ov_heads} is not divisible by n_qk_heads={self.n_qk_heads}: every QK "
                f"head must serve the same number of OV heads. Use e.g. n_ov_heads="
                f"{self.n_qk_heads * max(1, self.n_ov_heads // self.n_qk_heads)}."
            )
        if self.top_k > self.n_ov_heads:
            raise LorsaConfigError(
                f"top_k={self.top_k} is larger than n_ov_heads={self.n_ov_heads}; at most every head can fire, "
                f"so use top_k <= {self.n_ov_heads}."
            )
        if self.activation not in ACTIVATIONS:
            raise LorsaConfigError(f"activation={self.activation!r} is not one of {ACTIVATIONS}.")
        if self.rotary:
            if self.rotary_dim is None:
                self.rotary_dim = self.d_qk_head
            if self.rotary_dim % 2 or not 0 < self.rotary_dim <= self.d_qk_head:
                raise LorsaConfigError(
                    f"rotary_dim={self.rotary_dim} must be even and at most d_qk_head={self.d_qk_head}."
                )
        if self.query_chunk_size is not None and self.query_chunk_size < 0:
            raise LorsaConfigError(f"query_chunk_size={self.query_chunk_size} must be >= 0 (0: no chunking) or None (auto).")

    @property
    def group_size(self) -> int:
        """OV heads per QK head."""
        return self.n_ov_heads // self.n_qk_heads

    @property
    def scale(self) -> float:
        return self.attn_scale if self.attn_scale is not None else math.sqrt(self.d_qk_head)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LorsaConfig":
        if not isinstance(data, dict):
            raise LorsaConfigError(f"A LorsaConfig is read from a dict of its fields; got a {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LorsaConfigError(f"Unknown LorsaConfig fields {unknown}; was this saved by a newer version?")
        return cls(**data)

    @classmethod
    def from_model(
        cls,
        model: "HookedTransformer",
        layer: int,
        *,
        expansion: int = 8,
        top_k: int = 16,
        n_qk_heads: int | None = None,
        d_qk_head: int | None = None,
        activation: Activation = "relu",
        query_chunk_size: int | None = None,
    ) -> "LorsaConfig":
        """Config for a Lorsa replacing attention layer ``layer`` of ``model``.

        ``n_ov_heads = expansion * d_model``; QK heads default to one per host query head with the
        host head width, so the QK circuit can be copied at init. Every positional setting is
        copied from ``model.cfg``; unsupported attention variants raise
        :class:`UnsupportedModelError` naming the feature.

        Example:
            >>> cfg = LorsaConfig.from_model(model, layer=2, expansion=8, top_k=16)  # doctest: +SKIP
        """
        c = Check("LorsaConfig.from_model", LorsaConfigError)
        c.integer("expansion", expansion, min=1, fix="n_ov_heads = expansion * d_model; the paper uses 8 to 32.")
        c.integer("top_k", top_k, min=1)
        c.integer("n_qk_heads", n_qk_heads, min=1, optional=True)
        c.integer("d_qk_head", d_qk_head, min=1, optional=True)
        check_supported(model)
        hook_in, hook_out = hook_names(model, layer)
        c = model.cfg
        n_qk = n_qk_heads if n_qk_heads is not None else c.n_heads
        d_qk = d_qk_head if d_qk_head is not None else c.d_head
        rotary = c.positional_embedding_type == "rotary"
        rotary_dim = None
        if rotary:
            if d_qk != c.d_head:
                raise LorsaConfigError(
                    f"d_qk_head={d_qk} differs from the host head width {c.d_head}; with RoPE the rotary "
                    "layout is defined per host head width, so keep d_qk_head equal to it."
                )
            rotary_dim = c.rotary_dim if c.rotary_dim is not None else c.d_head
        return cls(
            d_model=c.d_model,
            n_qk_heads=n_qk,
            d_qk_head=d_qk,
            n_ov_heads=expansion * c.d_model,
            top_k=top_k,
            activation=activation,
            rotary=rotary,
            rotary_dim=rotary_dim,
            rotary_base=float(c.rotary_base) if rotary else 10000.0,
            rotary_adjacent_pairs=bool(c.rotary_adjacent_pairs) if rotary else False,
            rotary_scaling_factor=float(getattr(c, "rotary_scaling_factor", 1.0) or 1.0),
            qk_norm=bool(c.use_qk_norm),
            qk_norm_eps=float(c.eps),
            attn_scale=float(c.attn_scale) * (1 if not c.scale_attn_by_inverse_layer_idx else layer + 1)
            if c.use_attn_scale
            else 1.0,
            layer=layer,
            hook_in=hook_in,
            hook_out=hook_out,
            query_chunk_size=query_chunk_size,
        )


def check_supported(model: "HookedTransformer") -> None:
    """Raise :class:`UnsupportedModelError` when the host attention has a feature Lorsa lacks."""
    c = model.cfg
    problems = []
    if c.positional_embedding_type not in ("standard", "rotary"):
        problems.append(f"positional_embedding_type={c.positional_embedding_type!r} (only 'standard' and 'rotary')")
    for flag in ("use_NTK_by_parts_rope", "use_yarn_rope", "use_logn_attn", "use_local_attn"):
        if getattr(c, flag, False):
            problems.append(f"{flag}=True")
    if getattr(c, "attn_scores_soft_cap", -1.0) and c.attn_scores_soft_cap > 0:
        problems.append(f"attn_scores_soft_cap={c.attn_scores_soft_cap}")
    if getattr(c, "attn_types", None) and any(t != "global" for t in c.attn_types):
        problems.append("local (sliding-window) attention layers")
    if c.original_architecture in ("OlmoeForCausalLM", "Olmo2ForCausalLM", "Olmo3ForCausalLM"):
        problems.append(f"{c.original_architecture} full-vector QK norm")
    if getattr(c, "attention_dir", "causal") != "causal":
        problems.append(f"attention_dir={c.attention_dir!r} (Lorsa is causal)")
    if problems:
        raise UnsupportedModelError(
            f"Lorsa cannot mirror the attention of {c.model_name!r}: unsupported " + "; ".join(problems) + ". "
            "Supported: causal global attention with no positional embedding in attention (GPT-2 style) or "
            "plain RoPE (adjacent-pair or rotate-half, any base/rotary dim, linear scaling), MHA or GQA, "
            "optional per-head QK RMSNorm."
        )
