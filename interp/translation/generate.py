"""Generation-time logit lens: the model answers greedily with a KV cache, and at every generated
step the residual stream of each inspected layer (last position only) is decoded, so each layer
yields its own string for the answer (multi-token words are read across steps, as in the
translation-barrier reference code, which re-ran generation per layer).

Prompts of different lengths are left-padded with an attention mask; TransformerLens derives
rotary/absolute positions from the mask, and the cache keeps extending it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.lens._inputs import encode_prompts, pad_token_id
from interp.lens.decode import decode_residuals, layer_hook_name, resolve_layers, _resolve_lens
from interp.lens.unembed import DEFAULT_CHUNK

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["GenerationTrace", "generate_with_lens", "first_answer_token"]


@dataclass
class GenerationTrace:
    """Per-layer decodings of a batch of greedy generations.

    ``top_ids``/``top_logprobs``: ``[batch, n_sel_layers, steps, k]`` (layer axis follows ``layers``,
    lens indices; the last entry is the model's output). ``n_steps[b]`` is how many generated steps
    belong to example ``b``'s answer (before EOS / a stop string). ``step0_target_logprobs``:
    ``[batch, n_sel_layers, n_targets]`` at the first generated step, when targets were given.
    """

    top_ids: Int[Tensor, "batch layer step k"]
    top_logprobs: Float[Tensor, "batch layer step k"]
    layers: list[int]
    n_layers: int
    n_steps: list[int]
    answers: list[str]
    layer_strings: list[list[str]]
    step0_target_logprobs: Float[Tensor, "batch layer n_targets"] | None
    tokenizer: Any = None

    def step_tokens(self, example: int, rank: int = 0) -> list[list[str]]:
        """Token strings ``[layer][step]`` of one example's answer steps."""
        n = self.n_steps[example]
        ids = self.top_ids[example, :, :n, rank]
        return [[self.tokenizer.decode([i]) for i in row] for row in ids.tolist()]


def first_answer_token(tokenizer, word: str, *, context: str = "Translation:", lead: str = " ") -> int:
    """The first token a model emits when it writes ``word`` after ``context`` (tokenizer-agnostic:
    the difference between encoding the context with and without the word)."""
    with_word = tokenizer(context + lead + word, add_special_tokens=False)["input_ids"]
    without = tokenizer(context, add_special_tokens=False)["input_ids"]
    i = 0
    while i < min(len(with_word), len(without)) and with_word[i] == without[i]:
        i += 1
    if i >= len(with_word):
        raise ValueError(f"Could not find a token for {word!r} after {context!r}.")
    return int(with_word[i])


def _cut_answer(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text up to the first stop string after any leading whitespace; and whether one was found."""
    lead = len(text) - len(text.lstrip())
    cut = len(text)
    for s in stop:
        j = text.find(s, lead)
        if j >= 0:
            cut = min(cut, j)
    return text[:cut], cut < len(text)


@torch.inference_mode()
def generate_with_lens(
    model: "HookedTransformer",
    prompts: Sequence[str] | str,
    *,
    max_new_tokens: int = 10,
    layers: Sequence[int] | int | None = None,
    lens=None,
    final_norm: bool = True,
    k: int = 5,
    stop: Sequence[str] = ("\n",),
    stop_at_eos: bool = True,
    step0_target_ids: Int[Tensor, "batch n_targets"] | None = None,
    prepend_bos: bool | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> GenerationTrace:
    """Greedy generation with a KV cache, decoding ``layers`` at every step (one forward per step).

    Args:
        layers: lens indices to inspect (see :func:`interp.lens.decode_layers`); the model's output
            layer is always decoded too, because greedy decoding needs it.
        stop: strings that end an answer (the text before them is the answer).
        step0_target_ids: per-example token ids whose log-probs are recorded at the first step
            (e.g. first tokens of the answer in every language).

    Example:
        >>> trace = generate_with_lens(model, ["Word: perro\\nTranslation:"], layers=-4)   # doctest: +SKIP
        >>> trace.answers[0], trace.layer_strings[0]                                    # doctest: +SKIP
    """
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}.")
    n_layers = model.cfg.n_layers
    sel = resolve_layers(layers, n_layers)
    if n_layers not in sel:
        sel = sel + [n_layers]
    tuned = _resolve_lens(model, lens)
    tokens, mask = encode_prompts(model, [prompts] if isinstance(prompts, str) else prompts, prepend_bos=prepend_bos)
    batch = tokens.shape[0]
    device = tokens.device
    cache = TransformerLensKeyValueCache.init_cache(model.cfg, device, batch)
    tok = model.tokenizer
    eos = tok.eos_token_id if (tok is not None and stop_at_eos) else None

    kept: dict[int, Tensor] = {}

    def make_hook(index: int):
        def hook(act, hook):
            kept[index] = act[:, -1:].detach()  # only the newest position is decoded

        return hook

    fwd_hooks = [(layer_hook_name(i, n_layers), make_hook(i)) for i in sel]
    all_ids, all_lp = [], []
    step0_lp = None
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    n_steps = torch.full((batch,), -1, dtype=torch.long, device=device)
    generated: list[list[int]] = [[] for _ in range(batch)]
    inputs, step_mask = tokens, mask
    for step in range(max_new_tokens):
        with model.hooks(fwd_hooks=fwd_hooks):
            model(inputs, attention_mask=step_mask, past_kv_cache=cache, return_type=None)
        resid = torch.stack([kept[i] for i in sel], dim=1)  # [batch, n_sel, 1, d_model]
        tgt = step0_target_ids.to(device) if (step == 0 and step0_target_ids is not None) else None
        ids, lp, _, tlp = decode_residuals(model, resid, sel, k=k, lens=tuned, final_norm=final_norm,
                                           target_ids=tgt, chunk_size=chunk_size)
        if tlp is not None:
            step0_lp = tlp[:, :, 0].cpu()
        all_ids.append(ids[:, :, 0].cpu())
        all_lp.append(lp[:, :, 0].cpu())
        nxt = ids[:, -1, 0, 0]  # greedy: the output layer's top-1
        for b in range(batch):  # bookkeeping per prompt (not per token of the vocabulary)
            if finished[b]:
                continue
            if eos is not None and int(nxt[b]) == eos:
                finished[b], n_steps[b] = True, step
                continue
            generated[b].append(int(nxt[b]))
            if stop and tok is not None:
                _, hit = _cut_answer(tok.decode(generated[b]), stop)
                if hit:
                    finished[b], n_steps[b] = True, step + 1
        if bool(finished.all()):
            break
        inputs = torch.where(finished, torch.full_like(nxt, pad_token_id(model)), nxt)[:, None]
        step_mask = torch.ones((batch, 1), dtype=mask.dtype, device=device)
    steps_run = len(all_ids)
    n_steps = torch.where(n_steps < 0, torch.full_like(n_steps, steps_run), n_steps).tolist()
    top_ids = torch.stack(all_ids, dim=2)
    top_lp = torch.stack(all_lp, dim=2)
    answers, layer_strings = [], []
    for b in range(batch):
        text = tok.decode(generated[b]) if tok is not None else ""
        answers.append(_cut_answer(text, stop)[0] if stop else text)
        rows = top_ids[b, :, : n_steps[b], 0].tolist()
        strings = [tok.decode(r) if tok is not None else "" for r in rows]
        layer_strings.append([_cut_answer(s, stop)[0] if stop else s for s in strings])
    return GenerationTrace(top_ids, top_lp, sel, n_layers, n_steps, answers, layer_strings, step0_lp, tok)
