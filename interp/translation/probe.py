"""``TranslationProbe``: word-translation prompts for language pairs, greedy answers decoded at
every layer and step, each example classified (correct / translation failure / target lost / task
failure). Returns a :class:`~interp.translation.report.ProbeReport`.
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from interp.core.tokens import Truncation
from interp.core.validate import Check
from interp.core.errors import also
from interp.core.frontend import n_layers as n_layers_of
from interp.core.frontend import vocab_size as vocab_size_of
from interp.lens import lens_name, resolve_layers, resolve_lens
from interp.translation.generate import first_answer_token, generate_with_lens
from interp.translation.lexicon import Lexicon
from interp.translation.matching import DEFAULT_RULES, MatchRules, classify_outcome, layer_language
from interp.translation.prompts import ZERO_SHOT, PromptTemplate, build_prompt
from interp.translation.errors import TranslationConfigError
from interp.translation.report import ProbeReport

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

__all__ = ["ProbeConfig", "TranslationProbe"]


@dataclass
class ProbeConfig:
    """Every knob of a probe run.

    ``layers``: lens indices inspected as intermediate layers (``None`` = every layer before the
    output; the paper used the last ten, ``-11``). ``max_new_tokens`` must cover the longest
    answer in tokens. ``k`` top tokens are kept per layer and step (for hover views).
    """

    layers: Sequence[int] | int | None = None
    lens: str | object | None = "logit"
    final_norm: bool = True
    max_new_tokens: int = 12
    batch_size: int = 32
    k: int = 3
    rules: MatchRules = field(default_factory=lambda: DEFAULT_RULES)
    stop: tuple[str, ...] = ("\n",)
    seed: int = 0
    prepend_bos: bool | None = None
    truncate: Truncation | None = None
    """None refuses a prompt that does not fit the context with ``max_new_tokens`` more; ``"left"`` /
    ``"right"`` drops that end (a long few-shot prompt keeps its query with ``"left"``)."""

    def __post_init__(self) -> None:
        c = Check(self, TranslationConfigError)
        layers = self.layers
        index = lambda i: isinstance(i, numbers.Integral) and not isinstance(i, bool)  # noqa: E731
        if not (layers is None or (index(layers) and layers < 0) or (isinstance(layers, Sequence) and not isinstance(layers, str)
                                                    and all(index(i) for i in layers))):
            c.fail("layers", layers, "None (every layer), a negative int (the last |n|) or a list of lens indices",
                   "Lens indices are integers: 0 = embeddings, i = after block i-1 (not hook names).")
        lens = self.lens
        if not (lens is None or (isinstance(lens, str) and lens in ("logit", "tuned", "jacobian"))
                or (not isinstance(lens, str) and hasattr(lens, "translate"))):
            c.fail("lens", lens, "'logit', 'tuned', 'jacobian', None, a TunedLens or a JacobianLens")
        c.boolean("final_norm")
        c.integer("max_new_tokens", min=1, fix="It must cover the longest answer in tokens.")
        c.integer("batch_size", min=1)
        c.integer("k", min=1)
        c.instance("rules", MatchRules)
        self.stop = c.strings("stop")
        c.integer("seed", min=0)
        c.boolean("prepend_bos", optional=True)
        c.choice("truncate", ("left", "right"), optional=True)


@dataclass
class _Example:
    src: str
    tgt: str
    concept: str
    word: str
    prompt: str


class TranslationProbe:
    """Probe a model's word translation with the logit (or tuned) lens.

    Example:
        >>> probe = TranslationProbe(model, Lexicon.bundled())                 # doctest: +SKIP
        >>> report = probe.run([("es", "hi"), ("es", "sw")], n_concepts=50)    # doctest: +SKIP
        >>> report.by_pair(); report.plot("heatmap")                           # doctest: +SKIP
    """

    def __init__(self, model: "HookedTransformer", lexicon: Lexicon | None = None, *,
                 template: PromptTemplate = ZERO_SHOT, config: ProbeConfig | None = None):
        c = Check("TranslationProbe", TranslationConfigError)
        c.instance("lexicon", Lexicon, lexicon, optional=True)
        c.instance("template", PromptTemplate, template)
        c.instance("config", ProbeConfig, config, optional=True)
        if getattr(model, "tokenizer", None) is None:
            raise TranslationConfigError("TranslationProbe needs a model with a tokenizer (model.tokenizer is None).")
        self.model = model
        self.lexicon = lexicon or Lexicon.bundled()
        self.template = template
        self.config = config or ProbeConfig()

    # ---- building examples --------------------------------------------------------------
    def _check_model(self) -> None:
        """The config checked against the model before any generation (the config may change after __init__)."""
        from interp.core.frontend import n_ctx
        from interp.lens import resolve_lens

        cfg, model = self.config, self.model
        c = Check(cfg, TranslationConfigError)
        n_layers = n_layers_of(model)
        try:
            inspected = [i for i in resolve_layers(cfg.layers, n_layers) if i != n_layers]
        except ValueError as err:
            raise TranslationConfigError(f"ProbeConfig.layers={cfg.layers!r} does not fit this model: {err}") from err
        if not inspected:
            c.fail("layers", cfg.layers, f"at least one intermediate layer (0..{n_layers - 1}); the output layer "
                   f"{n_layers} is always decoded")
        resolve_lens(model, cfg.lens)
        limit = n_ctx(model)
        if limit is not None:
            c.require(cfg.max_new_tokens < limit, "max_new_tokens", cfg.max_new_tokens,
                      f"less than the model's context of {limit} tokens")
        c.require(cfg.k <= vocab_size_of(model), "k", cfg.k, f"at most the vocabulary size {vocab_size_of(model)}")

    def _check_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
            raise TranslationConfigError(f"pairs must be a list of (source, target) language codes, e.g. [('es', 'hi')]; "
                                         f"got {pairs!r}.")
        if len(pairs) == 2 and all(isinstance(x, str) and x in self.lexicon.languages for x in pairs):
            raise TranslationConfigError(f"pairs={list(pairs)!r} looks like one pair: pass a list of pairs, "
                                         f"[{tuple(pairs)!r}].")
        out = []
        for pair in pairs:
            if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2 or \
                    not all(isinstance(x, str) for x in pair):
                raise TranslationConfigError(f"Each pair must be (source, target) language codes; got {pair!r}.")
            src, tgt = pair
            missing = [c for c in (src, tgt) if c not in self.lexicon.languages]
            if missing:
                raise also(TranslationConfigError, KeyError, f"Languages {missing} are not in the lexicon; it has {sorted(self.lexicon.languages)}.")
            if src == tgt:
                raise TranslationConfigError(f"Pair {pair!r} translates a language into itself.")
            out.append((src, tgt))
        if not out:
            raise TranslationConfigError("No language pairs given, e.g. [('es', 'hi')].")
        return out

    def examples(self, pairs, *, concepts: Sequence[str] | None = None, n_concepts: int | None = None) -> list[_Example]:
        """The prompts a run would use (deterministic: ``config.seed``). A pair with no usable concept, unknown
        concept names, or too few concepts for the few-shot demonstrations are errors (never an empty run)."""
        c = Check("TranslationProbe.examples", TranslationConfigError)
        c.integer("n_concepts", n_concepts, min=1, optional=True)
        if concepts is not None:
            concepts = list(c.strings("concepts", concepts, min_len=1))
            unknown = [x for x in concepts if x not in self.lexicon.entries]
            if unknown:
                c.fail("concepts", unknown[:5], "concepts of the lexicon", f"e.g. {list(self.lexicon.entries)[:5]}.")
        rng = random.Random(self.config.seed)
        lex = self.lexicon
        names = {c: lex.languages[c].name for c in lex.languages}
        out = []
        for src, tgt in self._check_pairs(pairs):
            pool = [c for c in (concepts or lex.concepts(having=(src, tgt))) if c in lex.entries
                    and lex.entries[c].get(src) and lex.entries[c].get(tgt)]
            if not pool:
                raise TranslationConfigError(
                    f"No concept has references in both {src!r} and {tgt!r}"
                    + (" among the concepts given" if concepts is not None else "") + ": this pair would have no examples.")
            if self.template.kind == "few_shot" and len(lex.concepts(having=(src, tgt))) <= self.template.n_shots:
                raise TranslationConfigError(
                    f"The few-shot template needs {self.template.n_shots} other concepts with {src!r} and {tgt!r} "
                    f"references for its demonstrations; the lexicon has {len(lex.concepts(having=(src, tgt)))}.")
            if n_concepts is not None and n_concepts < len(pool):
                pool = sorted(rng.sample(pool, n_concepts), key=pool.index)
            for concept in pool:
                word = lex.entries[concept][src][0]
                shots = []
                if self.template.kind == "few_shot":
                    others = [c for c in lex.concepts(having=(src, tgt)) if c != concept]
                    shots = [(lex.entries[c][src][0], lex.entries[c][tgt][0])
                             for c in rng.sample(others, self.template.n_shots)]
                prompt = build_prompt(self.template, src=names[src], tgt=names[tgt], word=word, shots=shots,
                                      tokenizer=self.model.tokenizer)
                out.append(_Example(src, tgt, concept, word, prompt))
        return out

    # ---- running ------------------------------------------------------------------------
    def run(self, pairs: Sequence[tuple[str, str]], *, concepts: Sequence[str] | None = None,
            n_concepts: int | None = None, progress: bool = True) -> ProbeReport:
        """Probe every (source, target) pair on the lexicon's concepts (or ``concepts``; a seeded
        sample of ``n_concepts`` per pair)."""
        from tqdm.auto import tqdm

        from interp.core.progress import bar_disabled

        cfg = self.config
        Check("TranslationProbe.run", TranslationConfigError).boolean("progress", progress)
        if not isinstance(cfg, ProbeConfig):
            raise TranslationConfigError(f"probe.config must be a ProbeConfig; got {type(cfg).__name__}.")
        ProbeConfig.__post_init__(cfg)  # the config may have been edited since it was made
        self._check_model()
        model, lex = self.model, self.lexicon
        n_layers = n_layers_of(model)
        inspected = [i for i in resolve_layers(cfg.layers, n_layers) if i != n_layers]
        examples = self.examples(pairs, concepts=concepts, n_concepts=n_concepts)
        langs = lex.languages_by_resource()
        tok = model.tokenizer
        context = self.template.example.split("{answer}")[0].format(word="x").rstrip(" ").split("\n")[-1] or " "
        prepend = cfg.prepend_bos if cfg.prepend_bos is not None else (False if self.template.kind == "chat" else None)
        # bucket by prompt length so batches carry little padding
        lengths = [len(tok(e.prompt)["input_ids"]) for e in examples]
        order = sorted(range(len(examples)), key=lambda i: lengths[i])
        rows: list[dict | None] = [None] * len(examples)
        bar = tqdm(total=len(examples), desc="translation probe", disable=bar_disabled(progress))
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            batch = [examples[i] for i in idx]
            # first answer token of every language's first reference, for the target-vs-pivot curves
            targets = torch.tensor([[first_answer_token(tok, lex.entries[e.concept][lang][0], context=context)
                                     if lex.entries[e.concept].get(lang) else 0 for lang in langs] for e in batch])
            trace = generate_with_lens(
                model, [e.prompt for e in batch], max_new_tokens=cfg.max_new_tokens, layers=inspected, lens=cfg.lens,
                final_norm=cfg.final_norm, k=cfg.k, stop=cfg.stop, step0_target_ids=targets, prepend_bos=prepend,
                truncate=cfg.truncate,
            )
            for j, (i, e) in enumerate(zip(idx, batch)):
                refs = lex.entries[e.concept]
                inter = trace.layer_strings[j][:-1]  # the last entry is the output layer
                layer_langs = [layer_language(s, refs, e.tgt, cfg.rules) for s in trace.layer_strings[j]]
                outcome = classify_outcome(trace.answers[j], inter, refs, e.tgt, cfg.rules)
                n = trace.n_steps[j]
                grid_ids = trace.top_ids[j, :, :n].tolist()
                grid_p = trace.top_logprobs[j, :, :n].exp().tolist()
                grid = [[[[tok.decode([t]), round(p, 4)] for t, p in zip(cell_ids, cell_p)]
                         for cell_ids, cell_p in zip(row_ids, row_p)] for row_ids, row_p in zip(grid_ids, grid_p)]
                step0 = trace.step0_target_logprobs[j].exp()  # [n_sel, n_langs]
                rows[i] = dict(
                    pair=f"{e.src}-{e.tgt}", src=e.src, tgt=e.tgt, concept=e.concept, pos=lex.pos.get(e.concept, ""),
                    source_word=e.word, references=list(refs.get(e.tgt, ())), final=trace.answers[j].strip(),
                    outcome=outcome.value, layer_strings=trace.layer_strings[j], layer_languages=layer_langs,
                    grid=grid, first_token_prob={lang: [round(float(v), 5) for v in step0[:, li]]
                                                 for li, lang in enumerate(langs)},
                    target_resource=lex.languages[e.tgt].resource.value, prompt=e.prompt,
                )
            bar.update(len(batch))
        bar.close()
        meta = dict(model=str(getattr(model.cfg, "model_name", type(model).__name__)), n_layers=n_layers, layers=inspected + [n_layers],
                    lens=lens_name(resolve_lens(model, cfg.lens)), final_norm=cfg.final_norm,
                    template=self.template.kind, languages=langs,
                    resource={c: lex.languages[c].resource.value for c in langs},
                    language_names={c: lex.languages[c].name for c in langs}, lexicon=lex.source)
        return ProbeReport([r for r in rows if r is not None], meta)

    def run_triples(self, triples: Sequence[tuple[str, str, str]], *, progress: bool = True) -> ProbeReport:
        """Probe given ``(source, target, concept)`` examples, e.g. a model's held-out combinations
        (pairs that share a concept list run together; rows come back in the order of ``triples``'
        pairs, each pair's concepts in lexicon order, as :meth:`run` orders them)."""
        by_pair: dict[tuple[str, str], list[str]] = {}
        for triple in triples:
            if len(triple) != 3:
                raise ValueError(f"Each example must be (source, target, concept); got {triple!r}.")
            src, tgt, concept = triple
            by_pair.setdefault((src, tgt), []).append(concept)
        if not by_pair:
            raise ValueError("No examples given, e.g. [('es', 'sw', 'dog')].")
        groups: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for pair, concepts in by_pair.items():
            groups.setdefault(tuple(concepts), []).append(pair)
        from tqdm.auto import tqdm

        from interp.core.progress import bar_disabled

        rows: list[dict] = []
        meta: dict | None = None
        # one bar for the whole set: a bar per concept list made hundreds of progress widgets in a notebook
        bar = tqdm(total=len(triples), desc="translation probe", disable=bar_disabled(progress))
        for concepts, pairs in groups.items():
            report = self.run(pairs, concepts=list(concepts), progress=False)
            rows += report.rows
            meta = meta or report.meta
            bar.update(len(report.rows))
        bar.close()
        order = {pair: i for i, pair in enumerate(by_pair)}
        rows.sort(key=lambda r: order[(r["src"], r["tgt"])])
        return ProbeReport(rows, meta or {})
