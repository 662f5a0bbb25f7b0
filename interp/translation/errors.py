"""The error types of translation-barrier probing (``interp.translation``): bad configuration or arguments
(ProbeConfig, PromptTemplate, MatchRules, word lists), and saved reports that cannot be loaded."""

from __future__ import annotations

from interp.core.errors import InterpConfigError, InterpLoadError

__all__ = ["TranslationConfigError", "TranslationLoadError"]


class TranslationConfigError(InterpConfigError):
    """A probe / template / matching config field or argument that cannot work; the message names the field,
    the value, the allowed range and the fix."""


class TranslationLoadError(InterpLoadError, ValueError):
    """A saved ProbeReport is missing, damaged or incomplete; the message names the file. Also a ``ValueError``, what these
    loads raised before they named the file."""
