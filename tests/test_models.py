"""Model loading: stories260K offline matches transformers; errors say what to do."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch

from interp.core.models import ModelLoadError, load_model, resolve_device


def _hf(stories_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(stories_dir).eval(), AutoTokenizer.from_pretrained(stories_dir)


TEXTS = [
    "Once upon a time, there was a little girl named Lily.",
    "The dog ran to the park and saw a big red ball. He was very happy",
]


@pytest.mark.parametrize("processing", ["none", "fold_ln", "full"])
def test_stories_logprobs_match_transformers(stories_dir, processing):
    hf, tok = _hf(stories_dir)
    model = load_model(stories_dir, device="cpu", processing=processing)
    for text in TEXTS:
        ids = tok(text, return_tensors="pt").input_ids
        assert ids[0, 0].item() == tok.bos_token_id
        with torch.no_grad():
            ours = model(ids).log_softmax(-1)
            ref = hf(ids).logits.log_softmax(-1)
        assert (ours - ref).abs().max().item() < 1e-4


def test_stories_raw_processing_keeps_hf_residuals(stories_dir, stories_model):
    hf, tok = _hf(stories_dir)
    ids = tok(TEXTS[0], return_tensors="pt").input_ids
    with torch.no_grad():
        hidden = hf(ids, output_hidden_states=True).hidden_states
        _, cache = stories_model.run_with_cache(ids, names_filter=lambda n: n.endswith("hook_resid_pre"))
    for layer in range(stories_model.cfg.n_layers):
        assert torch.allclose(cache[f"blocks.{layer}.hook_resid_pre"], hidden[layer], atol=1e-5)


def test_stories_greedy_continuation_matches_transformers(stories_dir, stories_model):
    hf, tok = _hf(stories_dir)
    prompt = "Once upon a time"
    ids = tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        ref = hf.generate(ids, max_new_tokens=24, do_sample=False)
        ours = stories_model.generate(ids, max_new_tokens=24, do_sample=False, verbose=False, use_past_kv_cache=True)
    assert ours[0].tolist() == ref[0].tolist()
    assert tok.decode(ours[0], skip_special_tokens=True).startswith("Once upon a time, there was a little girl named Lily")


def test_folder_loads_without_network(stories_dir, monkeypatch):
    # Any attempt to reach the hub would raise here.
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("the loader tried to reach the hub for a local folder")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    model = load_model(str(stories_dir), device="cpu")
    assert model.cfg.n_layers == 5 and model.cfg.n_key_value_heads == 4


def test_extra_model_folders_from_env(monkeypatch):
    """INTERP_TEST_MODELS lists other HF folders (os.pathsep-separated) to check the same way."""
    folders = [Path(p) for p in os.environ.get("INTERP_TEST_MODELS", "").split(os.pathsep) if p]
    if not folders:
        pytest.skip("INTERP_TEST_MODELS is not set: no extra local model folders to check")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for folder in folders:
        assert folder.is_dir(), f"INTERP_TEST_MODELS names {folder}, which does not exist"
        hf, tok = AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
        model = load_model(folder, device="cpu")
        ids = tok(TEXTS[0], return_tensors="pt").input_ids
        with torch.no_grad():
            diff = (model(ids).log_softmax(-1) - hf(ids).logits.log_softmax(-1)).abs().max().item()
        assert diff < 1e-3, f"{folder}: max |log-prob diff| {diff}"


# ----- bad input -----------------------------------------------------------------------------


def test_unknown_name_suggests(monkeypatch):
    with pytest.raises(ModelLoadError, match="Unknown model 'gpt2-smal'.*Did you mean.*gpt2-small"):
        load_model("gpt2-smal")


def test_missing_folder():
    with pytest.raises(ModelLoadError, match="No model folder at"):
        load_model("./no/such/model/folder")


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(tmp_path)


def test_file_instead_of_folder(tmp_path):
    f = tmp_path / "weights.safetensors"
    f.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(f)


def test_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["FancyNewForCausalLM"], "model_type": "fancy"}))
    with pytest.raises(ModelLoadError, match="FancyNewForCausalLM"):
        load_model(tmp_path)


def test_offline_hub_name_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="no network.*nothing cached.*local folder"):
        load_model("gpt2-small", device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_unavailable_device():
    with pytest.raises(ModelLoadError, match="sees no CUDA GPU.*device='cpu'"):
        resolve_device("cuda")
    with pytest.raises(ModelLoadError, match="Unknown device"):
        resolve_device("tpu-9000")


def test_bad_processing_and_dtype(stories_dir):
    with pytest.raises(ModelLoadError, match="processing='fold'"):
        load_model(stories_dir, processing="fold")
    with pytest.raises(ModelLoadError, match="Unknown dtype"):
        load_model(stories_dir, dtype="float7")


def test_load_time_is_small(stories_dir):
    start = time.perf_counter()
    load_model(stories_dir, device="cpu")
    assert time.perf_counter() - start < 5.0
