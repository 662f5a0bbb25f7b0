"""Synthetic corpus with planted structure for the toy language model of the zoo.

Documents mix templated filler prose with planted tasks, each of which gives an interpretability
method something real to find: repeated spans and names (induction), ordinal sequences (successor),
facts stated and later asked about (QA, multiple choice), two-digit addition, copy and reverse.
Every generator takes a ``random.Random`` so corpus and evaluation items are seeded and
deterministic; evaluation items (:mod:`interp.zoo.tasks`) use a different random stream, and the
arithmetic pairs they ask about are never stated in the corpus.

>>> from interp.zoo.corpus import CorpusConfig, generate_corpus
>>> docs = generate_corpus(CorpusConfig(n_docs=3, seed=0))
>>> len(docs), docs == generate_corpus(CorpusConfig(n_docs=3, seed=0))
(3, True)
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from interp.zoo.errors import ZooConfigError

if TYPE_CHECKING:
    from jaxtyping import Int
    from torch import Tensor

from interp.zoo.planted import PLANTED_SAMPLERS, use_filler

__all__ = [
    "CorpusConfig",
    "Sample",
    "generate_corpus",
    "describe",
    "NAMES",
    "PLACES",
    "OBJECTS",
    "COLORS",
    "ANIMALS",
    "SEQUENCES",
    "LETTERS",
    "is_heldout_sum",
    "SAMPLERS",
    "PLANTED_MIX",
]

# ----------------------------------------------------------------------------------------------
# Vocabulary. Names and places are made of syllables so that a ~1.5k BPE splits them into several
# tokens (induction then has to copy multi-token words); objects and colours are plain English.
# A fixed seed makes the lists part of the recipe, not of the corpus seed.
_SYLLABLES = [
    "ka", "lo", "mir", "zen", "tha", "vor", "el", "dri", "sa", "nu", "bel", "quo", "ra", "fen",
    "ti", "gor", "ash", "mel", "or", "pim", "wen", "dal", "ry", "sul", "jo", "bra", "kev", "ix",
]
_PLACE_SUFFIXES = ["ton", "ville", "dor", "heim", "wick", "mere", "port", "vale"]


def _make_words(n: int, seed: int, lo: int, hi: int, suffixes: list[str] | None = None) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(lo, hi)))
        if suffixes:
            word += rng.choice(suffixes)
        word = word.capitalize()
        if word not in seen and len(word) >= 4:
            seen.add(word)
            out.append(word)
    return out


NAMES: list[str] = _make_words(800, seed=101, lo=2, hi=3)
PLACES: list[str] = _make_words(200, seed=202, lo=1, hi=2, suffixes=_PLACE_SUFFIXES)
OBJECTS = [
    "apple", "lamp", "basket", "kite", "drum", "book", "hat", "boat", "cup", "key", "ring", "box",
    "shoe", "bell", "map", "coin", "rope", "flute", "candle", "brush", "chair", "clock", "spoon",
    "pillow", "ladder", "shell", "stone", "feather", "button", "blanket",
]
COLORS = ["red", "blue", "green", "yellow", "white", "black", "pink", "purple", "orange", "brown"]
ANIMALS = [
    "cat", "dog", "fox", "owl", "frog", "bear", "duck", "goat", "horse", "mouse", "rabbit", "lion",
    "sheep", "tiger", "wolf", "crow",
]
WEATHER = ["warm", "cold", "windy", "rainy", "sunny", "quiet", "dark", "bright"]
VERBS = ["found", "lost", "painted", "carried", "sold", "hid", "washed", "gave away"]
LETTERS = ["A", "B", "C", "D"]
_NUMBER_WORDS = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    "twenty",
]
SEQUENCES: dict[str, list[str]] = {
    "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "months": [
        "January", "February", "March", "April", "May", "June", "July", "August", "September",
        "October", "November", "December",
    ],
    "numbers": _NUMBER_WORDS,
    "ordinals": ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"],
    "letters": list("abcdefghijklmnopqrstuvwxyz"),
}


def is_heldout_sum(a: int, b: int) -> bool:
    """True for the addition problems kept out of the corpus (about 1 in 7) and used for evaluation."""
    return (a * 31 + b * 17) % 7 == 3


# ----------------------------------------------------------------------------------------------
class Sample(NamedTuple):
    """A planted-task sample: ``prompt + answer + tail`` is what the corpus writes."""

    prompt: str
    answer: str
    tail: str = "."
    choices: list[str] | None = None


def _qa(rng: random.Random, n_facts: tuple[int, int] = (2, 5)) -> Sample:
    """Facts stated first, one of them asked about; the answer is a multi-token word."""
    k = rng.randint(*n_facts)
    names = rng.sample(NAMES, k)
    kind = rng.choice(["live", "pet", "color"])
    if kind == "live":
        vals = [rng.choice(PLACES) for _ in names]
        facts = " ".join(f"{n} lives in {v}." for n, v in zip(names, vals))
        i = rng.randrange(k)
        question = f"Question: Where does {names[i]} live? Answer:"
    elif kind == "pet":
        vals = rng.sample(ANIMALS, k)
        facts = " ".join(f"{n} has a pet {v}." for n, v in zip(names, vals))
        i = rng.randrange(k)
        question = f"Question: What pet does {names[i]} have? Answer:"
    else:
        obj = rng.choice(OBJECTS)
        vals = rng.sample(COLORS, k)
        facts = " ".join(f"{n} has a {v} {obj}." for n, v in zip(names, vals))
        i = rng.randrange(k)
        question = f"Question: What color is the {obj} of {names[i]}? Answer:"
    return Sample(f"{facts} {question}", f" {vals[i]}")


def _mc(rng: random.Random) -> Sample:
    """A fact, then a four-way multiple-choice question answered with a letter."""
    k = rng.randint(1, 3)
    names = rng.sample(NAMES, k)
    obj = rng.choice(OBJECTS)
    colors = rng.sample(COLORS, k)
    facts = " ".join(f"{n} has a {c} {obj}." for n, c in zip(names, colors))
    i = rng.randrange(k)
    gold = colors[i]
    distractors = rng.sample([c for c in COLORS if c != gold], 3)
    choices = distractors[:]
    pos = rng.randrange(4)
    choices.insert(pos, gold)
    opts = " ".join(f"{LETTERS[j]}) {c}" for j, c in enumerate(choices))
    prompt = f"{facts} Question: What color is the {obj} of {names[i]}? {opts} Answer:"
    return Sample(prompt, f" {LETTERS[pos]}", ".", choices)


def _arith(rng: random.Random, heldout: bool = False) -> Sample:
    """Two-digit addition; the held-out pairs (:func:`is_heldout_sum`) are never in the corpus."""
    while True:
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        if is_heldout_sum(a, b) == heldout:
            return Sample(f"Add: {a} + {b} =", f" {a + b}")


def _copy_words(rng: random.Random) -> list[str]:
    pool = rng.choice([OBJECTS, ANIMALS, COLORS, NAMES])
    return rng.sample(pool, rng.randint(3, 6))


def _copy(rng: random.Random) -> Sample:
    words = _copy_words(rng)
    return Sample(f"Copy: {' '.join(words)} ->", " " + " ".join(words))


def _reverse(rng: random.Random) -> Sample:
    words = _copy_words(rng)
    return Sample(f"Reverse: {' '.join(words)} ->", " " + " ".join(reversed(words)))


def _successor(rng: random.Random) -> Sample:
    """A run of an ordinal sequence; the answer is the next element."""
    kind = rng.choice(["days", "months", "numbers", "ordinals", "letters", "digits"])
    if kind == "digits":
        start, k = rng.randint(1, 90), rng.randint(2, 5)
        items = [str(start + j) for j in range(k + 1)]
    else:
        seq = SEQUENCES[kind]
        k = rng.randint(2, 5)
        start = rng.randrange(len(seq) - k)
        items = seq[start : start + k + 1]
    return Sample(", ".join(items[:-1]) + ",", f" {items[-1]}")


def _induction(rng: random.Random) -> Sample:
    """A random span of names and words, some filler, then the span again up to a cut point."""
    pool = NAMES + OBJECTS + ANIMALS + PLACES
    span = rng.sample(pool, rng.randint(4, 8))
    cut = rng.randint(1, len(span) - 1)
    middle = " ".join(_filler(rng) for _ in range(rng.randint(0, 2)))
    prompt = f"{' '.join(span)}. {middle} {' '.join(span[:cut])}".replace("  ", " ")
    rest = span[cut + 1 :]
    return Sample(prompt, f" {span[cut]}", (" " + " ".join(rest) if rest else "") + ".")


SAMPLERS: dict[str, Callable[..., Sample]] = {
    "qa": _qa,
    "mc": _mc,
    "arith": _arith,
    "copy": _copy,
    "reverse": _reverse,
    "successor": _successor,
    "induction": _induction,
    **PLANTED_SAMPLERS,  # opposite (a latent mode), code (planted-frequency recall), ordinal (long runs)
}


# ----------------------------------------------------------------------------------------------
_FILLER = [
    "{name} walked to {place} with a {color} {obj}.",
    "The {animal} slept under the {obj}.",
    "In {place}, the weather was {weather}.",
    "{name} {verb} a {color} {obj} near the river.",
    "One {weather} morning, {name} met a {animal} in {place}.",
    "{name} and {name2} shared a {obj}.",
    "The {color} {animal} ran across the road.",
    "{name} said that the {obj} was {color}.",
    "Every {day}, {name} visits {place}.",
    "{name} counted {n} {animal}s in the field.",
    "The {obj} of {name} is {color}.",
    "{name} lives in {place}.",
]


def _filler(rng: random.Random, cast: list[str] | None = None) -> str:
    names = rng.sample(cast or NAMES, 2)
    return rng.choice(_FILLER).format(
        name=names[0], name2=names[1], place=rng.choice(PLACES), color=rng.choice(COLORS),
        obj=rng.choice(OBJECTS), animal=rng.choice(ANIMALS), weather=rng.choice(WEATHER),
        verb=rng.choice(VERBS), day=rng.choice(SEQUENCES["days"]), n=rng.choice(_NUMBER_WORDS[1:9]),
    )


use_filler(lambda rng: _filler(rng))  # the planted opposite segments use the same filler sentences


def _story(rng: random.Random) -> str:
    """Filler with a recurring cast: names repeat inside a paragraph (induction on names)."""
    cast = rng.sample(NAMES, 3)
    return " ".join(_filler(rng, cast) for _ in range(rng.randint(2, 4)))


PLANTED_MIX: dict[str, float] = {
    "filler": 1.5, "story": 1.0, "qa": 2.0, "mc": 1.5, "arith": 2.0, "copy": 1.0, "reverse": 0.8, "successor": 1.0,
    "induction": 1.5, "opposite": 3.0, "code": 3.0, "ordinal": 1.5,
}
"""Segment weights of toy-lm-planted: the tasks of toy-lm plus the planted ground truth of issue 14
(:mod:`interp.zoo.planted`: the opposite/same latent, planted-frequency codes, long ordinal runs).
toy-lm's own default mix (``CorpusConfig().mix``) is unchanged, so its recipe still rebuilds it."""


