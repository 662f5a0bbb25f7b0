"""Training a Lorsa on one attention layer: single process, or data parallel under torchrun.

MSE between the Lorsa output and ``hook_attn_out`` over non-BOS/pad tokens, on activations scaled
so their mean norm is sqrt(d_model); the scales are folded into the weights at the end. Adam with
warmup / constant / linear cool-down, optional K annealing and an auxiliary loss that revives dead
heads. Checkpoints hold weights, optimizer, schedule position, dead-head counters and the data
position, so an interrupted run resumes to bit-identical parameters.

Multi-process: ``torchrun --nproc_per_node=N -m interp.app.lorsa_train ...`` (gloo on CPU, NCCL on
GPUs). Every rank computes its own slice of each global batch; gradients are summed across ranks
and the loss is normalised by the *global* token count, so the update equals the single-process
one. Heads live whole on every rank (no tensor parallelism yet); the per-head parameters are the
leading axis of W_V/b_V/W_O, which is where a head-parallel split would cut.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor
from tqdm.auto import tqdm

from interp.core import frontend as fe
from interp.core.activations import ActivationStream
from interp.core.checkpoint import (CheckpointError, CheckpointMismatchError, check_data_fingerprint,
                                    check_optimizer_state, config_differences, data_fingerprint, load_optimizer_state,
                                    optimizer_state, read_checkpoint, restore_rng_state, rng_state, write_checkpoint)
from interp.core.progress import bar_disabled
from interp.core.tokens import Truncation, check_tokens
from interp.core.validate import Check
from interp.lorsa.config import LorsaConfig, LorsaConfigError, hook_names
from interp.lorsa.init import geometric_median, init_from_host, init_ov_active_subspace
from interp.lorsa.model import Lorsa

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["LorsaTrainConfig", "LorsaTrainResult", "train_lorsa", "CheckpointError", "lr_at", "k_at", "fold_normalisation", "lorsa_step"]

Init = Literal["model", "random"]
OVInit = Literal["host", "active_subspace"]
BiasInit = Literal["mean", "geometric_median"]


@dataclass
class LorsaTrainConfig:
    """Optimisation settings. ``n_steps=None`` trains one pass over the tokens.

    Initialisation options (with ``init="model"``); the authors' variants are reconstructed from their
    code (``llamascopium``'s Initializer/Trainer), not from the paper:

    - ``ov_init="active_subspace"`` (default): the authors' init (:func:`interp.lorsa.init.init_ov_active_subspace`,
      on the first batch): w_V isotropic in the parent's principal value-read subspace, w_O its OV image, all
      decoder rows of equal norm; ``"host"``: OV heads are rank-1 pieces W_V r, r W_O of their parent head's
      OV circuit (:func:`interp.lorsa.init.init_from_host`), of unequal decoder norms. On stories260K L2
      (bench/lorsa.py, 160 steps) the active subspace halves the dead heads (78 -> 38) and raises EV
      0.861 -> 0.872, at a loss recovered 0.7 points lower on seed 0 (higher on seed 1).
    - ``cooldown_frac=0.05`` (default; it was 0.2): with the active-subspace init, the same bench gives EV
      0.875, loss recovered 91.2%, 40 dead heads (seeds 1 and 2: 0.875 / 91.1% / 38 and 0.877 / 92.4% / 49),
      against the authors' trainer's 0.874 / 91.9% / 41. The authors' own run stops with the rate still at
      about a third of its peak (their init consumes 10 of its 160 batches), so a short cool-down is the
      nearer match to what their run does.
    - ``bias_init="mean"``: b_D is the mean target of the first batch (kept tokens); ``"geometric_median"``:
      their Weiszfeld geometric median (:func:`interp.lorsa.init.geometric_median`). Note the authors'
      ``bias_init_method="geometric_median"`` in fact sets the *mean* (over every token of the batch).
    - ``aux_detach=False``: the AuxK term fits y - y_hat without detaching it, as the authors' code does,
      so it also pulls the main reconstruction; ``True`` (default) gives it only to the dead heads.

    Example:
        >>> LorsaTrainConfig(batch_size=8, lr=1e-3, n_steps=600).warmup_steps
        30
    """

    batch_size: int = 8  # sequences per global step
    n_steps: int | None = None
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_frac: float = 0.05
    cooldown_frac: float = 0.05
    k_anneal_frac: float = 0.0  # anneal top-K from k_start to cfg.top_k over this fraction of steps
    k_start: int | None = None
    init: Init = "model"
    ov_init: OVInit = "active_subspace"  # OV heads with init="model": rank-1 pieces of the parent's OV, or the authors' active subspace
    bias_init: BiasInit = "mean"  # b_D from the first batch's targets: their mean or their geometric median
    aux_detach: bool = True  # AuxK fits the detached residual (False: the authors' code, gradient into the main output too)
    decoder_scales: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)  # searched at init on the first batch
    aux_coef: float = 1 / 32  # auxiliary loss reviving dead heads (0 turns it off)
    aux_k: int | None = None  # dead heads used by the auxiliary loss (default 2 * top_k)
    dead_after_tokens: int = 50_000  # a head silent this long counts as dead
    grad_clip: float | None = 1.0
    seed: int = 0
    buffer_sequences: int = 256
    model_batch_size: int = 64
    norm_sequences: int = 32  # sequences used to estimate the normalisation scales
    pad_token_id: int | None = None
    bos_token_id: int | None = None  # default: the tokenizer's
    checkpoint_dir: str | None = None
    checkpoint_every: int = 200
    resume: bool = True
    log_every: int = 50
    progress: bool = True

    def __post_init__(self) -> None:
        c = Check(self, LorsaConfigError)
        c.integer("batch_size", min=1)
        c.integer("n_steps", min=1, optional=True, fix="None trains one pass over the tokens.")
        c.number("lr", gt=0, fix="Use e.g. lr=1e-3.")
        self.betas = c.numbers("betas", length=2, ge=0, lt=1, fix="Adam's betas, e.g. (0.9, 0.999).")
        c.number("warmup_frac", ge=0, le=1)
        c.number("cooldown_frac", ge=0, le=1)
        c.require(self.warmup_frac + self.cooldown_frac <= 1, "cooldown_frac", self.cooldown_frac,
                  f"at most 1 - warmup_frac = {1 - self.warmup_frac:g} (warmup and cool-down cannot overlap)")
        c.number("k_anneal_frac", ge=0, le=1)
        c.integer("k_start", min=1, optional=True)
        if self.k_anneal_frac > 0 and self.k_start is None:
            c.fail("k_start", None, "set when k_anneal_frac > 0 (the top-K annealing starts there)",
                   "Pass e.g. k_start=4 * top_k, or k_anneal_frac=0 for no annealing.")
        c.choice("init", ("model", "random"))
        c.choice("ov_init", ("host", "active_subspace"))
        c.choice("bias_init", ("mean", "geometric_median"))
        c.boolean("aux_detach")
        self.decoder_scales = c.numbers("decoder_scales", gt=0, fix="The decoder norm multipliers searched at init, "
                                        "e.g. (0.5, 1.0, 2.0).")
        c.number("aux_coef", ge=0, fix="0 turns the auxiliary loss off.")
        c.integer("aux_k", min=1, optional=True, fix="None uses 2 * top_k.")
        c.integer("dead_after_tokens", min=1)
        c.number("grad_clip", gt=0, optional=True, fix="None turns clipping off.")
        c.integer("seed", min=0)
        c.integer("buffer_sequences", min=1)
        c.integer("model_batch_size", min=1)
        c.integer("norm_sequences", min=1)
        c.integer("pad_token_id", min=0, optional=True)
        c.integer("bos_token_id", min=0, optional=True)
        if self.checkpoint_dir is not None and not (isinstance(self.checkpoint_dir, os.PathLike) or (
                isinstance(self.checkpoint_dir, str) and self.checkpoint_dir.strip())):
            c.fail("checkpoint_dir", self.checkpoint_dir, "None or a folder path")
        c.integer("checkpoint_every", min=1)
        c.boolean("resume")
        c.integer("log_every", min=1)
        c.boolean("progress")

    @property
    def warmup_steps(self) -> int:
        return int(self.warmup_frac * (self.n_steps or 0))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        d["decoder_scales"] = list(self.decoder_scales)
        if d["checkpoint_dir"] is not None:
            d["checkpoint_dir"] = os.fspath(d["checkpoint_dir"])
        return d


@dataclass
class LorsaTrainResult:
    """What a run produced: the trained Lorsa (acting on raw activations) and its loss log."""

    lorsa: Lorsa
    log: list[dict[str, float]] = field(default_factory=list)
    in_scale: float = 1.0
    out_scale: float = 1.0
    tokens_seen: int = 0

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.log)

    def plot(self):
        """MSE and FVU against the step (:func:`interp.lorsa.plots.training_figure`)."""
        from interp.lorsa.plots import training_figure

        return training_figure(self)

    def __repr__(self) -> str:
        c = self.lorsa.cfg
        last = self.log[-1] if self.log else {}
        end = f", final FVU {last['fvu']:.3f}" if "fvu" in last else ""
        return (f"LorsaTrainResult(layer {c.layer}, {c.n_ov_heads} OV heads, top-{c.top_k}, {len(self.log)} log "
                f"entries, {self.tokens_seen} tokens{end})")

    def _repr_html_(self) -> str:
        import html

        head = f"<b>{html.escape(repr(self))}</b>"
        if not self.log:
            return head + " (no logged steps)"
        return head + self.to_frame().tail(5).to_html(index=False, float_format=lambda x: f"{x:.4g}")


def lr_at(step: int, n_steps: int, cfg: LorsaTrainConfig) -> float:
    """Warmup (linear from 0), constant, then linear cool-down to 0 over the last ``cooldown_frac``."""
    warm = max(1, int(cfg.warmup_frac * n_steps))
    cool = int(cfg.cooldown_frac * n_steps)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    if cool and step >= n_steps - cool:
        return cfg.lr * max(0.0, (n_steps - step) / cool)
    return cfg.lr


def k_at(step: int, n_steps: int, top_k: int, cfg: LorsaTrainConfig) -> int:
    """Top-K for this step: linear from ``k_start`` down to ``top_k`` over ``k_anneal_frac``."""
    if not cfg.k_anneal_frac or cfg.k_start is None:
        return top_k
    span = max(1, int(cfg.k_anneal_frac * n_steps))
    if step >= span:
        return top_k
    return int(round(cfg.k_start + (top_k - cfg.k_start) * step / span))


@torch.no_grad()
def fold_normalisation(lorsa: Lorsa, in_scale: float, out_scale: float) -> Lorsa:
    """Turn a Lorsa trained on (in_scale x, out_scale y) into one acting on raw x and predicting raw y."""
    lorsa.W_Q.mul_(in_scale)
    lorsa.W_K.mul_(in_scale)
    lorsa.W_V.mul_(in_scale)
    lorsa.W_O.div_(out_scale)
    lorsa.b_D.div_(out_scale)
    return lorsa


def distributed_rank() -> tuple[int, int]:
    """(rank, world_size); initialises the process group under torchrun when needed."""
    if not dist.is_available():
        return 0, 1
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_sum(t: Tensor, world: int) -> Tensor:
    if world > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


@torch.no_grad()
def _scales(model: "HookedTransformer", tokens: Tensor, hooks: tuple[str, str], cfg: LorsaTrainConfig) -> tuple[float, float]:
    """Scales making the mean norm of input and target sqrt(d_model), from the first sequences
    (identical on every rank, so no communication is needed)."""
    stream = ActivationStream(model, tokens[: cfg.norm_sequences], list(hooks), batch_size=min(cfg.norm_sequences, tokens.shape[0]),
                              shuffle=False, model_batch_size=cfg.model_batch_size, pad_token_id=cfg.pad_token_id,
                              bos_token_id=cfg.bos_token_id)
    block = next(iter(stream))
    d = fe.d_model(model)
    out = []
    for h in hooks:
        norms = block[h].float().norm(dim=-1)[block.mask]
        out.append(math.sqrt(d) / norms.mean().clamp_min(1e-8).item())
    return out[0], out[1]


def _loss_parts(lorsa: Lorsa, x: Tensor, y: Tensor, mask: Tensor, k: int, dead: Tensor | None,
                aux_k: int, detach: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """Summed squared error over kept tokens, the same for the aux loss, and how many kept tokens each head
    fired on (its code was non-zero) [n_ov].

    The codes stay sparse, ``(indices, values)`` of :meth:`Lorsa.top_codes`, decoded by gathering the kept
    rows of ``W_O``: the same numbers as ``decode(sparsify(encode_pre(x)))`` up to float rounding
    (tests/test_lorsa_step.py checks the loss and every gradient against that dense computation). ``detach``:
    the AuxK term fits the detached residual (False: the authors' code, gradient into the main output too)."""
    z_pre = lorsa.encode_pre(x)
    idx, vals = lorsa.top_codes(z_pre, k)
    y_hat = lorsa.decode_codes(idx, vals)
    m = mask.unsqueeze(-1).to(y.dtype)
    sq = ((y_hat - y).pow(2) * m).sum()
    aux = sq.new_zeros(())
    if dead is not None and bool(dead.any()):
        # AuxK: dead heads' own top activations try to explain the residual error, so they get gradient.
        heads = dead.nonzero().squeeze(-1)
        n_aux = min(aux_k, heads.numel())
        err = (y - y_hat).detach() if detach else y - y_hat
        if n_aux < lorsa.cfg.n_ov_heads:
            # decoded densely over the dead heads only ([tokens, n_dead] @ W_O[dead]): few heads, a small matmul
            aux_idx, aux_vals = lorsa.top_codes(z_pre, n_aux, heads=heads)
            local = torch.empty(lorsa.cfg.n_ov_heads, dtype=torch.long, device=x.device)
            local[heads] = torch.arange(heads.numel(), device=x.device)
            z_aux = aux_vals.new_zeros(*aux_vals.shape[:-1], heads.numel()).scatter(-1, local[aux_idx], aux_vals)
            y_aux = z_aux @ lorsa.W_O.index_select(0, heads)
        else:  # every head dead and aux_k >= n_ov: the raw activations (no top-K, no relu), as before
            y_aux = z_pre @ lorsa.W_O
        aux = ((y_aux - err).pow(2) * m).sum()
    with torch.no_grad():
        on = (vals != 0) & mask.unsqueeze(-1)
        fired = torch.zeros(lorsa.cfg.n_ov_heads, dtype=torch.long, device=x.device)
        fired.index_add_(0, idx[on], torch.ones_like(idx[on]))
    return sq, aux, fired


def lorsa_step(lorsa: Lorsa, opt: torch.optim.Optimizer, x: Tensor, y: Tensor, mask: Tensor, k: int,
               dead: Tensor | None, aux_k: int, *, aux_coef: float, grad_clip: float | None, n_tokens: float,
               world: int = 1, aux_detach: bool = True) -> tuple[Tensor, Tensor]:
    """One optimisation step of :func:`train_lorsa` (forward, backward, gradient sum over ranks, clipping,
    Adam); returns the summed squared error (detached) and the per-head firing counts of this rank.
    ``n_tokens``: kept tokens of the *global* batch (the loss is normalised by it times d_model). The
    benchmark (bench/lorsa.py) times this very function."""
    sq, aux, fired = _loss_parts(lorsa, x, y, mask, k, dead, aux_k, aux_detach)
    loss = (sq + aux_coef * aux) / (n_tokens * lorsa.cfg.d_model)
    opt.zero_grad(set_to_none=False)
    loss.backward()
    params = list(lorsa.parameters())
    if world > 1:
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p))
            offset += n
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
    opt.step()
    return sq.detach(), fired


