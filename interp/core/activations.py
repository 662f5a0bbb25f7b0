"""A shuffled, bounded-memory stream of host-model activations, shared by the training methods.

``ActivationStream`` runs a TransformerLens model over a token source and yields (batch, ctx, d)
blocks of the hooks asked for plus a token mask (BOS/pad excluded). Sequences are shuffled across
a buffer; under data parallelism every rank computes only its own slice of each global batch, and
the global batches are the same whatever the number of ranks (so a distributed run sees exactly
the data of a single-process one). ``sample_tokens`` makes an offline token source by sampling
from the model itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from interp.core.progress import bar_disabled
from interp.core.errors import CoreConfigError
from interp.core.frontend import input_device, vocab_size
from interp.core.bridge_fastpath import bridge_activations, bridge_fused_attention
from interp.core.fastpath import fused_attention, host_activations
from interp.core.generation import generate
from interp.core.tokens import Truncation, check_tokens, start_token_id, token_mask
from interp.core.tokens import bos_token_id as bos_token_id_of
from interp.core.validate import Check

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer
    from transformer_lens.model_bridge import TransformerBridge

__all__ = ["ActivationBatch", "ActivationStream", "fast_activations", "fused_forward", "sample_tokens", "text_tokens", "TokenSource"]

TokenSource = Tensor | Iterable[Tensor]
"""A LongTensor [n_seq, ctx], or an iterable of LongTensors [b, ctx] (streamed, read once)."""


class _UnknownHookError(CoreConfigError, KeyError):
    """A hook name the model does not have (also a ``KeyError``)."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0])


@dataclass
class ActivationBatch:
    """One block: ``acts[hook]`` is [batch, ctx, d]; ``mask`` is True on tokens that count."""

    tokens: Int[Tensor, "batch ctx"]
    acts: dict[str, Float[Tensor, "batch ctx d"]]
    mask: Bool[Tensor, "batch ctx"]

    def __getitem__(self, hook: str) -> Tensor:
        return self.acts[hook]


def fast_activations(model: "HookedTransformer | TransformerBridge", tokens: Int[Tensor, "batch ctx"], hooks: Sequence[str], *,
                     batch_size: int = 64) -> dict[str, Tensor]:
    """``{hook: [batch, ctx, ...]}`` on the host's fast exact path: :func:`interp.core.fastpath.host_activations`
    for a HookedTransformer, :func:`interp.core.bridge_fastpath.bridge_activations` for a TransformerBridge
    (fused attention, the forward stopped at the last hook; ``run_with_cache`` to float rounding).

    Example:
        >>> acts = fast_activations(model, tokens, ["blocks.2.ln1.hook_normalized"])  # doctest: +SKIP
    """
    from transformer_lens import HookedTransformer

    fast = host_activations if isinstance(model, HookedTransformer) else bridge_activations
    return fast(model, tokens, hooks, batch_size=batch_size)


def fused_forward(model: "HookedTransformer | TransformerBridge") -> AbstractContextManager[list[int]]:
    """Context in which the host's attention runs fused (:func:`interp.core.fastpath.fused_attention` for a
    HookedTransformer, :func:`interp.core.bridge_fastpath.bridge_fused_attention` for a TransformerBridge; no
    change for any other model), for a whole forward whose pattern nobody reads; yields the fused layers.

    Example:
        >>> with fused_forward(model):                                           # doctest: +SKIP
        ...     logits, cache = model.run_with_cache(tokens, names_filter=names)
    """
    from transformer_lens import HookedTransformer
    from transformer_lens.model_bridge import TransformerBridge

    if isinstance(model, HookedTransformer):
        return fused_attention(model)
    if isinstance(model, TransformerBridge):
        return bridge_fused_attention(model)
    return nullcontext([])


def _stop_layer(hooks: Sequence[str], n_layers: int) -> int | None:
    """Smallest ``stop_at_layer`` that still computes every hook (saves the rest of the model)."""
    layers = []
    for h in hooks:
        m = re.match(r"blocks\.(\d+)\.", h)
        if m is None:
            return None if not h.startswith(("hook_embed", "hook_pos_embed", "hook_tokens")) else 1
        layers.append(int(m.group(1)))
    top = max(layers) + 1
    return None if top >= n_layers else top


