"""Offline-first model loading: local Hugging Face folders, hub names, and named folders (the zoo passes
its models' names), all returned as a TransformerLens ``HookedTransformer`` the user owns.

``HookedTransformer.from_pretrained`` contacts the hub even for a local folder, so folders are
loaded through TransformerLens's own config and state-dict converters with a locally built
Hugging Face model instead; nothing here touches the network unless a hub name is asked for.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from interp.core.errors import InterpLoadError

if TYPE_CHECKING:  # imported lazily: transformer_lens takes seconds to import
    from transformer_lens import HookedTransformer

__all__ = [
    "Processing",
    "ModelLoadError",
    "load_model",
    "resolve_device",
    "PROCESSING_OPTIONS",
]

Processing = Literal["none", "fold_ln", "full"]
"""How TransformerLens may rewrite the weights on load.

- ``"none"`` (default): weights exactly as trained; every hook (``hook_resid_post``,
  ``ln1.hook_normalized``...) carries the same numbers as the Hugging Face model. Needed for SAEs
  trained on raw residuals (CorrSteer) and the safe choice for everything else.
- ``"fold_ln"``: fold the norm weights into the following linear layers. Logits unchanged;
  ``ln*.hook_normalized`` then reads the unscaled normalised input.
- ``"full"``: ``fold_ln`` plus centring of writing weights and of the unembedding (TransformerLens's
  own ``from_pretrained`` default). Log-probabilities unchanged, residual activations are not.
"""

PROCESSING_OPTIONS: dict[str, dict[str, bool]] = {
    "none": dict(fold_ln=False, center_writing_weights=False, center_unembed=False),
    "fold_ln": dict(fold_ln=True, center_writing_weights=False, center_unembed=False),
    "full": dict(fold_ln=True, center_writing_weights=True, center_unembed=True),
}

class ModelLoadError(InterpLoadError):
    """A model could not be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class _Resolved:
    kind: Literal["zoo", "folder", "hub"]
    location: str


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to load onto: ``None`` picks CUDA, then MPS, then CPU; an unavailable one is an error."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ModelLoadError(f"Unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N' or 'mps'.") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"Device {device!r} was asked for but this torch build sees no CUDA GPU "
                f"(torch {torch.__version__}). Pass device='cpu', or install a CUDA build of torch "
                "on a GPU machine."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"Device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) visible."
            )
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ModelLoadError(f"Device {device!r} was asked for but MPS is not available here.")
    return dev


def _official_names() -> list[str]:
    from transformer_lens.loading_from_pretrained import MODEL_ALIASES, OFFICIAL_MODEL_NAMES

    names = list(OFFICIAL_MODEL_NAMES)
    for aliases in MODEL_ALIASES.values():
        names.extend(aliases)
    return names


def _resolve(source: str | os.PathLike[str], names: Mapping[str, Path]) -> _Resolved:
    text = os.fspath(source)
    if isinstance(source, str) and source in names:
        return _Resolved("zoo", str(names[source]))
    known = ", ".join(names) if names else "none given"
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(
                f"{text!r} is a file; a local model must be a Hugging Face folder holding config.json, "
                "the weights (model.safetensors or pytorch_model.bin) and the tokenizer files."
            )
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"The folder {str(path)!r} has no config.json, so it is not a Hugging Face model folder. "
                "Save one with model.save_pretrained(dir) and tokenizer.save_pretrained(dir), or pass a "
                f"zoo name ({known})."
            )
        return _Resolved("folder", str(path.resolve()))
    if not isinstance(source, str) and text in names:
        raise ModelLoadError(
            f"{source!r} is a path, and no folder exists there; the zoo model of that name is loaded by its name "
            f"as a string: load_model({text!r})."
        )
    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") > 1 or not isinstance(source, str)
    if looks_like_path:
        raise ModelLoadError(
            f"No model folder at {text!r}. Check the path (relative paths are read from "
            f"{os.getcwd()!r}), or pass a zoo name ({known})."
        )
    official = _official_names()
    if text in official or "/" in text:
        return _Resolved("hub", text)
    close = difflib.get_close_matches(text, list(names) + official, n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ModelLoadError(
        f"Unknown model {text!r}: not a zoo name ({known}), not an existing local folder, and not a "
        f"TransformerLens model name.{hint} See `interp zoo list` and "
        "transformer_lens.loading_from_pretrained.OFFICIAL_MODEL_NAMES."
    )


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}


