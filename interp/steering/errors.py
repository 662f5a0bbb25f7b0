"""The error types of CorrSteer (``interp.steering``): bad configuration or arguments, and saved SAEs or
reports that cannot be loaded (the message names the file)."""

from __future__ import annotations

from interp.core.errors import InterpConfigError, InterpLoadError

__all__ = ["SteeringConfigError", "SteeringLoadError"]


class SteeringConfigError(InterpConfigError):
    """A CorrSteer / SAE-training config field or argument that cannot work; the message names the field,
    the value, the allowed range and the fix."""


class SteeringLoadError(InterpLoadError, ValueError):
    """A saved SAE folder or SteeringReport is missing a file, truncated, corrupt or inconsistent; the message
    names the file. Also a ``ValueError``, what a damaged report raised before it named the file."""
