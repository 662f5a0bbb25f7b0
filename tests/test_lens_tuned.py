"""Tuned lens: identity at initialisation, training makes it more faithful than the logit lens on
held-out tokens, the output layer is untouched, and save/load round-trips."""

from __future__ import annotations

import pytest
import torch
from interp.lens import TunedLens, TunedLensConfig, attached_lens, decode_layers, kl_by_layer

from tiny_models import hooked, lens_model


@pytest.fixture(scope="module")
def model():
    return lens_model(3, vocab=61)


@pytest.fixture(scope="module")
def data():
    # a token stream with structure (a noisy repeating cycle) so later layers have something to add
    g = torch.Generator().manual_seed(0)
    base = torch.arange(24) % 61
    rows = [(base + int(torch.randint(0, 61, (1,), generator=g))) % 61 for _ in range(80)]
    return torch.stack(rows)


def test_fresh_lens_is_the_logit_lens(model, data):
    lens = TunedLens.for_model(model)
    plain = decode_layers(model, data[:4], k=5, positions="all")
    tuned = decode_layers(model, data[:4], k=5, positions="all", lens=lens)
    assert torch.equal(plain.top_ids, tuned.top_ids)
    torch.testing.assert_close(plain.top_logprobs, tuned.top_logprobs, atol=1e-6, rtol=0)


def test_training_beats_logit_lens_on_held_out_tokens(model, data, one_thread):
    train, held = data[:60], data[60:]
    lens = TunedLens.train(model, train, TunedLensConfig(steps=120, batch_size=8, lr=3e-3), progress=False)
    logit_kl = kl_by_layer(model, held)
    tuned_kl = lens.kl_by_layer(model, held)
    assert tuned_kl.sum() < 0.8 * logit_kl.sum(), (tuned_kl, logit_kl)
    assert lens.history[-1] < lens.history[0]
    # the model was frozen during training and its gradients are back on
    assert all(p.requires_grad for p in model.parameters())
    # lens="tuned" now finds it; the output layer still equals the model's logits
    assert attached_lens(model) is lens
    res = decode_layers(model, held[:3], lens="tuned", k=4)
    with torch.no_grad():
        logits = model(held[:3])[:, -1]
    assert torch.equal(res.top_ids[:, -1, 0], logits.topk(4).indices)
    assert res.lens == "tuned"


def test_save_load_roundtrip(model, data, tmp_path, one_thread):
    lens = TunedLens.train(model, data, TunedLensConfig(steps=5), progress=False, attach=False)
    lens.save(tmp_path / "lens")
    assert sorted(p.name for p in (tmp_path / "lens").iterdir()) == ["tuned_lens.json", "tuned_lens.safetensors"]
    back = TunedLens.load(tmp_path / "lens", model)
    assert torch.equal(back.weight, lens.weight) and torch.equal(back.bias, lens.bias)
    a = decode_layers(model, data[:2], lens=lens)
    b = decode_layers(model, data[:2], lens=back)
    assert torch.equal(a.top_ids, b.top_ids)


def test_wrong_model_and_missing_files(model, tmp_path):
    other = hooked(n_ctx=8, d_head=4, n_heads=4, d_vocab=61)
    lens = TunedLens.for_model(model)
    with pytest.raises(ValueError, match="was made for n_layers=3"):
        decode_layers(other, torch.zeros(1, 4, dtype=torch.long), lens=lens)
    with pytest.raises(FileNotFoundError, match="not a saved tuned lens"):
        TunedLens.load(tmp_path)
    with pytest.raises(ValueError, match="token tensor"):
        TunedLens.train(model, [], progress=False)
