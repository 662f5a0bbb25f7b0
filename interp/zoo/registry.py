"""Registry of zoo models: a name, what it is for, and the recipe that trains it."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model. ``recipe`` is ``"module:function"``; the function takes ``out_dir`` and
    keyword overrides and writes the Hugging Face folder plus ``card.json`` there."""

    name: str
    description: str
    recipe: str

    def train(self, **kwargs: Any) -> Path:
        module, func = self.recipe.split(":")
        out_dir = kwargs.pop("out_dir", CHECKPOINTS / self.name)
        return getattr(importlib.import_module(module), func)(out_dir=Path(out_dir), **kwargs)


REGISTRY: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    if entry.name in REGISTRY:
        raise ValueError(f"Zoo model {entry.name!r} is registered twice.")
    REGISTRY[entry.name] = entry
    return entry


register(
    ZooEntry(
        name="toy-lm",
        description="General toy Llama trained on a synthetic corpus with planted induction, successor, "
        "attention-sink, question-answer and arithmetic/copy structure (the default model).",
        recipe="interp.zoo.toy_lm:train",
    )
)

register(
    ZooEntry(
        name="toy-translate",
        description="Toy multilingual Llama for the translation-barrier demo: word translation among 12 "
        "languages of the bundled lexicon, English pivot dominating the corpus, low-resource languages rare.",
        recipe="interp.zoo.toy_translate:train",
    )
)
