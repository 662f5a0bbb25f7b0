"""The architecture matrix: every method on random-init twins of nine families, on both front-ends.

Families (tests/twins.py): Llama-3.1 (llama3 RoPE scaling), Gemma-2 (final and attention soft-caps,
sliding window, query_pre_attn_scalar), Gemma-3 (QK norm, per-layer RoPE, sliding window), Qwen2 (QKV
biases, tied embeddings), Qwen3 (QK norm, head_dim != d_model / n_heads), Mistral, GPT-2 (LayerNorm,
learned positions), GPT-NeoX (partial rotary, parallel attention), Phi-3 (fused projections). Front-ends:
TransformerBridge (``load_model``'s default) and HookedTransformer. Every check compares against an
independent computation (transformers' own model, a brute-force loop, finite differences), and the
twins are sized so that each family's feature changes the numbers (a check that ignored it would fail).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch

from twins import FAMILIES, SLIDING_WINDOW

FRONTENDS = ("bridge", "hooked")
MATRIX = [pytest.param(f, fe, id=f"{f}-{fe}") for f in FAMILIES for fe in FRONTENDS]
PROMPTS = ["Once upon a time, there was a little girl named Lily. She", "Word: perro\nTranslation:", "47 + 38 ="]
TIMES: dict[tuple[str, str], dict[str, float]] = {}


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


@pytest.fixture(scope="module", autouse=True)
def _imports():
    """Import the stacks before anything is timed (TransformerLens alone takes seconds)."""
    import transformer_lens  # noqa: F401
    import transformer_lens.model_bridge  # noqa: F401
    import transformers  # noqa: F401


def _timed(family: str, frontend: str, check: str, start: float) -> None:
    TIMES.setdefault((family, frontend), {})[check] = time.perf_counter() - start


@pytest.fixture(scope="module")
def hf_models(twin_dir):
    """transformers' own model of each twin (eager attention): the reference."""
    from transformers import AutoModelForCausalLM

    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = AutoModelForCausalLM.from_pretrained(twin_dir(family), attn_implementation="eager").eval()
        return cache[family]

    return get


def _batch(model, prompts=PROMPTS):
    from interp.core.tokens import encode_prompts

    return encode_prompts(model, prompts)  # left-padded with the attention mask: padding is part of every check


def _hf_forward(hf, tokens, mask, **kw):
    pos = (mask.cumsum(1) - 1).clamp_min(0)
    with torch.no_grad():
        return hf(input_ids=tokens, attention_mask=mask, position_ids=pos, **kw)


def _hf_final_norm(hf):
    base = hf.base_model
    for name in ("norm", "ln_f", "final_layer_norm"):
        if hasattr(base, name):
            return getattr(base, name)
    raise AssertionError(f"no final norm found on {type(base).__name__}")


# ----------------------------------------------------------------------------------- load
@pytest.mark.parametrize("family,frontend", MATRIX)
def test_load_matches_transformers(family, frontend, twin_model, hf_models):
    model = twin_model(family, frontend)
    TIMES.setdefault((family, frontend), {})["load"] = twin_model.load_seconds[(family, frontend)]
    start = time.perf_counter()
    tokens, mask = _batch(model)
    ref = _hf_forward(hf_models(family), tokens, mask).logits.log_softmax(-1)
    with torch.no_grad():
        ours = model(tokens, attention_mask=mask).log_softmax(-1)
    real = mask.bool()
    assert (ours - ref)[real].abs().max().item() < 1e-4
    _timed(family, frontend, "logits", start)


