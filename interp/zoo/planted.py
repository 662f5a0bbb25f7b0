"""Planted ground truth for toy-lm (issue 14): segments whose mechanism each method should recover.

- ``opposite`` (CorrSteer): word pairs answered in one of two modes, ``same`` (copy the word) or
  ``opposite`` (its antonym). The mode is a latent set by construction: stated by a rule line, shown
  by 0-3 examples, or both, with 0-2 filler sentences before the query, so the evidence for it (and
  how strongly the model represents it) varies. ``same`` is the more common mode (the default when
  evidence is weak).
- ``code`` (THR): ``The code of Lomir is 472.`` for a fixed list of holders, each with its own code;
  holder ``i`` appears with a planted, log-uniform frequency (from ``CODE_MAX_WEIGHT`` times down to
  once relative to the rarest), so a model memorises the frequent codes and only half-remembers
  the rare ones: rare successes to explore.
- ``ordinal`` (Lorsa successor heads): long runs of ordinal sequences (days, months, number words,
  ordinals, letters in both cases, digits).
- Repeated random-token spans (Lorsa induction heads) are planted at the token level by
  :func:`plant_repeats`, after the tokenizer exists: ``[r_1..r_n] [r_1..r_n] ...`` over the whole
  vocabulary, so the probe of :func:`interp.lorsa.analyze.repeated_random_tokens` is in distribution.

>>> import random
>>> s = opposite_sample(random.Random(0), mode="opposite", rule=True, n_examples=1, gap=0)
>>> s.prompt.startswith("Rule: opposite.")
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

__all__ = [
    "OPPOSITES", "ANTONYM", "MODES", "opposite_sample", "CODE_HOLDERS", "CODES", "CODE_MAX_WEIGHT", "code_weight",
    "code_sample", "code_prompt", "ORDINAL_RUNS", "ordinal_sample", "RepeatConfig", "plant_repeats", "PLANTED_SAMPLERS",
]


class _Sample(NamedTuple):  # the same fields as interp.zoo.corpus.Sample (kept here to avoid an import cycle)
    prompt: str
    answer: str
    tail: str = "."
    choices: list[str] | None = None


# ---------------------------------------------------------------------------------------------- opposite
OPPOSITES: list[tuple[str, str]] = [
    ("hot", "cold"), ("big", "small"), ("up", "down"), ("day", "night"), ("fast", "slow"), ("happy", "sad"),
    ("light", "dark"), ("old", "new"), ("wet", "dry"), ("loud", "quiet"), ("full", "empty"), ("early", "late"),
    ("high", "low"), ("hard", "soft"), ("rich", "poor"), ("open", "closed"), ("good", "bad"), ("left", "right"),
    ("in", "out"), ("yes", "no"), ("black", "white"), ("long", "short"), ("near", "far"), ("first", "last"),
]
ANTONYM: dict[str, str] = {**{a: b for a, b in OPPOSITES}, **{b: a for a, b in OPPOSITES}}
MODES = ("same", "opposite")
_OPPOSITE_WORDS = sorted(ANTONYM)


_FILLER: list = []
"""The corpus's filler-sentence sampler, registered by :mod:`interp.zoo.corpus` when it loads (it imports
this module for its samplers, so this module cannot import it back)."""


def use_filler(fn) -> None:
    """Register the filler-sentence sampler ``fn(rng) -> str`` the opposite segments put before a query."""
    _FILLER[:] = [fn]


def opposite_sample(rng: random.Random, *, mode: str | None = None, rule: bool | None = None,
                    n_examples: int | None = None, gap: int | None = None, p_opposite: float = 0.45) -> _Sample:
    """A ``same`` / ``opposite`` segment: optional rule line, examples, fillers, then the query.

    ``None`` arguments are drawn: mode ``opposite`` with ``p_opposite``, a rule line half of the time,
    0-3 examples (at least one without a rule), 0-2 filler sentences before the query.
    """
    if not _FILLER:
        raise RuntimeError("opposite_sample needs the corpus's filler sentences: import interp.zoo.corpus first.")
    _filler = _FILLER[0]
    mode = mode if mode is not None else ("opposite" if rng.random() < p_opposite else "same")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    rule = rule if rule is not None else rng.random() < 0.5
    n_examples = n_examples if n_examples is not None else rng.randint(0 if rule else 1, 3)
    gap = gap if gap is not None else rng.choice([0, 0, 1, 2])
    words = rng.sample(_OPPOSITE_WORDS, n_examples + 1)
    # never ask about a word whose antonym was already shown (the answer would be a copy either way)
    while ANTONYM[words[-1]] in words[:-1]:
        words[-1] = rng.choice([w for w in _OPPOSITE_WORDS if w not in words and ANTONYM[w] not in words])
    answer = (lambda w: ANTONYM[w]) if mode == "opposite" else (lambda w: w)
    parts = [f"Rule: {mode}."] if rule else []
    parts += [f"{w} -> {answer(w)}." for w in words[:-1]]
    parts += [_filler(rng) for _ in range(gap)]
    parts.append(f"{words[-1]} ->")
    return _Sample(" ".join(parts), f" {answer(words[-1])}")


# ---------------------------------------------------------------------------------------------- code
_CODE_SYLLABLES = ["bo", "ki", "zu", "pe", "la", "mo", "ri", "ta", "ve", "du", "go", "ne", "si", "ha", "fu", "ye"]


def _holders(n: int, seed: int = 303) -> list[str]:
    """``n`` distinct three-syllable names from their own syllables (never a corpus name or place)."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        word = "".join(rng.choice(_CODE_SYLLABLES) for _ in range(3)).capitalize()
        if word not in out:
            out.append(word)
    return out


