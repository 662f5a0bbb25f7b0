"""Offline SAE training through sae-lens (saved in its own format) and the SAE quality evaluator."""

from __future__ import annotations

import pytest
import torch
from sae_lens import SAE, StandardSAE, StandardSAEConfig
from sae_lens.saes.sae import SAEMetadata

from interp.steering.saes import HookError
from interp.steering.sae_training import SAETrainConfig, evaluate_sae, train_saes

from tiny_models import BOS, D_MODEL, bos_tokens, tiny_llama_with_tokenizer

HOOK = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def model():
    return tiny_llama_with_tokenizer()


def _tokens(n=48, ctx=24, seed=0):
    return bos_tokens(n, ctx, vocab=38, seed=seed, bos=BOS, low=3)


def _linear_sae(w_enc, w_dec):
    sae = StandardSAE(StandardSAEConfig(d_in=D_MODEL, d_sae=w_enc.shape[1], metadata=SAEMetadata(hook_name=HOOK)))
    with torch.no_grad():
        sae.W_enc.copy_(w_enc)
        sae.W_dec.copy_(w_dec)
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def test_evaluator_limits_perfect_and_zero_sae(model):
    eye = torch.eye(D_MODEL)
    perfect = _linear_sae(torch.cat([eye, -eye], 1), torch.cat([eye, -eye], 0))  # relu(x) - relu(-x) = x
    q = evaluate_sae(model, perfect, _tokens())
    assert q.explained_variance == pytest.approx(1.0, abs=1e-5)
    assert q.ce_spliced == pytest.approx(q.ce_clean, abs=1e-4) and q.loss_recovered == pytest.approx(1.0, abs=1e-3)
    assert q.l0 == pytest.approx(D_MODEL, abs=0.01) and q.dead_fraction == 0.0
    zero = _linear_sae(torch.cat([eye, -eye], 1), torch.zeros(2 * D_MODEL, D_MODEL))
    z = evaluate_sae(model, zero, _tokens())
    assert z.ce_spliced == pytest.approx(z.ce_zero_ablation, abs=1e-5) and z.loss_recovered == pytest.approx(0.0, abs=1e-5)
    assert z.n_tokens == 48 * 23


def test_train_saes_offline_saves_sae_lens_format(model, tmp_path):
    cfg = SAETrainConfig(d_sae=64, k=4, training_tokens=6_000, train_batch_size_tokens=256, store_batch_size_prompts=8,
                         n_batches_in_buffer=4, lr_warm_up_steps=2)
    saes = train_saes(model, _tokens(), [HOOK], cfg, out_root=tmp_path, eval_tokens=_tokens(8, seed=1), progress=False)
    folder = tmp_path / HOOK
    assert (folder / "cfg.json").is_file() and (folder / "sae_weights.safetensors").is_file()
    assert (folder / "quality.json").is_file()
    loaded = SAE.load_from_disk(str(folder))
    assert loaded.cfg.metadata.hook_name == HOOK and loaded.cfg.d_in == D_MODEL and loaded.cfg.d_sae == 64
    torch.testing.assert_close(loaded.W_dec, saes[HOOK].W_dec)
    x = torch.randn(5, D_MODEL)
    assert ((loaded.encode(x) > 0).sum(-1) <= 4).all()  # TopK k=4


def test_training_unknown_hook_is_clear(model):
    with pytest.raises(HookError, match="no hook named 'blocks.7.hook_resid_post'"):
        train_saes(model, _tokens(), ["blocks.7.hook_resid_post"], progress=False)