class ActivationStream:
    """Iterate over activation blocks of ``hooks`` for a token source.

    Args:
        model: the host ``HookedTransformer``.
        tokens: LongTensor [n_seq, ctx] (re-iterable, shuffled globally per epoch) or an iterable
            of [b, ctx] tensors (streamed once, shuffled within each buffer).
        hooks: TransformerLens hook names, e.g. ``["blocks.2.ln1.hook_normalized"]``.
        batch_size: sequences per *global* batch (all ranks together).
        buffer_sequences: sequences per shuffle buffer (bounds memory: buffer x ctx x sum(d)).
        rank, world_size: this process's slice of every global batch.
        epochs: passes over a tensor source (``None``: forever).
        bos_token_id, pad_token_id: tokens left out of ``mask`` (BOS defaults to the tokenizer's).
        start_batch: skip this many global batches without running the model (resume).
        model_batch_size: sequences per host forward pass.
        fused: produce the activations through :func:`interp.core.fastpath.host_activations` (a
            HookedTransformer) or :func:`interp.core.bridge_fastpath.bridge_activations` (a
            TransformerBridge): attention as one fused SDPA call, the forward stopped at the last hook;
            equal to ``run_with_cache`` up to float rounding, several times faster. ``False`` runs
            TransformerLens's ``run_with_cache`` as it is.

    Example:
        >>> stream = ActivationStream(model, tokens, ["blocks.0.hook_resid_post"], batch_size=8)  # doctest: +SKIP
        >>> for block in stream: x, mask = block["blocks.0.hook_resid_post"], block.mask      # doctest: +SKIP
    """

    def __init__(
        self,
        model: "HookedTransformer",
        tokens: TokenSource,
        hooks: Sequence[str],
        *,
        batch_size: int,
        buffer_sequences: int = 512,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        epochs: int | None = 1,
        start_batch: int = 0,
        model_batch_size: int = 64,
        pad_token_id: int | None = None,
        bos_token_id: int | None = None,
        exclude_bos: bool = True,
        progress: bool = False,
        truncate: Truncation | None = None,
        fused: bool = True,
    ):
        if isinstance(hooks, str):
            hooks = [hooks]
        known = set(model.hook_dict)
        bad = [h for h in hooks if h not in known]
        if bad:
            raise _UnknownHookError(f"Unknown hook(s) {bad} for this model; examples of valid names: "
                                    f"{sorted(known)[:4]} (see model.hook_dict).")
        if not hooks:
            raise CoreConfigError("ActivationStream(hooks=[]) is invalid: name at least one hook to stream.")
        c = Check("ActivationStream", CoreConfigError)
        c.integer("batch_size", batch_size, min=1)
        c.integer("buffer_sequences", buffer_sequences, min=1)
        c.integer("world_size", world_size, min=1)
        c.integer("rank", rank, min=0, max=world_size - 1, fix=f"Ranks count 0..world_size-1 = 0..{world_size - 1}.")
        c.integer("epochs", epochs, min=1, optional=True, fix="None streams forever.")
        c.integer("start_batch", start_batch, min=0)
        c.integer("model_batch_size", model_batch_size, min=1)
        c.integer("seed", seed, min=0)
        n_vocab = vocab_size(model)
        c.integer("pad_token_id", pad_token_id, min=0, max=n_vocab - 1, optional=True)
        c.integer("bos_token_id", bos_token_id, min=0, max=n_vocab - 1, optional=True)
        for flag in ("shuffle", "exclude_bos", "progress"):
            c.boolean(flag, locals()[flag])
        if batch_size % world_size:
            raise CoreConfigError(f"batch_size={batch_size} must be divisible by world_size={world_size}.")
        if buffer_sequences < batch_size:
            buffer_sequences = batch_size
        self.buffer_sequences = buffer_sequences - buffer_sequences % batch_size
        self.truncate = truncate
        if isinstance(tokens, Tensor):
            tokens = check_tokens(model, tokens, truncate=truncate, min_len=1)
            if tokens.shape[0] < batch_size:
                raise CoreConfigError(f"Only {tokens.shape[0]} sequences for batch_size={batch_size}: pass at least "
                                      f"{batch_size} sequences or a smaller batch_size.")
        elif not hasattr(tokens, "__iter__"):
            raise CoreConfigError(f"tokens must be a LongTensor [n_seq, ctx] or an iterable of [b, ctx] tensors; got a "
                                  f"{type(tokens).__name__}.")
        self.model, self.tokens, self.hooks = model, tokens, list(hooks)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size, self.epochs, self.start_batch = rank, world_size, epochs, start_batch
        self.model_batch_size, self.pad_token_id, self.progress = model_batch_size, pad_token_id, progress
        if bos_token_id is None:
            bos_token_id = bos_token_id_of(getattr(model, "tokenizer", None))
        self.bos_token_id = bos_token_id if exclude_bos else None
        self.stop_at_layer = _stop_layer(self.hooks, model.cfg.n_layers)
        from transformer_lens import HookedTransformer

        from transformer_lens.model_bridge import TransformerBridge

        # The fast paths drive a HookedTransformer's or a TransformerBridge's own modules; other hosts keep
        # run_with_cache.
        self.fused = fused and isinstance(model, (HookedTransformer, TransformerBridge))

    @property
    def batches_per_epoch(self) -> int | None:
        if not isinstance(self.tokens, Tensor):
            return None
        n = self.tokens.shape[0]
        full, rest = divmod(n, self.buffer_sequences)
        return full * (self.buffer_sequences // self.batch_size) + rest // self.batch_size

    def _buffers(self, epoch: int) -> Iterator[Tensor]:
        if isinstance(self.tokens, Tensor):
            order = torch.arange(self.tokens.shape[0])
            if self.shuffle:
                order = torch.randperm(self.tokens.shape[0], generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))
            for start in range(0, len(order), self.buffer_sequences):
                yield self.tokens[order[start : start + self.buffer_sequences]]
        else:
            pending: list[Tensor] = []
            count = 0
            for chunk in self.tokens:
                chunk = check_tokens(self.model, chunk, what="a streamed token chunk", truncate=self.truncate)
                pending.append(chunk)
                count += chunk.shape[0]
                while count >= self.buffer_sequences:
                    cat = torch.cat(pending)
                    yield cat[: self.buffer_sequences]
                    pending, count = [cat[self.buffer_sequences :]], cat.shape[0] - self.buffer_sequences
            if count:
                yield torch.cat(pending)

    @torch.no_grad()
    def _run(self, toks: Tensor) -> dict[str, Tensor]:
        if self.fused:
            return fast_activations(self.model, toks, self.hooks, batch_size=self.model_batch_size)
        dev = input_device(self.model)  # the embedding's device (the first of a split model)
        outs: dict[str, list[Tensor]] = {h: [] for h in self.hooks}
        for start in range(0, toks.shape[0], self.model_batch_size):
            part = toks[start : start + self.model_batch_size].to(dev)
            _, cache = self.model.run_with_cache(part, names_filter=self.hooks, stop_at_layer=self.stop_at_layer)
            for h in self.hooks:
                outs[h].append(cache[h])
        return {h: torch.cat(v) for h, v in outs.items()}

    def __iter__(self) -> Iterator[ActivationBatch]:
        global_batch = 0
        local = self.batch_size // self.world_size
        epoch = 0
        total = None
        if self.batches_per_epoch is not None and self.epochs is not None:
            total = self.batches_per_epoch * self.epochs
        bar = tqdm(total=total, initial=self.start_batch, desc="activations", disable=bar_disabled(self.progress))
        while self.epochs is None or epoch < self.epochs:
            produced = False
            for b_idx, buf in enumerate(self._buffers(epoch)):
                n_batches = buf.shape[0] // self.batch_size
                if n_batches == 0:
                    continue
                produced = True
                if global_batch + n_batches <= self.start_batch:
                    global_batch += n_batches  # resume: skip without running the model
                    continue
                buf = buf[: n_batches * self.batch_size]
                if self.shuffle and not isinstance(self.tokens, Tensor):
                    g = torch.Generator().manual_seed(self.seed * 7919 + epoch * 104729 + b_idx)
                    buf = buf[torch.randperm(buf.shape[0], generator=g)]
                # This rank's rows of every global batch in the buffer, computed in one pass.
                mine = buf.view(n_batches, self.world_size, local, -1)[:, self.rank].reshape(n_batches * local, -1)
                first = max(0, self.start_batch - global_batch)
                acts = self._run(mine[first * local :])
                mine = mine[first * local :]
                for j in range(n_batches - first):
                    rows = slice(j * local, (j + 1) * local)
                    toks = mine[rows]
                    yield ActivationBatch(
                        tokens=toks,
                        acts={h: a[rows] for h, a in acts.items()},
                        mask=token_mask(toks, bos_token_id=self.bos_token_id, pad_token_id=self.pad_token_id).to(
                            next(iter(acts.values())).device
                        ),
                    )
                    bar.update(1)
                global_batch += n_batches
            if not produced:
                break
            epoch += 1
        bar.close()


