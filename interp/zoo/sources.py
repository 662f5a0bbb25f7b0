"""Where each notebook's inputs come from, for a bundled model or any other: token streams, tasks, SAEs,
prompt templates. The notebooks call these instead of branching on model names themselves.

>>> from interp.zoo import sources
>>> task = sources.corrsteer_task("qa", 100)                      # a planted toy-lm task
>>> task = sources.corrsteer_task("stories-name", 100)            # stories260K's recall task
>>> task = sources.corrsteer_task("data/mmlu.jsonl", kind="multiple_choice")   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jaxtyping import Int
from torch import Tensor

from interp.core.tasks import Task, load_task
from interp.core.errors import missing_file
from interp.zoo.errors import ZooConfigError, ZooLoadError
from interp.thr.tasks import VerifiableTask
from interp.translation import CHAT, FEW_SHOT, ZERO_SHOT, Lexicon, PromptTemplate, load_csv

__all__ = ["TokenSourceKind", "token_source", "held_out_text_tokens", "corrsteer_task", "grpo_task",
           "SAESet", "saes_for", "TranslationSetup", "translation_setup", "TEMPLATES", "load_lorsa",
           "bundled_lorsa", "lorsa_card", "authors_reference_tokens", "bundled_tuned_lens"]

TokenSourceKind = Literal["auto", "corpus", "sample"]

TEMPLATES: dict[str, PromptTemplate] = {"zero_shot": ZERO_SHOT, "few_shot": FEW_SHOT, "chat": CHAT}
"""The prompt templates a notebook can name."""


def _zoo_model(name: Any) -> str | None:
    from interp import zoo

    return name if isinstance(name, str) and name in zoo.names() else None


# ----------------------------------------------------------------------------------- tokens
def token_source(model_name: str, model: Any, n_seq: int, ctx: int, *, kind: TokenSourceKind = "auto",
                 seed: int = 0, progress: bool = False) -> Int[Tensor, "n_seq ctx"]:
    """``n_seq`` BOS-first rows of ``ctx`` tokens to train and evaluate on: the synthetic corpus of a zoo
    model (documents it never saw; for toy-lm-planted and toy-induction, documents of their recipe's mix
    with repeated random spans planted as in the recipe, corpus seed ``4242 + seed``), or text sampled from the model itself
    (``kind="sample"``, the only offline source for other models). ``"auto"`` picks the corpus for zoo models.

    >>> tokens = token_source("toy-lm", model, 512, 128)     # doctest: +SKIP
    """
    from interp.core.activations import sample_tokens, text_tokens

    if kind not in ("auto", "corpus", "sample"):
        raise ZooConfigError(f"kind={kind!r}: use 'auto', 'corpus' or 'sample'.")
    zoo_name = _zoo_model(model_name)
    if zoo_name == "toy-mode" and kind != "sample":  # its own rule episodes (toy-lm's corpus is text it never saw)
        from interp.zoo.toy_mode import sae_tokens

        return sae_tokens(model, n_seq, ctx, seed=seed)
    if kind == "corpus" and zoo_name is None:
        raise ZooConfigError(f"{model_name!r} is not a zoo model, so it has no bundled corpus; use kind='sample'.")
    if kind == "sample" or zoo_name is None:
        return sample_tokens(model, n_seq, ctx, seed=seed, progress=progress)
    from interp.zoo.recovery.lorsa import HOSTS, planted_tokens

    if zoo_name in HOSTS:  # its own training distribution: its recipe's mix with repeated random spans
        return planted_tokens(model, n_seq, ctx, seed=4242 + seed, host=zoo_name)
    from interp.zoo.corpus import CorpusConfig, generate_corpus

    n_docs = 64
    while True:  # the corpus is generated, not stored: double it until enough rows come out
        tokens = text_tokens(model, generate_corpus(CorpusConfig(n_docs=n_docs, seed=4242 + seed)), ctx)
        if tokens.shape[0] >= n_seq:
            return tokens[:n_seq]
        n_docs *= 2


def held_out_text_tokens(model_name: str, model: Any, n_seq: int, ctx: int, *, text: str | os.PathLike | None = None,
                         seed: int = 1) -> Int[Tensor, "n_seq ctx"]:
    """BOS-first windows of held-out text for fitting a lens: a text file (``text``), else the corpus of a
    zoo model (a seed it was not trained on). Never the prompts being probed."""
    from interp.core.activations import text_tokens

    if text is not None:
        return text_tokens(model, [Path(text).read_text()], ctx)[:n_seq]
    zoo_name = _zoo_model(model_name)
    if zoo_name == "toy-pivot":
        from interp import zoo
        from interp.zoo.toy_pivot import LENS_SEED_OFFSET, _spec_from_card, build_corpus

        spec = _spec_from_card(zoo.card("toy-pivot"))
        docs = build_corpus(spec, sample_seed=spec.seed + LENS_SEED_OFFSET + seed)[: max(200, n_seq * 2)]
        return text_tokens(model, docs, ctx)[:n_seq]
    if zoo_name == "toy-translate":
        from interp import zoo
        from interp.zoo.toy_translate import CorpusSpec, _lexicon, build_corpus

        card = zoo.card("toy-translate")["corpus"]
        docs = build_corpus(CorpusSpec(n_docs=max(200, n_seq * 2), seed=card["seed"] + 1,
                                       n_concepts=card["n_concepts"]), _lexicon())
        return text_tokens(model, docs, ctx)[:n_seq]
    if zoo_name is not None:
        return token_source(zoo_name, model, n_seq, ctx, kind="corpus", seed=seed)
    raise ZooConfigError(
        f"No held-out text is bundled for {model_name!r}: pass text='corpus.txt' (plain text the probe never uses)."
    )


# ----------------------------------------------------------------------------------- tasks
def corrsteer_task(spec: str, n: int = 1000, *, seed: int = 0, kind: str = "exact", **kwargs: Any) -> Task:
    """A CorrSteer task named by ``spec``: toy-mode's planted-latent task (``"toy-mode"``: mode opposite,
    weak evidence, :func:`interp.zoo.toy_mode.mode_task`), a planted toy-lm task (``"qa"``, ``"mc"``...),
    stories260K's recall tasks (``"stories-name"``, ``"stories-object"``), or a task file (``.jsonl``/``.json``/``.csv``/
    ``.parquet``, read with :func:`interp.core.tasks.load_task` as ``kind``)."""
    from interp.zoo import tasks as planted
    from interp.zoo.stories import stories_recall_task

    if Path(spec).suffix:
        return load_task(spec, kind, **kwargs)
    if spec == "toy-mode":
        from interp.zoo.toy_mode import mode_task

        return mode_task(n, seed=seed, **kwargs)
    if spec.startswith("stories-"):
        return stories_recall_task(spec.split("-", 1)[1], n, seed=seed)  # type: ignore[arg-type]
    if spec in planted.TASKS:
        return planted.planted_task(spec, n, seed=seed, **kwargs)
    raise ZooConfigError(f"Unknown task {spec!r}: 'toy-mode', a toy-lm task ({', '.join(planted.TASKS)}), 'stories-name', "
                     "'stories-object', or a path to a task file.")


def grpo_task(model_name: str, task: str = "arith", *, seed: int = 0, max_new_tokens: int = 24) -> VerifiableTask:
    """The GRPO task of a model: a zoo model's planted task, else stories260K's story-word task.
    ``toy-lm-planted`` with ``task="code"`` is the rarely-solved code task of its card
    (:func:`interp.zoo.recovery.thr.code_tasks`: train on the train holders, test on the held-out hard ones)."""
    from interp.zoo.stories import story_word_task
    from interp.zoo.tasks import planted_grpo_task

    if _zoo_model(model_name) == "toy-lm-planted" and task == "code":
        from interp.zoo.recovery.thr import code_tasks

        return code_tasks()[0]
    if _zoo_model(model_name) is not None:
        return planted_grpo_task(task, seed=seed)
    return story_word_task(seed=seed, max_new_tokens=max_new_tokens)


# ----------------------------------------------------------------------------------- SAEs
@dataclass
class SAESet:
    """SAEs keyed by hook name, where they came from, and held-out tokens to check them on (or None)."""

    saes: dict[str, Any]
    source: str
    eval_tokens: Tensor | None = None

    def quality(self, model: Any) -> Any:
        """Explained variance, L0, dead features and spliced loss of every SAE on ``eval_tokens``."""
        import pandas as pd

        from interp.steering.sae_training import evaluate_sae

        if self.eval_tokens is None:
            raise ZooConfigError("No held-out tokens to measure these SAEs on (pretrained SAEs from a release).")
        return pd.concat([evaluate_sae(model, s, self.eval_tokens).to_frame() for s in self.saes.values()],
                         ignore_index=True)

    def __repr__(self) -> str:
        return f"SAESet({len(self.saes)} SAEs from {self.source}: {', '.join(self.saes)})"


def saes_for(model_name: str, model: Any, *, release: str | None = None, sae_ids: Sequence[str] = (),
             folder: str | os.PathLike | None = None, train_if_missing: bool = True,
             hooks: Sequence[str] | None = None, train_tokens: int = 300_000, out_dir: str | os.PathLike = "out",
             seed: int = 0) -> SAESet:
    """The SAEs for CorrSteer, on the model's device: a sae-lens pretrained ``release`` (``sae_ids``), a
    ``folder`` of saved SAEs, the zoo's bundled SAEs for a zoo model, or, when none exist and
    ``train_if_missing``, SAEs trained here on ``train_tokens`` tokens per hook (corpus text for a zoo
    model, self-sampled text otherwise) saved under ``out_dir/saes``."""
    from interp.core.frontend import input_device
    from interp.steering.sae_training import SAETrainConfig, load_saes, train_saes

    device = str(input_device(model))
    if release is not None:
        from sae_lens import SAE

        if not sae_ids:
            raise ZooConfigError("release= needs sae_ids=[...] (the ids of the SAEs within the release).")
        saes = {}
        for sae_id in sae_ids:
            sae = SAE.from_pretrained(release, sae_id, device=device)
            saes[sae.cfg.metadata.hook_name] = sae
        return SAESet(saes, f"sae-lens release {release}")
    zoo_name = _zoo_model(model_name)
    eval_tokens = token_source(zoo_name, model, 64, 64, kind="corpus", seed=2) if zoo_name else None
    if folder is not None:
        return SAESet(load_saes(folder, device=device), str(folder), eval_tokens)
    if zoo_name is not None:
        from interp import zoo

        bundled = f"{zoo_name}-saes"
        if bundled in zoo.names("saes"):
            try:
                return SAESet(zoo.load_saes(bundled, device=device), f"zoo {bundled}", eval_tokens)
            except FileNotFoundError:
                if not train_if_missing:
                    raise
    if not train_if_missing:
        raise missing_file(ZooLoadError, f"No SAEs for {model_name!r}: pass release=/sae_ids= or folder=, or train_if_missing=True.")
    n_seq = train_tokens // 64 + 64
    tokens = token_source(model_name, model, n_seq, 64, seed=seed)
    hooks = list(hooks) if hooks else [f"blocks.{i}.hook_resid_post" for i in range(min(3, model.cfg.n_layers))]
    root = Path(out_dir) / "saes"
    saes = train_saes(model, tokens[:-64], hooks, SAETrainConfig(training_tokens=train_tokens, device=device),
                      out_root=root, progress=False)
    return SAESet(saes, f"trained here ({root})", tokens[-64:] if eval_tokens is None else eval_tokens)


# ----------------------------------------------------------------------------------- translation
@dataclass
class TranslationSetup:
    """The lexicon and prompt template a translation probe of this model uses; for a zoo model with a
    planted evaluation set (toy-pivot), its ``(source, target, concept)`` examples and pivot."""

    lexicon: Lexicon
    template: PromptTemplate
    eval_triples: list[tuple[str, str, str]] | None = None
    pivot: str | None = None


def translation_setup(model_name: str, *, template: str = "auto", lexicon: str | os.PathLike | None = None
                      ) -> TranslationSetup:
    """Lexicon and template for the translation probe: the bundled lexicon (or a CSV with a column per
    language code); for the toy ``toy-translate``, its trained concepts and its own template. ``template``
    is ``"auto"``, ``"zero_shot"`` (the paper's), ``"few_shot"`` or ``"chat"`` (instruction-tuned models)."""
    from interp import zoo

    if template != "auto" and template not in TEMPLATES:
        raise ZooConfigError(f"template={template!r}: use 'auto' or one of {sorted(TEMPLATES)}.")
    lex = Lexicon.bundled() if lexicon is None else load_csv(lexicon)
    if model_name == "toy-pivot":
        from interp.zoo.toy_pivot import eval_sets, load_plant, probe_template

        card = zoo.card("toy-pivot")
        plant = load_plant(card)
        lex = lex.subset(concepts=[c for c in plant.concepts if c in lex.entries])
        chosen = (probe_template(card["design"]["corpus"].get("layout", "named")) if template == "auto"
                  else TEMPLATES[template])
        return TranslationSetup(lex, chosen, eval_triples=next(iter(eval_sets(plant).values())), pivot=plant.pivot)
    toy = model_name == "toy-translate"
    if toy:
        from interp.zoo.toy_translate import toy_template

        trained = [c for c in zoo.card("toy-translate")["corpus"]["concepts"] if c in lex.entries]
        lex = lex.subset(concepts=trained)  # the toy only knows the concepts it was trained on
        chosen = toy_template() if template == "auto" else TEMPLATES[template]
    else:
        chosen = ZERO_SHOT if template == "auto" else TEMPLATES[template]
    return TranslationSetup(lex, chosen)


def bundled_tuned_lens(model_name: str, model: Any) -> Any:
    """The zoo's tuned lens of a bundled model (``<name>-tuned-lens``, trained on held-out corpus text),
    attached to ``model``; ``None`` when the model has none, so a notebook can fit one instead."""
    from interp import zoo

    name = f"{model_name}-tuned-lens"
    if _zoo_model(model_name) is None or name not in zoo.names("tuned_lens"):
        return None
    try:
        return zoo.load_tuned_lens(name, model)
    except FileNotFoundError:
        return None


# ----------------------------------------------------------------------------------- Lorsa
def load_lorsa(spec: str | os.PathLike, *, device: str = "cpu") -> Any:
    """A saved Lorsa: a zoo artefact name (``"stories260K-lorsa-L2"``) or a folder written by ``Lorsa.save``."""
    from interp import zoo
    from interp.lorsa import Lorsa

    if isinstance(spec, str) and spec in zoo.names("lorsa"):
        return zoo.load_lorsa(spec, device=device)
    return Lorsa.load(spec, device=device)


def lorsa_card(spec: str | os.PathLike) -> dict[str, Any]:
    """The card of a zoo Lorsa (what its recipe measured, e.g. ``["eval"]``); ``{}`` for a Lorsa folder."""
    from interp import zoo

    if isinstance(spec, str) and spec in zoo.names("lorsa"):
        return zoo.card(spec)
    return {}


def authors_reference_tokens(folder: str | os.PathLike) -> Tensor | None:
    """The token ids an authors' Lorsa folder ships as its reference (``authors_forward.safetensors``'s
    ``tokens``, the sequences its README's explained variance was measured on, as the shared fixture
    ``lorsa-authors-stories260K-L2`` has), or ``None`` when the folder has none."""
    from safetensors.torch import load_file

    path = Path(folder) / "authors_forward.safetensors"
    if not path.is_file():
        return None
    try:
        tokens = load_file(str(path)).get("tokens")
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ZooLoadError(f"{path} cannot be read ({err}).") from err
    return tokens.long() if tokens is not None else None


def bundled_lorsa(model_name: Any, layer: int | None = None) -> str | None:
    """Zoo name of the Lorsa bundled for the zoo model ``model_name`` (at ``layer`` when given), or
    ``None`` when there is none (a notebook then trains one).

    >>> bundled_lorsa("toy-lm-planted")
    'toy-lm-planted-lorsa'
    >>> bundled_lorsa("toy-lm") is None
    True
    """
    from interp import zoo

    zoo_name = _zoo_model(model_name)
    if zoo_name is None:
        return None
    for name in zoo.names("lorsa"):
        if zoo.entry(name).needs[:1] != (zoo_name,):
            continue
        try:
            found = zoo.card(name).get("layer")
        except FileNotFoundError:  # registered but never trained
            continue
        if layer is None or found == layer:
            return name
    return None
