"""The training step's fast path (hand-written chunked attention, sparse codes decoded by gathering W_O rows,
AuxK's top-K over the dead heads only) against a dense computation written out here: explicit softmax
attention per QK group, relu / |z| ranking over all heads, zeros-scatter codes, dense z @ W_O, in float64.
Loss, AuxK loss, firing counts and every parameter gradient must agree."""

from __future__ import annotations

import copy

import pytest
import torch

from interp.lorsa import Lorsa, LorsaConfig
from interp.lorsa.model import attention_mask
from interp.lorsa.train import _loss_parts, lorsa_step


def _lorsa(dtype=torch.float64, **over) -> Lorsa:
    cfg = LorsaConfig(**{**dict(d_model=16, n_qk_heads=3, d_qk_head=4, n_ov_heads=48, top_k=5, activation="relu",
                                rotary=True, rotary_dim=4), **over})
    lorsa = Lorsa(cfg, seed=0).to(dtype)
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for p in lorsa.parameters():  # non-zero biases, uneven decoder norms: a wrong gather or ranking shows
            p.add_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.4)
    return lorsa


def _dense_reference(lorsa: Lorsa, x, y, mask, k, dead, aux_k):
    """The step as written before the fast path: dense codes everywhere."""
    cfg = lorsa.cfg
    b, n, _ = x.shape
    q, kk = lorsa._qk(x)
    scores = q @ kk.transpose(-1, -2) / cfg.scale
    scores = scores.masked_fill(~attention_mask(n, n, 0, cfg.sliding_window, x.device), float("-inf"))
    pattern = scores.softmax(-1)  # [b, n_qk, t, s]
    v = (x @ lorsa.W_V.T + lorsa.b_V).view(b, n, cfg.n_qk_heads, cfg.group_size)
    z_pre = torch.einsum("bhts,bshg->bthg", pattern, v).reshape(b, n, cfg.n_ov_heads)

    def sparsify(z, kk_):
        z = z.relu() if cfg.activation == "relu" else z
        score = (z if cfg.activation == "relu" else z.abs()) * lorsa.W_O.norm(dim=-1)
        idx = score.topk(kk_, dim=-1).indices
        return torch.zeros_like(z).scatter(-1, idx, z.gather(-1, idx))

    z = sparsify(z_pre, k)
    y_hat = z @ lorsa.W_O + lorsa.b_D
    m = mask.unsqueeze(-1).to(y.dtype)
    sq = ((y_hat - y).pow(2) * m).sum()
    n_aux = min(aux_k, int(dead.sum()))
    z_aux = sparsify(z_pre.masked_fill(~dead, 0.0), n_aux)
    aux = ((z_aux @ lorsa.W_O - (y - y_hat).detach()).pow(2) * m).sum()
    fired = ((z != 0) & mask.unsqueeze(-1)).sum((0, 1))
    return sq, aux, fired


def _grads(lorsa, loss):
    lorsa.zero_grad(set_to_none=True)
    loss.backward()
    return {name: p.grad.clone() for name, p in lorsa.named_parameters()}


def _data(lorsa, n=40, dtype=torch.float64):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, n, lorsa.cfg.d_model, generator=g, dtype=dtype) * 2
    y = torch.randn(3, n, lorsa.cfg.d_model, generator=g, dtype=dtype)
    mask = torch.rand(3, n, generator=g) > 0.2
    dead = torch.zeros(lorsa.cfg.n_ov_heads, dtype=torch.bool)
    dead[torch.randperm(lorsa.cfg.n_ov_heads, generator=g)[:11]] = True
    return x, y, mask, dead


@pytest.mark.parametrize("over", [dict(), dict(query_chunk_size=16), dict(query_chunk_size=0),
                                  dict(activation="signed", query_chunk_size=7), dict(sliding_window=9, query_chunk_size=16),
                                  dict(rotary=False, rotary_dim=None)])
def test_fast_step_equals_dense_reference(over):
    lorsa = _lorsa(**over)
    x, y, mask, dead = _data(lorsa)
    for aux_k in (4, 30):  # fewer dead heads than aux_k, then more
        sq, aux, fired = _loss_parts(lorsa, x, y, mask, lorsa.cfg.top_k, dead, aux_k)
        got = _grads(lorsa, sq + 0.7 * aux)
        rsq, raux, rfired = _dense_reference(lorsa, x, y, mask, lorsa.cfg.top_k, dead, aux_k)
        want = _grads(lorsa, rsq + 0.7 * raux)
        assert float(raux.detach()) > 0
        torch.testing.assert_close(sq, rsq, rtol=1e-10, atol=0)
        torch.testing.assert_close(aux, raux, rtol=1e-10, atol=0)
        assert torch.equal(fired, rfired)
        top = max(float(g.abs().max()) for g in want.values())
        for name in want:
            # b_K's gradient is 0 up to rounding without RoPE (softmax ignores a per-query constant)
            scale = max(float(want[name].abs().max()), 1e-4 * top)
            torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-10 * scale, msg=name)


def test_float32_step_matches_float64_reference():
    """The claim of the fast path in the precision it trains in: loss and gradients to ~1e-5 relative."""
    lorsa64 = _lorsa()
    lorsa32 = copy.deepcopy(lorsa64).float()
    x, y, mask, dead = _data(lorsa64)
    sq, aux, _ = _loss_parts(lorsa32, x.float(), y.float(), mask, 5, dead, 8)
    got = _grads(lorsa32, sq + aux)
    rsq, raux, _ = _dense_reference(lorsa64, x, y, mask, 5, dead, 8)
    want = _grads(lorsa64, rsq + raux)
    torch.testing.assert_close(sq.double(), rsq, rtol=1e-5, atol=0)
    torch.testing.assert_close(aux.double(), raux, rtol=1e-5, atol=0)
    for name in want:
        err = (got[name].double() - want[name]).abs().max() / want[name].abs().max()
        assert err < 2e-5, (name, float(err))


def test_public_codes_match_sparsify_and_decode():
    lorsa = _lorsa(torch.float32)
    x, *_ = _data(lorsa, dtype=torch.float32)
    z_pre = lorsa.encode_pre(x)
    idx, vals = lorsa.top_codes(z_pre)
    dense = lorsa.sparsify(z_pre)
    assert torch.equal(torch.zeros_like(z_pre).scatter(-1, idx, vals), dense)
    torch.testing.assert_close(lorsa.decode_codes(idx, vals), lorsa.decode(dense), rtol=1e-5, atol=1e-5)
    heads = torch.tensor([3, 17, 40, 41])
    hidx, _ = lorsa.top_codes(z_pre, 2, heads=heads)
    assert set(hidx.unique().tolist()) <= set(heads.tolist())


def test_lorsa_step_updates_like_manual_adam():
    """lorsa_step = loss / (n_tokens d_model), backward, clip, Adam: the same parameters as doing it by hand."""
    a, b = _lorsa(torch.float32), _lorsa(torch.float32)
    x, y, mask, dead = _data(a, dtype=torch.float32)
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2, foreach=True)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2, foreach=True)
    n_tok = float(mask.sum())
    lorsa_step(a, opt_a, x, y, mask, 5, dead, 8, aux_coef=0.5, grad_clip=0.01, n_tokens=n_tok)
    sq, aux, _ = _loss_parts(b, x, y, mask, 5, dead, 8)
    ((sq + 0.5 * aux) / (n_tok * 16)).backward()
    torch.nn.utils.clip_grad_norm_(b.parameters(), 0.01)
    opt_b.step()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7, msg=name)
