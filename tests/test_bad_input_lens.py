"""Bad input to the lens (decode_layers, layer selections, TunedLens / TunedLensConfig, saved lenses) is a
clear error naming what was wrong; nothing is silently cut or decoded at the wrong position."""

from __future__ import annotations

import functools
import json
import re

import pytest
import torch

from interp.lens import TunedLens, TunedLensConfig, decode_layers, kl_by_layer, layer_hook_name, resolve_layers
from interp.lens.errors import LensConfigError, LensLoadError
from interp.core.errors import CoreConfigError
from interp.core.tokens import ContextLengthError
from test_steering_fixtures import tiny_llama, tiny_llama_with_tokenizer

LONG = " ".join(["the cat sat on the mat"] * 12)  # 72 words > the 64-token context


@functools.cache
def tiny():
    return tiny_llama_with_tokenizer()


def _windows(n=4, ctx=12):
    return torch.randint(3, 38, (n, ctx), generator=torch.Generator().manual_seed(0))


CASES = [
    ("over-long prompt", lambda: decode_layers(tiny(), LONG), ContextLengthError,
     "more than the model's context of 64 tokens"),
    ("over-long token prompt", lambda: decode_layers(tiny(), torch.ones(1, 70, dtype=torch.long)), ContextLengthError,
     "70 tokens"),
    ("k=0", lambda: decode_layers(tiny(), "the cat", k=0), LensConfigError, "decode_layers(k=0) is invalid"),
    ("k float", lambda: decode_layers(tiny(), "the cat", k=2.5), LensConfigError, "k=2.5"),
    ("k bool", lambda: decode_layers(tiny(), "the cat", k=True), LensConfigError, "k=True"),
    ("chunk_size=0", lambda: decode_layers(tiny(), "the cat", chunk_size=0), LensConfigError, "chunk_size=0"),
    ("final_norm not a bool", lambda: decode_layers(tiny(), "the cat", final_norm="yes"), LensConfigError,
     "final_norm='yes'"),
    ("positions=True", lambda: decode_layers(tiny(), "the cat", positions=True), LensConfigError, "positions=True"),
    ("positions of floats", lambda: decode_layers(tiny(), "the cat", positions=[0.5]), LensConfigError,
     "positions=[0.5]"),
    ("target outside vocabulary", lambda: decode_layers(tiny(), "the cat", target_ids=[38]), LensConfigError,
     "token ids in [0, 38)"),
    ("negative target", lambda: decode_layers(tiny(), "the cat", target_ids=-1), LensConfigError, "target_ids=-1"),
    ("float targets", lambda: decode_layers(tiny(), "the cat", target_ids=[1.5]), LensConfigError, "target_ids=[1.5]"),
    ("hook name as a layer", lambda: decode_layers(tiny(), "the cat", layers=["blocks.1.hook_resid_post"]),
     LensConfigError, "'blocks.1.hook_resid_post' is lens index 2"),
    ("hook name as the selection", lambda: decode_layers(tiny(), "the cat", layers="blocks.0.hook_resid_post"),
     LensConfigError, "is not a lens index"),
    ("float layer", lambda: decode_layers(tiny(), "the cat", layers=[1.0]), LensConfigError,
     "Layer 1.0 is not a lens index"),
    ("layer beyond the model", lambda: decode_layers(tiny(), "the cat", layers=[4]), LensConfigError,
     "Layer index 4 is outside 0..3"),
    ("last -9 of 4 layers", lambda: decode_layers(tiny(), "the cat", layers=-9), LensConfigError,
     "there are only 4 lens layers"),
    ("positive int selection", lambda: resolve_layers(2, 3), LensConfigError, "must be negative"),
    ("empty selection", lambda: resolve_layers([], 3), LensConfigError, "The layer selection is empty"),
    ("repeated layer", lambda: resolve_layers([1, -3], 3), LensConfigError, "repeats a layer"),
    ("hook for a bool index", lambda: layer_hook_name(True, 3), LensConfigError, "True is not a lens index"),
    ("unknown lens", lambda: decode_layers(tiny(), "the cat", lens="tuned-ish"), LensConfigError,
     "lens='tuned-ish' is not 'logit', 'tuned'"),
    ("tuned lens not attached", lambda: decode_layers(tiny_llama(3), torch.ones(1, 3, dtype=torch.long), lens="tuned"),
     LensConfigError, "no tuned lens is attached"),
    ("lens of another model", lambda: decode_layers(tiny(), "the cat", lens=TunedLens(5, 32)), LensConfigError,
     "made for n_layers=5"),
    # TunedLens.train arguments
    ("train on windows wider than the context", lambda: TunedLens.train(tiny(), _windows(4, 70), progress=False),
     ContextLengthError, "70 positions wide"),
    ("train on ids outside the vocabulary", lambda: TunedLens.train(tiny(), torch.full((2, 5), 50), progress=False),
     CoreConfigError, "outside the model's vocabulary"),
    ("train on a list of ints", lambda: TunedLens.train(tiny(), [1, 2, 3], progress=False), LensConfigError,
     "non-empty list of strings"),
    ("train ctx=1", lambda: TunedLens.train(tiny(), ["the cat sat"], ctx=1, progress=False), LensConfigError,
     "TunedLens.train(ctx=1)"),
    ("train with a dict config", lambda: TunedLens.train(tiny(), _windows(), {"steps": 3}, progress=False),
     LensConfigError, "a TunedLensConfig"),
    ("kl over windows too wide", lambda: kl_by_layer(tiny(), _windows(2, 80)), ContextLengthError, "80 positions"),
    ("kl rows_chunk=0", lambda: kl_by_layer(tiny(), _windows(2, 8), rows_chunk=0), LensConfigError, "rows_chunk=0"),
]


