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
