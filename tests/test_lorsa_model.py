"""Lorsa module: host-pattern equivalence, dense limit, head-permutation invariance, z-pattern
conservation, save/load with folded normalisation, bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
from transformer_lens import HookedTransformer

from interp.lorsa import Lorsa, LorsaConfig, LorsaConfigError, LorsaLoadError, UnsupportedModelError, init_from_host
from interp.lorsa.train import fold_normalisation

from tiny_models import hooked


def _config_model(**overrides) -> HookedTransformer:
    model = hooked(1, **{**dict(d_model=32, n_heads=4, n_ctx=64, d_vocab=50, positional_embedding_type="standard"),
                         **overrides})
    # Non-trivial norm weights and Q/K biases, so forgetting to fold or copy them would show.
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln1.w", "ln1.b", "b_Q", "b_K", "_b_K", "b_V", "_b_V")) or ".ln1." in name or "_norm." in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


CONFIG_MODELS = {
    "gpt2_style": dict(),
    "neox_partial_rotary": dict(positional_embedding_type="rotary", rotary_dim=4, rotary_adjacent_pairs=False),
    "gptj_adjacent_gqa": dict(positional_embedding_type="rotary", rotary_dim=8, rotary_adjacent_pairs=True,
                              n_key_value_heads=2, normalization_type="RMS"),
    "qk_norm": dict(positional_embedding_type="rotary", rotary_dim=8, normalization_type="RMS", use_qk_norm=True,
                    rotary_base=500.0),
}


def _host_check(model: HookedTransformer, layer: int, toks: torch.Tensor) -> float:
    _, cache = model.run_with_cache(toks)
    cfg = LorsaConfig.from_model(model, layer, expansion=1, top_k=4)
    lorsa = init_from_host(Lorsa(cfg), model, layer)
    pattern = lorsa.attention_pattern(cache[cfg.hook_in])
    return (pattern - cache[f"blocks.{layer}.attn.hook_pattern"]).abs().max().item()


def test_host_pattern_stories260k(stories_model):
    toks = torch.randint(3, 512, (2, 48), generator=torch.Generator().manual_seed(0))
    toks[:, 0] = 1
    for layer in range(stories_model.cfg.n_layers):
        assert _host_check(stories_model, layer, toks) < 1e-5


@pytest.mark.parametrize("name", sorted(CONFIG_MODELS))
def test_host_pattern_config_models(name):
    model = _config_model(**CONFIG_MODELS[name])
    toks = torch.randint(0, 50, (3, 40), generator=torch.Generator().manual_seed(0))
    for layer in range(2):
        assert _host_check(model, layer, toks) < 1e-5


def test_from_model_copies_positional_settings(stories_model):
    cfg = LorsaConfig.from_model(stories_model, 2, expansion=8, top_k=16)
    c = stories_model.cfg
    assert cfg.rotary and not cfg.rotary_adjacent_pairs
    assert (cfg.rotary_dim, cfg.rotary_base, cfg.d_qk_head, cfg.n_qk_heads) == (c.rotary_dim, c.rotary_base, c.d_head, c.n_heads)
    assert cfg.n_ov_heads == 8 * c.d_model and cfg.hook_in == "blocks.2.ln1.hook_normalized"


# ----------------------------------------------------------------------------- independent reference
def _reference_z_pre(lorsa: Lorsa, x: torch.Tensor) -> torch.Tensor:
    """Loop over heads and positions with RoPE written as complex rotation: slow, but independent."""
    cfg = lorsa.cfg
    b, n, _ = x.shape
    out = torch.zeros(b, n, cfg.n_ov_heads, dtype=torch.float64)
    x = x.double()

    def rope(v: torch.Tensor, pos: int) -> torch.Tensor:
        if not cfg.rotary:
            return v
        rd = cfg.rotary_dim
        v = v.clone()
        half = rd // 2
        for j in range(half):
            theta = pos / (cfg.rotary_base ** (j / half))
            i1, i2 = (2 * j, 2 * j + 1) if cfg.rotary_adjacent_pairs else (j, j + half)
            c = complex(v[i1].item(), v[i2].item()) * complex(math.cos(theta), math.sin(theta))
            v[i1], v[i2] = c.real, c.imag
        return v

    for i in range(cfg.n_ov_heads):
        h = i // cfg.group_size
        for bi in range(b):
            q = [rope(x[bi, t] @ lorsa.W_Q[h].double() + lorsa.b_Q[h].double(), t) for t in range(n)]
            k = [rope(x[bi, s] @ lorsa.W_K[h].double() + lorsa.b_K[h].double(), s) for s in range(n)]
            v = x[bi] @ lorsa.W_V[i].double() + lorsa.b_V[i].double()
            for t in range(n):
                scores = torch.stack([q[t] @ k[s] for s in range(t + 1)]) / cfg.scale
                out[bi, t, i] = (scores.softmax(0) * v[: t + 1]).sum()
    return out


def _small_lorsa(activation="signed", rotary=True, adjacent=False, top_k=None, seed=0) -> Lorsa:
    cfg = LorsaConfig(d_model=12, n_qk_heads=2, d_qk_head=4, n_ov_heads=6, top_k=top_k or 6, activation=activation,
                      rotary=rotary, rotary_dim=4 if rotary else None, rotary_adjacent_pairs=adjacent)
    lorsa = Lorsa(cfg, seed=seed)
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 1)
        for p in (lorsa.b_Q, lorsa.b_K, lorsa.b_V, lorsa.b_D):
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return lorsa


@pytest.mark.parametrize("activation,adjacent", [("signed", False), ("relu", True), ("relu", False)])
def test_dense_limit_equals_formula(activation, adjacent):
    lorsa = _small_lorsa(activation, adjacent=adjacent)
    x = torch.randn(2, 7, 12, generator=torch.Generator().manual_seed(3))
    ref = _reference_z_pre(lorsa, x)
    assert torch.allclose(lorsa.encode_pre(x).double(), ref, atol=1e-5)
    z_dense = ref.clamp_min(0) if activation == "relu" else ref
    y_ref = z_dense @ lorsa.W_O.double() + lorsa.b_D.double()
    assert torch.allclose(lorsa(x).double(), y_ref, atol=1e-5)  # top_k == n_ov


def test_topk_keeps_largest_scaled_heads():
    lorsa = _small_lorsa("signed", top_k=2)
    x = torch.randn(1, 5, 12, generator=torch.Generator().manual_seed(4))
    z_pre, z = lorsa.encode_pre(x), lorsa.encode(x)
    norms = lorsa.W_O.norm(dim=-1)
    for t in range(5):
        order = sorted(range(6), key=lambda i: -abs(z_pre[0, t, i].item()) * norms[i].item())
        kept = {i for i in range(6) if z[0, t, i] != 0}
        assert kept == set(order[:2])
        assert torch.equal(z[0, t, order[:2]], z_pre[0, t, order[:2]])  # signs kept


def test_relu_topk_gradient_only_through_kept():
    lorsa = _small_lorsa("relu", top_k=2)
    x = torch.randn(1, 5, 12, generator=torch.Generator().manual_seed(5))
    z = lorsa.encode(x)
    assert (z >= 0).all() and ((z != 0).sum(-1) <= 2).all()
    lorsa.W_O.grad = None
    lorsa.decode(z).sum().backward()
    never = (z == 0).all(dim=(0, 1))
    assert torch.all(lorsa.W_V.grad[never] == 0)


def test_ov_permutation_invariance():
    torch.manual_seed(0)
    cfg = LorsaConfig(d_model=16, n_qk_heads=3, d_qk_head=4, n_ov_heads=12, top_k=5, rotary=True, rotary_dim=4)
    lorsa = Lorsa(cfg, seed=3)
    x = torch.randn(2, 9, 16)
    G = cfg.group_size
    # Permute QK heads together with their groups, and OV heads within each group.
    qk_perm = torch.tensor([2, 0, 1])
    perm = torch.cat([qk_perm[g] * G + torch.randperm(G) for g in range(3)])
    other = Lorsa(cfg, seed=None)
    with torch.no_grad():
        for name in ("W_Q", "W_K", "b_Q", "b_K"):
            getattr(other, name).copy_(getattr(lorsa, name)[qk_perm])
        for name in ("W_V", "b_V", "W_O"):
            getattr(other, name).copy_(getattr(lorsa, name)[perm])
        other.b_D.copy_(lorsa.b_D)
    assert torch.allclose(other.encode(x), lorsa.encode(x)[..., perm], atol=1e-6)
    assert torch.allclose(other(x), lorsa(x), atol=1e-5)


def test_z_pattern_rows_sum_to_activation():
    lorsa = _small_lorsa("relu")
    x = torch.randn(2, 8, 12, generator=torch.Generator().manual_seed(6))
    z_pre = lorsa.encode_pre(x)
    for head in range(6):
        zp = lorsa.z_pattern(x, head)
        assert torch.allclose(zp.sum(-1), z_pre[..., head], atol=1e-5)
        assert torch.all(zp.triu(diagonal=1) == 0)  # causal: nothing read from the future


def test_query_chunking_matches():
    lorsa = _small_lorsa("relu")
    x = torch.randn(2, 23, 12, generator=torch.Generator().manual_seed(7))
    lorsa.cfg.query_chunk_size = 0
    full = lorsa.encode_pre(x)
    for chunk in (5, 22, None):
        lorsa.cfg.query_chunk_size = chunk
        assert torch.allclose(lorsa.encode_pre(x), full, atol=1e-6)


def test_fold_normalisation_and_save_load(tmp_path):
    lorsa = _small_lorsa("relu", top_k=3)
    x = torch.randn(2, 9, 12, generator=torch.Generator().manual_seed(8))
    s_in, s_out = 2.5, 0.4
    expected = lorsa(x * s_in) / s_out  # the module trained on scaled data, mapped back by hand
    folded = fold_normalisation(lorsa, s_in, s_out)
    assert torch.allclose(folded(x), expected, atol=1e-5)
    folded.save(tmp_path / "l")
    meta = json.loads((tmp_path / "l" / "config.json").read_text())
    assert "folded" in meta["acts_on"]
    loaded = Lorsa.load(tmp_path / "l")
    assert torch.equal(loaded(x), folded(x))


# ----------------------------------------------------------------------------- bad input
def test_bad_configs():
    with pytest.raises(LorsaConfigError, match="not divisible"):
        LorsaConfig(d_model=8, n_qk_heads=3, d_qk_head=4, n_ov_heads=16, top_k=2)
    with pytest.raises(LorsaConfigError, match="larger than n_ov_heads"):
        LorsaConfig(d_model=8, n_qk_heads=2, d_qk_head=4, n_ov_heads=16, top_k=17)
    with pytest.raises(LorsaConfigError, match="activation"):
        LorsaConfig(d_model=8, n_qk_heads=2, d_qk_head=4, n_ov_heads=16, top_k=2, activation="gelu")
    model = _config_model()
    with pytest.raises(LorsaConfigError, match="out of range"):
        LorsaConfig.from_model(model, 5)
    with pytest.raises(ValueError, match="d_model=12"):
        _small_lorsa()(torch.randn(1, 4, 13))
    with pytest.raises(IndexError, match="out of range"):
        _small_lorsa().z_pattern(torch.randn(1, 4, 12), 99)


def test_unsupported_attention_named():
    model = _config_model(positional_embedding_type="shortformer")
    with pytest.raises(UnsupportedModelError, match="shortformer"):
        LorsaConfig.from_model(model, 0)
    model = _config_model(positional_embedding_type="rotary", rotary_dim=8, attn_scores_soft_cap=30.0)
    with pytest.raises(UnsupportedModelError, match="soft_cap"):
        LorsaConfig.from_model(model, 0)


def test_bad_saves(tmp_path):
    lorsa = _small_lorsa()
    lorsa.save(tmp_path / "ok")
    with pytest.raises(LorsaLoadError, match="missing weights.safetensors"):
        (tmp_path / "partial").mkdir()
        (tmp_path / "partial" / "config.json").write_text((tmp_path / "ok" / "config.json").read_text())
        Lorsa.load(tmp_path / "partial")
    raw = (tmp_path / "ok" / "weights.safetensors").read_bytes()
    (tmp_path / "ok" / "weights.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(LorsaLoadError, match="corrupt or truncated"):
        Lorsa.load(tmp_path / "ok")
    other = _config_model()
    with pytest.raises(LorsaConfigError, match="d_model=12"):
        lorsa.check_host(other)
