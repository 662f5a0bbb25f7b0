"""THE generation loop of interp: greedy or sampled decoding of a left-padded batch, with or without a
KV cache, with an explicit attention mask at every call, per-row stops (EOS and stop strings),
per-step recording of hook activations at the newest position, an ``on_step`` callback, and an RNG on
the model's device.

Every method generates through :func:`generate`: CorrSteer's collection and steered evaluation, the
translation probe's generation-time lens, THR's rollouts, the zoo's task evaluation and the token
sampler of :mod:`interp.core.activations`. The mask is always passed, so a generated EOS (or a pad-id
token) stays a real key: a loop that lets TransformerLens infer the mask from pad ids masks every
sampled EOS when pad = EOS, and its log-probs after an EOS are wrong.

Only the newest position is unembedded at each call (the prompt's other positions never reach the
vocabulary), so the first call costs ``batch x d_vocab`` logits, not ``batch x prompt x d_vocab``.

>>> from interp.core.generation import generate
>>> out = generate(model, ["Once upon a time"], max_new_tokens=8)          # doctest: +SKIP
>>> out.texts()                                                             # doctest: +SKIP
>>> out = generate(model, prompts, 16, temperature=1.0, seed=0)             # sampled, reproducible  # doctest: +SKIP
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from interp.core.errors import CoreConfigError
from interp.core.frontend import frontend, input_device, n_ctx, vocab_size
from interp.core.tokens import (
    Prompts,
    Truncation,
    cut_at_stop,
    encode_prompts,
    eos_token_id,
    fit_to_context,
    left_pad,
    pad_token_id,
    stop_set,
    tokenizer_of,
)
from interp.core.validate import Check

__all__ = ["Generation", "StepCallback", "generate", "make_generator"]

StepCallback = Callable[[int, dict[str, Tensor], Tensor], None]
"""``on_step(step, acts, alive)``: ``acts[hook]`` is ``[batch, d]`` at the newest position of this call (the
last prompt token at step 0, then each generated token), ``alive[b]`` says whether row b is still
generating, i.e. whether the token this call predicts belongs to it."""


@dataclass
class Generation:
    """A generated batch.

    ``tokens[b, t]`` is the t-th generated id of row b (the pad id once the row has ended);
    ``alive[b, t]`` is True when token t belongs to the row: generated before the row ended, the
    ending token (EOS or the token holding a stop string) included. ``answer_lengths[b]`` counts the
    tokens of the answer: all alive tokens except a final EOS (a stop token is kept and its text cut
    at the stop string by :meth:`texts`).
    """

    prompt: Int[Tensor, "batch prompt"]
    prompt_mask: Int[Tensor, "batch prompt"]
    tokens: Int[Tensor, "batch new"]
    alive: Bool[Tensor, "batch new"]
    answer_lengths: Int[Tensor, " batch"]
    stop: tuple[str, ...] = ()
    skip_leading_whitespace: bool = False
    tokenizer: Any = None

    @property
    def n_steps(self) -> int:
        return int(self.tokens.shape[1])

    @property
    def input_ids(self) -> Int[Tensor, "batch seq"]:
        """Prompt and generated tokens, ``[batch, prompt + new]``."""
        return torch.cat([self.prompt, self.tokens], 1)

    @property
    def attention_mask(self) -> Int[Tensor, "batch seq"]:
        """1 on real prompt tokens and on generated tokens that belong to their row."""
        return torch.cat([self.prompt_mask, self.alive.long()], 1)

    def answer_ids(self, row: int) -> list[int]:
        return self.tokens[row, : int(self.answer_lengths[row])].tolist()

    def texts(self) -> list[str]:
        """Each row's answer text: its tokens up to (not including) EOS, cut at the first stop string."""
        tok = self.tokenizer
        if tok is None:
            return [" ".join(map(str, self.answer_ids(b))) for b in range(self.tokens.shape[0])]
        out = []
        for b in range(self.tokens.shape[0]):
            text = tok.decode(self.answer_ids(b), skip_special_tokens=True)
            out.append(cut_at_stop(text, self.stop, skip_leading_whitespace=self.skip_leading_whitespace)
                       if self.stop else text)
        return out

    def prompt_texts(self) -> list[str]:
        """Each row's prompt text (padding removed; special tokens kept)."""
        rows = [self.prompt[b][self.prompt_mask[b].bool()].tolist() for b in range(self.prompt.shape[0])]
        if self.tokenizer is None:
            return [" ".join(map(str, r)) for r in rows]
        return [self.tokenizer.decode(r) for r in rows]

    def to_frame(self) -> Any:
        """One row per prompt: prompt text and length, answer text and length, and how many generated
        tokens belong to the row (the answer plus a final EOS)."""
        import pandas as pd

        return pd.DataFrame({
            "row": range(self.prompt.shape[0]), "prompt": self.prompt_texts(),
            "prompt_tokens": self.prompt_mask.sum(1).tolist(), "answer": self.texts(),
            "answer_tokens": self.answer_lengths.tolist(), "row_tokens": self.alive.sum(1).tolist(),
        })

    def plot(self) -> Any:
        """Answer length of every row (:func:`interp.core.plots.generation_figure`)."""
        from interp.core.plots import generation_figure

        return generation_figure(self)

    def _repr_html_(self) -> str:
        import html

        return (f"<b>{html.escape(repr(self))}</b>"
                + self.to_frame().head(20).to_html(index=False))

    def __repr__(self) -> str:
        b, n = self.tokens.shape
        mean = float(self.answer_lengths.float().mean()) if b else float("nan")
        return f"Generation(batch={b}, prompt={self.prompt.shape[1]}, steps={n}, mean answer length={mean:.1f})"


