"""Layer indices of the lens (one convention for ``interp.lens`` and ``interp.translation``): index 0 is
the embedding output (``blocks.0.hook_resid_pre``); index ``i`` in ``1..n_layers`` is
``blocks.{i-1}.hook_resid_post``; the last index is the model's output.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from interp.lens.errors import LensConfigError

__all__ = ["layer_hook_name", "resolve_layers"]


def _is_index(i: object) -> bool:
    return isinstance(i, numbers.Integral) and not isinstance(i, bool)


def _not_an_index(i: object, n_layers: int) -> LensConfigError:
    hint = ""
    if isinstance(i, str) and i.startswith("blocks."):
        try:
            block = int(i.split(".")[1])
            hint = (f" A hook name is not a lens index: {i!r} is lens index {block + 1} (after block {block}) when it "
                    "is a hook_resid_post.")
        except (IndexError, ValueError):
            pass
    return LensConfigError(f"Layer {i!r} is not a lens index: layers are integers 0..{n_layers} (0 = embeddings, i = "
                           f"after block i-1; negative counts from the end).{hint}")


def layer_hook_name(index: int, n_layers: int) -> str:
    """Hook whose residual is decoded at lens layer ``index`` (0 = embeddings, i = after block i-1)."""
    if not _is_index(index):
        raise _not_an_index(index, n_layers)
    if not 0 <= index <= n_layers:
        raise LensConfigError(f"Layer index {index} is outside 0..{n_layers} (0 = embeddings, {n_layers} = last block).")
    return "blocks.0.hook_resid_pre" if index == 0 else f"blocks.{index - 1}.hook_resid_post"


def resolve_layers(layers: Sequence[int] | int | None, n_layers: int) -> list[int]:
    """Normalise a layer selection: None = all ``0..n_layers``; an int ``-m`` = the last ``m``;
    negative entries count from the end (``-1`` is the last layer)."""
    if layers is None:
        return list(range(n_layers + 1))
    if isinstance(layers, (str, bytes)) or not (_is_index(layers) or hasattr(layers, "__iter__")):
        raise _not_an_index(layers, n_layers)
    if _is_index(layers):
        if layers < -(n_layers + 1):
            raise LensConfigError(f"layers={layers}: there are only {n_layers + 1} lens layers (0..{n_layers}); use "
                                  f"-{n_layers + 1}..-1 to select the last ones.")
        if layers >= 0:
            raise LensConfigError(
                f"layers={layers}: an int selects the last |layers| layers and must be negative (e.g. -10); "
                "pass a list such as [3] for one layer."
            )
        return list(range(max(0, n_layers + 1 + layers), n_layers + 1))
    out = []
    for i in list(layers):
        if not _is_index(i):
            raise _not_an_index(i, n_layers)
        j = i + n_layers + 1 if i < 0 else i
        if not 0 <= j <= n_layers:
            raise LensConfigError(f"Layer index {i} is outside 0..{n_layers} (or -{n_layers + 1}..-1).")
        out.append(int(j))
    if not out:
        raise LensConfigError("The layer selection is empty: give at least one lens index (or None for all).")
    if len(set(out)) != len(out):
        raise LensConfigError(f"Layer selection {list(layers)} repeats a layer.")
    return sorted(out)