@torch.no_grad()
def _search_decoder_scale(lorsa: Lorsa, x: Tensor, y: Tensor, mask: Tensor, scales: tuple[float, ...], world: int) -> float:
    """Pick the decoder norm multiplier with the lowest error on the first global batch."""
    base = lorsa.W_O.clone()
    errs = []
    for s in scales:
        lorsa.W_O.copy_(base * s)
        errs.append(((lorsa(x) - y).pow(2).sum(-1) * mask).sum().double())
    total = _all_sum(torch.stack(errs), world)  # summed over ranks: the same choice as one process
    best = float(scales[int(total.argmin())])
    lorsa.W_O.copy_(base * best)
    return best


# ----------------------------------------------------------------------------------- checkpoints
_CKPT_FILES = ("lorsa.safetensors", "optimizer.safetensors")


def _save_checkpoint(directory: Path, lorsa: Lorsa, opt: torch.optim.Optimizer, state: dict[str, Any],
                     last_fired: Tensor) -> None:
    opt_t, opt_meta = optimizer_state(opt)
    write_checkpoint(directory / "latest",
                     {"lorsa.safetensors": lorsa.state_dict(),
                      "optimizer.safetensors": {**opt_t, "__last_fired__": last_fired, **rng_state()}},
                     {**state, "optimizer": opt_meta})