# ----------------------------------------------------------------------------------- lens
@pytest.mark.parametrize("family,frontend", MATRIX)
def test_lens_every_layer_matches_transformers_hidden_states(family, frontend, twin_model, hf_models):
    """Lens layer i decodes HF's hidden_states[i] through the final norm, the head and the soft-cap; the
    last layer is HF's own logits."""
    from interp.lens import decode_layers

    start = time.perf_counter()
    model = twin_model(family, frontend)
    hf = hf_models(family)
    tokens, mask = _batch(model)
    res = decode_layers(model, PROMPTS, positions="all", k=5, target_ids=[5, 17])
    out = _hf_forward(hf, tokens, mask, output_hidden_states=True)
    cap = getattr(hf.config, "final_logit_softcapping", None) or 0.0
    n = hf.config.num_hidden_layers
    norm, head = _hf_final_norm(hf), hf.get_output_embeddings()
    width = tokens.shape[1]
    for layer in range(n + 1):
        with torch.no_grad():
            logits = out.logits if layer == n else head(norm(out.hidden_states[layer]))
        if cap and layer < n:
            logits = cap * torch.tanh(logits / cap)
        lp = logits.float().log_softmax(-1)
        for b in range(len(PROMPTS)):
            n_real = int(mask[b].sum())
            ref_lp = lp[b, width - n_real:]  # the lens counts positions from each prompt's first token
            top = ref_lp.topk(5, dim=-1)
            got_ids, got_lp = res.top_ids[b, layer, :n_real], res.top_logprobs[b, layer, :n_real]
            assert torch.equal(got_ids[:, 0], top.indices[:, 0]), (layer, b)
            torch.testing.assert_close(got_lp, top.values, atol=2e-5, rtol=0)
            torch.testing.assert_close(res.target_logprobs[b, layer, :n_real], ref_lp[:, [5, 17]], atol=2e-5, rtol=0)
    _timed(family, frontend, "lens", start)


# ----------------------------------------------------------------------------------- Lorsa
# What each family's feature does to the host pattern when the Lorsa ignores it (measured gap > bound):
# proof that the matching check below would fail if the feature were not mirrored.
SENSITIVITY = {
    "llama3": [(0, dict(rotary_inv_freq=None, rotary_base=500000.0))],  # plain RoPE instead of NTK-by-parts
    "gemma2": [(0, dict(attn_softcap=0.0)), (0, dict(sliding_window=None)),  # no soft-cap; no window
               (1, dict(attn_scale=4.0))],                                # sqrt(head_dim), not query_pre_attn_scalar
    "gemma3": [(1, dict(rotary_inv_freq=None, rotary_base=1e6)),      # global layer without its linear scaling
               (0, dict(rotary_inv_freq=None, rotary_base=1e6)),      # local layer with the global base
               (0, dict(sliding_window=None)), (0, dict(qk_norm=False))],
    "qwen2": [(0, None)],                                             # QKV biases: zeroed
    "qwen3": [(0, dict(qk_norm=False))],                              # no QK norm
    "mistral": [(0, dict(attn_scale=8.0))],                           # wrong score scale
    "gpt2": [(0, None)],                                              # QKV biases: zeroed
    "gpt_neox": [(0, dict(rotary_inv_freq=None, rotary_dim=16))],     # full instead of partial rotary
    "phi3": [(0, dict(rotary_adjacent_pairs=True))],                  # adjacent pairs instead of halves
}


def _lorsa_gap(model, layer, cache, *, changes=None, zero_bias=False):
    from interp.lorsa import Lorsa, LorsaConfig, init_from_host

    cfg = LorsaConfig.from_model(model, layer, expansion=1, top_k=4)
    if changes:
        cfg = dataclasses.replace(cfg, **changes)
    lorsa = init_from_host(Lorsa(cfg), model, layer)
    if zero_bias:
        with torch.no_grad():
            lorsa.b_Q.zero_()
            lorsa.b_K.zero_()
    pattern = lorsa.attention_pattern(cache[cfg.hook_in])
    return (pattern - cache[f"blocks.{layer}.attn.hook_pattern"]).abs().max().item(), cfg


@pytest.mark.parametrize("family,frontend", MATRIX)
def test_lorsa_init_reproduces_host_attention_pattern(family, frontend, twin_model):
    """LorsaConfig.from_model + init_from_host give every host head's exact pattern, on every layer
    (sliding and global layers, every RoPE variant, soft-cap, GQA, biases, QK norm, learned positions)."""
    start = time.perf_counter()
    model = twin_model(family, frontend)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(3, 512, (2, 3 * SLIDING_WINDOW), generator=g)  # longer than the window
    tokens[:, 0] = 0
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
        for layer in range(3):
            gap, cfg = _lorsa_gap(model, layer, cache)
            assert gap < 1e-5, (layer, gap)
            assert cfg.attn_scale > 0
        for layer, changes in SENSITIVITY[family]:
            gap, _ = _lorsa_gap(model, layer, cache, changes=changes, zero_bias=changes is None)
            assert gap > 0.05, f"{family}: ignoring {changes or 'the biases'} moved the pattern by only {gap}"
    if family in ("gemma2", "gemma3"):  # sliding layers 0 and 2, a global layer 1
        assert [_lorsa_config(model, i).sliding_window for i in range(3)] == [SLIDING_WINDOW, None, SLIDING_WINDOW]
    if family == "gemma2":
        assert _lorsa_config(model, 1).attn_softcap == 3.0
    _timed(family, frontend, "lorsa", start)


