"""Offline-first model loading: local Hugging Face folders, hub names, and named folders (the zoo passes
its models' names), returned as a TransformerLens ``TransformerBridge`` (the default) or
``HookedTransformer`` that the user owns.

Two front-ends (``frontend=``):

- ``"bridge"`` (default): TransformerLens 3's maintained front-end. The Hugging Face model itself runs
  (``attn_implementation="eager"``, so attention patterns are hooked), wrapped with TransformerLens hook
  names, in compatibility mode with no weight processing: every hook carries the Hugging Face
  activations. Loads any architecture transformers and the bridge know, bf16, ``device_map`` (split over
  GPUs) and 8/4-bit (bitsandbytes).
- ``"hooked"``: the ``HookedTransformer`` (re-implemented forward, deprecated by TransformerLens); faster
  on small models, one device, and ``processing=`` can fold / centre its weights. Built here from the
  folder's config for the nine families interp tests (TransformerLens's own converter guesses the family
  from the folder *name*, which breaks Llama-3.x, Gemma-2/3 and GPT-2 folders), else by TransformerLens.

``HookedTransformer.from_pretrained`` contacts the hub even for a local folder, so folders are loaded with
a locally built Hugging Face model; nothing here touches the network unless a hub name is asked for.
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
from typing import TYPE_CHECKING, Any, Literal

import torch

from interp.core.errors import InterpLoadError

if TYPE_CHECKING:  # imported lazily: transformer_lens takes seconds to import
    from transformer_lens import HookedTransformer
    from transformer_lens.model_bridge import TransformerBridge

__all__ = [
    "Frontend",
    "Processing",
    "Quantization",
    "ModelLoadError",
    "load_model",
    "from_hf",
    "copy_model",
    "resolve_device",
    "PROCESSING_OPTIONS",
]

Frontend = Literal["bridge", "hooked"]
"""Which TransformerLens front-end :func:`load_model` returns (see the module docstring)."""

Quantization = Literal["8bit", "4bit"]
"""bitsandbytes quantization of the weights (bridge only; needs a CUDA GPU and ``bitsandbytes``)."""

DeviceMap = str | Mapping[str, Any]
"""``"auto"``/``"balanced"``/``"sequential"`` or ``{module name: device}`` (accelerate's device maps)."""

Processing = Literal["none", "fold_ln", "full"]
"""How TransformerLens may rewrite the weights on load.

- ``"none"`` (default): weights exactly as trained; every hook (``hook_resid_post``,
  ``ln1.hook_normalized``...) carries the same numbers as the Hugging Face model. Needed for SAEs
  trained on raw residuals (CorrSteer) and the safe choice for everything else.
- ``"fold_ln"``: fold the norm weights into the following linear layers. Logits unchanged;
  ``ln*.hook_normalized`` then reads the unscaled normalised input.
- ``"full"``: ``fold_ln`` plus centring of writing weights and of the unembedding and folding the value
  biases into the output bias (TransformerLens's own ``from_pretrained`` default). Log-probabilities
  unchanged, residual activations are not.
"""

PROCESSING_OPTIONS: dict[str, dict[str, bool]] = {
    # fold_value_biases defaults to True in TransformerLens: it moves b_V into b_O, which changes hook_v and
    # hook_z on models with value biases (GPT-2, Qwen2, Pythia), so "none" must switch it off explicitly
    "none": dict(fold_ln=False, center_writing_weights=False, center_unembed=False, fold_value_biases=False),
    "fold_ln": dict(fold_ln=True, center_writing_weights=False, center_unembed=False, fold_value_biases=False),
    "full": dict(fold_ln=True, center_writing_weights=True, center_unembed=True, fold_value_biases=True),
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


def _official_name(name: str) -> str:
    from transformer_lens.loading_from_pretrained import get_official_model_name

    try:
        return get_official_model_name(name)
    except ValueError:
        return name


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


def _read_tokenizer(source: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise ModelLoadError(
            f"The folder {source!r} has no usable tokenizer ({err}). Save one beside the weights with "
            "tokenizer.save_pretrained(dir)."
        ) from err


def _read_config_json(folder: str) -> dict[str, Any]:
    config_path = Path(folder) / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"{config_path} is not valid JSON ({err}); the model folder is damaged.") from err
    if not isinstance(config, dict):
        raise ModelLoadError(f"{config_path} must hold a JSON object (a Hugging Face config).")
    return config


def _architecture(folder: str) -> str:
    arch = _read_config_json(folder).get("architectures") or ["<none>"]
    return str(arch[0])


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


def _hooked_config(folder: str, *, device: torch.device, dtype: torch.dtype, processing: Processing,
                   n_ctx: int | None) -> Any:
    from transformer_lens import HookedTransformerConfig
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config
    from transformers import AutoConfig

    from interp.core.hooked_config import SUPPORTED, hooked_config_dict

    arch = _architecture(folder)
    fold = PROCESSING_OPTIONS[processing]["fold_ln"]
    if arch not in SUPPORTED:  # TransformerLens's own converter (families beyond the tested nine)
        try:
            return get_pretrained_model_config(folder, device=str(device), dtype=dtype, n_ctx=n_ctx, fold_ln=fold)
        except (NotImplementedError, ValueError, KeyError, AttributeError) as err:
            raise ModelLoadError(
                f"TransformerLens cannot build a HookedTransformer of architecture {arch!r} from {folder!r}: {err}. "
                "Load it with frontend='bridge' (the default), which runs any architecture transformers and "
                "TransformerLens's bridge support."
            ) from err
    try:
        fields = hooked_config_dict(AutoConfig.from_pretrained(folder))
    except NotImplementedError as err:
        raise ModelLoadError(f"{err} (folder {folder!r})") from err
    if fold:
        fields["normalization_type"] = {"LN": "LNPre", "RMS": "RMSPre"}[fields["normalization_type"]]
    if n_ctx is not None:
        fields["n_ctx"] = int(n_ctx)
    fields.setdefault("default_prepend_bos", True)
    return HookedTransformerConfig(**fields, model_name=Path(folder).name, init_weights=False, device=str(device),
                                   dtype=dtype, n_devices=1)


def _load_hooked_folder(
    folder: str, *, device: torch.device, dtype: torch.dtype, processing: Processing, n_ctx: int | None
) -> "HookedTransformer":
    from transformer_lens import HookedTransformer
    from safetensors import SafetensorError
    from transformer_lens.loading_from_pretrained import get_pretrained_state_dict
    from transformers import AutoModelForCausalLM

    cfg = _hooked_config(folder, device=device, dtype=dtype, processing=processing, n_ctx=n_ctx)
    tokenizer = _read_tokenizer(folder)
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


def _quantization_config(quantization: Quantization | None) -> Any:
    if quantization is None:
        return None
    if quantization not in ("8bit", "4bit"):
        raise ModelLoadError(f"quantization={quantization!r}: use '8bit', '4bit' or None.")
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelLoadError(
            f"quantization={quantization!r} needs the bitsandbytes package (and a CUDA GPU): "
            "pip install bitsandbytes, or load in bfloat16 (dtype='bfloat16', about half the float32 memory)."
        )
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_type="nf4")


def _load_hf(source: str, *, device: torch.device | None, dtype: torch.dtype, device_map: DeviceMap | None,
             quantization: Quantization | None, n_ctx: int | None) -> Any:
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = dict(dtype=dtype, attn_implementation="eager")
    if device_map is not None:
        kwargs["device_map"] = device_map
    qcfg = _quantization_config(quantization)
    if qcfg is not None:
        kwargs["quantization_config"] = qcfg
        kwargs.setdefault("device_map", "auto")  # bitsandbytes places the quantized weights itself
    if n_ctx is not None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(source)
        for field in ("max_position_embeddings", "n_positions"):
            if hasattr(config, field):
                setattr(config, field, int(n_ctx))
                break
        kwargs["config"] = config
    from safetensors import SafetensorError

    try:
        with quiet_loading():
            hf = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except SafetensorError as err:
        raise ModelLoadError(
            f"Could not read the weights in {source!r} ({err}). The folder needs model.safetensors "
            "(or pytorch_model.bin) matching config.json."
        ) from err
    except (OSError, ValueError) as err:
        if "does not recognize this architecture" in str(err) or "Unrecognized configuration" in str(err):
            raise ModelLoadError(
                f"transformers cannot build the architecture {_architecture(source) if Path(source).is_dir() else source!r} "
                f"({err}). Upgrade transformers, or check config.json."
            ) from err
        raise
    if device_map is None and qcfg is None and device is not None:
        hf.to(device)
    return hf.eval()


def from_hf(hf_model: Any, tokenizer: Any, *, name: str | None = None) -> "TransformerBridge":
    """Wrap a Hugging Face causal LM you built yourself (quantized, dispatched with accelerate, LoRA-merged...)
    in a TransformerBridge the way :func:`load_model` does: compatibility mode, no weight processing.

    Example:
        >>> hf = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager")  # doctest: +SKIP
        >>> model = from_hf(hf, AutoTokenizer.from_pretrained(folder))                      # doctest: +SKIP
    """
    import logging
    import warnings

    from transformer_lens.model_bridge import TransformerBridge

    impl = getattr(getattr(hf_model, "config", None), "_attn_implementation", "eager")
    if impl not in (None, "eager"):
        raise ModelLoadError(
            f"The Hugging Face model uses attn_implementation={impl!r}; the bridge hooks attention patterns only "
            "with eager attention. Load it with attn_implementation='eager'."
        )
    label = name or getattr(getattr(hf_model, "config", None), "_name_or_path", None) or type(hf_model).__name__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        level = logging.getLogger("transformer_lens").level
        logging.getLogger("transformer_lens").setLevel(logging.ERROR)
        try:
            bridge = TransformerBridge.boot_transformers(str(label), hf_model=hf_model, tokenizer=tokenizer)
            bridge.enable_compatibility_mode(no_processing=True, disable_warnings=True)
        except (ValueError, NotImplementedError, KeyError) as err:
            arch = (getattr(hf_model.config, "architectures", None) or [type(hf_model).__name__])[0]
            raise ModelLoadError(
                f"TransformerLens's bridge cannot wrap architecture {arch!r}: {err}. See "
                "transformer_lens.model_bridge.supported_architectures for the families it knows."
            ) from err
        finally:
            logging.getLogger("transformer_lens").setLevel(level)
    bridge.eval()
    return bridge


def copy_model(model: Any) -> Any:
    """An independent copy of ``model`` (same weights, own parameters), e.g. a fresh start per GRPO run or a
    frozen reference model.

    ``copy.deepcopy`` alone is not enough for a TransformerBridge (TransformerLens 3.9): the copy keeps the
    original's input-capture hooks, closures over the *original* attention modules, so every forward of the
    copy writes its activations into the original (and after a forward with gradients the original can no
    longer be deep-copied). Re-entering compatibility mode on the copy rewires those hooks to its own modules.

    Example:
        >>> start = copy_model(model)   # doctest: +SKIP
    """
    import copy

    from interp.core.frontend import frontend

    clone = copy.deepcopy(model)
    if frontend(model) == "bridge":
        clone.enable_compatibility_mode(no_processing=True, disable_warnings=True)
    return clone


def _load_bridge(source: str, *, device: torch.device | None, dtype: torch.dtype, device_map: DeviceMap | None,
                 quantization: Quantization | None, n_ctx: int | None) -> "TransformerBridge":
    if Path(source).is_dir():
        from transformers import AutoConfig

        _read_config_json(source)  # a damaged config.json is named as such, not blamed on the weights
        try:
            AutoConfig.from_pretrained(source)
        except (ValueError, KeyError) as err:
            raise ModelLoadError(
                f"transformers cannot build architecture {_architecture(source)!r} from {source!r} ({err}). "
                "Check config.json, or upgrade transformers if the family is newer than it."
            ) from err
        tokenizer = _read_tokenizer(source)
    else:  # a hub name: TransformerLens aliases ("gpt2-small") name the official repository
        from transformers import AutoTokenizer

        source = _official_name(source)
        tokenizer = AutoTokenizer.from_pretrained(source)
    hf = _load_hf(source, device=device, dtype=dtype, device_map=device_map, quantization=quantization, n_ctx=n_ctx)
    return from_hf(hf, tokenizer, name=source)


def _offline_error(name: str, err: Exception) -> ModelLoadError | None:
    full = f"{type(err).__name__}: {err}"
    text = full if len(full) <= 160 else full[:160] + " ..."
    offline_markers = ("offline", "LocalEntryNotFound", "Connection", "resolve", "Max retries", "cached")
    if _hub_offline() or any(m.lower() in full.lower() for m in offline_markers):
        # offline, a name that does not exist and one that is not cached look the same: say both
        return ModelLoadError(
            f"Unknown model {name!r} here: not a zoo name, not a local folder, and not in the local Hugging Face "
            "cache; the hub cannot be asked (no network, or HF_HUB_OFFLINE=1), so check the spelling, or download "
            f"it once where a network exists (`huggingface-cli download {name}`) and pass the folder "
            f"(`interp zoo list` names the bundled models). Original error: {text}"
        )
    return None


def _load_hub_hooked(
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
        if "Valid official model names" in str(err):  # TL's own refusal appends ~7,000 characters of names
            close = difflib.get_close_matches(name, _official_names(), n=5, cutoff=0.6)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ModelLoadError(
                f"Unknown model {name!r}: TransformerLens loads only its own model names from the hub.{hint} For "
                "another hub model, download it where a network exists and pass the local folder "
                "(transformer_lens.loading_from_pretrained.OFFICIAL_MODEL_NAMES lists the names)."
            ) from None
        offline = _offline_error(name, err)
        if offline is not None:
            raise offline from err
        raise
    model.eval()
    return model


def _check_device_map(device_map: Any) -> None:
    if device_map is None or isinstance(device_map, str) or isinstance(device_map, Mapping):
        return
    raise ModelLoadError(
        f"device_map={device_map!r}: use 'auto' (accelerate splits the layers over the visible GPUs, then CPU), "
        "'balanced', 'sequential', or a dict {module name: device} such as {'model.embed_tokens': 0, "
        "'model.layers.0': 0, ..., 'lm_head': 1}."
    )


def load_model(
    source: str | os.PathLike[str],
    *,
    frontend: Frontend = "bridge",
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    device_map: DeviceMap | None = None,
    quantization: Quantization | None = None,
    processing: Processing = "none",
    n_ctx: int | None = None,
    names: Mapping[str, Path] | None = None,
) -> "TransformerBridge | HookedTransformer":
    """Load a model as a TransformerLens ``TransformerBridge`` (default) or ``HookedTransformer``.

    ``interp.load_model`` is this function with the zoo's names filled in (``names``).

    Args:
        source: a local Hugging Face folder (config.json + weights + tokenizer; loads with no
            network at all), a hub / TransformerLens model name (downloaded when a network exists),
            or a key of ``names``.
        frontend: ``"bridge"`` (the Hugging Face model with TransformerLens hooks, raw weights: every
            hook equals the Hugging Face activation) or ``"hooked"`` (HookedTransformer).
        device: ``None`` picks CUDA, MPS, then CPU. Not with ``device_map``.
        dtype: ``torch.float32`` by default; ``"bfloat16"``/``torch.bfloat16`` for big models on GPU.
        device_map: bridge only: ``"auto"`` (split over the visible GPUs) or ``{module: device}`` per layer.
        quantization: bridge only: ``"8bit"`` or ``"4bit"`` (bitsandbytes, CUDA).
        processing: hooked only: weight processing, see :data:`Processing` (the bridge keeps raw weights).
        n_ctx: override the context length (e.g. to save memory).
        names: model names and their folders (the zoo's: ``interp.zoo.named_folders()``).

    Example:
        >>> from interp import load_model
        >>> model = load_model("toy-lm")                                 # bundled zoo model, offline
        >>> model = load_model("../shared/models/stories260K")            # a local HF folder, offline
        >>> model = load_model("meta-llama/Llama-3.1-8B", dtype="bfloat16", device_map="auto")  # doctest: +SKIP
    """
    if not isinstance(source, (str, os.PathLike)) or (isinstance(source, str) and not source.strip()):
        raise ModelLoadError(f"load_model(source={source!r}): pass a zoo name, a local Hugging Face folder or a hub "
                             "model name (a string or a path).")
    if n_ctx is not None and (isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 1):
        raise ModelLoadError(f"load_model(n_ctx={n_ctx!r}) is invalid: it must be None (the model's own context) or an "
                             "integer >= 1.")
    if not isinstance(frontend, str) or frontend not in ("bridge", "hooked"):
        raise ModelLoadError(f"frontend={frontend!r}: use 'bridge' (default, TransformerBridge) or 'hooked' (HookedTransformer).")
    if not isinstance(processing, str) or processing not in PROCESSING_OPTIONS:
        raise ModelLoadError(
            f"processing={processing!r} is not one of {sorted(PROCESSING_OPTIONS)}; see interp.core.models.Processing."
        )
    if frontend == "bridge" and processing != "none":
        raise ModelLoadError(
            f"processing={processing!r} folds or centres weights, which only the HookedTransformer front-end does here: "
            "pass frontend='hooked'. The bridge keeps the raw Hugging Face weights, so its hooks carry the HF activations."
        )
    if frontend == "hooked" and (device_map is not None or quantization is not None):
        raise ModelLoadError(
            "device_map and quantization need frontend='bridge' (the default): a HookedTransformer runs on one device "
            "in float weights."
        )
    if device_map is not None and device is not None:
        raise ModelLoadError("Pass either device= (one device) or device_map= (a split), not both.")
    _check_device_map(device_map)
    dev = resolve_device(device) if device_map is None and quantization is None else None
    if dtype is None:
        dtype = torch.float32
    if isinstance(dtype, str):
        if not hasattr(torch, dtype) or not isinstance(getattr(torch, dtype), torch.dtype):
            raise ModelLoadError(f"Unknown dtype {dtype!r}: use 'float32', 'bfloat16' or 'float16'.")
        dtype = getattr(torch, dtype)
    resolved = _resolve(source, dict(names or {}))
    if frontend == "hooked":
        assert dev is not None
        if resolved.kind in ("zoo", "folder"):
            return _load_hooked_folder(resolved.location, device=dev, dtype=dtype, processing=processing, n_ctx=n_ctx)
        return _load_hub_hooked(resolved.location, device=dev, dtype=dtype, processing=processing, n_ctx=n_ctx)
    try:
        return _load_bridge(resolved.location, device=dev, dtype=dtype, device_map=device_map,
                            quantization=quantization, n_ctx=n_ctx)
    except ModelLoadError:
        raise
    except Exception as err:
        if resolved.kind == "hub":
            offline = _offline_error(resolved.location, err)
            if offline is not None:
                raise offline from err
        if resolved.kind in ("zoo", "folder") and isinstance(err, OSError):
            raise ModelLoadError(
                f"Could not read the weights in {resolved.location!r} ({err}). The folder needs model.safetensors "
                "(or pytorch_model.bin) matching config.json."
            ) from err
        raise
