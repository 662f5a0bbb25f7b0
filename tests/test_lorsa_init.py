"""Lorsa initialisations reconstructed from the authors' code: the active-subspace OV init puts every
head in its parent's value/output subspaces, the geometric median is the true minimiser of the summed
distances (checked against closed forms and an independent optimiser), training's ``bias_init`` uses
it, and ``aux_detach=False`` lets the AuxK term reach the main reconstruction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from interp.lorsa import Lorsa, LorsaConfig, LorsaConfigError, LorsaTrainConfig, init_from_host, train_lorsa
from interp.lorsa.init import geometric_median, host_attention, init_ov_active_subspace
from interp.lorsa.train import _loss_parts

from tiny_models import bos_tokens, rotary_model

LAYER = 1
HOOKS = ("blocks.1.ln1.hook_normalized", "blocks.1.hook_attn_out")


@pytest.fixture(scope="module")
def model():
    m = rotary_model(0)  # d_model 16, 2 heads of d_head 8: a head's subspaces are half the space
    m.tokenizer = None
    return m


def _lorsa_cfg() -> LorsaConfig:
    return LorsaConfig(d_model=16, n_qk_heads=2, d_qk_head=8, n_ov_heads=32, top_k=4, rotary=True, rotary_dim=8,
                       layer=LAYER, hook_in=HOOKS[0], hook_out=HOOKS[1])


def _acts(model, n=16, ctx=16):
    toks = bos_tokens(n, ctx, vocab=48)
    _, cache = model.run_with_cache(toks, names_filter=lambda name: name in HOOKS)
    mask = toks != 1
    return cache[HOOKS[0]], cache[HOOKS[1]], mask


# ----------------------------------------------------------------------------------- geometric median
def test_geometric_median_closed_forms():
    # 1-D: any median; with an odd count it is the middle point (the mean is dragged by the outlier)
    pts = torch.tensor([[0.0], [1.0], [2.0], [3.0], [100.0]])
    assert geometric_median(pts).item() == pytest.approx(2.0, abs=1e-4)
    # A triangle with all angles < 120 degrees: the Fermat point, where the three unit vectors sum to zero
    tri = torch.tensor([[0.0, 0.0], [4.0, 0.0], [1.0, 3.0]], dtype=torch.float64)
    y = geometric_median(tri, tol=1e-12, n_iter=10_000)
    units = (tri - y) / (tri - y).norm(dim=-1, keepdim=True)
    assert units.sum(0).norm().item() < 1e-6
    # Integer weights are repetitions
    pts = torch.randn(7, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = torch.tensor([1.0, 3.0, 1.0, 2.0, 1.0, 1.0, 4.0], dtype=torch.float64)
    rep = pts.repeat_interleave(w.long(), dim=0)
    assert torch.allclose(geometric_median(pts, w, tol=1e-12, n_iter=10_000),
                          geometric_median(rep, tol=1e-12, n_iter=10_000), atol=1e-7)


def test_geometric_median_matches_independent_optimiser():
    gen = torch.Generator().manual_seed(1)
    pts = torch.cat([torch.randn(200, 5, generator=gen), 20 + torch.randn(20, 5, generator=gen)]).double()
    y = geometric_median(pts, tol=1e-10, n_iter=5000).numpy()
    p = pts.numpy()
    res = minimize(lambda v: np.linalg.norm(p - v, axis=1).sum(), p.mean(0), method="Nelder-Mead",
                   options=dict(xatol=1e-9, fatol=1e-12, maxiter=50_000, maxfev=50_000))
    f = lambda v: np.linalg.norm(p - v, axis=1).sum()  # noqa: E731
    assert f(y) <= res.fun + 1e-6
    assert np.linalg.norm(y - res.x) < 1e-3
    assert np.linalg.norm(y - p.mean(0)) > 1.0  # the outlier cluster pulls the mean away, not the median


# ----------------------------------------------------------------------------------- active subspace
def test_active_subspace_heads_lie_in_parent_subspaces(model):
    x, _, mask = _acts(model)
    lorsa = init_from_host(Lorsa(_lorsa_cfg()), model, LAYER)
    init_ov_active_subspace(lorsa, model, x, mask, LAYER, seed=0)
    host = host_attention(model, LAYER)
    parent = torch.arange(2).repeat_interleave(16)
    W_V, W_O = host.W_V[parent], host.W_O[parent]  # [n_ov, d, d_head], [n_ov, d_head, d]
    w_v, w_o = lorsa.W_V.detach(), lorsa.W_O.detach()
    assert torch.allclose(w_v.norm(dim=-1), torch.ones(32), atol=1e-5)
    assert torch.allclose(w_o.norm(dim=-1), torch.ones(32), atol=1e-5)
    assert torch.count_nonzero(lorsa.b_V) == 0

    def outside(vecs, basis):  # the part of each vector outside the column space of its basis
        q, _ = torch.linalg.qr(basis)
        return (vecs - torch.einsum("ide,ie->id", q, torch.einsum("ide,id->ie", q, vecs))).norm(dim=-1)

    assert outside(w_v, W_V).max() < 1e-4  # w_V in the parent's value-read space (half of d_model)
    assert outside(w_o, W_O.transpose(1, 2)).max() < 1e-4  # w_O in the parent's output space
    # w_O is the parent's OV circuit applied to w_V (this is what distinguishes it from init_from_host's
    # rank-1 pieces r W_O, which also lie in the output space)
    ov = torch.einsum("id,ide,ief->if", w_v, W_V, W_O)
    cos = torch.nn.functional.cosine_similarity(ov, w_o, dim=-1)
    assert cos.min() > 1 - 1e-5
    # the other parent's space does not contain them (the test can tell the heads apart)
    other = host.W_V[1 - parent]
    assert outside(w_v, other).min() > 0.1
    # and the 16 heads of a parent span its whole d_head-dim active subspace
    assert torch.linalg.matrix_rank(w_v[:16], atol=1e-4) == 8


def test_active_subspace_differs_from_host_rank1_init(model):
    x, _, mask = _acts(model)
    host_init = init_from_host(Lorsa(_lorsa_cfg()), model, LAYER)
    host = host_attention(model, LAYER)
    parent = torch.arange(2).repeat_interleave(16)
    ov = torch.einsum("id,ide,ief->if", host_init.W_V.detach(), host.W_V[parent], host.W_O[parent])
    cos = torch.nn.functional.cosine_similarity(ov, host_init.W_O.detach(), dim=-1)
    assert cos.min() < 0.99  # the older init's w_O is not the OV image of its w_V
    init_ov_active_subspace(host_init, model, x, mask, LAYER)
    assert torch.allclose(host_init.W_O.norm(dim=-1), torch.ones(32), atol=1e-5)


# ----------------------------------------------------------------------------------- through training
def test_train_bias_init_geometric_median(model):
    toks = bos_tokens(8, 16, vocab=48)
    lc = _lorsa_cfg()
    # one batch of every sequence: the first batch's tokens are all tokens, so the median is known here;
    # lr tiny and one step, so b_D is still its initial value (up to ~1e-9)
    kw = dict(batch_size=8, n_steps=1, lr=1e-9, buffer_sequences=8, norm_sequences=8, bos_token_id=1, progress=False)
    r_gm = train_lorsa(model, LAYER, toks, lc, LorsaTrainConfig(bias_init="geometric_median", **kw))
    r_mean = train_lorsa(model, LAYER, toks, lc, LorsaTrainConfig(bias_init="mean", **kw))
    _, cache = model.run_with_cache(toks, names_filter=lambda name: name in HOOKS)
    y = cache[HOOKS[1]][toks != 1].double().numpy()
    res = minimize(lambda v: np.linalg.norm(y - v, axis=1).sum(), y.mean(0), method="Powell",
                   options=dict(xtol=1e-10, ftol=1e-14, maxiter=200_000))
    b_gm = r_gm.lorsa.b_D.detach().double().numpy()
    b_mean = r_mean.lorsa.b_D.detach().double().numpy()
    assert np.abs(b_mean - y.mean(0)).max() < 1e-5
    scale = np.linalg.norm(y - y.mean(0), axis=1).mean()
    assert np.linalg.norm(b_gm - res.x) < 1e-3 * scale
    assert np.linalg.norm(b_gm - b_mean) > 0.05 * scale  # a case where the median is not the mean


def test_train_ov_init_active_subspace_runs(model):
    toks = bos_tokens(16, 16, vocab=48)
    kw = dict(batch_size=4, n_steps=1, lr=1e-9, buffer_sequences=16, norm_sequences=8, bos_token_id=1, progress=False,
              decoder_scales=(1.0,))
    r = train_lorsa(model, LAYER, toks, _lorsa_cfg(), LorsaTrainConfig(ov_init="active_subspace", **kw))
    # after folding, decoder rows are all equal in norm (unit at init, times 1/out_scale)
    norms = r.lorsa.W_O.detach().norm(dim=-1)
    assert torch.allclose(norms, norms.mean().expand_as(norms), rtol=1e-4)


def test_aux_detach_controls_gradient_into_main_output(model):
    x, y, mask = _acts(model, n=4)
    lorsa = init_from_host(Lorsa(_lorsa_cfg()), model, LAYER)
    dead = torch.zeros(32, dtype=torch.bool)
    dead[::2] = True
    grads = {}
    for detach in (True, False):
        lorsa.zero_grad()
        _, aux, _ = _loss_parts(lorsa, x, y, mask, 4, dead, 8, detach)
        aux.backward()
        g = lorsa.b_D.grad  # b_D enters only the main output (None: no gradient reached it)
        grads[detach] = torch.zeros_like(lorsa.b_D) if g is None else g.clone()
    assert torch.count_nonzero(grads[True]) == 0
    assert grads[False].abs().max() > 1e-6


@pytest.mark.parametrize("field,value", [("ov_init", "svd"), ("bias_init", "median"), ("aux_detach", 1)])
def test_config_rejects_bad_choices(field, value):
    with pytest.raises(LorsaConfigError, match=field):
        LorsaTrainConfig(**{field: value})
