"""The tuned lens's default recipe and its loss: the defaults are the documented ones, the hand-written
KL and its gradient equal plain autograd through log_softmax (chunked, soft-capped, bf16 within its
rounding), the schedule and optimizer are tuned-lens's, and default training beats the logit lens on
held-out tokens of a small model."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from interp.lens import TunedLens, TunedLensConfig, kl_by_layer
from interp.lens.kl import _kl_per_layer, _residuals_and_final
from interp.lens.tuned import _lr_factor, _optimizer, batch_order

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def model():
    cfg = HookedTransformerConfig(n_layers=3, d_model=32, n_ctx=32, d_head=8, n_heads=4, d_mlp=64, d_vocab=61,
                                  act_fn="gelu", normalization_type="LN", seed=3, device="cpu")
    m = HookedTransformer(cfg)
    m.eval()
    return m


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    base = torch.arange(24) % 61
    return torch.stack([(base + int(torch.randint(0, 61, (1,), generator=g))) % 61 for _ in range(80)])


def test_defaults_are_the_documented_recipe():
    cfg = TunedLensConfig()
    assert asdict(cfg) == dict(steps=250, batch_size=8, optimizer="sgd", lr=2.0, momentum=0.9, weight_decay=1e-3,
                               warmup_steps=0, schedule="linear", clip_grad_norm=1.0, loss_precision="auto", seed=0,
                               vocab_chunk_rows=4096)
    # the README states the same recipe, in the words recipe() writes
    assert cfg.recipe() in README.read_text(), cfg.recipe()


def _naive_kl(model, lens, resid, final_lp, cap=0.0):
    x = resid.transpose(0, 1)
    h = x + torch.einsum("nrd,nde->nre", x, lens.weight) + lens.bias[:, None]
    logits = model.unembed(model.ln_final(h))
    if cap:
        logits = cap * torch.tanh(logits / cap)
    lp = logits.log_softmax(-1)
    return torch.nn.functional.kl_div(lp, final_lp[None].expand_as(lp), log_target=True, reduction="none").sum(-1).mean(-1)


@pytest.mark.parametrize("cap", [0.0, 3.0])
def test_kl_and_gradient_equal_autograd_through_log_softmax(model, data, cap, one_thread):
    for p in model.parameters():
        p.requires_grad_(False)
    lens = TunedLens.for_model(model)
    with torch.no_grad():
        lens.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
        lens.bias.normal_(0, 0.1, generator=torch.Generator().manual_seed(2))
    old_cap = model.cfg.output_logits_soft_cap
    model.cfg.output_logits_soft_cap = cap  # the model's own forward soft-caps its logits too
    try:
        with torch.no_grad():
            resid, final_lp = _residuals_and_final(model, data[:4])
        ref = _naive_kl(model, lens, resid, final_lp, cap)
        ref.sum().backward()
        gw, gb = lens.weight.grad.clone(), lens.bias.grad.clone()
        lens.zero_grad()
        got = _kl_per_layer(model, lens, resid, final_lp, rows_chunk=7, backward=True)  # 96 rows in 14 chunks
        torch.testing.assert_close(got, ref.detach(), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(lens.weight.grad, gw, atol=1e-7, rtol=1e-5)
        torch.testing.assert_close(lens.bias.grad, gb, atol=1e-7, rtol=1e-5)
        # bf16 matmuls (as tuned-lens's autocast): the same numbers to bf16 rounding
        lens.zero_grad()
        got16 = _kl_per_layer(model, lens, resid, final_lp, rows_chunk=7, backward=True,
                              W_mm=model.unembed.W_U.bfloat16())
        torch.testing.assert_close(got16, ref.detach(), atol=2e-3, rtol=1e-2)
        assert (lens.weight.grad - gw).norm() < 0.02 * gw.norm()
        # held-out evaluation is the same function without the gradient
        with torch.no_grad():
            torch.testing.assert_close(kl_by_layer(model, data[:4], lens), ref.detach(), atol=1e-6, rtol=1e-5)
    finally:
        model.cfg.output_logits_soft_cap = old_cap
        lens.zero_grad()


def test_schedule_and_optimizer_are_tuned_lens_s():
    cfg = TunedLensConfig(steps=10)
    f = _lr_factor(cfg)
    # transformers' get_linear_schedule_with_warmup(opt, 0, steps), stepped after every update
    assert [f(s) for s in range(10)] == pytest.approx([(10 - s) / 10 for s in range(10)])
    warm = _lr_factor(TunedLensConfig(steps=10, warmup_steps=4))
    assert [warm(s) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert warm(9) == pytest.approx(1 / 6)
    assert _lr_factor(TunedLensConfig(steps=10, schedule="constant"))(7) == 1.0
    lens = TunedLens(2, 4)
    opt = _optimizer(lens, cfg)
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD) and group["nesterov"] and group["momentum"] == 0.9
    assert group["lr"] == pytest.approx(2.0 * (1 - 0.9)) and group["weight_decay"] == 1e-3
    adam = _optimizer(lens, TunedLensConfig(optimizer="adam", lr=1e-2))
    assert isinstance(adam, torch.optim.AdamW) and adam.param_groups[0]["lr"] == 1e-2


def test_default_training_beats_the_logit_lens_at_every_layer(model, data, one_thread):
    train, held = data[:60], data[60:]
    logit = kl_by_layer(model, held)
    lens = TunedLens.train(model, train, TunedLensConfig(steps=60), progress=False, attach=False)
    tuned = lens.kl_by_layer(model, held)
    # measured: about 0.4 of the logit lens's KL at every layer after 60 steps
    assert bool((tuned < 0.6 * logit).all()), (tuned, logit)
    assert lens.history[-1] < 0.6 * lens.history[0]
    assert lens.train_config == asdict(TunedLensConfig(steps=60))


def test_batch_order_is_the_training_order():
    order = batch_order(100, 5, 8, seed=3)
    assert order.shape == (5, 8) and int(order.min()) >= 0 and int(order.max()) < 100
    assert torch.equal(order, batch_order(100, 5, 8, seed=3))
    assert batch_order(3, 2, 8).shape == (2, 3) and batch_order(10, 0, 4).shape == (0, 4)


@pytest.mark.parametrize("kwargs, match", [
    (dict(optimizer="lbfgs"), "TunedLensConfig.optimizer='lbfgs'"),
    (dict(schedule="cosine"), "TunedLensConfig.schedule='cosine'"),
    (dict(loss_precision="fp8"), "TunedLensConfig.loss_precision='fp8'"),
    (dict(lr=0.0), "TunedLensConfig.lr=0.0"),
    (dict(momentum=1.0), "TunedLensConfig.momentum=1.0"),
    (dict(clip_grad_norm=0.0), "TunedLensConfig.clip_grad_norm=0.0"),
    (dict(batch_size=0), "TunedLensConfig.batch_size=0"),
    (dict(warmup_steps=-1), "TunedLensConfig.warmup_steps=-1"),
])
def test_bad_config_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TunedLensConfig(**kwargs)
