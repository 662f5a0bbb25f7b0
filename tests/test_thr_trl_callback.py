"""THRCallback: two steps of TRL's GRPOTrainer on a tiny Llama (tests/tiny_models.py); the per-token THR,
advantage, entropy and KL it logs equal an independent computation made at the same moment (HF's own
output_hidden_states and logits, TRL's advantages, the reference model reloaded from disk); the log
round-trips and the training viewer renders it. Skipped without TRL."""

from __future__ import annotations

import pytest
import torch

trl = pytest.importorskip("trl", reason="TRL is an optional extra (pip install -c constraints.txt trl)")

from tiny_models import WORDS, hf_llama_with_tokenizer  # noqa: E402

pytestmark = pytest.mark.slow  # two real TRL steps in the module fixture: ~45 s on the loaded 2-core machine


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from interp.thr import token_hidden_reward
    from interp.thr.trl_callback import THRCallback

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("thr_cb")
    hf = hf_llama_with_tokenizer(0)
    tok = hf.tokenizer
    hf.save_pretrained(tmp / "model")  # a path, so that TRL (beta > 0) can load its reference model
    tok.save_pretrained(tmp / "model")
    model = AutoModelForCausalLM.from_pretrained(tmp / "model")
    ref = AutoModelForCausalLM.from_pretrained(tmp / "model").eval()
    g = torch.Generator().manual_seed(0)
    prompts = [" ".join(WORDS[int(i)] for i in torch.randint(0, len(WORDS), (3,), generator=g)) for _ in range(8)]
    ds = Dataset.from_dict({"prompt": prompts})

    def reward(completions, **kwargs):
        return [float(c.count("a")) for c in completions]  # real-valued: groups rarely all equal

    args = trl.GRPOConfig(output_dir=str(tmp / "out"), per_device_train_batch_size=4, num_generations=4,
                          max_completion_length=6, max_steps=2, learning_rate=5e-3, logging_steps=1, beta=0.1,
                          report_to=[], use_cpu=True, bf16=False, save_strategy="no", seed=0)
    trainer = trl.GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tok)
    cb = THRCallback(log_path=tmp / "thr_log.jsonl").attach(trainer)
    expected = []
    observed = trainer._generate_and_score_completions

    def check(inputs):  # runs right after the callback, before the optimizer step: the same policy
        out = observed(inputs)
        if not trainer.model.training:
            return out
        P = out["prompt_ids"].shape[1]
        ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
        mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
        with torch.no_grad():
            o = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            r = ref(input_ids=ids, attention_mask=mask).logits[:, P - 1:-1].float() / trainer.temperature
        logits = o.logits[:, P - 1:-1].float()
        hidden = o.hidden_states[-1][:, P - 1:-1]  # after the final norm: the head's input
        n = out["completion_mask"].sum(1).tolist()
        thr = token_hidden_reward([hidden[i, :k] for i, k in enumerate(n)], [logits[i, :k] for i, k in enumerate(n)],
                                  [out["completion_ids"][i, :k] for i, k in enumerate(n)], out["advantages"],
                                  temperature=trainer.temperature, group_size=4,
                                  normalize="sequence" if trainer.loss_type == "grpo" else "token")
        lp = (logits / trainer.temperature).log_softmax(-1)
        ent = -(lp.exp() * lp).sum(-1)
        y = out["completion_ids"][..., None]
        d = r.log_softmax(-1).gather(-1, y)[..., 0] - lp.gather(-1, y)[..., 0]
        expected.append(dict(n=n, thr=thr, ent=ent, kl=torch.exp(d) - d - 1, adv=out["advantages"].clone(),
                             ids=out["completion_ids"].clone()))
        return out

    trainer._generate_and_score_completions = check
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train()
    torch.set_num_threads(threads)
    return dict(trainer=trainer, cb=cb, expected=expected, tmp=tmp, before=before, model=model, tok=tok)


