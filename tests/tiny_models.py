"""Tiny seeded models, tokenizers, token batches and SAEs for the tests, built from configs (no downloads).

Every builder is deterministic: the same arguments give the same weights, so a test that builds its
own copy (to mutate it) and a test that borrows a session fixture from ``conftest.py`` see the same
model. Shapes are the few the tests need:

- :func:`hooked`: a HookedTransformer from keyword overrides of a small GPT-2-style config;
- :func:`lens_model`: the 3-layer, d_model 32 shape the lens tests decode;
- :func:`rotary_model`: a 2-layer RMS + rotary model (the Lorsa tests' host);
- :func:`tiny_llama`: a 3-layer Llama (GQA, gated SiLU MLP, RoPE) with sharpened logits;
- :func:`word_tokenizer` / :func:`tiny_llama_with_tokenizer` / :func:`hf_llama_with_tokenizer` /
  :func:`gpt2_with_tokenizer` / :func:`hf_gpt2_with_tokenizer`: a word-level tokenizer (ids 0-2 are
  <bos>, <eos>, <pad>) and models that speak it, with rotary or learned absolute positions, as
  HookedTransformers and as plain Hugging Face causal LMs;
- :func:`bos_tokens`, :func:`random_prompts`: inputs; :func:`make_sae`: sae-lens SAEs.

>>> model = hooked(n_layers=3, d_vocab=40)
>>> model.cfg.d_model
16
"""

from __future__ import annotations

import functools
import tempfile
from typing import Any

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

D_MODEL = 32  # tiny_llama's width (the steering tests' SAEs read it)

SMALL = dict(n_layers=2, d_model=16, n_heads=2, d_head=8, n_ctx=32, d_vocab=40, act_fn="gelu",
             normalization_type="LN", device="cpu")


def hooked(seed: int = 0, *, unembed_scale: float = 1.0, **overrides: Any) -> HookedTransformer:
    """A HookedTransformer in eval mode: ``SMALL`` updated with ``overrides``, weights from ``seed``.
    ``unembed_scale`` multiplies W_U (sharper logits, so greedy choices are not decided by rounding)."""
    cfg = HookedTransformerConfig(**{**SMALL, **overrides, "seed": seed})
    model = HookedTransformer(cfg)
    if unembed_scale != 1.0:
        with torch.no_grad():
            model.W_U.mul_(unembed_scale)
    return model.eval()


def lens_model(seed: int = 0, *, vocab: int = 97, norm: str | None = "LN", softcap: float = 0.0) -> HookedTransformer:
    """3 layers, d_model 32, 4 heads, d_mlp 64 (the lens tests' model)."""
    return hooked(seed, n_layers=3, d_model=32, n_ctx=32, d_head=8, n_heads=4, d_mlp=64, d_vocab=vocab,
                  normalization_type=norm, output_logits_soft_cap=softcap)


def rotary_model(seed: int = 0, *, n_ctx: int = 32, d_vocab: int = 48) -> HookedTransformer:
    """2 layers, d_model 16, RMS norm and rotary positions (rotary_dim 8): a Lorsa host."""
    return hooked(seed, n_ctx=n_ctx, d_vocab=d_vocab, normalization_type="RMS", positional_embedding_type="rotary",
                  rotary_dim=8)


def tiny_llama(seed: int = 0, d_vocab: int = 40) -> HookedTransformer:
    """A 3-layer Llama-shaped HookedTransformer (GQA, gated SiLU MLP, RMS, RoPE), W_U sharpened x4."""
    torch.manual_seed(seed)
    return hooked(seed, unembed_scale=4.0, n_layers=3, d_model=D_MODEL, n_heads=4, d_head=8, n_key_value_heads=2,
                  d_mlp=64, d_vocab=d_vocab, n_ctx=64, act_fn="silu", normalization_type="RMS",
                  positional_embedding_type="rotary", rotary_dim=8, gated_mlp=True)


