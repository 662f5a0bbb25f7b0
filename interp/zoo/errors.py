"""The error types of the zoo (``interp.zoo``): bad configuration of a recipe, unknown artefact names, and
cards or checkpoints that cannot be read (the message names the file)."""

from __future__ import annotations

from interp.core.errors import InterpConfigError, InterpLoadError

__all__ = ["ZooConfigError", "UnknownArtefactError", "ZooLoadError"]


class ZooConfigError(InterpConfigError):
    """A zoo config field (ModelConfig, LMTrainConfig, CorpusConfig, recipes) or argument that cannot work; the
    message names the field, the value, the allowed range and the fix."""


class UnknownArtefactError(ZooConfigError, KeyError):
    """A name the zoo does not have (also a ``KeyError``); the message lists the names it has."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0]) if self.args else ""


class ZooLoadError(InterpLoadError):
    """A zoo card or checkpoint is unreadable or incomplete."""