def _load_checkpoint(directory: Path, lorsa: Lorsa, opt: torch.optim.Optimizer, expect: dict[str, Any]) -> tuple[dict[str, Any], Tensor]:
    """Read and check every file first; only then restore weights, optimizer and RNG (nothing changes
    when a file is bad or the run differs)."""
    hint = "use another checkpoint_dir or resume=False"
    ck = read_checkpoint(directory / "latest", _CKPT_FILES, hint=hint)
    meta = ck.meta
    for key in ("lorsa_config", "train_config", "n_steps"):
        if key in expect and meta.get(key) != expect[key]:
            diff = config_differences(meta.get(key) or {}, expect[key]) if isinstance(expect[key], dict) else \
                {key: (meta.get(key), expect[key])}
            listed = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in diff.items())
            raise CheckpointMismatchError(f"Checkpoint {ck.folder} was written by a different run ({key} differs: {listed}). "
                                  "Use another checkpoint_dir or resume=False.")
    check_data_fingerprint(meta, expect["data_fingerprint"], ck.folder, "tokens", hint)
    missing = [k for k in ("step", "log", "tokens_seen", "in_scale", "out_scale", "optimizer") if k not in meta]
    if missing:
        raise CheckpointError(f"{ck.folder / 'state.json'} lacks {missing}; {hint}.")
    weights = ck.tensors["lorsa.safetensors"]
    expected = {k: tuple(v.shape) for k, v in lorsa.state_dict().items()}
    if {k: tuple(v.shape) for k, v in weights.items()} != expected:
        raise CheckpointError(f"{ck.folder / 'lorsa.safetensors'} does not fit this Lorsa (shapes differ).")
    opt_t = ck.tensors["optimizer.safetensors"]
    where = str(ck.folder / "optimizer.safetensors")
    check_optimizer_state(opt, opt_t, meta["optimizer"], where)
    absent = [k for k in ("__last_fired__", "rng.torch") if k not in opt_t]
    if absent:
        raise CheckpointError(f"{where} lacks {absent}; {hint}.")
    lorsa.load_state_dict(weights)
    load_optimizer_state(opt, opt_t, meta["optimizer"])
    restore_rng_state(opt_t)
    return meta, opt_t["__last_fired__"]


