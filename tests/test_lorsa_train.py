"""Lorsa training: it learns, checkpoint/resume is exact, 2-process gloo equals one process,
evaluation numbers agree with a brute-force recomputation, corrupt checkpoints are refused."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformer_lens import HookedTransformer

from interp.lorsa import CheckpointError, LorsaConfig, LorsaTrainConfig, evaluate_lorsa, train_lorsa
from interp.lorsa.train import k_at, lr_at

from tiny_models import bos_tokens, rotary_model

ROOT = Path(__file__).resolve().parent.parent


def _model() -> HookedTransformer:
    return rotary_model(0)  # 2 layers, d_model 16, RMS, rotary; d_vocab 48


def _tokens(n=48, ctx=16) -> torch.Tensor:
    return bos_tokens(n, ctx, vocab=48)


def _cfgs(**train_kw):
    lc = LorsaConfig(d_model=16, n_qk_heads=2, d_qk_head=8, n_ov_heads=32, top_k=4, rotary=True, rotary_dim=8,
                     layer=1, hook_in="blocks.1.ln1.hook_normalized", hook_out="blocks.1.hook_attn_out")
    kw = dict(batch_size=4, n_steps=12, lr=3e-3, buffer_sequences=16, log_every=1, progress=False,
              dead_after_tokens=60, norm_sequences=8, bos_token_id=1)
    kw.update(train_kw)
    return lc, LorsaTrainConfig(**kw)


@pytest.fixture(scope="module")
def model():
    m = _model()
    m.tokenizer = None
    return m


def test_schedule_shapes():
    tc = LorsaTrainConfig(lr=1.0, warmup_frac=0.1, cooldown_frac=0.2, k_anneal_frac=0.5, k_start=40)
    lrs = [lr_at(s, 100, tc) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == 1.0 and lrs[50] == 1.0
    assert lrs[80] == pytest.approx(1.0) and lrs[99] == pytest.approx(0.05)
    assert all(a >= b for a, b in zip(lrs[80:], lrs[81:]))
    ks = [k_at(s, 100, 8, tc) for s in range(100)]
    assert ks[0] == 40 and ks[50] == 8 and all(a >= b for a, b in zip(ks, ks[1:]))


def test_training_reduces_error(model):
    lc, tc = _cfgs(n_steps=30)
    res = train_lorsa(model, 1, _tokens(), lc, tc)
    first, last = res.log[0]["fvu"], res.log[-1]["fvu"]
    assert last < 0.8 * first
    assert res.tokens_seen == 30 * 4 * 15  # BOS excluded from the loss


def test_checkpoint_resume_is_exact(model, tmp_path):
    lc, tc = _cfgs()
    full = train_lorsa(model, 1, _tokens(), lc, tc).lorsa
    lc, tc = _cfgs(checkpoint_dir=str(tmp_path / "ck"), checkpoint_every=5)
    part = train_lorsa(model, 1, _tokens(), lc, tc, stop_after=7)
    assert (tmp_path / "ck" / "latest" / "state.json").is_file()
    assert not torch.equal(part.lorsa.W_O, full.W_O)
    lc, tc = _cfgs(checkpoint_dir=str(tmp_path / "ck"), checkpoint_every=5)
    resumed = train_lorsa(model, 1, _tokens(), lc, tc).lorsa
    for name, p in full.named_parameters():
        assert torch.equal(p, getattr(resumed, name)), name


def test_bad_checkpoints(model, tmp_path):
    lc, tc = _cfgs(checkpoint_dir=str(tmp_path / "ck"), checkpoint_every=2)
    train_lorsa(model, 1, _tokens(), lc, tc, stop_after=2)
    lc2, tc2 = _cfgs(checkpoint_dir=str(tmp_path / "ck"), lr=1e-2)
    with pytest.raises(CheckpointError, match="different run"):
        train_lorsa(model, 1, _tokens(), lc2, tc2)
    f = tmp_path / "ck" / "latest" / "optimizer.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        train_lorsa(model, 1, _tokens(), lc, tc)
    f.unlink()
    with pytest.raises(CheckpointError, match="partial"):
        train_lorsa(model, 1, _tokens(), lc, tc)


def test_evaluate_matches_brute_force(model):
    lc, tc = _cfgs(n_steps=10)
    lorsa = train_lorsa(model, 1, _tokens(), lc, tc).lorsa
    toks = _tokens(8)
    ev = evaluate_lorsa(model, lorsa, toks, batch_size=3, progress=False, bos_token_id=1)
    with torch.no_grad():
        _, cache = model.run_with_cache(toks)
        x, y = cache["blocks.1.ln1.hook_normalized"], cache["blocks.1.hook_attn_out"]
        keep = toks != 1
        y_hat = lorsa(x)
        yk, yhk = y[keep].double(), y_hat[keep].double()
        ev_ref = 1 - (yhk - yk).pow(2).sum() / (yk - yk.mean(0)).pow(2).sum()
        assert ev.explained_variance == pytest.approx(ev_ref.item(), abs=1e-5)
        assert ev.l0 == pytest.approx((lorsa.encode(x)[keep] != 0).sum(-1).double().mean().item())

        def loss_with(replacement):
            def hook(act, hook):
                return torch.where(keep.unsqueeze(-1), replacement, act)
            return model.run_with_hooks(toks, return_type="loss", fwd_hooks=[("blocks.1.hook_attn_out", hook)]).item()

        clean = model(toks, return_type="loss").item()
        spliced, ablated = loss_with(y_hat), loss_with(torch.zeros_like(y))
    assert ev.clean_loss == pytest.approx(clean, abs=1e-5)
    assert ev.spliced_loss == pytest.approx(spliced, abs=1e-5)
    assert ev.ablated_loss == pytest.approx(ablated, abs=1e-5)
    assert ev.loss_recovered == pytest.approx((ablated - spliced) / (ablated - clean), abs=1e-4)
    assert ev.dead_heads == int((ev.head_frequency == 0).sum())
    assert "LorsaEval" in ev._repr_html_() and len(ev.to_frame()) == 1


WORKER = textwrap.dedent(
    """
    import sys, torch
    import torch.distributed as dist
    from safetensors.torch import save_file
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    from test_lorsa_train import _model, _tokens, _cfgs
    from interp.lorsa import train_lorsa
    torch.set_num_threads(1)
    model = _model(); model.tokenizer = None
    lc, tc = _cfgs()
    lorsa = train_lorsa(model, 1, _tokens(), lc, tc).lorsa
    save_file({{k: v.contiguous() for k, v in lorsa.state_dict().items()}}, {out!r} + f"/rank{{dist.get_rank()}}.safetensors")
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_two_gloo_ranks_match_single_process(model, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(root=str(ROOT), tests=str(ROOT / "tests"), out=str(tmp_path)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    lc, tc = _cfgs()
    single = train_lorsa(model, 1, _tokens(), lc, tc).lorsa.state_dict()
    for name in single:
        assert torch.equal(r0[name], r1[name]), f"ranks disagree on {name}"
        assert torch.allclose(r0[name], single[name], atol=1e-5, rtol=1e-4), name
