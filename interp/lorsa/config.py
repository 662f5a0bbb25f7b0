"""Configuration of a Lorsa layer (He et al. 2025, arXiv 2504.20938) and how it is read off a host.

``LorsaConfig.from_model`` copies every positional and scaling setting of the host layer, read through
:mod:`interp.core.frontend` (the same facts on a TransformerBridge and a HookedTransformer): the RoPE
layout and its exact frequencies (so Llama-3's NTK-by-parts scaling, linear scaling, partial rotary and
Gemma-3's per-layer bases all come along), the score scale (Gemma's ``query_pre_attn_scalar``), the
attention soft-cap (Gemma-2), the sliding window and the per-head QK norm. The maintained public code
defaults to adjacent-pair RoPE and silently breaks the model-based init on rotate-half Llama hosts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from interp.core.errors import InterpConfigError
from interp.core.validate import Check
from interp.core import frontend as fe

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

    Input is the attention layer's normalised input (``blocks.L.ln1.hook_normalized``, before the norm's
    weight; the residual stream when the model has no norm), target ``blocks.L.hook_attn_out`` (on Gemma-2/3
    that is after the post-attention norm, on both front-ends).
    """
    n_layers = fe.n_layers(model)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < n_layers:
        raise LorsaConfigError(
            f"layer={layer!r} is out of range: this model has {n_layers} layers, so use 0..{n_layers - 1}."
        )
    if fe.normalization(model) is None:
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
    # Exact RoPE frequencies (angle = pos * inv_freq[i]) read off the host; when set they replace
    # rotary_base / rotary_scaling_factor (Llama-3 NTK-by-parts, Gemma-3 local/global bases...).
    rotary_inv_freq: list[float] | None = None
    rotary_attention_scaling: float = 1.0  # cos/sin multiplier (YaRN's mscale); 1 for every other RoPE
    attn_softcap: float = 0.0  # Gemma-2: scores = c * tanh(scores / c); 0 = none
    sliding_window: int | None = None  # query t attends to keys s with t - s < window; None = global
    qk_norm: bool = False
    qk_norm_eps: float = 1e-6
    attn_scale: float | None = None  # scores are divided by this; None means sqrt(d_qk_head)
    # Where it reads and writes in the host (TransformerLens hook names).
    layer: int | None = None
    hook_in: str | None = None
    hook_out: str | None = None
    # Runtime knob: compute z~ in chunks of this many query positions (bounds memory, skips masked
    # work). None: automatic (64). 0: one causal attention call over all positions.
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
        c.integer("query_chunk_size", min=0, optional=True, fix="0: no chunking; None: automatic (64).")
        c.number("rotary_attention_scaling", gt=0, fix="The cos/sin multiplier: 1 except for YaRN's mscale.")
        c.number("attn_softcap", ge=0, fix="0: no soft-cap (Gemma-2 uses 50).")
        c.integer("sliding_window", min=1, optional=True, fix="None: global attention.")
        if self.rotary_inv_freq is not None:
            c.numbers("rotary_inv_freq", ge=0, fix="The host's RoPE inverse frequencies (LorsaConfig.from_model reads "
                      "them), or None for rotary_base / rotary_scaling_factor.")
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
            if self.rotary_inv_freq is not None:
                self.rotary_inv_freq = [float(v) for v in self.rotary_inv_freq]
                if self.rotary_dim is not None and self.rotary_dim != 2 * len(self.rotary_inv_freq):
                    raise LorsaConfigError(
                        f"rotary_dim={self.rotary_dim} but rotary_inv_freq has {len(self.rotary_inv_freq)} entries "
                        f"(it needs rotary_dim / 2)."
                    )
                self.rotary_dim = 2 * len(self.rotary_inv_freq)
            if self.rotary_dim is None:
                self.rotary_dim = self.d_qk_head
            if self.rotary_dim % 2 or not 0 < self.rotary_dim <= self.d_qk_head:
                raise LorsaConfigError(
                    f"rotary_dim={self.rotary_dim} must be even and at most d_qk_head={self.d_qk_head}."
                )
        if self.attn_softcap < 0:
            raise LorsaConfigError(f"attn_softcap={self.attn_softcap} must be >= 0 (0: no soft-cap).")
        if self.sliding_window is not None and (not isinstance(self.sliding_window, int) or self.sliding_window < 1):
            raise LorsaConfigError(f"sliding_window={self.sliding_window!r} must be a positive integer or None.")
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
        host head width, so the QK circuit can be copied at init. Every positional setting is read
        off the host layer (:mod:`interp.core.frontend`, either front-end); unsupported attention variants raise
        :class:`UnsupportedModelError` naming the feature.

        Example:
            >>> cfg = LorsaConfig.from_model(model, layer=2, expansion=8, top_k=16)  # doctest: +SKIP
        """
        c = Check("LorsaConfig.from_model", LorsaConfigError)
        c.integer("expansion", expansion, min=1, fix="n_ov_heads = expansion * d_model; the paper uses 8 to 32.")
        c.integer("top_k", top_k, min=1)
        c.integer("n_qk_heads", n_qk_heads, min=1, optional=True)
        c.integer("d_qk_head", d_qk_head, min=1, optional=True)
        hook_in, hook_out = hook_names(model, layer)
        check_supported(model, layer)
        n_heads, host_d_head = fe.n_heads(model), fe.d_head(model)
        n_qk = n_qk_heads if n_qk_heads is not None else n_heads
        d_qk = d_qk_head if d_qk_head is not None else host_d_head
        rope = fe.rope(model, layer)
        if rope is not None and d_qk != host_d_head:
            raise LorsaConfigError(
                f"d_qk_head={d_qk} differs from the host head width {host_d_head}; with RoPE the rotary "
                "layout is defined per host head width, so keep d_qk_head equal to it."
            )
        qk_norm = fe.qk_norm(model, layer)
        d = fe.d_model(model)
        return cls(
            d_model=d,
            n_qk_heads=n_qk,
            d_qk_head=d_qk,
            n_ov_heads=expansion * d,
            top_k=top_k,
            activation=activation,
            rotary=rope is not None,
            rotary_dim=rope.dim if rope is not None else None,
            rotary_adjacent_pairs=rope.adjacent_pairs if rope is not None else False,
            rotary_inv_freq=rope.inv_freq.tolist() if rope is not None else None,
            rotary_attention_scaling=rope.attention_scaling if rope is not None else 1.0,
            attn_softcap=fe.attn_softcap(model, layer),
            sliding_window=fe.sliding_window(model, layer),
            qk_norm=qk_norm is not None,
            qk_norm_eps=qk_norm.eps if qk_norm is not None else 1e-6,
            attn_scale=fe.attn_scale(model, layer),
            layer=layer,
            hook_in=hook_in,
            hook_out=hook_out,
            query_chunk_size=query_chunk_size,
        )


def check_supported(model: "HookedTransformer", layer: int = 0) -> None:
    """Raise :class:`UnsupportedModelError` when attention layer ``layer`` of the host has a feature Lorsa
    cannot mirror, naming the family and the feature."""
    problems = fe.attention_unsupported(model, layer)
    if problems:
        raise UnsupportedModelError(
            f"Lorsa cannot mirror layer {layer} of {fe.architecture(model)}: " + "; ".join(p.rstrip(".") for p in problems)
            + ". "
            "Lorsa mirrors causal attention with learned absolute positions (GPT-2) or static RoPE (any layout, "
            "partial rotary, linear / Llama-3 / YaRN scaling, per-layer bases), MHA or GQA, QKV biases, per-head "
            "QK RMSNorm, Gemma-2's score soft-cap and sliding windows. Pick a layer or model without the feature."
        )
