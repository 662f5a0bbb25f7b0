"""Big-model loading through the bridge: device maps, bf16, 8/4-bit.

This machine has no GPU, so a split over devices is exercised with every "device" being the CPU:
``load_model(device_map={per-layer map})`` goes through transformers' device-map loading, and a model
dispatched by accelerate with ``force_hooks=True`` carries an ``AlignDevicesHook`` on every module, as a
real multi-GPU split does; every method then runs on it and gives the numbers of the undispatched model.
What this proves: the loading path, the bridge accepting an ``hf_device_map``, and the methods running
under accelerate's hooks. What it cannot prove: that tensors crossing from one GPU to another are moved
(all of them are on the CPU here); the code moves layer activations to the head's device (lens, probe,
tuned lens), builds a Lorsa on its layer's device and steering vectors on each hook's device, and the GPU
check (``make gpu-check``) runs on one real CUDA device.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from interp.core import frontend as fe
from interp.core.models import ModelLoadError, from_hf, load_model

PROMPTS = ["Once upon a time, there was a little girl named Lily. She", "Word: perro\nTranslation:"]


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


def _layer_map(family: str) -> dict[str, str]:
    if family == "gpt2":
        return {"transformer.wte": "cpu", "transformer.wpe": "cpu", "transformer.ln_f": "cpu", "lm_head": "cpu",
                **{f"transformer.h.{i}": "cpu" for i in range(3)}}
    return {"model.embed_tokens": "cpu", "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu",
            **{f"model.layers.{i}": "cpu" for i in range(3)}}


@pytest.mark.parametrize("device_map", ["layers", "auto"])
def test_device_map_loads_through_the_bridge(twin_dir, twin_model, device_map):
    folder = twin_dir("llama3")
    model = load_model(folder, device_map=_layer_map("llama3") if device_map == "layers" else "auto")
    assert fe.frontend(model) == "bridge" and fe.input_device(model).type == "cpu"
    plain = twin_model("llama3", "bridge")
    toks = torch.randint(3, 512, (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(toks), plain(toks))


def _dispatched(twin_dir, family):
    import accelerate
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = twin_dir(family)
    hf = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager")
    hf = accelerate.dispatch_model(hf, device_map=_layer_map(family), force_hooks=True)
    n_hooks = sum(hasattr(m, "_hf_hook") for m in hf.modules())
    assert n_hooks >= 10 and hf.hf_device_map  # accelerate's hooks wrap every mapped module
    return from_hf(hf, AutoTokenizer.from_pretrained(folder))


@pytest.mark.parametrize("family", ["llama3", "gpt2"])
def test_every_method_runs_on_a_dispatched_model_with_the_same_numbers(family, twin_dir, twin_model):
    from interp.core.generation import generate
    from interp.core.tasks import CheckedTask, Example
    from interp.lens import decode_layers
    from interp.lorsa import Lorsa, LorsaConfig, evaluate_lorsa, init_from_host
    from interp.steering.collect import collect
    from interp.steering.steer import SteeringVector, steer
    from interp.thr import VerifiableTask, rollout_thr
    from interp.translation import TranslationProbe
    from test_architectures import _sae

    split, plain = _dispatched(twin_dir, family), twin_model(family, "bridge")
    for model in (split, plain):
        assert fe.frontend(model) == "bridge"
    a, b = decode_layers(split, PROMPTS, positions="all", k=5), decode_layers(plain, PROMPTS, positions="all", k=5)
    assert torch.equal(a.top_ids, b.top_ids) and torch.equal(a.top_logprobs, b.top_logprobs)
    assert torch.equal(generate(split, PROMPTS, 8).tokens, generate(plain, PROMPTS, 8).tokens)

    toks = torch.randint(3, 512, (2, 24), generator=torch.Generator().manual_seed(0))
    toks[:, 0] = 0
    evs = []
    for model in (split, plain):
        with torch.no_grad():
            _, cache = model.run_with_cache(toks)
        cfg = LorsaConfig.from_model(model, 1, expansion=1, top_k=4)
        lorsa = init_from_host(Lorsa(cfg), model, 1)
        assert (lorsa.attention_pattern(cache[cfg.hook_in]) - cache["blocks.1.attn.hook_pattern"]).abs().max() < 1e-5
        evs.append(evaluate_lorsa(model, lorsa, toks, progress=False))
    assert evs[0].explained_variance == evs[1].explained_variance and evs[0].spliced_loss == evs[1].spliced_loss

    vec = [SteeringVector.from_sae(_sae("blocks.1.hook_resid_post"), 3, 8.0)]
    with steer(split, vec):
        cached = generate(split, PROMPTS, 6, stop_at_eos=False).tokens
    with steer(split, vec):
        uncached = generate(split, PROMPTS, 6, stop_at_eos=False, use_kv_cache=False).tokens
    with steer(plain, vec):
        ref = generate(plain, PROMPTS, 6, stop_at_eos=False).tokens
    assert torch.equal(cached, uncached) and torch.equal(cached, ref)

    task = CheckedTask("twin", [Example(p, "yes" if i % 2 else "no") for i, p in enumerate(PROMPTS * 2)],
                       max_new_tokens=3, checker=lambda e, t: e.answer == "yes")
    saes = [_sae("blocks.0.hook_resid_post")]
    ca, cb = (collect(m, saes, task, batch_size=3, progress=False) for m in (split, plain))
    assert torch.equal(ca.stats["blocks.0.hook_resid_post"].correlation(), cb.stats["blocks.0.hook_resid_post"].correlation())

    items = [Example("47 + 38 =", "85"), Example("Once upon a time", "Lily")]
    vt = VerifiableTask("twin", [Example("1 + 1 =", "2")], items, lambda it, t: float(len(t) % 2), max_new_tokens=4)
    ta, tb = (rollout_thr(m, vt, n_prompts=2, group_size=4, seed=3) for m in (split, plain))
    for x, y in zip(ta.thr, tb.thr):
        assert torch.equal(x, y)
    ra, rb = (TranslationProbe(m).run([("es", "en")], n_concepts=2, progress=False) for m in (split, plain))
    assert [r["layer_strings"] for r in ra.rows] == [r["layer_strings"] for r in rb.rows]


def test_bfloat16_through_the_bridge(twin_dir, twin_model):
    """bf16 weights and activations: logits within bf16 rounding of float32, every method runs."""
    from interp.core.generation import generate
    from interp.lens import decode_layers
    from interp.lorsa import Lorsa, LorsaConfig, evaluate_lorsa, init_from_host
    from interp.thr import VerifiableTask, rollout_thr
    from interp.core.tasks import Example

    model = load_model(twin_dir("gemma2"), dtype="bfloat16")
    fp32 = twin_model("gemma2", "bridge")
    assert fe.model_dtype(model) == torch.bfloat16 and fe.unembed_weights(model)[0].dtype == torch.bfloat16
    toks = torch.randint(3, 512, (2, 24), generator=torch.Generator().manual_seed(0))
    toks[:, 0] = 0
    with torch.no_grad():
        gap = (model(toks).float().log_softmax(-1) - fp32(toks).log_softmax(-1)).abs().max().item()
        _, cache = model.run_with_cache(toks)
    assert 0 < gap < 0.1  # bf16 rounding (8 bits of mantissa), not a different model
    res = decode_layers(model, PROMPTS, k=3)
    assert res.top_logprobs.dtype == torch.float32 and torch.isfinite(res.top_logprobs).all()
    assert generate(model, PROMPTS, 5).tokens.shape == (2, 5)
    cfg = LorsaConfig.from_model(model, 0, expansion=1, top_k=4)
    lorsa = init_from_host(Lorsa(cfg), model, 0)
    x = cache[cfg.hook_in]  # the bridge computes norms (and this hook) in float32
    assert (lorsa.attention_pattern(x.float()) - cache["blocks.0.attn.hook_pattern"].float()).abs().max() < 0.05
    ev = evaluate_lorsa(model, lorsa, toks, progress=False)
    assert torch.isfinite(torch.tensor([ev.explained_variance, ev.spliced_loss])).all()
    items = [Example("47 + 38 =", "85"), Example("Once upon a time", "Lily")]
    vt = VerifiableTask("twin", [Example("1 + 1 =", "2")], items, lambda it, t: float(len(t) % 2), max_new_tokens=4)
    assert all(torch.isfinite(t).all() for t in rollout_thr(model, vt, n_prompts=2, group_size=4).thr)


HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


@pytest.mark.skipif(not (HAS_BNB and torch.cuda.is_available()),
                    reason="8/4-bit loading needs bitsandbytes and a CUDA GPU; neither is on this machine")
@pytest.mark.parametrize("bits", ["8bit", "4bit"])
def test_quantized_bridge_runs_the_lens_and_generation(twin_dir, bits):  # pragma: no cover - needs a GPU
    from interp.core.generation import generate
    from interp.lens import decode_layers

    model = load_model(twin_dir("llama3"), quantization=bits)
    assert fe.frontend(model) == "bridge"
    assert torch.isfinite(decode_layers(model, PROMPTS, k=3).top_logprobs).all()
    assert generate(model, PROMPTS, 4).tokens.shape == (2, 4)


@pytest.mark.skipif(HAS_BNB, reason="bitsandbytes is installed here: the missing-package message cannot be shown")
def test_quantization_without_bitsandbytes_says_what_to_do(twin_dir):
    with pytest.raises(ModelLoadError, match="quantization='8bit' needs the bitsandbytes package.*bfloat16"):
        load_model(twin_dir("llama3"), quantization="8bit")