def _lorsa_config(model, layer):
    from interp.lorsa import LorsaConfig

    return LorsaConfig.from_model(model, layer, expansion=1, top_k=4)


# ----------------------------------------------------------------------------------- steering
def _sae(hook, seed=0, kind="standard", d_sae=48):
    from sae_lens import StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(seed)
    meta = SAEMetadata(hook_name=hook)
    sae = (TopKSAE(TopKSAEConfig(d_in=64, d_sae=d_sae, k=6, metadata=meta)) if kind == "topk"
           else StandardSAE(StandardSAEConfig(d_in=64, d_sae=d_sae, metadata=meta)))
    with torch.no_grad():
        for p in sae.parameters():
            p.normal_(0, 0.3)
        sae.b_enc.fill_(0.05)
    return sae.eval()


@pytest.mark.parametrize("family,frontend", MATRIX)
def test_steering_identical_with_and_without_kv_cache(family, frontend, twin_model):
    from interp.core.generation import generate
    from interp.steering.steer import SteeringVector, steer

    start = time.perf_counter()
    model = twin_model(family, frontend)
    vectors = [SteeringVector.from_sae(_sae("blocks.1.hook_resid_post"), 3, 8.0),
               SteeringVector.from_sae(_sae("blocks.2.hook_resid_pre", 1, "topk"), 7, 8.0)]
    plain = generate(model, PROMPTS, 8, stop_at_eos=False).tokens
    with steer(model, vectors):
        cached = generate(model, PROMPTS, 8, stop_at_eos=False).tokens
    with steer(model, vectors):
        uncached = generate(model, PROMPTS, 8, stop_at_eos=False, use_kv_cache=False).tokens
    assert torch.equal(cached, uncached)
    assert not torch.equal(cached, plain)  # the steering did act
    _timed(family, frontend, "steer", start)


@torch.no_grad()
def _collect_brute_force(model, saes, task, n_new):
    """One sample at a time, no padding, no cache: greedy by argmax of full forwards, then one cached run."""
    from interp.core.tokens import encode_prompts

    eos = model.tokenizer.eos_token_id
    rows, labels, texts = {s.cfg.metadata.hook_name: [] for s in saes}, [], []
    for ex in task.examples:
        toks, _ = encode_prompts(model, [ex.prompt])
        p = toks.shape[1]
        for _ in range(n_new):
            nxt = model(toks)[0, -1].argmax()
            toks = torch.cat([toks, nxt.view(1, 1)], 1)
            if int(nxt) == eos:
                break
        gen = toks[0, p:].tolist()
        n_alive = gen.index(eos) + 1 if eos in gen else len(gen)
        text = model.tokenizer.decode(gen[: n_alive - (eos in gen)], skip_special_tokens=True)
        labels.append(int(task.check(ex, text)))
        texts.append(text)
        _, cache = model.run_with_cache(toks)
        for sae in saes:
            h = sae.cfg.metadata.hook_name
            rows[h].append(sae.encode(cache[h][0, p - 1 : p - 1 + n_alive]).max(0).values)
    return {h: torch.stack(v) for h, v in rows.items()}, np.array(labels), texts


