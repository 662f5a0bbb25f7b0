"""The planted-pivot multilingual corpus of ``toy-pivot``: non-English languages are reached through
English, the way large models reach them through their dominant language (Wendler et al. 2024;
Bafna et al. 2025).

What is planted (the known answer the lens is checked against):

- every concept's word in every language is ONE token (the tokenizer keeps Indic vowel signs inside
  words), so "the English form decodes at layer l" is a single top-1 token, not a guess over pieces;
- English is the hub: most documents pair a language with English (``en -> xx`` and ``xx -> en``),
  and English-only text carries each concept's "knowledge" (its part of speech and a planted
  successor relation) that exists in no other language;
- the concepts are split in two. *Direct* concepts are also translated between two non-English
  languages; *bridge* concepts never are: their only cross-lingual evidence is a pair with English.
  A correct answer on a bridge concept has to be composed from ``src -> en`` and ``en -> tgt``,
  both seen in training; with ``p_holdout`` > 0, each direct concept is also held out of the direct
  translations of some language pairs, and the probe asks for those held-out combinations as well
  (``toy_pivot.eval_sets``);
- with ``layout="implicit"`` no language is named: a document is a list of word pairs of one
  language pair, so the target language is read off the earlier answers;
- resource levels: languages are drawn in pairs with English in proportion to their resource
  weight (high >> mid >> low), so the ``en -> low`` leg is learned worst.

>>> spec = PivotSpec(n_docs=200)
>>> plant = plant_concepts(spec)
>>> set(plant.direct).isdisjoint(plant.bridge)
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from interp.translation.lexicon import Lexicon

__all__ = ["PivotSpec", "Plant", "plant_concepts", "build_corpus", "single_token_concepts", "TEMPLATE_KW",
           "DOC_KINDS", "tokenizer_texts"]

PIVOT = "en"
TEMPLATE_KW = dict(instruction="Translate from {src} to {tgt}.", example="Word: {word}\nTranslation: {answer}")
"""The ``named`` layout: languages named in an instruction (the same as ``toy-translate``'s)."""
IMPLICIT_TEMPLATE_KW = dict(kind="few_shot", n_shots=3, instruction="Translate:", example="{word} = {answer}",
                            shot_separator="\n")
"""The ``implicit`` layout: a list of word pairs of one language pair, no language named (Wendler et
al. 2024's few-shot prompts without the names): the target language has to be read off the answers
before it in the context."""
DOC_KINDS = ("pivot_pair", "direct_pair", "gloss", "english")
Layout = Literal["named", "implicit"]


@dataclass
class PivotSpec:
    """How the corpus is drawn: document-kind weights, the concept split and resource weights."""

    n_docs: int = 200_000
    seed: int = 0
    n_concepts: int = 64
    """Concepts drawn (seeded) among those whose every reference is one word (see ``single_token_concepts``)."""
    n_bridge: int = 32
    """Concepts never translated between two non-English languages (the evaluation concepts)."""
    p_pivot_pair: float = 0.70
    """Translation documents between English and another language (either direction)."""
    p_direct_pair: float = 0.10
    """Translation documents between two non-English languages (direct concepts only)."""
    p_gloss: float = 0.05
    """``dog (English) = mbwa (Swahili)``: always English first, one other language."""
    p_english: float = 0.15
    """English-only knowledge text about the concepts (no other language ever appears in it)."""
    resource_weight: dict[str, float] = field(default_factory=lambda: {"high": 1.0, "mid": 0.35, "low": 0.08})
    pivot: str = PIVOT
    p_to_pivot: float = 0.5
    """Share of the pivot pairs that translate INTO English (the rest translate out of it)."""
    p_holdout: float = 0.0
    """Share of the (non-English language pair, direct concept) combinations never translated
    directly (either direction): each such concept IS translated directly between other pairs."""
    layout: Layout = "named"
    """``named``: one word per document, languages named; ``implicit``: lists of 1..``max_items``
    word pairs of one language pair with no language named (``IMPLICIT_TEMPLATE_KW``)."""
    max_items: int = 5

    def __post_init__(self) -> None:
        if self.n_bridge >= self.n_concepts:
            raise ValueError(f"n_bridge={self.n_bridge} must leave some direct concepts (n_concepts={self.n_concepts}).")
        weights = [self.p_pivot_pair, self.p_direct_pair, self.p_gloss, self.p_english]
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"Document-kind weights must be non-negative and not all zero; got {weights}.")
        if not 0 <= self.p_holdout < 1:
            raise ValueError(f"p_holdout={self.p_holdout} must be in [0, 1).")
        if self.layout not in ("named", "implicit"):
            raise ValueError(f"layout={self.layout!r}: use 'named' or 'implicit'.")
        if self.max_items < 1:
            raise ValueError(f"max_items={self.max_items} must be at least 1.")


