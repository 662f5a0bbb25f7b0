"""Bad input to THR and GRPO (GRPOConfig, GRPOTrainer, rollout_thr, token_hidden_reward, thr_weights, evaluation,
experiments, tasks, checkpoints) is a clear error; one response per group is an error, not THR 0 everywhere;
a damaged checkpoint leaves the model and the trainer as they were; a resume with other data is refused."""

from __future__ import annotations

import functools
import json
import re

import pytest
import torch

from interp.core.checkpoint import CheckpointError, CheckpointMismatchError
from interp.core.errors import InterpConfigError
from interp.core.tasks import Example
from interp.thr import THRInputError, token_hidden_reward
from interp.thr.core import group_advantages, thr_weights
from interp.thr.experiment import Variant, evaluate_policy, pass_at_k, run_experiment, variants_for
from interp.thr.grpo import GRPOConfig, GRPOTrainer, rollout_thr
from interp.thr.tasks import VerifiableTask, word_reward
from test_steering_fixtures import random_prompts, tiny_llama_with_tokenizer


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@functools.cache
def tiny():
    return tiny_llama_with_tokenizer()


def task(n=6, words=3, max_new_tokens=2, name="words") -> VerifiableTask:
    prompts = random_prompts(2 * n, seed=3, lo=words, hi=words + 1)
    prompts = list(dict.fromkeys(prompts))
    half = len(prompts) // 2
    return VerifiableTask(name, [Example(p, "the") for p in prompts[:half]],
                          [Example(p, "the") for p in prompts[half:]], word_reward, max_new_tokens=max_new_tokens)


SMALL = dict(group_size=2, prompts_per_step=1, max_new_tokens=2)


def trainer(**cfg) -> GRPOTrainer:
    return GRPOTrainer(tiny(), task(), GRPOConfig(**{**SMALL, **cfg}))


