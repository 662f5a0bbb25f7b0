"""Checks for config fields and function arguments, with one message shape everywhere: the field, the
value given, what is allowed, and how to fix it. Configs call these in ``__post_init__`` (so a bad
value fails at construction, before any work), functions at their top.

>>> from interp.core.validate import Check
>>> from interp.core.errors import InterpConfigError
>>> Check("MyConfig", InterpConfigError).number("lr", float("nan"), gt=0, fix="Use e.g. lr=1e-3.")
Traceback (most recent call last):
...
interp.core.errors.InterpConfigError: MyConfig.lr=nan is invalid: it must be a finite number > 0. Use e.g. lr=1e-3.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

from interp.core.errors import InterpConfigError

__all__ = ["Check", "short_repr"]

_MISSING: Any = object()


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a message must stay readable whatever was passed)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bound_text(gt: float | None, ge: float | None, lt: float | None, le: float | None) -> str:
    lo = f"> {gt:g}" if gt is not None else f">= {ge:g}" if ge is not None else ""
    hi = f"< {lt:g}" if lt is not None else f"<= {le:g}" if le is not None else ""
    if lo and hi:
        left = "(" if gt is not None else "["
        right = ")" if lt is not None else "]"
        a = gt if gt is not None else ge
        b = lt if lt is not None else le
        return f"in {left}{a:g}, {b:g}{right}"
    return lo or hi


class Check:
    """Validate the fields of ``owner`` (a config instance, read with ``getattr``) or the arguments of a
    function named ``owner`` (pass each value), raising ``error`` on the first bad one.

    Every check returns the value (normalised: an int for :meth:`integer`, a float for :meth:`number`,
    a tuple for sequences) so callers may store it back.
    """

    def __init__(self, owner: Any, error: type[Exception] = InterpConfigError):
        self.owner = owner
        self.error = error
        if isinstance(owner, str):
            self.label, self.is_config = owner, False
        else:
            self.label, self.is_config = type(owner).__name__, True

    # ------------------------------------------------------------------------------------ plumbing
    def _get(self, name: str, value: Any) -> Any:
        if value is _MISSING:
            if not self.is_config:
                raise TypeError("Check on a function needs the value of each argument.")
            return getattr(self.owner, name)
        return value

    def where(self, name: str) -> str:
        return f"{self.label}.{name}" if self.is_config else f"{self.label}({name}=...)"

    def fail(self, name: str, value: Any, allowed: str, fix: str | None = None) -> NoReturn:
        """Raise the owner's error: ``<owner>.<name>=<value> is invalid: it must be <allowed>. <fix>``."""
        where = f"{self.label}.{name}={short_repr(value)}" if self.is_config else \
            f"{self.label}({name}={short_repr(value)})"
        raise self.error(f"{where} is invalid: it must be {allowed}." + (f" {fix}" if fix else ""))

    def require(self, ok: bool, name: str, value: Any, allowed: str, fix: str | None = None) -> None:
        """Fail unless ``ok`` (for rules that tie two fields together or a field to the model)."""
        if not ok:
            self.fail(name, value, allowed, fix)

    # ------------------------------------------------------------------------------------ scalars
    def integer(self, name: str, value: Any = _MISSING, *, min: int | None = None, max: int | None = None,
                optional: bool = False, fix: str | None = None) -> int | None:
        """An int (not a bool, not a float) within ``[min, max]``; ``None`` when ``optional``."""
        v = self._get(name, value)
        if v is None and optional:
            return None
        rng = _bound_text(None, min, None, max)
        allowed = ("None or " if optional else "") + f"an integer{' ' + rng if rng else ''}"
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            self.fail(name, v, allowed, fix)
        if (min is not None and v < min) or (max is not None and v > max):
            self.fail(name, v, allowed, fix)
        return int(v)

    def number(self, name: str, value: Any = _MISSING, *, gt: float | None = None, ge: float | None = None,
               lt: float | None = None, le: float | None = None, optional: bool = False, finite: bool = True,
               fix: str | None = None) -> float | None:
        """A real number (int or float, not a bool), finite unless ``finite=False``, within the bounds."""
        v = self._get(name, value)
        if v is None and optional:
            return None
        rng = _bound_text(gt, ge, lt, le)
        kind = "a finite number" if finite else "a number"
        allowed = ("None or " if optional else "") + kind + (f" {rng}" if rng else "")
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            self.fail(name, v, allowed, fix)
        f = float(v)
        if math.isnan(f) or (finite and math.isinf(f)):
            self.fail(name, v, allowed, fix)
        if (gt is not None and not f > gt) or (ge is not None and not f >= ge) or \
                (lt is not None and not f < lt) or (le is not None and not f <= le):
            self.fail(name, v, allowed, fix)
        return f

    def boolean(self, name: str, value: Any = _MISSING, *, optional: bool = False) -> bool | None:
        v = self._get(name, value)
        if v is None and optional:
            return None
        if not isinstance(v, bool):
            self.fail(name, v, ("None, " if optional else "") + "True or False")
        return v

    def choice(self, name: str, choices: Iterable[Any], value: Any = _MISSING, *, optional: bool = False,
               fix: str | None = None) -> Any:
        v = self._get(name, value)
        options = list(choices)
        if v is None and optional:
            return None
        # same type and equal: True is not 1, and unhashable values are simply not among the choices
        ok = any(v is o or (isinstance(v, type(o)) and not isinstance(v, bool) and v == o) for o in options)
        if not ok:
            listed = ", ".join(repr(o) for o in options)
            self.fail(name, v, ("None or " if optional else "") + f"one of {listed}", fix)
        return v

    def text(self, name: str, value: Any = _MISSING, *, optional: bool = False, nonempty: bool = True,
             fix: str | None = None) -> str | None:
        v = self._get(name, value)
        if v is None and optional:
            return None
        if not isinstance(v, str) or (nonempty and not v.strip()):
            self.fail(name, v, ("None or " if optional else "") + ("a non-empty string" if nonempty else "a string"), fix)
        return v

    def instance(self, name: str, kinds: type | tuple[type, ...], value: Any = _MISSING, *, optional: bool = False,
                 fix: str | None = None) -> Any:
        v = self._get(name, value)
        if v is None and optional:
            return None
        if not isinstance(v, kinds):
            names = " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
            self.fail(name, v, ("None or " if optional else "") + f"a {names}", fix)
        return v

    # ------------------------------------------------------------------------------------ collections
    def strings(self, name: str, value: Any = _MISSING, *, nonempty_items: bool = True, min_len: int = 0,
                fix: str | None = None) -> tuple[str, ...]:
        """A list or tuple of strings (a bare string is refused: it would be read character by character)."""
        v = self._get(name, value)
        allowed = f"a tuple of {'non-empty ' if nonempty_items else ''}strings" + \
            (f" with at least {min_len} entries" if min_len else "")
        if isinstance(v, str) or not isinstance(v, Sequence):
            self.fail(name, v, allowed, fix or (f"Write {name}=({v!r},)." if isinstance(v, str) else None))
        items = tuple(v)
        if len(items) < min_len or any(not isinstance(s, str) or (nonempty_items and s == "") for s in items):
            self.fail(name, v, allowed, fix)
        return items

    def numbers(self, name: str, value: Any = _MISSING, *, length: int | None = None, min_len: int = 1,
                gt: float | None = None, ge: float | None = None, lt: float | None = None, le: float | None = None,
                fix: str | None = None) -> tuple[float, ...]:
        """A list or tuple of finite numbers, each within the bounds (``length`` exactly, else ``min_len``+)."""
        v = self._get(name, value)
        rng = _bound_text(gt, ge, lt, le)
        size = f"{length}" if length is not None else f"at least {min_len}"
        allowed = f"a tuple of {size} finite numbers" + (f", each {rng}" if rng else "")
        if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
            self.fail(name, v, allowed, fix)
        items = tuple(v)
        if (length is not None and len(items) != length) or len(items) < min_len:
            self.fail(name, v, allowed, fix)
        for x in items:
            if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(float(x)):
                self.fail(name, v, allowed, fix)
            f = float(x)
            if (gt is not None and not f > gt) or (ge is not None and not f >= ge) or \
                    (lt is not None and not f < lt) or (le is not None and not f <= le):
                self.fail(name, v, allowed, fix)
        return tuple(float(x) for x in items)

    def weights(self, name: str, value: Any = _MISSING, *, keys: Iterable[str] | None = None,
                fix: str | None = None) -> dict[str, float]:
        """A mapping of names to finite weights >= 0 with a positive sum (corpus mixes), keys among ``keys``."""
        v = self._get(name, value)
        known = list(keys) if keys is not None else None
        allowed = "a dict of finite weights >= 0 with a positive sum" + \
            (f", keys among {', '.join(known)}" if known else "")
        if not isinstance(v, Mapping) or not v:
            self.fail(name, v, allowed, fix)
        for k, w in v.items():
            if known is not None and k not in known:
                self.fail(name, v, allowed, fix or f"Unknown key {k!r}.")
            if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(float(w)) or w < 0:
                self.fail(name, v, allowed, fix or f"The weight of {k!r} is {w!r}.")
        if sum(float(w) for w in v.values()) <= 0:
            self.fail(name, v, allowed, fix)
        return {k: float(w) for k, w in v.items()}


def check_fields_known(cls: type, data: Mapping[str, Any], error: type[Exception] = InterpConfigError) -> None:
    """Refuse keys that are not fields of the dataclass ``cls`` (a config read back from JSON)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise error(f"Unknown {cls.__name__} fields {unknown}; known fields are {sorted(known)}.")
