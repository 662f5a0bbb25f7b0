"""Generation-time logit lens: the model answers greedily with a KV cache, and at every generated
step the residual stream of each inspected layer (last position only) is decoded, so each layer
yields its own string for the answer (multi-token words are read across steps, as in the
translation-barrier reference code, which re-ran generation per layer).

The generation itself is interp's one loop (:mod:`interp.core.generation`): left padding with an explicit
mask, stops per row, the residuals of the inspected layers recorded at the newest position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.core.generation import generate
from interp.core.tokens import Truncation, cut_at_stop
from interp.core.validate import Check
from interp.lens import DEFAULT_CHUNK, decode_residuals, layer_hook_name, resolve_layers, resolve_lens
from interp.translation.errors import TranslationConfigError

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

    def to_frame(self) -> Any:
        """One row per (example, layer): the layer's decoded answer string and the example's final answer."""
        import pandas as pd

        return pd.DataFrame([{"example": b, "layer": layer, "layer_string": strings[li], "answer": self.answers[b],
                              "n_steps": self.n_steps[b]}
                             for b, strings in enumerate(self.layer_strings) for li, layer in enumerate(self.layers)])

    def plot(self, example: int = 0) -> Any:
        """Layer x step grid of one example's top-1 tokens (:func:`interp.translation.plots.trace_figure`)."""
        from interp.translation.plots import trace_figure

        return trace_figure(self, example)

    def __repr__(self) -> str:
        return (f"GenerationTrace({len(self.answers)} prompt(s), layers {self.layers[0]}..{self.layers[-1]} of "
                f"{self.n_layers}, up to {max(self.n_steps, default=0)} steps)")

    def _repr_html_(self) -> str:
        import html

        return f"<b>{html.escape(repr(self))}</b>" + self.to_frame().head(30).to_html(index=False)

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
    truncate: Truncation | None = None,
) -> GenerationTrace:
    """Greedy generation (:func:`interp.core.generation.generate`, KV cache) decoding ``layers`` at every
    step from the residuals recorded at the newest position (one forward per step).

    Args:
        layers: lens indices to inspect (see :func:`interp.lens.decode_layers`); the model's output
            layer is always decoded too.
        stop: strings that end an answer (the text before them is the answer; a stop string inside
            the answer's leading whitespace does not end it).
        step0_target_ids: per-example token ids whose log-probs are recorded at the first step
            (e.g. first tokens of the answer in every language).
        truncate: None refuses a prompt that does not fit the context with ``max_new_tokens`` more.

    Example:
        >>> trace = generate_with_lens(model, ["Word: perro\\nTranslation:"], layers=-4)   # doctest: +SKIP
        >>> trace.answers[0], trace.layer_strings[0]                                    # doctest: +SKIP
    """
    c = Check("generate_with_lens", TranslationConfigError)
    c.integer("k", k, min=1, max=int(model.cfg.d_vocab))
    c.boolean("final_norm", final_norm)
    c.boolean("stop_at_eos", stop_at_eos)
    c.integer("chunk_size", chunk_size, min=1)
    stop = c.strings("stop", stop)
    if step0_target_ids is not None:
        n_prompts = 1 if isinstance(prompts, str) else len(prompts)
        t = step0_target_ids
        if not isinstance(t, Tensor) or t.ndim != 2 or t.shape[0] != n_prompts or t.is_floating_point() or \
                (t.numel() and (int(t.min()) < 0 or int(t.max()) >= int(model.cfg.d_vocab))):
            c.fail("step0_target_ids", t, f"an integer tensor [{n_prompts} prompts, n_targets] of ids in "
                   f"[0, {int(model.cfg.d_vocab)})")
    n_layers = model.cfg.n_layers
    sel = resolve_layers(layers, n_layers)
    if n_layers not in sel:
        sel = sel + [n_layers]
    tuned = resolve_lens(model, lens)
    hooks = [layer_hook_name(i, n_layers) for i in sel]
    all_ids, all_lp = [], []
    step0_lp: list[Tensor] = []

    def on_step(step: int, acts: dict[str, Tensor], alive: Tensor) -> None:
        resid = torch.stack([acts[h] for h in hooks], dim=1)[:, :, None]  # [batch, n_sel, 1, d_model]
        tgt = step0_target_ids.to(resid.device) if (step == 0 and step0_target_ids is not None) else None
        ids, lp, _, tlp = decode_residuals(model, resid, sel, k=k, lens=tuned, final_norm=final_norm,
                                           target_ids=tgt, chunk_size=chunk_size)
        if tlp is not None:
            step0_lp.append(tlp[:, :, 0].cpu())
        all_ids.append(ids[:, :, 0].cpu())
        all_lp.append(lp[:, :, 0].cpu())

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    out = generate(model, prompts, max_new_tokens, stop=tuple(stop), stop_at_eos=stop_at_eos,
                   skip_leading_whitespace=True, record=hooks, on_step=on_step, prepend_bos=prepend_bos,
                   truncate=truncate)
    tok = model.tokenizer
    n_steps = out.answer_lengths.tolist()
    top_ids = torch.stack(all_ids, dim=2)
    top_lp = torch.stack(all_lp, dim=2)
    answers = out.texts()
    layer_strings = []
    for b in range(len(prompts)):  # bookkeeping per prompt and layer, not per vocabulary entry
        rows = top_ids[b, :, : n_steps[b], 0].tolist()
        strings = [tok.decode(r) if tok is not None else "" for r in rows]
        layer_strings.append([cut_at_stop(s, stop, skip_leading_whitespace=True) if stop else s for s in strings])
    return GenerationTrace(top_ids, top_lp, sel, n_layers, n_steps, answers, layer_strings,
                           step0_lp[0] if step0_lp else None, tok)
