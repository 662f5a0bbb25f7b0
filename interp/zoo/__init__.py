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
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    if name not in REGISTRY:
        raise KeyError(f"No zoo artefact named {name!r}; the zoo has: {', '.join(REGISTRY)}.")
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
        raise KeyError(f"{name!r} is a zoo {e.kind}, not a model; the zoo's models are: {', '.join(names())}.")
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
    return json.loads((artefact_dir(name) / "card.json").read_text())


def load(name: str = DEFAULT_MODEL, **kwargs: Any) -> "HookedTransformer":
    """Load a zoo model (keyword arguments go to :func:`interp.core.models.load_model`)."""
    from interp.core.models import load_model

    return load_model(model_dir(name), **kwargs)


def load_saes(name: str = "toy-lm-saes", *, device: str | None = None) -> dict[str, Any]:
    """The bundled SAEs of a zoo model, keyed by hook name (sae-lens ``SAE`` objects)."""
    from interp.steering.sae_training import load_saes as _load

    e = entry(name)
    if e.kind != "saes":
        raise KeyError(f"{name!r} is a zoo {e.kind}, not a set of SAEs; SAEs: {', '.join(names('saes'))}.")
    return _load(artefact_dir(name), device=device or "cpu")


def load_lorsa(name: str = "stories260K-lorsa-L2", *, device: str = "cpu") -> Any:
    """A bundled Lorsa (:class:`interp.lorsa.Lorsa`)."""
    from interp.lorsa import Lorsa

    return Lorsa.load(artefact_dir(name), device=device)


def load_tuned_lens(name: str = "toy-translate-tuned-lens", model: Any = None, *, attach: bool = True) -> Any:
    """A bundled tuned lens (:class:`interp.lens.TunedLens`), attached to ``model`` when given."""
    from interp.lens import TunedLens

    return TunedLens.load(artefact_dir(name), model, attach=attach)


def suggested_grpo_lr(model: str) -> float:
    """The GRPO learning rate measured for a bundled or shared model (its card's ``grpo.suggested_lr``).

    A different model needs its own sweep: see ``interp.app.thr_experiment`` (``--lr``).
    """
    if model in names():
        grpo = card(model).get("grpo", {})
        if "suggested_lr" in grpo:
            return float(grpo["suggested_lr"])
        raise KeyError(f"The card of {model!r} records no GRPO learning rate; sweep one with interp.app.thr_experiment.")
    from interp.zoo.stories import STORIES260K_GRPO_LR

    if "stories260K" in str(model):
        return STORIES260K_GRPO_LR
    raise KeyError(
        f"No measured GRPO learning rate for {model!r}. Sweep a few (e.g. 1e-5 .. 1e-3) for 20 steps with "
        "`python -m interp.app.thr_experiment --model M --variants plain --lr LR` and keep the largest that "
        "does not lower held-out greedy accuracy."
    )


def train(name: str, **kwargs: Any) -> Path:
    """Rebuild a zoo artefact with its recipe (seeded, reproducible) and write it to its folder."""
    return entry(name).train(**kwargs)
