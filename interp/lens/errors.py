"""The error types of the lens (``interp.lens``): bad configuration or arguments, and saved tuned lenses
that cannot be loaded (the message names the file)."""

from __future__ import annotations

from interp.core.errors import InterpConfigError, InterpLoadError

__all__ = ["LensConfigError", "LensLoadError"]


class LensConfigError(InterpConfigError):
    """A lens argument or TunedLensConfig field that cannot work; the message names it, its value, the allowed
    range and the fix."""


class LensLoadError(InterpLoadError):
    """A saved tuned lens is missing a file, truncated, corrupt, or made for another model."""
