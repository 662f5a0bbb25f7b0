"""Tuned lens (Belrose et al. 2023, "Eliciting Latent Predictions from Transformers with the Tuned
Lens"): one affine translator per layer, initialised to the identity and trained so that
decoding the translated residual matches the model's final distribution (KL divergence).

No pretrained lenses exist for most models people probe, so training is one short call. The default
recipe is the tuned-lens package's (SGD with Nesterov momentum in its lr units, linear decay, gradient
clipping at 1, weight decay 1e-3, the sum over layers of each layer's KL) at twice its learning rate,
which at this library's small budgets (a few hundred steps of a few windows) gives a lower held-out KL
at every layer; ``bench/tuned.py`` measures it against the package on the same tokens, and
``bench/studies/tuned_recipe.py`` compares the recipes. The loss (:mod:`interp.lens.kl`) never
materialises log-softmaxes, and memory stays bounded by a chunk of rows. Attachment and persistence
(safetensors + JSON) are :class:`~interp.lens.fitted.FittedLens`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.core.frontend import input_device
from interp.core.progress import bar_disabled
from interp.core.tokens import Truncation
from interp.core.validate import Check
from interp.lens.errors import LensConfigError
from interp.lens.fitted import FittedLens, token_windows
from interp.lens.kl import Precision, _kl_per_layer, _residuals_and_final, kl_by_layer, unembedding_for_loss

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["TunedLens", "TunedLensConfig", "attached_lens", "batch_order", "kl_by_layer"]

WEIGHTS_FILE = "tuned_lens.safetensors"
CONFIG_FILE = "tuned_lens.json"


def attached_lens(model: "HookedTransformer") -> "TunedLens | None":
    """The tuned lens attached to ``model`` (what ``lens="tuned"`` uses), if any."""
    return TunedLens.attached(model)


Optimizer = Literal["sgd", "adam"]
Schedule = Literal["linear", "constant"]


@dataclass
class TunedLensConfig:
    """Training knobs of :meth:`TunedLens.train` (the defaults are measured by ``bench/tuned.py``).

    Attributes:
        steps: optimizer steps; each reads ``batch_size`` token windows (one forward pass of the model).
        batch_size: token windows per step.
        optimizer: ``"sgd"`` (SGD with Nesterov momentum) or ``"adam"`` (AdamW).
        lr: the learning rate. For SGD it is in the units the tuned-lens package uses: PyTorch's
            momentum buffer scales steps by ``1 / (1 - momentum)``, so the optimizer gets
            ``lr * (1 - momentum)`` and 1.0 is a unit step. For Adam it is Adam's own rate.
        momentum: SGD momentum, or Adam's beta1.
        weight_decay: decoupled for Adam, L2 for SGD; it pulls each translator towards the identity.
        warmup_steps: steps of linear learning-rate warmup from 0.
        schedule: after the warmup, ``"linear"`` decay to 0 at the last step, or ``"constant"``.
        clip_grad_norm: clip the gradient's global norm to this (None: no clipping).
        loss_precision: dtype of the loss's two matmuls with the unembedding (log-sum-exp and
            everything else stay float32): ``"bfloat16"`` (as tuned-lens's bf16 autocast; several
            times faster where the hardware has bf16 matmuls), ``"float32"``, or ``"auto"``: bfloat16
            on a CUDA device with bf16 support or a CPU with native bf16 matmuls, else float32.
        seed: order of the token windows.
        vocab_chunk_rows: rows unembedded at once in the loss (memory bound for large vocabularies).
    """

    steps: int = 250
    batch_size: int = 8
    optimizer: Optimizer = "sgd"
    lr: float = 2.0
    momentum: float = 0.9
    weight_decay: float = 1e-3
    warmup_steps: int = 0
    schedule: Schedule = "linear"
    clip_grad_norm: float | None = 1.0
    loss_precision: Precision = "auto"
    seed: int = 0
    vocab_chunk_rows: int = 4096

    def recipe(self) -> str:
        """The recipe in words (the README quotes the defaults' sentence; a test keeps them equal)."""
        if self.optimizer == "sgd":
            opt = f"SGD with Nesterov momentum {self.momentum:g} at lr {self.lr:g} (tuned-lens units)"
        else:
            opt = f"AdamW (beta1 {self.momentum:g}) at lr {self.lr:g}"
        warm = f"{self.warmup_steps} warmup steps, then " if self.warmup_steps else ""
        sched = "linear decay to 0" if self.schedule == "linear" else "a constant rate"
        clip = f"gradient norm clipped at {self.clip_grad_norm:g}" if self.clip_grad_norm else "no clipping"
        return (f"{opt}, weight decay {self.weight_decay:g}, {warm}{sched}, {clip}, identity start, the sum over "
                f"layers of each layer's mean KL, {self.steps} steps of {self.batch_size} windows, loss matmuls in "
                f"{self.loss_precision} precision")

    def __post_init__(self) -> None:
        c = Check(self, LensConfigError)
        c.integer("steps", min=1, fix="A lens needs at least one optimizer step (300 is the default).")
        c.integer("batch_size", min=1)
        c.number("lr", gt=0, fix="Use e.g. lr=1e-3.")
        c.number("weight_decay", ge=0)
        c.integer("seed", min=0)
        c.integer("vocab_chunk_rows", min=1)
        c.choice("optimizer", get_args(Optimizer))
        c.choice("schedule", get_args(Schedule))
        c.choice("loss_precision", get_args(Precision))
        c.number("momentum", ge=0, lt=1, fix="SGD momentum / Adam's beta1; the default is 0.9.")
        c.integer("warmup_steps", min=0)
        c.number("clip_grad_norm", gt=0, optional=True, fix="None turns clipping off.")


class TunedLens(FittedLens):
    """Per-layer translators ``x -> x + x @ A_l + b_l`` for lens indices ``0..n_layers-1``.

    The last index (the model's output) has no translator, so it still equals the logits.

    Example:
        >>> lens = TunedLens.train(model, tokens, TunedLensConfig(steps=200))   # doctest: +SKIP
        >>> decode_layers(model, "Once upon", lens="tuned")                     # doctest: +SKIP
        >>> lens.save("out/lens"); TunedLens.load("out/lens", model)            # doctest: +SKIP
    """

    kind = "tuned"
    title = "tuned lens"
    weights_file = WEIGHTS_FILE
    config_file = CONFIG_FILE
    format = "interp.tuned_lens/1"
    make_hint = "Train a lens for this model with TunedLens.train(model, tokens)."
    nonfinite_hint = "the lens diverged when it was trained."

    def __init__(self, n_layers: int, d_model: int, *, model_name: str = "", dtype=torch.float32):
        super().__init__(n_layers, d_model, model_name=model_name)
        # zero init = identity translator: training starts from the logit lens
        self.weight = nn.Parameter(torch.zeros(n_layers, d_model, d_model, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(n_layers, d_model, dtype=dtype))
        self.history: list[float] = []
        self.train_config: dict | None = None

    def translate(
        self, resid: Float[Tensor, "batch n_sel n_pos d_model"], layers: Sequence[int]
    ) -> Float[Tensor, "batch n_sel n_pos d_model"]:
        """Apply the translators of lens indices ``layers`` (the last index passes unchanged)."""
        W = torch.cat([self.weight, torch.zeros_like(self.weight[:1])])  # index n_layers = identity
        b = torch.cat([self.bias, torch.zeros_like(self.bias[:1])])
        idx = torch.as_tensor(list(layers), device=W.device)
        x = resid.to(W.dtype)
        return x + torch.einsum("bspd,sde->bspe", x, W[idx]) + b[idx][None, :, None, :]

    def translate_all(self, x: Float[Tensor, "n_layers rows d_model"]) -> Float[Tensor, "n_layers rows d_model"]:
        x = x.to(self.weight.dtype)  # x + x A_l + b_l for every layer in one batched matmul
        return x + torch.baddbmm(self.bias[:, None, :], x, self.weight)

    # ---- training ------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        model: "HookedTransformer",
        data: Int[Tensor, "n ctx"] | Sequence[str] | str,
        config: TunedLensConfig | None = None,
        *,
        ctx: int = 64,
        progress: bool = True,
        attach: bool = True,
        truncate: Truncation | None = None,
    ) -> "TunedLens":
        """Train a tuned lens on token windows, or on texts packed into BOS-first ``ctx``-token windows
        (:func:`interp.core.activations.text_tokens`). Train on held-out text, never on the prompts
        you will probe. Each model parameter's ``requires_grad`` is restored as it was; the model's
        weights are never changed. Token windows wider than the model's context are refused unless
        ``truncate`` says which end to drop."""
        cfg = config or TunedLensConfig()
        c = Check("TunedLens.train", LensConfigError)
        c.instance("config", TunedLensConfig, cfg)
        c.integer("ctx", ctx, min=2, fix="A text window is BOS plus at least one token.")
        c.boolean("progress", progress)
        c.boolean("attach", attach)
        windows = token_windows(model, data, ctx, truncate, what="the tuned lens's training tokens")
        lens = cls.for_model(model)
        order = batch_order(windows.shape[0], cfg.steps, cfg.batch_size, cfg.seed)
        params = list(model.parameters())
        was = [p.requires_grad for p in params]  # the model is frozen while the lens trains
        try:
            for p in params:
                p.requires_grad_(False)
            device = input_device(model)

            def batches():
                for pick in order:
                    with torch.no_grad():
                        batch = _residuals_and_final(model, windows[pick].to(device))
                    yield batch  # outside no_grad: grad mode is global, a yield inside it would leak

            _fit(lens, model, batches(), cfg, progress=progress)
        finally:
            for p, flag in zip(params, was):  # restore each parameter as it was, even after an error
                p.requires_grad_(flag)
        lens.train_config = asdict(cfg)
        if attach:
            lens.attach(model)
        return lens

    # ---- persistence ---------------------------------------------------------------------
    def _tensors(self) -> dict[str, Tensor]:
        return {"weight": self.weight, "bias": self.bias}

    @classmethod
    def _tensor_shapes(cls, n_layers: int, d_model: int) -> dict[str, tuple[int, ...]]:
        return {"weight": (n_layers, d_model, d_model), "bias": (n_layers, d_model)}

    def _meta(self) -> dict[str, Any]:
        return dict(train_kl_history=self.history[-50:], train_config=self.train_config)

    def _restore(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        self.load_state_dict({"weight": tensors["weight"], "bias": tensors["bias"]})


def batch_order(n_windows: int, steps: int, batch_size: int, seed: int = 0) -> Int[Tensor, "steps batch"]:
    """Which token windows each training step of :meth:`TunedLens.train` reads (public so that a comparison
    can feed another trainer exactly the same batches in the same order)."""
    gen = torch.Generator().manual_seed(seed)
    b = min(batch_size, n_windows)
    return torch.randint(0, n_windows, (steps, b), generator=gen) if steps else torch.zeros(0, b, dtype=torch.long)


def _optimizer(lens: "TunedLens", cfg: TunedLensConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        # PyTorch's momentum buffer sums gradients (a 1 / (1 - momentum) gain): undo it, as tuned-lens does
        return torch.optim.SGD(lens.parameters(), lr=cfg.lr * (1 - cfg.momentum), momentum=cfg.momentum,
                               nesterov=cfg.momentum > 0, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(lens.parameters(), lr=cfg.lr, betas=(cfg.momentum, 0.999), weight_decay=cfg.weight_decay)


def _lr_factor(cfg: TunedLensConfig):
    warm, total = cfg.warmup_steps, max(cfg.steps, 1)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        return max(0.0, (total - step) / max(1, total - warm))

    return factor


def _fit(lens: "TunedLens", model, batches, cfg: TunedLensConfig, *, progress: bool = True) -> None:
    """The training loop over an iterator of ``(resid, final_lp)`` batches (one per step)."""
    from tqdm.auto import tqdm

    n_layers = lens.n_layers
    opt = _optimizer(lens, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_factor(cfg))
    W_mm = unembedding_for_loss(model, cfg.loss_precision)  # converted once, not every step
    bar = tqdm(batches, total=cfg.steps, desc="tuned lens", disable=bar_disabled(progress))
    for resid, final_lp in bar:
        opt.zero_grad(set_to_none=False)
        kl = _kl_per_layer(model, lens, resid, final_lp, cfg.vocab_chunk_rows, backward=True, W_mm=W_mm)
        if cfg.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(lens.parameters(), cfg.clip_grad_norm)
        opt.step()
        sched.step()
        lens.history.append(float(kl.sum()) / n_layers)
        bar.set_postfix(kl=f"{lens.history[-1]:.3f}")