def make_generator(model: Any, seed: int | None = None, generator: torch.Generator | None = None) -> torch.Generator | None:
    """The sampling RNG on the model's device: ``generator`` when it is already there, a new one seeded
    with ``seed`` otherwise (None: torch's global RNG)."""
    device = input_device(model)
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise CoreConfigError(f"generator={generator!r} is invalid: it must be a torch.Generator (or pass seed=...).")
        if torch.device(generator.device).type != device.type:
            raise CoreConfigError(
                f"The generator is on {generator.device} but the model samples on {device}: torch.multinomial "
                f"needs a generator on the same device. Pass seed=... (interp makes it there), or "
                f"torch.Generator(device='{device}')."
            )
        return generator
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(int(seed))


# ----------------------------------------------------------------------------------- backends
class _HookedBackend:
    """HookedTransformer with TransformerLens's own KV cache. Only the newest position is unembedded:
    the forward skips the unembedding (``return_type=None``), a hook keeps the last block's output at
    the newest position, and the final norm, unembedding and soft-cap are applied to that row alone."""

    def __init__(self, model: Any, use_cache: bool):
        self.model = model
        self.use_cache = use_cache
        self.cache = None
        self.final_hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
        self.has_norm = model.cfg.normalization_type is not None
        self.cap = float(getattr(model.cfg, "output_logits_soft_cap", 0.0) or 0.0)
        self.seq: Tensor | None = None
        self.mask: Tensor | None = None

    def _logits(self, tokens: Tensor, mask: Tensor, cache: Any) -> Tensor:
        kept: dict[str, Tensor] = {}

        def keep(act: Tensor, hook: Any) -> None:
            kept["h"] = act[:, -1:]

        with self.model.hooks(fwd_hooks=[(self.final_hook, keep)]):
            self.model(tokens, attention_mask=mask, past_kv_cache=cache, return_type=None)
        h = self.model.ln_final(kept["h"]) if self.has_norm else kept["h"]  # a per-position op: exact
        logits = self.model.unembed(h)[:, 0]
        if self.cap > 0:
            logits = self.cap * torch.tanh(logits / self.cap)
        return logits

    def first(self, tokens: Tensor, mask: Tensor) -> Tensor:
        if self.use_cache:
            from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

            self.cache = TransformerLensKeyValueCache.init_cache(self.model.cfg, tokens.device, tokens.shape[0])
        self.seq, self.mask = tokens, mask
        return self._logits(tokens, mask, self.cache)

    def next(self, new: Tensor) -> Tensor:
        one = torch.ones_like(new)[:, None]
        if self.use_cache:
            # the cache extends its stored mask with this one; the new token is always a real key
            return self._logits(new[:, None], one, self.cache)
        self.seq = torch.cat([self.seq, new[:, None]], 1)
        self.mask = torch.cat([self.mask, one], 1)
        return self._logits(self.seq, self.mask, None)


