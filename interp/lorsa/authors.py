"""Read and write the Lorsa authors' checkpoint format (``llamascopium``, OpenMOSS), without their package.

The authors' ``save_pretrained`` writes a folder with ``config.json`` (a pydantic ``LorsaConfig``
dump, ``sae_type: "lorsa"``) and ``sae_weights.safetensors`` holding ``W_Q, W_K`` [n_qk, d_model,
d_qk], ``b_Q, b_K`` [n_qk, d_qk], ``W_V, W_O`` [n_ov, d_model], ``b_V`` [n_ov], ``b_D`` [d_model],
buffers ``rotary_sin/cos`` [n_ctx, rotary_dim], ``mask`` [n_ctx, n_ctx] (bool, causal) and
``IGNORE`` (-inf), optional ``ln_q.w / ln_k.w`` [n_qk, d_qk] (per-head QK RMSNorm), and one scalar
``dataset_average_activation_norm.<hook>`` per hook: the mean activation norm used to rescale
inputs and targets to norm sqrt(d_model) during training.

Their forward is the same as :class:`interp.lorsa.Lorsa` with ``activation="relu"``: ``act_fn:
"topk"`` with ``sparsity_include_decoder_norm: true`` applies ReLU and keeps the K largest
z~_i ||w_O^i||, keeping z~_i.

Normalisation, and a contradiction in their files. ``norm_activation: "dataset-wise"`` means the
weights act on x * sqrt(d)/n_in and produce y * sqrt(d)/n_out; ``"inference"`` means the scales are
folded in and the weights act on raw activations. Their training runner writes ``config.json``
*before* training and then saves the weights with ``fold_activation_scale=True`` (the default), so
the final checkpoint says ``"dataset-wise"`` while its weights are already folded; mid-training
checkpoints (``checkpoints/step_N/``) say the same and are really unfolded. The config cannot tell
the two apart, so :func:`read_authors_lorsa` decides from activations: it reconstructs a few host
sequences under both readings and keeps the one with the higher explained variance (reading the
bundled fixture literally gives EV 0.19 instead of 0.93). Without activations it falls back on the
file's place (root folder: folded; ``checkpoints/step_*``: not folded) and warns.

Writing (:func:`save_authors_lorsa`) produces folded weights with ``norm_activation: "inference"``
(what their own ``standardize_parameters_of_dataset_norm`` sets), so their loader and ours agree.

Example:
    >>> loaded = read_authors_lorsa("lorsa-authors-stories260K-L2", model=model)   # doctest: +SKIP
    >>> loaded.reading, loaded.explained_variance                                  # doctest: +SKIP
    ('folded', {'folded': 0.93, 'normalised': 0.19})
    >>> HeadBrowser(loaded.lorsa, model, top_contexts(model, loaded.lorsa, tokens), scores)  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from jaxtyping import Float
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from interp.lorsa.config import LorsaConfig
from interp.lorsa.model import Lorsa, LorsaLoadError, rotary_sin_cos

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = [
    "AuthorsFormatError", "AuthorsConfigWarning", "AuthorsLorsa", "Reading", "read_authors_lorsa",
    "load_authors_lorsa", "save_authors_lorsa", "authors_config", "authors_tensors", "lorsa_from_authors",
]

Reading = Literal["folded", "normalised"]
"""How a checkpoint's weights relate to raw activations: ``folded`` (they act on raw activations) or
``normalised`` (they act on activations rescaled to mean norm sqrt(d_model), as the config says for
``norm_activation: "dataset-wise"``)."""

WEIGHTS = "sae_weights.safetensors"
CONFIG = "config.json"
VERSION = "2.0.0b34"  # the llamascopium version whose format this mirrors (written as file metadata)
_PARAMS = ("W_Q", "W_K", "b_Q", "b_K", "W_V", "b_V", "W_O", "b_D")
_NORM_PREFIX = "dataset_average_activation_norm."
# Fields of their config that our Lorsa has no counterpart for; a checkpoint must hold these values.
_REQUIRED = {"act_fn": "topk", "sparsity_include_decoder_norm": True, "use_decoder_bias": True,
             "rotary_scale": 1, "use_NTK_by_parts_rope": False}
# Their defaults for fields we write but do not use (kept so their loader sees a complete config).
_DEFAULTS: dict[str, Any] = {
    "use_triton_kernel": False, "sparsity_threshold_for_triton_spmm_kernel": 0.996,
    "jumprelu_threshold_window": 2.0, "NTK_by_parts_factor": 1.0, "NTK_by_parts_low_freq_factor": 1.0,
    "NTK_by_parts_high_freq_factor": 1.0, "old_context_len": 2048,
}


class AuthorsFormatError(LorsaLoadError):
    """A folder is not an authors' Lorsa checkpoint, or uses a setting our Lorsa cannot reproduce."""


