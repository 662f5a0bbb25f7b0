"""Bad input to CorrSteer (configs, collection, steering, evaluation, SAE training and evaluation, saved SAEs
and reports) is a clear error, found before any generation where it can be."""

from __future__ import annotations

import functools
import json
import re
import shutil

import numpy as np
import pytest
import torch

from interp.core.errors import CoreConfigError, InterpConfigError
from interp.core.tasks import Example, ExactMatchTask
from interp.core.tokens import ContextLengthError
from interp.steering import (CorrSteerConfig, HookError, SteeringReport, SteeringVector, bootstrap_ci, collect,
                             compare_generations, evaluate_vectors, random_features, run_corrsteer, scale_sweep,
                             select_features, steer)
from interp.steering.errors import SteeringConfigError, SteeringLoadError
from interp.steering.features import logit_readout
from interp.steering.saes import check_hooks
from interp.steering.sae_training import SAETrainConfig, evaluate_sae, load_saes, train_sae
from test_steering_fixtures import make_sae, random_prompts, tiny_llama_with_tokenizer

HOOK = "blocks.1.hook_resid_post"


@functools.cache
def tiny():
    return tiny_llama_with_tokenizer()


@functools.cache
def sae():
    return make_sae(HOOK, d_sae=8)


def task(n=12, prompt_words=3):
    prompts = random_prompts(n, seed=1, lo=prompt_words, hi=prompt_words + 1)
    return ExactMatchTask("words", [Example(p, "the") for p in prompts], max_new_tokens=2)


def vector(**kw):
    return SteeringVector(HOOK, torch.ones(32), 1.0, **kw)


CONFIG_CASES = [
    (dict(pooling="median"), "CorrSteerConfig.pooling='median' is invalid"),
    (dict(max_new_tokens=0), "max_new_tokens=0"),
    (dict(batch_size=0), "batch_size=0"),
    (dict(scale=float("nan")), "scale=nan"),
    (dict(scale=float("inf")), "scale=inf"),
    (dict(n_random=-3), "n_random=-3 is invalid: it must be an integer >= 0"),
    (dict(n_random=2.0), "n_random=2.0"),
    (dict(diff_means="yes"), "diff_means='yes'"),
    (dict(positions="prompt"), "positions='prompt'"),
    (dict(use_kv_cache=None), "use_kv_cache=None"),
    (dict(n_boot=0), "n_boot=0"),
    (dict(seed=-1), "seed=-1"),
    (dict(progress="no"), "progress='no'"),
]


@pytest.mark.parametrize("kwargs, fragment", CONFIG_CASES)
def test_corrsteer_config_fields(kwargs, fragment):
    with pytest.raises(SteeringConfigError, match=re.escape(fragment)):
        CorrSteerConfig(**kwargs)


SAE_CONFIG_CASES = [
    (dict(architecture="gated"), "architecture='gated'"),
    (dict(d_sae=0), "d_sae=0"),
    (dict(k=0), "SAETrainConfig.k=0"),
    (dict(d_sae=8, k=16), "k=16 is invalid: it must be an integer in [1, 8]"),
    (dict(l1_coefficient=-1.0), "l1_coefficient=-1.0"),
    (dict(training_tokens=100, train_batch_size_tokens=1024), "training_tokens=100"),
    (dict(train_batch_size_tokens=0), "train_batch_size_tokens=0"),
    (dict(lr=float("nan")), "lr=nan"),
    (dict(lr_warm_up_steps=-1), "lr_warm_up_steps=-1"),
    (dict(store_batch_size_prompts=0), "store_batch_size_prompts=0"),
    (dict(n_batches_in_buffer=0), "n_batches_in_buffer=0"),
    (dict(seed=-5), "seed=-5"),
    (dict(device="gpu9"), "device='gpu9'"),
]


@pytest.mark.parametrize("kwargs, fragment", SAE_CONFIG_CASES)
def test_sae_train_config_fields(kwargs, fragment):
    with pytest.raises(SteeringConfigError, match=re.escape(fragment)):
        SAETrainConfig(**kwargs)


