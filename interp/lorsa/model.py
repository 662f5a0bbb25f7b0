"""The Lorsa layer: many rank-1 OV heads sharing a few low-rank QK heads, top-K sparse per token.

Implements the forward pass of He et al. 2025 (arXiv 2504.20938). All OV heads of one QK group
are computed in one batched attention (per chunk of queries) with the group's value scalars as
the value vector, so there is no Python loop over heads.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from interp.core.errors import InterpLoadError, missing_file
from interp.core import frontend as fe
from interp.lorsa.config import LorsaConfig, LorsaConfigError

__all__ = ["Lorsa", "LorsaLoadError", "rotary_sin_cos", "apply_rotary", "attention_mask"]

FORMAT = "interp.lorsa/1"
AUTO_QUERY_CHUNK = 64  # query_chunk_size=None: chunks of 64 queries (5/8 of the square at ctx 256; 128 did 3/4 and was slower)
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
    """sin/cos tables [n_pos, rotary_dim]: from the host's exact frequencies (``rotary_inv_freq``, computed
    like Hugging Face: float32 pos * inv_freq), else from base / linear scaling like TransformerLens."""
    assert cfg.rotary_dim is not None
    rd = cfg.rotary_dim
    pos = torch.arange(n_pos, dtype=torch.float32, device=device)
    if cfg.rotary_inv_freq is not None:
        inv = torch.tensor(cfg.rotary_inv_freq, dtype=torch.float32, device=device)
        inv = inv.repeat_interleave(2) if cfg.rotary_adjacent_pairs else inv.repeat(2)
        angles = pos[:, None] * inv[None, :]
    else:
        dim = torch.arange(rd // 2, dtype=torch.float32, device=device)
        freq = cfg.rotary_base ** (dim / (rd / 2)) * cfg.rotary_scaling_factor
        freq = freq.repeat_interleave(2) if cfg.rotary_adjacent_pairs else freq.repeat(2)
        angles = pos[:, None] / freq[None, :]
    amp = float(cfg.rotary_attention_scaling)
    return torch.sin(angles) * amp, torch.cos(angles) * amp


def attention_mask(n_query: int, n_key: int, offset: int, window: int | None, device: torch.device) -> Tensor:
    """Which keys each query sees: causal (key s <= query t, queries counted from ``offset``) and, with a
    sliding ``window``, t - s < window (Hugging Face's and TransformerLens's convention)."""
    t = torch.arange(offset, offset + n_query, device=device)[:, None]
    s = torch.arange(n_key, device=device)[None, :]
    mask = s <= t
    if window is not None:
        mask &= (t - s) < window
    return mask


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


@contextlib.contextmanager
def _flush_denormals(device: torch.device) -> Iterator[None]:
    """Treat subnormal floats (< 1.2e-38) as zero on this thread while attention runs, then restore the mode.

    Softmax probabilities of far-away keys underflow into subnormals, and the CPU multiplies those ~10-50x
    slower (microcode assists): on stories260K activations they made the softmax backward and the P @ V
    matmuls of a Lorsa step several times slower than on random data. Zeroing numbers below 1.2e-38 next to
    row sums of 1 changes nothing a float32 can represent in the output."""
    if device.type != "cpu":
        yield
        return
    probe = torch.tensor([1e-20]) * torch.tensor([1e-20])  # 1e-40: a subnormal, or 0 when already flushing
    was_on = bool(probe[0] == 0)
    switched = not was_on and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if switched:
            torch.set_flush_denormal(False)


class _ChunkedAttention(torch.autograd.Function):
    """Softmax attention of many heads with narrow queries/keys (d_qk) and wider values, one batched matmul
    per chunk of queries over the keys up to its last query, masked by an additive -inf bias; the backward
    is written out (dS = softmax'(dP), dQ = dS K, dK = dS^T Q, dV = P^T dO) so the probabilities of each
    chunk are kept once and no dense mask, score copy or per-batch fallback is made. Same numbers as
    ``scaled_dot_product_attention``'s math path up to float rounding (tests/test_lorsa_step.py)."""

    @staticmethod
    def forward(ctx: Any, q: Tensor, k: Tensor, v: Tensor, scale: float, chunk: int,
                window: int | None) -> Tensor:  # noqa: D102
        b, h, n, e = q.shape
        g = v.shape[-1]
        q3, k3, v3 = q.reshape(b * h, n, e), k.reshape(b * h, n, e), v.reshape(b * h, n, g)
        out = q3.new_empty(b * h, n, g)
        with _flush_denormals(q.device):
            probs = _ChunkedAttention._forward(q3, k3, v3, out, scale, chunk, window)
        ctx.save_for_backward(q3, k3, v3, *probs)
        ctx.meta = (b, h, n, e, g, scale, chunk)
        return out.view(b, h, n, g)

    @staticmethod
    def _forward(q3: Tensor, k3: Tensor, v3: Tensor, out: Tensor, scale: float, chunk: int,
                 window: int | None) -> list[Tensor]:
        n = q3.shape[1]
        probs = []
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            bias = torch.zeros(stop - start, stop, dtype=q3.dtype, device=q3.device)
            bias.masked_fill_(~attention_mask(stop - start, stop, start, window, q3.device), float("-inf"))
            p = torch.baddbmm(bias, q3[:, start:stop], k3[:, :stop].transpose(1, 2), alpha=1.0 / scale).softmax(-1)
            torch.bmm(p, v3[:, :stop], out=out[:, start:stop])
            probs.append(p)
        return probs

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # noqa: D102
        q3, k3, v3, *probs = ctx.saved_tensors
        b, h, n, e, g, scale, chunk = ctx.meta
        do = grad.reshape(b * h, n, g)
        dq = torch.empty_like(q3)
        dk, dv = torch.zeros_like(k3), torch.zeros_like(v3)
        with _flush_denormals(q3.device):
            _ChunkedAttention._backward(q3, k3, v3, probs, do, dq, dk, dv, chunk)
        dq.mul_(1.0 / scale)
        dk.mul_(1.0 / scale)
        return dq.view(b, h, n, e), dk.view(b, h, n, e), dv.view(b, h, n, g), None, None, None

    @staticmethod
    def _backward(q3: Tensor, k3: Tensor, v3: Tensor, probs: list[Tensor], do: Tensor, dq: Tensor, dk: Tensor,
                  dv: Tensor, chunk: int) -> None:
        for p, start in zip(probs, range(0, q3.shape[1], chunk)):
            stop = start + p.shape[1]
            doc = do[:, start:stop]
            ds = torch._softmax_backward_data(torch.bmm(doc, v3[:, :stop].transpose(1, 2)), p, -1, p.dtype)
            dv[:, :stop] += torch.bmm(p.transpose(1, 2), doc)
            torch.bmm(ds, k3[:, :stop], out=dq[:, start:stop])
            dk[:, :stop] += torch.bmm(ds.transpose(1, 2), q3[:, start:stop])


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

    def _scores(self, q: Tensor, k: Tensor, offset: int) -> Tensor:
        """Masked (and soft-capped) attention scores of queries starting at ``offset`` against keys 0.. ."""
        scores = q @ k.transpose(-1, -2) / self.cfg.scale
        if self.cfg.attn_softcap > 0:
            cap = self.cfg.attn_softcap
            scores = cap * torch.tanh(scores / cap)
        mask = attention_mask(q.shape[2], k.shape[2], offset, self.cfg.sliding_window, q.device)
        return scores.masked_fill(~mask, float("-inf"))

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, offset: int) -> Tensor:
        """Attention of a chunk of queries (absolute positions offset..) over keys up to its last query."""
        stop = offset + q.shape[2]
        # the soft-cap sits between the scores and the softmax (no fused kernel; without one, _ChunkedAttention runs)
        return self._scores(q, k[:, :, :stop], offset).softmax(-1) @ v[:, :, :stop]

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
        if self.cfg.attn_softcap == 0:
            out = _ChunkedAttention.apply(q, k, v, self.cfg.scale, n if chunk == 0 else min(chunk, n),
                                          self.cfg.sliding_window)
        elif chunk == 0 or chunk >= n:
            out = self._attend(q, k, v, 0)
        else:
            # Each chunk of queries only needs keys up to its last position: bounds the working set and
            # skips most of the masked upper triangle that a single causal call still multiplies out on CPU.
            out = torch.cat([self._attend(q[:, :, start:start + chunk], k, v, start) for start in range(0, n, chunk)],
                            dim=2)
        return out.transpose(1, 2).reshape(b, n, self.cfg.n_ov_heads)

    def sparsify(self, z_pre: Float[Tensor, "batch pos n_ov"], top_k: int | None = None) -> Float[Tensor, "batch pos n_ov"]:
        """Keep the top-K heads per token (see :data:`interp.lorsa.config.Activation`); gradient flows
        only through the kept entries."""
        idx, vals = self.top_codes(z_pre, top_k)
        return torch.zeros_like(z_pre).scatter(-1, idx, vals)

    def top_codes(self, z_pre: Float[Tensor, "batch pos n_ov"], top_k: int | None = None,
                  heads: Int[Tensor, " n_heads"] | None = None) -> tuple[Int[Tensor, "batch pos k"], Float[Tensor, "batch pos k"]]:
        """The kept heads of each token and their activations, ``(indices, values)``: the non-zeros of
        :meth:`sparsify` without the dense tensor (gradient flows into the kept ``z_pre`` entries).
        ``heads``: choose only among these heads (the AuxK loss's dead heads).

        Example:
            >>> cfg = LorsaConfig(d_model=16, n_qk_heads=2, d_qk_head=4, n_ov_heads=32, top_k=4)
            >>> lorsa = Lorsa(cfg)
            >>> z_pre = lorsa.encode_pre(torch.randn(1, 5, 16))
            >>> idx, vals = lorsa.top_codes(z_pre)
            >>> bool((torch.zeros_like(z_pre).scatter(-1, idx, vals) == lorsa.sparsify(z_pre)).all())
            True
        """
        k = self._k_per_token(top_k)
        norms = self.W_O.detach().norm(dim=-1)
        pool = z_pre if heads is None else z_pre.index_select(-1, heads)
        if heads is not None:
            norms = norms[heads]
            if k > heads.numel():
                raise LorsaConfigError(f"top_k={k} exceeds the {heads.numel()} heads to choose from.")
        # relu: a negative entry is only ranked when fewer than k are positive, and then its kept value is 0, as
        # the ranking of relu(z) would give (with a zero gradient either way); relu runs on the k kept entries.
        score = pool.detach() * norms if self.cfg.activation == "relu" else pool.detach().abs() * norms
        idx = score.topk(k, dim=-1, sorted=False).indices
        vals = pool.gather(-1, idx)
        if self.cfg.activation == "relu":
            vals = F.relu(vals)
        return (idx if heads is None else heads[idx]), vals

    def decode_codes(self, idx: Int[Tensor, "batch pos k"], vals: Float[Tensor, "batch pos k"], *,
                     bias: bool = True) -> Float[Tensor, "batch pos d_model"]:
        """:meth:`decode` of the codes ``(idx, vals)`` of :meth:`top_codes`, gathering only the kept rows of
        ``W_O`` (``embedding_bag``): k instead of n_ov multiply-adds per output feature.

        Example:
            >>> cfg = LorsaConfig(d_model=16, n_qk_heads=2, d_qk_head=4, n_ov_heads=32, top_k=4)
            >>> lorsa = Lorsa(cfg)
            >>> z_pre = lorsa.encode_pre(torch.randn(1, 5, 16))
            >>> torch.allclose(lorsa.decode_codes(*lorsa.top_codes(z_pre)), lorsa.decode(lorsa.sparsify(z_pre)), atol=1e-6)
            True
        """
        lead = idx.shape[:-1]
        flat = F.embedding_bag(idx.reshape(-1, idx.shape[-1]), self.W_O, per_sample_weights=vals.reshape(-1, idx.shape[-1]),
                               mode="sum")
        out = flat.view(*lead, self.cfg.d_model)
        return out + self.b_D if bias else out

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
        return self._scores(q, k, 0).softmax(-1)

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
        d, n_layers = fe.d_model(model), fe.n_layers(model)
        if d != self.cfg.d_model:
            raise LorsaConfigError(
                f"This Lorsa has d_model={self.cfg.d_model} but the model has d_model={d}: it was "
                "trained on a different model."
            )
        if self.cfg.layer is not None and not 0 <= self.cfg.layer < n_layers:
            raise LorsaConfigError(
                f"This Lorsa replaces layer {self.cfg.layer} but the model has only {n_layers} layers."
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
