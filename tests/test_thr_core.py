"""THR core: checked against finite differences of a real SGD step and a direct double sum."""

from __future__ import annotations

import math

import pytest
import torch

from interp.thr import THRInputError, group_advantages, thr_weights, token_hidden_reward

from tiny_models import hooked


def _tiny_model(softcap=0.0):
    # float64 for the finite differences; W_U spread x4 so distributions are not flat
    return hooked(3, unembed_scale=4.0, n_layers=1, d_model=16, n_ctx=32, d_head=8, n_heads=2, d_vocab=23,
                  act_fn="silu", d_mlp=32, normalization_type="RMS", positional_embedding_type="rotary",
                  dtype=torch.float64, output_logits_soft_cap=softcap)


def _group(model, G=4, prompt_len=3, T=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, model.cfg.d_vocab, (prompt_len,), generator=g)
    resp = torch.randint(0, model.cfg.d_vocab, (G, T), generator=g)
    seqs = torch.cat([prompt.expand(G, -1), resp], dim=1)
    return seqs, resp


def _forward(model, seqs, P):
    """Hidden states feeding the unembedding and logits at the positions predicting the response."""
    store = {}
    handle = model.unembed.register_forward_pre_hook(lambda m, a: store.__setitem__("h", a[0]))
    try:
        logits = model(seqs)
    finally:
        handle.remove()
    return store["h"][:, P - 1 : -1], logits[:, P - 1 : -1]


def _correct_loglik(model, seqs, resp, P, correct_rows, temperature):
    _, logits = _forward(model, seqs, P)
    lp = torch.log_softmax(logits / temperature, dim=-1).gather(-1, resp[..., None])[..., 0]
    return lp[correct_rows].sum()


@pytest.mark.parametrize(
    "temperature,normalize,exclude_self,softcap",
    [(1.0, "token", False, 0.0), (0.7, "sequence", False, 0.0), (1.0, "token", True, 0.0),
     (0.8, "token", True, 3.0)],  # 3.0: the model's final logits are 3 tanh(W h / 3) (Gemma-2's soft-cap)
)
def test_thr_equals_finite_difference_of_one_sgd_step(temperature, normalize, exclude_self, softcap):
    model = _tiny_model(softcap)
    P, T, G = 3, 5, 4
    seqs, resp = _group(model, G=G, prompt_len=P, T=T)
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0])
    with torch.no_grad():
        H, L = _forward(model, seqs, P)
    thr = token_hidden_reward(list(H), list(L), list(resp), rewards, vocab="full", temperature=temperature,
                              normalize=normalize, exclude_self=exclude_self, softcap=softcap)
    adv = group_advantages(rewards)
    W0 = model.W_U.detach().clone()
    eta = 1e-4
    signs = set()
    for j, k in [(0, 1), (0, 4), (1, 0), (1, 3), (2, 2), (3, 4)]:
        w_j = adv[j] / (T if normalize == "sequence" else 1)
        # gradient of the single-token loss -w_j log pi(y_jk) w.r.t. the unembedding only
        model.W_U.grad = None
        _, logits = _forward(model, seqs, P)
        loss = -w_j.double() * torch.log_softmax(logits[j, k] / temperature, -1)[resp[j, k]]
        (grad,) = torch.autograd.grad(loss, model.W_U)
        rows = [i for i in range(G) if rewards[i] > 0 and not (exclude_self and i == j)]
        with torch.no_grad():
            model.W_U.copy_(W0 - eta * grad)
            plus = _correct_loglik(model, seqs, resp, P, rows, temperature)
            model.W_U.copy_(W0 + eta * grad)
            minus = _correct_loglik(model, seqs, resp, P, rows, temperature)
            model.W_U.copy_(W0)
        fd = float((plus - minus) / (2 * eta))
        got = float(thr[j][k])
        assert got == pytest.approx(fd, rel=2e-3, abs=1e-6), (j, k, got, fd)
        signs.add(math.copysign(1, fd))
    assert signs == {1.0, -1.0}, "the checked tokens must include both THR signs"


