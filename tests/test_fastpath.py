"""The fast activation path equals TransformerLens's run_with_cache, hook by hook, and stops early."""

from __future__ import annotations

import pytest
import torch
from interp.core.activations import ActivationStream
from interp.core.fastpath import fused_attention, fused_reason, host_activations

from tiny_models import bos_tokens, hooked, lens_model, rotary_model, tiny_llama

def _all_hooks(cache) -> list[str]:
    """Every hook a full run_with_cache fills, except the pattern-sized ones (asked for separately below)."""
    return [h for h in cache.keys() if not h.endswith(("hook_attn_scores", "hook_pattern"))]



def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@pytest.mark.parametrize("build", [tiny_llama, rotary_model, lens_model,
                                   lambda: hooked(3, n_layers=3, attn_only=True, d_vocab=40)],
                         ids=["llama-gqa", "rotary", "gpt2-ln", "attn-only"])
def test_every_hook_equals_run_with_cache(build):
    model = build()
    assert all(fused_reason(model, i) is None for i in range(model.cfg.n_layers))
    tokens = bos_tokens(6, 24, vocab=model.cfg.d_vocab)
    _, cache = model.run_with_cache(tokens)
    hooks = _all_hooks(cache)
    assert any(h.startswith("unembed.") for h in hooks) and any(h.endswith("hook_attn_out") for h in hooks)
    got = host_activations(model, tokens, hooks, batch_size=4)  # two host batches (4 + 2)
    for h in hooks:
        assert got[h].shape == cache[h].shape, h
        assert _rel(got[h], cache[h]) < 1e-5, h


def test_pattern_hooks_keep_transformer_lens_attention():
    model = tiny_llama()
    tokens = bos_tokens(3, 16, vocab=40)
    _, cache = model.run_with_cache(tokens)
    hooks = ["blocks.1.attn.hook_pattern", "blocks.2.hook_attn_out"]
    got = host_activations(model, tokens, hooks)
    # Layer 0 ran fused, so layer 1's input (and pattern) differs from the cache only by rounding.
    assert _rel(got["blocks.1.attn.hook_pattern"], cache["blocks.1.attn.hook_pattern"]) < 1e-5
    assert _rel(got["blocks.2.hook_attn_out"], cache["blocks.2.hook_attn_out"]) < 1e-5


def test_a_callers_pattern_hook_keeps_its_layer_unfused():
    """A hook already on hook_pattern (here: ablating head 0 of layer 1) must still act on the activations."""
    model = tiny_llama()
    tokens = bos_tokens(3, 16, vocab=40)

    def ablate(pattern, hook):
        pattern[:, 0] = 0.0
        return pattern

    model.add_hook("blocks.1.attn.hook_pattern", ablate)
    try:
        _, cache = model.run_with_cache(tokens, names_filter=["blocks.2.hook_attn_out"])
        got = host_activations(model, tokens, ["blocks.2.hook_attn_out"])
        assert len(model.hook_dict["blocks.1.attn.hook_pattern"].fwd_hooks) == 1  # the caller's hook survives
    finally:
        model.reset_hooks()
    _, clean = model.run_with_cache(tokens, names_filter=["blocks.2.hook_attn_out"])
    assert _rel(clean["blocks.2.hook_attn_out"], cache["blocks.2.hook_attn_out"]) > 1e-3  # the ablation matters
    assert _rel(got["blocks.2.hook_attn_out"], cache["blocks.2.hook_attn_out"]) < 1e-5


def test_forward_stops_at_the_last_hook_and_host_is_restored():
    model = tiny_llama()
    calls = []
    handles = [model.blocks[1].mlp.register_forward_hook(lambda *a: calls.append("mlp1")),
               model.blocks[1].attn.register_forward_hook(lambda *a: calls.append("attn1")),
               model.unembed.register_forward_hook(lambda *a: calls.append("unembed"))]
    try:
        host_activations(model, bos_tokens(2, 8, vocab=40), ["blocks.1.ln1.hook_normalized", "blocks.1.hook_attn_out"])
    finally:
        for h in handles:
            h.remove()
    assert calls == ["attn1"]  # layer 1's attention ran; its MLP, later layers and the unembedding did not
    assert all("forward" not in b.attn.__dict__ for b in model.blocks)
    assert not any(hp.fwd_hooks for hp in model.hook_dict.values())
    with pytest.raises(ZeroDivisionError):  # restored after an error inside the fused region too
        with fused_attention(model):
            assert all("forward" in b.attn.__dict__ for b in model.blocks)
            raise ZeroDivisionError
    assert all("forward" not in b.attn.__dict__ for b in model.blocks)


