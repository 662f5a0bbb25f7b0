"""Jacobian lens: carry a layer's residual into the final layer's basis with the AVERAGE Jacobian of the
final residual with respect to it, then decode it as the model decodes its own output.

Definition (the one of Anthropic's reference implementation, ``anthropics/jacobian-lens`` ``jlens.fit``,
whose layout the Neuronpedia lenses follow): for lens index ``l`` and a token window,

    J_l = mean over source positions p >= skip_first of  sum_{p' >= p} d h_final[p'] / d h_l[p]

where ``h_final`` is the residual after the last block (before the final norm) and ``h_l`` the residual
at lens index ``l`` (0 = embeddings, ``i`` = after block ``i-1``); the mean runs over every window of the
token stream too. The sum over later target positions is what one backward pass with a one-hot cotangent
at EVERY position gives; the first ``skip_first`` positions (16 in the reference: attention sinks with
atypical statistics) are left out of the mean. The lens reads ``unembed(final_norm(J_l h))``; at the last
index ``J`` is the identity (``d h_final[p'] / d h_final[p]`` is ``I`` when ``p' = p`` and 0 otherwise), so
the lens's output layer is the model's logits. No bias and no training: the lens is a plain average.

Fitting cost: one forward pass and ``ceil(d_model / dim_batch)`` batched backward passes (vmapped VJPs,
``is_grads_batched``) per batch of windows; one backward yields the rows of every layer's Jacobian at
once. Memory is bounded by ``dim_batch x batch x ctx x d_model`` per layer plus the ``[n_layers, d, d]``
running sum. Saved as safetensors (the Jacobians) + JSON (shapes, model name, fit record).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.core.frontend import d_model as d_model_of
from interp.core.frontend import input_device, output_device
from interp.core.frontend import n_layers as n_layers_of
from interp.core.tokens import Truncation
from interp.core.validate import Check
from interp.lens.errors import LensConfigError
from interp.lens.fitted import FittedLens, token_windows
from interp.lens.layers import layer_hook_name

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["JacobianLens", "JacobianLensConfig", "attached_jacobian_lens", "jacobian_sums"]

WEIGHTS_FILE = "jacobian_lens.safetensors"
CONFIG_FILE = "jacobian_lens.json"
FORMAT = "interp.jacobian_lens/1"


def attached_jacobian_lens(model: "HookedTransformer") -> "JacobianLens | None":
    """The Jacobian lens attached to ``model`` (what ``lens="jacobian"`` uses), if any."""
    return JacobianLens.attached(model)


@dataclass
class JacobianLensConfig:
    """Fitting knobs. The defaults fit a lens for a small model in seconds."""

    batch_size: int = 8
    """Windows per forward pass."""
    dim_batch: int = 64
    """Output dimensions whose Jacobian rows one (vmapped) backward pass computes; bounds memory."""
    skip_first: int = 16
    """Source positions left out of the average (the reference's attention-sink cut); must be < ctx."""
    max_windows: int | None = None
    """Use at most this many windows of the stream (None = all)."""
    max_grad_bytes: int = 2**30
    """Bound on the batched gradients one backward returns (``dim_batch x batch x ctx x d_model`` floats per
    layer, every layer at once): ``dim_batch`` is lowered for a batch where it would exceed this."""

    def __post_init__(self) -> None:
        c = Check(self, LensConfigError)
        c.integer("batch_size", min=1)
        c.integer("dim_batch", min=1)
        c.integer("skip_first", min=0, fix="0 averages over every position; the reference skips 16.")
        c.integer("max_windows", min=1, optional=True)
        c.integer("max_grad_bytes", min=1)


class JacobianLens(FittedLens):
    """Per-layer average Jacobians ``J_l`` (``[n_layers, d_model, d_model]``, rows = final residual) for
    lens indices ``0..n_layers-1``; the lens translates ``h -> J_l h``. The last index (the model's
    output) passes unchanged.

    Example:
        >>> lens = JacobianLens.fit(model, tokens, JacobianLensConfig(skip_first=4))  # doctest: +SKIP
        >>> decode_layers(model, "Once upon", lens="jacobian")                         # doctest: +SKIP
        >>> lens.save("out/jlens"); JacobianLens.load("out/jlens", model)              # doctest: +SKIP
    """

    kind = "jacobian"
    title = "Jacobian lens"
    weights_file = WEIGHTS_FILE
    config_file = CONFIG_FILE
    format = FORMAT
    make_hint = "Fit a lens for this model with JacobianLens.fit(model, tokens)."
    nonfinite_hint = "the fit overflowed."

    def __init__(self, n_layers: int, d_model: int, *, model_name: str = "", dtype=torch.float32):
        super().__init__(n_layers, d_model, model_name=model_name)
        eye = torch.eye(d_model, dtype=dtype)
        # identity before fitting: an unfitted lens is the logit lens
        self.register_buffer("jacobian", eye.expand(n_layers, d_model, d_model).clone())
        self.n_positions = 0
        """How many (window, source position) pairs the average ran over."""
        self.skip_first = 0

    def translate(
        self, resid: Float[Tensor, "batch n_sel n_pos d_model"], layers: Sequence[int]
    ) -> Float[Tensor, "batch n_sel n_pos d_model"]:
        """``J_l h`` for lens indices ``layers`` (index ``n_layers`` passes unchanged)."""
        J = torch.cat([self.jacobian, torch.eye(self.d_model, dtype=self.jacobian.dtype,
                                                 device=self.jacobian.device)[None]])
        idx = torch.as_tensor(list(layers), device=J.device)
        return torch.einsum("bspe,sde->bspd", resid.to(J.dtype), J[idx])

    # ---- fitting -------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        model: "HookedTransformer",
        data: Int[Tensor, "n ctx"] | Sequence[str] | str,
        config: JacobianLensConfig | None = None,
        *,
        ctx: int = 64,
        progress: bool = True,
        attach: bool = True,
        truncate: Truncation | None = None,
    ) -> "JacobianLens":
        """Average the Jacobians over token windows, or over texts packed into BOS-first ``ctx``-token
        windows (as :meth:`TunedLens.train <interp.lens.tuned.TunedLens.train>` reads them). Fit on
        held-out text, never on the prompts you will probe. The model's weights and each parameter's
        ``requires_grad`` are left as they were."""
        from tqdm.auto import tqdm

        from interp.core.progress import bar_disabled
        cfg = config or JacobianLensConfig()
        c = Check("JacobianLens.fit", LensConfigError)
        c.instance("config", JacobianLensConfig, cfg)
        c.integer("ctx", ctx, min=2, fix="A text window is BOS plus at least one token.")
        c.boolean("progress", progress)
        c.boolean("attach", attach)
        windows = token_windows(model, data, ctx, truncate, what="the Jacobian lens's fitting tokens")
        if cfg.max_windows is not None:
            windows = windows[: cfg.max_windows]
        if windows.shape[1] <= cfg.skip_first:
            raise LensConfigError(
                f"JacobianLensConfig.skip_first={cfg.skip_first} leaves no source position in windows of "
                f"{windows.shape[1]} tokens: use longer windows (ctx) or a smaller skip_first.")
        lens = cls.for_model(model)
        total = torch.zeros_like(lens.jacobian, dtype=torch.float32)
        count = 0
        bar = tqdm(total=windows.shape[0], desc="jacobian lens", unit="window", disable=bar_disabled(progress))
        for start in range(0, windows.shape[0], cfg.batch_size):
            batch = windows[start:start + cfg.batch_size]
            total += jacobian_sums(model, batch, skip_first=cfg.skip_first, dim_batch=cfg.dim_batch,
                                   max_grad_bytes=cfg.max_grad_bytes)
            count += batch.shape[0] * (batch.shape[1] - cfg.skip_first)
            bar.update(batch.shape[0])
        bar.close()
        lens.jacobian.copy_((total / count).to(lens.jacobian.dtype))
        lens.n_positions, lens.skip_first = count, cfg.skip_first
        if attach:
            lens.attach(model)
        return lens

    # ---- persistence ---------------------------------------------------------------------
    def _tensors(self) -> dict[str, Tensor]:
        return {"jacobian": self.jacobian}

    @classmethod
    def _tensor_shapes(cls, n_layers: int, d_model: int) -> dict[str, tuple[int, ...]]:
        return {"jacobian": (n_layers, d_model, d_model)}

    def _meta(self) -> dict[str, Any]:
        return dict(n_positions=self.n_positions, skip_first=self.skip_first)

    def _restore(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        self.jacobian.copy_(tensors["jacobian"])
        self.n_positions, self.skip_first = int(meta.get("n_positions", 0)), int(meta.get("skip_first", 0))

    def __repr__(self) -> str:
        fitted = f"fitted on {self.n_positions} positions" if self.n_positions else "unfitted (identity)"
        return f"JacobianLens({self.model_name or 'model'}: {self.n_layers} layers, d_model={self.d_model}, {fitted})"


def jacobian_sums(
    model: "HookedTransformer", tokens: Int[Tensor, "batch ctx"], *, skip_first: int = 16, dim_batch: int = 64,
    max_grad_bytes: int = 2**30,
) -> Float[Tensor, "n_layers d_model d_model"]:
    """``sum over windows and source positions p >= skip_first of sum_{p'} d h_final[p'] / d h_l[p]`` for
    every lens index ``l < n_layers`` (rows: final residual, columns: layer ``l``), float32 on the head's
    device. :meth:`JacobianLens.fit` divides it by the number of (window, position) pairs."""
    n, d = n_layers_of(model), d_model_of(model)
    head = output_device(model)
    kept: dict[int, Tensor] = {}

    def leaf(act, hook):  # the embedding output becomes the graph's input, whatever the parameters require
        x = act.detach().requires_grad_(True)
        kept[0] = x
        return x

    def keep(index: int):
        def hook(act, hook):
            kept[index] = act
        return hook

    hooks = [(layer_hook_name(0, n), leaf)] + [(layer_hook_name(i, n), keep(i)) for i in range(1, n + 1)]
    out = torch.zeros(n, d, d, device=head)
    with torch.inference_mode(False), torch.enable_grad():
        with model.hooks(fwd_hooks=hooks):
            model(tokens.to(input_device(model)), stop_at_layer=n)
        final = kept[n]
        sources = [kept[i] for i in range(n)]
        # the n layers' batched gradients (and the cotangent) live at once: k of them must fit the budget
        per_dim = final.numel() * final.element_size() * (n + 1)
        dim_batch = max(1, min(dim_batch, max_grad_bytes // per_dim))
        for lo in range(0, d, dim_batch):
            k = min(dim_batch, d - lo)
            # cotangent j is one-hot at output dimension lo + j at EVERY position: its VJP at source p is
            # row lo + j of sum_{p'} d h_final[p'] / d h_l[p] (causality keeps only p' >= p)
            cot = torch.zeros(k, *final.shape, dtype=final.dtype, device=final.device)
            idx = torch.arange(k, device=final.device)
            cot[idx, ..., lo + idx] = 1.0
            grads = _batched_vjp(final, sources, cot, retain=lo + k < d)
            for i, g in enumerate(grads):
                if g is None:  # a layer the output does not depend on (cannot happen for a residual stream)
                    continue
                out[i, lo:lo + k] += g[:, :, skip_first:].float().sum((1, 2)).to(head)
    return out


def _batched_vjp(final: Tensor, sources: list[Tensor], cot: Tensor, *, retain: bool) -> list[Tensor | None]:
    """VJPs of ``final`` for the ``k`` cotangents in ``cot`` (``[k, *final.shape]``): one vmapped backward,
    or a loop of ``k`` backward passes where an op has no batching rule."""
    try:
        return list(torch.autograd.grad(final, sources, cot, retain_graph=True, is_grads_batched=True,
                                        allow_unused=True))
    except RuntimeError:
        rows = [torch.autograd.grad(final, sources, c, retain_graph=True, allow_unused=True) for c in cot]
        return [None if rows[0][i] is None else torch.stack([r[i] for r in rows]) for i in range(len(sources))]