class AuthorsConfigWarning(UserWarning):
    """The checkpoint's config.json says something its weights contradict (or it could not be checked)."""


# ------------------------------------------------------------------------------------------ reading
def _read_folder(path: str | Path) -> tuple[Path, dict[str, Any], dict[str, Tensor]]:
    folder = Path(path)
    if folder.is_file() and folder.suffix == ".safetensors":
        folder = folder.parent
    cfg_path, w_path = folder / CONFIG, folder / WEIGHTS
    missing = [p.name for p in (cfg_path, w_path) if not p.is_file()]
    if missing:
        raise AuthorsFormatError(
            f"{folder} is not an authors' (llamascopium) checkpoint: missing {', '.join(missing)}. "
            "Their save_pretrained writes config.json and sae_weights.safetensors in one folder.")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as err:
        raise AuthorsFormatError(f"{cfg_path} is not valid JSON ({err}).") from err
    if config.get("sae_type") != "lorsa":
        raise AuthorsFormatError(f"{cfg_path} has sae_type={config.get('sae_type')!r}; only 'lorsa' checkpoints are read here.")
    try:
        tensors = load_file(str(w_path))
    except (SafetensorError, OSError, RuntimeError) as err:
        raise AuthorsFormatError(f"{w_path} is corrupt or truncated ({err}).") from err
    return folder, config, tensors


def _layer_of(hook: str | None) -> int | None:
    m = re.match(r"blocks\.(\d+)\.", hook or "")
    return int(m.group(1)) if m else None


def lorsa_config_from_authors(config: dict[str, Any]) -> LorsaConfig:
    """Our :class:`LorsaConfig` for an authors' config dict; a clear error for settings we cannot run."""
    for key, want in _REQUIRED.items():
        if key in config and config[key] != want:
            raise AuthorsFormatError(
                f"This checkpoint has {key}={config[key]!r}; interp's Lorsa reproduces only {key}={want!r} "
                "(ReLU + top-K ranked by z * ||w_O||, a decoder bias, plain RoPE).")
    if config.get("norm_activation") not in ("dataset-wise", "inference"):
        raise AuthorsFormatError(
            f"norm_activation={config.get('norm_activation')!r}: per-token or per-batch normalisation cannot be "
            "folded into the weights, so the layer is not a fixed function of raw activations.")
    try:
        d_model, n_qk, d_qk = int(config["d_model"]), int(config["n_qk_heads"]), int(config["d_qk_head"])
        n_ov = int(d_model * float(config["expansion_factor"]))
        top_k = int(config["top_k"])
    except KeyError as err:
        raise AuthorsFormatError(f"config.json lacks the field {err}; is this a Lorsa config?") from err
    rotary = config.get("positional_embedding_type", "rotary") == "rotary"
    qk_norm = bool(config.get("use_post_qk_ln", False))
    if qk_norm and config.get("normalization_type") != "RMS":
        raise AuthorsFormatError(f"use_post_qk_ln with normalization_type={config.get('normalization_type')!r}: only RMS is supported.")
    hook_in, hook_out = config.get("hook_point_in"), config.get("hook_point_out")
    layer = _layer_of(hook_in)
    return LorsaConfig(
        d_model=d_model, n_qk_heads=n_qk, d_qk_head=d_qk, n_ov_heads=n_ov, top_k=top_k, activation="relu",
        rotary=rotary, rotary_dim=int(config["rotary_dim"]) if rotary else None,
        rotary_base=float(config.get("rotary_base", 10000)) if rotary else 10000.0,
        rotary_adjacent_pairs=bool(config.get("rotary_adjacent_pairs", True)) if rotary else False,
        qk_norm=qk_norm, qk_norm_eps=float(config.get("eps", 1e-6)),
        attn_scale=float(config["attn_scale"]) if config.get("attn_scale") is not None else math.sqrt(d_qk),
        layer=layer if layer is not None and layer == _layer_of(hook_out) else None,
        hook_in=hook_in, hook_out=hook_out,
    )


