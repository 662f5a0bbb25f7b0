"""Bad input to Lorsa (configs, training, evaluation, analysis, saved Lorsas and checkpoints) is a clear
error; degenerate evaluations are errors, not perfect scores; a bad checkpoint changes nothing."""

from __future__ import annotations

import functools
import json
import re

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from interp.core.checkpoint import CheckpointError, CheckpointMismatchError
from interp.core.errors import CoreConfigError, InterpConfigError
from interp.core.tokens import ContextLengthError
from interp.lorsa import (Lorsa, LorsaConfig, LorsaConfigError, LorsaLoadError, LorsaTrainConfig, evaluate_lorsa,
                          head_scores, ov_readout, top_contexts, train_lorsa)
from interp.lorsa.analyze import context_z_pattern, head_loss_attribution

MODEL_CFG = dict(n_layers=2, d_model=16, n_heads=2, d_head=8, n_ctx=32, d_vocab=48, act_fn="gelu",
                 normalization_type="RMS", positional_embedding_type="rotary", rotary_dim=8, seed=0)
BOS = 1


@functools.cache
def model() -> HookedTransformer:
    m = HookedTransformer(HookedTransformerConfig(**MODEL_CFG)).eval()
    m.tokenizer = None
    return m


def tokens(n=16, ctx=16) -> torch.Tensor:
    t = torch.randint(2, 48, (n, ctx), generator=torch.Generator().manual_seed(0))
    t[:, 0] = BOS
    return t


def cfg(**kw) -> LorsaConfig:
    base = dict(d_model=16, n_qk_heads=2, d_qk_head=8, n_ov_heads=32, top_k=4, rotary=True, rotary_dim=8,
                layer=1, hook_in="blocks.1.ln1.hook_normalized", hook_out="blocks.1.hook_attn_out")
    return LorsaConfig(**{**base, **kw})


def tcfg(**kw) -> LorsaTrainConfig:
    base = dict(batch_size=4, n_steps=3, lr=3e-3, buffer_sequences=8, log_every=1, progress=False,
                norm_sequences=4, bos_token_id=BOS)
    return LorsaTrainConfig(**{**base, **kw})


@functools.cache
def lorsa() -> Lorsa:
    return Lorsa(cfg())


LORSA_CONFIG_CASES = [
    (dict(d_model=0), "LorsaConfig.d_model=0 is invalid: it must be an integer >= 1"),
    (dict(top_k=-2), "top_k=-2"),
    (dict(n_ov_heads=2.5), "n_ov_heads=2.5"),
    (dict(n_ov_heads=31), "not divisible by n_qk_heads=2"),
    (dict(top_k=64), "top_k=64 is larger than n_ov_heads=32"),
    (dict(activation="gelu"), "activation='gelu'"),
    (dict(rotary="yes"), "rotary='yes'"),
    (dict(rotary_dim=5), "rotary_dim=5 must be even"),
    (dict(rotary_base=float("nan")), "rotary_base=nan"),
    (dict(rotary_scaling_factor=0.0), "rotary_scaling_factor=0.0"),
    (dict(qk_norm_eps=-1e-6), "qk_norm_eps=-1e-06"),
    (dict(attn_scale=float("inf")), "attn_scale=inf"),
    (dict(layer=-1), "layer=-1"),
    (dict(hook_in=""), "hook_in=''"),
    (dict(hook_out=None), "set together with the other hook"),
    (dict(layer=0), "a hook of layer 0"),
    (dict(query_chunk_size=-4), "query_chunk_size=-4"),
]


@pytest.mark.parametrize("kwargs, fragment", LORSA_CONFIG_CASES)
def test_lorsa_config_fields(kwargs, fragment):
    with pytest.raises(LorsaConfigError, match=re.escape(fragment)):
        cfg(**kwargs)


