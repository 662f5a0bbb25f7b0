"""Tuned lens (Belrose et al. 2023, "Eliciting Latent Predictions from Transformers with the Tuned
Lens"): one affine translator per layer, initialised to the identity and trained so that
decoding the translated residual matches the model's final distribution (KL divergence).

No pretrained lenses exist for most models people probe, so training is one short call. The default
recipe is the tuned-lens package's (SGD with Nesterov momentum in its lr units, linear decay, gradient
clipping at 1, weight decay 1e-3, the sum over layers of each layer's KL) at twice its learning rate,
which at this library's small budgets (a few hundred steps of a few windows) gives a lower held-out KL
at every layer; ``bench/tuned.py`` measures it against the package on the same tokens, and
``bench/studies/tuned_recipe.py`` compares the recipes. The loss never materialises log-softmaxes: one
hand-written KL with two unembedding matmuls per chunk of rows (bf16 where the hardware has it, as the
package's autocast), its backward chunk by chunk so memory stays bounded by the chunk.
Saved as safetensors (weights) + JSON (shapes, model name, training record).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.core.frontend import d_model as d_model_of
from interp.core.frontend import final_norm, input_device, output_device, output_softcap, unembed_weights, vocab_size
from interp.core.frontend import n_layers as n_layers_of
from interp.core.errors import missing_file
from interp.core.progress import bar_disabled
from interp.core.tokens import Truncation, check_tokens
from interp.core.validate import Check
from interp.lens.errors import LensConfigError, LensLoadError
from interp.lens.layers import layer_hook_name

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

_ATTACHED: "weakref.WeakKeyDictionary[nn.Module, TunedLens]" = weakref.WeakKeyDictionary()
WEIGHTS_FILE = "tuned_lens.safetensors"
CONFIG_FILE = "tuned_lens.json"


def attached_lens(model: "HookedTransformer") -> "TunedLens | None":
    """The tuned lens attached to ``model`` (what ``lens="tuned"`` uses), if any."""
    return _ATTACHED.get(model)


Optimizer = Literal["sgd", "adam"]
Schedule = Literal["linear", "constant"]
Precision = Literal["auto", "float32", "bfloat16"]


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


class TunedLens(nn.Module):
    """Per-layer translators ``x -> x + x @ A_l + b_l`` for lens indices ``0..n_layers-1``.

    The last index (the model's output) has no translator, so it still equals the logits.

    Example:
        >>> lens = TunedLens.train(model, tokens, TunedLensConfig(steps=200))   # doctest: +SKIP
        >>> decode_layers(model, "Once upon", lens="tuned")                     # doctest: +SKIP
        >>> lens.save("out/lens"); TunedLens.load("out/lens", model)            # doctest: +SKIP
    """

    def __init__(self, n_layers: int, d_model: int, *, model_name: str = "", dtype=torch.float32):
        super().__init__()
        self.n_layers = n_layers
        self.d_model = d_model
        self.model_name = model_name
        # zero init = identity translator: training starts from the logit lens
        self.weight = nn.Parameter(torch.zeros(n_layers, d_model, d_model, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(n_layers, d_model, dtype=dtype))
        self.history: list[float] = []
        self.train_config: dict | None = None

    @classmethod
    def for_model(cls, model: "HookedTransformer") -> "TunedLens":
        return cls(n_layers_of(model), d_model_of(model), model_name=str(getattr(model.cfg, "model_name", ""))).to(
            output_device(model)
        )

    def check_model(self, model: "HookedTransformer") -> None:
        if (n_layers_of(model), d_model_of(model)) != (self.n_layers, self.d_model):
            raise LensConfigError(
                f"This tuned lens was made for n_layers={self.n_layers}, d_model={self.d_model} "
                f"({self.model_name or 'unnamed model'}); the model has n_layers={n_layers_of(model)}, "
                f"d_model={d_model_of(model)}. Train a lens for this model with TunedLens.train(model, tokens)."
            )

    def attach(self, model: "HookedTransformer") -> "TunedLens":
        """Make this the lens ``decode_layers(..., lens="tuned")`` uses for ``model``."""
        self.check_model(model)
        _ATTACHED[model] = self
        return self

    def translate(
        self, resid: Float[Tensor, "batch n_sel n_pos d_model"], layers: Sequence[int]
    ) -> Float[Tensor, "batch n_sel n_pos d_model"]:
        """Apply the translators of lens indices ``layers`` (the last index passes unchanged)."""
        W = torch.cat([self.weight, torch.zeros_like(self.weight[:1])])  # index n_layers = identity
        b = torch.cat([self.bias, torch.zeros_like(self.bias[:1])])
        idx = torch.as_tensor(list(layers), device=W.device)
        x = resid.to(W.dtype)
        return x + torch.einsum("bspd,sde->bspe", x, W[idx]) + b[idx][None, :, None, :]

    # ---- training ------------------------------------------------------------------------
    @staticmethod
    def _token_windows(model: "HookedTransformer", data, ctx: int, truncate: Truncation | None = None
                       ) -> Int[Tensor, "n ctx"]:
        if isinstance(data, Tensor):
            return check_tokens(model, data, what="the tuned lens's training tokens", truncate=truncate, min_len=1)
        texts = [data] if isinstance(data, str) else list(data) if hasattr(data, "__iter__") else []
        if not texts or not all(isinstance(t, str) for t in texts):
            raise LensConfigError("Training data must be a [n, ctx] token tensor or a non-empty list of strings.")
        from interp.core.activations import text_tokens

        # BOS-first windows, as the model sees text: without the BOS the first positions are off-distribution
        return text_tokens(model, texts, ctx)

    def kl_by_layer(self, model: "HookedTransformer", tokens: Int[Tensor, "n ctx"]) -> Float[Tensor, "n_layers"]:
        """Mean KL(final || this lens) per lens index ``0..n_layers-1`` on ``tokens``."""
        return kl_by_layer(model, tokens, self)

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
        windows = cls._token_windows(model, data, ctx, truncate)
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
    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"weight": self.weight.detach().cpu().contiguous(), "bias": self.bias.detach().cpu().contiguous()},
                  str(folder / WEIGHTS_FILE))
        meta = dict(n_layers=self.n_layers, d_model=self.d_model, model_name=self.model_name,
                    format="interp.tuned_lens/1", train_kl_history=self.history[-50:], train_config=self.train_config)
        (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path, model: "HookedTransformer | None" = None, *, attach: bool = True) -> "TunedLens":
        from safetensors.torch import load_file

        from safetensors import SafetensorError

        folder = Path(folder)
        cfg_path, w_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        if not w_path.is_file() or not cfg_path.is_file():
            absent = ", ".join(p.name for p in (cfg_path, w_path) if not p.is_file())
            raise missing_file(LensLoadError,
                               f"{folder} is not a saved tuned lens: it needs {WEIGHTS_FILE} and {CONFIG_FILE} (written "
                               f"by TunedLens.save); missing {absent}.")
        try:
            meta = json.loads(cfg_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise LensLoadError(f"{cfg_path} is not valid JSON ({err}); save the lens again.") from err
        if not isinstance(meta, dict) or not all(isinstance(meta.get(k), int) and meta[k] > 0 for k in ("n_layers", "d_model")):
            raise LensLoadError(f"{cfg_path} does not describe a tuned lens: it needs positive integers n_layers and "
                                "d_model (written by TunedLens.save).")
        n, d = meta["n_layers"], meta["d_model"]
        try:
            tensors = load_file(str(w_path))
        except (SafetensorError, OSError, RuntimeError, ValueError) as err:
            raise LensLoadError(f"{w_path} is corrupt or truncated ({err}); save the lens again.") from err
        shapes = {k: tuple(v.shape) for k, v in tensors.items()}
        if shapes.get("weight") != (n, d, d) or shapes.get("bias") != (n, d):
            raise LensLoadError(f"{w_path} does not match {CONFIG_FILE} (n_layers={n}, d_model={d}): it holds {shapes}; "
                                "the folder mixes two lenses.")
        if not all(torch.isfinite(t).all() for t in tensors.values()):
            raise LensLoadError(f"{w_path} holds NaN or inf weights: the lens diverged when it was trained.")
        lens = cls(n, d, model_name=meta.get("model_name", ""))
        if model is not None:
            lens.check_model(model)  # before anything is attached
        lens.load_state_dict({"weight": tensors["weight"], "bias": tensors["bias"]})
        if model is not None:
            lens.check_model(model)
            lens.to(output_device(model))
            if attach:
                lens.attach(model)
        return lens


def batch_order(n_windows: int, steps: int, batch_size: int, seed: int = 0) -> Int[Tensor, "steps batch"]:
    """Which token windows each training step of :meth:`TunedLens.train` reads (public so that a comparison
    can feed another trainer exactly the same batches in the same order)."""
    gen = torch.Generator().manual_seed(seed)
    b = min(batch_size, n_windows)
    return torch.randint(0, n_windows, (steps, b), generator=gen) if steps else torch.zeros(0, b, dtype=torch.long)


def kl_by_layer(
    model: "HookedTransformer", tokens: Int[Tensor, "n ctx"], lens: "TunedLens | None" = None, *, rows_chunk: int = 4096
) -> Float[Tensor, "n_layers"]:
    """Mean KL(model's final distribution || lens distribution) per lens index ``0..n_layers-1``;
    ``lens=None`` measures the plain logit lens (how unfaithful it is, layer by layer)."""
    tokens = check_tokens(model, tokens)
    Check("kl_by_layer", LensConfigError).integer("rows_chunk", rows_chunk, min=1)
    if lens is not None:
        lens.check_model(model)
    with torch.no_grad():
        resid, final_lp = _residuals_and_final(model, tokens.to(input_device(model)))
        return _kl_per_layer(model, lens, resid, final_lp, rows_chunk).cpu()


def _residuals_and_final(model: "HookedTransformer", tokens: Tensor):
    """Residuals at lens indices 0..n_layers-1 ([batch*pos, n_layers, d]) and the final log-probs."""

    n = n_layers_of(model)
    names = [layer_hook_name(i, n) for i in range(n)]
    logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    head = output_device(model)  # a split model's layers live on several devices
    resid = torch.stack([cache[name].to(head) for name in names], dim=2)  # [batch, pos, n_layers, d]
    resid = resid.reshape(-1, n, resid.shape[-1])
    final_lp = logits.reshape(-1, logits.shape[-1]).to(head).float().log_softmax(-1)
    return resid, final_lp


def _rows_chunk(model, n_layers: int, rows_chunk: int) -> int:
    # bound the [n_layers, rows, vocab] logit block to ~2**27 floats (512 MiB) for big vocabularies
    return max(1, min(rows_chunk, 2**27 // (n_layers * vocab_size(model))))


def _bf16_matmuls(device: torch.device) -> bool:
    """Whether bfloat16 matmuls are native (fast) here: CUDA with bf16 support, or a CPU oneDNN can use."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def unembedding_for_loss(model, precision: Precision = "auto") -> Tensor:
    """``W_U`` in the dtype of the loss's matmuls (the model's own tensor when it already has that dtype)."""
    W_U = unembed_weights(model)[0]
    if precision == "auto":
        precision = "bfloat16" if _bf16_matmuls(W_U.device) else "float32"
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    return W_U if W_U.dtype == dtype else W_U.detach().to(dtype)


def _mm(a: Tensor, W: Tensor) -> Tensor:
    """``a @ W`` computed in ``W``'s dtype, the result in ``a``'s."""
    return a @ W if W.dtype == a.dtype else (a.to(W.dtype) @ W).to(a.dtype)


class _LensKL(torch.autograd.Function):
    """KL(p || softmax(h W_U + b_U)) per layer and row, with a lean hand-written backward.

    KL = sum_v p log p + logsumexp(z) - p . z, and p . z = h . (W_U p) + p . b_U, so the only
    [layers, rows, vocab] tensor is z itself, turned in place into exp(z - max) and kept for the
    backward: dKL/dh = softmax(z) W_U^T - W_U p. Two matmuls with W_U (in ``W``'s dtype) and three
    passes over z, against about ten for autograd through log_softmax (measured by bench/tuned.py)."""

    @staticmethod
    def forward(ctx, h, W, b_U, p, neg_entropy):  # h [n, rows, d], W [d, vocab], p [rows, vocab], neg_entropy [rows]
        n, rows, d = h.shape
        z = _mm(h.reshape(n * rows, d), W).add_(b_U).view(n, rows, -1)
        m = z.amax(-1, keepdim=True)
        e = z.sub_(m).exp_()  # z is not needed again: p . z comes from t below
        s = e.sum(-1)
        t = _mm(p, W.T)  # [rows, d]: W_U p for every row
        kl = neg_entropy + m[..., 0] + s.log() - (h * t).sum(-1) - p @ b_U.to(p.dtype)
        ctx.save_for_backward(e, s, t, W)
        return kl

    @staticmethod
    def backward(ctx, g):  # g [n, rows]
        e, s, t, W = ctx.saved_tensors
        n, rows, vocab = e.shape
        soft_w = _mm(e.view(n * rows, vocab), W.T).view(n, rows, -1) / s[..., None]  # softmax(z) W_U^T
        return (soft_w - t) * g[..., None], None, None, None, None


def _chunk_kl(model, lens: "TunedLens | None", x: Tensor, final_lp: Tensor, W_mm: Tensor | None = None) -> Tensor:
    """KL(final || lens) of every layer and row of one chunk: ``x`` is [n_layers, rows, d]; ``W_mm`` is
    ``W_U`` in the dtype of the matmuls (default: as the model holds it)."""
    if isinstance(lens, TunedLens):  # x + x A_l + b_l for every layer in one batched matmul
        x = x.to(lens.weight.dtype)
        x = x + torch.baddbmm(lens.bias[:, None, :], x, lens.weight)
    elif lens is not None:  # any other lens (the Jacobian lens): its own translate, [b, sel, pos, d]
        x = lens.translate(x[None], list(range(x.shape[0])))[0]
    norm = final_norm(model)
    h = norm(x) if norm is not None else x
    W_U, b = unembed_weights(model)
    W = W_U if W_mm is None else W_mm
    b_U = b.float() if b is not None else torch.zeros(W.shape[1], device=W.device)
    p = final_lp.exp()
    neg_entropy = (p * final_lp).sum(-1)  # [rows]
    cap = output_softcap(model)
    if cap <= 0:
        return _LensKL.apply(h.float().contiguous(), W, b_U, p, neg_entropy)
    # soft-capped logits (Gemma-2): plain autograd through the cap
    z = cap * torch.tanh(_mm(h.float(), W).add_(b_U) / cap)
    return neg_entropy[None] + torch.logsumexp(z, -1) - (z * p[None]).sum(-1)


def _kl_per_layer(model, lens: "TunedLens | None", resid: Tensor, final_lp: Tensor, rows_chunk: int,
                  *, backward: bool = False, W_mm: Tensor | None = None) -> Tensor:
    """Mean KL per layer over the rows of ``resid`` ([rows, n_layers, d]). With ``backward``, the gradient
    of the sum over layers of these means is accumulated chunk by chunk (memory bounded by the chunk),
    and the detached means are returned."""
    rows, n = resid.shape[0], resid.shape[1]
    total = torch.zeros(n, device=resid.device)
    step = _rows_chunk(model, n, rows_chunk)
    for start in range(0, rows, step):
        x = resid[start:start + step].transpose(0, 1)  # [n, rows_chunk, d]
        kl = _chunk_kl(model, lens, x, final_lp[start:start + step], W_mm).sum(-1) / rows  # [n]
        if backward:
            kl.sum().backward()  # every translator gets its own layer's gradient (a sum, not a mean)
            kl = kl.detach()
        total = total + kl
    return total


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