class _HFBackend:
    """A Hugging Face causal LM (directly, or inside a TransformerBridge) with its own cache. The full
    mask is passed every call; positions count real tokens only, so left padding does not shift RoPE
    or learned positions."""

    def __init__(self, model: Any, use_cache: bool, bridge: bool):
        self.model, self.use_cache, self.bridge = model, use_cache, bridge
        self.cache: Any = None
        self.seq: Tensor | None = None
        self.mask: Tensor | None = None

    def _call(self, ids: Tensor, mask: Tensor) -> Tensor:
        kwargs: dict[str, Any] = dict(attention_mask=mask, logits_to_keep=1)
        if self.use_cache:
            kwargs.update(use_cache=True, past_key_values=self.cache)
        else:
            kwargs.update(use_cache=False)
        if self.bridge:
            # the bridge derives positions from the mask itself (offset to the tokens passed)
            logits, cache = self.model(ids, return_type="logits_and_cache", **kwargs)
        else:
            pos = (mask.cumsum(1) - 1).clamp_min(0)[:, -ids.shape[1]:]
            out = self.model(input_ids=ids, position_ids=pos, **kwargs)
            logits, cache = out.logits, getattr(out, "past_key_values", None)
        if self.use_cache:
            self.cache = cache
        return logits[:, -1]

    def first(self, tokens: Tensor, mask: Tensor) -> Tensor:
        self.seq, self.mask = tokens, mask
        return self._call(tokens, mask)

    def next(self, new: Tensor) -> Tensor:
        self.mask = torch.cat([self.mask, torch.ones_like(new)[:, None]], 1)
        if self.use_cache:
            return self._call(new[:, None], self.mask)
        self.seq = torch.cat([self.seq, new[:, None]], 1)
        return self._call(self.seq, self.mask)


def _backend(model: Any, use_cache: bool) -> _HookedBackend | _HFBackend:
    kind = frontend(model)
    if kind == "hooked":
        return _HookedBackend(model, use_cache)
    return _HFBackend(model, use_cache, bridge=kind == "bridge")


# ----------------------------------------------------------------------------------- prompts
def _prompt_batch(model: Any, prompts: Prompts | Sequence[Sequence[int]], tok: Any, *, max_new_tokens: int,
                  prepend_bos: bool | None, truncate: Truncation | None) -> tuple[Tensor, Tensor]:
    """Left-padded prompt ids and mask: strings are encoded with the one BOS rule, id rows taken as given."""
    if isinstance(prompts, (str, Tensor)) or (isinstance(prompts, Sequence) and prompts and isinstance(prompts[0], str)):
        return encode_prompts(model, prompts, prepend_bos=prepend_bos, tokenizer=tok, reserve=max_new_tokens,
                              truncate=truncate)
    try:
        rows = [list(map(int, r)) for r in prompts]
    except (TypeError, ValueError) as err:
        raise CoreConfigError(f"prompts must be strings, a [batch, pos] id tensor or lists of ids; got {type(prompts).__name__} "
                              f"({err}).") from None
    if not rows or any(len(r) == 0 for r in rows):
        raise CoreConfigError("No prompts given, or an empty row of prompt ids.")
    rows = fit_to_context(rows, n_ctx(model), reserve=max_new_tokens, truncate=truncate)
    tokens, mask = left_pad(rows, pad_token_id(tok))
    n_vocab = vocab_size(model)
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0 or hi >= n_vocab:
        raise CoreConfigError(f"Prompt ids {lo}..{hi} are outside the model's vocabulary 0..{n_vocab - 1}: they were "
                              "made with another tokenizer or model.")
    device = input_device(model)
    return tokens.to(device), mask.to(device)