def test_unsupported_attention_is_named_and_falls_back():
    model = hooked(0, attn_scores_soft_cap=5.0)
    assert fused_reason(model, 0) == "attention soft-capping"
    tokens = bos_tokens(2, 10, vocab=40)
    _, cache = model.run_with_cache(tokens)
    got = host_activations(model, tokens, ["blocks.1.hook_attn_out"])
    assert torch.equal(got["blocks.1.hook_attn_out"], cache["blocks.1.hook_attn_out"])


def test_bad_input():
    model = rotary_model()
    with pytest.raises(TypeError, match="HookedTransformer"):
        host_activations(torch.nn.Linear(2, 2), bos_tokens(2, 8, vocab=48), ["blocks.0.hook_attn_out"])
    with pytest.raises(RuntimeError, match="never reached"):
        host_activations(model, bos_tokens(2, 8, vocab=48), ["blocks.0.attn.hook_result"])
    with pytest.raises(KeyError, match="Unknown hook"):
        host_activations(model, bos_tokens(2, 8, vocab=48), ["blocks.9.hook_attn_out"])
    with pytest.raises(ValueError, match=r"\[batch, ctx\]"):
        host_activations(model, torch.tensor([1, 2, 3]), ["blocks.0.hook_attn_out"])


def test_stream_fused_equals_unfused():
    model = tiny_llama()
    tokens = bos_tokens(16, 20, vocab=40)
    hooks = ["blocks.2.ln1.hook_normalized", "blocks.2.hook_attn_out"]
    kw = dict(batch_size=4, buffer_sequences=8, seed=2, model_batch_size=3)
    fast = list(ActivationStream(model, tokens, hooks, **kw))
    slow = list(ActivationStream(model, tokens, hooks, fused=False, **kw))
    assert len(fast) == len(slow) == 4
    for a, b in zip(fast, slow):
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.mask, b.mask)
        for h in hooks:
            assert _rel(a[h], b[h]) < 1e-5


def test_stories260k_lorsa_hooks(stories_dir):
    """The real host (GQA, RoPE, RMS): Lorsa's layer-2 hooks at a training-sized context (the fast path runs a
    HookedTransformer's own modules; the shared fixture is a bridge)."""
    from interp import load_model

    stories_model = load_model(stories_dir, device="cpu", frontend="hooked")
    tokens = bos_tokens(4, 256, vocab=stories_model.cfg.d_vocab)
    hooks = ["blocks.2.ln1.hook_normalized", "blocks.2.hook_attn_out"]
    _, cache = stories_model.run_with_cache(tokens, names_filter=hooks)
    got = host_activations(stories_model, tokens, hooks)
    for h in hooks:
        assert _rel(got[h], cache[h]) < 1e-5


def test_lens_residuals_run_fused_and_equal_run_with_cache():
    """The tuned lens's training forward (interp.lens.kl) runs every attention fused, equal to TransformerLens's
    own run_with_cache; fused_attention()'s default leaves a layer the caller has hooked unfused."""
    from interp.lens.kl import _residuals_and_final

    model = tiny_llama()
    tokens = bos_tokens(3, 16, vocab=40)
    n = model.cfg.n_layers
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{i}.hook_resid_pre" for i in range(1, n)]
    logits, cache = model.run_with_cache(tokens, names_filter=names)
    fused_calls = []
    real = torch.nn.functional.scaled_dot_product_attention
    torch.nn.functional.scaled_dot_product_attention = lambda *a, **k: fused_calls.append(1) or real(*a, **k)
    try:
        resid, final_lp = _residuals_and_final(model, tokens)
    finally:
        torch.nn.functional.scaled_dot_product_attention = real
    assert len(fused_calls) == n  # every layer's attention went through the fused call
    want = torch.stack([cache[h] for h in names], dim=2).reshape(-1, n, model.cfg.d_model)
    assert _rel(resid, want) < 1e-5
    assert _rel(final_lp, logits.reshape(-1, logits.shape[-1]).log_softmax(-1)) < 1e-5

    model.add_hook("blocks.1.attn.hook_pattern", lambda p, hook: p)
    try:
        with fused_attention(model) as fused:
            assert fused == [i for i in range(n) if i != 1]
    finally:
        model.reset_hooks()
