"""One interface over TransformerLens and Hugging Face causal LMs for GRPO: batched sampling (through
interp's one generation loop, :func:`interp.core.generation.generate`) and a forward pass that
returns the logits together with the unembedding's input (what THR needs).

The unembedding's input is captured with a forward pre-hook on the output layer, so it is exact
for any architecture (after the final norm, including its weight) without knowing hook names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from interp.core.frontend import frontend, input_device, vocab_size
from interp.core.generation import generate
from interp.core.tokens import encode, eos_token_id, pad_token_id, tokenizer_of

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


class Policy:
    """Wraps a ``HookedTransformer`` or a Hugging Face ``*ForCausalLM`` (the model stays the
    user's own: ``policy.model``) with the three operations GRPO needs."""

    def __init__(self, model: nn.Module, tokenizer: Any | None = None):
        self.model = model
        self.kind = frontend(model)
        self.hooked = self.kind == "hooked"
        self.tokenizer = tokenizer_of(model, tokenizer)
        self.unembed: nn.Module = model.unembed if self.hooked else model.get_output_embeddings()
        if self.unembed is None:
            raise ValueError("The model has no output embedding (get_output_embeddings() is None); THR needs one.")
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
        self, input_ids: Int[Tensor, "n S"], attention_mask: Bool[Tensor, "n S"]
    ) -> tuple[Float[Tensor, "n S V"], Float[Tensor, "n S d"]]:
        """Logits and the unembedding's input at every position (padding on either side)."""
        store: dict[str, Tensor] = {}
        handle = self.unembed.register_forward_pre_hook(lambda m, args: store.__setitem__("h", args[0]))
        try:
            mask = attention_mask.long()
            if self.hooked:
                logits = self.model(input_ids, attention_mask=mask)
            else:
                # positions count real tokens only, so left padding does not shift RoPE
                pos = (mask.cumsum(1) - 1).clamp_min(0)
                logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
        finally:
            handle.remove()
        return logits, store["h"]

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