@pytest.mark.parametrize("case, call, error, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(case, call, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        call()


CONFIG_CASES = [
    (dict(steps=-5), "TunedLensConfig.steps=-5 is invalid: it must be an integer >= 1"),
    (dict(steps=0), "steps=0"),
    (dict(batch_size=0), "batch_size=0"),
    (dict(lr=float("nan")), "lr=nan"),
    (dict(lr=0.0), "it must be a finite number > 0"),
    (dict(weight_decay=-0.1), "weight_decay=-0.1"),
    (dict(seed=-1), "seed=-1"),
    (dict(vocab_chunk_rows=0), "vocab_chunk_rows=0"),
]


@pytest.mark.parametrize("kwargs, fragment", CONFIG_CASES)
def test_tuned_lens_config_fields(kwargs, fragment):
    with pytest.raises(LensConfigError, match=re.escape(fragment)):
        TunedLensConfig(**kwargs)


def test_the_lens_never_decodes_a_silently_cut_prompt():
    """An over-long prompt is refused; asked to, the lens keeps the end, so "last" is the prompt's last token."""
    res = decode_layers(tiny(), LONG, truncate="left", prepend_bos=False)
    ids = tiny().tokenizer(LONG, add_special_tokens=False)["input_ids"]
    assert res.tokens.shape[1] == 64 and res.tokens[0, -1].item() == ids[-1]


# ---------------------------------------------------------------------------------------- saved lenses
@pytest.fixture()
def saved(tmp_path):
    lens = TunedLens.for_model(tiny())
    with torch.no_grad():
        lens.bias.normal_()
    return lens.save(tmp_path / "lens"), lens


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage, error, fragment", [
    (lambda d: (d / "tuned_lens.json").unlink(), FileNotFoundError, "missing tuned_lens.json"),
    (lambda d: (d / "tuned_lens.safetensors").unlink(), FileNotFoundError, "missing tuned_lens.safetensors"),
    (lambda d: (d / "tuned_lens.json").write_text("{oops"), LensLoadError, "tuned_lens.json is not valid JSON"),
    (lambda d: (d / "tuned_lens.json").write_text(json.dumps({"n_layers": -1, "d_model": 32})), LensLoadError,
     "needs positive integers n_layers and d_model"),
    (lambda d: _truncate(d / "tuned_lens.safetensors"), LensLoadError, "tuned_lens.safetensors is corrupt or truncated"),
    (lambda d: (d / "tuned_lens.json").write_text(json.dumps({"n_layers": 2, "d_model": 32})), LensLoadError,
     "does not match tuned_lens.json (n_layers=2, d_model=32)"),
])
def test_damaged_lens_files_name_the_file(saved, damage, error, fragment):
    folder, _ = saved
    damage(folder)
    with pytest.raises(error, match=re.escape(fragment)) as info:
        TunedLens.load(folder, tiny())
    assert isinstance(info.value, LensLoadError)


def test_non_finite_lens_weights_are_refused(saved):
    from safetensors.torch import save_file

    folder, lens = saved
    save_file({"weight": lens.weight.detach() * float("nan"), "bias": lens.bias.detach()},
              str(folder / "tuned_lens.safetensors"))
    with pytest.raises(LensLoadError, match="NaN or inf"):
        TunedLens.load(folder, tiny())


def test_a_lens_for_another_model_is_refused_before_it_is_attached(saved):
    from interp.lens import attached_lens

    folder, _ = saved
    other = tiny_llama(1)
    other.cfg.n_layers  # 3 layers, like tiny(); change the width instead
    wide = TunedLens(3, 16)
    path = wide.save(folder.parent / "wide")
    with pytest.raises(LensConfigError, match="made for n_layers=3, d_model=16"):
        TunedLens.load(path, other)
    assert attached_lens(other) is None
