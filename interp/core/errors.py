"""The error types of interp: one base for bad configuration and bad input, one for artefacts that
cannot be loaded, and each package's own subclass of them, so ``except InterpConfigError`` catches
every "you asked for something that cannot work" and ``except LorsaConfigError`` only Lorsa's.

Every message names the field (or argument), the value given, what is allowed and how to fix it;
:mod:`interp.core.validate` builds them.

>>> from interp.core.errors import InterpConfigError
>>> from interp.lorsa import LorsaConfigError
>>> issubclass(LorsaConfigError, InterpConfigError) and issubclass(InterpConfigError, ValueError)
True
"""

from __future__ import annotations

__all__ = ["InterpConfigError", "InterpLoadError", "CoreConfigError", "CoreTypeError", "missing_file"]


class InterpConfigError(ValueError):
    """A configuration field or an argument that cannot work (out of range, not finite, of the wrong
    type, inconsistent with another field or with the model); the message names the field, the value,
    the allowed range and the fix. Each package raises its own subclass."""


class InterpLoadError(RuntimeError):
    """A saved artefact (checkpoint, Lorsa, tuned lens, SAE, report, card, model) is missing, truncated,
    corrupt or does not fit what it is loaded into; the message names the file. Nothing was changed."""


class CoreConfigError(InterpConfigError):
    """Bad arguments to the shared layer (tokens, generation, activation streams, tasks)."""


class CoreTypeError(CoreConfigError, TypeError):
    """An argument of the wrong type (also a ``TypeError``)."""


_MISSING_CLASSES: dict[type, type] = {}


def missing_file(error: type[InterpLoadError], message: str) -> InterpLoadError:
    """An instance of ``error`` that is also a ``FileNotFoundError`` (a load error whose file is absent), so
    ``except FileNotFoundError`` and ``except error`` both catch it.

    >>> err = missing_file(InterpLoadError, "no card.json in /tmp/x")
    >>> isinstance(err, FileNotFoundError), isinstance(err, InterpLoadError)
    (True, True)
    """
    cls = _MISSING_CLASSES.get(error)
    if cls is None:
        cls = _MISSING_CLASSES[error] = type(error.__name__, (error, FileNotFoundError), {"__module__": error.__module__})
    return cls(message)
