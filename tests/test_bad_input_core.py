"""Bad input to the shared layer (tokens, generation, activation streams, tasks, checkpoints, model loading,
figures) is a clear error: each case names the expected error type and a fragment of its message."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
import torch

from interp.core.activations import ActivationStream, sample_tokens, text_tokens
from interp.core.checkpoint import (CheckpointError, CheckpointMismatchError, check_data_fingerprint,
                                    config_differences, data_fingerprint, read_checkpoint, write_checkpoint)
from interp.core.errors import CoreConfigError, InterpConfigError, InterpLoadError
from interp.core.generation import generate
from interp.core.models import ModelLoadError, load_model
from interp.core.tasks import Example, ExactMatchTask, NumericTask, Task, TaskFormatError, load_task
from interp.core.tokens import ContextLengthError, check_tokens, encode_prompts, fit_to_context
from interp.viz.figures import FigureConfigError, paper_layout
from test_steering_fixtures import tiny_llama_with_tokenizer

LONG = " ".join(["the cat sat on the mat"] * 12)  # 72 words: more than the tiny model's 64-token context


@functools.cache
def tiny():
    return tiny_llama_with_tokenizer()


def _tokens(n=4, ctx=12):
    return torch.randint(3, 38, (n, ctx), generator=torch.Generator().manual_seed(0))


def _task(**kw):
    return ExactMatchTask("t", [Example("the cat", "sat")] * 4, **kw)


CASES = [
    # ---- tokens / the length policy
    ("prompt longer than the context", lambda: encode_prompts(tiny(), LONG), ContextLengthError,
     "tokens, more than the model's context of 64"),
    ("prompt + generation too long", lambda: encode_prompts(tiny(), "the cat sat", reserve=63), ContextLengthError,
     "plus 63 tokens to generate"),
    ("generation alone fills the context", lambda: encode_prompts(tiny(), "the cat", reserve=64), ContextLengthError,
     "leave no room"),
    ("token prompts too long", lambda: encode_prompts(tiny(), torch.ones(1, 80, dtype=torch.long)),
     ContextLengthError, "80 tokens"),
    ("token prompts outside the vocabulary", lambda: encode_prompts(tiny(), torch.tensor([[1, 999]])),
     CoreConfigError, "outside the model's vocabulary 0..37"),
    ("float token prompts", lambda: encode_prompts(tiny(), torch.ones(1, 3)), CoreConfigError,
     "non-empty integer tensor"),
    ("no prompts", lambda: encode_prompts(tiny(), []), CoreConfigError, "No prompts given"),
    ("unknown truncation", lambda: fit_to_context([[1, 2, 3]], 2, truncate="middle"), CoreConfigError,
     "truncate='middle' is invalid"),
    ("negative reserve", lambda: fit_to_context([[1, 2]], 8, reserve=-1), CoreConfigError, "reserve=-1"),
    ("windows wider than the context", lambda: check_tokens(tiny(), torch.ones(2, 65, dtype=torch.long)),
     ContextLengthError, "65 positions wide, more than the model's context of 64"),
    ("window ids outside the vocabulary", lambda: check_tokens(tiny(), torch.full((2, 4), 40)), CoreConfigError,
     "ids 40..40, outside the model's vocabulary"),
    ("a 1-D window", lambda: check_tokens(tiny(), torch.ones(5, dtype=torch.long)), CoreConfigError,
     "a single window needs tokens[None]"),
    ("windows as a list", lambda: check_tokens(tiny(), [[1, 2]]), CoreConfigError, "got a list"),
    ("no windows", lambda: check_tokens(tiny(), torch.ones(0, 4, dtype=torch.long)), CoreConfigError,
     "needs at least 1 sequence"),
    # ---- generation
    ("max_new_tokens=0", lambda: generate(tiny(), ["the cat"], 0), CoreConfigError,
     "generate(max_new_tokens=0) is invalid: it must be an integer >= 1"),
    ("max_new_tokens float", lambda: generate(tiny(), ["the cat"], 2.5), CoreConfigError, "max_new_tokens=2.5"),
    ("NaN temperature", lambda: generate(tiny(), ["the cat"], 2, temperature=float("nan")), CoreConfigError,
     "temperature=nan"),
    ("negative temperature", lambda: generate(tiny(), ["the cat"], 2, temperature=-1.0), CoreConfigError,
     "a finite number >= 0"),
    ("negative seed", lambda: generate(tiny(), ["the cat"], 2, temperature=1.0, seed=-1), CoreConfigError,
     "seed=-1"),
    ("stop as a bare string", lambda: generate(tiny(), ["the cat"], 2, stop="\n"), CoreConfigError,
     "a tuple of non-empty strings"),
    ("record an unknown hook", lambda: generate(tiny(), ["the cat"], 2, record=["blocks.9.hook_resid_post"]),
     CoreConfigError, "Unknown: ['blocks.9.hook_resid_post']"),
    ("long prompt while generating", lambda: generate(tiny(), [LONG], 4), ContextLengthError,
     "plus 4 tokens to generate"),
    ("id rows outside the vocabulary", lambda: generate(tiny(), [[0, 500]], 2), CoreConfigError,
     "outside the model's vocabulary"),
    ("generator of the wrong type", lambda: generate(tiny(), ["the"], 2, temperature=1.0, generator=3),
     CoreConfigError, "must be a torch.Generator"),
    # ---- activation streams and token sources
    ("stream batch_size=0", lambda: ActivationStream(tiny(), _tokens(), ["blocks.0.hook_resid_post"], batch_size=0),
     CoreConfigError, "batch_size=0"),
    ("stream without hooks", lambda: ActivationStream(tiny(), _tokens(), [], batch_size=2), CoreConfigError,
     "name at least one hook"),
    ("stream of an unknown hook", lambda: ActivationStream(tiny(), _tokens(), ["blocks.7.x"], batch_size=2), KeyError,
     "Unknown hook(s)"),
    ("stream rank outside world", lambda: ActivationStream(tiny(), _tokens(), ["blocks.0.hook_resid_post"],
                                                           batch_size=2, rank=2, world_size=2), CoreConfigError,
     "rank=2"),
    ("stream epochs=0", lambda: ActivationStream(tiny(), _tokens(), ["blocks.0.hook_resid_post"], batch_size=2,
                                                 epochs=0), CoreConfigError, "epochs=0"),
    ("stream windows too wide", lambda: ActivationStream(tiny(), _tokens(4, 70), ["blocks.0.hook_resid_post"],
                                                         batch_size=2), ContextLengthError, "70 positions wide"),
    ("stream fewer sequences than a batch", lambda: ActivationStream(tiny(), _tokens(2), ["blocks.0.hook_resid_post"],
                                                                      batch_size=4), CoreConfigError,
     "Only 2 sequences for batch_size=4"),
    ("stream pad id outside vocabulary", lambda: ActivationStream(tiny(), _tokens(), ["blocks.0.hook_resid_post"],
                                                                 batch_size=2, pad_token_id=99), CoreConfigError,
     "pad_token_id=99"),
    ("sample ctx beyond the context", lambda: sample_tokens(tiny(), 2, 100, progress=False), CoreConfigError,
     "at most the model's context of 64"),
    ("sample zero sequences", lambda: sample_tokens(tiny(), 0, 8), CoreConfigError, "n_sequences=0"),
    ("sample temperature 0", lambda: sample_tokens(tiny(), 2, 8, temperature=0.0), CoreConfigError,
     "temperature=0.0"),
    ("text windows beyond the context", lambda: text_tokens(tiny(), ["the cat"], 100), CoreConfigError, "ctx=100"),
    ("too little text", lambda: text_tokens(tiny(), ["the cat"], 16), CoreConfigError, "fewer than one row"),
    # ---- tasks
    ("task with no examples", lambda: ExactMatchTask("t", []), TaskFormatError, "has no examples"),
    ("task max_new_tokens=0", lambda: _task(max_new_tokens=0), TaskFormatError, "max_new_tokens=0"),
    ("task stop as a bare string", lambda: _task(stop="\n"), TaskFormatError, "Write stop=('\\n',)"),
    ("task examples of the wrong type", lambda: ExactMatchTask("t", [("the cat", "sat")]), TaskFormatError,
     "a sequence of Example(prompt, answer)"),
    ("task unknown match", lambda: _task(match="fuzzy"), TaskFormatError, "match='fuzzy'"),
    ("numeric task unknown which", lambda: NumericTask("n", [Example("1+1=", "2")], which="middle"),
     TaskFormatError, "which='middle'"),
    ("task unknown answer format", lambda: _task(answer_format="essay"), TaskFormatError, "answer_format='essay'"),
    ("empty validation split", lambda: _task().split(train=3, val=0), TaskFormatError, "val=0"),
    ("split leaves the test split empty", lambda: _task().split(train=3, val=1), TaskFormatError,
     "leaves test empty"),
    ("split fraction above one", lambda: _task().split(train=1.5, val=0.2), TaskFormatError, "train=1.5"),
    ("split negative seed", lambda: _task().split(train=2, val=1, seed=-2), TaskFormatError, "seed=-2"),
    ("labels of another length", lambda: _task().labels(["a"]), TaskFormatError, "Got 1 generations for 4"),
    # ---- figures
    ("paper width 'triple'", lambda: paper_layout(__import__("plotly.graph_objects").graph_objects.Figure(), "triple"),
     FigureConfigError, "width must be 'single', 'double' or inches, not 'triple'"),
    ("paper width negative", lambda: paper_layout(__import__("plotly.graph_objects").graph_objects.Figure(), -2.0),
     FigureConfigError, "paper_layout(width=-2.0)"),
]


@pytest.mark.parametrize("case, call, error, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(case, call, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        call()


def test_every_core_error_is_one_of_the_two_bases():
    assert issubclass(ContextLengthError, CoreConfigError) and issubclass(CoreConfigError, InterpConfigError)
    assert issubclass(TaskFormatError, InterpConfigError) and issubclass(InterpConfigError, ValueError)
    assert issubclass(CheckpointError, InterpLoadError) and issubclass(ModelLoadError, InterpLoadError)
    assert issubclass(CheckpointMismatchError, CheckpointError) and issubclass(CheckpointMismatchError, ValueError)


def test_explicit_truncation_keeps_the_asked_end():
    toks, _ = encode_prompts(tiny(), LONG, truncate="left", prepend_bos=False)
    assert toks.shape[1] == 64
    full = tiny().tokenizer(LONG, add_special_tokens=False)["input_ids"]
    assert toks[0].tolist() == full[-64:]
    toks, _ = encode_prompts(tiny(), LONG, truncate="right", prepend_bos=False, reserve=4)
    assert toks[0].tolist() == full[:60]
    cut = check_tokens(tiny(), torch.arange(70)[None] % 30 + 3, truncate="left")
    assert cut.shape == (1, 64) and cut[0, -1] == (69 % 30 + 3)


# ---------------------------------------------------------------------------------------- loaders
def _files(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize("name, content, error, fragment", [
    ("bad.json", "[{\"prompt\": 1", TaskFormatError, "bad.json: not valid JSON"),
    ("bad.jsonl", "{\"prompt\": \"a\", \"answer\": \"b\"}\n{oops", TaskFormatError, "bad.jsonl, line 2: not valid JSON"),
    ("obj.json", "{\"prompt\": \"a\"}", TaskFormatError, "must hold a JSON list"),
    ("bad.parquet", b"PAR1 not really", TaskFormatError, "bad.parquet: could not be read as parquet"),
    ("fields.jsonl", "{\"question\": \"a\"}", TaskFormatError, "lacks 'prompt' or 'answer'"),
    ("task.txt", "x", TaskFormatError, "Unsupported task file"),
])
def test_task_files_name_the_file(tmp_path, name, content, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        load_task(_files(tmp_path, name, content))


def test_missing_task_file_is_a_load_error_and_a_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="No task file") as info:
        load_task(tmp_path / "none.jsonl")
    assert isinstance(info.value, InterpLoadError)


def _checkpoint(tmp_path: Path) -> Path:
    module = torch.nn.Linear(3, 2)
    return write_checkpoint(tmp_path / "ck", {"state.safetensors": {"x": torch.ones(3)}}, {"step": 1},
                            models={"model.safetensors": module})


@pytest.mark.parametrize("damage, fragment", [
    (lambda d: (d / "state.json").unlink(), "missing state.json"),
    (lambda d: (d / "state.json").write_text("{not json"), "state.json is not valid JSON"),
    (lambda d: (d / "state.json").write_text(json.dumps({"step": 1})), "was not completely written"),
    (lambda d: _truncate(d / "state.safetensors"), "state.safetensors is corrupt or truncated"),
    (lambda d: _truncate(d / "model.safetensors"), "model.safetensors is corrupt or truncated"),
])
def test_damaged_checkpoints_name_the_file(tmp_path, damage, fragment):
    folder = _checkpoint(tmp_path)
    damage(folder)
    with pytest.raises(CheckpointError, match=re.escape(fragment)):
        read_checkpoint(folder, ("state.safetensors",), models={"model.safetensors": torch.nn.Linear(3, 2)})


def test_checkpoint_of_another_architecture_or_incomplete_is_refused(tmp_path):
    folder = _checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        read_checkpoint(folder, (), models={"model.safetensors": torch.nn.Linear(4, 2)})

    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(3, 2), torch.nn.Linear(2, 2)

    (folder / "model.safetensors").unlink()
    from safetensors.torch import save_file

    save_file({"a.weight": torch.zeros(2, 3), "a.bias": torch.zeros(2)}, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing \['b.bias', 'b.weight'\]"):
        read_checkpoint(folder, (), models={"model.safetensors": Two()})


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_fingerprints_tell_data_apart_and_mismatches_list_only_the_differing_keys():
    a, b = torch.arange(12).view(3, 4), torch.arange(12).view(4, 3)
    assert data_fingerprint(a) != data_fingerprint(b)  # same bytes, other shape
    assert data_fingerprint(a) == data_fingerprint(a.clone())
    assert data_fingerprint(["p", "q"]) != data_fingerprint(["q", "p"])
    with pytest.raises(CheckpointMismatchError, match="was written for other tokens"):
        check_data_fingerprint({"data_fingerprint": data_fingerprint(a)}, data_fingerprint(b), "ck", "tokens", "hint")
    with pytest.raises(CheckpointMismatchError, match="records no fingerprint"):
        check_data_fingerprint({}, data_fingerprint(b), "ck", "tokens", "hint")
    saved = {"lr": 1e-3, "betas": [0.9, 0.99], "nested": {"a": 1, "b": 2}, **{f"k{i}": i for i in range(40)}}
    now = {**saved, "lr": 2e-3, "nested": {"a": 1, "b": 3}}
    assert config_differences(saved, now) == {"lr": (1e-3, 2e-3), "nested.b": (2, 3)}


# ---------------------------------------------------------------------------------------- models
@pytest.mark.parametrize("source, fragment", [
    (Path("toy-lm"), "is a path, and no folder exists there; the zoo model of that name is loaded by its name"),
    ("toy_lm", "Did you mean: toy-lm?"),
    (123, "pass a zoo name, a local Hugging Face folder or a hub model name"),
    ("", "pass a zoo name"),
])
def test_model_names_are_explained(source, fragment):
    from interp import load_model as zoo_load

    with pytest.raises(ModelLoadError, match=re.escape(fragment)):
        zoo_load(source)


def test_unknown_hub_name_offline_has_no_7000_character_list(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:
        load_model("nobody/no-such-model")
    assert "Unknown model 'nobody/no-such-model'" in str(info.value) and len(str(info.value)) < 600


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(n_ctx=0), "load_model(n_ctx=0) is invalid"),
    (dict(n_ctx=2.5), "load_model(n_ctx=2.5) is invalid"),
    (dict(processing="fold"), "processing='fold'"),
    (dict(dtype="float33"), "Unknown dtype 'float33'"),
    (dict(device="quantum"), "Unknown device 'quantum'"),
])
def test_load_model_arguments(kwargs, fragment):
    from interp import load_model as zoo_load

    with pytest.raises(ModelLoadError, match=re.escape(fragment)):
        zoo_load("toy-lm", **kwargs)


@pytest.mark.parametrize("damage, fragment", [
    (lambda d: (d / "config.json").write_text("{x"), "config.json is not valid JSON"),
    (lambda d: _truncate(d / "model.safetensors"), "Could not read the weights in"),
    (lambda d: (d / "tokenizer.json").write_text("{\"bad"), "has no usable tokenizer"),
])
def test_damaged_model_folders_name_the_file(tmp_path, damage, fragment):
    import shutil

    from interp import zoo

    try:
        src = zoo.model_dir("toy-lm")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    folder = tmp_path / "m"
    shutil.copytree(src, folder)
    damage(folder)
    with pytest.raises(ModelLoadError, match=re.escape(fragment)):
        load_model(folder)