def _direct_double_sum(H, L, Y, rewards, vocab, temperature, exclude_self=False):
    """Independent reference: the defining double sum over token pairs, float64, explicit loops."""
    adv = group_advantages(rewards).double()
    V = L[0].shape[-1]
    ids = sorted({int(t) for y in Y for t in y}) if vocab == "group" else list(range(V))
    out = []
    for j in range(len(H)):
        row = []
        for k in range(len(Y[j])):
            def g(i, kk):
                q = torch.softmax(L[i][kk].double() / temperature, -1)
                e = -q
                e[Y[i][kk]] += 1
                return e[ids]
            s = 0.0
            for i in range(len(H)):
                if adv[i] <= 0 or (exclude_self and i == j):
                    continue
                for kk in range(len(Y[i])):
                    s += float(g(i, kk) @ g(j, k)) * float(H[i][kk].double() @ H[j][k].double())
            row.append(float(adv[j]) * s / temperature**2)
        out.append(torch.tensor(row, dtype=torch.float64))
    return out


@pytest.mark.parametrize("order", ["auto", "pairs", "M"])
@pytest.mark.parametrize("vocab", ["group", "full"])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_vectorised_matches_direct_double_sum(vocab, exclude_self, order, monkeypatch):
    """Both summation orders (token-pair Gram matrices, or M), forced and as chosen, equal the double sum."""
    import interp.thr.core as core

    if order != "auto":
        monkeypatch.setattr(core, "_use_pair_order", lambda *a: order == "pairs")
    g = torch.Generator().manual_seed(1)
    lengths = [4, 2, 5, 3, 1]
    V, d = 30, 6
    H = [torch.randn(n, d, generator=g) for n in lengths]
    L = [3 * torch.randn(n, V, generator=g) for n in lengths]
    Y = [torch.randint(0, V, (n,), generator=g) for n in lengths]
    rewards = torch.tensor([0.3, 1.0, -0.5, 1.0, 0.0])  # real-valued: "correct" = above the group mean
    got = token_hidden_reward(H, L, Y, rewards, vocab=vocab, temperature=1.3, exclude_self=exclude_self, chunk_size=7)
    ref = _direct_double_sum(H, L, Y, rewards, vocab, 1.3, exclude_self)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4)