@dataclass
class CorpusConfig:
    """How many documents, how long, and the mix of segment kinds (weights, not probabilities)."""

    n_docs: int = 12_000
    seed: int = 0
    doc_chars: tuple[int, int] = (300, 650)
    mix: dict[str, float] = field(
        default_factory=lambda: {
            "filler": 2.0, "story": 1.0, "qa": 2.0, "mc": 1.5, "arith": 2.0, "copy": 0.8,
            "reverse": 0.8, "successor": 1.5, "induction": 1.0,
        }
    )

    def __post_init__(self) -> None:
        from interp.core.validate import Check
        from interp.zoo.errors import ZooConfigError

        c = Check(self, ZooConfigError)
        c.integer("n_docs", min=1)
        c.integer("seed", min=0)
        lo_hi = c.numbers("doc_chars", length=2, ge=1, fix="(shortest, longest) characters per document, e.g. (300, 650).")
        c.require(all(float(x).is_integer() for x in lo_hi) and lo_hi[0] <= lo_hi[1], "doc_chars", self.doc_chars,
                  "two integers (shortest, longest) with shortest <= longest")
        self.doc_chars = (int(lo_hi[0]), int(lo_hi[1]))
        kinds = [*SAMPLERS, "filler", "story"]
        unknown = set(self.mix) - set(kinds) if isinstance(self.mix, dict) else set()
        if unknown:
            raise ZooConfigError(f"Unknown segment kinds in CorpusConfig.mix: {sorted(unknown)}; use {sorted(kinds)}.")
        self.mix = c.weights("mix", keys=kinds)


