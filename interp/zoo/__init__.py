"""The bundled zoo: small models and artefacts this project trains with its own code and ships.

Every artefact (models, their SAEs, the bundled Lorsa, the tuned lens) is one :class:`ZooEntry` in
``registry.py`` with the seeded recipe that rebuilds it, its folder under ``interp/zoo/checkpoints/``
and a ``card.json`` (corpus, size, training, measured numbers). Models are Hugging Face folders.

>>> from interp import zoo
>>> "toy-lm" in zoo.names()
True
>>> "toy-lm-saes" in zoo.names(kind="saes")
True
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.zoo.errors import UnknownArtefactError, ZooConfigError, ZooLoadError
from interp.zoo.registry import CHECKPOINTS, REGISTRY, Kind, ZooEntry, register

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["ZooEntry", "register", "names", "entry", "model_dir", "artefact_dir", "card", "load", "load_saes",
           "load_lorsa", "load_tuned_lens", "train", "named_folders", "suggested_grpo_lr", "DEFAULT_MODEL",
           "tasks", "stories"]

DEFAULT_MODEL = "toy-lm"


def __getattr__(name: str) -> Any:
    # submodules on first use (they import methods; the registry itself stays light)
    if name in ("tasks", "stories", "corpus", "saes"):
        return importlib.import_module(f"interp.zoo.{name}")
    raise AttributeError(f"module 'interp.zoo' has no attribute {name!r}")


def names(kind: Kind | None = "model") -> list[str]:
    """Names of the registered artefacts of ``kind`` (``None``: every artefact)."""
    return [n for n, e in REGISTRY.items() if kind is None or e.kind == kind]


def entry(name: str) -> ZooEntry:
    if not isinstance(name, str) or name not in REGISTRY:
        hint = f" (a {type(name).__name__}; zoo names are strings)" if not isinstance(name, str) else ""
        raise UnknownArtefactError(f"No zoo artefact named {name!r}{hint}; the zoo has: {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def artefact_dir(name: str) -> Path:
    """Folder of a trained zoo artefact; a clear error when it was never trained."""
    e = entry(name)
    # a card, or the config file its format writes (a tuned lens saves tuned_lens.json, no config.json)
    if not any((e.path / f).is_file() for f in ("card.json", "config.json", "tuned_lens.json")):
        raise FileNotFoundError(
            f"The zoo artefact {name!r} has no checkpoint at {e.path}. Train it with `interp zoo train {name}` "
            "(or `make zoo`)."
        )
    return e.path


def model_dir(name: str) -> Path:
    """Folder of a zoo model (a Hugging Face folder)."""
    e = entry(name)
    if e.kind != "model":
        raise UnknownArtefactError(f"{name!r} is a zoo {e.kind}, not a model; the zoo's models are: {', '.join(names())}.")
    path = artefact_dir(name)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"The zoo model {name!r} at {path} has no config.json; retrain it with "
                                f"`interp zoo train {name}`.")
    return path


def named_folders() -> dict[str, Path]:
    """Zoo model names and their folders, for :func:`interp.core.models.load_model`'s ``names``."""
    return {n: REGISTRY[n].path for n in names()}


def card(name: str) -> dict[str, Any]:
    """The card (``card.json``) of a zoo artefact: what it is, how it was made, what was measured."""
    path = artefact_dir(name) / "card.json"
    if not path.is_file():
        from interp.core.errors import missing_file

        raise missing_file(ZooLoadError, f"The zoo artefact {name!r} has no card at {path}; retrain it with "
                                         f"`interp zoo train {name}`.")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ZooLoadError(f"{path} is not valid JSON ({err}); restore it from git or retrain {name!r}.") from err
    if not isinstance(data, dict):
        raise ZooLoadError(f"{path} must hold a JSON object (the card of {name!r}); got a {type(data).__name__}.")
    return data


def load(name: str = DEFAULT_MODEL, **kwargs: Any) -> "HookedTransformer":
    """Load a zoo model (keyword arguments go to :func:`interp.core.models.load_model`)."""
    from interp.core.models import load_model

    return load_model(model_dir(name), **kwargs)


def load_saes(name: str = "toy-lm-saes", *, device: str | None = None) -> dict[str, Any]:
    """The bundled SAEs of a zoo model, keyed by hook name (sae-lens ``SAE`` objects)."""
    from interp.steering.sae_training import load_saes as _load

    e = entry(name)
    if e.kind != "saes":
        raise UnknownArtefactError(f"{name!r} is a zoo {e.kind}, not a set of SAEs; SAEs: {', '.join(names('saes'))}.")
    return _load(artefact_dir(name), device=device or "cpu")


