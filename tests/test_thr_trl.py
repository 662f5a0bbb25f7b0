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

    seen = []
    orig = THRGRPOTrainer._generate_and_score_completions

    def spy(self, inputs):
        out = orig(self, inputs)
        seen.append(out["advantages"].detach().clone())
        return out

    monkeypatch.setattr(THRGRPOTrainer, "_generate_and_score_completions", spy)
    args = trl.GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4,
                          max_completion_length=6, max_steps=2, learning_rate=1e-3, logging_steps=1,
                          report_to=[], use_cpu=True, bf16=False, save_strategy="no", seed=0)
    trainer = THRGRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tok,
                             thr_p=0.5)
    trainer.train()
    assert seen and all(a.dim() == 2 for a in seen)  # per-token advantages reached TRL's loss
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    logged = [k for rec in trainer.state.log_history for k in rec]
    assert "thr/thr_density" in logged
    with pytest.raises(ValueError, match=r"\|p\| < 1"):
        THRGRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tok, thr_p=1.0)
