"""Registry of every artefact the project ships: a name, its kind, what it is for, the recipe that
rebuilds it, and what the recipe needs (other artefacts, or a shared model folder the caller passes).

``interp zoo train --all`` (``make zoo``) walks this table in order, so every checkpoint, SAE, Lorsa
and tuned lens under ``checkpoints/`` can be rebuilt from its seeded recipe.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["CHECKPOINTS", "Kind", "ZooEntry", "REGISTRY", "register"]

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"

Kind = Literal["model", "saes", "lorsa", "tuned_lens"]


@dataclass(frozen=True)
class ZooEntry:
    """One bundled artefact. ``recipe`` is ``"module:function"``; the function takes ``out_dir`` and
    keyword overrides and writes the artefact plus its ``card.json`` there. ``needs`` names what the
    recipe reads: other zoo entries (trained first) or ``"stories260K"`` (the shared real model, whose
    folder the caller passes as ``host=``)."""

    name: str
    kind: Kind
    description: str
    recipe: str
    folder: str | None = None  # below CHECKPOINTS; default: the name
    needs: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return CHECKPOINTS / (self.folder or self.name)

    def train(self, **kwargs: Any) -> Path:
        module, func = self.recipe.split(":")
        out_dir = kwargs.pop("out_dir", self.path)
        return getattr(importlib.import_module(module), func)(out_dir=Path(out_dir), **kwargs)


REGISTRY: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    if entry.name in REGISTRY:
        raise ValueError(f"Zoo artefact {entry.name!r} is registered twice.")
    REGISTRY[entry.name] = entry
    return entry


register(ZooEntry(
    name="toy-lm", kind="model",
    description="General toy Llama trained on a synthetic corpus with planted induction, successor, attention-sink, "
                "question-answer and arithmetic/copy structure (the default model).",
    recipe="interp.zoo.toy_lm:train",
))
register(ZooEntry(
    name="toy-lm-planted", kind="model",
    description="toy-lm's shape and corpus plus the planted ground truth of issue 14 (interp.zoo.planted): repeated "
                "random-token spans at the token level (induction), ordinal runs (successor), a latent same/opposite "
                "mode (CorrSteer) and planted-frequency code recall (THR's rare successes). Its card lists every design "
                "tried and what each method recovered.",
    recipe="interp.zoo.toy_lm_planted:train",
))
register(ZooEntry(
    name="toy-mode", kind="model",
    description="Tiny Llama trained only on same/opposite rule episodes (interp.zoo.toy_mode): the answer depends on a "
                "latent mode inferred from a truthful rule line and 0-3 noisy examples, so the model's belief in it "
                "varies with the evidence (CorrSteer's planted latent, issue 14). Its card records every design tried "
                "and what CorrSteer recovered.",
    recipe="interp.zoo.toy_mode:train",
))
register(ZooEntry(
    name="toy-translate", kind="model",
    description="Toy multilingual Llama for the translation-barrier demo: word translation among 12 languages of "
                "the bundled lexicon, English pivot dominating the corpus, low-resource languages rare.",
    recipe="interp.zoo.toy_translate:train",
))
register(ZooEntry(
    name="toy-translate-tuned-lens", kind="tuned_lens",
    description="Tuned lens for toy-translate, trained on held-out corpus text (BOS-first windows).",
    recipe="interp.zoo.toy_translate:train_tuned_lens", folder="toy-translate/tuned_lens", needs=("toy-translate",),
))
register(ZooEntry(
    name="toy-pivot", kind="model",
    description="Toy multilingual Llama with a planted English pivot for the translation barrier: every language "
                "reached through English, (language pair, concept) combinations held out of direct translation.",
    recipe="interp.zoo.toy_pivot:train",
))
register(ZooEntry(
    name="toy-pivot-tuned-lens", kind="tuned_lens",
    description="Tuned lens for toy-pivot, trained on held-out corpus documents (BOS-first, one per row).",
    recipe="interp.zoo.toy_pivot:train_tuned_lens", folder="toy-pivot/tuned_lens", needs=("toy-pivot",),
))
register(ZooEntry(
    name="toy-lm-saes", kind="saes",
    description="TopK residual SAEs (512 features, k=16) for toy-lm at blocks.0-3.hook_resid_post, sae-lens format.",
    recipe="interp.zoo.saes:train", needs=("toy-lm",),
))
register(ZooEntry(
    name="toy-mode-saes", kind="saes",
    description="TopK residual SAEs (256 features, k=8) for toy-mode at blocks.0-2.hook_resid_post, sae-lens format, "
                "trained on unseen toy-mode documents.",
    recipe="interp.zoo.toy_mode:train_saes", needs=("toy-mode",),
))
register(ZooEntry(
    name="toy-lm-planted-lorsa", kind="lorsa",
    description="Lorsa for toy-lm-planted's best induction layer (1024 OV heads, 4 QK heads, top-K 16), with the "
                "host and Lorsa heads scored like for like on the card (interp.zoo.recovery.lorsa).",
    recipe="interp.zoo.recovery.lorsa:train", needs=("toy-lm-planted",),
))
register(ZooEntry(
    name="stories260K-lorsa-L2", kind="lorsa",
    description="Lorsa for attention layer 2 of stories260K (512 OV heads, 8 QK heads, top-K 16) at the authors' "
                "1.3M-token budget.",
    recipe="interp.zoo.stories_lorsa:train", needs=("stories260K",),
))
