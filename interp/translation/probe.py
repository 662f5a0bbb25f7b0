"""``TranslationProbe``: word-translation prompts for language pairs, greedy answers decoded at
every layer and step, each example classified (correct / translation failure / target lost / task
failure). Returns a :class:`~interp.translation.report.ProbeReport`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from interp.lens import resolve_layers
from interp.translation.generate import first_answer_token, generate_with_lens
from interp.translation.lexicon import Lexicon
from interp.translation.matching import DEFAULT_RULES, MatchRules, classify_outcome, layer_language
from interp.translation.prompts import ZERO_SHOT, PromptTemplate, build_prompt
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
        if model.tokenizer is None:
            raise ValueError("TranslationProbe needs a model with a tokenizer (model.tokenizer is None).")
        self.model = model
        self.lexicon = lexicon or Lexicon.bundled()
        self.template = template
        self.config = config or ProbeConfig()

    # ---- building examples --------------------------------------------------------------
    def _check_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        out = []
        for pair in pairs:
            if len(pair) != 2:
                raise ValueError(f"Each pair must be (source, target) language codes; got {pair!r}.")
            src, tgt = pair
            missing = [c for c in (src, tgt) if c not in self.lexicon.languages]
            if missing:
                raise KeyError(f"Languages {missing} are not in the lexicon; it has {sorted(self.lexicon.languages)}.")
            if src == tgt:
                raise ValueError(f"Pair {pair!r} translates a language into itself.")
            out.append((src, tgt))
        if not out:
            raise ValueError("No language pairs given, e.g. [('es', 'hi')].")
        return out

    def examples(self, pairs, *, concepts: Sequence[str] | None = None, n_concepts: int | None = None) -> list[_Example]:
        """The prompts a run would use (deterministic: ``config.seed``)."""
        rng = random.Random(self.config.seed)
        lex = self.lexicon
        names = {c: lex.languages[c].name for c in lex.languages}
        out = []
        for src, tgt in self._check_pairs(pairs):
            pool = [c for c in (concepts or lex.concepts(having=(src, tgt))) if c in lex.entries
                    and lex.entries[c].get(src) and lex.entries[c].get(tgt)]
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

        cfg = self.config
        model, lex = self.model, self.lexicon
        n_layers = model.cfg.n_layers
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
        bar = tqdm(total=len(examples), desc="translation probe", disable=not progress)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            batch = [examples[i] for i in idx]
            # first answer token of every language's first reference, for the target-vs-pivot curves
            targets = torch.tensor([[first_answer_token(tok, lex.entries[e.concept][lang][0], context=context)
                                     if lex.entries[e.concept].get(lang) else 0 for lang in langs] for e in batch])
            trace = generate_with_lens(
                model, [e.prompt for e in batch], max_new_tokens=cfg.max_new_tokens, layers=inspected, lens=cfg.lens,
                final_norm=cfg.final_norm, k=cfg.k, stop=cfg.stop, step0_target_ids=targets, prepend_bos=prepend,
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
        meta = dict(model=str(model.cfg.model_name), n_layers=n_layers, layers=inspected + [n_layers],
                    lens="tuned" if cfg.lens not in (None, "logit") else "logit", final_norm=cfg.final_norm,
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
        rows: list[dict] = []
        meta: dict | None = None
        for concepts, pairs in groups.items():
            report = self.run(pairs, concepts=list(concepts), progress=progress)
            rows += report.rows
            meta = meta or report.meta
        order = {pair: i for i, pair in enumerate(by_pair)}
        rows.sort(key=lambda r: order[(r["src"], r["tgt"])])
        return ProbeReport(rows, meta or {})
