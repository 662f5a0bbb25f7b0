"""``LensResult``: what ``decode_layers`` returns; carries the data and knows how to show itself."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor


def layer_label(index: int, n_layers: int) -> str:
    """Human label of a lens index: ``embed`` for 0, ``L{i}`` after block ``i-1``."""
    return "embed" if index == 0 else f"L{index}"


@dataclass
class LensResult:
    """Per-layer top-k decodings of a batch of prompts.

    Shapes: ``top_ids``/``top_logprobs`` are ``[batch, n_sel_layers, n_positions, k]`` where the
    layer axis follows ``layers`` (lens indices: 0 = embeddings, ``n_layers`` = the model's
    output). ``target_logprobs`` is ``[batch, n_sel_layers, n_positions, n_targets]``.
    ``positions`` are indices into the left-padded ``tokens``.
    """

    top_ids: Int[Tensor, "batch layer pos k"]
    top_logprobs: Float[Tensor, "batch layer pos k"]
    top_logits: Float[Tensor, "batch layer pos k"]
    layers: list[int]
    n_layers: int
    tokens: Int[Tensor, "batch seq"]
    attention_mask: Int[Tensor, "batch seq"]
    positions: Int[Tensor, "batch pos"]
    position_valid: Bool[Tensor, "batch pos"]
    target_ids: Int[Tensor, "batch n_targets"] | None = None
    target_logprobs: Float[Tensor, "batch layer pos n_targets"] | None = None
    lens: str = "logit"
    final_norm: bool = True
    tokenizer: Any = field(default=None, repr=False)

    # ---- access -------------------------------------------------------------------------
    @property
    def layer_labels(self) -> list[str]:
        return [layer_label(i, self.n_layers) for i in self.layers]

    def _decode(self, ids: list[int]) -> list[str]:
        if self.tokenizer is None:
            return [str(i) for i in ids]
        return [self.tokenizer.decode([i]) for i in ids]

    def top_tokens(self, example: int = 0, rank: int = 0) -> list[list[str]]:
        """Token strings of rank ``rank`` for one example: ``[layer][position]``."""
        ids = self.top_ids[example, :, :, rank]
        flat = self._decode(ids.reshape(-1).tolist())
        n_pos = ids.shape[1]
        return [flat[i * n_pos:(i + 1) * n_pos] for i in range(ids.shape[0])]

    def input_tokens(self, example: int = 0) -> list[str]:
        """String tokens at the decoded positions of one example."""
        ids = self.tokens[example, self.positions[example]].tolist()
        return self._decode(ids)

    def layer(self, index: int) -> int:
        """Axis position of lens index ``index`` in the arrays (negative counts from the end)."""
        j = index + self.n_layers + 1 if index < 0 else index
        if j not in self.layers:
            raise KeyError(f"Layer {index} was not decoded; this result holds layers {self.layers}.")
        return self.layers.index(j)

    # ---- tables and figures -------------------------------------------------------------
    def to_frame(self):
        """Long table: one row per (example, layer, position, rank) with token, log-prob and prob;
        plus one ``target_<j>_logprob`` column per tracked target id."""
        import pandas as pd

        b, n_l, n_p, k = self.top_ids.shape
        grid = torch.meshgrid(
            torch.arange(b), torch.arange(n_l), torch.arange(n_p), torch.arange(k), indexing="ij"
        )
        ex, li, pi, rk = (g.reshape(-1) for g in grid)
        ids = self.top_ids.reshape(-1)
        lp = self.top_logprobs.reshape(-1)
        vocab_strings = {i: s for i, s in zip(sorted(set(ids.tolist())), self._decode(sorted(set(ids.tolist()))))}
        layers = torch.tensor(self.layers)[li]
        frame = pd.DataFrame(
            {
                "example": ex.numpy(),
                "layer": layers.numpy(),
                "layer_label": [layer_label(int(i), self.n_layers) for i in layers],
                "position": self.positions[ex, pi].numpy(),
                "rank": rk.numpy(),
                "token_id": ids.numpy(),
                "token": [vocab_strings[i] for i in ids.tolist()],
                "logprob": lp.numpy(),
                "prob": lp.exp().numpy(),
                "valid": self.position_valid[ex, pi].numpy(),
            }
        )
        if self.target_logprobs is not None:
            for j in range(self.target_logprobs.shape[-1]):
                frame[f"target_{j}_logprob"] = self.target_logprobs[ex, li, pi, j].numpy()
        return frame

    def plot(self, example: int = 0, *, title: str | None = None):
        """Layer x position heatmap of one prompt (:func:`interp.lens.plots.lens_figure`): the text
        is each cell's top token, the colour its log-prob; hovering shows the top-5."""
        from interp.lens.plots import lens_figure

        return lens_figure(self, example, title=title)

    def __repr__(self) -> str:
        b, n_l, n_p, k = self.top_ids.shape
        layers = f"{self.layers[0]}..{self.layers[-1]}" if self.layers == list(range(self.layers[0], self.layers[-1] + 1)) \
            else ",".join(map(str, self.layers))
        targets = f", {self.target_ids.shape[-1]} target(s)" if self.target_ids is not None else ""
        return (f"LensResult({self.lens} lens, {b} prompt(s), layers {layers} of {self.n_layers}, {n_p} position(s), "
                f"top-{k}{targets})")

    def _repr_html_(self) -> str:
        b, n_l, n_p, k = self.top_ids.shape
        head = (
            f"<b>LensResult</b> ({self.lens} lens, final_norm={self.final_norm}): {b} prompt(s), "
            f"{n_l} layers, {n_p} position(s), top-{k}"
        )
        rows = []
        last = self.top_tokens(0)
        for li in range(n_l):
            p = self.top_logprobs[0, li, -1, 0].exp().item()
            rows.append(
                f"<tr><td>{self.layer_labels[li]}</td><td><code>{html.escape(repr(last[li][-1]))}</code></td>"
                f"<td>{p:.3f}</td></tr>"
            )
        return (
            f"<div>{head}<table><tr><th>layer</th><th>top-1 (example 0, last position)</th>"
            f"<th>p</th></tr>{''.join(rows)}</table></div>"
        )
