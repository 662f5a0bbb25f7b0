"""One interface over TransformerLens and Hugging Face causal LMs for GRPO: batched sampling and
a forward pass that returns the logits together with the unembedding's input (what THR needs).

The unembedding's input is captured with a forward pre-hook on the output layer, so it is exact
for any architecture (after the final norm, including its weight) without knowing hook names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

__all__ = ["Policy", "Rollout", "as_policy"]


def _is_hooked(model: nn.Module) -> bool:
    from transformer_lens import HookedTransformer

    return isinstance(model, HookedTransformer)


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
        self.hooked = _is_hooked(model)
        self.tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
        if self.tokenizer is None:
            raise ValueError(
                "The model carries no tokenizer: pass tokenizer=AutoTokenizer.from_pretrained(...) "
                "(Hugging Face models keep it separately)."
            )
        self.unembed: nn.Module = model.unembed if self.hooked else model.get_output_embeddings()
        if self.unembed is None:
            raise ValueError("The model has no output embedding (get_output_embeddings() is None); THR needs one.")
        tok = self.tokenizer
        self.eos_id: int | None = tok.eos_token_id
        self.pad_id: int = tok.pad_token_id if tok.pad_token_id is not None else (self.eos_id or 0)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def vocab_size(self) -> int:
        return self.model.cfg.d_vocab if self.hooked else self.model.config.vocab_size

    # -- text -----------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        ids = list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        bos = self.tokenizer.bos_token_id
        if bos is not None and (not ids or ids[0] != bos):
            ids = [bos] + ids
        return ids

    def decode(self, ids: Tensor | list[int]) -> str:
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        if self.eos_id is not None and self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def token_strings(self, ids: Tensor | list[int]) -> list[str]:
        ids = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        return [self.tokenizer.decode([i]) for i in ids]

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

    def pad_prompts(self, prompts: list[list[int]]) -> tuple[Tensor, Tensor]:
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(prompts), width, dtype=torch.bool)
        for i, p in enumerate(prompts):
            ids[i, width - len(p) :] = torch.tensor(p)
            mask[i, width - len(p) :] = True
        return ids.to(self.device), mask.to(self.device)

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
        ``temperature=0`` is greedy. A row stops at EOS, which stays as its last token."""
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy); got {temperature}.")
        was_training = self.model.training
        self.model.eval()
        ids, mask = self.pad_prompts(prompts)
        P, n = ids.shape[1], ids.shape[0]
        done = torch.zeros(n, dtype=torch.bool, device=ids.device)
        new_ids: list[Tensor] = []
        alive: list[Tensor] = []
        step = _Stepper(self, ids, mask)
        last = step.first()
        try:
            for _ in range(max_new_tokens):
                if temperature == 0:
                    nxt = last.argmax(-1)
                else:
                    probs = torch.softmax(last.float() / temperature, -1)
                    nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                nxt = torch.where(done, torch.full_like(nxt, self.pad_id), nxt)
                new_ids.append(nxt)
                alive.append(~done)
                if self.eos_id is not None:
                    done = done | (nxt == self.eos_id)
                if done.all() or len(new_ids) == max_new_tokens:
                    break
                last = step.next(nxt)
        finally:
            self.model.train(was_training)
        resp = torch.stack(new_ids, 1) if new_ids else ids.new_zeros(n, 0)
        resp_mask = torch.stack(alive, 1) if alive else mask.new_zeros(n, 0)
        return Rollout(torch.cat([ids, resp], 1), torch.cat([mask, resp_mask], 1), P, resp_mask)


class _Stepper:
    """Incremental decoding with each library's own KV cache (left padding handled by masks)."""

    def __init__(self, policy: Policy, ids: Tensor, mask: Tensor):
        self.p, self.ids, self.mask = policy, ids, mask.long()
        self.cache: Any = None

    def first(self) -> Tensor:
        model = self.p.model
        if self.p.hooked:
            from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

            self.cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, self.ids.shape[0])
            logits = model(self.ids, attention_mask=self.mask, past_kv_cache=self.cache)
        else:
            pos = (self.mask.cumsum(1) - 1).clamp_min(0)
            out = model(input_ids=self.ids, attention_mask=self.mask, position_ids=pos, use_cache=True)
            self.cache, logits = out.past_key_values, out.logits
        return logits[:, -1]

    def next(self, tok: Tensor) -> Tensor:
        model = self.p.model
        one = torch.ones_like(tok)[:, None]
        self.mask = torch.cat([self.mask, one], 1)
        if self.p.hooked:
            logits = model(tok[:, None], attention_mask=one, past_kv_cache=self.cache)
        else:
            pos = (self.mask.sum(1, keepdim=True) - 1)
            out = model(input_ids=tok[:, None], attention_mask=self.mask, position_ids=pos,
                        past_key_values=self.cache, use_cache=True)
            self.cache, logits = out.past_key_values, out.logits
        return logits[:, -1]


def as_policy(model: nn.Module | Policy, tokenizer: Any | None = None) -> Policy:
    """A :class:`Policy` for a TransformerLens or Hugging Face model (returned as is if already one)."""
    return model if isinstance(model, Policy) else Policy(model, tokenizer)
