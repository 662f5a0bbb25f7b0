"""Chunked log-probabilities through the output head (interp.thr.logprobs) and GRPO scoring built on them:
equal to the direct full-vocabulary computation, gradients included, and never a [rows, V] tensor."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import shared_model_dir
from interp.thr import token_hidden_reward
from interp.thr.logprobs import OutputHead, output_head, token_logprobs

_NEEDS_STORIES = pytest.mark.skipif(not (shared_model_dir() / "config.json").is_file(),
                                    reason="stories260K is not present at ../shared/models/stories260K")


def _direct(head: OutputHead, h, y, temperature):
    z = head.logits(h) / temperature
    lp = torch.log_softmax(z, -1)
    return lp.gather(1, y[:, None])[:, 0], -(lp.exp() * lp).sum(-1), torch.logsumexp(z, -1)


def _head(V=53, d=7, dtype=torch.float64, softcap=0.0, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    W = (2 * torch.randn(V, d, generator=g, dtype=torch.float64)).to(dtype).requires_grad_(True)
    b = torch.randn(V, generator=g, dtype=torch.float64).to(dtype).requires_grad_(True) if bias else None
    return OutputHead(W, b, softcap)


@pytest.mark.parametrize("softcap", [0.0, 2.5])
def test_gradcheck_against_finite_differences(softcap):
    """The custom backward (recomputed chunk by chunk) is the derivative: torch's finite-difference check,
    with chunks and row blocks smaller than the vocabulary and the batch."""
    head = _head(softcap=softcap)
    h = torch.randn(11, 7, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 53, (11,))

    def f(h, W, b):
        return token_logprobs(OutputHead(W, b, softcap), h, y, temperature=0.8, chunk_size=8, block_floats=40)[0]

    assert torch.autograd.gradcheck(f, (h, head.weight, head.bias))


@pytest.mark.parametrize("softcap,temperature", [(0.0, 1.0), (0.0, 0.6), (3.0, 1.3)])
def test_values_and_gradients_equal_the_direct_float32_computation(softcap, temperature):
    head = _head(V=301, d=16, dtype=torch.float32, softcap=softcap, seed=1)
    h = torch.randn(40, 16, requires_grad=True)
    y = torch.randint(0, 301, (40,))
    lp, ent, lse = token_logprobs(head, h, y, temperature=temperature, chunk_size=64, block_floats=64 * 9)
    ref_lp, ref_ent, ref_lse = _direct(head, h, y, temperature)
    torch.testing.assert_close(lp, ref_lp, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ent, ref_ent.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lse, ref_lse.detach(), rtol=1e-5, atol=1e-5)
    assert not ent.requires_grad and not lse.requires_grad
    w = torch.randn(40)
    got = torch.autograd.grad((lp * w).sum(), (h, head.weight, head.bias))
    ref = torch.autograd.grad((ref_lp * w).sum(), (h, head.weight, head.bias))
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_bfloat16_head_matches_its_direct_logits():
    """A bf16 head: the chunked pass multiplies in bf16 like the model does and accumulates in float32."""
    head = _head(V=1000, d=32, dtype=torch.bfloat16, seed=2, bias=False)
    h = torch.randn(24, 32).bfloat16()
    y = torch.randint(0, 1000, (24,))
    lp, ent, _ = token_logprobs(head, h, y, chunk_size=128)
    ref_lp, ref_ent, _ = _direct(head, h, y, 1.0)
    assert lp.dtype == torch.float32
    torch.testing.assert_close(lp, ref_lp.detach(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ent, ref_ent.detach(), rtol=1e-4, atol=1e-4)


def test_bfloat16_gradients_match_autograd_through_the_bfloat16_head():
    """A bf16 head: the gradients (matmuls in bf16, float32 accumulation) against autograd through the direct
    path of a bf16 model (bf16 logits, float32 log_softmax), which is what GRPO computed before; both carry
    bf16's rounding, so the comparison is at bf16 precision."""
    head = _head(V=700, d=32, dtype=torch.bfloat16, seed=6, bias=False)
    h = torch.randn(30, 32).bfloat16().requires_grad_(True)
    y = torch.randint(0, 700, (30,))
    lp, _, _ = token_logprobs(head, h, y, chunk_size=128)
    gh, gw = torch.autograd.grad(lp.sum(), (h, head.weight))
    ref = torch.log_softmax((h @ head.weight.T).float(), -1).gather(1, y[:, None])[:, 0]
    rh, rw = torch.autograd.grad(ref.sum(), (h, head.weight))
    assert gh.dtype == torch.bfloat16 and gw.dtype == torch.bfloat16
    torch.testing.assert_close(lp, ref.detach(), rtol=1e-3, atol=1e-3)
    for a, b in ((gh, rh), (gw, rw)):
        torch.testing.assert_close(a.float(), b.float(), rtol=2e-2, atol=1e-2 * float(b.abs().max()))


