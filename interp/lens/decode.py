"""The logit lens (nostalgebraist 2020) and the tuned lens (Belrose et al. 2023) behind one call.

``decode_layers`` runs ONE forward pass, keeps only the residual vectors of the requested layers
at the requested positions, and unembeds them through the final norm in vocabulary chunks.

Layer index convention (used everywhere in ``interp.lens`` and ``interp.translation``):
index 0 is the embedding output (``blocks.0.hook_resid_pre``); index ``i`` in ``1..n_layers`` is
``blocks.{i-1}.hook_resid_post``. The last index is decoded exactly as the model's forward pass
decodes it (final norm + unembedding), so it equals the model's own logits.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.core.frontend import final_norm as final_norm_of
from interp.core.frontend import n_layers as n_layers_of
from interp.core.frontend import output_device
from interp.core.frontend import vocab_size as vocab_size_of
from interp.core.tokens import Prompts, Truncation, encode_prompts
from interp.core.validate import Check
from interp.lens.errors import LensConfigError
from interp.lens.layers import layer_hook_name, resolve_layers
from interp.lens.result import LensResult
from interp.lens.fitted import FittedLens
from interp.lens.jacobian import JacobianLens
from interp.lens.tuned import TunedLens
from interp.lens.unembed import DEFAULT_CHUNK, unembed_topk

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["decode_layers", "layer_hook_name", "decode_residuals", "LensKind", "lens_name", "resolve_layers",
           "resolve_lens"]

LensKind = Literal["logit", "tuned", "jacobian"]
Positions = int | Sequence[int] | Literal["all"]


_VERBS = {TunedLens: "Train one with `TunedLens.train(model, tokens)` or load one with `TunedLens.load(path, model)`",
          JacobianLens: "Fit one with `JacobianLens.fit(model, tokens)` or load one with `JacobianLens.load(path, model)`"}


def resolve_lens(model: "HookedTransformer", lens: "LensKind | FittedLens | None") -> "FittedLens | None":
    """The tuned or Jacobian lens ``lens`` names (None for the logit lens); clear errors for anything else."""
    if lens is None or lens == "logit":
        return None
    if isinstance(lens, FittedLens):
        lens.check_model(model)
        return lens
    for cls, verb in _VERBS.items():
        if lens == cls.kind:
            found = cls.attached(model)
            if found is None:
                raise LensConfigError(
                    f"lens={cls.kind!r} but no {cls.title} is attached to this model. {verb} (both attach it), "
                    f"or pass the {cls.__name__} object as lens=...")
            return found
    raise LensConfigError(f"lens={lens!r} is not 'logit', 'tuned', 'jacobian', a TunedLens, a JacobianLens or None.")


def lens_name(lens: "FittedLens | None") -> str:
    """The name a result records for a resolved lens: ``logit``, ``tuned`` or ``jacobian``."""
    return "logit" if lens is None else lens.kind


def decode_residuals(
    model: "HookedTransformer",
    resid: Float[Tensor, "batch n_sel n_pos d_model"],
    layers: Sequence[int],
    *,
    k: int,
    lens: "TunedLens | None" = None,
    final_norm: bool = True,
    target_ids: Int[Tensor, "batch n_targets"] | None = None,
    chunk_size: int = DEFAULT_CHUNK,
):
    """Decode stacked residuals of lens ``layers`` (see the module docstring for indices).

    Returns ``(top_ids, top_logprobs, top_logits, target_logprobs)`` shaped ``[batch, n_sel, n_pos, k]`` (and
    ``[..., n_targets]``). Shared by :func:`decode_layers` and generation-time probing.
    """
    n_layers = n_layers_of(model)
    b, n_sel, n_pos, d = resid.shape
    x = resid.to(output_device(model))
    if lens is not None:
        x = lens.translate(x, layers)
    # the final norm is always applied at the last index (that IS the model's output); the
    # final_norm=False variant of the reference code only skips it for intermediate layers
    is_last = torch.tensor([layer == n_layers for layer in layers], device=x.device)
    norm = final_norm_of(model)
    rows = x.reshape(b * n_sel * n_pos, d)
    tgt = None
    if target_ids is not None:
        target_ids = target_ids.to(x.device)
        tgt = target_ids[:, None, None, :].expand(b, n_sel, n_pos, target_ids.shape[-1]).reshape(b * n_sel * n_pos, -1)
    if norm is not None and final_norm:
        rows = norm(rows)
    elif norm is not None and bool(is_last.any()):
        sel = is_last[None, :, None].expand(b, n_sel, n_pos).reshape(-1)
        rows = rows.clone()
        rows[sel] = norm(rows[sel])
    out = unembed_topk(model, rows, k=k, target_ids=tgt, chunk_size=chunk_size)
    kk = out.top_ids.shape[-1]
    top_ids = out.top_ids.reshape(b, n_sel, n_pos, kk)
    top_lp = out.top_logprobs.reshape(b, n_sel, n_pos, kk)
    top_logits = out.top_logits.reshape(b, n_sel, n_pos, kk)
    tlp = None if out.target_logprobs is None else out.target_logprobs.reshape(b, n_sel, n_pos, -1)
    return top_ids, top_lp, top_logits, tlp


def _position_index(
    positions: Positions, mask: Int[Tensor, "batch pos"]
) -> tuple[Int[Tensor, "batch n_pos"], torch.Tensor]:
    """Padded-sequence indices for each row, and which of them are real tokens.

    Negative positions count from each prompt's end (left padding puts every end at -1);
    non-negative ones count from each prompt's first token.
    """
    b, width = mask.shape
    lengths = mask.sum(-1)
    pad = width - lengths
    if isinstance(positions, str):
        if positions != "all":
            raise LensConfigError(f"positions={positions!r}: use an int, a list of ints, or 'all'.")
        rel = torch.arange(int(lengths.max()), device=mask.device)[None, :].expand(b, -1)
        valid = rel < lengths[:, None]
        idx = (pad[:, None] + rel).clamp(max=width - 1)
        return idx, valid
    pos_list = [positions] if isinstance(positions, int) else list(positions)
    if not pos_list:
        raise LensConfigError("positions is empty: give at least one position (e.g. -1 for the last token).")
    rel = torch.tensor(pos_list, device=mask.device)[None, :].expand(b, -1)
    idx = torch.where(rel < 0, width + rel, pad[:, None] + rel)
    too_far = (rel >= lengths[:, None]) | (rel < -lengths[:, None])
    if bool(too_far.any()):
        row = int(too_far.any(-1).nonzero()[0])
        raise LensConfigError(
            f"positions {pos_list} do not all exist in prompt {row}, which has {int(lengths[row])} tokens; "
            "use negative positions to count from each prompt's end."
        )
    return idx, torch.ones_like(idx, dtype=torch.bool)


def _as_target_tensor(target_ids, batch: int, device) -> Int[Tensor, "batch n_targets"] | None:
    if target_ids is None:
        return None
    t = torch.as_tensor(target_ids, device=device, dtype=torch.long)
    if t.ndim == 0:
        t = t[None]
    if t.ndim == 1:
        t = t[None, :].expand(batch, -1)
    if t.ndim != 2 or t.shape[0] != batch:
        raise LensConfigError(
            f"target_ids must be an int, a list of ids (same for every prompt) or a [batch={batch}, n] "
            f"tensor; got shape {tuple(t.shape)}."
        )
    return t


def _check_decode_args(model, *, k, positions, final_norm, target_ids, prepend_bos, chunk_size) -> None:
    """Every argument of :func:`decode_layers` checked before the forward pass."""
    c = Check("decode_layers", LensConfigError)
    c.integer("k", k, min=1, fix="k is the number of top tokens kept per layer and position.")
    c.boolean("final_norm", final_norm)
    c.boolean("prepend_bos", prepend_bos, optional=True)
    c.integer("chunk_size", chunk_size, min=1)
    index = lambda p: isinstance(p, numbers.Integral) and not isinstance(p, bool)  # noqa: E731
    if not (positions == "all" if isinstance(positions, str) else index(positions) or (
            isinstance(positions, Sequence) and all(index(p) for p in positions))):
        c.fail("positions", positions, "-1 (the last token), a list of ints (negative count from each prompt's end) "
               "or 'all'")
    if target_ids is not None:
        try:
            t = torch.as_tensor(target_ids)
        except (TypeError, ValueError, RuntimeError):
            c.fail("target_ids", target_ids, "None, a token id, a list of ids or a [batch, n] id tensor")
        n_vocab = vocab_size_of(model)
        if t.is_floating_point() or t.dtype == torch.bool or t.numel() == 0 or int(t.min()) < 0 or int(t.max()) >= n_vocab:
            c.fail("target_ids", target_ids, f"token ids in [0, {n_vocab}) (at least one)")


@torch.inference_mode()
def decode_layers(
    model: "HookedTransformer",
    prompts: Prompts,
    *,
    positions: Positions = -1,
    k: int = 10,
    lens: "LensKind | FittedLens | None" = None,
    final_norm: bool = True,
    target_ids: int | Sequence[int] | Int[Tensor, "batch n_targets"] | None = None,
    layers: Sequence[int] | int | None = None,
    prepend_bos: bool | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    truncate: Truncation | None = None,
) -> LensResult:
    """Decode every layer's residual stream into tokens, from a single forward pass.

    Layer indices: 0 is the embedding output (``blocks.0.hook_resid_pre``), ``i`` in
    ``1..n_layers`` is ``blocks.{i-1}.hook_resid_post``; index ``n_layers`` equals the model's
    logits. Prompts of different lengths are left-padded with an attention mask.

    Args:
        model: a TransformerLens ``TransformerBridge`` or ``HookedTransformer``.
        prompts: a string, a list of strings, or a ``[batch, pos]`` token tensor.
        positions: ``-1`` (last token, default), a list of positions (negative = from each prompt's
            end, non-negative = from its first token), or ``"all"``.
        k: top tokens kept per layer and position.
        lens: ``None``/``"logit"`` (logit lens), ``"tuned"`` (the tuned lens attached to ``model``)
            or a :class:`~interp.lens.tuned.TunedLens`; ``"jacobian"`` (the Jacobian lens attached to
            ``model``) or a :class:`~interp.lens.jacobian.JacobianLens`.
        final_norm: apply the model's final LayerNorm/RMSNorm before unembedding (standard logit
            lens). ``False`` reproduces the translation-barrier reference code, which skipped it
            for intermediate layers.
        target_ids: token ids whose full log-prob is tracked at every layer (one list for all
            prompts or a ``[batch, n]`` tensor), e.g. the first token of an answer word.
        layers: lens indices to decode (default all; ``-10`` = the last ten).
        prepend_bos: override the model's default BOS handling for string prompts.
        chunk_size: vocabulary columns unembedded at once (bounds memory for huge vocabularies).
        truncate: None refuses a prompt longer than the model's context (the "last" position would not
            be the prompt's); ``"left"`` keeps its end, ``"right"`` its start.

    Example:
        >>> from interp.lens import decode_layers
        >>> res = decode_layers(model, "Once upon a", k=5)          # doctest: +SKIP
        >>> res.top_tokens(0)[-1][0]   # top token of the last layer at the last position  # doctest: +SKIP
    """
    _check_decode_args(model, k=k, positions=positions, final_norm=final_norm, target_ids=target_ids,
                       prepend_bos=prepend_bos, chunk_size=chunk_size)
    n_layers = n_layers_of(model)
    sel = resolve_layers(layers, n_layers)
    tuned = resolve_lens(model, lens)
    tokens, mask = encode_prompts(model, prompts, prepend_bos=prepend_bos, truncate=truncate)
    pos_idx, valid = _position_index(positions, mask)
    tgt = _as_target_tensor(target_ids, tokens.shape[0], tokens.device)

    batch_ix = torch.arange(tokens.shape[0], device=tokens.device)[:, None]
    head = output_device(model)
    kept: dict[int, Tensor] = {}

    def make_hook(index: int):
        def hook(act, hook):  # keep only the requested positions: [batch, n_pos, d_model], on the head's device
            kept[index] = act[batch_ix.to(act.device), pos_idx.to(act.device)].detach().to(head)

        return hook

    fwd_hooks = [(layer_hook_name(i, n_layers), make_hook(i)) for i in sel]
    stop = max(1, max(sel))  # blocks after the deepest requested layer are never run
    padded = bool((mask == 0).any())
    with model.hooks(fwd_hooks=fwd_hooks):
        model(tokens, attention_mask=mask if padded else None, stop_at_layer=stop)
    resid = torch.stack([kept[i] for i in sel], dim=1)  # [batch, n_sel, n_pos, d_model]
    top_ids, top_lp, top_logits, tlp = decode_residuals(
        model, resid, sel, k=k, lens=tuned, final_norm=final_norm, target_ids=tgt, chunk_size=chunk_size
    )
    return LensResult(
        top_ids=top_ids.cpu(),
        top_logprobs=top_lp.cpu(),
        top_logits=top_logits.cpu(),
        layers=sel,
        n_layers=n_layers,
        tokens=tokens.cpu(),
        attention_mask=mask.cpu(),
        positions=pos_idx.cpu(),
        position_valid=valid.cpu(),
        target_ids=None if tgt is None else tgt.cpu(),
        target_logprobs=None if tlp is None else tlp.cpu(),
        lens=lens_name(tuned),
        final_norm=final_norm,
        tokenizer=model.tokenizer,
    )