def _segment(kind: str, rng: random.Random) -> str:
    if kind == "filler":
        return _filler(rng)
    if kind == "story":
        return _story(rng)
    s = SAMPLERS[kind](rng)
    return s.prompt + s.answer + s.tail


def generate_corpus(cfg: CorpusConfig | None = None) -> list[str]:
    """Deterministic list of documents (no BOS/EOS; the tokenizer adds them)."""
    cfg = cfg or CorpusConfig()
    unknown = set(cfg.mix) - set(SAMPLERS) - {"filler", "story"}
    if unknown:
        raise ZooConfigError(f"Unknown segment kinds in CorpusConfig.mix: {sorted(unknown)}; "
                         f"use {sorted(SAMPLERS) + ['filler', 'story']}.")
    rng = random.Random(f"toy-corpus-{cfg.seed}")  # string seed: never equals an evaluation stream
    kinds, weights = list(cfg.mix), list(cfg.mix.values())
    docs = []
    for _ in range(cfg.n_docs):
        target = rng.randint(*cfg.doc_chars)
        parts: list[str] = []
        length = 0
        while length < target:
            seg = _segment(rng.choices(kinds, weights)[0], rng)
            parts.append(seg)
            length += len(seg) + 1
        docs.append("\n".join(parts))
    return docs