class _LargestTensor(TorchDispatchMode):
    """Records the number of elements of the largest tensor any op creates."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_no_rows_by_vocab_tensor_in_forward_or_backward():
    rows, V, d, chunk, block = 256, 4096, 8, 256, 256 * 32
    head = _head(V=V, d=d, dtype=torch.float32, seed=3, bias=False)
    h = torch.randn(rows, d, requires_grad=True)
    y = torch.randint(0, V, (rows,))
    with _LargestTensor() as mode:
        lp, _, _ = token_logprobs(head, h, y, chunk_size=chunk, block_floats=block)
        lp.sum().backward()
    # the gradient of W is V x d (it must exist); everything else is at most one block of logits
    assert mode.largest <= max(V * d, block), mode.largest
    assert rows * V > 4 * max(V * d, block)  # the direct path would have been far larger
    with _LargestTensor() as direct:
        _direct(head, h.detach(), y, 1.0)
    assert direct.largest >= rows * V


def test_bad_inputs_raise_clear_errors():
    head = _head(V=10, d=4, dtype=torch.float32)
    with pytest.raises(ValueError, match="width"):
        token_logprobs(head, torch.randn(3, 5), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        token_logprobs(head, torch.randn(3, 4), torch.tensor([0, 1, 10]))
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs(head, torch.randn(3, 4), torch.zeros(3, dtype=torch.long), temperature=0)


def test_output_head_reads_the_model_weights_in_place():
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(n_layers=1, d_model=16, n_ctx=16, d_head=8, n_heads=2, d_vocab=37, act_fn="silu",
                                  d_mlp=32, normalization_type="RMS", positional_embedding_type="rotary",
                                  output_logits_soft_cap=7.0, seed=0)
    model = HookedTransformer(cfg)
    head = output_head(model)
    assert head.weight.data_ptr() == model.W_U.data_ptr() and head.softcap == 7.0  # a view, no copy
    store = {}
    handle = model.unembed.register_forward_pre_hook(lambda m, a: store.__setitem__("h", a[0]))
    tokens = torch.randint(0, 37, (2, 9))
    logits = model(tokens)
    handle.remove()
    torch.testing.assert_close(head.logits(store["h"].reshape(-1, 16)), logits.reshape(-1, 37), rtol=1e-5, atol=1e-5)


def test_output_head_of_hugging_face_models_includes_the_gemma2_soft_cap():
    from transformers import AutoModelForCausalLM, Gemma2Config

    config = Gemma2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=8, final_logit_softcapping=5.0)
    model = AutoModelForCausalLM.from_config(config).eval()
    head = output_head(model)
    assert head.weight is model.get_output_embeddings().weight and head.softcap == 5.0
    store = {}
    handle = model.lm_head.register_forward_pre_hook(lambda m, a: store.__setitem__("h", a[0]))
    with torch.no_grad():
        logits = model(torch.randint(0, 64, (2, 6))).logits
    handle.remove()
    torch.testing.assert_close(head.logits(store["h"].reshape(-1, 16)), logits.reshape(-1, 64).float(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("vocab", ["group", "full"])
@pytest.mark.parametrize("exclude_self", [False, True])
@pytest.mark.parametrize("softcap", [0.0, 4.0])
def test_thr_through_the_head_equals_thr_from_logits(vocab, exclude_self, softcap):
    head = _head(V=90, d=6, dtype=torch.float32, softcap=softcap, seed=4)
    g = torch.Generator().manual_seed(5)
    lengths = [4, 2, 5, 3, 6, 1]
    H = [torch.randn(n, 6, generator=g) for n in lengths]
    Y = [torch.randint(0, 90, (n,), generator=g) for n in lengths]
    r = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    with torch.no_grad():
        L = [head.logits(h) for h in H]
    # the reference gets the capped logits and the cap (its derivative factor 1 - (z / c)^2 enters THR)
    ref = token_hidden_reward(H, L, Y, r, group_size=3, vocab=vocab, exclude_self=exclude_self, temperature=0.9,
                              chunk_size=16, softcap=softcap)
    got = token_hidden_reward(H, None, Y, r, group_size=3, vocab=vocab, exclude_self=exclude_self, temperature=0.9,
                              chunk_size=16, head=head)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="either the logits"):
        token_hidden_reward(H, L, Y, r, group_size=3, head=head)


# ----------------------------------------------------------------------------------------- GRPO scoring
@pytest.fixture(scope="module")
def policies():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp import load_model
    from interp.thr.policy import as_policy

    if not (shared_model_dir() / "config.json").is_file():
        pytest.skip("stories260K is not present at ../shared/models/stories260K")
    hf = AutoModelForCausalLM.from_pretrained(shared_model_dir()).eval()
    return {"tl": as_policy(load_model(shared_model_dir(), device="cpu")),
            "hf": as_policy(hf, AutoTokenizer.from_pretrained(shared_model_dir()))}


@_NEEDS_STORIES
@pytest.mark.parametrize("kind", ["tl", "hf"])
def test_score_rollouts_equals_the_full_logit_computation(policies, kind):
    """Old log-probs, entropies and THR of a sampled batch, through the chunked head, equal those of the
    direct path (full [n, P+R, V] logits, log_softmax in float32), for both front-ends."""
    from interp.core.generation import make_generator
    from interp.core.tasks import Example
    from interp.thr.grpo import score_rollouts
    from interp.thr.tasks import VerifiableTask

    policy = policies[kind]
    G, T = 4, 0.8
    items = [Example(p, "e") for p in ("Once upon a time", "Tom had a dog") for _ in range(G)]
    task = VerifiableTask("e", items, [Example("Sue sat", "e")], lambda it, c: float(c.count("e")), max_new_tokens=7)
    ro = policy.sample([policy.encode(it.prompt) for it in items], max_new_tokens=7, temperature=T,
                       generator=make_generator(policy.model, 3))
    batch = score_rollouts(policy, items, task, ro, group_size=G, temperature=T, exclude_self=True)
    with torch.no_grad():
        logits, hidden = policy.forward(ro.input_ids, ro.attention_mask)
        _, hidden_only = policy.forward(ro.input_ids, ro.attention_mask, logits=False)
    assert torch.equal(hidden, hidden_only)
    P = ro.prompt_len
    lp_all = torch.log_softmax(logits[:, P - 1 : -1].float() / T, -1)
    ref_lp = lp_all.gather(-1, ro.responses[..., None])[..., 0]
    m = ro.response_mask
    torch.testing.assert_close(batch.old_logp[m], ref_lp[m], rtol=1e-5, atol=1e-5)
    assert (batch.old_logp[~m] == 0).all()
    ref_ent = -(lp_all.exp() * lp_all).sum(-1)
    lengths = m.sum(1).tolist()
    for i, n in enumerate(lengths):
        torch.testing.assert_close(batch.result.entropy[i], ref_ent[i, :n], rtol=1e-5, atol=1e-5)
    ref_thr = token_hidden_reward([hidden[i, P - 1 : P - 1 + n] for i, n in enumerate(lengths)],
                                  [logits[i, P - 1 : P - 1 + n] for i, n in enumerate(lengths)], ro.response_list(),
                                  batch.rewards, group_size=G, temperature=T, exclude_self=True)
    scale = max(float(t.abs().max()) for t in ref_thr)
    assert scale > 0
    # float32 rounding of sums of many terms of either sign: both paths are within ~1e-5 of the largest
    # |THR| of a float64 run (measured: logits path 1-2e-6, head path 3-7e-6), so compare at that scale
    for a, b in zip(batch.result.thr, ref_thr):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-5 * scale)


@_NEEDS_STORIES
def test_training_loss_gradients_equal_the_full_logit_computation(policies):
    """The GRPO loss's log-probabilities, with gradients into every parameter, equal the direct path's."""
    from interp.core.generation import make_generator
    from interp.thr.grpo import _response_scores

    policy = policies["hf"]
    ro = policy.sample([policy.encode("Once upon a time")] * 3, max_new_tokens=6, temperature=1.0,
                       generator=make_generator(policy.model, 1))
    params = [p for p in policy.model.parameters() if p.requires_grad]
    m = ro.response_mask
    w = torch.randn(m.shape)
    lp = _response_scores(policy, ro, 0.9).logp
    got = torch.autograd.grad((lp * w * m).sum(), params, allow_unused=True)
    logits, _ = policy.forward(ro.input_ids, ro.attention_mask)
    P = ro.prompt_len
    ref_lp = torch.log_softmax(logits[:, P - 1 : -1].float() / 0.9, -1).gather(-1, ro.responses[..., None])[..., 0]
    ref = torch.autograd.grad((ref_lp * w * m).sum(), params, allow_unused=True)
    torch.testing.assert_close(lp[m], ref_lp[m].detach(), rtol=1e-5, atol=1e-5)
    for a, b in zip(got, ref):
        if b is None:
            assert a is None or float(a.abs().max()) == 0
        else:  # float32 rounding, at the scale of each parameter's gradient
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))
