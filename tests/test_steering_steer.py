"""steer(): generated positions only, identical with and without KV cache, hooks and widths checked."""

from __future__ import annotations

import pytest
import torch

from interp.steering.saes import HookError, resolve_saes
from interp.steering.steer import SteeringVector, steer

from tiny_models import D_MODEL, make_sae, tiny_llama


@pytest.fixture(scope="module")
def model():
    return tiny_llama()


def _prompts(batch=3, length=6, seed=1):
    return torch.randint(1, 40, (batch, length), generator=torch.Generator().manual_seed(seed))


def _vectors(scale=6.0):
    sae1, sae2 = make_sae("blocks.0.hook_resid_post"), make_sae("blocks.2.hook_resid_pre", kind="topk", seed=1)
    return [SteeringVector.from_sae(sae1, 3, scale), SteeringVector.from_sae(sae2, 7, scale)]


def _gen(model, toks, cache, n=10):
    return model.generate(toks, max_new_tokens=n, use_past_kv_cache=cache, do_sample=False, stop_at_eos=False,
                          verbose=False, return_type="tokens")


def test_steered_generation_identical_with_and_without_kv_cache(model):
    toks = _prompts()
    with torch.no_grad():
        plain = _gen(model, toks, True)
        with steer(model, _vectors()):
            cached = _gen(model, toks, True)
        with steer(model, _vectors()):
            uncached = _gen(model, toks, False)
    assert torch.equal(cached, uncached)
    assert not torch.equal(cached, plain)  # the steering did change the generation
    assert torch.equal(cached[:, : toks.shape[1]], toks)


def test_steered_forward_matches_manual_addition_at_generated_positions_only(model):
    toks = _prompts(batch=2, length=7)
    v = _vectors()[0]
    seen = {}

    def grab(act, hook):
        seen[hook.name] = act.detach().clone()

    with torch.no_grad():
        base_logits = model(toks)
        with steer(model, v, prompt_len=5):
            logits = model.run_with_hooks(toks, fwd_hooks=[("blocks.0.hook_resid_post", grab)])

        # independent computation: add the vector by hand at positions >= prompt_len - 1 = 4
        def add(act, hook):
            act = act.clone()
            act[:, 4:] += v.coefficient * v.direction
            return act

        manual = model.run_with_hooks(toks, fwd_hooks=[("blocks.0.hook_resid_post", add)])
    torch.testing.assert_close(logits, manual)
    torch.testing.assert_close(logits[:, :4], base_logits[:, :4])  # prompt positions untouched
    assert not torch.allclose(logits[:, 4:], base_logits[:, 4:])


def test_prompt_positions_untouched_during_generation(model):
    toks = _prompts(batch=2, length=8)
    resid = []

    def grab(act, hook):
        resid.append(act.detach().clone())

    with torch.no_grad():
        model.run_with_hooks(toks, fwd_hooks=[("blocks.2.hook_resid_post", grab)])
        with steer(model, _vectors()):
            model.run_with_hooks(toks, fwd_hooks=[("blocks.2.hook_resid_post", grab)])
    unsteered, steered = resid
    torch.testing.assert_close(steered[:, :-1], unsteered[:, :-1])  # every prompt position but the last
    # the last prompt position is steered: exactly what adding both vectors there by hand gives
    torch.testing.assert_close(steered, _by_hand(model, toks, _vectors(), 7, "blocks.2.hook_resid_post"))
    assert not torch.allclose(steered[:, -1], unsteered[:, -1])


def _by_hand(model, toks, vectors, first: int, hook: str):
    """The residual at ``hook`` with every vector added by hand at positions >= ``first``."""
    def adder(v):
        def add(act, hook):
            act = act.clone()
            act[:, first:] += v.coefficient * v.direction
            return act

        return add

    out = {}
    with torch.no_grad():
        model.run_with_hooks(toks, fwd_hooks=[(v.hook_name, adder(v)) for v in vectors]
                             + [(hook, lambda act, hook: out.__setitem__("x", act.detach().clone()))])
    return out["x"]


def test_scale_zero_equals_unsteered_and_all_positions(model):
    toks = _prompts()
    with torch.no_grad():
        plain = model(toks)
        with steer(model, _vectors(), scale=0.0):
            zero = model(toks)
        with steer(model, _vectors(), positions="all"):
            everywhere = model(toks)
    torch.testing.assert_close(zero, plain)
    assert not torch.allclose(everywhere[:, 0], plain[:, 0])
    # "all" steers every position, the first included: the same as adding by hand from position 0
    with torch.no_grad(), steer(model, _vectors(), positions="all"):
        resid = {}
        model.run_with_hooks(toks, fwd_hooks=[("blocks.2.hook_resid_post",
                                               lambda act, hook: resid.__setitem__("x", act.detach().clone()))])
    torch.testing.assert_close(resid["x"], _by_hand(model, toks, _vectors(), 0, "blocks.2.hook_resid_post"))


def test_hooks_removed_after_context(model):
    toks = _prompts()
    with torch.no_grad():
        before = model(toks)
        with steer(model, _vectors()):
            pass
        after = model(toks)
    torch.testing.assert_close(before, after)


def test_unknown_hook_and_width_mismatch_errors(model):
    bad = SteeringVector("blocks.9.hook_resid_post", torch.zeros(D_MODEL), 1.0)
    with pytest.raises(HookError, match="no hook named 'blocks.9.hook_resid_post'"):
        with steer(model, bad):
            pass
    wrong = SteeringVector("blocks.1.hook_resid_post", torch.zeros(D_MODEL + 1), 1.0)
    with pytest.raises(HookError, match="width 32"):
        with steer(model, wrong):
            pass
    with pytest.raises(HookError, match="d_in=16 but that hook carries vectors of width 32"):
        resolve_saes(model, [make_sae("blocks.1.hook_resid_post", d_in=16)])
    with pytest.raises(HookError, match="no hook named 'blocks.1.resid_post'"):
        resolve_saes(model, [make_sae("blocks.1.resid_post")])
    sae = make_sae("blocks.1.hook_resid_post")
    with pytest.raises(HookError, match="trained on 'blocks.1.hook_resid_post'"):
        resolve_saes(model, {"blocks.1.hook_resid_pre": sae})
    assert list(resolve_saes(model, sae)) == ["blocks.1.hook_resid_post"]
