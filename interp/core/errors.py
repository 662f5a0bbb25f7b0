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

__all__ = ["InterpConfigError", "InterpLoadError", "CoreConfigError", "CoreTypeError", "missing_file", "also"]


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


_ALSO_CLASSES: dict[tuple[type, type], type] = {}


def _sentence(self: BaseException) -> str:  # KeyError quotes its message; these are sentences
    return str(self.args[0]) if self.args else ""


def also(error: type[Exception], builtin: type[Exception], message: str) -> Exception:
    """An instance of the package's ``error`` that is also a ``builtin`` error (``KeyError`` for an unknown name,
    ``IndexError`` for an index out of range, ``TypeError``...), so code written against the builtin keeps working
    and ``except InterpConfigError`` still catches it.

    >>> err = also(CoreConfigError, KeyError, "no layer 'x'")
    >>> isinstance(err, KeyError), isinstance(err, CoreConfigError), str(err)
    (True, True, "no layer 'x'")
    """
    cls = _ALSO_CLASSES.get((error, builtin))
    if cls is None:
        body: dict = {"__module__": error.__module__}
        if issubclass(builtin, KeyError):
            body["__str__"] = _sentence
        cls = _ALSO_CLASSES[(error, builtin)] = type(error.__name__, (error, builtin), body)
    return cls(message)


def missing_file(error: type[InterpLoadError], message: str) -> InterpLoadError:
    """An instance of ``error`` that is also a ``FileNotFoundError`` (a load error whose file is absent), so
    ``except FileNotFoundError`` and ``except error`` both catch it.

    >>> err = missing_file(InterpLoadError, "no card.json in /tmp/x")
    >>> isinstance(err, FileNotFoundError), isinstance(err, InterpLoadError)
    (True, True)
    """
    return also(error, FileNotFoundError, message)  # type: ignore[return-value]
