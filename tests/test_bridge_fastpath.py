"""The bridge fast path equals the TransformerBridge's run_with_cache hook by hook on the nine family twins, and
transformers' own forward; it keeps the eager attention where it must, stops early and restores the bridge."""

from __future__ import annotations

import pytest
import torch
from interp.core.activations import ActivationStream
from interp.core.bridge_fastpath import bridge_activations, bridge_fused_attention, bridge_fused_reason

from twins import FAMILIES

UNFUSABLE = {"gemma2": "attention soft-capping"}
"""Families whose attention the fused call cannot reproduce, and the reason bridge_fused_reason must give."""


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def _tokens(n: int, ctx: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, 500, (n, ctx), generator=g)


def _outside_attention(cache) -> list[str]:
    """Every hook a full run fills except those inside the attention (the fused call does not fire them)."""
    return [h for h in cache.keys() if ".attn." not in h]


def _hf_layers(hf):
    for path in ("model.layers", "transformer.h", "gpt_neox.layers"):
        obj = hf
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            return obj
        except AttributeError:
            continue
    raise AssertionError(f"no decoder layers found in {type(hf).__name__}")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_hook_equals_run_with_cache_and_transformers(family, twin_model, twin_dir):
    model = twin_model(family, "bridge")
    n_layers = model.cfg.n_layers
    reasons = [bridge_fused_reason(model, i) for i in range(n_layers)]
    assert reasons == [UNFUSABLE.get(family)] * n_layers
    tokens = _tokens(5, 24)  # longer than the twins' sliding window (8)
    _, cache = model.run_with_cache(tokens)
    hooks = _outside_attention(cache)
    assert any(h.startswith("unembed.") for h in hooks) and any(h.endswith("hook_attn_out") for h in hooks)
    got = bridge_activations(model, tokens, hooks, batch_size=3)  # two host batches (3 + 2)
    for h in hooks:
        assert got[h].shape == cache[h].shape, h
        assert _rel(got[h], cache[h]) < 1e-5, h

    # Independent check: transformers' own eager model, its last layer's input norm and attention output.
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(twin_dir(family), dtype=torch.float32, attn_implementation="eager").eval()
    layer = _hf_layers(hf)[n_layers - 1]
    norm = getattr(layer, "input_layernorm", None) or layer.ln_1
    attn = getattr(layer, "self_attn", None) or getattr(layer, "attn", None) or layer.attention
    # Gemma's sandwich norms: the bridge's hook_attn_out is after the post-attention norm.
    post = layer.post_attention_layernorm if hasattr(layer, "pre_feedforward_layernorm") else None
    seen = {}
    handles = [norm.register_forward_hook(lambda m, i, o: seen.__setitem__("norm", o)),
               attn.register_forward_hook(lambda m, i, o: seen.__setitem__("attn", o[0]))]
    if post is not None:
        handles.append(post.register_forward_hook(lambda m, i, o: seen.__setitem__("attn", o)))
    try:
        with torch.no_grad():
            hf(tokens)
    finally:
        for hd in handles:
            hd.remove()
    L = n_layers - 1
    assert _rel(got[f"blocks.{L}.ln1.hook_out"], seen["norm"]) < 1e-5  # hook_normalized is before the gain
    assert _rel(got[f"blocks.{L}.hook_attn_out"], seen["attn"]) < 1e-5


def test_the_fused_call_really_runs(twin_model):
    """Guard against a vacuous equality: the fused forward is what ran, and it changes the float rounding."""
    model = twin_model("llama3", "bridge")
    tokens = _tokens(4, 24)
    hooks = ["blocks.2.ln1.hook_normalized", "blocks.2.hook_attn_out"]
    _, cache = model.run_with_cache(tokens, names_filter=hooks)
    with bridge_fused_attention(model) as fused:
        assert fused == [0, 1, 2]
        assert all("forward" in model.blocks[i].attn.__dict__ for i in fused)
        _, inside = model.run_with_cache(tokens, names_filter=hooks)
    assert 0 < _rel(inside["blocks.2.hook_attn_out"], cache["blocks.2.hook_attn_out"]) < 1e-5


def test_requested_attention_internals_keep_the_eager_attention(twin_model):
    model = twin_model("qwen3", "bridge")
    tokens = _tokens(3, 16)
    _, cache = model.run_with_cache(tokens)
    hooks = ["blocks.1.attn.hook_pattern", "blocks.1.attn.hook_rot_q", "blocks.2.hook_attn_out"]
    got = bridge_activations(model, tokens, hooks)
    for h in hooks:
        assert _rel(got[h], cache[h]) < 1e-5, h


def test_a_callers_pattern_hook_keeps_its_layer_unfused(twin_model):
    """A hook already on hook_pattern (here: ablating head 0 of layer 1) must still act on the activations."""
    model = twin_model("llama3", "bridge")
    tokens = _tokens(3, 16)
    name = "blocks.2.hook_attn_out"

    def ablate(pattern, hook):
        pattern[:, 0] = 0.0
        return pattern

    with model.hooks(fwd_hooks=[("blocks.1.attn.hook_pattern", ablate)]):
        _, cache = model.run_with_cache(tokens, names_filter=[name])
        got = bridge_activations(model, tokens, [name])
        assert model.hook_dict["blocks.1.attn.hook_pattern"]._forward_hooks  # the caller's hook survives
    _, clean = model.run_with_cache(tokens, names_filter=[name])
    assert _rel(clean[name], cache[name]) > 1e-3  # the ablation matters
    assert _rel(got[name], cache[name]) < 1e-5