TRAIN_CONFIG_CASES = [
    (dict(n_steps=-5), "LorsaTrainConfig.n_steps=-5 is invalid: it must be None or an integer >= 1"),
    (dict(n_steps=0), "n_steps=0"),
    (dict(batch_size=0), "batch_size=0"),
    (dict(lr=float("nan")), "lr=nan"),
    (dict(lr=-1e-3), "lr=-0.001"),
    (dict(betas=(1.2, 0.9)), "betas=(1.2, 0.9)"),
    (dict(betas=0.9), "betas=0.9"),
    (dict(warmup_frac=2.0), "warmup_frac=2.0"),
    (dict(warmup_frac=0.6, cooldown_frac=0.6), "at most 1 - warmup_frac"),
    (dict(k_anneal_frac=0.5), "k_start=None"),
    (dict(k_start=0), "k_start=0"),
    (dict(init="zeros"), "init='zeros'"),
    (dict(decoder_scales=()), "decoder_scales=()"),
    (dict(decoder_scales=(1.0, -2.0)), "decoder_scales=(1.0, -2.0)"),
    (dict(aux_coef=-1.0), "aux_coef=-1.0"),
    (dict(aux_k=0), "aux_k=0"),
    (dict(dead_after_tokens=0), "dead_after_tokens=0"),
    (dict(grad_clip=0.0), "grad_clip=0.0"),
    (dict(seed=-3), "seed=-3"),
    (dict(buffer_sequences=0), "buffer_sequences=0"),
    (dict(model_batch_size=0), "model_batch_size=0"),
    (dict(norm_sequences=0), "norm_sequences=0"),
    (dict(pad_token_id=-1), "pad_token_id=-1"),
    (dict(bos_token_id=1.0), "bos_token_id=1.0"),
    (dict(checkpoint_dir=""), "checkpoint_dir=''"),
    (dict(checkpoint_every=0), "checkpoint_every=0"),
    (dict(resume="no"), "resume='no'"),
    (dict(log_every=0), "log_every=0"),
    (dict(progress=1), "progress=1"),
]


@pytest.mark.parametrize("kwargs, fragment", TRAIN_CONFIG_CASES)
def test_lorsa_train_config_fields(kwargs, fragment):
    with pytest.raises(LorsaConfigError, match=re.escape(fragment)):
        tcfg(**kwargs)