CODE_HOLDERS: list[str] = _holders(512)
CODES: dict[str, str] = {h: f"{random.Random(f'code-{h}').randint(100, 999)}" for h in CODE_HOLDERS}
CODE_MAX_WEIGHT = 100.0
"""Holder 0 is planted this many times as often as the last holder (log-uniform in between)."""


def code_weight(index: int, n: int = len(CODE_HOLDERS)) -> float:
    """Planted relative frequency of holder ``index``: log-uniform from ``CODE_MAX_WEIGHT`` down to 1."""
    return math.exp(math.log(CODE_MAX_WEIGHT) * (1 - index / max(1, n - 1)))


_CODE_CUM: list[float] = []


def code_prompt(holder: str) -> str:
    return f"The code of {holder} is"


def code_sample(rng: random.Random, *, holder: str | None = None) -> _Sample:
    """``The code of <holder> is <code>.`` with the holder drawn by its planted frequency."""
    if holder is None:
        if not _CODE_CUM:
            total = 0.0
            for i in range(len(CODE_HOLDERS)):
                total += code_weight(i)
                _CODE_CUM.append(total)
        holder = CODE_HOLDERS[rng.choices(range(len(CODE_HOLDERS)), cum_weights=_CODE_CUM)[0]]
    return _Sample(code_prompt(holder), f" {CODES[holder]}")


# ---------------------------------------------------------------------------------------------- ordinal
ORDINAL_RUNS: dict[str, list[str]] = {
    "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "months": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December"],
    "numbers": ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"],
    "ordinals": ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"],
    "letters": list("abcdefghijklmnopqrstuvwxyz"),
    "capitals": list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    "digits": list("0123456789"),
}


def ordinal_sample(rng: random.Random) -> _Sample:
    """A run of 3-9 consecutive elements of an ordinal sequence, comma separated; the answer is the next."""
    seq = ORDINAL_RUNS[rng.choice(list(ORDINAL_RUNS))]
    k = rng.randint(3, min(9, len(seq) - 1))
    start = rng.randrange(len(seq) - k)
    items = seq[start : start + k + 1]
    return _Sample(", ".join(items[:-1]) + ",", f" {items[-1]}")