def bos_tokens(n: int, ctx: int, vocab: int, *, seed: int = 0, bos: int = 1, low: int = 2) -> torch.Tensor:
    """``[n, ctx]`` random ids in ``[low, vocab)`` with ``bos`` first in every row."""
    t = torch.randint(low, vocab, (n, ctx), generator=torch.Generator().manual_seed(seed))
    t[:, 0] = bos
    return t


# ----------------------------------------------------------------------------------- word tokenizer
WORDS = ["the", "cat", "dog", "sat", "ran", "on", "mat", "home", "tom", "sue", "big", "red", "a", "and", "to",
         "was", "saw", "ball", "tree", "sun", "sky", "blue", "hat", "fox", "box", "run", "hop", "yes", "no", "up",
         "down", "in", "out", "old", "new"]
BOS, EOS, PAD = 0, 1, 2


@functools.lru_cache(maxsize=None)
def _word_tokenizer_folder() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<bos>": BOS, "<eos>": EOS, "<pad>": PAD, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    # TransformerLens reloads tokenizers by name, so give it a folder to reload from (one per session)
    folder = tempfile.mkdtemp(prefix="interp_word_tok_")
    fast.save_pretrained(folder)
    return folder


def word_tokenizer():
    """A fresh word-level tokenizer (ids 0-2 are <bos>, <eos>, <pad>; the words of ``WORDS`` follow)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_word_tokenizer_folder())


def tiny_llama_with_tokenizer(seed: int = 0) -> HookedTransformer:
    """:func:`tiny_llama` over the word vocabulary, with the word tokenizer (left padding)."""
    model = tiny_llama(seed, d_vocab=len(WORDS) + 3)
    model.set_tokenizer(word_tokenizer(), default_padding_side="left")
    return model


def hf_llama_with_tokenizer(seed: int = 0):
    """A plain Hugging Face ``LlamaForCausalLM`` (2 layers, d_model 32, GQA, RoPE) over the word
    vocabulary, with the word tokenizer attached as ``model.tokenizer``; lm_head sharpened x4."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(WORDS) + 3, hidden_size=D_MODEL, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(4.0)
    model.tokenizer = word_tokenizer()
    return model


def gpt2_with_tokenizer(seed: int = 0) -> HookedTransformer:
    """A 2-layer GPT-2-shaped HookedTransformer (learned absolute positions, LayerNorm) over the word
    vocabulary, with the word tokenizer (left padding): positions must follow the mask, or padding shows."""
    model = hooked(seed, unembed_scale=4.0, d_model=D_MODEL, n_heads=4, d_vocab=len(WORDS) + 3, n_ctx=64)
    model.set_tokenizer(word_tokenizer(), default_padding_side="left")
    return model


def hf_gpt2_with_tokenizer(seed: int = 0):
    """A plain Hugging Face ``GPT2LMHeadModel`` (2 layers, learned absolute positions) over the word
    vocabulary, with the word tokenizer attached as ``model.tokenizer``; untied lm_head sharpened x4."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(WORDS) + 3, n_embd=D_MODEL, n_layer=2, n_head=4, n_positions=64,
                        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, tie_word_embeddings=False)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(4.0)
    model.tokenizer = word_tokenizer()
    return model


def random_prompts(n: int, seed: int = 0, lo: int = 2, hi: int = 7) -> list[str]:
    """``n`` prompts of ``lo`` to ``hi - 1`` random words of ``WORDS``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        k = int(torch.randint(lo, hi, (1,), generator=g))
        out.append(" ".join(WORDS[int(i)] for i in torch.randint(0, len(WORDS), (k,), generator=g)))
    return out


# ----------------------------------------------------------------------------------- SAEs
def make_sae(hook: str, d_sae: int = 48, *, kind: str = "standard", d_in: int = D_MODEL, seed: int = 0):
    """A random sae-lens SAE at ``hook`` (``kind`` "standard" or "topk" with k=6)."""
    from sae_lens import StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(seed)
    meta = SAEMetadata(hook_name=hook)
    if kind == "topk":
        sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=6, metadata=meta))
    else:
        sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, metadata=meta))
    with torch.no_grad():
        for p in sae.parameters():
            p.normal_(0, 0.3)
        sae.b_enc.fill_(0.05)
    return sae.eval()