@dataclass(frozen=True)
class Plant:
    """The planted structure: which concepts are direct/bridge, the languages, the pivot."""

    concepts: tuple[str, ...]
    direct: tuple[str, ...]
    bridge: tuple[str, ...]
    pivot: str
    languages: tuple[str, ...]
    resource: dict[str, str]
    held_out: frozenset[tuple[str, str, str]] = frozenset()
    """(language a, language b, concept) with a < b: direct concepts never translated between a and b."""

    def is_held_out(self, src: str, tgt: str, concept: str) -> bool:
        a, b = sorted((src, tgt))
        return (a, b, concept) in self.held_out

    def held_out_triples(self) -> list[tuple[str, str, str]]:
        """Every (source, target, concept) of a held-out combination, both directions."""
        return [(s, t, c) for s, t in self.eval_pairs() for c in self.direct if self.is_held_out(s, t, c)]

    @property
    def others(self) -> list[str]:
        return [c for c in self.languages if c != self.pivot]

    def eval_pairs(self, sources: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
        """Every (source, target) pair of two non-pivot languages (sources default to all of them):
        the pairs no bridge concept was ever translated in."""
        srcs = self.others if sources is None else list(sources)
        return [(s, t) for s in srcs for t in self.others if t != s]

    def to_dict(self) -> dict:
        return dict(pivot=self.pivot, languages=list(self.languages), resource=self.resource,
                    direct_concepts=list(self.direct), bridge_concepts=list(self.bridge),
                    held_out=sorted("|".join(t) for t in self.held_out))


def _lexicon() -> "Lexicon":
    from interp.translation.lexicon import Lexicon

    return Lexicon.bundled()


def single_token_concepts(lex: "Lexicon") -> list[str]:
    """Concepts whose every reference in every language is a single word (no spaces or apostrophes),
    present in all languages: the ones a word-level BPE can make one token each."""
    def ok(word: str) -> bool:
        return bool(word) and not any(ch.isspace() or ch in "'’-" for ch in word)

    return [c for c, refs in lex.entries.items()
            if all(refs.get(lang) for lang in lex.languages) and all(ok(w) for ws in refs.values() for w in ws)]


def plant_concepts(spec: PivotSpec, lexicon: "Lexicon | None" = None) -> Plant:
    """Draw the concepts and split them into direct and bridge (seeded by ``spec.seed``)."""
    lex = lexicon or _lexicon()
    pool = single_token_concepts(lex)
    if spec.n_concepts > len(pool):
        raise ValueError(f"n_concepts={spec.n_concepts} but the lexicon has only {len(pool)} single-word concepts.")
    rng = random.Random(1000 + spec.seed)
    chosen = rng.sample(pool, spec.n_concepts)
    bridge = set(rng.sample(chosen, spec.n_bridge))
    order = [c for c in lex.entries if c in set(chosen)]
    direct = [c for c in order if c not in bridge]
    others = [c for c in lex.languages if c != spec.pivot]
    held = set()
    if spec.p_holdout > 0:
        for i, a in enumerate(others):
            for b in others[i + 1:]:
                # hold out a share of the concepts per language pair (never all: the pair stays trained)
                k = min(len(direct) - 1, round(spec.p_holdout * len(direct)))
                held.update((*sorted((a, b)), c) for c in rng.sample(direct, k))
    return Plant(concepts=tuple(order), direct=tuple(direct), bridge=tuple(c for c in order if c in bridge),
                 pivot=spec.pivot, languages=tuple(lex.languages),
                 resource={c: lex.languages[c].resource.value for c in lex.languages}, held_out=frozenset(held))


def build_corpus(spec: PivotSpec, lexicon: "Lexicon | None" = None, *, sample_seed: int | None = None) -> list[str]:
    """The training documents (seeded, deterministic). See the module docstring for the structure.

    ``sample_seed`` draws other documents from the same distribution (same planted concepts, which
    ``spec.seed`` fixes): held-out text, e.g. for training a tuned lens."""
    from interp.translation.prompts import PromptTemplate, build_prompt

    lex = lexicon or _lexicon()
    plant = plant_concepts(spec, lex)
    template = PromptTemplate(**TEMPLATE_KW)
    rng = random.Random(spec.seed if sample_seed is None else sample_seed)
    others = plant.others
    weights = [spec.resource_weight.get(plant.resource[c], 0.1) for c in others]
    name = {c: lex.languages[c].name for c in lex.languages}
    concepts = list(plant.concepts)
    seen_direct = {tuple(sorted((a, b))): [c for c in plant.direct if not plant.is_held_out(a, b, c)]
                   for a in others for b in others if a != b}
    # the planted English-only knowledge: part of speech and a successor relation (a seeded cycle)
    cycle = concepts[:]
    random.Random(2000 + spec.seed).shuffle(cycle)
    successor = {a: cycle[(i + 1) % len(cycle)] for i, a in enumerate(cycle)}

    def word(concept: str, lang: str) -> str:
        return rng.choice(lex.entries[concept][lang])

    def translation(concept: str, src: str, tgt: str) -> str:
        prompt = build_prompt(template, src=name[src], tgt=name[tgt], word=word(concept, src))
        return f"{prompt} {word(concept, tgt)}"

    def word_list(pool: list[str], src: str, tgt: str) -> str:
        items = rng.sample(pool, min(len(pool), rng.randint(1, spec.max_items)))
        lines = [f"{word(c, src)} = {word(c, tgt)}" for c in items]
        return "\n".join([IMPLICIT_TEMPLATE_KW["instruction"], *lines])

    def pair_doc(pool: list[str], src: str, tgt: str) -> str:
        return translation(rng.choice(pool), src, tgt) if spec.layout == "named" else word_list(pool, src, tgt)

    def english(concept: str) -> str:
        en = spec.pivot
        kind = rng.randrange(3)
        if kind == 0:
            return f"{word(concept, en)} is a {lex.pos.get(concept, 'word')}."
        if kind == 1:
            return f"After {word(concept, en)} comes {word(successor[concept], en)}."
        picks = rng.sample(concepts, 3)
        return f"{word(picks[0], en)}, {word(picks[1], en)} and {word(picks[2], en)}."

    docs = []
    kinds = rng.choices(DOC_KINDS, [spec.p_pivot_pair, spec.p_direct_pair, spec.p_gloss, spec.p_english],
                        k=spec.n_docs)
    for kind in kinds:
        if kind == "pivot_pair":
            other = rng.choices(others, weights)[0]
            if spec.layout == "named":
                concept = rng.choice(concepts)
                pair = (spec.pivot, other) if rng.random() < 1 - spec.p_to_pivot else (other, spec.pivot)
                docs.append(translation(concept, *pair))
            else:
                pair = (spec.pivot, other) if rng.random() < 1 - spec.p_to_pivot else (other, spec.pivot)
                docs.append(word_list(concepts, *pair))
        elif kind == "direct_pair":
            a = rng.choices(others, weights)[0]
            b = a
            while b == a:
                b = rng.choices(others, weights)[0]
            docs.append(pair_doc(seen_direct[tuple(sorted((a, b)))], a, b))
        elif kind == "gloss":
            other = rng.choices(others, weights)[0]
            concept = rng.choice(concepts)
            docs.append(f"{word(concept, spec.pivot)} ({name[spec.pivot]}) = {word(concept, other)} ({name[other]})")
        else:
            docs.append(english(rng.choice(concepts)))
    return docs


def tokenizer_texts(spec: PivotSpec, docs: list[str], lexicon: "Lexicon | None" = None) -> list[str]:
    """What the BPE is trained on: the corpus plus every planted word repeated, so that each word
    (rare low-resource ones too) is frequent enough to become one token."""
    lex = lexicon or _lexicon()
    plant = plant_concepts(spec, lex)
    words = [w for c in plant.concepts for ws in lex.entries[c].values() for w in ws]
    return docs + [" " + " ".join(words)] * 20
