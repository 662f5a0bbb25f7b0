"""Train residual-stream SAEs offline through sae-lens, and measure their quality.

When no pretrained SAE can be downloaded (the bundled zoo model, an air-gapped machine) this trains
one per hook with sae-lens's own ``LanguageModelSAETrainingRunner`` on pre-tokenised sequences
(``override_model`` / ``override_dataset``, no wandb), saved in sae-lens's format so
``SAE.load_from_disk`` reads it. :func:`evaluate_sae` reports explained variance, L0, dead features
and the spliced-in language-model loss.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import torch
from jaxtyping import Int
from torch import Tensor
from tqdm.auto import tqdm

from interp.core.progress import bar_disabled
from interp.core.tokens import Truncation, check_tokens
from interp.core.validate import Check
from interp.steering.errors import SteeringConfigError, SteeringLoadError
from interp.steering.saes import check_hooks, hook_widths, sae_hook_name

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

__all__ = ["SAETrainConfig", "SAEQuality", "train_sae", "train_saes", "evaluate_sae", "hook_dir_name", "load_saes"]


@dataclass
class SAETrainConfig:
    """Knobs for one SAE. ``training_tokens`` dominates run time (about 2-4 min per 1M tokens for a
    64-wide model on 2 CPU cores)."""

    architecture: Literal["topk", "standard"] = "topk"
    d_sae: int = 512
    k: int = 16  # TopK only
    l1_coefficient: float = 5.0  # standard only
    training_tokens: int = 1_000_000
    train_batch_size_tokens: int = 1024
    lr: float = 1e-3
    lr_warm_up_steps: int = 50
    store_batch_size_prompts: int = 16
    n_batches_in_buffer: int = 8
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        c = Check(self, SteeringConfigError)
        c.choice("architecture", ("topk", "standard"))
        c.integer("d_sae", min=1)
        c.integer("k", min=1, max=self.d_sae if isinstance(self.d_sae, int) else None,
                  fix="TopK keeps k of the d_sae features per token.")
        c.number("l1_coefficient", ge=0)
        c.integer("train_batch_size_tokens", min=1)
        c.integer("training_tokens", min=self.train_batch_size_tokens,
                  fix="Train on at least one batch of train_batch_size_tokens tokens.")
        c.number("lr", gt=0, fix="Use e.g. lr=1e-3.")
        c.integer("lr_warm_up_steps", min=0)
        c.integer("store_batch_size_prompts", min=1)
        c.integer("n_batches_in_buffer", min=1)
        c.integer("seed", min=0)
        c.text("device", fix="e.g. 'cpu' or 'cuda'.")
        try:
            torch.device(self.device)
        except RuntimeError:
            c.fail("device", self.device, "a torch device name such as 'cpu', 'cuda' or 'cuda:0'")


@dataclass
class SAEQuality:
    """How well an SAE reconstructs its hook on held-out tokens."""

    hook_name: str
    explained_variance: float
    l0: float
    dead_fraction: float
    ce_clean: float
    ce_spliced: float
    ce_zero_ablation: float
    n_tokens: int

    @property
    def loss_recovered(self) -> float:
        """1 when splicing the SAE in costs nothing, 0 when it is as bad as zeroing the hook."""
        gap = self.ce_zero_ablation - self.ce_clean
        return float("nan") if gap == 0 else (self.ce_zero_ablation - self.ce_spliced) / gap

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "loss_recovered": self.loss_recovered}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.to_dict()])

    def plot(self) -> Any:
        """Next-token loss clean / spliced / zero-ablated with EV and L0 (:func:`interp.steering.plots.sae_quality_figure`)."""
        from interp.steering.plots import sae_quality_figure

        return sae_quality_figure(self)

    def __repr__(self) -> str:
        return (f"SAEQuality({self.hook_name}: EV {self.explained_variance:.3f}, L0 {self.l0:.1f}, loss recovered "
                f"{self.loss_recovered:.3f}, dead {self.dead_fraction:.1%}, {self.n_tokens} tokens)")

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False, float_format=lambda x: f"{x:.4f}")


def hook_dir_name(hook_name: str) -> str:
    """Folder name for a hook's SAE (the hook name itself: it is a valid file name)."""
    return hook_name


def _dataset(tokens: Int[Tensor, "n_seq ctx"]) -> Any:
    import datasets

    return datasets.Dataset.from_dict({"input_ids": tokens.long().tolist()})