PLANTED_SAMPLERS = {"opposite": opposite_sample, "code": code_sample, "ordinal": ordinal_sample}


# ---------------------------------------------------------------------------------------------- repeats
@dataclass
class RepeatConfig:
    """Repeated random-token spans planted into tokenised documents.

    ``doc_prob`` of the documents get ``copies`` back-to-back copies of a span of ``span`` random
    tokens (uniform over the non-special vocabulary) inserted after one of their newlines (or at the
    start); ``pure_prob`` of them are replaced by ``[BOS, span, span(, span)]`` alone, the induction
    probe's own shape. ``seed`` makes the planting deterministic.
    """

    doc_prob: float = 0.5
    pure_prob: float = 0.08
    span: tuple[int, int] = (4, 40)
    copies: tuple[int, int] = (2, 3)
    seed: int = 0

    def __post_init__(self) -> None:
        from interp.core.validate import Check
        from interp.zoo.errors import ZooConfigError

        c = Check(self, ZooConfigError)
        c.number("doc_prob", ge=0, le=1, fix="The share of documents that get a repeated span.")
        c.number("pure_prob", ge=0, le=1, fix="The share of documents replaced by a bare repeated span.")
        c.require(self.doc_prob + self.pure_prob <= 1, "pure_prob", self.pure_prob,
                  f"at most 1 - doc_prob = {1 - self.doc_prob:g}")
        for name, low in (("span", 1), ("copies", 2)):
            v = getattr(self, name)
            ok = (isinstance(v, (tuple, list)) and len(v) == 2
                  and all(isinstance(x, int) and not isinstance(x, bool) for x in v) and low <= v[0] <= v[1])
            c.require(ok, name, v, f"a (min, max) pair of integers with {low} <= min <= max")
        c.integer("seed", min=0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["span"], d["copies"] = list(self.span), list(self.copies)
        return d


def plant_repeats(seqs: Sequence[Sequence[int]], vocab_size: int, *, special_ids: Sequence[int],
                  newline_ids: Sequence[int], max_len: int, cfg: RepeatConfig | None = None) -> tuple[list[list[int]], int]:
    """Documents (token ids, BOS first, EOS last) with repeated random spans planted; also how many
    tokens now sit in a repeated copy after the first (the tokens where induction can predict).

    >>> out, n = plant_repeats([[1, 5, 9, 2]], 20, special_ids=[0, 1, 2], newline_ids=[9], max_len=64,
    ...                        cfg=RepeatConfig(doc_prob=1.0, pure_prob=0.0, span=(3, 3), copies=(2, 2)))
    >>> len(out[0]), n
    (10, 3)
    """
    cfg = cfg or RepeatConfig()
    rng = random.Random(f"toy-repeats-{cfg.seed}")
    special = set(special_ids)
    pool = [i for i in range(vocab_size) if i not in special]
    nl = set(newline_ids)
    out: list[list[int]] = []
    repeated = 0
    for seq in seqs:
        seq = list(seq)
        u = rng.random()
        if u >= cfg.doc_prob + cfg.pure_prob:
            out.append(seq[:max_len])
            continue
        n = rng.randint(*cfg.span)
        c = rng.randint(*cfg.copies)
        span = rng.choices(pool, k=n)
        if u < cfg.pure_prob:
            c = min(c, (max_len - 2) // n)
            new = [seq[0]] + span * c + [seq[-1]]
        else:
            body, bos, eos = seq[1:-1], seq[0], seq[-1]
            cuts = [0] + [i + 1 for i, t in enumerate(body) if t in nl]
            at = rng.choice(cuts)
            sep = [next(iter(sorted(nl)))] if nl else []
            new = [bos] + body[:at] + span * c + sep + body[at:] + [eos]
        new = new[:max_len]
        # tokens of the 2nd.. copies that survived the cut: where a previous occurrence predicts the next
        start = 1 if u < cfg.pure_prob else 1 + at
        repeated += max(0, min(len(new), start + n * c) - (start + n))
        out.append(new)
    return out, repeated