def _load_folder(
    folder: str, *, device: torch.device, dtype: torch.dtype, processing: Processing, n_ctx: int | None
) -> "HookedTransformer":
    from transformer_lens import HookedTransformer
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config, get_pretrained_state_dict
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config_path = Path(folder) / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"{config_path} is not valid JSON ({err}); the model folder is damaged.") from err
    if not isinstance(config, dict):
        raise ModelLoadError(f"{config_path} must hold a JSON object (a Hugging Face config).")
    arch = config.get("architectures") or ["<none>"]
    try:
        cfg = get_pretrained_model_config(folder, device=str(device), dtype=dtype, n_ctx=n_ctx,
                                          fold_ln=PROCESSING_OPTIONS[processing]["fold_ln"])
    except (NotImplementedError, ValueError, KeyError) as err:
        raise ModelLoadError(
            f"TransformerLens cannot build a model of architecture {arch[0]!r} from {folder!r}: {err}. "
            "Supported architectures are those of transformer_lens.loading_from_pretrained "
            "(Llama, Mistral, Gemma, GPT-2, GPT-NeoX, Qwen, Phi, OPT, ...)."
        ) from err
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as err:
        raise ModelLoadError(
            f"The folder {folder!r} has no usable tokenizer ({err}). Save one beside the weights with "
            "tokenizer.save_pretrained(dir)."
        ) from err
    try:
        with quiet_loading():
            hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:  # a truncated file raises any of these
        raise ModelLoadError(
            f"Could not read the weights in {folder!r} ({err}). The folder needs model.safetensors "
            "(or pytorch_model.bin) matching config.json."
        ) from err
    state_dict = get_pretrained_state_dict(folder, cfg, hf_model=hf_model, dtype=dtype)
    del hf_model
    with warnings.catch_warnings():  # interp chose HookedTransformer on purpose; the notice is for TL's users
        warnings.filterwarnings("ignore", message="HookedTransformer is deprecated", category=DeprecationWarning)
        model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)
    model.load_and_process_state_dict(state_dict, **PROCESSING_OPTIONS[processing])
    model.to(device, print_details=False)  # TransformerLens prints "Moving model to device" otherwise
    model.eval()
    return model


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence what loading prints that says nothing to the user: transformers' per-tensor "Loading
    weights" bar and TransformerLens's print-outs. Only for the duration of our own call; the
    caller's progress-bar setting is restored after it."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _load_hub(
    name: str, *, device: torch.device, dtype: torch.dtype, processing: Processing, n_ctx: int | None
) -> "HookedTransformer":
    from transformer_lens import HookedTransformer

    kwargs = dict(PROCESSING_OPTIONS[processing])
    if n_ctx is not None:
        kwargs["n_ctx"] = n_ctx
    try:
        with quiet_loading():
            model = HookedTransformer.from_pretrained(name, device=str(device), dtype=dtype, **kwargs)
    except Exception as err:  # the hub stack raises many types; we only translate the offline case
        text = f"{type(err).__name__}: {err}"
        if "Valid official model names" in text:  # TL's own refusal appends ~7,000 characters of names
            close = difflib.get_close_matches(name, _official_names(), n=5, cutoff=0.6)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ModelLoadError(
                f"Unknown model {name!r}: TransformerLens loads only its own model names from the hub.{hint} For "
                "another hub model, download it where a network exists and pass the local folder "
                "(transformer_lens.loading_from_pretrained.OFFICIAL_MODEL_NAMES lists the names)."
            ) from None
        text = text if len(text) <= 400 else text[:400] + " ..."
        offline_markers = ("offline", "LocalEntryNotFound", "Connection", "resolve", "Max retries", "cached")
        if _hub_offline() or any(m.lower() in text.lower() for m in offline_markers):
            raise ModelLoadError(
                f"Could not load {name!r} from the Hugging Face hub: no network (or HF_HUB_OFFLINE=1) and "
                "nothing cached. Download it once where a network exists "
                f"(`huggingface-cli download {name}`) and pass the local folder, or use a zoo model "
                f"(`interp zoo list`). Original error: {text}"
            ) from err
        raise
    model.eval()
    return model


def load_model(
    source: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    processing: Processing = "none",
    n_ctx: int | None = None,
    names: Mapping[str, Path] | None = None,
) -> "HookedTransformer":
    """Load a model as a TransformerLens ``HookedTransformer``.

    ``interp.load_model`` is this function with the zoo's names filled in (``names``).

    Args:
        source: a local Hugging Face folder (config.json + weights + tokenizer; loads with no
            network at all), a TransformerLens / hub model name (downloaded when a network exists),
            or a key of ``names``.
        device: ``None`` picks CUDA, MPS, then CPU.
        dtype: ``torch.float32`` by default; ``"bfloat16"``/``torch.bfloat16`` for big models on GPU.
        processing: weight processing, see :data:`Processing`. The default ``"none"`` keeps the raw
            weights, so activations match the Hugging Face model and SAEs trained on raw residuals.
        n_ctx: override the context length (e.g. to save memory).
        names: model names and their folders (the zoo's: ``interp.zoo.named_folders()``).

    Example:
        >>> from interp import load_model
        >>> model = load_model("toy-lm")                       # bundled zoo model, offline
        >>> model = load_model("../shared/models/stories260K")  # a local HF folder, offline
    """
    if not isinstance(source, (str, os.PathLike)) or (isinstance(source, str) and not source.strip()):
        raise ModelLoadError(f"load_model(source={source!r}): pass a zoo name, a local Hugging Face folder or a hub "
                             "model name (a string or a path).")
    if n_ctx is not None and (isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 1):
        raise ModelLoadError(f"load_model(n_ctx={n_ctx!r}) is invalid: it must be None (the model's own context) or an "
                             "integer >= 1.")
    if not isinstance(processing, str) or processing not in PROCESSING_OPTIONS:
        raise ModelLoadError(
            f"processing={processing!r} is not one of {sorted(PROCESSING_OPTIONS)}; see interp.core.models.Processing."
        )
    dev = resolve_device(device)
    if dtype is None:
        dtype = torch.float32
    if isinstance(dtype, str):
        if not hasattr(torch, dtype) or not isinstance(getattr(torch, dtype), torch.dtype):
            raise ModelLoadError(f"Unknown dtype {dtype!r}: use 'float32', 'bfloat16' or 'float16'.")
        dtype = getattr(torch, dtype)
    resolved = _resolve(source, dict(names or {}))
    if resolved.kind in ("zoo", "folder"):
        return _load_folder(resolved.location, device=dev, dtype=dtype, processing=processing, n_ctx=n_ctx)
    return _load_hub(resolved.location, device=dev, dtype=dtype, processing=processing, n_ctx=n_ctx)