# ----------------------------------------------------------------------------------- training
def train_lorsa(
    model: "HookedTransformer",
    layer: int,
    tokens: Tensor,
    cfg: LorsaConfig | None = None,
    train_cfg: LorsaTrainConfig | None = None,
    *,
    stop_after: int | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    truncate: Truncation | None = None,
) -> LorsaTrainResult:
    """Train a Lorsa replacing attention layer ``layer`` of ``model`` on ``tokens`` [n_seq, ctx].

    Returns a :class:`LorsaTrainResult` whose ``lorsa`` acts on raw host activations. Under torchrun
    (or an initialised process group) each rank trains on its slice of every global batch and all
    ranks end with identical parameters. ``stop_after`` ends the run early at that step (after
    writing a checkpoint when ``checkpoint_dir`` is set): how the resume test interrupts a run.
    Neither ``model`` nor ``cfg`` is changed. Windows wider than the model's context are refused
    unless ``truncate`` says which end to drop; a checkpoint written for other tokens is refused.

    Example:
        >>> cfg = LorsaConfig.from_model(model, 2, expansion=8, top_k=16)          # doctest: +SKIP
        >>> result = train_lorsa(model, 2, tokens, cfg, LorsaTrainConfig(lr=1e-3))      # doctest: +SKIP
        >>> result.lorsa.save("lorsa-l2")                                          # doctest: +SKIP
    """
    train_cfg = train_cfg or LorsaTrainConfig()
    c = Check("train_lorsa", LorsaConfigError)
    c.instance("train_cfg", LorsaTrainConfig, train_cfg)
    c.instance("cfg", LorsaConfig, cfg, optional=True)
    c.integer("stop_after", stop_after, min=1, optional=True)
    hook_in, hook_out = hook_names(model, layer)
    tokens = check_tokens(model, tokens, what="train_lorsa's tokens", truncate=truncate, min_len=2)
    # the caller's config is never changed: the hooks are filled into a copy
    cfg = replace(cfg) if cfg is not None else LorsaConfig.from_model(model, layer)
    if cfg.d_model != fe.d_model(model):
        raise LorsaConfigError(f"LorsaConfig.d_model={cfg.d_model} but the model has d_model={fe.d_model(model)}.")
    if cfg.layer is not None and cfg.layer != layer:
        raise LorsaConfigError(f"train_lorsa(layer={layer}) but LorsaConfig.layer={cfg.layer}: the config was built for "
                               f"another layer. Use LorsaConfig.from_model(model, {layer}) or layer={cfg.layer}.")
    if cfg.hook_in is None:
        cfg.hook_in, cfg.hook_out, cfg.layer = hook_in, hook_out, layer
    elif (cfg.hook_in, cfg.hook_out) != (hook_in, hook_out):
        raise LorsaConfigError(f"LorsaConfig hooks ({cfg.hook_in}, {cfg.hook_out}) are not this model's hooks of layer "
                               f"{layer} ({hook_in}, {hook_out}); build the config with LorsaConfig.from_model.")
    t = Check(train_cfg, LorsaConfigError)
    n_vocab = fe.vocab_size(model)
    for name in ("pad_token_id", "bos_token_id"):
        value = getattr(train_cfg, name)
        t.require(value is None or value < n_vocab, name, value, f"None or an id in 0..{n_vocab - 1} (this model's vocabulary)")
    t.require(train_cfg.batch_size <= tokens.shape[0], "batch_size", train_cfg.batch_size,
              f"at most the {tokens.shape[0]} sequences given", "Pass more sequences or a smaller batch_size.")
    if train_cfg.k_start is not None:
        t.require(cfg.top_k <= train_cfg.k_start <= cfg.n_ov_heads, "k_start", train_cfg.k_start,
                  f"between top_k={cfg.top_k} and n_ov_heads={cfg.n_ov_heads} (K anneals down to top_k)")
    if train_cfg.aux_k is not None:
        t.require(train_cfg.aux_k <= cfg.n_ov_heads, "aux_k", train_cfg.aux_k, f"at most n_ov_heads={cfg.n_ov_heads}")
    rank, world = distributed_rank()
    if train_cfg.batch_size % world:
        raise ValueError(f"batch_size={train_cfg.batch_size} must be divisible by the {world} ranks.")
    device = fe.layer_device(model, layer)  # where the host layer's activations are (one GPU of a split model)
    torch.manual_seed(train_cfg.seed)

    probe = ActivationStream(model, tokens, [hook_in, hook_out], batch_size=train_cfg.batch_size,
                             buffer_sequences=train_cfg.buffer_sequences)
    per_epoch = probe.batches_per_epoch or 1
    n_steps = train_cfg.n_steps if train_cfg.n_steps is not None else per_epoch
    epochs = math.ceil(n_steps / per_epoch)
    in_scale, out_scale = _scales(model, tokens, (hook_in, hook_out), train_cfg)

    lorsa = Lorsa(cfg, seed=train_cfg.seed).to(device)
    if train_cfg.init == "model":
        # the active-subspace OV heads are built on the first batch (below): only the QK circuit is copied here
        init_from_host(lorsa, model, layer, in_scale=in_scale, out_scale=out_scale, seed=train_cfg.seed,
                       init_ov=train_cfg.ov_init == "host")
    elif train_cfg.init != "random":
        raise ValueError(f"init={train_cfg.init!r} must be 'model' or 'random'.")
    opt = torch.optim.Adam(lorsa.parameters(), lr=train_cfg.lr, betas=train_cfg.betas, foreach=True)
    last_fired = torch.zeros(cfg.n_ov_heads, dtype=torch.long, device=device)  # tokens since last firing
    ckpt_dir = Path(train_cfg.checkpoint_dir) if train_cfg.checkpoint_dir else None
    expect = {"lorsa_config": cfg.to_dict(), "n_steps": n_steps, "data_fingerprint": data_fingerprint(tokens),
              "train_config": {k: v for k, v in train_cfg.to_dict().items()
                               if k not in ("checkpoint_dir", "checkpoint_every", "resume", "progress", "log_every")}}
    start, log, tokens_seen = 0, [], 0
    initialised = False
    if ckpt_dir is not None and train_cfg.resume and (ckpt_dir / "latest").exists():
        meta, last_fired = _load_checkpoint(ckpt_dir, lorsa, opt, expect)
        last_fired = last_fired.to(device)
        start, log, tokens_seen = meta["step"], meta["log"], meta["tokens_seen"]
        in_scale, out_scale = meta["in_scale"], meta["out_scale"]
        initialised = True

    stream = ActivationStream(model, tokens, [hook_in, hook_out], batch_size=train_cfg.batch_size,
                              buffer_sequences=train_cfg.buffer_sequences, seed=train_cfg.seed, rank=rank,
                              world_size=world, epochs=epochs, start_batch=start,
                              model_batch_size=train_cfg.model_batch_size, pad_token_id=train_cfg.pad_token_id,
                              bos_token_id=train_cfg.bos_token_id)
    aux_k = train_cfg.aux_k or 2 * cfg.top_k
    bar = tqdm(total=n_steps, initial=start, desc=f"Lorsa L{layer}", disable=bar_disabled(train_cfg.progress and rank == 0))
    step = start
    for block in stream:
        if step >= n_steps or (stop_after is not None and step >= stop_after):
            break
        x = block[hook_in].to(device).float() * in_scale
        y = block[hook_out].to(device).float() * out_scale
        mask = block.mask.to(device)
        if not initialised:
            # Statistics of the first *global* batch, reduced over ranks so every rank agrees.
            with torch.no_grad():
                if train_cfg.init == "model" and train_cfg.ov_init == "active_subspace":
                    init_ov_active_subspace(lorsa, model, x, mask, layer, seed=train_cfg.seed,
                                            reduce=lambda t: _all_sum(t, world))
                if train_cfg.bias_init == "geometric_median":
                    b_init = geometric_median(y[mask], reduce=lambda t: _all_sum(t, world))
                else:
                    b_init = _all_sum((y * mask.unsqueeze(-1)).sum((0, 1)), world) / _all_sum(mask.sum().float(), world)
                lorsa.b_D.copy_(b_init)
            if train_cfg.init == "model" and len(train_cfg.decoder_scales) > 1:
                _search_decoder_scale(lorsa, x, y, mask, train_cfg.decoder_scales, world)
            initialised = True
        k = k_at(step, n_steps, cfg.top_k, train_cfg)
        lr = lr_at(step, n_steps, train_cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        dead = last_fired >= train_cfg.dead_after_tokens if train_cfg.aux_coef > 0 else None
        n_tok = _all_sum(mask.sum().to(torch.float64), world).item()
        sq, fired = lorsa_step(lorsa, opt, x, y, mask, k, dead, aux_k, aux_coef=train_cfg.aux_coef,
                               grad_clip=train_cfg.grad_clip, n_tokens=n_tok, world=world,
                               aux_detach=train_cfg.aux_detach)
        denom = n_tok * cfg.d_model
        with torch.no_grad():
            fired = _all_sum(fired, world)
            last_fired = torch.where(fired > 0, torch.zeros_like(last_fired), last_fired + int(n_tok))
            stats = _all_sum(torch.stack([sq.detach().double(), (y[mask] - y[mask].mean(0)).pow(2).sum().double()]), world)
        tokens_seen += int(n_tok)
        step += 1
        bar.update(1)
        if step % train_cfg.log_every == 0 or step == n_steps:
            entry = {"step": step, "mse": stats[0].item() / denom, "fvu": stats[0].item() / max(stats[1].item(), 1e-12),
                     "lr": lr, "k": k, "dead": int((last_fired >= train_cfg.dead_after_tokens).sum()), "tokens": tokens_seen}
            log.append(entry)
            bar.set_postfix(fvu=f"{entry['fvu']:.3f}", dead=entry["dead"])
            if callback is not None:
                callback(step, entry)
        if ckpt_dir is not None and rank == 0 and (step % train_cfg.checkpoint_every == 0 or step == stop_after):
            _save_checkpoint(ckpt_dir, lorsa, opt, {**expect, "step": step, "log": log, "tokens_seen": tokens_seen,
                                                     "in_scale": in_scale, "out_scale": out_scale}, last_fired)
    bar.close()
    if world > 1:
        dist.barrier()
    trained = fold_normalisation(lorsa, in_scale, out_scale)
    return LorsaTrainResult(lorsa=trained, log=log, in_scale=in_scale, out_scale=out_scale, tokens_seen=tokens_seen)