def _pairwise_reference(H, Z, Y, rewards, G, vocab, temperature, softcap, exclude_self):
    """The direct pairwise form in float64, group by group: s_jk = sum over correct (i, k') of <e_jk, e_ik'>
    <h_jk, h_ik'>, with e = (onehot(y) - softmax(z / T)) * (1 - (z / c)^2) for capped logits z (the
    derivative of c tanh(u / c)), restricted to the group's ids for vocab="group"."""
    out = []
    for b in range(len(H) // G):
        hs, zs, ys = H[b * G:(b + 1) * G], Z[b * G:(b + 1) * G], Y[b * G:(b + 1) * G]
        adv = group_advantages(rewards[b * G:(b + 1) * G]).double()
        ids = torch.unique(torch.cat(ys)) if vocab == "group" else torch.arange(zs[0].shape[-1])
        es = []
        for z, y in zip(zs, ys):
            e = -torch.softmax(z.double() / temperature, -1)
            e[torch.arange(len(y)), y] += 1
            if softcap > 0:
                e = e * (1 - (z.double() / softcap) ** 2)
            es.append(e[:, ids])
        for j in range(G):
            s = torch.zeros(len(ys[j]), dtype=torch.float64)
            for i in range(G):
                if adv[i] > 0 and not (exclude_self and i == j):
                    s += ((es[j] @ es[i].T) * (hs[j].double() @ hs[i].double().T)).sum(1)
            out.append(s * adv[j] / temperature**2)
    return out


@pytest.mark.parametrize("order", ["pairs", "M"])
@pytest.mark.parametrize("path", ["logits", "head"])
@pytest.mark.parametrize("softcap", [0.0, 3.0])
@pytest.mark.parametrize("exclude_self", [False, True])
@pytest.mark.parametrize("vocab", ["group", "full"])
def test_every_option_in_both_orders_equals_the_pairwise_form(order, path, softcap, exclude_self, vocab, monkeypatch):
    """Each supported option (logits or the output head, soft-cap, exclude_self, group or full vocabulary,
    several groups of uneven lengths) in each summation order, against the pairwise form in float64."""
    import interp.thr.core as core
    from interp.thr.logprobs import OutputHead

    monkeypatch.setattr(core, "_use_pair_order", lambda *a: order == "pairs")
    g = torch.Generator().manual_seed(7)
    V, d, G = 37, 5, 3
    lengths = [4, 2, 5, 3, 6, 1]
    head = OutputHead(2 * torch.randn(V, d, generator=g), torch.randn(V, generator=g), softcap)
    H = [torch.randn(n, d, generator=g) for n in lengths]
    Y = [torch.randint(0, V, (n,), generator=g) for n in lengths]
    r = torch.tensor([1.0, 0.0, 1.0, 0.2, 1.0, 0.9])
    Z = [head.logits(h) for h in H]  # capped logits
    kw = dict(group_size=G, vocab=vocab, exclude_self=exclude_self, temperature=0.8, chunk_size=8)
    got = (token_hidden_reward(H, Z, Y, r, softcap=softcap, **kw) if path == "logits"
           else token_hidden_reward(H, None, Y, r, head=head, **kw))
    ref = _pairwise_reference(H, Z, Y, r, G, vocab, 0.8, softcap, exclude_self)
    scale = max(float(x.abs().max()) for x in ref)
    assert scale > 0.1
    err = max(float((a.double() - b).abs().max()) for a, b in zip(got, ref)) / scale
    assert err < 1e-5, err


def test_the_cheaper_order_is_chosen_at_wide_models_and_long_groups():
    from interp.thr.core import _use_pair_order

    # G=8 x 256 tokens, half correct, d=2048, V=32k: the token pairs (2048 x 1024 per column) beat M (3072 x 2048)
    assert _use_pair_order(1, 2048, 1024, 32000, 2048, 256, False)
    # long groups against a narrow width: M (d=64) is far cheaper than 8192 x 4096 pairs per column
    assert not _use_pair_order(1, 8192, 4096, 512, 64, 1024, False)
    # a Gram matrix beyond the memory bound falls back to M
    assert not _use_pair_order(64, 2048 * 8, 1024 * 8, 32000, 4096, 256, False)


def test_batched_groups_equal_separate_calls_and_chunking_is_invisible():
    g = torch.Generator().manual_seed(2)
    G, V, d = 3, 40, 5
    lengths = [3, 6, 2, 4, 4, 1]
    H = [torch.randn(n, d, generator=g) for n in lengths]
    L = [torch.randn(n, V, generator=g) for n in lengths]
    Y = [torch.randint(0, V, (n,), generator=g) for n in lengths]
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    for vocab in ("group", "full"):
        both = token_hidden_reward(H, L, Y, r, group_size=G, vocab=vocab, chunk_size=3)
        first = token_hidden_reward(H[:G], L[:G], Y[:G], r[:G], vocab=vocab, chunk_size=1000)
        second = token_hidden_reward(H[G:], L[G:], Y[G:], r[G:], vocab=vocab, chunk_size=1)
        for a, b in zip(both, first + second):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_equal_rewards_give_zeros_and_full_vocab_group_vocab_agree_when_all_ids_seen():
    g = torch.Generator().manual_seed(3)
    V, d = 4, 3
    H = [torch.randn(6, d, generator=g) for _ in range(3)]
    L = [torch.randn(6, V, generator=g) for _ in range(3)]
    Y = [torch.arange(6) % V for _ in range(3)]  # every id appears, so V* is the full vocabulary
    for r in ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]):
        assert all((t == 0).all() for t in token_hidden_reward(H, L, Y, torch.tensor(r)))
    r = torch.tensor([1.0, 0.0, 1.0])
    for a, b in zip(token_hidden_reward(H, L, Y, r, vocab="group"), token_hidden_reward(H, L, Y, r, vocab="full")):
        torch.testing.assert_close(a, b)


def test_large_vocab_in_low_precision_logits_is_finite_and_matches_float32():
    g = torch.Generator().manual_seed(4)
    H = [torch.randn(3, 4, generator=g) for _ in range(2)]
    L = [10 * torch.randn(3, 5000, generator=g) for _ in range(2)]
    Y = [torch.randint(0, 5000, (3,), generator=g) for _ in range(2)]
    r = torch.tensor([1.0, 0.0])
    a = token_hidden_reward(H, [x.bfloat16() for x in L], Y, r, vocab="full", chunk_size=512)
    b = token_hidden_reward(H, [x.bfloat16().float() for x in L], Y, r, vocab="full", chunk_size=5000)
    for x, y in zip(a, b):
        assert x.dtype == torch.float32 and torch.isfinite(x).all()
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)