def _thr_inputs(n=4, T=3, d=8, V=11):
    g = torch.Generator().manual_seed(0)
    H = [torch.randn(T, d, generator=g) for _ in range(n)]
    L = [torch.randn(T, V, generator=g) for _ in range(n)]
    Y = [torch.randint(0, V, (T,), generator=g) for _ in range(n)]
    return H, L, Y, torch.tensor([1.0, 0.0] * (n // 2))


CONFIG_CASES = [
    (dict(group_size=1), "GRPOConfig.group_size=1 is invalid: it must be an integer >= 2"),
    (dict(group_size=4.0), "group_size=4.0"),
    (dict(prompts_per_step=0), "prompts_per_step=0"),
    (dict(max_new_tokens=0), "max_new_tokens=0"),
    (dict(temperature=0.0), "temperature=0.0"),
    (dict(temperature=float("nan")), "temperature=nan"),
    (dict(lr=float("nan")), "lr=nan"),
    (dict(lr=-1e-3), "lr=-0.001"),
    (dict(lr=float("inf")), "suggested_grpo_lr"),
    (dict(loss_type="ppo"), "loss_type='ppo'"),
    (dict(clip_eps=1.5), "clip_eps=1.5 is invalid: it must be a finite number in (0, 1)"),
    (dict(clip_eps_high=0.0), "clip_eps_high=0.0"),
    (dict(kl_coef=-0.1), "kl_coef=-0.1"),
    (dict(inner_epochs=0), "inner_epochs=0"),
    (dict(max_grad_norm=float("inf")), "max_grad_norm=inf"),
    (dict(thr="yes"), "thr='yes'"),
    (dict(thr_p=1.0), "thr_p=1.0 is invalid: it must be a finite number in (-1, 1)"),
    (dict(thr_beta=-1.0), "thr_beta=-1.0"),
    (dict(thr_non_dominant=float("nan")), "thr_non_dominant=nan"),
    (dict(thr_vocab="all"), "thr_vocab='all'"),
    (dict(thr_exclude_self=1), "thr_exclude_self=1"),
    (dict(log_thr=None), "log_thr=None"),
    (dict(seed=-1), "seed=-1"),
]


@pytest.mark.parametrize("kwargs, fragment", CONFIG_CASES)
def test_grpo_config_fields(kwargs, fragment):
    with pytest.raises(THRInputError, match=re.escape(fragment)):
        GRPOConfig(**kwargs)


def test_the_default_learning_rate_is_the_safe_one():
    from interp.thr.grpo import DEFAULT_LR

    assert GRPOConfig().lr == DEFAULT_LR == 2e-5


LONG = " ".join(["the"] * 62)

CASES = [
    # GRPOTrainer
    ("trainer on a list of prompts", lambda: GRPOTrainer(tiny(), ["the cat"]), THRInputError,
     "GRPOTrainer(task=['the cat']) is invalid: it must be a VerifiableTask"),
    ("trainer with a dict config", lambda: GRPOTrainer(tiny(), task(), {"lr": 1e-5}), THRInputError,
     "config={'lr': 1e-05}"),
    ("trainer with an empty name", lambda: GRPOTrainer(tiny(), task(), name=""), THRInputError, "name=''"),
    ("trainer in_place not a bool", lambda: GRPOTrainer(tiny(), task(), in_place="yes"), THRInputError,
     "in_place='yes'"),
    ("prompts + generation beyond the context", lambda: GRPOTrainer(tiny(), VerifiableTask(
        "long", [Example(LONG, "the")], [Example(LONG + " cat", "the")], word_reward, max_new_tokens=8)),
     THRInputError, "more than the model's context of 64 tokens"),
    ("train steps=0", lambda: trainer().train(0), THRInputError, "GRPOTrainer.train(steps=0)"),
    ("train steps=-3", lambda: trainer().train(-3), THRInputError, "steps=-3"),
    ("train checkpoint_every=-1", lambda: trainer().train(1, checkpoint_every=-1), THRInputError,
     "checkpoint_every=-1"),
    ("train checkpoints without a folder", lambda: trainer().train(1, checkpoint_every=2), THRInputError,
     "a folder when checkpoint_every > 0"),
    ("train progress not a bool", lambda: trainer().train(1, progress="no"), THRInputError, "progress='no'"),
    # rollout_thr
    ("rollout one response per group", lambda: rollout_thr(tiny(), task(), group_size=1), THRInputError,
     "rollout_thr(group_size=1) is invalid: it must be an integer >= 2. THR compares the responses of a group"),
    ("rollout n_prompts=0", lambda: rollout_thr(tiny(), task(), n_prompts=0), THRInputError, "n_prompts=0"),
    ("rollout more prompts than the split", lambda: rollout_thr(tiny(), task(), n_prompts=99), THRInputError,
     "The test split has"),
    ("rollout temperature 0", lambda: rollout_thr(tiny(), task(), temperature=0.0), THRInputError,
     "temperature=0.0"),
    ("rollout split 'val'", lambda: rollout_thr(tiny(), task(), split="val"), THRInputError, "split='val'"),
    ("rollout vocab 'all'", lambda: rollout_thr(tiny(), task(), vocab="all"), THRInputError, "vocab='all'"),
    ("rollout normalize 'mean'", lambda: rollout_thr(tiny(), task(), normalize="mean"), THRInputError,
     "normalize='mean'"),
    ("rollout exclude_self 'no'", lambda: rollout_thr(tiny(), task(), exclude_self="no"), THRInputError,
     "exclude_self='no'"),
    ("rollout seed -1", lambda: rollout_thr(tiny(), task(), seed=-1), THRInputError, "seed=-1"),
    ("rollout a list of prompts", lambda: rollout_thr(tiny(), ["the cat"]), THRInputError, "a VerifiableTask"),
    # token_hidden_reward
    ("THR of groups of one", lambda: token_hidden_reward(*_thr_inputs(), group_size=1), THRInputError,
     "token_hidden_reward(group_size=1) is invalid: it must be None or an integer >= 2"),
    ("THR of a single response", lambda: token_hidden_reward(*[x[:1] for x in _thr_inputs()[:3]],
                                                             torch.tensor([1.0])), THRInputError,
     "a group of at least 2 responses"),
    ("THR chunk_size 2.5", lambda: token_hidden_reward(*_thr_inputs(), chunk_size=2.5), THRInputError,
     "chunk_size=2.5"),
    ("THR chunk_size 0", lambda: token_hidden_reward(*_thr_inputs(), chunk_size=0), THRInputError, "chunk_size=0"),
    ("THR exclude_self 'yes'", lambda: token_hidden_reward(*_thr_inputs(), exclude_self="yes"), THRInputError,
     "exclude_self='yes'"),
    ("THR scale_rewards None", lambda: token_hidden_reward(*_thr_inputs(), scale_rewards=None), THRInputError,
     "scale_rewards=None"),
    ("THR NaN rewards", lambda: token_hidden_reward(*_thr_inputs()[:3], torch.tensor([1.0, float("nan")] * 2)),
     THRInputError, "rewards contain NaN or inf"),
    ("THR NaN temperature", lambda: token_hidden_reward(*_thr_inputs(), temperature=float("nan")), THRInputError,
     "temperature must be a finite number > 0"),
    ("THR NaN softcap", lambda: token_hidden_reward(*_thr_inputs(), softcap=float("nan")), THRInputError,
     "softcap must be a finite number >= 0"),
    ("THR with neither logits nor head", lambda: token_hidden_reward(_thr_inputs()[0], None, *_thr_inputs()[2:]),
     THRInputError, "Pass either the logits"),
    ("THR groups that do not divide", lambda: token_hidden_reward(*_thr_inputs(), group_size=3), THRInputError,
     "cannot be split into groups of 3"),
    ("THR vocab 'all'", lambda: token_hidden_reward(*_thr_inputs(), vocab="all"), THRInputError, "vocab must be"),
    ("THR normalize 'mean'", lambda: token_hidden_reward(*_thr_inputs(), normalize="mean"), THRInputError,
     "normalize must be"),
    # weights and advantages
    ("weights p=1", lambda: thr_weights([torch.ones(2)] * 2, [1.0, 0.0], p=1.0), THRInputError, "|p| must be < 1"),
    ("weights NaN p", lambda: thr_weights([torch.ones(2)] * 2, [1.0, 0.0], p=float("nan")), THRInputError,
     "got p=nan"),
    ("weights NaN non_dominant", lambda: thr_weights([torch.ones(2)] * 2, [1.0, 0.0], p=0.5,
                                                     non_dominant=float("nan")), THRInputError,
     "thr_weights(non_dominant=nan)"),
    ("weights beta 'x'", lambda: thr_weights([torch.ones(2)] * 2, [1.0, 0.0], p=0.5, beta="x"), THRInputError,
     "thr_weights(beta='x')"),
    ("weights group_size 1.5", lambda: thr_weights([torch.ones(2)] * 2, [1.0, 0.0], p=0.5, group_size=1.5),
     THRInputError, "group_size=1.5"),
    ("advantages of NaN rewards", lambda: group_advantages(torch.tensor([1.0, float("nan")])), THRInputError,
     "NaN or inf"),
    ("advantages group_size 0", lambda: group_advantages(torch.ones(4), group_size=0), THRInputError,
     "multiple of group_size"),
    # evaluation and experiments
    ("evaluate n_samples=0", lambda: evaluate_policy(tiny(), task(), n_samples=0), THRInputError, "n_samples=0"),
    ("evaluate pass@32 from 16", lambda: evaluate_policy(tiny(), task(), ks=(1, 32)), THRInputError,
     "[32] cannot be estimated from 16 samples"),
    ("evaluate temperature 0", lambda: evaluate_policy(tiny(), task(), temperature=0.0), THRInputError,
     "temperature=0.0"),
    ("evaluate batch_prompts=0", lambda: evaluate_policy(tiny(), task(), batch_prompts=0), THRInputError,
     "batch_prompts=0"),
    ("pass@k with k > n", lambda: pass_at_k(4, 1, 8), THRInputError, "pass@8 needs at least k samples"),
    ("pass@k with c > n", lambda: pass_at_k(4, 5, 1), THRInputError, "pass_at_k(c=5)"),
    ("variants p=0", lambda: variants_for(0.0), THRInputError, "p=0 is plain GRPO"),
    ("variants p=1", lambda: variants_for(1.0), THRInputError, "variants_for(p=1.0)"),
    ("variant of an unknown field", lambda: Variant("x", {"thr_q": 0.5}), THRInputError,
     "Variant.overrides={'thr_q': 0.5} is invalid: it must be a dict of GRPOConfig fields (['thr_q'] are not)"),
    ("variant of a bad value", lambda: Variant("x", {"thr": True, "thr_p": 2.0}), THRInputError, "thr_p=2.0"),
    ("experiment of a model, not a factory", lambda: run_experiment(tiny(), task(), base=GRPOConfig(), steps=1),
     THRInputError, "a callable returning a fresh (model, tokenizer_or_None)"),
    ("experiment steps=0", lambda: run_experiment(lambda: (tiny(), None), task(), base=GRPOConfig(), steps=0),
     THRInputError, "run_experiment(steps=0)"),
    ("experiment no seeds", lambda: run_experiment(lambda: (tiny(), None), task(), base=GRPOConfig(), steps=1,
                                                   seeds=()), THRInputError, "seeds=()"),
    ("experiment no variants", lambda: run_experiment(lambda: (tiny(), None), task(), base=GRPOConfig(), steps=1,
                                                      variants=()), THRInputError, "variants=()"),
    ("experiment base of another type", lambda: run_experiment(lambda: (tiny(), None), task(), base={}, steps=1),
     THRInputError, "a GRPOConfig"),
    # tasks
    ("task with an empty name", lambda: VerifiableTask("", [Example("a", "b")], [Example("c", "d")], word_reward),
     THRInputError, "VerifiableTask.name=''"),
    ("task with an empty train split", lambda: VerifiableTask("t", [], [Example("c", "d")], word_reward),
     THRInputError, "train is empty"),
    ("task with prompts in both splits", lambda: VerifiableTask("t", [Example("a", "b")], [Example("a", "d")],
                                                                word_reward), THRInputError, "in both splits"),
    ("task reward not callable", lambda: VerifiableTask("t", [Example("a", "b")], [Example("c", "d")], 1.0),
     THRInputError, "a callable reward"),
    ("task of tuples", lambda: VerifiableTask("t", [("a", "b")], [Example("c", "d")], word_reward), THRInputError,
     "Build items with Example(prompt, answer)"),
    ("task max_new_tokens=0", lambda: VerifiableTask("t", [Example("a", "b")], [Example("c", "d")], word_reward,
                                                     max_new_tokens=0), THRInputError, "max_new_tokens=0"),
]


@pytest.mark.parametrize("case, call, error, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(case, call, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        call()


def test_every_thr_error_is_an_interp_config_error():
    assert issubclass(THRInputError, InterpConfigError)


def test_training_leaves_the_callers_model_alone():
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    varied = VerifiableTask("len", task().train, task().test, lambda item, text: float(len(text)), max_new_tokens=3)
    t = GRPOTrainer(model, varied, GRPOConfig(group_size=4, prompts_per_step=2, max_new_tokens=3, lr=1e-2))
    t.train(1, progress=False)
    assert t.log.records[0]["loss"] != 0.0  # the step had a signal, so the copy moved
    assert t.model is not model
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in t.model.state_dict().items())


# ---------------------------------------------------------------------------------------- checkpoints
def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture()
def saved(tmp_path):
    t = trainer(lr=1e-2)
    t.train(1, progress=False)
    return t.save(tmp_path / "ck")


def _fresh_and_snapshot(**cfg):
    t = trainer(lr=1e-2, **cfg)
    return t, {k: v.clone() for k, v in t.model.state_dict().items()}, [p.clone() for p in t.params]


@pytest.mark.parametrize("damage, error, fragment", [
    (lambda d: _truncate(d / "trainer_state.safetensors"), CheckpointError,
     "trainer_state.safetensors is corrupt or truncated"),
    (lambda d: (d / "trainer_state.safetensors").unlink(), CheckpointError, "missing trainer_state.safetensors"),
    (lambda d: _truncate(d / "model.safetensors"), CheckpointError, "model.safetensors is corrupt or truncated"),
    (lambda d: (d / "state.json").write_text("{oops"), CheckpointError, "state.json is not valid JSON"),
    (lambda d: (d / "state.json").unlink(), CheckpointError, "missing state.json"),
    (lambda d: _drop_state_key(d, "rng.generator"), CheckpointError, "lacks the RNG state ['rng.generator']"),
    (lambda d: _damage_optimizer(d), CheckpointError, "has shape (3,)"),
])
def test_a_damaged_checkpoint_changes_nothing(saved, damage, error, fragment):
    damage(saved)
    t, weights, _ = _fresh_and_snapshot()
    with pytest.raises(error, match=re.escape(fragment)) as info:
        t.load(saved)
    assert str(saved) in str(info.value)
    assert all(torch.equal(weights[k], v) for k, v in t.model.state_dict().items()), "the model was changed"
    assert t.step_count == 0 and not t.log.records and not t.optimizer.state


def _drop_state_key(folder, key):
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "trainer_state.safetensors"))
    del state[key]
    save_file(state, str(folder / "trainer_state.safetensors"))