def dataset_norms(tensors: dict[str, Tensor]) -> dict[str, float]:
    """The ``dataset_average_activation_norm.<hook>`` scalars of a checkpoint (finite ones only: their code
    writes uninitialised placeholders when no norm was ever computed)."""
    out = {}
    for k, v in tensors.items():
        if k.startswith(_NORM_PREFIX) and v.numel() == 1 and math.isfinite(float(v)) and float(v) > 0:
            out[k[len(_NORM_PREFIX):]] = float(v)
    return out


def lorsa_from_authors(config: dict[str, Any], tensors: dict[str, Tensor], reading: Reading) -> Lorsa:
    """Our Lorsa (acting on raw activations) from an authors' config and tensors read as ``reading``.

    ``normalised`` folds the dataset norms in exactly as their ``standardize_parameters_of_dataset_norm``
    does (W_Q, W_K, W_V times sqrt(d)/n_in; W_O, b_D divided by sqrt(d)/n_out); ``folded`` copies the
    tensors bit for bit.
    """
    cfg = lorsa_config_from_authors(config)
    missing = [k for k in _PARAMS if k not in tensors]
    if missing:
        raise AuthorsFormatError(f"sae_weights.safetensors lacks {missing}; the save is partial.")
    lorsa = Lorsa(cfg, seed=None)
    state = {k: tensors[k].to(torch.float32) if tensors[k].dtype != torch.float32 else tensors[k] for k in _PARAMS}
    if cfg.qk_norm:
        for ours, theirs in (("q_norm_w", "ln_q.w"), ("k_norm_w", "ln_k.w")):
            w = tensors.get(theirs)
            if w is None:
                raise AuthorsFormatError(f"use_post_qk_ln is set but {theirs} is missing from the weights.")
            if not torch.equal(w, w[:1].expand_as(w)):
                raise AuthorsFormatError(f"{theirs} differs between QK heads; interp's Lorsa copies one host QK-norm "
                                         "weight shared by all heads, so it cannot hold trained per-head norms.")
            state[ours] = w[0].to(torch.float32)
    expected = {k: tuple(v.shape) for k, v in lorsa.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    if expected != got:
        bad = sorted(k for k in expected if expected[k] != got.get(k))
        raise AuthorsFormatError(f"sae_weights.safetensors does not match its config.json (shapes differ for {bad}).")
    if reading == "normalised":
        norms = dataset_norms(tensors)
        need = [h for h in (cfg.hook_in, cfg.hook_out) if h not in norms]
        if need:
            raise AuthorsFormatError(f"Reading the weights as normalised needs the dataset norms of {need}, "
                                     "which the file does not hold.")
        f_in = math.sqrt(cfg.d_model) / norms[cfg.hook_in]
        f_out = math.sqrt(cfg.d_model) / norms[cfg.hook_out]
        state = dict(state)
        for k in ("W_Q", "W_K", "W_V"):
            state[k] = state[k] * f_in
        for k in ("W_O", "b_D"):
            state[k] = state[k] / f_out
    elif reading != "folded":
        raise ValueError(f"reading must be 'folded' or 'normalised', got {reading!r}.")
    lorsa.load_state_dict(state)
    return lorsa


def _check_rotary(cfg: LorsaConfig, tensors: dict[str, Tensor]) -> None:
    """The file's own sin/cos tables must equal ours for its config (catches a mislabelled RoPE layout)."""
    if not cfg.rotary or "rotary_sin" not in tensors:
        return
    sin, cos = rotary_sin_cos(cfg, tensors["rotary_sin"].shape[0])
    err = max(float((sin - tensors["rotary_sin"].float()).abs().max()), float((cos - tensors["rotary_cos"].float()).abs().max()))
    if err > 1e-4:
        raise AuthorsFormatError(
            f"The checkpoint's rotary tables differ from those its config describes (max error {err:.2e}); "
            "rotary_dim, rotary_base or rotary_adjacent_pairs in config.json do not match the weights.")


def _explained_variance(y_hat: Tensor, y: Tensor, keep: Tensor) -> float:
    yy, pp = y[keep].double(), y_hat[keep].double()
    total = ((yy - yy.mean(0)) ** 2).sum()
    return float(1 - ((pp - yy) ** 2).sum() / total)


@dataclass
class AuthorsLorsa:
    """An authors' checkpoint read into interp: the Lorsa, how its weights were read, and why.

    ``explained_variance`` holds the EV of each reading on the calibration activations (empty when
    the reading came from the config or the file's place); ``mean_norms`` the measured mean
    activation norms beside the file's stored ``dataset_norms``.
    """

    lorsa: Lorsa
    reading: Reading
    reason: str
    config: dict[str, Any]
    dataset_norms: dict[str, float]
    path: str
    n_ctx: int | None = None
    explained_variance: dict[str, float] = field(default_factory=dict)
    mean_norms: dict[str, float] = field(default_factory=dict)
    contradicts_config: bool = False

    def summary(self) -> dict[str, Any]:
        return {"path": self.path, "reading": self.reading, "config_norm_activation": self.config.get("norm_activation"),
                "contradicts_config": self.contradicts_config, **{f"ev_{k}": v for k, v in self.explained_variance.items()},
                "reason": self.reason}

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(f'{v:.4f}' if isinstance(v, float) else str(v))}</td></tr>"
                       for k, v in self.summary().items())
        return f"<b>Authors' Lorsa</b> ({self.lorsa.cfg.n_ov_heads} heads)<table>{rows}</table>"

    def __repr__(self) -> str:
        ev = ", ".join(f"{k}={v:.3f}" for k, v in self.explained_variance.items())
        return f"AuthorsLorsa(reading={self.reading!r}, n_ov={self.lorsa.cfg.n_ov_heads}{', EV ' + ev if ev else ''})"