@pytest.mark.parametrize("family,frontend", MATRIX)
def test_collect_equals_per_sample_loop(family, frontend, twin_model):
    """CorrSteer's batched, left-padded, KV-cached collect gives the correlations of a per-sample loop,
    with sae-lens SAEs attached at their own hooks."""
    from interp.core.tasks import CheckedTask, Example
    from interp.steering.collect import collect

    start = time.perf_counter()
    model = twin_model(family, frontend)
    saes = [_sae("blocks.0.hook_resid_post"), _sae("blocks.2.hook_resid_pre", 1, "topk")]
    prompts = ["Once upon a time", "Word: perro\nTranslation:", "47 + 38 =", "The dog ran", "Lily", "A B C D"]
    # labels fixed per example (random-init twins answer nothing right), so both classes occur
    task = CheckedTask("twin", [Example(p, "yes" if i % 2 else "no") for i, p in enumerate(prompts)], max_new_tokens=4,
                       checker=lambda example, text: example.answer == "yes")
    col = collect(model, saes, task, pooling="max", batch_size=4, progress=False)
    feats, labels, texts = _collect_brute_force(model, saes, task, 4)
    assert col.labels.tolist() == labels.tolist() and 0 < labels.mean() < 1
    assert col.generations == texts
    for h, x in feats.items():
        stacked = np.concatenate([x.double().numpy().T, labels[None].astype(float)])
        with np.errstate(invalid="ignore", divide="ignore"):
            ref = np.corrcoef(stacked)[-1, :-1]
        r = col.stats[h].correlation().numpy()
        ok = np.isfinite(ref)
        np.testing.assert_allclose(r[ok], ref[ok], atol=1e-4)
        torch.testing.assert_close(col.top_values[h][0], x.max(0).values.float(), atol=1e-4, rtol=1e-4)
    _timed(family, frontend, "collect", start)


# ----------------------------------------------------------------------------------- THR
@pytest.mark.parametrize("family,frontend", MATRIX)
def test_thr_hidden_states_are_the_heads_input_and_match_finite_differences(family, frontend, twin_model, hf_models):
    from interp.core.frontend import unembed_weights
    from interp.thr import group_advantages, token_hidden_reward
    from interp.thr.policy import Policy

    start = time.perf_counter()
    model = twin_model(family, frontend)
    policy = Policy(model)
    g = torch.Generator().manual_seed(1)
    G, P, T = 4, 3, 5
    ids = torch.cat([torch.randint(3, 512, (1, P), generator=g).expand(G, -1), torch.randint(3, 512, (G, T), generator=g)], 1)
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[1, -2:] = False  # a shorter response: right padding
    with torch.no_grad():
        logits, hidden = policy.forward(ids, mask)
    ref = _hf_forward(hf_models(family), ids, mask.long(), output_hidden_states=True)
    real = mask
    assert (logits - ref.logits)[real].abs().max().item() < 1e-4
    assert (hidden - ref.hidden_states[-1])[real].abs().max().item() < 1e-4  # after the final norm
    W_U, b_U = unembed_weights(model)
    cap = policy.softcap
    assert cap == (getattr(hf_models(family).config, "final_logit_softcapping", None) or 0.0)

    def head(W, h):
        z = h.double() @ W + (b_U.double() if b_U is not None else 0.0)
        return cap * torch.tanh(z / cap) if cap else z

    with torch.no_grad():  # the hidden states are exactly the head's input: head(h) is the model's logits
        assert (head(W_U.double(), hidden).float() - logits)[real].abs().max().item() < 1e-4
    H, L, Y = hidden[:, P - 1 : -1].double(), logits[:, P - 1 : -1].double(), ids[:, P:]
    lengths = mask[:, P:].sum(1).tolist()
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0])
    thr = token_hidden_reward([H[i, :n] for i, n in enumerate(lengths)], [L[i, :n] for i, n in enumerate(lengths)],
                              [Y[i, :n] for i, n in enumerate(lengths)], rewards, vocab="full", softcap=cap)
    adv = group_advantages(rewards)
    W0 = W_U.detach().double().clone()

    def correct_loglik(W):
        lp = head(W, H).log_softmax(-1).gather(-1, Y[..., None])[..., 0]
        return sum(lp[i, :lengths[i]].sum() for i in (0, 2))

    eta = 1e-5
    if cap:  # the soft-cap binds on this twin: THR that ignored it would miss the finite differences
        plain = token_hidden_reward([H[i, :n] for i, n in enumerate(lengths)], [L[i, :n] for i, n in enumerate(lengths)],
                                    [Y[i, :n] for i, n in enumerate(lengths)], rewards, vocab="full")
        rel = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(plain, thr))
        assert rel > 0.05, rel
    for j, k in [(0, 1), (1, 2), (3, 4)]:
        W = W0.clone().requires_grad_(True)
        loss = -adv[j].double() * head(W, H[j, k])[None].log_softmax(-1)[0, Y[j, k]]
        (grad,) = torch.autograd.grad(loss, W)  # one SGD step on the head only, for token (j, k)'s loss
        with torch.no_grad():
            fd = float((correct_loglik(W0 - eta * grad) - correct_loglik(W0 + eta * grad)) / (2 * eta))
        assert float(thr[j][k]) == pytest.approx(fd, rel=1e-4, abs=1e-8), (j, k)
    _timed(family, frontend, "thr", start)


