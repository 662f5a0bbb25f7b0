"""Tiny models and SAEs built from configs (no downloads) shared by the steering tests."""

from __future__ import annotations

import torch
from sae_lens import StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
from sae_lens.saes.sae import SAEMetadata
from transformer_lens import HookedTransformer, HookedTransformerConfig

D_MODEL = 32


def tiny_llama(seed: int = 0, d_vocab: int = 40) -> HookedTransformer:
    torch.manual_seed(seed)
    cfg = HookedTransformerConfig(
        n_layers=3, d_model=D_MODEL, n_heads=4, d_head=8, n_key_value_heads=2, d_mlp=64, d_vocab=d_vocab,
        n_ctx=64, act_fn="silu", normalization_type="RMS", positional_embedding_type="rotary", rotary_dim=8,
        gated_mlp=True, seed=seed, device="cpu",
    )
    model = HookedTransformer(cfg)
    with torch.no_grad():  # sharper logits so greedy choices are not decided by rounding
        model.W_U.mul_(4.0)
    return model.eval()


def make_sae(hook: str, d_sae: int = 48, *, kind: str = "standard", d_in: int = D_MODEL, seed: int = 0):
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


WORDS = ["the", "cat", "dog", "sat", "ran", "on", "mat", "home", "tom", "sue", "big", "red", "a", "and", "to",
         "was", "saw", "ball", "tree", "sun", "sky", "blue", "hat", "fox", "box", "run", "hop", "yes", "no", "up",
         "down", "in", "out", "old", "new"]


def word_tokenizer():
    """A word-level tokenizer built in code: ids 0-2 are <bos>, <eos>, <pad>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<bos>": 0, "<eos>": 1, "<pad>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>")
    # TransformerLens reloads tokenizers by name, so give it a folder to reload from
    import tempfile

    from transformers import AutoTokenizer

    folder = tempfile.mkdtemp(prefix="steering_tok_")
    fast.save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


def tiny_llama_with_tokenizer(seed: int = 0) -> HookedTransformer:
    model = tiny_llama(seed, d_vocab=len(WORDS) + 3)
    model.set_tokenizer(word_tokenizer(), default_padding_side="left")
    return model


def random_prompts(n: int, seed: int = 0, lo: int = 2, hi: int = 7) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        k = int(torch.randint(lo, hi, (1,), generator=g))
        out.append(" ".join(WORDS[int(i)] for i in torch.randint(0, len(WORDS), (k,), generator=g)))
    return out
