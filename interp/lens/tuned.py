"""Tuned lens (Belrose et al. 2023, "Eliciting Latent Predictions from Transformers with the Tuned
Lens"): one affine translator per layer, initialised to the identity and trained so that
decoding the translated residual matches the model's final distribution (KL divergence).

No pretrained lenses exist for most models people probe, so training is one short call.
Saved as safetensors (weights) + JSON (shapes, model name, training record).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.core.errors import missing_file
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


@dataclass
class TunedLensConfig:
    """Training knobs. The defaults train a lens for a small model in well under a minute."""

    steps: int = 300
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    vocab_chunk_rows: int = 4096
    """Rows unembedded at once in the loss (memory bound for large vocabularies)."""

    def __post_init__(self) -> None:
        c = Check(self, LensConfigError)
        c.integer("steps", min=1, fix="A lens needs at least one optimizer step (300 is the default).")
        c.integer("batch_size", min=1)
        c.number("lr", gt=0, fix="Use e.g. lr=1e-3.")
        c.number("weight_decay", ge=0)
        c.integer("seed", min=0)
        c.integer("vocab_chunk_rows", min=1)


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

    @classmethod
    def for_model(cls, model: "HookedTransformer") -> "TunedLens":
        return cls(model.cfg.n_layers, model.cfg.d_model, model_name=str(model.cfg.model_name)).to(
            model.cfg.device
        )

    def check_model(self, model: "HookedTransformer") -> None:
        if (model.cfg.n_layers, model.cfg.d_model) != (self.n_layers, self.d_model):
            raise LensConfigError(
                f"This tuned lens was made for n_layers={self.n_layers}, d_model={self.d_model} "
                f"({self.model_name or 'unnamed model'}); the model has n_layers={model.cfg.n_layers}, "
                f"d_model={model.cfg.d_model}. Train a lens for this model with TunedLens.train(model, tokens)."
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
        from tqdm.auto import tqdm

        from interp.core.progress import bar_disabled

        cfg = config or TunedLensConfig()
        c = Check("TunedLens.train", LensConfigError)
        c.instance("config", TunedLensConfig, cfg)
        c.integer("ctx", ctx, min=2, fix="A text window is BOS plus at least one token.")
        c.boolean("progress", progress)
        c.boolean("attach", attach)
        windows = cls._token_windows(model, data, ctx, truncate)
        lens = cls.for_model(model)
        gen = torch.Generator().manual_seed(cfg.seed)
        opt = torch.optim.AdamW(lens.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        params = list(model.parameters())
        was = [p.requires_grad for p in params]  # the model is frozen while the lens trains
        try:
            for p in params:
                p.requires_grad_(False)
            bar = tqdm(range(cfg.steps), desc="tuned lens", disable=bar_disabled(progress))
            for _ in bar:
                pick = torch.randint(0, windows.shape[0], (min(cfg.batch_size, windows.shape[0]),), generator=gen)
                with torch.no_grad():
                    resid, final_lp = _residuals_and_final(model, windows[pick].to(model.cfg.device))
                loss = _kl_per_layer(model, lens, resid, final_lp, cfg.vocab_chunk_rows).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                lens.history.append(float(loss.detach()))
                bar.set_postfix(kl=f"{lens.history[-1]:.3f}")
        finally:
            for p, flag in zip(params, was):  # restore each parameter as it was, even after an error
                p.requires_grad_(flag)
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
                    format="interp.tuned_lens/1", train_kl_history=self.history[-50:])
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
            lens.to(model.cfg.device)
            if attach:
                lens.attach(model)
        return lens


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
        resid, final_lp = _residuals_and_final(model, tokens.to(model.cfg.device))
        return _kl_per_layer(model, lens, resid, final_lp, rows_chunk).cpu()


def _residuals_and_final(model: "HookedTransformer", tokens: Tensor):
    """Residuals at lens indices 0..n_layers-1 ([batch*pos, n_layers, d]) and the final log-probs."""

    n = model.cfg.n_layers
    names = [layer_hook_name(i, n) for i in range(n)]
    logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    resid = torch.stack([cache[name] for name in names], dim=2)  # [batch, pos, n_layers, d]
    resid = resid.reshape(-1, n, resid.shape[-1])
    final_lp = logits.reshape(-1, logits.shape[-1]).float().log_softmax(-1)
    return resid, final_lp


def _kl_per_layer(model, lens: "TunedLens | None", resid: Tensor, final_lp: Tensor, rows_chunk: int) -> Tensor:
    n = resid.shape[1]
    total = torch.zeros(n, device=resid.device)
    rows = resid.shape[0]
    # bound the [n_layers, rows, vocab] log-prob block to ~2**27 floats (512 MiB) for big vocabularies
    rows_chunk = max(1, min(rows_chunk, 2**27 // (n * model.cfg.d_vocab)))
    for start in range(0, rows, rows_chunk):  # chunk rows: rows x vocab logits for every layer
        x = resid[start:start + rows_chunk][None]  # [1, rows, n, d] -> translate wants [b, sel, pos, d]
        x = x.permute(0, 2, 1, 3)
        if lens is not None:
            x = lens.translate(x, list(range(n)))
        h = model.ln_final(x[0]) if model.cfg.normalization_type is not None else x[0]
        lp = model.unembed(h).float().log_softmax(-1)  # [n, rows, vocab]
        p = final_lp[start:start + rows_chunk].exp()
        kl = (p[None] * (final_lp[start:start + rows_chunk][None] - lp)).sum(-1)  # [n, rows]
        total = total + kl.sum(-1)
    return total / rows