# ----------------------------------------------------------------------------------- the loop
@torch.no_grad()
def generate(
    model: Any,
    prompts: Prompts | Sequence[Sequence[int]],
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    stop: Sequence[str] = (),
    stop_at_eos: bool = True,
    skip_leading_whitespace: bool = False,
    use_kv_cache: bool = True,
    record: Sequence[str] = (),
    on_step: StepCallback | None = None,
    prepend_bos: bool | None = None,
    truncate: Truncation | None = None,
    tokenizer: Any = None,
) -> Generation:
    """Generate up to ``max_new_tokens`` for every prompt (one forward call per token).

    Args:
        model: a HookedTransformer, a TransformerBridge or a Hugging Face causal LM (``record`` and hooks
            need a TransformerLens front-end).
        prompts: strings (encoded with BOS as the model's default says, or as ``prepend_bos``), a
            ``[batch, pos]`` id tensor, or a list of id rows of any lengths (left-padded here).
        temperature: 0 is greedy; otherwise ids are sampled from ``softmax(logits / temperature)``.
        seed, generator: the sampling RNG (made on the model's device from ``seed``).
        stop: strings that end a row: the row ends at the first token whose text contains one (the token
            is kept; :meth:`Generation.texts` cuts the text at the string).
        stop_at_eos: end a row at EOS. With False, EOS is an ordinary token (sampled text streams).
        skip_leading_whitespace: a stop string inside the answer's leading whitespace does not end it.
        use_kv_cache: False recomputes the whole sequence at every step (same tokens; for checks).
        record, on_step: hooks whose newest-position activations are passed to ``on_step`` at every call.
        truncate: None refuses prompts that do not fit the context with ``max_new_tokens`` more;
            ``"left"``/``"right"`` drops that end instead.

    Returns:
        A :class:`Generation`. The batch stops early when every row has ended.
    """
    check = Check("generate", CoreConfigError)
    check.integer("max_new_tokens", max_new_tokens, min=1)
    check.number("temperature", temperature, ge=0, fix="0 is greedy; sampling uses e.g. temperature=1.0.")
    check.integer("seed", seed, min=0, optional=True)
    for flag in ("stop_at_eos", "skip_leading_whitespace", "use_kv_cache"):
        check.boolean(flag, locals()[flag])
    check.boolean("prepend_bos", prepend_bos, optional=True)
    record = check.strings("record", record)
    stop = check.strings("stop", stop)
    if on_step is not None and not callable(on_step):
        check.fail("on_step", on_step, "None or a callable on_step(step, acts, alive)")
    if record and frontend(model) != "hf":
        unknown = [h for h in record if h not in model.hook_dict]
        if unknown:
            check.fail("record", list(record), "hook names of this model",
                       f"Unknown: {unknown}; e.g. {sorted(model.hook_dict)[:3]} (see model.hook_dict).")
    tok = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if tok is None and (stop or not isinstance(prompts, Tensor)):
        tok = tokenizer_of(model)  # raises: strings and stop strings need a tokenizer
    tokens, mask = _prompt_batch(model, prompts, tok, max_new_tokens=max_new_tokens, prepend_bos=prepend_bos,
                                 truncate=truncate)
    b, device = tokens.shape[0], tokens.device
    gen = make_generator(model, seed, generator) if temperature > 0 else None
    eos = eos_token_id(tok) if stop_at_eos else None
    pad = pad_token_id(tok)
    stops = stop_set(tok, tuple(stop), vocab_size(model)) if stop else None
    if stops is not None:
        anywhere, after_lead, blank = (t.to(device) for t in (stops.anywhere, stops.after_lead, stops.blank))
    if record and frontend(model) == "hf":
        raise ValueError("record= needs hook names, which only TransformerLens front-ends have; load the model "
                         "with interp.load_model (a TransformerBridge or HookedTransformer).")

    acts: dict[str, Tensor] = {}

    def grab(act: Tensor, hook: Any) -> None:
        acts[hook.name] = act[:, -1].detach()

    backend = _backend(model, use_kv_cache)
    out = torch.full((b, max_new_tokens), pad, dtype=torch.long, device=device)
    alive_steps = torch.zeros((b, max_new_tokens), dtype=torch.bool, device=device)
    alive = torch.ones(b, dtype=torch.bool, device=device)
    started = torch.zeros(b, dtype=torch.bool, device=device)  # has the answer shown non-whitespace yet
    ended_by_eos = torch.zeros(b, dtype=torch.bool, device=device)
    n_steps = 0
    hook_ctx = model.hooks(fwd_hooks=[(name, grab) for name in record]) if record else nullcontext()
    with hook_ctx:
        logits = backend.first(tokens, mask)
        for step in range(max_new_tokens):
            if on_step is not None:
                on_step(step, acts, alive.clone())
            if temperature == 0:
                nxt = logits.argmax(-1)
            else:
                probs = torch.softmax(logits.float() / temperature, -1)
                nxt = torch.multinomial(probs, 1, generator=gen)[:, 0]
            nxt = torch.where(alive, nxt, torch.full_like(nxt, pad))
            out[:, step] = nxt
            alive_steps[:, step] = alive
            n_steps = step + 1
            ending = torch.zeros_like(alive)
            if eos is not None:
                is_eos = nxt == eos
                ended_by_eos |= alive & is_eos
                ending |= is_eos
            if stops is not None:
                hit = torch.where(started, anywhere[nxt], after_lead[nxt]) if skip_leading_whitespace else anywhere[nxt]
                started |= ~blank[nxt]
                ending |= hit
            alive = alive & ~ending
            if not bool(alive.any()) or step == max_new_tokens - 1:
                break
            logits = backend.next(nxt)
    out, alive_steps = out[:, :n_steps], alive_steps[:, :n_steps]
    lengths = alive_steps.sum(1) - ended_by_eos.long()
    return Generation(tokens, mask, out, alive_steps, lengths, tuple(stop), skip_leading_whitespace, tok)
