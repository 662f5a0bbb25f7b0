"""The bundled model zoo: small models this project trains with its own code and ships.

Each entry is a Hugging Face folder (config.json, model.safetensors, tokenizer files) plus a
``card.json`` (corpus, size, training loss, measured task accuracies) under
``interp/zoo/checkpoints/<name>/``. Adding a model is one :class:`ZooEntry` in ``registry.py``.

>>> from interp import zoo
>>> "toy-lm" in zoo.names()
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp.zoo.registry import CHECKPOINTS, REGISTRY, ZooEntry, register

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["ZooEntry", "register", "names", "model_dir", "card", "load", "train", "DEFAULT_MODEL"]

DEFAULT_MODEL = "toy-lm"


def names() -> list[str]:
    """Names of the registered zoo models."""
    return list(REGISTRY)


def _entry(name: str) -> ZooEntry:
    if name not in REGISTRY:
        raise KeyError(f"No zoo model named {name!r}; the zoo has: {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def model_dir(name: str) -> Path:
    """Folder of a zoo checkpoint; a clear error when it was never trained."""
    folder = CHECKPOINTS / _entry(name).name
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"The zoo model {name!r} has no checkpoint at {folder}. Train it with `interp zoo train {name}` "
            "(or `make zoo`)."
        )
    return folder


def card(name: str) -> dict[str, Any]:
    """The model card (``card.json``) of a zoo model: corpus, size, loss, task accuracies."""
    return json.loads((model_dir(name) / "card.json").read_text())


def load(name: str = DEFAULT_MODEL, **kwargs: Any) -> "HookedTransformer":
    """Load a zoo model as a ``HookedTransformer`` (keyword arguments go to ``load_model``)."""
    from interp.models import load_model

    return load_model(str(model_dir(name)), **kwargs)


def train(name: str, **kwargs: Any) -> Path:
    """Retrain a zoo model with its recipe (seeded, reproducible) and write its checkpoint."""
    return _entry(name).train(**kwargs)