def test_advantages_closed_form():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    a = group_advantages(r, group_size=4)
    p = 0.25
    torch.testing.assert_close(a[:4], torch.tensor([math.sqrt((1 - p) / p)] + [-math.sqrt(p / (1 - p))] * 3))
    assert (a[4:] == 0).all()
    torch.testing.assert_close(group_advantages(r[:4], scale=False), r[:4] - 0.25)


def test_thr_weights_rule_against_hand_computation():
    thr = [torch.tensor([3.0, 0.5, -2.0]), torch.tensor([1.0, 1.0]), torch.tensor([-4.0, 0.2, 0.0])]
    r = torch.tensor([1.0, 1.0, 0.0])
    # correct means: 0.5 and 1.0 -> tau = 0.5 (beta=1); beta=2 -> tau = 1.0
    w = thr_weights(thr, r, p=0.5)
    assert [x.tolist() for x in w] == [[1.5, 1.0, 0.5], [1.5, 1.5], [0.5, 1.0, 1.0]]
    w0 = thr_weights(thr, r, p=-0.5, beta=2.0, non_dominant=0.0)
    assert [x.tolist() for x in w0] == [[0.5, 0.0, 1.5], [0.0, 0.0], [1.5, 0.0, 0.0]]
    # every weight stays positive for |p| < 1, so no advantage flips sign
    assert all((x > 0).all() for x in thr_weights(thr, r, p=0.99))


@pytest.mark.parametrize("p", [1.0, -1.0, 1.5, float("nan")])
def test_thr_weights_rejects_p_outside_open_unit_interval(p):
    with pytest.raises(THRInputError, match=r"\|p\| must be < 1"):
        thr_weights([torch.ones(2)], [1.0], p=p)


def _ok_inputs():
    H = [torch.randn(3, 4), torch.randn(2, 4)]
    L = [torch.randn(3, 9), torch.randn(2, 9)]
    Y = [torch.tensor([1, 2, 3]), torch.tensor([0, 8])]
    return H, L, Y, torch.tensor([1.0, 0.0])


def test_bad_inputs_raise_clear_errors():
    H, L, Y, r = _ok_inputs()
    with pytest.raises(THRInputError, match="mismatched lengths"):
        token_hidden_reward(H, [L[0], L[1][:1]], Y, r)
    with pytest.raises(THRInputError, match="one entry per response"):
        token_hidden_reward(H, L[:1], Y, r)
    with pytest.raises(THRInputError, match="one value per response"):
        token_hidden_reward(H, L, Y, torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(THRInputError, match="NaN"):
        token_hidden_reward(H, [L[0], L[1] * float("nan")], Y, r)
    # the full vocabulary, in one chunk or several: the same checks, the response named
    for chunk in (4, 4096):
        for bad in (float("nan"), float("inf")):
            L_bad = L[1].clone()
            L_bad[1, 3] = bad
            with pytest.raises(THRInputError, match="Response 1: logits contain NaN or \\+inf"):
                token_hidden_reward(H, [L[0], L_bad], Y, r, vocab="full", chunk_size=chunk)
        with pytest.raises(THRInputError, match="Response 0"):
            token_hidden_reward(H, [torch.full_like(L[0], -float("inf")), L[1]], Y, r, vocab="full", chunk_size=chunk)
    L_ninf = L[0].clone()
    L_ninf[:, 5] = -float("inf")  # -inf logits are allowed: q = 0 there, chunked or not
    one, chunked = (token_hidden_reward(H, [L_ninf, L[1]], Y, r, vocab="full", chunk_size=c) for c in (4096, 4))
    for a, b in zip(one, chunked):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(THRInputError, match="temperature"):
        token_hidden_reward(H, L, Y, r, temperature=0.0)
    with pytest.raises(THRInputError, match="temperature"):
        token_hidden_reward(H, L, Y, r, temperature=-1.0)
    with pytest.raises(THRInputError, match="groups of 3"):
        token_hidden_reward(H, L, Y, r, group_size=3)
    with pytest.raises(THRInputError, match="token ids"):
        token_hidden_reward(H, L, [Y[0], torch.tensor([0, 9])], r)
    with pytest.raises(THRInputError, match="vocab"):
        token_hidden_reward(H, L, Y, r, vocab="all")  # type: ignore[arg-type]
    with pytest.raises(THRInputError, match="NaN or inf"):
        group_advantages(torch.tensor([1.0, float("nan")]))