def train_sae(
    model: "HookedTransformer",
    tokens: Int[Tensor, "n_seq ctx"],
    hook_name: str,
    config: SAETrainConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> "SAE[Any]":
    """Train one SAE on ``hook_name`` from pre-tokenised ``tokens`` with sae-lens; return the inference SAE.

    With ``out_dir`` the SAE is saved there in sae-lens's format (``cfg.json`` + ``sae_weights.safetensors``).

    Example:
        >>> sae = train_sae(model, tokens, "blocks.1.hook_resid_post", SAETrainConfig(training_tokens=200_000))  # doctest: +SKIP
    """
    from sae_lens import (SAE, LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner, LoggingConfig,
                          StandardTrainingSAEConfig, TopKTrainingSAEConfig)

    cfg = config or SAETrainConfig()
    c = Check("train_sae", SteeringConfigError)
    c.instance("config", SAETrainConfig, cfg)
    c.boolean("progress", progress)
    check_hooks(model, [hook_name])
    d_in = hook_widths(model, [hook_name])[hook_name]
    tokens = check_tokens(model, tokens, what="train_sae's tokens", min_rows=2, min_len=2)
    ctx = int(tokens.shape[1])
    # sae-lens's mixing buffer holds n_batches_in_buffer * context_size activations and must fit a batch
    n_buffer = max(cfg.n_batches_in_buffer, -(-cfg.train_batch_size_tokens // ctx) * 2)
    if cfg.architecture == "topk":
        sae_cfg: Any = TopKTrainingSAEConfig(d_in=d_in, d_sae=cfg.d_sae, k=cfg.k)
    elif cfg.architecture == "standard":
        sae_cfg = StandardTrainingSAEConfig(d_in=d_in, d_sae=cfg.d_sae, l1_coefficient=cfg.l1_coefficient)
    else:
        raise SteeringConfigError(f"architecture must be 'topk' or 'standard', got {cfg.architecture!r}.")
    tmp = Path(out_dir) if out_dir is not None else None
    runner_cfg = LanguageModelSAERunnerConfig(
        sae=sae_cfg, model_name=getattr(model.cfg, "model_name", "model"), hook_name=hook_name,
        dataset_path="pretokenised", is_dataset_tokenized=True, streaming=False, context_size=ctx,
        training_tokens=cfg.training_tokens, train_batch_size_tokens=cfg.train_batch_size_tokens,
        store_batch_size_prompts=cfg.store_batch_size_prompts, n_batches_in_buffer=n_buffer, lr=cfg.lr,
        lr_warm_up_steps=cfg.lr_warm_up_steps, seed=cfg.seed, device=cfg.device, prepend_bos=False,
        logger=LoggingConfig(log_to_wandb=False), output_path=str(tmp) if tmp else None, checkpoint_path=None,
        n_checkpoints=0, verbose=progress, n_batches_for_norm_estimate=10, dead_feature_window=200,
        feature_sampling_window=500, exclude_special_tokens=False,
    )
    sae_logger = logging.getLogger("sae_lens")
    level = sae_logger.level
    sae_logger.setLevel(logging.ERROR)  # the override warnings are expected here
    try:
        with _quiet_sae_lens():
            runner = LanguageModelSAETrainingRunner(runner_cfg, override_dataset=_dataset(tokens), override_model=model)
            trained = runner.run()
    finally:
        sae_logger.setLevel(level)
    if tmp is not None:
        sae = _load_sae_folder(tmp, cfg.device)
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            trained.save_inference_model(folder)
            sae = _load_sae_folder(Path(folder), cfg.device)
    sae.cfg.metadata.hook_name = hook_name
    return sae.eval()


def train_saes(
    model: "HookedTransformer",
    tokens: Int[Tensor, "n_seq ctx"],
    hooks: Sequence[str],
    config: SAETrainConfig | None = None,
    *,
    out_root: str | Path | None = None,
    eval_tokens: Int[Tensor, "n_seq ctx"] | None = None,
    progress: bool = True,
) -> dict[str, "SAE[Any]"]:
    """One SAE per hook (``out_root/<hook_name>/``); with ``eval_tokens`` each folder also gets ``quality.json``."""
    c = Check("train_saes", SteeringConfigError)
    hooks = c.strings("hooks", hooks, min_len=1)
    c.instance("config", SAETrainConfig, config, optional=True)
    tokens = check_tokens(model, tokens, what="train_saes's tokens", min_rows=2, min_len=2)
    if eval_tokens is not None:
        eval_tokens = check_tokens(model, eval_tokens, what="train_saes's eval_tokens", min_len=2)
    check_hooks(model, hooks)
    out: dict[str, Any] = {}
    for hook in tqdm(list(hooks), desc="train SAEs", disable=bar_disabled(progress)):
        folder = Path(out_root) / hook_dir_name(hook) if out_root is not None else None
        t0 = time.perf_counter()
        out[hook] = train_sae(model, tokens, hook, config, out_dir=folder, progress=progress)
        seconds = time.perf_counter() - t0
        if folder is not None:
            for extra in ("runner_cfg.json",):  # keep the folder small: cfg + weights (+ sparsity)
                (folder / extra).unlink(missing_ok=True)
            info: dict[str, Any] = {"hook_name": hook, "train_seconds": round(seconds, 1),
                                    "config": asdict(config or SAETrainConfig()), "n_train_sequences": len(tokens),
                                    "context_size": int(tokens.shape[1])}
            if eval_tokens is not None:
                info["quality"] = evaluate_sae(model, out[hook], eval_tokens).to_dict()
            (folder / "quality.json").write_text(json.dumps(info, indent=1))
    return out


@torch.no_grad()
def evaluate_sae(
    model: "HookedTransformer", sae: "SAE[Any]", tokens: Int[Tensor, "n_seq ctx"], *, batch_size: int = 32,
    include_bos: bool = False, truncate: Truncation | None = None,
) -> SAEQuality:
    """Explained variance, L0, dead features and next-token loss with the SAE's reconstruction spliced
    in (vs clean and vs zeroing the hook), on ``tokens``, with interp's one splice rule
    (:mod:`interp.core.splice`): BOS positions, whose residual is an outlier SAEs are not trained to
    reconstruct, keep their real activation and stay out of the reconstruction statistics (unless
    ``include_bos``); every prediction with a real target counts in the losses."""
    from interp.core.splice import SpliceSums, splice_positions, spliced_losses
    from interp.core.tokens import bos_token_id, pad_token_id

    c = Check("evaluate_sae", SteeringConfigError)
    c.integer("batch_size", batch_size, min=1)
    c.boolean("include_bos", include_bos)
    hook = sae_hook_name(sae)
    check_hooks(model, [hook])
    if int(sae.cfg.d_in) != hook_widths(model, [hook])[hook]:
        raise SteeringConfigError(f"The SAE has d_in={sae.cfg.d_in} but {hook} carries vectors of width "
                                  f"{hook_widths(model, [hook])[hook]}: it was trained for another model.")
    tokens = check_tokens(model, tokens, what="evaluate_sae's tokens", truncate=truncate, min_len=2)
    tok = getattr(model, "tokenizer", None)
    bos = bos_token_id(tok)
    pad = pad_token_id(tok) if tok is not None and tok.pad_token_id is not None else None
    sse, sum_x2, n_tok, l0_sum = 0.0, 0.0, 0, 0.0
    sum_x = torch.zeros(sae.cfg.d_in, dtype=torch.float64)
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    losses = SpliceSums()
    for i in range(0, len(tokens), batch_size):
        batch = tokens[i : i + batch_size].to(model.cfg.device)
        where = splice_positions(batch, bos_token_id=bos, pad_token_id=pad, include_bos=include_bos)
        stats: dict[str, Tensor] = {}

        def reconstruct(act: Tensor) -> Tensor:
            feats = sae.encode(act.float())
            stats.update(x=act.float(), feats=feats)
            return sae.decode(feats)

        losses.add(spliced_losses(model, batch, hook, reconstruct, where=where, pad_token_id=pad))
        x, feats = stats["x"][where], stats["feats"][where]
        recon = sae.decode(feats)
        sse += float(((x - recon) ** 2).sum())
        sum_x += x.double().sum(0).cpu()
        sum_x2 += float((x.double() ** 2).sum())
        n_tok += x.shape[0]
        l0_sum += float((feats > 0).sum())
        fired |= (feats > 0).any(0).cpu()
    if n_tok < 2:
        raise SteeringConfigError(f"Only {n_tok} token(s) to evaluate the SAE on: every other position is BOS or "
                                  "padding, and explained variance needs at least two.")
    total_var = sum_x2 - float((sum_x**2).sum()) / n_tok
    if not total_var > 1e-12 * max(sum_x2, 1e-30):
        raise SteeringConfigError(f"The activations at {hook} have no variance over the {n_tok} evaluated tokens, so "
                                  "explained variance is undefined; evaluate on varied text.")
    clean, spliced, ablated = losses.means()
    return SAEQuality(hook, 1 - sse / total_var, l0_sum / n_tok, float((~fired).float().mean()),
                      clean, spliced, ablated, n_tok)


_SAE_WEIGHTS = "sae_weights.safetensors"


@contextlib.contextmanager
def _quiet_sae_lens() -> Iterator[None]:
    """Filter, only around our calls into sae-lens, the warnings that do not apply to interp's use of it."""
    with warnings.catch_warnings():
        # every SAE built with model_from_pretrained_kwargs advises loading the host with
        # from_pretrained_no_processing; interp's models already carry raw weights (processing="none")
        warnings.filterwarnings("ignore", message=r"\s*This SAE has non-empty model_from_pretrained_kwargs")
        # sae-lens's own tensor copy inside its activation store: nothing the caller can change
        warnings.filterwarnings("ignore", message="To copy construct from a tensor", category=UserWarning)
        yield


def _load_sae_folder(folder: Path, device: str) -> "SAE[Any]":
    """One sae-lens folder, every file checked before sae-lens reads it (its own errors do not say which
    file is bad): ``cfg.json`` parses and gives ``d_in``/``d_sae``/``hook_name``, the weights open and
    ``W_dec`` is ``[d_sae, d_in]``."""
    from safetensors import SafetensorError, safe_open
    from sae_lens import SAE

    cfg_path, w_path = folder / "cfg.json", folder / _SAE_WEIGHTS
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise SteeringLoadError(f"{p} is missing: {folder} is not a complete sae-lens SAE folder (it needs "
                                    f"cfg.json and {_SAE_WEIGHTS}); retrain it with train_saes(...).")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SteeringLoadError(f"{cfg_path} is not valid JSON ({err}); the SAE folder is damaged.") from err
    if not isinstance(cfg, dict) or not all(isinstance(cfg.get(k), int) and cfg[k] > 0 for k in ("d_in", "d_sae")):
        raise SteeringLoadError(f"{cfg_path} does not describe an SAE: it needs positive integers d_in and d_sae.")
    hook = (cfg.get("metadata") or {}).get("hook_name") or cfg.get("hook_name")
    if not hook:
        raise SteeringLoadError(f"{cfg_path} names no hook (metadata.hook_name); interp needs it to place the SAE.")
    try:
        with safe_open(str(w_path), framework="pt") as f:  # checks the header against the file size
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError, ValueError) as err:
        raise SteeringLoadError(f"{w_path} is corrupt or truncated ({err}); retrain or re-copy the SAE.") from err
    want = (cfg["d_sae"], cfg["d_in"])
    if shapes.get("W_dec") != want:
        raise SteeringLoadError(f"{w_path} does not match {cfg_path.name}: W_dec has shape {shapes.get('W_dec')}, "
                                f"expected {want} (d_sae, d_in); the folder mixes two SAEs.")
    try:
        with _quiet_sae_lens():
            return SAE.load_from_disk(str(folder), device=device)
    except Exception as err:  # sae-lens raises many types for a damaged folder
        raise SteeringLoadError(f"sae-lens could not load {folder} ({type(err).__name__}: {err}).") from err


def load_saes(root: str | Path, hooks: Sequence[str] | None = None, device: str = "cpu") -> dict[str, "SAE[Any]"]:
    """Load every SAE saved under ``root/<hook_name>/`` (sae-lens format), keyed by its own hook name."""
    from sae_lens import SAE

    root = Path(root)
    folders = sorted(p for p in root.iterdir() if (p / "cfg.json").is_file()) if root.is_dir() else []
    if hooks is not None:
        folders = [root / hook_dir_name(h) for h in hooks]
        missing = [str(f) for f in folders if not (f / "cfg.json").is_file()]
        if missing:
            raise FileNotFoundError(f"No saved SAE in {missing}; train them with train_saes(..., out_root={str(root)!r}).")
    if not folders:
        raise FileNotFoundError(
            f"No SAEs under {str(root)!r}. Train them with interp.steering.sae_training.train_saes(...) "
            "(a few minutes on CPU for a small model) or pass sae_lens SAEs you have."
        )
    out = {}
    for f in folders:
        sae = _load_sae_folder(f, device)
        out[sae_hook_name(sae)] = sae.eval()
    return out
