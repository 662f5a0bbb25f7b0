"""The one token policy of interp: BOS / EOS / padding ids, prompt encoding, left-padded batches with
their attention mask, loss masks, stop-token sets, and the context-length rule.

Every method goes through these functions, so a prompt is tokenised, padded and length-checked the
same way in the lens, the probe, CorrSteer, THR and Lorsa. Left padding keeps every prompt's last
token at index -1 (what the lens and generation need); positions are derived from the mask, so
padded and unpadded runs give the same numbers.

>>> from interp.core.tokens import left_pad
>>> tokens, mask = left_pad([[1, 5, 6], [1, 7]], pad_id=0)
>>> tokens.tolist(), mask.tolist()
([[1, 5, 6], [0, 1, 7]], [[1, 1, 1], [0, 1, 1]])
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from interp.core.errors import CoreConfigError, CoreTypeError

__all__ = [
    "Prompts",
    "Truncation",
    "ContextLengthError",
    "tokenizer_of",
    "bos_token_id",
    "start_token_id",
    "eos_token_id",
    "pad_token_id",
    "default_prepend_bos",
    "encode",
    "encode_prompts",
    "left_pad",
    "fit_to_context",
    "check_tokens",
    "token_mask",
    "StopSet",
    "stop_set",
    "cut_at_stop",
]

Prompts = str | Sequence[str] | Int[Tensor, "batch pos"] | Int[Tensor, "pos"]
Truncation = Literal["left", "right"]
"""Which end of an over-long prompt to drop when the caller asks for truncation: ``"left"`` keeps the
end of the prompt (what a next-token prediction needs), ``"right"`` keeps its start."""


class ContextLengthError(CoreConfigError):
    """A prompt (plus the tokens to generate) or a token window does not fit the model's context; the
    message gives both lengths and the ``truncate=`` option."""


# ----------------------------------------------------------------------------------- special ids
def tokenizer_of(model: Any, tokenizer: Any = None) -> Any:
    """The tokenizer to use for ``model``: the one given, else ``model.tokenizer``; an error if neither."""
    tok = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if tok is None:
        raise CoreConfigError(
            "This model carries no tokenizer: pass tokenizer=AutoTokenizer.from_pretrained(folder), or token ids "
            "as a [batch, pos] tensor instead of strings."
        )
    return tok


def bos_token_id(tokenizer: Any) -> int | None:
    """The tokenizer's BOS id, or None when it has none (Qwen, some GPT-2 exports)."""
    value = getattr(tokenizer, "bos_token_id", None) if tokenizer is not None else None
    return None if value is None else int(value)


def eos_token_id(tokenizer: Any) -> int | None:
    value = getattr(tokenizer, "eos_token_id", None) if tokenizer is not None else None
    return None if value is None else int(value)


def start_token_id(tokenizer: Any) -> int:
    """The token that starts a sequence built from ids (sampled streams, packed text, probes): BOS,
    else EOS (GPT-2 style models start documents with their end-of-text token)."""
    for value in (bos_token_id(tokenizer), eos_token_id(tokenizer)):
        if value is not None:
            return value
    raise CoreConfigError(
        "The tokenizer has neither a BOS nor an EOS token, so there is no token to start a sequence with; "
        "pass the id explicitly (bos_token_id=...)."
    )


