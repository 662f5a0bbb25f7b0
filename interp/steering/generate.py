"""Batched greedy generation with left padding, with or without a KV cache, calling back at each step.

One forward call per generated token; ``on_step`` sees the activations of the newest position of
each call (the last prompt token, then each generated token), which is what CorrSteer records and
where it steers. Rows stop at EOS independently; the batch stops when all have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["GreedyBatch", "tokenize_prompts", "greedy_generate", "decode_generations", "stop_token_ids"]

StepCallback = Callable[[int, dict[str, Tensor], Tensor], None]
"""``on_step(step, acts, alive)``: ``acts[hook]`` is [batch, d] at the newest position, ``alive`` [batch]
says which rows have not yet produced EOS before this step."""


@dataclass
class GreedyBatch:
    """Prompt tokens (left padded), generated tokens, and how many of them count (up to EOS)."""

    prompt: Int[Tensor, "batch prompt"]
    generated: Int[Tensor, "batch new"]
    lengths: Int[Tensor, " batch"]  # generated tokens before EOS
    steps_alive: Bool[Tensor, "batch new"]  # steps whose position precedes EOS (EOS-predicting step included)


def _pad_id(model: "HookedTransformer") -> int:
    tok = model.tokenizer
    for attr in ("pad_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(tok, attr, None) if tok is not None else None
        if value is not None:
            return int(value)
    return 0


def tokenize_prompts(model: "HookedTransformer", prompts: Sequence[str] | Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Left-padded tokens [batch, pos] and attention mask (1 = real token). BOS is prepended as the model's
    default says; tensors are taken as given."""
    rows = [p if isinstance(p, Tensor) else model.to_tokens(p, padding_side="left")[0] for p in prompts]
    if not rows:
        raise ValueError("No prompts given.")
    width = max(int(r.shape[-1]) for r in rows)
    pad = _pad_id(model)
    tokens = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        r = r.reshape(-1).cpu()
        tokens[i, width - len(r):] = r
        mask[i, width - len(r):] = 1
    return tokens.to(model.cfg.device), mask.to(model.cfg.device)


@torch.no_grad()
def greedy_generate(
    model: "HookedTransformer",
    prompts: Sequence[str] | Sequence[Tensor],
    max_new_tokens: int,
    *,
    use_kv_cache: bool = True,
    record: Sequence[str] = (),
    on_step: StepCallback | None = None,
    stop_at_eos: bool = True,
    stop: Sequence[str] = (),
) -> GreedyBatch:
    """Greedy decoding of one batch. ``record`` names hooks whose newest-position activations are passed
    to ``on_step`` at every call. A row ends at EOS or at a token whose text contains a ``stop`` string
    (that token is kept in the row but not in its text)."""
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")
    tokens, mask = tokenize_prompts(model, prompts)
    b = tokens.shape[0]
    eos = getattr(model.tokenizer, "eos_token_id", None) if (stop_at_eos and model.tokenizer is not None) else None
    stop_ids = stop_token_ids(model, tuple(stop), eos).to(tokens.device)
    acts: dict[str, Tensor] = {}

    def grab(act: Tensor, hook: Any) -> None:
        acts[hook.name] = act[:, -1].detach()

    hooks = [(name, grab) for name in record]
    cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, b) if use_kv_cache else None
    generated = torch.zeros((b, max_new_tokens), dtype=torch.long, device=tokens.device)
    alive = torch.ones(b, dtype=torch.bool, device=tokens.device)
    steps_alive = torch.zeros((b, max_new_tokens), dtype=torch.bool, device=tokens.device)
    seq, seq_mask = tokens, mask
    n_steps = 0
    with model.hooks(fwd_hooks=hooks):
        for step in range(max_new_tokens):
            if cache is None:
                logits = model(seq, attention_mask=seq_mask)
            elif step == 0:
                logits = model(tokens, attention_mask=mask, past_kv_cache=cache)
            else:
                logits = model(generated[:, step - 1 : step], attention_mask=torch.ones_like(mask[:, :1]),
                               past_kv_cache=cache)
            steps_alive[:, step] = alive
            if on_step is not None:
                on_step(step, acts, alive.clone())
            nxt = logits[:, -1].argmax(-1)
            generated[:, step] = nxt
            n_steps = step + 1
            if len(stop_ids):
                alive &= ~torch.isin(nxt, stop_ids)
                if not alive.any():
                    break
            if cache is None:
                seq = torch.cat([seq, nxt[:, None]], 1)
                seq_mask = torch.cat([seq_mask, torch.ones_like(seq_mask[:, :1])], 1)
    generated, steps_alive = generated[:, :n_steps], steps_alive[:, :n_steps]
    is_stop = torch.isin(generated, stop_ids)
    first = torch.where(is_stop.any(1), is_stop.float().argmax(1), torch.full_like(generated[:, 0], n_steps))
    return GreedyBatch(tokens, generated, first, steps_alive)


_STOP_CACHE: dict[tuple[int, tuple[str, ...], int | None], Tensor] = {}


def stop_token_ids(model: "HookedTransformer", stop: tuple[str, ...], eos: int | None) -> Tensor:
    """EOS plus every vocabulary token whose text contains a stop string (cached per tokenizer)."""
    key = (id(model.tokenizer), stop, eos)
    if key not in _STOP_CACHE:
        ids = [eos] if eos is not None else []
        if stop and model.tokenizer is not None:
            tok = model.tokenizer
            ids += [i for i in range(len(tok)) if any(s in tok.decode([i]) for s in stop)]
        _STOP_CACHE[key] = torch.tensor(sorted(set(ids)), dtype=torch.long)
    return _STOP_CACHE[key]


def decode_generations(model: "HookedTransformer", batch: GreedyBatch) -> list[str]:
    """Generated text of each row, up to (not including) EOS or the stop token."""
    if model.tokenizer is None:
        return [" ".join(map(str, row[: int(n)].tolist())) for row, n in zip(batch.generated, batch.lengths)]
    return [model.tokenizer.decode(row[: int(n)].tolist(), skip_special_tokens=True) for row, n in zip(batch.generated, batch.lengths)]