def test_forward_stops_at_the_last_hook_and_bridge_is_restored(twin_model):
    model = twin_model("mistral", "bridge")
    calls = []
    handles = [model.blocks[1].mlp.register_forward_hook(lambda *a: calls.append("mlp1")),
               # the HF attention inside the bridge (the bridge's own forward ends in hook_out, where the run stops)
               model.blocks[1].attn.original_component.register_forward_hook(lambda *a: calls.append("attn1")),
               model.blocks[2].register_forward_hook(lambda *a: calls.append("block2")),
               model.unembed.register_forward_hook(lambda *a: calls.append("unembed"))]
    later = []
    try:
        with model.hooks(fwd_hooks=[("blocks.2.hook_resid_pre", lambda x, hook: later.append(1))]):
            bridge_activations(model, _tokens(2, 8), ["blocks.1.ln1.hook_normalized", "blocks.1.hook_attn_out"])
    finally:
        for h in handles:
            h.remove()
    assert calls == ["attn1"] and not later  # layer 1's attention ran; its MLP, later layers, the unembedding did not
    assert all("forward" not in b.attn.__dict__ for b in model.blocks)
    assert not any(hp._forward_hooks for hp in model.hook_dict.values())
    with pytest.raises(ZeroDivisionError):  # restored after an error inside the fused region too
        with bridge_fused_attention(model):
            assert all("forward" in b.attn.__dict__ for b in model.blocks)
            raise ZeroDivisionError
    assert all("forward" not in b.attn.__dict__ for b in model.blocks)
    with pytest.raises(ZeroDivisionError):  # and after an error raised by the forward itself

        def boom(x, hook):
            raise ZeroDivisionError

        with model.hooks(fwd_hooks=[("blocks.0.hook_resid_pre", boom)]):
            bridge_activations(model, _tokens(2, 8), ["blocks.1.hook_attn_out"])
    assert all("forward" not in b.attn.__dict__ for b in model.blocks)
    assert model.blocks[0].attn.original_component.config._attn_implementation == "eager"


def test_bad_input(twin_model):
    model = twin_model("llama3", "bridge")
    with pytest.raises(KeyError, match="Unknown hook"):
        bridge_activations(model, _tokens(2, 8), ["blocks.9.hook_attn_out"])
    with pytest.raises(ValueError, match=r"\[batch, ctx\]"):
        bridge_activations(model, torch.tensor([1, 2, 3]), ["blocks.0.hook_attn_out"])


def test_stream_fused_equals_unfused_on_a_bridge(twin_model):
    model = twin_model("gpt_neox", "bridge")
    tokens = _tokens(16, 20)
    hooks = ["blocks.2.ln1.hook_normalized", "blocks.2.hook_attn_out"]
    kw = dict(batch_size=4, buffer_sequences=8, seed=2, model_batch_size=3)
    fast_stream = ActivationStream(model, tokens, hooks, **kw)
    assert fast_stream.fused
    fast = list(fast_stream)
    slow = list(ActivationStream(model, tokens, hooks, fused=False, **kw))
    assert len(fast) == len(slow) == 4
    for a, b in zip(fast, slow):
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.mask, b.mask)
        for h in hooks:
            assert _rel(a[h], b[h]) < 1e-5


def test_stories260k_lorsa_hooks(stories_model):
    """The real host (GQA, RoPE, RMS) through load_model's default bridge, at a training-sized context."""
    tokens = _tokens(4, 256)
    hooks = ["blocks.2.ln1.hook_normalized", "blocks.2.hook_attn_out"]
    _, cache = stories_model.run_with_cache(tokens, names_filter=hooks)
    got = bridge_activations(stories_model, tokens, hooks)
    for h in hooks:
        assert _rel(got[h], cache[h]) < 1e-5


@pytest.mark.parametrize("family", ["llama3", "gemma3", "gpt2"])
def test_lens_residuals_on_a_bridge_run_fused_and_equal_run_with_cache(family, twin_model):
    """The tuned lens's training forward (interp.lens.kl) runs a bridge's attention fused, equal to the bridge's
    own run_with_cache; bridge_fused_attention()'s default leaves a layer the caller has hooked unfused."""
    from interp.lens.kl import _residuals_and_final
    from interp.lens.layers import layer_hook_name

    model = twin_model(family, "bridge")
    tokens = _tokens(3, 24)
    n = model.cfg.n_layers
    names = [layer_hook_name(i, n) for i in range(n)]
    logits, cache = model.run_with_cache(tokens, names_filter=names)
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention
    torch.nn.functional.scaled_dot_product_attention = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        resid, final_lp = _residuals_and_final(model, tokens)
    finally:
        torch.nn.functional.scaled_dot_product_attention = real
    assert len(calls) == n  # every layer's attention went through SDPA (the bridge's own is eager)
    want = torch.stack([cache[h] for h in names], dim=2).reshape(-1, n, resid.shape[-1])
    assert _rel(resid, want) < 1e-5
    assert _rel(final_lp, logits.reshape(-1, logits.shape[-1]).float().log_softmax(-1)) < 1e-5
    with model.hooks(fwd_hooks=[("blocks.1.attn.hook_pattern", lambda p, hook: p)]):
        with bridge_fused_attention(model) as fused:
            assert fused == [i for i in range(n) if i != 1]
