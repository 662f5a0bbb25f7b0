"""TRL adapter: two THR-reweighted GRPO steps with a tiny model on CPU (skipped without TRL)."""

from __future__ import annotations

import pytest
import torch

from conftest import shared_model_dir

trl = pytest.importorskip("trl", reason="TRL is an optional extra (pip install -c constraints.txt trl); adapter not tested")


@pytest.mark.skipif(not (shared_model_dir() / "config.json").is_file(), reason="stories260K not present")
def test_trl_adapter_runs_two_steps_with_token_advantages(tmp_path, monkeypatch):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp.thr.trl_adapter import THRGRPOTrainer

    monkeypatch.setenv("WANDB_DISABLED", "true")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest on a shared CPU
    try:
        _run(tmp_path, monkeypatch, AutoModelForCausalLM, AutoTokenizer, Dataset, THRGRPOTrainer)
    finally:
        torch.set_num_threads(threads)


def _run(tmp_path, monkeypatch, AutoModelForCausalLM, AutoTokenizer, Dataset, THRGRPOTrainer):
    model = AutoModelForCausalLM.from_pretrained(shared_model_dir())
    tok = AutoTokenizer.from_pretrained(shared_model_dir())
    before = [p.detach().clone() for p in model.parameters()]
    ds = Dataset.from_dict({"prompt": ["Once upon a time, there was a cat.", "Tom saw a big dog.",
                                       "Lily had a red ball.", "One day, Sue found a box."] * 2})

    def reward(completions, **kwargs):
        return [float(c.count("e")) for c in completions]  # real-valued, rarely equal within a group

    from interp.thr import token_hidden_reward
    from test_thr_grpo import _hand_weights

    seen, base = [], []
    parent = trl.GRPOTrainer._generate_and_score_completions
    orig = THRGRPOTrainer._generate_and_score_completions

    def parent_spy(self, inputs):  # TRL's own batch, before THR touches its advantages
        out = parent(self, inputs)
        base.append(out["advantages"].detach().clone())
        return out

    def spy(self, inputs):
        out = orig(self, inputs)
        if self.model.training:
            seen.append((out["advantages"].detach().clone(), base[-1], _expected_weights(self, out)))
        return out

    def _expected_weights(self, out):
        """THR of the batch from a forward of our own, and the weights by the rule written out by hand."""
        P, G = out["prompt_ids"].shape[1], self.num_generations
        ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
        mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
        store = {}
        handle = model.lm_head.register_forward_pre_hook(lambda m, a: store.__setitem__("h", a[0]))
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits[:, P - 1 : -1]
        handle.remove()
        hidden = store["h"][:, P - 1 : -1]
        lengths = out["completion_mask"].sum(1).tolist()
        adv = base[-1].float()
        thr = token_hidden_reward([hidden[i, :n] for i, n in enumerate(lengths)],
                                  [logits[i, :n] for i, n in enumerate(lengths)],
                                  [out["completion_ids"][i, :n] for i, n in enumerate(lengths)], adv,
                                  temperature=self.temperature, group_size=G,
                                  normalize="sequence" if self.loss_type == "grpo" else "token")
        W = torch.ones(out["completion_ids"].shape)
        for i, w in enumerate(_hand_weights(thr, adv, G, 0.5)):
            W[i, : len(w)] = w
        return W

    monkeypatch.setattr(trl.GRPOTrainer, "_generate_and_score_completions", parent_spy)
    monkeypatch.setattr(THRGRPOTrainer, "_generate_and_score_completions", spy)
    args = trl.GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4,
                          max_completion_length=6, max_steps=2, learning_rate=1e-3, logging_steps=1,
                          report_to=[], use_cpu=True, bf16=False, save_strategy="no", seed=0)
    trainer = THRGRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tok,
                             thr_p=0.5)
    trainer.train()
    assert len(seen) == 2
    for adv, trl_adv, weights in seen:  # per-token advantages w * A reached TRL's loss, w as the rule says
        assert adv.dim() == 2 and (weights != 1).any()
        torch.testing.assert_close(adv, trl_adv[:, None] * weights.to(adv.dtype), atol=1e-5, rtol=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    logged = [k for rec in trainer.state.log_history for k in rec]
    assert "thr/thr_density" in logged
    with pytest.raises(ValueError, match=r"\|p\| < 1"):
        THRGRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tok, thr_p=1.0)
