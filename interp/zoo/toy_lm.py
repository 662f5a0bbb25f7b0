"""Recipe of the ``toy-lm`` zoo model: synthetic corpus -> BPE tokenizer -> small Llama -> card.

``train(out_dir)`` regenerates the seeded corpus (:mod:`interp.zoo.corpus`), trains the BPE
(:mod:`interp.zoo.bpe`) and the model (:mod:`interp.zoo.training`), measures greedy accuracy on each
planted task (:mod:`interp.zoo.tasks`) and writes the Hugging Face folder plus ``card.json``.

>>> from interp import zoo
>>> zoo.train("toy-lm")                                   # doctest: +SKIP  (~15 min on 2 cores)
>>> zoo.train("toy-lm", out_dir="/tmp/tiny", steps=5, n_docs=64, continue_steps=0, eval_n=4)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from interp.core.errors import also
from interp.zoo.corpus import CorpusConfig, describe, generate_corpus
from interp.zoo.errors import ZooConfigError
from interp.zoo.training import ModelConfig, LMTrainConfig, tokenize_texts, train_causal_lm

__all__ = ["ToyLMRecipe", "Stage", "train", "recipe_from_overrides", "write_card"]


_MIX_TASKS = {"filler": 1.0, "story": 0.5, "qa": 3.0, "mc": 2.0, "arith": 2.0, "copy": 2.0, "reverse": 1.0,
              "successor": 0.5, "induction": 2.0}


@dataclass
class Stage:
    """A continuation stage: a fresh corpus (its own seed and mix) and the optimisation settings."""

    corpus: CorpusConfig
    train: LMTrainConfig

    def __post_init__(self) -> None:
        from interp.core.validate import Check

        c = Check(self, ZooConfigError)
        c.instance("corpus", CorpusConfig)
        c.instance("train", LMTrainConfig)


_MIX_CONTEXT = {**_MIX_TASKS, "copy": 3.0, "induction": 3.0}
"""Later stages weigh copying from context more: the first two stages ended with no induction."""


def _default_continuations() -> list[Stage]:
    # Stages 3 and 4 run single-threaded: on 2 cores a model this small trains ~10x faster with one
    # torch thread than with two (measured), and the thread count is part of what makes a run repeatable.
    return [
        Stage(CorpusConfig(n_docs=4000, seed=1, mix=dict(_MIX_TASKS)),
              LMTrainConfig(steps=400, batch_size=8, lr=2e-3, warmup_steps=10, log_every=25, seed=1)),
        Stage(CorpusConfig(n_docs=16000, seed=5, mix=dict(_MIX_CONTEXT)),
              LMTrainConfig(steps=2500, batch_size=8, lr=1.5e-3, warmup_steps=50, log_every=100, seed=5, n_threads=1)),
        Stage(CorpusConfig(n_docs=24000, seed=6, mix=dict(_MIX_CONTEXT)),
              LMTrainConfig(steps=4000, batch_size=8, lr=1e-3, warmup_steps=50, log_every=100, seed=6, n_threads=1)),
    ]


@dataclass
class ToyLMRecipe:
    """Everything that decides the toy-lm checkpoint; ``train(**overrides)`` changes any field by name.

    A general first stage on the main corpus (whose BPE is the tokenizer), then continuation stages,
    each on a fresh corpus (another seed) richer in the planted tasks, starting from the previous
    stage's weights (task-dense text for the last steps). Options prefixed ``continue_`` apply to every
    continuation stage (``continue_steps=0`` skips them).
    """

    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(d_model=128, n_layers=4, n_heads=4,
                                                                   n_kv_heads=4, d_mlp=256, max_len=256))
    train: LMTrainConfig = field(default_factory=lambda: LMTrainConfig(steps=450, batch_size=16, lr=3e-3,
                                                                   warmup_steps=30, log_every=25))
    continuations: list[Stage] = field(default_factory=_default_continuations)
    vocab_size: int = 1024
    eval_n: int = 100
    eval_seed: int = 0

    def __post_init__(self) -> None:
        from interp.core.validate import Check
        from interp.zoo.bpe import SPECIAL_TOKENS

        c = Check(self, ZooConfigError)
        c.instance("corpus", CorpusConfig)
        c.instance("model", ModelConfig)
        c.instance("train", LMTrainConfig)
        if not isinstance(self.continuations, list) or not all(isinstance(s, Stage) for s in self.continuations):
            c.fail("continuations", self.continuations, "a list of Stage(corpus, train)")
        c.integer("vocab_size", min=256 + len(SPECIAL_TOKENS), fix="A byte-level BPE needs the 256 bytes and its "
                  "special tokens; the default is 1024.")
        c.integer("eval_n", min=1, fix="Items per planted task measured for the card.")
        c.integer("eval_seed", min=0)


_SUBCONFIGS = ("corpus", "model", "train", "continuations")


def recipe_from_overrides(**overrides: Any) -> ToyLMRecipe:
    """A :class:`ToyLMRecipe` with fields of any sub-config overridden by name (``steps=5``, ``n_docs=64``,
    ``continue_steps=0``)."""
    recipe = ToyLMRecipe()
    first = [recipe, recipe.corpus, recipe.model, recipe.train]
    second = [cfg for stage in recipe.continuations for cfg in (stage.corpus, stage.train)]
    for key, value in overrides.items():
        targets, name = (second, key[len("continue_"):]) if key.startswith("continue_") else (first, key)
        hits = [t for t in targets if name in {f.name for f in fields(t)} and name not in _SUBCONFIGS
                and name != "init_from"]
        if not hits:
            known = {f.name for t in first for f in fields(t)} - set(_SUBCONFIGS) - {"init_from"}
            known |= {"continue_" + f.name for t in second for f in fields(t) if f.name != "init_from"}
            raise also(ZooConfigError, TypeError, f"Unknown toy-lm training option {key!r}; known options: {', '.join(sorted(known))}.")
        for target in hits:  # ``seed`` is both the corpus and the training seed of its stage
            setattr(target, name, value)
    for cfg in [*first, *second]:  # an override is checked like a constructor argument
        if cfg in second and isinstance(cfg, LMTrainConfig) and cfg.steps == 0:
            continue  # continue_steps=0 switches the continuation stages off
        cfg.__post_init__()
    return recipe


def _corpus_tokens(docs: list[str], tokenizer: Any, max_len: int) -> int:
    seqs, _ = tokenize_texts(docs, tokenizer, max_len)
    return sum(len(s) for s in seqs)


def train(out_dir: Path, progress: bool = True, **overrides: Any) -> Path:
    """Train toy-lm into ``out_dir`` (Hugging Face folder + ``card.json``) and return the folder."""
    import tempfile

    from interp.zoo.bpe import train_bpe

    recipe = recipe_from_overrides(**overrides)
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    docs = generate_corpus(recipe.corpus)
    tokenizer = train_bpe(docs, vocab_size=recipe.vocab_size)
    stages = []
    todo = [Stage(recipe.corpus, recipe.train)] + [st for st in recipe.continuations if st.train.steps > 0]
    with tempfile.TemporaryDirectory() as tmp:
        previous: Path | None = None
        for i, stage in enumerate(todo):
            stage_docs = docs if i == 0 else generate_corpus(stage.corpus)
            folder = out_dir if i == len(todo) - 1 else Path(tmp) / f"stage{i + 1}"
            cfg = replace(stage.train, init_from=str(previous) if previous else None)
            stats = train_causal_lm(stage_docs, tokenizer, recipe.model, cfg, folder, progress=progress)
            stages.append({"corpus": stage.corpus, "train": stage.train, "stats": stats.to_dict(),
                           "documents": len(stage_docs),
                           "tokens": _corpus_tokens(stage_docs, tokenizer, recipe.model.max_len)})
            previous = folder
    write_card(out_dir, recipe, stages, train_seconds=time.perf_counter() - t0)
    return out_dir


def card_sections(out_dir: Path, model_recipe: Any, stages: list[dict[str, Any]], *, tasks: list[str], eval_n: int,
                  eval_seed: int, train_seconds: float, cpu_seconds: float | None = None) -> dict[str, Any]:
    """The card sections every toy LM of the zoo shares: tokenizer, model, training (per stage) and the
    greedy accuracy of the checkpoint in ``out_dir`` on ``tasks`` (measured here)."""
    from interp.core.models import load_model
    from interp.zoo.tasks import accuracy_by_task, make_items

    t_eval = time.perf_counter()
    model = load_model(str(out_dir), device="cpu")
    items = [it for task in tasks for it in make_items(task, eval_n, seed=eval_seed)]
    accuracy = accuracy_by_task(model, items) if items else {}  # no tasks: evaluation skipped
    eval_seconds = time.perf_counter() - t_eval
    tokenizer = model.tokenizer
    last = stages[-1]["stats"]
    training = {"stages": [{**{k: v for k, v in asdict(s["train"]).items() if k != "init_from"},
                            **{k: v for k, v in s["stats"].items() if k != "n_params"}} for s in stages],
                "seconds": round(sum(s["stats"]["seconds"] for s in stages), 1),
                "final_train_loss": last["final_train_loss"], "val_loss": last["val_loss"]}
    if cpu_seconds is not None:
        training["cpu_seconds"] = round(cpu_seconds, 1)
    training.update({"torch": torch.__version__,
                     "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
                     "total_seconds_with_corpus": round(train_seconds, 1)})
    return {
        "tokenizer": {"type": "byte-level BPE (tokenizers) trained on the first-stage corpus, digits split one "
                      "per token", "vocab_size": len(tokenizer), "bos": tokenizer.bos_token,
                      "eos": tokenizer.eos_token, "pad": tokenizer.pad_token},
        "model": {**asdict(model_recipe), "n_params": last["n_params"],
                  "weights_bytes": (out_dir / "model.safetensors").stat().st_size, "dtype": "float32"},
        "training": training,
        "evaluation": {"n_items_per_task": eval_n, "seed": eval_seed, "decoding": "greedy",
                       "items": "interp.zoo.tasks.make_items(task, n, seed)", "checker": "interp.zoo.tasks.check",
                       "accuracy": {t: round(accuracy[t], 4) for t in tasks}, "seconds": round(eval_seconds, 1)},
    }


def write_card(out_dir: Path, recipe: ToyLMRecipe, stages: list[dict[str, Any]], train_seconds: float) -> dict:
    """Evaluate the checkpoint in ``out_dir`` on every planted task and write ``card.json``."""
    from interp.zoo.tasks import TASKS

    card = {
        "name": "toy-lm",
        "description": "Small Llama (RoPE rotate-half, RMSNorm, SwiGLU) trained from scratch on a synthetic "
        "corpus with planted induction, successor, attention-sink (BOS at position 0 of every document), "
        "question-answer, multiple-choice, addition, copy and reverse structure.",
        "recipe": "interp.zoo.toy_lm:train",
        "retrain": "python -c \"from interp import zoo; zoo.train('toy-lm')\"",
        "corpus": {"generator": "interp.zoo.corpus.generate_corpus",
                   "stages": [{**describe(s["corpus"]), "documents": s["documents"], "tokens": s["tokens"]}
                              for s in stages],
                   "tokens": sum(s["tokens"] for s in stages)},
        **card_sections(out_dir, recipe.model, stages, tasks=list(TASKS), eval_n=recipe.eval_n,
                        eval_seed=recipe.eval_seed, train_seconds=train_seconds),
    }
    (out_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card