@torch.no_grad()
def sample_tokens(
    model: "HookedTransformer",
    n_sequences: int,
    ctx: int,
    *,
    batch_size: int = 256,
    temperature: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> Int[Tensor, "n_seq ctx"]:
    """Sequences sampled from ``model`` itself, each starting with BOS (an offline token source).

    Sampled through interp's one generation loop with EOS as an ordinary token (a sampled EOS stays
    a real key, so the text after it is what the model really predicts there).

    Example:
        >>> tokens = sample_tokens(model, 64, 128, seed=0)  # doctest: +SKIP
    """
    c = Check("sample_tokens", CoreConfigError)
    c.integer("n_sequences", n_sequences, min=1)
    c.integer("ctx", ctx, min=2)
    c.integer("batch_size", batch_size, min=1)
    c.number("temperature", temperature, gt=0, fix="Sampling needs temperature > 0, e.g. 1.0.")
    c.integer("seed", seed, min=0)
    c.boolean("progress", progress)
    from interp.core.frontend import n_ctx as context_length

    limit = context_length(model)
    if limit is not None and ctx > limit:
        c.fail("ctx", ctx, f"at most the model's context of {limit} tokens", f"Use ctx={limit} or less.")
    tok = getattr(model, "tokenizer", None)
    start = start_token_id(tok)
    out = []
    for first in tqdm(range(0, n_sequences, batch_size), desc="sampling", disable=bar_disabled(progress)):
        n = min(batch_size, n_sequences - first)
        prompts = torch.full((n, 1), start, dtype=torch.long)
        g = generate(model, prompts, ctx - 1, temperature=temperature, seed=seed * 1_000_003 + first,
                     stop_at_eos=False)
        out.append(torch.cat([prompts, g.tokens.cpu()], 1))
    return torch.cat(out)


def text_tokens(model: "HookedTransformer", texts: Iterable[str], ctx: int) -> Int[Tensor, "n_seq ctx"]:
    """Pack documents into [n_seq, ctx] rows, each starting with BOS (documents joined by EOS when
    the tokenizer has one); the ragged tail is dropped. A token source from a bundled corpus.

    Example:
        >>> tokens = text_tokens(model, ["Once upon a time ...", "..."], ctx=128)  # doctest: +SKIP
    """
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        raise CoreConfigError("text_tokens needs a model with a tokenizer; pass token ids to ActivationStream instead.")
    c = Check("text_tokens", CoreConfigError)
    c.integer("ctx", ctx, min=2, fix="A window is BOS plus at least one token.")
    from interp.core.frontend import n_ctx as context_length

    limit = context_length(model)
    if limit is not None and ctx > limit:
        c.fail("ctx", ctx, f"at most the model's context of {limit} tokens", f"Use ctx={limit} or less.")
    if isinstance(texts, str):
        texts = [texts]
    bos = start_token_id(tok)
    sep = [tok.eos_token_id] if tok.eos_token_id is not None else []
    stream: list[int] = []
    for text in texts:
        stream.extend(tok(text, add_special_tokens=False)["input_ids"] + sep)
    body = ctx - 1
    n = len(stream) // body
    if n == 0:
        raise CoreConfigError(f"The texts give {len(stream)} tokens, fewer than one row of {body}: give more text or a "
                              "smaller ctx.")
    rows = torch.tensor(stream[: n * body], dtype=torch.long).view(n, body)
    return torch.cat([torch.full((n, 1), bos, dtype=torch.long), rows], dim=1)