def _damage_optimizer(folder):
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "trainer_state.safetensors"))
    key = next(k for k in state if k.startswith("opt.") and state[k].ndim)
    state[key] = torch.zeros(3)
    save_file(state, str(folder / "trainer_state.safetensors"))


def test_resume_with_other_task_prompts_is_refused(saved):
    other = task()
    other.train[0] = Example(other.train[0].prompt + " cat", "the")  # same name, other data
    t = GRPOTrainer(tiny(), other, GRPOConfig(**SMALL, lr=1e-2))
    weights = {k: v.clone() for k, v in t.model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match="was written for other task prompts"):
        t.load(saved)
    assert all(torch.equal(weights[k], v) for k, v in t.model.state_dict().items())


def test_resume_with_another_task_is_refused(saved):
    t = GRPOTrainer(tiny(), task(name="other"), GRPOConfig(**SMALL, lr=1e-2))
    with pytest.raises(CheckpointMismatchError, match="is for task 'words', this trainer runs 'other'"):
        t.load(saved)


def test_a_config_mismatch_lists_only_the_differing_keys(saved):
    t = trainer(lr=1e-3)
    with pytest.raises(CheckpointMismatchError) as info:
        t.load(saved)
    message = str(info.value)
    assert "lr: saved 0.01, now 0.001" in message
    assert "group_size" not in message and len(message) < 300