CASES = [
    ("more random controls than features", lambda: run_corrsteer(tiny(), [sae()], task().split(6, 3),
                                                                 CorrSteerConfig(n_random=8, progress=False)),
     SteeringConfigError, "n_random=8) is invalid: it must be at most 7"),
    ("splits that are not splits", lambda: run_corrsteer(tiny(), [sae()], task(), CorrSteerConfig(progress=False)),
     SteeringConfigError, "Make them with task.split"),
    ("collection of other hooks", lambda: run_corrsteer(
        tiny(), [sae()], task().split(6, 3), CorrSteerConfig(progress=False),
        collection=collect(tiny(), [make_sae("blocks.0.hook_resid_post", 8)], task(4), progress=False)),
     SteeringConfigError, "collected at the SAEs' hooks"),
    ("collect over an over-long prompt", lambda: collect(tiny(), [sae()], ExactMatchTask(
        "long", [Example(" ".join(["the"] * 70), "a")]), progress=False), ContextLengthError,
     "more than the model's context of 64"),
    ("collect with pooling 'median'", lambda: collect(tiny(), [sae()], task(), pooling="median"), SteeringConfigError,
     "pooling='median'"),
    ("collect batch_size=0", lambda: collect(tiny(), [sae()], task(), batch_size=0), SteeringConfigError,
     "batch_size=0"),
    ("collect a list of prompts", lambda: collect(tiny(), [sae()], ["the cat"]), SteeringConfigError,
     "a task with examples"),
    ("evaluate with a NaN scale", lambda: evaluate_vectors(tiny(), task(), [vector()], scale=float("nan")),
     SteeringConfigError, "scale=nan"),
    ("evaluate with vectors of strings", lambda: evaluate_vectors(tiny(), task(), ["v"]), SteeringConfigError,
     "a sequence of SteeringVector"),
    ("evaluate max_new_tokens=0", lambda: evaluate_vectors(tiny(), task(), [], max_new_tokens=0),
     SteeringConfigError, "max_new_tokens=0"),
    ("steer with a NaN scale", lambda: steer(tiny(), vector(), scale=float("nan")).__enter__(), SteeringConfigError,
     "steer(scale=nan)"),
    ("steer positions 'prompt'", lambda: steer(tiny(), vector(), positions="prompt").__enter__(),
     SteeringConfigError, "positions='prompt'"),
    ("steer at a missing hook", lambda: steer(tiny(), SteeringVector("blocks.9.hook_resid_post", torch.ones(32), 1.0))
     .__enter__(), HookError, "has no hook named 'blocks.9.hook_resid_post'"),
    ("steer with a vector of another width", lambda: steer(tiny(), SteeringVector(HOOK, torch.ones(8), 1.0))
     .__enter__(), HookError, "carries vectors of width 32"),
    ("vector with a NaN coefficient", lambda: vector().scaled(float("nan")), SteeringConfigError,
     "coefficient=nan"),
    ("vector with NaN entries", lambda: SteeringVector(HOOK, torch.full((32,), float("nan")), 1.0),
     SteeringConfigError, "finite values"),
    ("vector with a 2-D direction", lambda: SteeringVector(HOOK, torch.ones(2, 32), 1.0), SteeringConfigError,
     "a 1-D float tensor"),
    ("vector from a feature out of range", lambda: SteeringVector.from_sae(sae(), 8, 1.0), IndexError,
     "feature 8 is out of range"),
    ("compare with a NaN scale", lambda: compare_generations(tiny(), ["the cat"], [vector()], scale=float("nan")),
     SteeringConfigError, "scale=nan"),
    ("compare no prompts", lambda: compare_generations(tiny(), [], [vector()]), SteeringConfigError, "prompts=[]"),
    ("sweep a NaN scale", lambda: scale_sweep(tiny(), task(), [vector()], [0.0, float("nan")]), SteeringConfigError,
     "scales=[0.0, nan]"),
    ("negative random controls", lambda: random_features(sae(), -3, norm=1.0), SteeringConfigError, "n=-3"),
    ("more random controls than features", lambda: random_features(sae(), 9, norm=1.0), SteeringConfigError,
     "only 8 to choose from"),
    ("random controls of NaN norm", lambda: random_features(sae(), 2, norm=float("nan")), SteeringConfigError,
     "norm=nan"),
    ("bootstrap level 1.5", lambda: bootstrap_ci(np.ones(4), level=1.5), SteeringConfigError, "level=1.5"),
    ("bootstrap n_boot=0", lambda: bootstrap_ci(np.ones(4), n_boot=0), SteeringConfigError, "n_boot=0"),
    ("select per_hook=0", lambda: select_features({}, per_hook=0), SteeringConfigError, "per_hook=0"),
    ("select sign 'both'", lambda: select_features({}, sign="both"), SteeringConfigError,
     "select_features(sign='both') is invalid: it must be one of 'positive', 'negative', 'abs'"),
    ("readout feature out of range", lambda: logit_readout(tiny(), sae(), 8), IndexError, "feature 8 is out of range"),
    ("readout k=0", lambda: logit_readout(tiny(), sae(), 0, k=0), SteeringConfigError, "logit_readout(k=0)"),
    ("hook names that are not strings", lambda: check_hooks(tiny(), [3]), HookError, "Hook names are strings"),
    # SAE training and evaluation
    ("train on windows too wide", lambda: train_sae(tiny(), torch.ones(4, 80, dtype=torch.long), HOOK),
     ContextLengthError, "80 positions wide"),
    ("train on one sequence", lambda: train_sae(tiny(), torch.ones(1, 8, dtype=torch.long), HOOK), CoreConfigError,
     "at least 2 sequence(s)"),
    ("train at a missing hook", lambda: train_sae(tiny(), torch.ones(4, 8, dtype=torch.long), "blocks.5.x"),
     HookError, "no hook named"),
    ("evaluate an SAE of another width", lambda: evaluate_sae(tiny(), make_sae(HOOK, 8, d_in=16),
                                                              torch.ones(2, 8, dtype=torch.long)),
     SteeringConfigError, "d_in=16"),
    ("evaluate on BOS only", lambda: evaluate_sae(tiny(), sae(), torch.zeros(2, 6, dtype=torch.long)),
     SteeringConfigError, "Only 0 token(s)"),
    # the same token after BOS in every row: identical activations (a repeated token at later positions is not,
    # attention sees a different prefix there)
    ("evaluate on identical activations", lambda: evaluate_sae(tiny(), sae(), torch.tensor([[0, 5]] * 4)),
     SteeringConfigError, "have no variance over the 4 evaluated tokens"),
    ("evaluate batch_size=0", lambda: evaluate_sae(tiny(), sae(), torch.ones(2, 8, dtype=torch.long), batch_size=0),
     SteeringConfigError, "batch_size=0"),
]


