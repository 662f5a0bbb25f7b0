"""Recipe of the ``toy-lm-planted`` zoo model (issue 14): toy-lm's corpus plus planted ground truth.

The same pipeline as :mod:`interp.zoo.toy_lm` (seeded corpus -> BPE -> small Llama -> card), with the
segments of :mod:`interp.zoo.planted` in the mix (:data:`interp.zoo.corpus.PLANTED_MIX`), repeated
random-token spans planted at the token level, and a first stage of repeats only, so that the
mechanisms each method should recover form (the card's ``designs_tried`` records what did not).
toy-lm itself is unchanged (its tests assert the numbers of its card).

>>> from interp import zoo
>>> zoo.train("toy-lm-planted")                                  # doctest: +SKIP  (see the card for the time)
>>> zoo.train("toy-lm-planted", out_dir="/tmp/tiny", steps=5, n_docs=64, continue_steps=0, repeat_steps=0, eval_n=4)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from interp.zoo.errors import ZooConfigError
from interp.zoo.corpus import PLANTED_MIX, CorpusConfig, describe, generate_corpus
from interp.zoo.planted import (CODE_HOLDERS, CODE_MAX_WEIGHT, OPPOSITES, ORDINAL_RUNS, RepeatConfig, opposite_sample,
                                plant_repeats)
from interp.zoo.toy_lm import card_sections
from interp.zoo.training import LMTrainConfig, ModelConfig, tokenize_texts, train_causal_lm

__all__ = ["PlantedRecipe", "Stage", "CardIdentity", "train", "train_recipe", "recipe_from_overrides", "write_card"]


@dataclass
class Stage:
    """A training stage: a corpus (its own seed and mix; ``None``: repeated random-token spans only), the
    optimisation settings, and how repeats are planted (``None``: the recipe's)."""

    corpus: CorpusConfig | None
    train: LMTrainConfig
    repeats: RepeatConfig | None = None


def design_d_repeat_stage() -> Stage:
    """Design D's first stage (on the card: it did not grow an induction head): repeated random-token
    spans only. ``PlantedRecipe(repeat_stage=design_d_repeat_stage(), continuations=design_d_continuations())``
    with ``n_docs=48_000, steps=3000, lr=1.5e-3`` is design D."""
    return Stage(None, LMTrainConfig(steps=2500, batch_size=16, lr=2e-3, warmup_steps=50, log_every=50, seed=100,
                                   n_threads=1),
                 RepeatConfig(doc_prob=0.0, pure_prob=1.0, span=(4, 40), copies=(2, 6), seed=100))


def design_d_continuations() -> list[Stage]:
    """Design D's last stage: a fresh corpus (seed 2) at a lower peak learning rate."""
    return [Stage(CorpusConfig(n_docs=9_600, seed=2, mix=dict(PLANTED_MIX)),
                  LMTrainConfig(steps=600, batch_size=16, lr=1e-3, warmup_steps=20, log_every=50, seed=2, n_threads=1))]


@dataclass
class PlantedRecipe:
    """Everything that decides the toy-lm-planted checkpoint; ``train(**overrides)`` changes any field by name.

    An optional repeat stage (repeated random-token spans only), then the main stage on the main corpus
    (whose BPE is the tokenizer) with repeated random spans planted at the token level (``repeats``),
    then optional continuation stages, each on a fresh corpus (another seed), each starting from the
    previous stage's weights. Options prefixed ``repeat_`` apply to the repeat stage (``repeat_steps=0``
    skips it), those prefixed ``continue_`` to every continuation stage (``continue_steps=0`` skips
    them); the others to the main stage, the model and the corpus. The defaults are design G of the
    card: design C's settings (one stage, 2000 steps x 16 documents, lr 1.5e-3, 60% + 20% repeats,
    tied embeddings) on the committed planted segments.
    """

    corpus: CorpusConfig = field(default_factory=lambda: CorpusConfig(n_docs=32_000, seed=0, mix=dict(PLANTED_MIX)))
    model: ModelConfig = field(default_factory=lambda: ModelConfig(d_model=128, n_layers=4, n_heads=4,
                                                                   n_kv_heads=4, d_mlp=256, max_len=256,
                                                                   tie_embeddings=True))
    train: LMTrainConfig = field(default_factory=lambda: LMTrainConfig(steps=2000, batch_size=16, lr=1.5e-3,
                                                                       warmup_steps=50, log_every=50, n_threads=1))
    repeats: RepeatConfig = field(default_factory=lambda: RepeatConfig(doc_prob=0.6, pure_prob=0.2, copies=(2, 4)))
    repeat_stage: Stage | None = None
    continuations: list[Stage] = field(default_factory=list)
    vocab_size: int = 1024
    tokenizer: str = "bpe"
    """``"bpe"``: a byte-level BPE of ``vocab_size`` (:func:`interp.zoo.bpe.train_bpe`); ``"chars"``: one token per
    character of the corpus (:func:`interp.zoo.bpe.train_chars`, ``vocab_size`` unused)."""
    eval_n: int = 100
    eval_seed: int = 0


_SUBCONFIGS = ("corpus", "model", "train", "continuations", "repeats", "repeat_stage")


def recipe_from_overrides(base: PlantedRecipe | None = None, **overrides: Any) -> PlantedRecipe:
    """A :class:`PlantedRecipe` (``base``, default toy-lm-planted's) with fields of any sub-config overridden
    by name (``steps=5``, ``n_docs=64``, ``continue_steps=0``)."""
    recipe = base if base is not None else PlantedRecipe()
    groups = {
        "": [recipe, recipe.corpus, recipe.model, recipe.train, recipe.repeats],
        "repeat_": [] if recipe.repeat_stage is None else
                   [recipe.repeat_stage.train] + ([recipe.repeat_stage.repeats] if recipe.repeat_stage.repeats else []),
        "continue_": [cfg for stage in recipe.continuations for cfg in (stage.corpus, stage.train) if cfg is not None],
    }

    def names(targets: list[Any]) -> set[str]:
        return {f.name for t in targets for f in fields(t)} - set(_SUBCONFIGS) - {"init_from"}

    for key, value in overrides.items():
        prefix = next((p for p in ("repeat_", "continue_") if key.startswith(p)), "")
        name = key[len(prefix):]
        hits = [t for t in groups[prefix] if name in names([t])]
        if not hits:
            known = {p + n for p, targets in groups.items() for n in names(targets)}
            raise TypeError(f"Unknown toy-lm-planted training option {key!r}; known options: {', '.join(sorted(known))}.")
        for target in hits:  # ``seed`` is both the corpus and the training seed of its stage
            setattr(target, name, value)
    return recipe


def _planted_sequences(docs: list[str], tokenizer: Any, max_len: int, repeats: RepeatConfig,
                       seed: int) -> tuple[list[list[int]], int]:
    """Token ids of ``docs`` with repeated random-token spans planted (seeded per stage)."""
    seqs, _ = tokenize_texts(docs, tokenizer, 10_000)
    newline = [i for i in range(len(tokenizer)) if tokenizer.decode([i]) == "\n"]
    return plant_repeats(seqs, len(tokenizer), special_ids=_special_ids(tokenizer), newline_ids=newline, max_len=max_len,
                         cfg=replace(repeats, seed=seed))


def _special_ids(tokenizer: Any) -> list[int]:
    return [tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id]


@dataclass(frozen=True)
class CardIdentity:
    """What a card built by this pipeline says about its model: name, description, recipe and the file of
    ``designs_tried`` (under ``interp/zoo/designs/``)."""

    name: str = "toy-lm-planted"
    description: str = ("Small Llama (RoPE rotate-half, RMSNorm, SwiGLU) trained from scratch on a synthetic "
                        "corpus with planted induction (repeated random-token spans), successor (ordinal runs), "
                        "attention-sink (BOS at position 0 of every document), a latent same/opposite mode, "
                        "planted-frequency code recall, question-answer, multiple-choice, addition, copy and "
                        "reverse structure.")
    recipe: str = "interp.zoo.toy_lm_planted:train"


def train(out_dir: Path, progress: bool = True, stages_dir: str | Path | None = None, **overrides: Any) -> Path:
    """Train toy-lm-planted into ``out_dir`` (Hugging Face folder + ``card.json``) and return the folder.
    ``stages_dir`` keeps the checkpoints of the intermediate stages there (default: a temporary folder)."""
    return train_recipe(out_dir, recipe_from_overrides(**overrides), progress=progress, stages_dir=stages_dir)


def train_recipe(out_dir: Path, recipe: PlantedRecipe, *, progress: bool = True, stages_dir: str | Path | None = None,
                 identity: CardIdentity | None = None) -> Path:
    """The pipeline of :func:`train` for any :class:`PlantedRecipe` (other zoo models reuse it with their own
    defaults and card ``identity``, e.g. :mod:`interp.zoo.toy_induction`)."""
    import tempfile

    from interp.zoo.bpe import train_bpe, train_chars

    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    docs = generate_corpus(recipe.corpus)
    if recipe.tokenizer not in ("bpe", "chars"):
        raise ZooConfigError(f"tokenizer={recipe.tokenizer!r}: use 'bpe' or 'chars'.")
    tokenizer = train_bpe(docs, vocab_size=recipe.vocab_size) if recipe.tokenizer == "bpe" else train_chars(docs)
    stages = []
    todo = [recipe.repeat_stage] if recipe.repeat_stage is not None and recipe.repeat_stage.train.steps > 0 else []
    todo += [Stage(recipe.corpus, recipe.train, recipe.repeats)]
    todo += [st for st in recipe.continuations if st.train.steps > 0]
    with tempfile.TemporaryDirectory() as tmp:
        previous: Path | None = None
        for i, stage in enumerate(todo):
            repeats = stage.repeats or recipe.repeats
            if stage.corpus is None:  # repeated random-token spans only: one [BOS, span, span, ...] per row
                stage_docs: list[str] = []
                rows = [[tokenizer.bos_token_id, tokenizer.eos_token_id]] * (stage.train.steps * stage.train.batch_size)
                seqs, repeated = plant_repeats(rows, len(tokenizer), special_ids=_special_ids(tokenizer), newline_ids=[],
                                               max_len=recipe.model.max_len, cfg=replace(repeats, pure_prob=1.0, doc_prob=0.0))
            else:
                stage_docs = docs if stage.corpus is recipe.corpus else generate_corpus(stage.corpus)
                seqs, repeated = _planted_sequences(stage_docs, tokenizer, recipe.model.max_len, repeats,
                                                    seed=stage.corpus.seed)
            folder = out_dir if i == len(todo) - 1 else Path(stages_dir or tmp) / f"stage{i + 1}"
            cfg = replace(stage.train, init_from=str(previous) if previous else None)
            stats = train_causal_lm(seqs, tokenizer, recipe.model, cfg, folder, progress=progress)
            stages.append({"corpus": stage.corpus, "train": stage.train, "repeats": repeats, "stats": stats.to_dict(),
                           "documents": len(seqs), "tokens": sum(len(s) for s in seqs),
                           "repeated_tokens": repeated, "segments": _segment_counts(stage_docs)})
            previous = folder
    write_card(out_dir, recipe, stages, train_seconds=time.perf_counter() - t0,
               cpu_seconds=time.process_time() - cpu0, identity=identity)
    return out_dir


def _segment_counts(docs: list[str]) -> dict[str, Any]:
    """How often the planted segments occur, and how often each code holder's code is stated."""
    import re

    text = "\n".join(docs)
    per_holder = Counter(re.findall(r"The code of (\w+) is", text))
    return {"opposite_rule": text.count("Rule: opposite."), "same_rule": text.count("Rule: same."),
            "arrows": text.count(" -> "), "code": sum(per_holder.values()),
            "code_per_holder": [per_holder.get(h, 0) for h in CODE_HOLDERS]}


def _planted_card(recipe: PlantedRecipe, stages: list[dict[str, Any]]) -> dict[str, Any]:
    """The planted ground truth, as built (the corpus counts are the realised ones, over all stages)."""
    exposures = [sum(s["segments"]["code_per_holder"][i] for s in stages) for i in range(len(CODE_HOLDERS))]
    return {
        "module": "interp.zoo.planted",
        "opposite": {"what": "word -> word segments in mode 'same' (copy) or 'opposite' (antonym); the mode is stated "
                     "by 'Rule: <mode>.' half of the time and shown by 0-3 examples, with 0-2 filler sentences "
                     "before the query", "p_opposite": opposite_sample.__kwdefaults__["p_opposite"],
                     "pairs": len(OPPOSITES),
                     "segments_with_rule": {m: sum(s["segments"][f"{m}_rule"] for s in stages) for m in ("opposite", "same")},
                     "arrows": sum(s["segments"]["arrows"] for s in stages)},
        "code": {"what": "'The code of <holder> is <3 digits>.'; holder i planted with relative frequency "
                 f"{CODE_MAX_WEIGHT:g}^(1 - i/(n-1)) (log-uniform)", "holders": len(CODE_HOLDERS),
                 "statements": sum(exposures), "exposures_per_holder": exposures},
        "ordinal": {"what": "comma-separated runs of 4-10 consecutive elements", "sequences": sorted(ORDINAL_RUNS)},
        "repeats": {"what": "back-to-back copies of a span of uniform random tokens (token level, after the "
                    "tokenizer), inserted after a newline or as a whole document [BOS, span, span, ...]",
                    **recipe.repeats.to_dict(), "repeated_tokens": sum(s["repeated_tokens"] for s in stages),
                    "share_of_tokens": round(sum(s["repeated_tokens"] for s in stages) / sum(s["tokens"] for s in stages), 4)},
    }


def _designs(name: str = "toy-lm-planted") -> list[dict[str, Any]]:
    path = Path(__file__).resolve().parent / "designs" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else []


def write_card(out_dir: Path, recipe: PlantedRecipe, stages: list[dict[str, Any]], train_seconds: float,
               cpu_seconds: float | None = None, identity: CardIdentity | None = None) -> dict:
    """Evaluate the checkpoint in ``out_dir`` on every planted task and write ``card.json``."""
    from interp.zoo.tasks import PLANTED_TASKS, TASKS

    ident = identity or CardIdentity()
    card = {
        "name": ident.name,
        "description": ident.description,
        "recipe": ident.recipe,
        "retrain": f"python -c \"from interp import zoo; zoo.train('{ident.name}')\"",
        "corpus": {"generator": "interp.zoo.corpus.generate_corpus",
                   "stages": [{**(describe(s["corpus"]) if s["corpus"] is not None else
                                  {"kind": "repeated random-token spans only", **s["repeats"].to_dict()}),
                               "documents": s["documents"], "tokens": s["tokens"],
                               "repeated_tokens": s["repeated_tokens"]} for s in stages],
                   "tokens": sum(s["tokens"] for s in stages)},
        "planted": _planted_card(recipe, stages),
        "designs_tried": _designs(ident.name),
        # the tasks' prompts and answer budgets are sized in BPE tokens: a character-level model is not scored on them
        **card_sections(out_dir, recipe.model, stages, tasks=list(TASKS + PLANTED_TASKS) if recipe.tokenizer == "bpe" else [], eval_n=recipe.eval_n,
                        eval_seed=recipe.eval_seed, train_seconds=train_seconds, cpu_seconds=cpu_seconds),
    }
    if recipe.tokenizer == "chars":
        card["tokenizer"]["type"] = "character level (interp.zoo.bpe.train_chars): one token per character of the corpus"
        card["evaluation"]["skipped"] = "the tasks' prompts and answer budgets are sized in BPE tokens"
    (out_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card
