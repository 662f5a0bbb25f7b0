"""Progress bars only where someone watches them: on a terminal or in a notebook.

``progress=True`` (every method's default) means "show a bar if there is somewhere to show it": tqdm's
``disable=None`` turns the bar off when output goes to a file or a pipe, so logs of background runs
and CI do not fill with hundreds of carriage-return updates; notebooks get tqdm.auto's widget bar.
``progress=False`` never shows one.

>>> from interp.core.progress import progress_bar
>>> sum(progress_bar(range(3), progress=False))
3
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["progress_bar", "bar_disabled"]


def bar_disabled(progress: bool) -> bool | None:
    """tqdm's ``disable`` for a ``progress`` flag: ``None`` (off unless on a terminal / in a notebook) or True."""
    return None if progress else True


def progress_bar(iterable: Iterable[Any] | None = None, *, progress: bool = True, **kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar over ``iterable`` (or a manual one with ``total=``), shown only on a terminal or
    in a notebook, and never when ``progress`` is False."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=bar_disabled(progress), **kwargs)