def test_two_steps_log_what_an_independent_computation_gives(run):
    cb, expected = run["cb"], run["expected"]
    assert len(cb.log) == len(expected) == 2 and cb.log.steps == [0, 1]
    assert any(not torch.equal(a, b) for a, b in zip(run["before"], run["model"].parameters()))  # it trained
    for rollout, exp in zip(cb.log.rollouts, expected):
        assert rollout.group_size == 4 and len(rollout.responses) == 4
        for i, resp in enumerate(rollout.responses):
            k = exp["n"][i]
            assert resp["tokens"] == [run["tok"].decode([t]) for t in exp["ids"][i, :k].tolist()]
            torch.testing.assert_close(torch.tensor(resp["thr"]), exp["thr"][i].float(), atol=1e-6, rtol=1e-4)
            torch.testing.assert_close(torch.tensor(resp["entropy"]), exp["ent"][i, :k], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(torch.tensor(resp["kl"]), exp["kl"][i, :k], atol=1e-6, rtol=1e-4)
            assert resp["advantage"] == pytest.approx([float(exp["adv"][i])] * k, abs=1e-6)
            assert resp["seq_advantage"] == pytest.approx(float(exp["adv"][i]), abs=1e-6)
            words = [t for t in resp["tokens"] if t not in ("<bos>", "<eos>", "<pad>")]  # TRL skips specials
            assert resp["reward"] == sum(w.count("a") for w in words)
    # the policy IS the reference at the first rollout, and has moved away from it at the second
    assert max(abs(v) for resp in cb.log[0].responses for v in resp["kl"]) < 1e-6
    assert max(abs(v) for resp in cb.log[1].responses for v in resp["kl"]) > 1e-5
    # THR carries a signal (a group with mixed rewards) in at least one rollout
    assert any(abs(v) > 0 for r in cb.log.rollouts for resp in r.responses for v in resp["thr"])


def test_summaries_reach_trl_logs_and_the_log_round_trips(run):
    from interp.thr.training_log import THRTrainingLog

    trainer, cb = run["trainer"], run["cb"]
    logged = [rec for rec in trainer.state.log_history if "thr_log/entropy_mean" in rec]
    assert len(logged) == 2
    assert logged[0]["thr_log/kl_mean"] == pytest.approx(cb.log[0].stats["kl_mean"])
    back = THRTrainingLog.load(run["tmp"] / "thr_log.jsonl")
    assert [r.to_dict() for r in back.rollouts] == [r.to_dict() for r in cb.log.rollouts]
    frame = back.to_frame()
    assert len(frame) == sum(len(resp["tokens"]) for r in back.rollouts for resp in r.responses)
    assert set(["thr", "advantage", "entropy", "kl", "token", "step"]) <= set(frame.columns)
    assert "THRTrainingLog(2 rollouts" in repr(back)


def test_training_viewer_renders_the_log(run):
    from widgets import THRTrainingViewer

    log = run["cb"].log
    v = THRTrainingViewer(log)
    assert v.rollout.max == 1 and v.rollout.value == 1 and v.step_label.value == "step 1"
    heat = v.figure().data[0]
    row0 = log[1].group(0)[0]
    assert list(heat.z[0][:len(row0["thr"])]) == pytest.approx(row0["thr"])
    v.quantity.value = "entropy"
    assert list(v.figure().data[0].z[0][:len(row0["thr"])]) == pytest.approx(row0["entropy"])
    v.rollout.value = 0
    assert v.step_label.value == "step 0" and "step 0" in v.figure().layout.title.text.lower()
    assert "<div" in v.static_html()
    with pytest.raises(ValueError, match="quantity"):
        THRTrainingViewer(log, quantity="loss")


def test_bad_input_is_refused(run):
    from interp.thr import THRInputError
    from interp.thr.training_log import THRTrainingLog, TrainingLogError
    from interp.thr.trl_callback import THRCallback

    with pytest.raises(THRInputError, match="already has a THRCallback"):
        THRCallback().attach(run["trainer"])
    with pytest.raises(THRInputError, match="GRPOTrainer"):
        THRCallback().attach(object())
    with pytest.raises(THRInputError, match="vocab"):
        THRCallback(vocab="all")
    with pytest.raises(THRInputError, match="whole groups"):
        THRTrainingLog().add_rollout(0, 4, ["p"] * 3, [["a"]] * 3, [[0.0]] * 3, [[0.0]] * 3, [[0.0]] * 3, None,
                                     [0.0] * 3, [0.0] * 3)
    bad = run["tmp"] / "bad.jsonl"
    bad.write_text('{"step": 0}\n')
    with pytest.raises(TrainingLogError, match="line 1"):
        THRTrainingLog.load(bad)


def test_sequence_advantages_behind_a_reweighting_subclass():
    """Under THRGRPOTrainer the loss gets (B, T) advantages w * A; THR still needs TRL's per-sequence A, which
    TRL logged for the rollout (the last B entries)."""
    from types import SimpleNamespace

    from interp.thr import THRInputError
    from interp.thr.trl_callback import THRCallback

    seq = torch.tensor([0.5, -1.5, 1.0, 0.0])
    token = seq[:, None] * torch.tensor([[1.5, 0.5, 1.0]] * 4)
    trainer = SimpleNamespace(_logs={"advantages": [9.0, 9.0, *seq.tolist()]},
                              accelerator=SimpleNamespace(num_processes=1))
    assert torch.equal(THRCallback._sequence_advantages(trainer, {"advantages": token}), seq)
    assert torch.equal(THRCallback._sequence_advantages(trainer, {"advantages": seq}), seq)
    trainer.accelerator.num_processes = 2
    with pytest.raises(THRInputError, match="per-sequence"):
        THRCallback._sequence_advantages(trainer, {"advantages": token})
