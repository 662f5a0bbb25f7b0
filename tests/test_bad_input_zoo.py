"""Bad input to the zoo (ModelConfig, LMTrainConfig, CorpusConfig, CorpusSpec, recipes and their overrides, registry
names, cards, tasks, GRPO learning rates, model names) is a clear error: ZooConfigError for what was asked,
UnknownArtefactError for a name the zoo does not have, ZooLoadError naming the file for what cannot be read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from interp import zoo
from interp.core.errors import InterpConfigError, InterpLoadError
from interp.zoo.corpus import CorpusConfig
from interp.zoo.errors import UnknownArtefactError, ZooConfigError, ZooLoadError
from interp.zoo.registry import REGISTRY, ZooEntry
from interp.zoo.toy_lm import Stage, ToyLMRecipe, recipe_from_overrides
from interp.zoo.toy_translate import CorpusSpec
from interp.zoo.training import LMTrainConfig, ModelConfig

CONFIG_CASES = [
    # ModelConfig
    (ModelConfig, dict(d_model=0), "ModelConfig.d_model=0 is invalid: it must be an integer >= 1"),
    (ModelConfig, dict(n_layers=-1), "n_layers=-1"),
    (ModelConfig, dict(n_heads=3), "d_model=128 must be divisible by n_heads=3"),
    (ModelConfig, dict(n_kv_heads=3), "n_heads=4 must be a multiple of n_kv_heads=3"),
    (ModelConfig, dict(d_model=12, n_heads=4, n_kv_heads=4), "head width d_model / n_heads = 3 is even"),
    (ModelConfig, dict(d_mlp=float("nan")), "d_mlp=nan"),
    (ModelConfig, dict(max_len=1), "max_len=1"),
    (ModelConfig, dict(rope_theta=0.0), "rope_theta=0.0"),
    (ModelConfig, dict(vocab_size=1), "vocab_size=1"),
    (ModelConfig, dict(tie_embeddings="no"), "tie_embeddings='no'"),
    # LMTrainConfig
    (LMTrainConfig, dict(steps=0), "LMTrainConfig.steps=0 is invalid: it must be an integer >= 1"),
    (LMTrainConfig, dict(batch_size=0), "batch_size=0"),
    (LMTrainConfig, dict(lr=float("nan")), "lr=nan"),
    (LMTrainConfig, dict(min_lr_ratio=2.0), "min_lr_ratio=2.0"),
    (LMTrainConfig, dict(warmup_steps=-1), "warmup_steps=-1"),
    (LMTrainConfig, dict(weight_decay=-0.1), "weight_decay=-0.1"),
    (LMTrainConfig, dict(betas=(1.0, 0.9)), "betas=(1.0, 0.9)"),
    (LMTrainConfig, dict(grad_clip=0.0), "grad_clip=0.0"),
    (LMTrainConfig, dict(seed=-1), "seed=-1"),
    (LMTrainConfig, dict(val_fraction=1.0), "val_fraction=1.0"),
    (LMTrainConfig, dict(n_threads=0), "n_threads=0"),
    (LMTrainConfig, dict(log_every=0), "log_every=0"),
    (LMTrainConfig, dict(init_from=""), "init_from=''"),
    # CorpusConfig
    (CorpusConfig, dict(n_docs=0), "CorpusConfig.n_docs=0"),
    (CorpusConfig, dict(seed=-2), "seed=-2"),
    (CorpusConfig, dict(doc_chars=(650, 300)), "shortest <= longest"),
    (CorpusConfig, dict(doc_chars=(1.5, 3)), "two integers"),
    (CorpusConfig, dict(mix={"poetry": 1.0}), "Unknown segment kinds in CorpusConfig.mix: ['poetry']"),
    (CorpusConfig, dict(mix={"qa": -1.0}), "The weight of 'qa' is -1.0"),
    (CorpusConfig, dict(mix={"qa": 0.0}), "with a positive sum"),
    # CorpusSpec (toy-translate)
    (CorpusSpec, dict(n_docs=0), "CorpusSpec.n_docs=0"),
    (CorpusSpec, dict(n_concepts=0), "n_concepts=0"),
    (CorpusSpec, dict(pivot=""), "pivot=''"),
    (CorpusSpec, dict(p_gloss=float("nan")), "p_gloss=nan"),
    (CorpusSpec, dict(p_pivot_pair=0.0, p_direct_pair=0.0, p_gloss=0.0), "have a positive sum"),
    (CorpusSpec, dict(resource_weight={"huge": 1.0}), "Unknown key 'huge'"),
    # recipes
    (ToyLMRecipe, dict(vocab_size=100), "ToyLMRecipe.vocab_size=100 is invalid: it must be an integer >= 259"),
    (ToyLMRecipe, dict(eval_n=0), "eval_n=0"),
    (ToyLMRecipe, dict(eval_seed=-1), "eval_seed=-1"),
    (ToyLMRecipe, dict(model={"d_model": 64}), "ToyLMRecipe.model={'d_model': 64} is invalid: it must be a ModelConfig"),
    (ToyLMRecipe, dict(continuations=[1]), "a list of Stage(corpus, train)"),
    (Stage, dict(corpus=CorpusConfig(), train={"steps": 3}), "Stage.train={'steps': 3}"),
]


@pytest.mark.parametrize("cls, kwargs, fragment", CONFIG_CASES,
                         ids=[f"{c[0].__name__}-{'-'.join(c[1])}" for c in CONFIG_CASES])
def test_zoo_config_fields(cls, kwargs, fragment):
    with pytest.raises(ZooConfigError, match=re.escape(fragment)):
        cls(**kwargs)


def _card_folder(tmp_path, monkeypatch, content):
    """A temporary zoo entry whose card holds ``content`` (the registry's own checkpoints are never touched)."""
    import interp.zoo.registry as registry

    monkeypatch.setattr(registry, "CHECKPOINTS", tmp_path)
    folder = tmp_path / "tmp-card"
    folder.mkdir()
    if content is not None:
        (folder / "card.json").write_text(content)
    (folder / "config.json").write_text("{}")
    monkeypatch.setitem(REGISTRY, "tmp-card", ZooEntry("tmp-card", "model", "test entry", "x:y"))
    return folder


@pytest.mark.parametrize("content, error, fragment", [
    ("{oops", ZooLoadError, "card.json is not valid JSON"),
    ("[1, 2]", ZooLoadError, "must hold a JSON object (the card of 'tmp-card'); got a list"),
    (None, ZooLoadError, "has no card at"),
])
def test_damaged_cards_name_the_file(tmp_path, monkeypatch, content, error, fragment):
    folder = _card_folder(tmp_path, monkeypatch, content)
    with pytest.raises(error, match=re.escape(fragment)) as info:
        zoo.card("tmp-card")
    assert str(folder) in str(info.value)


def test_a_missing_card_is_also_a_file_not_found(tmp_path, monkeypatch):
    _card_folder(tmp_path, monkeypatch, None)
    with pytest.raises(FileNotFoundError):
        zoo.card("tmp-card")


def test_an_untrained_artefact_says_how_to_train_it(tmp_path, monkeypatch):
    import interp.zoo.registry as registry

    monkeypatch.setattr(registry, "CHECKPOINTS", tmp_path)
    monkeypatch.setitem(REGISTRY, "tmp-empty", ZooEntry("tmp-empty", "model", "test entry", "x:y"))
    with pytest.raises(ZooLoadError, match=re.escape("has no checkpoint at")) as info:
        zoo.model_dir("tmp-empty")
    assert isinstance(info.value, FileNotFoundError) and "interp zoo train tmp-empty" in str(info.value)


CASES = [
    # registry names
    ("unknown artefact", lambda: zoo.entry("toy-llm"), UnknownArtefactError, "No zoo artefact named 'toy-llm'"),
    ("artefact name of another type", lambda: zoo.entry(3), UnknownArtefactError, "(a int; zoo names are strings)"),
    ("artefact name as a Path", lambda: zoo.entry(Path("toy-lm")), UnknownArtefactError,
     "(a PosixPath; zoo names are strings)"),
    ("model_dir of SAEs", lambda: zoo.model_dir("toy-lm-saes"), UnknownArtefactError,
     "'toy-lm-saes' is a zoo saes, not a model"),
    ("load_saes of a model", lambda: zoo.load_saes("toy-lm"), UnknownArtefactError, "not a set of SAEs"),
    ("card of an unknown name", lambda: zoo.card("nope"), UnknownArtefactError, "No zoo artefact named 'nope'"),
    ("train an unknown name", lambda: zoo.train("nope"), UnknownArtefactError, "No zoo artefact named 'nope'"),
    # recipes and overrides
    ("unknown toy-lm option", lambda: recipe_from_overrides(stepz=5), ZooConfigError,
     "Unknown toy-lm training option 'stepz'"),
    ("toy-lm override out of range", lambda: recipe_from_overrides(steps=-5), ZooConfigError,
     "LMTrainConfig.steps=-5"),
    ("toy-lm continuation override out of range", lambda: recipe_from_overrides(continue_lr=float("nan")),
     ZooConfigError, "LMTrainConfig.lr=nan"),
    ("toy-lm recipe override out of range", lambda: recipe_from_overrides(vocab_size=10), ZooConfigError,
     "ToyLMRecipe.vocab_size=10"),
    # tasks
    ("unknown planted task", lambda: zoo.tasks.make_items("poetry", 3), ZooConfigError, "Unknown task 'poetry'"),
    ("negative item count", lambda: zoo.tasks.make_items("qa", -1), ZooConfigError, "make_items(n=-1)"),
    ("float item count", lambda: zoo.tasks.make_items("qa", 2.5), ZooConfigError, "make_items(n=2.5)"),
    ("planted task of no items", lambda: zoo.tasks.planted_task("qa", 0), InterpConfigError, "has no examples"),
    ("GRPO task n_train=0", lambda: zoo.tasks.planted_grpo_task("arith", n_train=0), ZooConfigError,
     "planted_grpo_task(n_train=0)"),
    ("GRPO task negative seed", lambda: zoo.tasks.planted_grpo_task("arith", seed=-1), ZooConfigError, "seed=-1"),
    ("story task with no test split", lambda: zoo.stories.story_word_task(n_test=0), ZooConfigError,
     "story_word_task(n_test=0)"),
    ("story task with every prompt held out", lambda: zoo.stories.story_word_task(n_test=10**6), ZooConfigError,
     "the rest train"),
    ("story task max_new_tokens=0", lambda: zoo.stories.story_word_task(max_new_tokens=0), ZooConfigError,
     "max_new_tokens=0"),
    ("recall task of an unknown kind", lambda: zoo.stories.stories_recall_task("colour"), ZooConfigError,
     "kind must be 'name' or 'object'"),
    ("CorrSteer task of an unknown name", lambda: __import__("interp.zoo.sources", fromlist=["x"]).corrsteer_task(
        "poetry"), ZooConfigError, "Unknown task 'poetry'"),
    # GRPO learning rates
    ("no measured rate for an unknown model", lambda: zoo.suggested_grpo_lr("nobody/model"), UnknownArtefactError,
     "No measured GRPO learning rate for 'nobody/model'"),
    ("no rate for a nameless object", lambda: zoo.suggested_grpo_lr(object()), ZooConfigError,
     "needs a zoo name, a model folder or a loaded model"),
]


@pytest.mark.parametrize("case, call, error, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(case, call, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        call()


def test_path_toy_lm_is_explained_as_a_path_not_a_typo():
    """``Path("toy-lm")`` once answered "Unknown model 'toy-lm' ... Did you mean: toy-lm?"."""
    from interp import load_model
    from interp.core.models import ModelLoadError

    with pytest.raises(ModelLoadError) as info:
        load_model(Path("toy-lm"))
    message = str(info.value)
    assert "is a path, and no folder exists there" in message and "load_model('toy-lm')" in message
    assert "Did you mean" not in message


def test_every_zoo_error_has_one_of_the_two_bases():
    assert issubclass(ZooConfigError, InterpConfigError) and issubclass(UnknownArtefactError, ZooConfigError)
    assert issubclass(UnknownArtefactError, KeyError) and issubclass(ZooLoadError, InterpLoadError)
    err = UnknownArtefactError("No zoo artefact named 'x'.")
    assert str(err) == "No zoo artefact named 'x'."  # a sentence, not KeyError's quoted repr


def test_card_of_a_real_artefact_reads(tmp_path):
    try:
        card = zoo.card("toy-lm")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    assert isinstance(card, dict) and json.dumps(card)
