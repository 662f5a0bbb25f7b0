"""Turning user prompts into left-padded token batches with an attention mask.

Left padding keeps every prompt's last token at index -1, which is what both the lens (default
position -1) and greedy generation need; TransformerLens derives rotary / absolute positions from
the mask, so padded and unpadded runs give the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from jaxtyping import Int
from torch import Tensor

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

Prompts = str | Sequence[str] | Int[Tensor, "batch pos"] | Int[Tensor, "pos"]


def pad_token_id(model: "HookedTransformer") -> int:
    """The id used to fill left padding (its value never matters: padded keys are masked)."""
    tok = model.tokenizer
    if tok is None:
        return 0
    for candidate in (tok.pad_token_id, tok.eos_token_id, tok.bos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def encode_prompts(
    model: "HookedTransformer", prompts: Prompts, *, prepend_bos: bool | None = None
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """Tokenise ``prompts`` into a left-padded batch and its attention mask (1 = real token).

    Token tensors are taken as they are (no padding, mask all ones).

    >>> tokens, mask = encode_prompts(model, ["a b c", "a"])  # doctest: +SKIP
    >>> mask[1].tolist()  # doctest: +SKIP
    [0, 0, 1, 1]
    """
    device = model.cfg.device
    if isinstance(prompts, Tensor):
        tokens = prompts[None] if prompts.ndim == 1 else prompts
        if tokens.ndim != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"Token prompts must be an integer tensor shaped [batch, pos] (or [pos]); got dtype "
                f"{prompts.dtype} and shape {tuple(prompts.shape)}."
            )
        tokens = tokens.long().to(device)
        return tokens, torch.ones_like(tokens)
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise ValueError("No prompts given: pass a string, a list of strings or a [batch, pos] token tensor.")
    if not all(isinstance(p, str) for p in prompts):
        bad = next(type(p).__name__ for p in prompts if not isinstance(p, str))
        raise TypeError(f"Prompts must all be strings (found a {bad}); or pass one [batch, pos] token tensor.")
    if model.tokenizer is None:
        raise ValueError("This model has no tokenizer: pass token ids as a [batch, pos] tensor instead of strings.")
    bos = model.cfg.default_prepend_bos if prepend_bos is None else prepend_bos
    rows = [model.to_tokens(p, prepend_bos=bos, padding_side="right")[0].tolist() for p in prompts]
    if any(len(r) == 0 for r in rows):
        raise ValueError("An empty prompt tokenised to zero tokens; give it text or set prepend_bos=True.")
    width = max(len(r) for r in rows)
    pad = pad_token_id(model)
    tokens = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):  # once per prompt, not per token
        tokens[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    return tokens.to(device), mask.to(device)
