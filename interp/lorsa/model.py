"""The Lorsa layer: many rank-1 OV heads sharing a few low-rank QK heads, top-K sparse per token.

Implements the forward pass of He et al. 2025 (arXiv 2504.20938). All OV heads of one QK group
are computed in a single ``scaled_dot_product_attention`` call with the group's value scalars as
the value vector, so there is no Python loop over heads.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from interp.core.errors import InterpLoadError, missing_file
from interp.lorsa.config import LorsaConfig, LorsaConfigError

__all__ = ["Lorsa", "LorsaLoadError", "rotary_sin_cos", "apply_rotary"]

FORMAT = "interp.lorsa/1"
AUTO_QUERY_CHUNK = 128  # query_chunk_size=None: chunks of 128 queries (~30% faster steps at ctx 256 on CPU)
_PARAM_SHAPES = {
    "W_Q": ("n_qk_heads", "d_model", "d_qk_head"),
    "W_K": ("n_qk_heads", "d_model", "d_qk_head"),
    "b_Q": ("n_qk_heads", "d_qk_head"),
    "b_K": ("n_qk_heads", "d_qk_head"),
    "W_V": ("n_ov_heads", "d_model"),
    "b_V": ("n_ov_heads",),
    "W_O": ("n_ov_heads", "d_model"),
    "b_D": ("d_model",),
}


class LorsaLoadError(InterpLoadError):
    """A saved Lorsa is missing, partial or corrupt; the message names the file."""


def rotary_sin_cos(cfg: LorsaConfig, n_pos: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """sin/cos tables [n_pos, rotary_dim], the same formula as TransformerLens for plain RoPE."""
    assert cfg.rotary_dim is not None
    rd = cfg.rotary_dim
    pos = torch.arange(n_pos, dtype=torch.float32, device=device)
    dim = torch.arange(rd // 2, dtype=torch.float32, device=device)
    freq = cfg.rotary_base ** (dim / (rd / 2)) * cfg.rotary_scaling_factor
    freq = freq.repeat_interleave(2) if cfg.rotary_adjacent_pairs else freq.repeat(2)
    angles = pos[:, None] / freq[None, :]
    return torch.sin(angles), torch.cos(angles)


def apply_rotary(
    x: Float[Tensor, "batch head pos d"], sin: Tensor, cos: Tensor, adjacent_pairs: bool
) -> Float[Tensor, "batch head pos d"]:
    """Rotate the first ``rotary_dim`` features of each head, per absolute position."""
    rd = sin.shape[-1]
    x_rot, x_pass = x[..., :rd], x[..., rd:]
    if adjacent_pairs:
        flipped = torch.stack((-x_rot[..., 1::2], x_rot[..., ::2]), dim=-1).flatten(-2)
    else:
        half = rd // 2
        flipped = torch.cat((-x_rot[..., half:], x_rot[..., :half]), dim=-1)
    out = x_rot * cos.to(x.dtype) + flipped * sin.to(x.dtype)
    return torch.cat((out, x_pass), dim=-1) if x_pass.shape[-1] else out


class Lorsa(nn.Module):
    """Low-rank sparse attention: a sparse, interpretable replacement for one attention layer.

    Parameters: ``W_Q, W_K`` [n_qk, d_model, d_qk]; ``b_Q, b_K`` [n_qk, d_qk]; ``W_V``
    [n_ov, d_model]; ``b_V`` [n_ov]; ``W_O`` [n_ov, d_model]; ``b_D`` [d_model]. OV head i uses
    QK head ``i // group_size``.

    Example:
        >>> cfg = LorsaConfig(d_model=16, n_qk_heads=2, d_qk_head=4, n_ov_heads=32, top_k=4)
        >>> lorsa = Lorsa(cfg)
        >>> lorsa(torch.randn(3, 10, 16)).shape
        torch.Size([3, 10, 16])
    """

    def __init__(self, cfg: LorsaConfig, *, seed: int | None = 0):
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        n_qk, d, d_qk, n_ov = cfg.n_qk_heads, cfg.d_model, cfg.d_qk_head, cfg.n_ov_heads

        def rand(*shape: int, std: float) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=gen) * std)

        self.W_Q = rand(n_qk, d, d_qk, std=1 / math.sqrt(d))
        self.W_K = rand(n_qk, d, d_qk, std=1 / math.sqrt(d))
        self.b_Q = nn.Parameter(torch.zeros(n_qk, d_qk))
        self.b_K = nn.Parameter(torch.zeros(n_qk, d_qk))
        self.W_V = rand(n_ov, d, std=1 / math.sqrt(d))
        self.b_V = nn.Parameter(torch.zeros(n_ov))
        self.W_O = rand(n_ov, d, std=1 / math.sqrt(d * cfg.top_k))
        self.b_D = nn.Parameter(torch.zeros(d))
        if cfg.qk_norm:
            # Host per-head QK RMSNorm weights: copied, never trained (not Lorsa parameters).
            self.register_buffer("q_norm_w", torch.ones(d_qk))
            self.register_buffer("k_norm_w", torch.ones(d_qk))
        self._rope_cache: tuple[Tensor, Tensor] | None = None

    # ----------------------------------------------------------------------------- internals
    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.cfg.d_model:
            raise ValueError(
                f"Lorsa expects activations shaped [batch, pos, d_model={self.cfg.d_model}] (the host's "
                f"{self.cfg.hook_in or 'ln1.hook_normalized'}), got {tuple(x.shape)}."
            )

    def _rope(self, n_pos: int, device: torch.device) -> tuple[Tensor, Tensor]:
        cache = self._rope_cache
        if cache is None or cache[0].shape[0] < n_pos or cache[0].device != device:
            cache = rotary_sin_cos(self.cfg, max(n_pos, 256), device)
            self._rope_cache = cache
        return cache[0][:n_pos], cache[1][:n_pos]

    def _qk(self, x: Float[Tensor, "batch pos d_model"]) -> tuple[Tensor, Tensor]:
        """Rotated queries and keys, [batch, n_qk, pos, d_qk]."""
        q = torch.einsum("bpd,hde->bhpe", x, self.W_Q) + self.b_Q[None, :, None, :]
        k = torch.einsum("bpd,hde->bhpe", x, self.W_K) + self.b_K[None, :, None, :]
        if self.cfg.qk_norm:
            eps = self.cfg.qk_norm_eps
            q = q * torch.rsqrt(q.pow(2).mean(-1, keepdim=True) + eps) * self.q_norm_w
            k = k * torch.rsqrt(k.pow(2).mean(-1, keepdim=True) + eps) * self.k_norm_w
        if self.cfg.rotary:
            sin, cos = self._rope(x.shape[1], x.device)
            q = apply_rotary(q, sin, cos, self.cfg.rotary_adjacent_pairs)
            k = apply_rotary(k, sin, cos, self.cfg.rotary_adjacent_pairs)
        return q, k

    def values(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos n_ov"]:
        """Per-head value scalars x_s . w_V^i + b_V^i."""
        return x @ self.W_V.T + self.b_V

    def _k_per_token(self, top_k: int | None) -> int:
        k = self.cfg.top_k if top_k is None else top_k
        if not 1 <= k <= self.cfg.n_ov_heads:
            raise LorsaConfigError(f"top_k={k} must be between 1 and n_ov_heads={self.cfg.n_ov_heads}.")
        return k

    # ----------------------------------------------------------------------------- public API
    def encode_pre(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos n_ov"]:
        """Dense head activations z~_i(t) = sum_{s<=t} A^{h(i)}[t,s] (x_s . w_V^i + b_V^i)."""
        self._check_input(x)
        b, n, _ = x.shape
        q, k = self._qk(x)
        v = self.values(x).view(b, n, self.cfg.n_qk_heads, self.cfg.group_size).transpose(1, 2)
        chunk = self.cfg.query_chunk_size
        if chunk is None:
            chunk = AUTO_QUERY_CHUNK
        if chunk == 0 or chunk >= n:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / self.cfg.scale)
        else:
            # Each chunk of queries only needs keys up to its last position: bounds the working set and
            # skips most of the masked upper triangle that a single causal call still multiplies out on CPU.
            parts = []
            for start in range(0, n, chunk):
                stop = min(start + chunk, n)
                mask = torch.ones(stop - start, stop, dtype=torch.bool, device=x.device).tril(diagonal=start)
                parts.append(
                    F.scaled_dot_product_attention(
                        q[:, :, start:stop], k[:, :, :stop], v[:, :, :stop], attn_mask=mask, scale=1.0 / self.cfg.scale
                    )
                )
            out = torch.cat(parts, dim=2)
        return out.transpose(1, 2).reshape(b, n, self.cfg.n_ov_heads)

    def sparsify(self, z_pre: Float[Tensor, "batch pos n_ov"], top_k: int | None = None) -> Float[Tensor, "batch pos n_ov"]:
        """Keep the top-K heads per token (see :data:`interp.lorsa.config.Activation`); gradient flows
        only through the kept entries."""
        k = self._k_per_token(top_k)
        norms = self.W_O.norm(dim=-1)
        if self.cfg.activation == "relu":
            z_pre = F.relu(z_pre)
            score = z_pre * norms
        else:
            score = z_pre.abs() * norms
        idx = score.topk(k, dim=-1).indices
        return torch.zeros_like(z_pre).scatter(-1, idx, z_pre.gather(-1, idx))

    def encode(self, x: Float[Tensor, "batch pos d_model"], top_k: int | None = None) -> Float[Tensor, "batch pos n_ov"]:
        """Sparse head activations: top-K of :meth:`encode_pre` per token, others zero."""
        return self.sparsify(self.encode_pre(x), top_k)

    def decode(self, z: Float[Tensor, "batch pos n_ov"]) -> Float[Tensor, "batch pos d_model"]:
        return z @ self.W_O + self.b_D

    def forward(self, x: Float[Tensor, "batch pos d_model"], top_k: int | None = None) -> Float[Tensor, "batch pos d_model"]:
        return self.decode(self.encode(x, top_k))

    def attention_pattern(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch n_qk q k"]:
        """Causal attention pattern of every QK head (explicit softmax, for analysis)."""
        self._check_input(x)
        q, k = self._qk(x)
        scores = q @ k.transpose(-1, -2) / self.cfg.scale
        n = x.shape[1]
        causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        return scores.masked_fill(~causal, float("-inf")).softmax(-1)

    def z_pattern(self, x: Float[Tensor, "batch pos d_model"], head: int) -> Float[Tensor, "batch q k"]:
        """Exact per-source decomposition of OV head ``head``: entry [b, t, s] is
        A^{h}[t, s] (x_s . w_V + b_V); rows sum to ``encode_pre(x)[b, t, head]``."""
        if not 0 <= head < self.cfg.n_ov_heads:
            raise IndexError(f"head={head} is out of range: this Lorsa has {self.cfg.n_ov_heads} OV heads.")
        qk = head // self.cfg.group_size
        pattern = self.attention_pattern(x)[:, qk]
        v = x @ self.W_V[head] + self.b_V[head]
        return pattern * v[:, None, :]

    # ----------------------------------------------------------------------------- save / load
    def save(self, directory: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write ``config.json`` and ``weights.safetensors``. The weights act on raw host
        activations (any training normalisation is already folded in), and the JSON says so."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(out / "weights.safetensors"))
        meta = {"format": FORMAT, "config": self.cfg.to_dict(), "acts_on": "raw host activations (normalisation folded)"}
        if extra:
            meta["extra"] = extra
        (out / "config.json").write_text(json.dumps(meta, indent=2))
        return out

    @classmethod
    def load(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> "Lorsa":
        """Load a Lorsa written by :meth:`save`; a clear error when files are missing or damaged."""
        folder = Path(directory)
        cfg_path, w_path = folder / "config.json", folder / "weights.safetensors"
        missing = [p.name for p in (cfg_path, w_path) if not p.is_file()]
        if missing:
            raise missing_file(LorsaLoadError, f"{folder} is not a saved Lorsa: missing {', '.join(missing)}. Save one "
                               "with Lorsa.save(dir).")
        try:
            meta = json.loads(cfg_path.read_text())
            cfg = LorsaConfig.from_dict(meta["config"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, LorsaConfigError) as err:
            raise LorsaLoadError(f"{cfg_path} is corrupt or not a Lorsa config ({err}).") from err
        if meta.get("format") != FORMAT:
            raise LorsaLoadError(f"{cfg_path} has format {meta.get('format')!r}; expected {FORMAT!r}.")
        try:
            state = load_file(str(w_path))
        except (SafetensorError, OSError, RuntimeError) as err:
            raise LorsaLoadError(f"{w_path} is corrupt or truncated ({err}); re-save the Lorsa.") from err
        lorsa = cls(cfg, seed=None)
        expected = {k: tuple(v.shape) for k, v in lorsa.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in state.items()}
        if expected != got:
            diff = sorted(set(expected) ^ set(got)) or [k for k in expected if expected[k] != got[k]]
            raise LorsaLoadError(f"{w_path} does not match its config.json (differences in {diff}); the save is partial or mixed.")
        bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            raise LorsaLoadError(f"{w_path} holds NaN or inf in {bad}: the Lorsa diverged when it was trained.")
        lorsa.load_state_dict(state)
        return lorsa.to(device)

    def check_host(self, model: Any) -> None:
        """Raise when this Lorsa cannot run on ``model`` (d_model or layer mismatch, hooks it lacks)."""
        c = model.cfg
        if c.d_model != self.cfg.d_model:
            raise LorsaConfigError(
                f"This Lorsa has d_model={self.cfg.d_model} but the model has d_model={c.d_model}: it was "
                "trained on a different model."
            )
        if self.cfg.layer is not None and not 0 <= self.cfg.layer < c.n_layers:
            raise LorsaConfigError(
                f"This Lorsa replaces layer {self.cfg.layer} but the model has only {c.n_layers} layers."
            )
        hooks = getattr(model, "hook_dict", {})
        absent = [h for h in (self.cfg.hook_in, self.cfg.hook_out) if h is not None and h not in hooks]
        if absent:
            raise LorsaConfigError(f"This Lorsa reads/writes {absent}, which the model does not have: it was trained on "
                                   "a model with another architecture (e.g. with vs without a norm before attention).")

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"n_qk={c.n_qk_heads}x{c.d_qk_head}, n_ov={c.n_ov_heads}, top_k={c.top_k}, "
                f"activation={c.activation}, rotary={c.rotary}, layer={c.layer}")