@pytest.mark.parametrize("family,frontend", MATRIX)
def test_policy_gradients_are_finite_with_left_and_right_padding(family, frontend, twin_dir):
    """A GRPO step backpropagates through padded rows: a query that sees no key (left padding) must not
    make the gradient NaN (the bridge's -inf masking would, without the policy's finite mask)."""
    from interp.core.models import load_model
    from interp.thr.policy import Policy

    model = load_model(twin_dir(family), device="cpu", frontend=frontend)  # a private copy: gradients land on it
    ids = torch.randint(3, 512, (3, 9), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[0, :4] = False
    mask[1, -3:] = False
    logits, hidden = Policy(model).forward(ids, mask)
    (logits.log_softmax(-1)[mask].mean() + hidden[mask].pow(2).mean()).backward()
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, bad[:3]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("family,frontend", MATRIX)
def test_rollout_thr_runs(family, frontend, twin_model):
    from interp.core.tasks import Example
    from interp.thr import VerifiableTask, rollout_thr

    start = time.perf_counter()
    model = twin_model(family, frontend)
    items = [Example("47 + 38 =", "85"), Example("Once upon a time", "Lily")]
    task = VerifiableTask("twin", [Example("12 + 3 =", "15")], items, lambda item, text: float(len(text) % 2),
                          max_new_tokens=4)
    res = rollout_thr(model, task, n_prompts=2, group_size=4, temperature=1.0, seed=0)
    assert len(res.thr) == 8 and all(torch.isfinite(t).all() for t in res.thr)
    _timed(family, frontend, "rollout", start)


# ----------------------------------------------------------------------------------- translation probe
@pytest.mark.parametrize("family,frontend", MATRIX)
def test_probe_generation_equals_transformers_greedy_generate(family, frontend, twin_model, hf_models):
    from interp.translation import TranslationProbe
    from interp.translation.generate import generate_with_lens

    start = time.perf_counter()
    model = twin_model(family, frontend)
    prompts = ["Word: perro\nTranslation:", "Word: gato\nTranslation: c", "47 + 38 ="]
    tokens, mask = _batch(model, prompts)
    hf = hf_models(family)
    with torch.no_grad():
        ref = hf.generate(tokens, attention_mask=mask, max_new_tokens=8, do_sample=False, eos_token_id=None,
                          pad_token_id=0)[:, tokens.shape[1]:]
    trace = generate_with_lens(model, prompts, max_new_tokens=8, stop=(), stop_at_eos=False, k=3)
    assert torch.equal(trace.top_ids[:, -1, :, 0], ref)  # the output layer's decode is what HF generates
    report = TranslationProbe(model).run([("es", "en")], n_concepts=2, progress=False)
    assert len(report.rows) == 2
    assert set(report.summary()["pivot_en_share_by_layer"]) == set(report.layers)  # even if no layer reads as a language
    _timed(family, frontend, "probe", start)


# ----------------------------------------------------------------------------------- both front-ends agree
@pytest.mark.parametrize("family", FAMILIES)
def test_both_frontends_give_the_same_numbers(family, twin_model):
    from interp.core.generation import generate
    from interp.lens import decode_layers
    from interp.lorsa import Lorsa, init_from_host

    bridge, hooked = twin_model(family, "bridge"), twin_model(family, "hooked")
    a, b = decode_layers(bridge, PROMPTS, positions="all", k=5), decode_layers(hooked, PROMPTS, positions="all", k=5)
    assert torch.equal(a.top_ids[..., 0], b.top_ids[..., 0])
    torch.testing.assert_close(a.top_logprobs, b.top_logprobs, atol=2e-5, rtol=0)
    assert torch.equal(generate(bridge, PROMPTS, 8).tokens, generate(hooked, PROMPTS, 8).tokens)
    for layer in range(3):
        ca, cb = _lorsa_config(bridge, layer), _lorsa_config(hooked, layer)
        da, db = ca.to_dict(), cb.to_dict()
        fa, fb = da.pop("rotary_inv_freq"), db.pop("rotary_inv_freq")
        assert da.pop("attn_scale") == pytest.approx(db.pop("attn_scale"), rel=1e-12)
        assert da == db
        assert (fa is None) == (fb is None) and (fa is None or np.allclose(fa, fb, rtol=1e-6, atol=0))
        la, lb = init_from_host(Lorsa(ca), bridge, layer), init_from_host(Lorsa(cb), hooked, layer)
        for name, p in la.state_dict().items():
            torch.testing.assert_close(p, lb.state_dict()[name], atol=1e-5, rtol=1e-5)
    # CorrSteer's statistics and THR of seeded rollouts
    from interp.core.tasks import CheckedTask, Example
    from interp.steering.collect import collect
    from interp.thr import VerifiableTask, rollout_thr

    task = CheckedTask("twin", [Example(p, "yes" if i % 2 else "no") for i, p in enumerate(PROMPTS * 2)],
                       max_new_tokens=4, checker=lambda example, text: example.answer == "yes")
    saes = [_sae("blocks.1.hook_resid_post")]
    ra, rb = (collect(m, saes, task, batch_size=4, progress=False) for m in (bridge, hooked))
    assert ra.generations == rb.generations
    torch.testing.assert_close(ra.stats["blocks.1.hook_resid_post"].correlation(),
                               rb.stats["blocks.1.hook_resid_post"].correlation(), atol=1e-4, rtol=0)
    items = [Example("47 + 38 =", "85"), Example("Once upon a time", "Lily")]
    vt = VerifiableTask("twin", [Example("12 + 3 =", "15")], items, lambda item, text: float(len(text) % 2),
                        max_new_tokens=4)
    ta, tb = (rollout_thr(m, vt, n_prompts=2, group_size=4, seed=5) for m in (bridge, hooked))
    assert [t.tolist() for t in ta.tokens] == [t.tolist() for t in tb.tokens]
    for x, y in zip(ta.thr, tb.thr):
        torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-3)