def load_lorsa(name: str = "stories260K-lorsa-L2", *, device: str = "cpu") -> Any:
    """A bundled Lorsa (:class:`interp.lorsa.Lorsa`)."""
    from interp.lorsa import Lorsa

    return Lorsa.load(artefact_dir(name), device=device)


def load_tuned_lens(name: str = "toy-translate-tuned-lens", model: Any = None, *, attach: bool = True) -> Any:
    """A bundled tuned lens (:class:`interp.lens.TunedLens`), attached to ``model`` when given."""
    from interp.lens import TunedLens

    return TunedLens.load(artefact_dir(name), model, attach=attach)


def _model_identity(model: Any) -> tuple[str, Any]:
    """(name, model object or None) of what ``suggested_grpo_lr`` was given: a zoo name, a folder path, a
    TransformerLens model (its ``cfg.model_name`` is the folder's name) or a Hugging Face model."""
    if isinstance(model, str):
        return model, None
    if isinstance(model, os.PathLike):
        return Path(model).name, None
    cfg = getattr(model, "cfg", None)
    if cfg is not None and getattr(cfg, "model_name", None):
        return str(cfg.model_name), model
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "name_or_path", None):
        return Path(str(config.name_or_path)).name, model
    raise ZooConfigError(
        f"suggested_grpo_lr needs a zoo name, a model folder or a loaded model; got a {type(model).__name__} with no "
        "name (cfg.model_name / config.name_or_path)."
    )


def _same_architecture(model: Any, folder: Path) -> bool:
    """Whether a loaded model has the shape of the model saved in ``folder`` (width, depth, vocabulary)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return True  # nothing to compare against: trust the name
    cfg = getattr(model, "cfg", None)
    if cfg is not None:
        have = (cfg.d_model, cfg.n_layers, cfg.d_vocab)
    else:
        c = model.config
        have = (c.hidden_size, c.num_hidden_layers, c.vocab_size)
    return have == (config.get("hidden_size"), config.get("num_hidden_layers"), config.get("vocab_size"))


def suggested_grpo_lr(model: Any) -> float:
    """The GRPO learning rate measured for a bundled or shared model (its card's ``grpo.suggested_lr``).

    ``model`` is a zoo name (``"toy-lm"``), a model folder, or a loaded model (TransformerLens or Hugging
    Face; recognised by the folder it was loaded from and checked against that model's shape). Any other
    model raises :class:`~interp.zoo.errors.UnknownArtefactError` saying how to measure a rate; until
    then :data:`interp.thr.grpo.DEFAULT_LR` (2e-5) is the safe start.

    >>> suggested_grpo_lr("toy-lm")
    2e-05
    """
    from interp.zoo.stories import STORIES260K_GRPO_LR

    name, obj = _model_identity(model)
    if name in names():
        if obj is not None and not _same_architecture(obj, entry(name).path):
            raise UnknownArtefactError(
                f"This model is named {name!r} but does not have the shape of the zoo's {name!r} (d_model, layers, "
                "vocabulary), so the zoo's measured rate does not apply. " + _SWEEP_HINT
            )
        grpo = card(name).get("grpo", {})
        if "suggested_lr" in grpo:
            return float(grpo["suggested_lr"])
        raise UnknownArtefactError(f"The card of {name!r} records no GRPO learning rate. " + _SWEEP_HINT)
    if name == "stories260K" or (isinstance(model, (str, os.PathLike)) and Path(model).name == "stories260K"):
        return STORIES260K_GRPO_LR
    raise UnknownArtefactError(f"No measured GRPO learning rate for {short_name(model)}. " + _SWEEP_HINT)


_SWEEP_HINT = ("Sweep a few (e.g. 1e-5 .. 1e-3) for 20 steps with `python -m interp.app.thr_experiment --model M "
               "--variants plain --lr LR` and keep the largest that does not lower held-out greedy accuracy; "
               "interp.thr.grpo.DEFAULT_LR (2e-5) is a safe start.")


def short_name(model: Any) -> str:
    """A short label of a model or name for messages (never a module's whole repr)."""
    if isinstance(model, (str, os.PathLike)):
        return repr(os.fspath(model))
    name = getattr(getattr(model, "cfg", None), "model_name", None) or \
        getattr(getattr(model, "config", None), "name_or_path", None)
    return f"a {type(model).__name__}" + (f" named {str(name)!r}" if name else "")


def train(name: str, **kwargs: Any) -> Path:
    """Rebuild a zoo artefact with its recipe (seeded, reproducible) and write it to its folder."""
    return entry(name).train(**kwargs)
