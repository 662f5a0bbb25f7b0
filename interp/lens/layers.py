"""Layer indices of the lens (one convention for ``interp.lens`` and ``interp.translation``): index 0 is
the embedding output (``blocks.0.hook_resid_pre``); index ``i`` in ``1..n_layers`` is
``blocks.{i-1}.hook_resid_post``; the last index is the model's output.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["layer_hook_name", "resolve_layers"]


def layer_hook_name(index: int, n_layers: int) -> str:
    """Hook whose residual is decoded at lens layer ``index`` (0 = embeddings, i = after block i-1)."""
    if not 0 <= index <= n_layers:
        raise ValueError(f"Layer index {index} is outside 0..{n_layers} (0 = embeddings, {n_layers} = last block).")
    return "blocks.0.hook_resid_pre" if index == 0 else f"blocks.{index - 1}.hook_resid_post"


def resolve_layers(layers: Sequence[int] | int | None, n_layers: int) -> list[int]:
    """Normalise a layer selection: None = all ``0..n_layers``; an int ``-m`` = the last ``m``;
    negative entries count from the end (``-1`` is the last layer)."""
    if layers is None:
        return list(range(n_layers + 1))
    if isinstance(layers, int):
        if layers >= 0:
            raise ValueError(
                f"layers={layers}: an int selects the last |layers| layers and must be negative (e.g. -10); "
                "pass a list such as [3] for one layer."
            )
        return list(range(max(0, n_layers + 1 + layers), n_layers + 1))
    out = []
    for i in layers:
        j = i + n_layers + 1 if i < 0 else i
        if not 0 <= j <= n_layers:
            raise ValueError(f"Layer index {i} is outside 0..{n_layers} (or -{n_layers + 1}..-1).")
        out.append(int(j))
    if len(set(out)) != len(out):
        raise ValueError(f"Layer selection {list(layers)} repeats a layer.")
    return sorted(out)