def _calibration(model: "HookedTransformer", cfg: LorsaConfig, tokens: Tensor | None, n_seq: int, ctx: int,
                 seed: int) -> tuple[Tensor, Tensor, Tensor]:
    from interp.core.activations import sample_tokens

    if cfg.hook_in is None or cfg.hook_out is None:
        raise AuthorsFormatError("The checkpoint names no hook_point_in/out, so activations cannot be read from a host.")
    if model.cfg.d_model != cfg.d_model:
        raise AuthorsFormatError(f"The checkpoint has d_model={cfg.d_model} but the model has d_model={model.cfg.d_model}.")
    if tokens is None:
        ctx = min(ctx, int(model.cfg.n_ctx))
        tokens = sample_tokens(model, n_seq, ctx, seed=seed, progress=False)
    tokens = tokens.to(model.cfg.device)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=[cfg.hook_in, cfg.hook_out])
    keep = torch.ones(tokens.shape, dtype=torch.bool, device=tokens.device)
    keep[:, 0] = False  # BOS: the Lorsa is never asked to reproduce it (it is a key only)
    return cache[cfg.hook_in], cache[cfg.hook_out], keep


def read_authors_lorsa(
    path: str | Path,
    *,
    model: "HookedTransformer | None" = None,
    tokens: Tensor | None = None,
    activations: tuple[Float[Tensor, "batch pos d"], Float[Tensor, "batch pos d"]] | None = None,
    reading: Reading | Literal["auto"] = "auto",
    n_calibration: int = 4,
    ctx: int = 128,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> AuthorsLorsa:
    """Read an authors' (llamascopium) Lorsa folder into an interp :class:`Lorsa` on raw activations.

    ``reading="auto"`` (default): ``norm_activation: "inference"`` means folded. For ``"dataset-wise"``
    (which their final checkpoints carry even though the weights are folded) the weights are tried both
    ways on calibration activations, ``activations=(x, y)`` or the ``model``'s hooks on ``tokens``
    (default: ``n_calibration`` sequences of ``ctx`` tokens sampled from the model), and the reading
    with the higher explained variance wins; an :class:`AuthorsConfigWarning` says when that contradicts
    config.json. With neither, the file's place decides (see the module docstring) and a warning says
    so. ``reading="folded"`` / ``"normalised"`` forces one.

    Example:
        >>> loaded = read_authors_lorsa(folder, model=model)      # doctest: +SKIP
        >>> lorsa = loaded.lorsa                                  # doctest: +SKIP
    """
    folder, config, tensors = _read_folder(path)
    cfg = lorsa_config_from_authors(config)
    _check_rotary(cfg, tensors)
    norms = dataset_norms(tensors)
    n_ctx = int(config["n_ctx"]) if config.get("n_ctx") is not None else None
    declared = config.get("norm_activation")
    evs: dict[str, float] = {}
    mean_norms: dict[str, float] = {}
    if reading in ("folded", "normalised"):
        chosen, reason = reading, "forced by the caller"
    elif reading != "auto":
        raise ValueError(f"reading must be 'auto', 'folded' or 'normalised', got {reading!r}.")
    elif declared == "inference":
        chosen, reason = "folded", "config.json says norm_activation='inference' (scales folded into the weights)"
    elif not all(h in norms for h in (cfg.hook_in, cfg.hook_out)):
        chosen, reason = "folded", "config.json says 'dataset-wise' but the file holds no dataset norms, so no scale can apply"
    elif activations is not None or model is not None:
        if activations is not None:
            x, y = activations
            if x.ndim != 3 or y.shape != x.shape:
                raise ValueError(f"activations must be (x, y) of equal shape [batch, pos, d_model]; got {tuple(x.shape)} and {tuple(y.shape)}.")
            keep = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
            keep[:, 0] = False
        else:
            x, y, keep = _calibration(model, cfg, tokens, n_calibration, ctx, seed)
        with torch.no_grad():
            for r in ("folded", "normalised"):
                cand = lorsa_from_authors(config, tensors, r).to(x.device)  # type: ignore[arg-type]
                evs[r] = _explained_variance(cand(x), y, keep)
        mean_norms = {cfg.hook_in: float(x[keep].norm(dim=-1).mean()), cfg.hook_out: float(y[keep].norm(dim=-1).mean())}  # type: ignore[dict-item]
        chosen = max(evs, key=evs.get)  # type: ignore[arg-type]
        reason = (f"explained variance on {int(keep.sum())} calibration tokens: folded {evs['folded']:.3f}, "
                  f"normalised (as config.json says) {evs['normalised']:.3f}")
    else:
        in_step_dir = re.fullmatch(r"step_\d+", folder.name) is not None and folder.parent.name == "checkpoints"
        chosen = "normalised" if in_step_dir else "folded"
        reason = ("guessed from the file's place: their trainer writes mid-training checkpoints/step_N unfolded and the "
                  "final save folded; pass model= or activations= to check")
        warnings.warn(f"{folder}: config.json says norm_activation='dataset-wise', which their final checkpoints say even "
                      f"with folded weights; reading it as {chosen!r} ({reason}).", AuthorsConfigWarning, stacklevel=2)
    contradicts = declared == "dataset-wise" and chosen == "folded" and bool(norms)
    if contradicts and evs:
        warnings.warn(f"{folder}: config.json says norm_activation='dataset-wise' but the weights are already folded "
                      f"({reason}); loaded as folded.", AuthorsConfigWarning, stacklevel=2)
    lorsa = lorsa_from_authors(config, tensors, chosen).to(device)  # type: ignore[arg-type]
    return AuthorsLorsa(lorsa, chosen, reason, config, norms, str(folder), n_ctx, evs, mean_norms, contradicts)  # type: ignore[arg-type]


def load_authors_lorsa(path: str | Path, **kwargs: Any) -> Lorsa:
    """:func:`read_authors_lorsa` returning just the Lorsa (ready for ``HeadBrowser``, ``evaluate_lorsa``, ...)."""
    return read_authors_lorsa(path, **kwargs).lorsa


# ------------------------------------------------------------------------------------------ writing
def authors_config(lorsa: Lorsa, *, n_ctx: int, template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The authors' config.json dict for ``lorsa`` (weights folded: ``norm_activation: "inference"``).

    Fields our Lorsa has no counterpart for come from ``template`` (an authors' config this Lorsa was
    read from) or their defaults.
    """
    c = lorsa.cfg
    if c.activation != "relu":
        raise AuthorsFormatError("The authors' format has ReLU top-K only (act_fn='topk'); this Lorsa uses activation='signed'.")
    if c.rotary and c.rotary_scaling_factor != 1.0:
        raise AuthorsFormatError(f"rotary_scaling_factor={c.rotary_scaling_factor} has no counterpart in the authors' format.")
    if c.hook_in is None or c.hook_out is None:
        raise AuthorsFormatError("The authors' format names its hooks; build the Lorsa with LorsaConfig.from_model or set hook_in/hook_out.")
    if n_ctx < 1:
        raise ValueError(f"n_ctx={n_ctx} must be positive.")
    out: dict[str, Any] = dict(template) if template else {}
    out.update({
        "sae_type": "lorsa", "d_model": c.d_model, "expansion_factor": c.n_ov_heads / c.d_model,
        "use_decoder_bias": True, "act_fn": "topk", "norm_activation": "inference",
        "sparsity_include_decoder_norm": True, "top_k": c.top_k,
    })
    for k, v in _DEFAULTS.items():
        out.setdefault(k, v)
    out.update({
        "hook_point_in": c.hook_in, "hook_point_out": c.hook_out, "n_qk_heads": c.n_qk_heads, "d_qk_head": c.d_qk_head,
        "positional_embedding_type": "rotary" if c.rotary else "none",
        "rotary_dim": c.rotary_dim if c.rotary else c.d_qk_head,
        "rotary_base": int(c.rotary_base) if float(c.rotary_base).is_integer() else c.rotary_base,
        "rotary_adjacent_pairs": bool(c.rotary_adjacent_pairs), "rotary_scale": 1, "use_NTK_by_parts_rope": False,
        "n_ctx": int(n_ctx), "attn_scale": float(c.scale), "use_post_qk_ln": bool(c.qk_norm),
        "normalization_type": "RMS" if c.qk_norm else None, "eps": float(c.qk_norm_eps),
    })
    if int(c.n_ov_heads / c.d_model * c.d_model) != c.n_ov_heads:
        raise AuthorsFormatError(f"n_ov_heads={c.n_ov_heads} is not d_model * expansion_factor for a float expansion.")
    return out


def authors_tensors(lorsa: Lorsa, *, n_ctx: int, dataset_norms: dict[str, float] | None = None) -> dict[str, Tensor]:
    """The tensors of an authors' ``sae_weights.safetensors`` for ``lorsa`` (folded weights, their buffers)."""
    c = lorsa.cfg
    state = {k: v.detach().cpu().contiguous() for k, v in lorsa.state_dict().items()}
    out = {k: state[k] for k in _PARAMS}
    if c.qk_norm:
        out["ln_q.w"] = state["q_norm_w"].expand(c.n_qk_heads, -1).contiguous()
        out["ln_k.w"] = state["k_norm_w"].expand(c.n_qk_heads, -1).contiguous()
    if c.rotary:
        out["rotary_sin"], out["rotary_cos"] = (t.contiguous() for t in rotary_sin_cos(c, n_ctx))
    out["mask"] = torch.ones(n_ctx, n_ctx, dtype=torch.bool).tril()
    out["IGNORE"] = torch.tensor(-torch.inf)
    for hook, value in (dataset_norms or {}).items():
        out[_NORM_PREFIX + hook] = torch.tensor(float(value), dtype=torch.float32)
    return out


def save_authors_lorsa(
    lorsa: Lorsa,
    directory: str | Path,
    *,
    n_ctx: int | None = None,
    dataset_norms: dict[str, float] | None = None,
    template: dict[str, Any] | AuthorsLorsa | None = None,
    normalised: bool = False,
) -> Path:
    """Write ``lorsa`` as an authors' checkpoint folder (config.json + sae_weights.safetensors) that their
    ``SparseDictionary.from_pretrained`` and :func:`read_authors_lorsa` both load as it is.

    ``template`` (the :class:`AuthorsLorsa` it was read from, or its config) supplies n_ctx, the dataset
    norms (kept for reference; they do not apply to folded weights) and the fields we do not model.
    ``normalised=True`` instead writes unfolded weights with ``norm_activation: "dataset-wise"`` (what
    their trainer's mid-training checkpoints hold; needs ``dataset_norms`` for both hooks).

    Example:
        >>> save_authors_lorsa(lorsa, "out/lorsa-L2-authors", n_ctx=256)   # doctest: +SKIP
    """
    base: dict[str, Any] | None = None
    if isinstance(template, AuthorsLorsa):
        base = template.config
        dataset_norms = dataset_norms if dataset_norms is not None else template.dataset_norms
    elif template is not None:
        base = dict(template)
    if n_ctx is None:
        if base is None or base.get("n_ctx") is None:
            raise ValueError("save_authors_lorsa needs n_ctx (their rotary tables and causal mask have a fixed length) "
                             "or a template to take it from.")
        n_ctx = int(base["n_ctx"])
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = authors_config(lorsa, n_ctx=n_ctx, template=base)
    tensors = authors_tensors(lorsa, n_ctx=n_ctx, dataset_norms=dataset_norms)
    if normalised:
        c = lorsa.cfg
        norms = dataset_norms or {}
        if c.hook_in not in norms or c.hook_out not in norms:
            raise ValueError(f"normalised=True needs dataset_norms for {c.hook_in!r} and {c.hook_out!r}.")
        f_in, f_out = math.sqrt(c.d_model) / norms[c.hook_in], math.sqrt(c.d_model) / norms[c.hook_out]  # type: ignore[index]
        for k in ("W_Q", "W_K", "W_V"):
            tensors[k] = (tensors[k] / f_in).contiguous()
        for k in ("W_O", "b_D"):
            tensors[k] = (tensors[k] * f_out).contiguous()
        config["norm_activation"] = "dataset-wise"
    save_file(tensors, str(out / WEIGHTS), {"version": VERSION})
    (out / CONFIG).write_text(json.dumps(config, indent=4))
    return out