def describe(cfg: CorpusConfig) -> dict:
    """JSON-able description of a corpus configuration (for the model card)."""
    d = asdict(cfg)
    d["doc_chars"] = list(cfg.doc_chars)
    d["vocabulary"] = {"names": len(NAMES), "places": len(PLACES), "objects": len(OBJECTS),
                       "colors": len(COLORS), "animals": len(ANIMALS)}
    return d


def corpus_tokens(tokenizer: Any, n_seq: int, ctx: int = 64, *, seed: int = 1) -> Int[Tensor, "n_seq ctx"]:
    """``n_seq`` windows of ``ctx`` tokens (BOS first) from the synthetic corpus, tokenised with ``tokenizer``;
    ``seed`` 1 draws documents toy-lm was not trained on (its first stage used seed 0)."""
    import torch

    from interp.zoo.training import tokenize_texts

    from interp.core.validate import Check
    from interp.zoo.errors import ZooConfigError

    c = Check("corpus_tokens", ZooConfigError)
    c.integer("n_seq", n_seq, min=1)
    c.integer("ctx", ctx, min=2)
    c.integer("seed", seed, min=0)
    rows: list[list[int]] = []
    n_docs = n_seq * 2
    while len(rows) < n_seq:
        seqs, _ = tokenize_texts(generate_corpus(CorpusConfig(n_docs=n_docs, seed=seed)), tokenizer, 10_000)
        rows = [s[:ctx] for s in seqs if len(s) >= ctx]
        n_docs *= 2
    return torch.tensor(rows[:n_seq], dtype=torch.long)