@pytest.mark.parametrize("case, call, error, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(case, call, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        call()


def test_sae_train_config_defaults_construct():
    # the default device=None (the model's own) was refused by the device check once
    assert SAETrainConfig().device is None and SAETrainConfig(device="cpu").device == "cpu"


def test_every_steering_error_is_an_interp_config_error():
    assert issubclass(SteeringConfigError, InterpConfigError) and issubclass(HookError, SteeringConfigError)


# ---------------------------------------------------------------------------------------- saved SAEs and reports
@pytest.fixture()
def sae_folder(tmp_path):
    from interp import zoo

    try:
        src = zoo.artefact_dir("toy-lm-saes") / HOOK
    except FileNotFoundError as err:
        pytest.skip(str(err))
    dst = tmp_path / "saes" / HOOK
    shutil.copytree(src, dst)
    return dst


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage, fragment", [
    (lambda d: (d / "sae_weights.safetensors").unlink(), "sae_weights.safetensors is missing"),
    (lambda d: (d / "cfg.json").write_text("{x"), "cfg.json is not valid JSON"),
    (lambda d: (d / "cfg.json").write_text(json.dumps({"d_in": 0, "d_sae": 4})), "needs positive integers d_in and d_sae"),
    (lambda d: _truncate(d / "sae_weights.safetensors"), "sae_weights.safetensors is corrupt or truncated"),
    (lambda d: _retarget(d, d_sae=256), "W_dec has shape (512, 128), expected (256, 128)"),
    (lambda d: _retarget(d, metadata={}), "names no hook"),
])
def test_damaged_sae_folders_name_the_file(sae_folder, damage, fragment):
    damage(sae_folder)
    with pytest.raises(SteeringLoadError, match=re.escape(fragment)):
        load_saes(sae_folder.parent)


def _retarget(folder, **fields):
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg.update(fields)
    (folder / "cfg.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("content, fragment", [
    ("{oops", "report.json is not valid JSON"),
    (json.dumps({"format": "SteeringReport/0"}), "Not a saved SteeringReport (format='SteeringReport/0'"),
    (json.dumps({"format": "SteeringReport/1", "task": "t"}), "incomplete or malformed"),
    (json.dumps([1]), "Not a saved SteeringReport"),
])
def test_damaged_reports_name_the_file(tmp_path, content, fragment):
    (tmp_path / "report.json").write_text(content)
    with pytest.raises(SteeringLoadError, match=re.escape(fragment)) as info:
        SteeringReport.load(tmp_path)
    assert isinstance(info.value, ValueError)
    with pytest.raises(FileNotFoundError, match="No saved SteeringReport"):
        SteeringReport.load(tmp_path / "nowhere")


@pytest.mark.parametrize("damage, error, fragment", [
    (lambda p: p.unlink(), FileNotFoundError, "No saved CorrelationStats at"),
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), SteeringLoadError, "is corrupt or truncated"),
    (lambda p: _rewrite_stats(p, drop="comoment"), SteeringLoadError, "lacks ['comoment']"),
    (lambda p: _rewrite_stats(p, reshape="m2_x"), SteeringLoadError, "m2_x (2,) (expected (3,))"),
    (lambda p: _rewrite_stats(p, nan="mean_x"), SteeringLoadError, "holds NaN or inf"),
])
def test_damaged_correlation_stats_name_the_file(tmp_path, damage, error, fragment):
    from interp.steering.stats import CorrelationStats

    stats = CorrelationStats(3)
    stats.update(torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [3.0, 0.0, 2.0]]), torch.tensor([1, 0, 1]))
    path = tmp_path / "s.safetensors"
    stats.save(path)
    damage(path)
    with pytest.raises(error, match=re.escape(fragment)) as info:
        CorrelationStats.load(path)
    assert isinstance(info.value, SteeringLoadError) and str(path) in str(info.value)


def _rewrite_stats(path, drop=None, reshape=None, nan=None):
    from safetensors.torch import load_file, save_file

    state = load_file(str(path))
    if drop:
        del state[drop]
    if reshape:
        state[reshape] = state[reshape][:2].clone()
    if nan:
        state[nan] = state[nan] * float("nan")
    save_file(state, str(path))