CASES = [
    ("windows wider than the context", lambda: train_lorsa(model(), 1, tokens(8, 40), cfg(), tcfg()),
     ContextLengthError, "40 positions wide, more than the model's context of 32"),
    ("float tokens", lambda: train_lorsa(model(), 1, tokens().float(), cfg(), tcfg()), CoreConfigError,
     "must be an integer tensor"),
    ("ids outside the vocabulary", lambda: train_lorsa(model(), 1, tokens() + 40, cfg(), tcfg()), CoreConfigError,
     "outside the model's vocabulary 0..47"),
    ("layer beyond the model", lambda: train_lorsa(model(), 2, tokens(), None, tcfg()), LorsaConfigError,
     "layer=2 is out of range: this model has 2 layers"),
    ("hook name as the layer", lambda: train_lorsa(model(), "blocks.1", tokens(), None, tcfg()), LorsaConfigError,
     "layer='blocks.1' is out of range"),
    ("config of another layer", lambda: train_lorsa(model(), 0, tokens(), cfg(), tcfg()), LorsaConfigError,
     "train_lorsa(layer=0) but LorsaConfig.layer=1"),
    ("config of another width", lambda: train_lorsa(model(), 1, tokens(), cfg(d_model=8, n_ov_heads=16, top_k=2),
                                                    tcfg()), LorsaConfigError, "LorsaConfig.d_model=8"),
    ("more per batch than sequences", lambda: train_lorsa(model(), 1, tokens(2), cfg(), tcfg()), LorsaConfigError,
     "at most the 2 sequences given"),
    ("k_start above the heads", lambda: train_lorsa(model(), 1, tokens(), cfg(), tcfg(k_anneal_frac=0.5, k_start=99)),
     LorsaConfigError, "between top_k=4 and n_ov_heads=32"),
    ("aux_k above the heads", lambda: train_lorsa(model(), 1, tokens(), cfg(), tcfg(aux_k=64)), LorsaConfigError,
     "aux_k=64"),
    ("bos id outside the vocabulary", lambda: train_lorsa(model(), 1, tokens(), cfg(), tcfg(bos_token_id=48)),
     LorsaConfigError, "an id in 0..47"),
    ("train config as a dict", lambda: train_lorsa(model(), 1, tokens(), cfg(), {"lr": 1e-3}), LorsaConfigError,
     "a LorsaTrainConfig"),
    ("stop_after=0", lambda: train_lorsa(model(), 1, tokens(), cfg(), tcfg(), stop_after=0), LorsaConfigError,
     "stop_after=0"),
    # evaluation and analysis
    ("evaluate on windows too wide", lambda: evaluate_lorsa(model(), lorsa(), tokens(4, 33), progress=False),
     ContextLengthError, "33 positions wide"),
    ("evaluate batch_size=0", lambda: evaluate_lorsa(model(), lorsa(), tokens(), batch_size=0), LorsaConfigError,
     "batch_size=0"),
    ("evaluate dense_threshold=2", lambda: evaluate_lorsa(model(), lorsa(), tokens(), dense_threshold=2.0),
     LorsaConfigError, "dense_threshold=2.0"),
    ("evaluate on BOS only", lambda: evaluate_lorsa(model(), lorsa(), torch.full((4, 8), BOS), bos_token_id=BOS,
                                                   progress=False), LorsaConfigError, "Only 0 token(s) to evaluate"),
    ("evaluate on one token", lambda: evaluate_lorsa(model(), lorsa(), torch.tensor([[BOS, 5]]), bos_token_id=BOS,
                                                    progress=False), LorsaConfigError, "Only 1 token(s)"),
    ("evaluate a target without variance", lambda: evaluate_lorsa(
        model(), lorsa(), torch.tensor([[BOS] + [7] * 1, [BOS] + [7] * 1, [BOS, 7]]), bos_token_id=BOS,
        progress=False), LorsaConfigError, "has no variance"),
    ("evaluate something else", lambda: evaluate_lorsa(model(), "lorsa", tokens()), LorsaConfigError, "a Lorsa"),
    ("top contexts k=0", lambda: top_contexts(model(), lorsa(), tokens(), k=0), LorsaConfigError, "k=0"),
    ("top contexts on BOS only", lambda: top_contexts(model(), lorsa(), torch.full((2, 6), BOS), bos_token_id=BOS,
                                                      progress=False), LorsaConfigError, "No token to rank"),
    ("head scores half=1", lambda: head_scores(model(), lorsa(), half=1), LorsaConfigError, "half=1"),
    ("head scores n_random=0", lambda: head_scores(model(), lorsa(), n_random=0), LorsaConfigError, "n_random=0"),
    ("attribution windows too wide", lambda: head_loss_attribution(model(), lorsa(), tokens(2, 40), progress=False),
     ContextLengthError, "40 positions wide"),
    ("z-pattern position past the window", lambda: context_z_pattern(model(), lorsa(), tokens(), 0, 16, 0),
     LorsaConfigError, "pos=16"),
    ("z-pattern head out of range", lambda: context_z_pattern(model(), lorsa(), tokens(), 0, 3, 32),
     LorsaConfigError, "head=32"),
    ("readout head out of range", lambda: ov_readout(model(), lorsa(), 40), IndexError, "head=40 is out of range"),
    ("readout k=0", lambda: ov_readout(model(), lorsa(), 0, k=0), LorsaConfigError, "k=0"),
    ("from_model expansion=0", lambda: LorsaConfig.from_model(model(), 1, expansion=0), LorsaConfigError,
     "expansion=0"),
]


