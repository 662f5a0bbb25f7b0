"""The Jacobian lens on the nine architecture twins (tests/twins.py), both front-ends, against transformers.

The reference is computed in transformers' own model, independently of our front-ends: the full
[T, d, T, d] Jacobian of the last decoder layer's output (before the final norm) with respect to decoder
layer l's input, by ``torch.autograd.functional.jacobian`` through hooks on HF's decoder layers, summed
over target positions and averaged over source positions >= SKIP. Then the lens must decode every layer
as ``head(final_norm(J_l h_l))`` of HF's hidden states (soft-capped for Gemma-2), and its output layer
must be HF's logits.
"""

from __future__ import annotations

import pytest
import torch

from twins import FAMILIES

FRONTENDS = ("bridge", "hooked")
MATRIX = [pytest.param(f, fe, id=f"{f}-{fe}") for f in FAMILIES for fe in FRONTENDS]
SKIP = 2
CTX = 10


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


@pytest.fixture(scope="module")
def hf_models(twin_dir):
    from transformers import AutoModelForCausalLM

    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = AutoModelForCausalLM.from_pretrained(twin_dir(family), attn_implementation="eager").eval()
        return cache[family]

    return get


def _windows(hf) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    body = torch.randint(3, hf.config.vocab_size, (2, CTX - 1), generator=g)
    bos = hf.config.bos_token_id if hf.config.bos_token_id is not None else 0
    return torch.cat([torch.full((2, 1), bos), body], 1)


def _decoder_layers(hf):
    base = hf.base_model
    return base.layers if hasattr(base, "layers") else base.h


def _final_norm(hf):
    base = hf.base_model
    for name in ("norm", "ln_f", "final_layer_norm"):
        if hasattr(base, name):
            return getattr(base, name)
    raise AssertionError(f"no final norm on {type(base).__name__}")


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def _hf_average_jacobians(hf, windows) -> list[torch.Tensor]:
    layers = _decoder_layers(hf)
    n, d = len(layers), hf.config.hidden_size
    refs = [torch.zeros(d, d) for _ in range(n)]
    for w in range(windows.shape[0]):
        row = windows[w:w + 1]
        for layer in range(n):
            captured = {}

            def grab_input(mod, args, kwargs):
                captured["x"] = (args[0] if args else kwargs["hidden_states"]).detach()[0]

            h = layers[layer].register_forward_pre_hook(grab_input, with_kwargs=True)
            with torch.no_grad():
                hf(input_ids=row)
            h.remove()

            def f(x, layer=layer):
                out = {}

                def put(mod, args, kwargs):
                    if args:
                        return (x[None],) + tuple(args[1:]), kwargs
                    return args, {**kwargs, "hidden_states": x[None]}

                def take(mod, args, output):
                    out["h"] = _first(output)

                hp = layers[layer].register_forward_pre_hook(put, with_kwargs=True)
                ht = layers[n - 1].register_forward_hook(take)
                try:
                    hf(input_ids=row)
                finally:
                    hp.remove()
                    ht.remove()
                return out["h"][0]

            jac = torch.autograd.functional.jacobian(f, captured["x"], vectorize=True)  # [T, d, T, d]
            refs[layer] += jac.sum(0)[:, SKIP:].sum(1)
    return [r / (windows.shape[0] * (windows.shape[1] - SKIP)) for r in refs]


@pytest.fixture(scope="module")
def hf_reference(hf_models):
    cache = {}

    def get(family):
        if family not in cache:
            hf = hf_models(family)
            windows = _windows(hf)
            cache[family] = windows, _hf_average_jacobians(hf, windows)
        return cache[family]

    return get


@pytest.mark.parametrize("family,frontend", MATRIX)
def test_jacobian_lens_matches_transformers(family, frontend, twin_model, hf_models, hf_reference):
    from interp.lens import JacobianLens, JacobianLensConfig, decode_layers

    model = twin_model(family, frontend)
    hf = hf_models(family)
    windows, refs = hf_reference(family)
    lens = JacobianLens.fit(model, windows, JacobianLensConfig(skip_first=SKIP, dim_batch=32), progress=False,
                            attach=False)
    for layer, ref in enumerate(refs):
        assert (ref - torch.eye(ref.shape[0])).abs().max() > 0.05, layer  # far from the identity: a real check
        torch.testing.assert_close(lens.jacobian[layer], ref, atol=1e-4, rtol=1e-3)
    # the decoded layers are HF's hidden states carried by HF's average Jacobian through HF's norm and head
    res = decode_layers(model, windows, lens=lens, positions="all", k=3)
    assert res.lens == "jacobian"
    with torch.no_grad():
        out = hf(input_ids=windows, output_hidden_states=True)
        cap = getattr(hf.config, "final_logit_softcapping", None) or 0.0
        n = hf.config.num_hidden_layers
        for layer in range(n + 1):
            if layer == n:
                logits = out.logits
            else:
                logits = hf.get_output_embeddings()(_final_norm(hf)(out.hidden_states[layer] @ refs[layer].T))
                if cap:
                    logits = cap * torch.tanh(logits / cap)
            lp = logits.float().log_softmax(-1)
            top = lp.topk(3, dim=-1)
            torch.testing.assert_close(res.top_logprobs[:, layer], top.values, atol=2e-4, rtol=0)
            if layer == n:  # the output layer is the model's own logits
                assert torch.equal(res.top_ids[:, layer, :, 0], top.indices[..., 0])
