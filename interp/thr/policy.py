"""One interface over TransformerLens (TransformerBridge, HookedTransformer) and Hugging Face causal LMs for
GRPO: batched sampling (through interp's one generation loop, :func:`interp.core.generation.generate`) and a
forward pass that returns the logits together with the unembedding's input (what THR needs).

The unembedding's input is captured with a forward pre-hook on the output layer, so it is exact
for any architecture (after the final norm, including its weight) without knowing hook names. The
logits are the model's own, after Gemma-2's final soft-cap when it has one (:attr:`Policy.softcap`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from interp.core.frontend import frontend, hf_model, input_device, n_layers, output_softcap, vocab_size
from interp.core.generation import generate
from interp.core.tokens import encode, eos_token_id, pad_token_id, tokenizer_of
from interp.thr.core import THRInputError

__all__ = ["Policy", "Rollout", "as_policy"]


@dataclass
class Rollout:
    """Sampled sequences: left-padded prompts followed by right-padded responses."""

    input_ids: Int[Tensor, "n S"]
    attention_mask: Bool[Tensor, "n S"]
    prompt_len: int                       # padded prompt width; responses start here
    response_mask: Bool[Tensor, "n R"]    # which response positions were generated

    @property
    def responses(self) -> Int[Tensor, "n R"]:
        return self.input_ids[:, self.prompt_len :]

    def response_list(self) -> list[Tensor]:
        lengths = self.response_mask.sum(1).tolist()
        return [r[:n] for r, n in zip(self.responses, lengths)]


def _finite_mask(scores: Tensor, hook: Any) -> Tensor:
    return scores.clamp_min(torch.finfo(scores.dtype).min)


class Policy:
    """Wraps a ``TransformerBridge``, a ``HookedTransformer`` or a Hugging Face ``*ForCausalLM`` (the model
    stays the user's own: ``policy.model``) with the three operations GRPO needs."""

    def __init__(self, model: nn.Module, tokenizer: Any | None = None):
        self.model = model
        self.kind = frontend(model)
        self.hooked = self.kind == "hooked"
        self.tokenizer = tokenizer_of(model, tokenizer)
        # the module whose input is the head's input: TransformerLens's unembed, or the HF lm_head (inside a
        # bridge, the bridge's wrapper of it, which the HF forward calls)
        self.unembed: nn.Module = model.unembed if self.hooked else hf_model(model).get_output_embeddings()
        if self.unembed is None:
            raise THRInputError("The model has no output embedding (get_output_embeddings() is None); THR needs one.")
        self.softcap: float = output_softcap(model)
        # A bridge in compatibility mode masks scores with -inf, so a left-padding query that sees no key
        # gets a NaN softmax row: zeroed in the forward, but its backward is NaN and one GRPO step turns every
        # weight into NaN (TransformerLens 3.9). Masking with the dtype's minimum instead, as transformers
        # does, leaves every real position's numbers unchanged and keeps the gradients finite.
        self._finite_scores = [(f"blocks.{layer}.attn.hook_attn_scores", _finite_mask)
                               for layer in range(n_layers(model))] if self.kind == "bridge" else []
        """Final logit soft-cap c (Gemma-2; 0: none): logits = c tanh(W h / c), which THR's gradient accounts for."""
        self.eos_id: int | None = eos_token_id(self.tokenizer)
        self.pad_id: int = pad_token_id(self.tokenizer)

    @property
    def device(self) -> torch.device:
        return input_device(self.model)

    @property
    def vocab_size(self) -> int:
        return vocab_size(self.model)

    # -- text -----------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Prompt ids, BOS first (interp's one BOS rule, :func:`interp.core.tokens.encode`)."""
        return encode(self.tokenizer, text, prepend_bos=True)

    def decode(self, ids: Tensor | list[int]) -> str:
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        if self.eos_id is not None and self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def token_strings(self, ids: Tensor | list[int]) -> list[str]:
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        return self.tokenizer.batch_decode([[i] for i in ids])

    # -- model ----------------------------------------------------------------------------
    def forward(
        self, input_ids: Int[Tensor, "n S"], attention_mask: Bool[Tensor, "n S"], *, logits: bool = True
    ) -> tuple[Float[Tensor, "n S V"] | None, Float[Tensor, "n S d"]]:
        """Logits and the unembedding's input at every position (padding on either side). With
        ``logits=False`` the head runs on no position at all and only the input is returned (``None`` for
        the logits): :func:`interp.thr.logprobs.token_logprobs` then applies the head in vocabulary chunks."""
        store: dict[str, Tensor] = {}

        def grab(module: nn.Module, args: tuple) -> tuple | None:
            store["h"] = args[0]
            # an empty slice of positions: the head computes [n, 0, V] instead of [n, S, V]
            return None if logits else (args[0][:, :0], *args[1:])

        handle = self.unembed.register_forward_pre_hook(grab)
        try:
            mask = attention_mask.long()
            if self.kind == "bridge" and torch.is_grad_enabled():
                with self.model.hooks(fwd_hooks=self._finite_scores):
                    out = self.model(input_ids, attention_mask=mask)
            elif self.kind != "hf":  # both TransformerLens front-ends derive positions from the mask
                out = self.model(input_ids, attention_mask=mask)
            else:
                # positions count real tokens only, so left padding does not shift RoPE
                pos = (mask.cumsum(1) - 1).clamp_min(0)
                out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
        finally:
            handle.remove()
        return (out if logits else None), store["h"]

    @torch.no_grad()
    def sample(
        self,
        prompts: list[list[int]],
        *,
        max_new_tokens: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Rollout:
        """Sample one response per prompt (repeat a prompt G times for a group), with a KV cache.
        ``temperature=0`` is greedy. A row stops at EOS, which stays as its last token. ``generator``
        must live on the model's device (:func:`interp.core.generation.make_generator`)."""
        was_training = self.model.training
        self.model.eval()
        try:
            out = generate(self.model, prompts, max_new_tokens, temperature=temperature, generator=generator,
                           tokenizer=self.tokenizer)
        finally:
            self.model.train(was_training)
        return Rollout(out.input_ids, out.attention_mask.bool(), out.prompt.shape[1], out.alive)


def as_policy(model: nn.Module | Policy, tokenizer: Any | None = None) -> Policy:
    """A :class:`Policy` for a TransformerLens or Hugging Face model (returned as is if already one)."""
    return model if isinstance(model, Policy) else Policy(model, tokenizer)