@pytest.mark.parametrize("case, call, error, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(case, call, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        call()


def test_training_does_not_write_into_the_callers_config():
    mine = LorsaConfig(d_model=16, n_qk_heads=2, d_qk_head=8, n_ov_heads=32, top_k=4, rotary=True, rotary_dim=8)
    before = mine.to_dict()
    res = train_lorsa(model(), 1, tokens(), mine, tcfg(n_steps=1))
    assert mine.to_dict() == before and res.lorsa.cfg.layer == 1
    assert repr(res).startswith("LorsaTrainResult(layer 1") and len(repr(res)) < 200
    assert "<table" in res._repr_html_()


def test_every_lorsa_error_is_an_interp_config_error():
    from interp.lorsa import UnsupportedModelError

    assert issubclass(LorsaConfigError, InterpConfigError) and issubclass(UnsupportedModelError, LorsaConfigError)


# ---------------------------------------------------------------------------------------- saved Lorsas
def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage, error, fragment", [
    (lambda d: (d / "config.json").unlink(), FileNotFoundError, "missing config.json"),
    (lambda d: (d / "weights.safetensors").unlink(), FileNotFoundError, "missing weights.safetensors"),
    (lambda d: (d / "config.json").write_text("{nope"), LorsaLoadError, "config.json is corrupt or not a Lorsa config"),
    (lambda d: _rewrite(d, top_k=-1), LorsaLoadError, "config.json is corrupt or not a Lorsa config"),
    (lambda d: _rewrite(d, n_ov_heads=64), LorsaLoadError, "does not match its config.json"),
    (lambda d: _truncate(d / "weights.safetensors"), LorsaLoadError, "weights.safetensors is corrupt or truncated"),
    (lambda d: _nan_weights(d), LorsaLoadError, "holds NaN or inf"),
])
def test_damaged_lorsa_files_name_the_file(tmp_path, damage, error, fragment):
    folder = lorsa().save(tmp_path / "l")
    damage(folder)
    with pytest.raises(error, match=re.escape(fragment)) as info:
        Lorsa.load(folder)
    assert isinstance(info.value, LorsaLoadError)


def _rewrite(folder, **fields):
    meta = json.loads((folder / "config.json").read_text())
    meta["config"].update(fields)
    (folder / "config.json").write_text(json.dumps(meta))


def _nan_weights(folder):
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "weights.safetensors"))
    state["W_O"] = state["W_O"] * float("nan")
    save_file(state, str(folder / "weights.safetensors"))


def test_a_lorsa_of_another_host_is_refused():
    other = HookedTransformer(HookedTransformerConfig(**{**MODEL_CFG, "d_model": 24, "d_head": 12, "rotary_dim": 12}))
    with pytest.raises(LorsaConfigError, match="d_model=16 but the model has d_model=24"):
        evaluate_lorsa(other, lorsa(), tokens(), progress=False)
    no_norm = HookedTransformer(HookedTransformerConfig(**{**MODEL_CFG, "normalization_type": None}))
    with pytest.raises(LorsaConfigError, match="which the model does not have"):
        evaluate_lorsa(no_norm, lorsa(), tokens(), progress=False)


# ---------------------------------------------------------------------------------------- checkpoints
def test_resuming_with_other_tokens_is_refused(tmp_path):
    ck = str(tmp_path / "ck")
    train_lorsa(model(), 1, tokens(), cfg(), tcfg(n_steps=4, checkpoint_dir=ck, checkpoint_every=2), stop_after=2)
    other = tokens()
    other[:, 5] = 9
    with pytest.raises(CheckpointMismatchError, match="was written for other tokens"):
        train_lorsa(model(), 1, other, cfg(), tcfg(n_steps=4, checkpoint_dir=ck, checkpoint_every=2))
    # the same tokens resume
    train_lorsa(model(), 1, tokens(), cfg(), tcfg(n_steps=4, checkpoint_dir=ck, checkpoint_every=2))


def test_config_mismatch_on_resume_lists_only_the_differing_keys(tmp_path):
    ck = str(tmp_path / "ck")
    train_lorsa(model(), 1, tokens(), cfg(), tcfg(n_steps=4, checkpoint_dir=ck), stop_after=2)
    with pytest.raises(CheckpointMismatchError) as info:
        train_lorsa(model(), 1, tokens(), cfg(), tcfg(n_steps=4, lr=1e-2, checkpoint_dir=ck))
    message = str(info.value)
    assert "lr: saved 0.003, now 0.01" in message
    assert "buffer_sequences" not in message and len(message) < 300


def test_a_damaged_optimizer_state_is_refused_before_anything_is_restored(tmp_path):
    from safetensors.torch import load_file, save_file

    ck = tmp_path / "ck"
    train_lorsa(model(), 1, tokens(), cfg(), tcfg(n_steps=4, checkpoint_dir=str(ck)), stop_after=2)
    path = ck / "latest" / "optimizer.safetensors"
    state = load_file(str(path))
    key = next(k for k in state if k.startswith("opt.") and state[k].ndim)
    state[key] = torch.zeros(3)
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match="has shape \\(3,\\)"):
        train_lorsa(model(), 1, tokens(), cfg(), tcfg(n_steps=4, checkpoint_dir=str(ck)))