# ----------------------------------------------------------------------------------- refusals
def test_rope_that_changes_with_length_is_refused_clearly(tmp_path):
    """Phi-3-128k's longrope switches frequencies with the sequence length: the lens, probe, steering and
    THR run (they never re-implement RoPE), Lorsa refuses naming the family, the feature and what to do, and
    the HookedTransformer front-end (which would re-implement it) refuses to load it."""
    from interp.core.generation import generate
    from interp.core.models import ModelLoadError, load_model
    from interp.lorsa import LorsaConfig, UnsupportedModelError
    from twins import build_twin

    folder = build_twin("phi3", tmp_path / "phi3_longrope", rope_parameters=dict(
        rope_type="longrope", rope_theta=10000.0, short_factor=[1.0] * 8, long_factor=[4.0] * 8,
        original_max_position_embeddings=64, partial_rotary_factor=1.0))
    model = load_model(folder)
    assert generate(model, PROMPTS, 3).tokens.shape == (3, 3)
    with pytest.raises(UnsupportedModelError, match=r"Phi3ForCausalLM: .*RoPE type 'longrope'.*change with the "
                                                    r"sequence length.*Phi-3-mini-4k"):
        LorsaConfig.from_model(model, 0)
    with pytest.raises(ModelLoadError, match="RoPE type 'longrope' is not built for the HookedTransformer.*frontend='bridge'"):
        load_model(folder, frontend="hooked")


def test_zz_timings():
    """Seconds per family and front-end (loaded shared CPU: read the ratio, not the absolute)."""
    if not TIMES:
        pytest.skip("no matrix test ran in this session")
    checks = sorted({c for t in TIMES.values() for c in t})
    lines = [f"{'family':10s} {'frontend':8s} " + " ".join(f"{c:>8s}" for c in checks) + "    total"]
    for (family, frontend), t in sorted(TIMES.items()):
        lines.append(f"{family:10s} {frontend:8s} " + " ".join(f"{t.get(c, float('nan')):8.2f}" for c in checks)
                     + f" {sum(t.values()):8.2f}")
    print("\n" + "\n".join(lines))