def test_a_good_checkpoint_resumes(saved):
    t = trainer(lr=1e-2).load(saved)
    assert t.step_count == 1 and len(t.log.records) == 1


def test_a_bridge_checkpoint_resumes_and_a_damaged_one_changes_nothing(tmp_path):
    """On the default front-end (a TransformerBridge) the checkpoint holds the wrapped Hugging Face model; its
    check once counted the bridge's duplicate names as missing, so no bridge checkpoint loaded at all."""
    from conftest import shared_model_dir
    from interp import load_model
    from interp.zoo.stories import story_word_task

    if not (shared_model_dir() / "config.json").is_file():
        pytest.skip("stories260K is not present")
    model = load_model(shared_model_dir())
    story = story_word_task(max_new_tokens=3)
    cfg = GRPOConfig(group_size=2, prompts_per_step=1, max_new_tokens=3, lr=1e-2)
    t = GRPOTrainer(model, story, cfg)
    t.train(1, progress=False)
    folder = t.save(tmp_path / "ck")
    assert GRPOTrainer(model, story, cfg).load(folder).step_count == 1
    _truncate(folder / "trainer_state.safetensors")
    fresh = GRPOTrainer(model, story, cfg)
    weights = {k: v.clone() for k, v in fresh.model.state_dict().items()}
    with pytest.raises(CheckpointError, match="trainer_state.safetensors is corrupt or truncated"):
        fresh.load(folder)
    assert all(torch.equal(weights[k], v) for k, v in fresh.model.state_dict().items())