def pad_token_id(tokenizer: Any) -> int:
    """The id that fills padding: pad, else EOS, else BOS, else 0. Its value never matters for the
    numbers, because padded positions are masked out of attention and losses."""
    for attr in ("pad_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(tokenizer, attr, None) if tokenizer is not None else None
        if value is not None:
            return int(value)
    return 0


def default_prepend_bos(model: Any, tokenizer: Any) -> bool:
    """Whether string prompts start with BOS by default: the model's own default
    (TransformerLens ``cfg.default_prepend_bos``) when the tokenizer has a BOS token."""
    if bos_token_id(tokenizer) is None:
        return False
    cfg = getattr(model, "cfg", None)
    return bool(getattr(cfg, "default_prepend_bos", True)) if cfg is not None else True


# ----------------------------------------------------------------------------------- encoding
def encode(tokenizer: Any, text: str, *, prepend_bos: bool = True) -> list[int]:
    """Token ids of ``text``: the tokenizer's pieces without its own special tokens, then BOS first
    when ``prepend_bos`` (one rule for every tokenizer, whatever its post-processor adds)."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = bos_token_id(tokenizer)
    if prepend_bos and bos is not None:
        ids = [bos] + ids
    return ids


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, *, device: torch.device | str | None = None
             ) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """Stack ragged rows into a left-padded LongTensor and its attention mask (1 = real token)."""
    if not rows:
        raise CoreConfigError("No prompts given.")
    width = max(len(r) for r in rows)
    tokens = torch.full((len(rows), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):  # once per prompt, not per token
        if len(r):
            tokens[i, width - len(r):] = torch.as_tensor(list(r), dtype=torch.long)
            mask[i, width - len(r):] = 1
    return tokens.to(device), mask.to(device)


def fit_to_context(rows: list[list[int]], n_ctx: int | None, *, reserve: int = 0,
                   truncate: Truncation | None = None, what: str = "prompt") -> list[list[int]]:
    """Check (or, when asked, cut) every row so that it plus ``reserve`` more tokens fits ``n_ctx``.

    The length policy of interp: a prompt that does not fit is an error that gives both lengths,
    unless ``truncate`` says which end to drop. Never silent.

    >>> fit_to_context([[1, 2, 3, 4]], 4, reserve=2, truncate="left")
    [[3, 4]]
    """
    _check_truncate(truncate)
    if isinstance(reserve, bool) or not isinstance(reserve, int) or reserve < 0:
        raise CoreConfigError(f"reserve={reserve!r} is invalid: it must be an integer >= 0 (the tokens to generate).")
    if n_ctx is None:
        return rows
    room = int(n_ctx) - int(reserve)
    if room < 1:
        raise ContextLengthError(
            f"The model's context is {n_ctx} tokens, so {reserve} new tokens leave no room for a {what}; "
            f"ask for fewer than {n_ctx} new tokens."
        )
    out = []
    for i, r in enumerate(rows):
        if len(r) <= room:
            out.append(r)
            continue
        if truncate is None:
            extra = f" plus {reserve} tokens to generate" if reserve else ""
            raise ContextLengthError(
                f"{what.capitalize()} {i} has {len(r)} tokens{extra}, more than the model's context of {n_ctx} "
                f"tokens. Shorten it, or pass truncate='left' (keep its end) or 'right' (keep its start)."
            )
        out.append(list(r[-room:]) if truncate == "left" else list(r[:room]))
    return out


def _check_truncate(truncate: Any) -> None:
    if truncate is not None and not (isinstance(truncate, str) and truncate in ("left", "right")):
        raise CoreConfigError(f"truncate={truncate!r} is invalid: it must be None (refuse over-long input), 'left' "
                              "(keep the end) or 'right' (keep the start).")


def check_tokens(
    model: Any,
    tokens: Any,
    *,
    what: str = "tokens",
    truncate: Truncation | None = None,
    min_len: int = 1,
    min_rows: int = 1,
) -> Int[Tensor, "n_seq ctx"]:
    """Check a ``[n_seq, ctx]`` batch of token windows against ``model`` before any work: an integer
    tensor with at least ``min_rows`` rows and ``min_len`` columns, every id inside the vocabulary, and
    at most the model's context wide (else a :class:`ContextLengthError` giving both lengths, unless
    ``truncate`` says which end of every window to drop). Returns the (possibly cut) tensor.

    >>> check_tokens(model, torch.zeros(2, 9999, dtype=torch.long))  # doctest: +SKIP
    Traceback (most recent call last):
    ContextLengthError: tokens are 9999 positions wide, more than the model's context of 512 tokens. ...
    """
    from interp.core.frontend import n_ctx as context_length
    from interp.core.frontend import vocab_size

    _check_truncate(truncate)
    if not isinstance(tokens, Tensor):
        raise CoreConfigError(f"{what} must be an integer tensor [n_seq, ctx] of token ids; got a "
                              f"{type(tokens).__name__}. Tokenise text with interp.core.activations.text_tokens.")
    if tokens.ndim != 2 or tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise CoreConfigError(f"{what} must be an integer tensor [n_seq, ctx]; got dtype {tokens.dtype} and shape "
                              f"{tuple(tokens.shape)} (a single window needs tokens[None]).")
    if tokens.shape[0] < min_rows or tokens.shape[1] < min_len:
        raise CoreConfigError(f"{what} has shape {tuple(tokens.shape)}: it needs at least {min_rows} sequence(s) of at "
                              f"least {min_len} token(s).")
    n_vocab = vocab_size(model)
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0 or hi >= n_vocab:
        raise CoreConfigError(f"{what} hold ids {lo}..{hi}, outside the model's vocabulary 0..{n_vocab - 1}: they were "
                              "made with another tokenizer or model.")
    ctx = context_length(model)
    if ctx is not None and tokens.shape[1] > ctx:
        if truncate is None:
            raise ContextLengthError(
                f"{what} are {tokens.shape[1]} positions wide, more than the model's context of {ctx} tokens. Use "
                f"windows of at most {ctx} tokens, or pass truncate='right' (keep the first {ctx}) or 'left' (keep "
                f"the last {ctx})."
            )
        tokens = tokens[:, :ctx] if truncate == "right" else tokens[:, -ctx:]
    return tokens.long()


def encode_prompts(
    model: Any,
    prompts: Prompts,
    *,
    prepend_bos: bool | None = None,
    tokenizer: Any = None,
    reserve: int = 0,
    truncate: Truncation | None = None,
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """Tokenise ``prompts`` into a left-padded batch and its attention mask (1 = real token), on the
    model's input device, checked against its context (``reserve`` = tokens to be generated).

    Token tensors are taken as they are (no padding, mask all ones).

    >>> tokens, mask = encode_prompts(model, ["a b c", "a"])  # doctest: +SKIP
    >>> mask[1].tolist()  # doctest: +SKIP
    [0, 0, 1, 1]
    """
    from interp.core.frontend import input_device
    from interp.core.frontend import n_ctx as context_length

    device = input_device(model)
    n_ctx = context_length(model)
    if isinstance(prompts, Tensor):
        tokens = prompts[None] if prompts.ndim == 1 else prompts
        if tokens.ndim != 2 or tokens.dtype not in (torch.int64, torch.int32) or tokens.shape[-1] == 0:
            raise CoreConfigError(
                f"Token prompts must be a non-empty integer tensor shaped [batch, pos] (or [pos]); got dtype "
                f"{prompts.dtype} and shape {tuple(prompts.shape)}."
            )
        if tokens.shape[0] == 0:
            raise CoreConfigError("No prompts given: the token tensor has no rows.")
        from interp.core.frontend import vocab_size

        n_vocab = vocab_size(model)
        if int(tokens.min()) < 0 or int(tokens.max()) >= n_vocab:
            raise CoreConfigError(f"Token prompts hold ids {int(tokens.min())}..{int(tokens.max())}, outside the model's "
                                  f"vocabulary 0..{n_vocab - 1}: they were made with another tokenizer or model.")
        if n_ctx is not None and tokens.shape[1] + reserve > n_ctx:
            rows = fit_to_context(tokens.tolist(), n_ctx, reserve=reserve, truncate=truncate)
            tokens = torch.tensor(rows, dtype=torch.long)
        tokens = tokens.long().to(device)
        return tokens, torch.ones_like(tokens)
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise CoreConfigError("No prompts given: pass a string, a list of strings or a [batch, pos] token tensor.")
    if not all(isinstance(p, str) for p in prompts):
        bad = next(type(p).__name__ for p in prompts if not isinstance(p, str))
        raise CoreTypeError(f"Prompts must all be strings (found a {bad}); or pass one [batch, pos] token tensor.")
    tok = tokenizer_of(model, tokenizer)
    bos = default_prepend_bos(model, tok) if prepend_bos is None else prepend_bos
    rows = [encode(tok, p, prepend_bos=bos) for p in prompts]
    if any(len(r) == 0 for r in rows):
        raise CoreConfigError("An empty prompt tokenised to zero tokens; give it text or set prepend_bos=True.")
    rows = fit_to_context(rows, n_ctx, reserve=reserve, truncate=truncate)
    return left_pad(rows, pad_token_id(tok), device=device)


# ----------------------------------------------------------------------------------- masks
def token_mask(
    tokens: Int[Tensor, "batch ctx"], *, bos_token_id: int | None, pad_token_id: int | None = None
) -> Bool[Tensor, "batch ctx"]:
    """True where a token should count in a loss: not BOS (it stays a key) and not padding."""
    mask = torch.ones_like(tokens, dtype=torch.bool)
    if bos_token_id is not None:
        mask &= tokens != bos_token_id
    if pad_token_id is not None and pad_token_id != bos_token_id:
        mask &= tokens != pad_token_id
    return mask


# ----------------------------------------------------------------------------------- stops
@dataclass(frozen=True)
class StopSet:
    """Which vocabulary entries end a generated answer, as boolean masks over the vocabulary.

    ``anywhere[v]``: token v's text contains a stop string. ``after_lead[v]``: it contains one after its
    leading whitespace (a newline that only precedes the answer does not end it when generation is
    asked to skip leading whitespace). ``blank[v]``: token v's text is only whitespace.
    """

    strings: tuple[str, ...]
    anywhere: Bool[Tensor, " vocab"]
    after_lead: Bool[Tensor, " vocab"]
    blank: Bool[Tensor, " vocab"]


_STOP_CACHE: "weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], StopSet]]" = weakref.WeakKeyDictionary()


def stop_set(tokenizer: Any, stop: Sequence[str], vocab_size: int | None = None) -> StopSet:
    """The :class:`StopSet` of ``stop`` strings for ``tokenizer`` (one scan of the vocabulary, cached)."""
    strings = tuple(stop)
    if any(not isinstance(s, str) or s == "" for s in strings):
        raise CoreConfigError(f"Stop strings must be non-empty strings; got {list(strings)!r}.")
    try:
        per_tok = _STOP_CACHE.setdefault(tokenizer, {})
    except TypeError:  # not weak-referenceable: no caching
        per_tok = {}
    key = strings + (f"#{vocab_size}",)
    if key not in per_tok:
        n = max(len(tokenizer), vocab_size or 0)
        anywhere = torch.zeros(n, dtype=torch.bool)
        after_lead = torch.zeros(n, dtype=torch.bool)
        blank = torch.zeros(n, dtype=torch.bool)
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))]) if strings else []
        for i, text in enumerate(texts):  # once per vocabulary entry, cached per tokenizer
            lead = len(text) - len(text.lstrip())
            blank[i] = lead == len(text)
            hits = [text.find(s) for s in strings]
            anywhere[i] = any(h >= 0 for h in hits)
            after_lead[i] = any(text.find(s, lead) >= 0 for s in strings)
        per_tok[key] = StopSet(strings, anywhere, after_lead, blank)
    return per_tok[key]


def cut_at_stop(text: str, stop: Sequence[str], *, skip_leading_whitespace: bool = False) -> str:
    """``text`` up to its first stop string (searched after the leading whitespace when asked)."""
    start = len(text) - len(text.lstrip()) if skip_leading_whitespace else 0
    cut = len(text)
    for s in stop:
        j = text.find(s, start)
        if j >= 0:
            cut = min(cut, j)
    return text[:cut]
