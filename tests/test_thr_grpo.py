"""GRPO trainer with THR: sampling, forward capture, loss aggregation, reweighting, checkpoints."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from conftest import shared_model_dir
from interp.thr.experiment import pass_at_k
from interp.thr.grpo import GRPOConfig, GRPOTrainer
from interp.thr.policy import as_policy
from interp.core.checkpoint import CheckpointError
from interp.core.tasks import Example
from interp.thr.tasks import VerifiableTask, prefix_reward, word_reward
from interp.zoo.stories import story_word_task

_NEEDS_STORIES = pytest.mark.skipif(not (shared_model_dir() / "config.json").is_file(),
                                reason="stories260K is not present at ../shared/models/stories260K")

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models run fastest single-threaded


TINY = dict(group_size=4, prompts_per_step=2, max_new_tokens=5, lr=1e-3)


def _letter_reward(item: Example, completion: str) -> float:
    # a real-valued reward that is rarely equal across a group, so most groups carry a signal
    return float(completion.count(item.answer))


@pytest.fixture(scope="module")
def story_task():
    base = story_word_task(max_new_tokens=5)
    return VerifiableTask("letters", [Example(i.prompt, "e") for i in base.train],
                          [Example(i.prompt, "e") for i in base.test], _letter_reward, max_new_tokens=5)


_TL_CACHE: list = []


def _tl():
    import copy

    from interp import load_model

    if not _TL_CACHE:
        _TL_CACHE.append(load_model(shared_model_dir()))
    return copy.deepcopy(_TL_CACHE[0])


def _hf():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(shared_model_dir()), AutoTokenizer.from_pretrained(shared_model_dir())


@_NEEDS_STORIES
@pytest.mark.parametrize("kind", ["tl", "hf"])
def test_forward_captures_unembedding_input_and_kv_sampling_matches_full_forward(kind):
    policy = as_policy(_tl()) if kind == "tl" else as_policy(*_hf())
    prompts = [policy.encode("Once upon a time, there was a cat."), policy.encode("Tom ran."), policy.encode("Hi")]
    ro = policy.sample(prompts, max_new_tokens=6, temperature=0)
    with torch.no_grad():
        logits, hidden = policy.forward(ro.input_ids, ro.attention_mask)
        # the captured hidden state really is what the unembedding reads
        recon = policy.unembed(hidden)
        torch.testing.assert_close(recon, logits, rtol=1e-4, atol=1e-4)
        # greedy KV-cache decoding equals the argmax of a full forward over the padded batch
        pred = logits[:, ro.prompt_len - 1 : -1].argmax(-1)
    assert ((pred == ro.responses) | ~ro.response_mask).all()
    # left padding does not change a prompt's continuation
    alone = policy.sample(prompts[1:2], max_new_tokens=6, temperature=0)
    assert alone.response_list()[0].tolist() == ro.response_list()[1].tolist()


@_NEEDS_STORIES
def test_checkpoint_and_resume_reproduce_an_uninterrupted_run(tmp_path, story_task):
    cfg = GRPOConfig(thr=True, thr_p=0.5, seed=7, **TINY)
    straight = GRPOTrainer(_tl(), story_task, cfg)
    straight.train(3, progress=False)

    first = GRPOTrainer(_tl(), story_task, cfg)
    first.train(2, progress=False, checkpoint_dir=tmp_path / "ck")
    resumed = GRPOTrainer(_tl(), story_task, cfg).load(tmp_path / "ck")
    assert resumed.step_count == 2
    resumed.train(1, progress=False)

    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b)
    import pandas as pd

    cols = [c for c in straight.log.to_frame() if not c.startswith("time_")]
    pd.testing.assert_frame_equal(straight.log.to_frame()[cols], resumed.log.to_frame()[cols])
    assert straight.log.to_frame()["active_groups"].sum() > 0
    with pytest.raises(ValueError, match="different config"):
        GRPOTrainer(_tl(), story_task, GRPOConfig(thr=True, thr_p=-0.5, seed=7, **TINY)).load(tmp_path / "ck")
    with pytest.raises(CheckpointError, match="missing state.json"):
        GRPOTrainer(_tl(), story_task, cfg).load(tmp_path / "nothing")


@_NEEDS_STORIES
@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_hf_model_trains_with_each_aggregation_and_logs_thr(loss_type, story_task):
    model, tok = _hf()
    before = [p.detach().clone() for p in model.parameters()]
    tr = GRPOTrainer(model, story_task, GRPOConfig(loss_type=loss_type, thr=True, thr_p=-0.5, kl_coef=0.1,
                                                   clip_eps_high=0.28, inner_epochs=2, seed=1, **TINY),
                     tokenizer=tok)
    tr.train(1, progress=False)
    df = tr.log.to_frame()
    assert len(df) == 1 and {"thr_density", "thr_mean_correct", "entropy_dominant", "kl", "clip_frac"} <= set(df)
    assert df["loss"].map(math.isfinite).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.parameters()))
    # the trainer trained a copy: the caller's model is as it was
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@_NEEDS_STORIES
def test_thr_with_p_zero_is_plain_grpo(story_task):
    def run(**kw):
        model, tok = _hf()
        tr = GRPOTrainer(model, story_task, GRPOConfig(seed=3, **TINY, **kw), tokenizer=tok)
        tr.train(1, progress=False)
        return [p.detach().clone() for p in tr.model.parameters()], tr

    plain, tr_plain = run(thr=False)
    zero, _ = run(thr=True, thr_p=0.0)
    for a, b in zip(plain, zero):
        torch.testing.assert_close(a, b)
    # a weight only changes anything when some group has mixed rewards; make sure one did (where a
    # nonzero p moves the weights is checked exactly by test_one_thr_step_lands_where_the_hand_computed_loss_says)
    assert tr_plain.log.records[0]["active_groups"] > 0


def _loss_reference(loss_type, logp, old, adv, mask, eps_lo, eps_hi, max_new):
    """Per-token loops: the textbook formulas, independent of the vectorised trainer code."""
    n, R = logp.shape
    per = [[0.0] * R for _ in range(n)]
    for i in range(n):
        for t in range(R):
            r = math.exp(logp[i, t] - old[i, t])
            rc = min(max(r, 1 - eps_lo), 1 + eps_hi)
            per[i][t] = -min(r * adv[i, t], rc * adv[i, t])
    lens = [sum(mask[i]) for i in range(n)]
    if loss_type == "grpo":
        return sum(sum(per[i][t] for t in range(R) if mask[i][t]) / max(lens[i], 1) for i in range(n)) / n
    total = sum(per[i][t] for i in range(n) for t in range(R) if mask[i][t])
    return total / sum(lens) if loss_type == "dapo" else total / (n * max_new)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_loss_aggregation_matches_textbook_formulas(loss_type, story_task):
    g = torch.Generator().manual_seed(0)
    n, R = 4, 5
    logp, old = -torch.rand(n, R, generator=g) * 3, -torch.rand(n, R, generator=g) * 3
    adv = torch.randn(n, R, generator=g)
    mask = torch.ones(n, R, dtype=torch.bool)
    mask[0, 3:] = False
    mask[2, 1:] = False
    tr = GRPOTrainer.__new__(GRPOTrainer)
    tr.config = GRPOConfig(loss_type=loss_type, clip_eps=0.2, clip_eps_high=0.3)
    tr.max_new_tokens = R
    loss, _ = tr._loss(logp, old, None, adv, mask)
    ref = _loss_reference(loss_type, logp.tolist() and logp, old, adv, mask.tolist(), 0.2, 0.3, R)
    assert float(loss) == pytest.approx(float(ref), rel=1e-5)


def test_pass_at_k_matches_enumeration():
    for n, c, k in [(5, 2, 1), (5, 2, 3), (6, 0, 2), (6, 6, 4), (7, 3, 7)]:
        hits = [1] * c + [0] * (n - c)
        subsets = list(itertools.combinations(range(n), k))
        brute = sum(any(hits[i] for i in s) for s in subsets) / len(subsets)
        assert pass_at_k(n, c, k) == pytest.approx(brute)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_rewards_and_task_splits():
    it = Example("x", "ball")
    assert word_reward(it, "the Ball rolled") == 1.0 and word_reward(it, "balloon") == 0.0
    num = Example("3+4=", "7")
    assert prefix_reward(num, " 7.") == 1.0 and prefix_reward(num, "71") == 0.0 and prefix_reward(num, "a7") == 0.0
    task = story_word_task()
    assert not {i.prompt for i in task.train} & {i.prompt for i in task.test}
    with pytest.raises(ValueError, match="both splits"):
        VerifiableTask("t", [it], [it], word_reward)


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match=r"\|p\| < 1"):
        GRPOConfig(thr=True, thr_p=1.0)
    with pytest.raises(ValueError, match="loss_type"):
        GRPOConfig(loss_type="ppo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="group_size"):
        GRPOConfig(group_size=1)


def test_zoo_task_splits_and_reward_use_the_zoo_checker():
    from interp.zoo import tasks as zt

    task = zt.planted_grpo_task("arith", n_train=40, n_test=10)
    assert not {i.prompt for i in task.train} & {i.prompt for i in task.test}
    for it in task.test[:5]:
        a, b = (int(x) for x in it.prompt.removeprefix("Add:").rstrip("=").split("+"))
        assert it.answer == str(a + b)  # independent of the zoo: the answer is the sum
        assert task.reward(it, f" {a + b}.") == 1.0 and task.reward(it, f" {a + b + 1}") == 0.0
    assert task.max_new_tokens == zt.MAX_NEW_TOKENS["arith"]


def test_suggested_lr_keeps_toy_lm_working_where_a_large_lr_collapses_it():
    """The notebook's default learning rate for toy-lm: 3 plain GRPO steps leave greedy arith accuracy
    where it was; the same steps at 5e-4 (stories260K's rate) wreck it."""
    import copy

    from interp import zoo
    from interp.thr.experiment import evaluate_policy

    try:
        model = zoo.load("toy-lm", device="cpu")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    task = zoo.tasks.planted_grpo_task("arith", n_test=24, seed=0)
    start = evaluate_policy(model, task, n_samples=1, ks=(1,)).flat()["greedy"]
    after = {}
    suggested = zoo.suggested_grpo_lr("toy-lm")
    for lr in (suggested, 5e-4):
        cfg = GRPOConfig(group_size=8, prompts_per_step=8, lr=lr, seed=0)
        trainer = GRPOTrainer(copy.deepcopy(model), task, cfg)
        trainer.train(3, progress=False)
        after[lr] = evaluate_policy(trainer.policy, task, n_samples=1, ks=(1,)).flat()["greedy"]
    assert start > 0.6
    assert after[suggested] >= start - 0.1
    assert after[5e-4] < start / 2
    assert zoo.suggested_grpo_lr("../shared/models/stories260K") == 5e-4


# ---- where one step puts the weights, against a loss written out by hand -----------------------
def _hand_advantages(rewards: torch.Tensor, G: int, scale: bool) -> torch.Tensor:
    out = []
    for g in rewards.view(-1, G).tolist():
        mean = sum(g) / G
        std = math.sqrt(sum((r - mean) ** 2 for r in g) / G)  # population std
        out += [0.0 if std < 1e-6 else ((r - mean) / std if scale else r - mean) for r in g]
    return torch.tensor(out)


def _hand_weights(thr: list[torch.Tensor], adv: torch.Tensor, G: int, p: float) -> list[torch.Tensor]:
    """THR's rule (beta 1, non-dominant 1): tau = max(0, min over the group's positive-advantage
    responses of their mean THR); |THR| > tau gets 1 + p * sign(THR)."""
    out = []
    for start in range(0, len(thr), G):
        means = [float(thr[i].mean()) for i in range(start, start + G) if adv[i] > 0 and len(thr[i])]
        tau = max(0.0, min(means)) if means else 0.0
        for i in range(start, start + G):
            out.append(torch.tensor([1.0 + p * math.copysign(1.0, v) if abs(v) > tau else 1.0 for v in thr[i].tolist()]))
    return out


def _hand_gradient(model, ro, adv, weights, loss_type, max_new):
    """Gradient of the clipped-surrogate loss at ratio 1, written per response: one unpadded forward per
    row, -A_i w_it log pi(y_it) summed as the aggregation says."""
    model.zero_grad(set_to_none=True)
    lengths = ro.response_mask.sum(1).tolist()
    terms, n = [], len(lengths)
    for i, L in enumerate(lengths):
        ids = ro.input_ids[i][ro.attention_mask[i]]
        if hasattr(model, "cfg"):
            logits = model(ids[None])[0]
        else:
            logits = model(input_ids=ids[None]).logits[0]
        P = len(ids) - L
        logp = torch.log_softmax(logits[P - 1 : -1].float(), -1).gather(-1, ids[P:, None])[:, 0]
        ratio = torch.exp(logp - logp.detach())  # 1, with the gradient of log pi
        s = -(adv[i] * weights[i] * ratio).sum()
        terms.append(s / max(L, 1) / n if loss_type == "grpo" else s)
    loss = sum(terms)
    if loss_type == "dapo":
        loss = loss / sum(lengths)
    elif loss_type == "dr_grpo":
        loss = loss / (n * max_new)
    loss.backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def _letters_task(prompts):
    return VerifiableTask("letters", [Example(p, "a") for p in prompts[2:]], [Example(p, "a") for p in prompts[:2]],
                          _letter_reward, max_new_tokens=6)


@pytest.mark.parametrize("kind,loss_type", [("tl", "grpo"), ("tl", "dr_grpo"), ("tl", "dapo"), ("hf", "grpo")])
def test_one_thr_step_lands_where_the_hand_computed_loss_says(kind, loss_type):
    """One GRPO step with THR (p = 0.9) on a tiny model, with plain SGD in place of the trainer's Adam so
    the update is -lr x the gradient itself: every parameter moves by exactly what the hand-written loss
    (hand advantages, hand THR weights from the step's THR values, per-row forwards) gives, and that
    differs from what plain GRPO's loss would give."""
    import copy

    from tiny_models import hf_llama_with_tokenizer, random_prompts, tiny_llama_with_tokenizer

    model = tiny_llama_with_tokenizer(5) if kind == "tl" else hf_llama_with_tokenizer(5)
    lr, p, G = 0.05, 0.9, 4
    cfg = GRPOConfig(group_size=G, prompts_per_step=3, lr=lr, loss_type=loss_type, thr=True, thr_p=p,
                     max_grad_norm=1e9, seed=2)
    # in_place: the step must move `model` itself (by default the trainer trains a copy)
    trainer = GRPOTrainer(model, _letters_task(random_prompts(8, seed=4)), cfg,
                          tokenizer=None if kind == "tl" else model.tokenizer, in_place=True)
    trainer.optimizer = torch.optim.SGD(trainer.params, lr=lr)
    start = copy.deepcopy(model)
    before = {n: q.detach().clone() for n, q in model.named_parameters()}
    trainer.step()
    batch = trainer.last
    adv = _hand_advantages(batch.rewards, G, scale=loss_type != "dr_grpo")
    assert (adv != 0).any(), "no group had mixed rewards: nothing to check"
    weights = _hand_weights(batch.result.thr, adv, G, p)
    assert any((w != 1).any() for w in weights) and any((w == 1).any() for w in weights)
    grad = _hand_gradient(start, batch.rollout, adv, weights, loss_type, trainer.max_new_tokens)
    plain = _hand_gradient(start, batch.rollout, adv, [torch.ones_like(w) for w in weights], loss_type,
                           trainer.max_new_tokens)
    moved = 0.0
    for name, q in trainer.model.named_parameters():  # the trainer trains a copy; the caller's model stays put
        torch.testing.assert_close(q.detach() - before[name], -lr * grad[name], atol=2e-6, rtol=1e-3, msg=name)
        moved = max(moved, float((grad[name] - plain[name]).abs().max() / plain[name].abs().max().clamp_min(1e-12)))
    assert moved > 0.05, "THR's weights should change the update relative to plain GRPO"


@_NEEDS_STORIES
def test_token_log_records_what_each_step_trained_on(story_task):
    """``token_log=True``: one rollout per step; its per-token advantage is the group advantage (by hand from
    the rewards) times 1 + p*sign(THR) on dominant tokens (tau by hand), THR the step's own, KL 0 against a
    reference equal to the policy at step 0 and > 0 once the policy has moved."""
    from widgets import THRTrainingViewer

    model, tok = _hf()
    p, G = 0.5, TINY["group_size"]
    tr = GRPOTrainer(model, story_task, GRPOConfig(thr=True, thr_p=p, kl_coef=0.1, seed=2, **TINY), tokenizer=tok,
                     token_log=True)
    thr_by_step = []
    for _ in range(2):
        tr.step()
        thr_by_step.append([t.tolist() for t in tr.last.result.thr])
    log = tr.token_log
    assert log.steps == [0, 1] and all(len(r.responses) == TINY["prompts_per_step"] * G for r in log.rollouts)
    for r, thr in zip(log.rollouts, thr_by_step):
        for b in range(r.n_groups):
            rows = r.group(b)
            rewards = [x["reward"] for x in rows]
            mean = sum(rewards) / G
            std = math.sqrt(sum((x - mean) ** 2 for x in rewards) / G)  # population std (the brief's sqrt((1-p)/p))
            for i, x in enumerate(rows):
                a = 0.0 if std < 1e-6 else (x["reward"] - mean) / std
                assert x["seq_advantage"] == pytest.approx(a, rel=1e-3, abs=1e-6)
                assert x["thr"] == pytest.approx(thr[b * G + i], abs=1e-7)
            correct = [x for x in rows if x["seq_advantage"] > 0]
            tau = max(0.0, min(sum(x["thr"]) / len(x["thr"]) for x in correct)) if correct else 0.0
            for x in rows:
                want = [x["seq_advantage"] * (1 + p * math.copysign(1, t) if abs(t) > tau else 1.0) for t in x["thr"]]
                assert x["advantage"] == pytest.approx(want, rel=1e-4, abs=1e-6)
    # the reweighting is visible: some tokens carry an advantage other than their response's
    assert any(abs(a - x["seq_advantage"]) > 1e-3 for r in log.rollouts for x in r.responses for a in x["advantage"])
    assert all(k == pytest.approx(0.0, abs=1e-5) for x in log[0].responses for k in x["kl"])
    assert max(k for x in log[1].responses for k in x["kl"]) > 1e-6
    v = THRTrainingViewer(log)
    assert v.step_label.value == "step 1"
