"""Matching decoded strings to reference words, and the outcome partition of the translation-barrier
analysis (Bafna et al. 2025, arXiv 2506.22724).

Rules (all configurable in :class:`MatchRules`), applied to NFKC-normalised, case-folded text:

1. **exact**: the whole string equals a reference (after trimming spaces and punctuation);
2. **whole word**: the reference's words appear as consecutive words of the string. Words are runs
   of letters, combining marks and digits (so Devanagari/Telugu vowel signs stay inside words),
   with inner apostrophes and hyphens;
3. **substring**: the reference occurs anywhere inside the string, allowed only for references of at
   least ``min_substring_chars`` (4) code points in scripts that separate words with spaces (Latin,
   Cyrillic, Arabic, Devanagari, Telugu...), because short substrings match by accident ("sol" in
   "solo"); in scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar, Tibetan) words
   cannot be delimited, so any substring counts (``unsegmented_substring``).

>>> classify_outcome("perro", ["dog", "perro"], {"en": ["dog"], "es": ["perro"]}, target="es")
<Outcome.CORRECT: 'correct'>
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from interp.core.validate import Check
from interp.translation.errors import TranslationConfigError

__all__ = [
    "Outcome",
    "MatchRules",
    "normalize",
    "words",
    "matches",
    "matching_languages",
    "layer_language",
    "classify_outcome",
    "is_unsegmented",
]

_UNSEGMENTED_PREFIXES = ("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN", "IDEOGRAPHIC")
_INNER_JOINERS = {"'", "’", "-", "\u200c", "\u200d"}  # apostrophes, hyphen, ZWNJ/ZWJ (Indic, Persian)


class Outcome(str, Enum):
    """How one translation example ended (the partition used in every report)."""

    CORRECT = "correct"
    """The final answer matches a target-language reference."""
    TRANSLATION_FAILURE = "translation_failure"
    """Wrong answer, but some inspected intermediate layer decoded the concept in another language."""
    TARGET_LOST = "target_lost"
    """Wrong answer, no other-language match, but an intermediate layer had the target word."""
    TASK_FAILURE = "task_failure"
    """Wrong answer and the concept never surfaced in any language at any inspected layer."""


@dataclass(frozen=True)
class MatchRules:
    """How a decoded string is compared with a reference word (see the module docstring)."""

    normalization: str = "NFKC"
    case_insensitive: bool = True
    exact: bool = True
    whole_word: bool = True
    substring: bool = True
    min_substring_chars: int = 4
    unsegmented_substring: bool = True

    def __post_init__(self) -> None:
        c = Check(self, TranslationConfigError)
        if not (isinstance(self.normalization, str) and self.normalization in ("NFC", "NFKC", "NFD", "NFKD")):
            raise TranslationConfigError(f"normalization={self.normalization!r}: use 'NFKC' (default), 'NFC', 'NFD' or 'NFKD'.")
        for flag in ("case_insensitive", "exact", "whole_word", "substring", "unsegmented_substring"):
            c.boolean(flag)
        if not isinstance(self.min_substring_chars, int) or isinstance(self.min_substring_chars, bool) or \
                self.min_substring_chars < 1:
            raise TranslationConfigError(f"MatchRules.min_substring_chars={self.min_substring_chars!r} is invalid: "
                                         "min_substring_chars must be at least 1 (an integer).")


DEFAULT_RULES = MatchRules()


def _is_word_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LMN"


def normalize(text: str, rules: MatchRules = DEFAULT_RULES) -> str:
    """Unicode-normalise, case-fold, trim non-word characters at both ends and collapse spaces."""
    text = unicodedata.normalize(rules.normalization, text)
    if rules.case_insensitive:
        text = text.casefold()
    text = " ".join(text.split())
    start, end = 0, len(text)
    while start < end and not _is_word_char(text[start]):
        start += 1
    while end > start and not _is_word_char(text[end - 1]):
        end -= 1
    return text[start:end]


def words(text: str) -> list[str]:
    """Split already-normalised text into words (letters, marks, digits; inner ' - ZWJ/ZWNJ kept)."""
    out, cur = [], []
    for i, ch in enumerate(text):
        if _is_word_char(ch):
            cur.append(ch)
        elif ch in _INNER_JOINERS and cur and i + 1 < len(text) and _is_word_char(text[i + 1]):
            cur.append(ch)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


def is_unsegmented(text: str) -> bool:
    """True when ``text`` is written in a script without spaces between words (Han, kana, Thai...)."""
    letters = [ch for ch in text if unicodedata.category(ch)[0] == "L"]
    if not letters:
        return False
    return all(unicodedata.name(ch, "").startswith(_UNSEGMENTED_PREFIXES) for ch in letters)


def matches(candidate: str, reference: str, rules: MatchRules = DEFAULT_RULES) -> bool:
    """Whether a decoded ``candidate`` string names ``reference`` under ``rules``.

    >>> matches(" Perros", "perro"), matches("solo", "sol"), matches("小狗", "狗")
    (True, False, True)
    """
    cand, ref = normalize(candidate, rules), normalize(reference, rules)
    if not cand or not ref:
        return False
    if rules.exact and cand == ref:
        return True
    if rules.whole_word:
        cw, rw = words(cand), words(ref)
        if rw and any(cw[i:i + len(rw)] == rw for i in range(len(cw) - len(rw) + 1)):
            return True
    if rules.substring and ref in cand:
        if is_unsegmented(ref):
            return rules.unsegmented_substring
        return len(ref) >= rules.min_substring_chars
    return False


def matching_languages(
    candidate: str, references: Mapping[str, Sequence[str]], rules: MatchRules = DEFAULT_RULES
) -> list[str]:
    """Languages (in ``references`` order) with at least one reference matched by ``candidate``."""
    if isinstance(candidate, str) and not candidate.strip():
        return []
    return [lang for lang, refs in references.items() if any(matches(candidate, r, rules) for r in _as_list(refs))]


def layer_language(
    candidate: str, references: Mapping[str, Sequence[str]], target: str, rules: MatchRules = DEFAULT_RULES
) -> str | None:
    """The language a layer string is in, decided only by which reference it matches: the target if
    it matches a target reference (a word shared by two languages counts for the target), else the
    first matching language in ``references`` order, else ``None``."""
    langs = matching_languages(candidate, references, rules)
    if not langs:
        return None
    return target if target in langs else langs[0]


def _as_list(refs: Sequence[str] | str) -> Sequence[str]:
    return [refs] if isinstance(refs, str) else refs


def classify_outcome(
    final: str,
    layer_strings: Sequence[str],
    references: Mapping[str, Sequence[str]],
    target: str,
    rules: MatchRules = DEFAULT_RULES,
) -> Outcome:
    """Partition one example into correct / translation failure / target lost / task failure.

    Args:
        final: the model's answer (decoded from its output layer).
        layer_strings: the decoded strings of the inspected intermediate layers.
        references: language code -> accepted words (synonyms) for this concept; must include ``target``.
        target: the requested language.

    >>> refs = {"en": ["dog"], "es": ["perro"], "hi": ["कुत्ता"]}
    >>> classify_outcome("gato", ["dog", "perro"], refs, target="es")
    <Outcome.TRANSLATION_FAILURE: 'translation_failure'>
    """
    if target not in references:
        raise KeyError(f"target {target!r} has no references; references are given for {sorted(references)}.")
    if isinstance(layer_strings, str):
        raise TypeError("layer_strings must be a sequence of strings (one per inspected layer), not one string.")
    target_refs = _as_list(references[target])
    if any(matches(final, r, rules) for r in target_refs):
        return Outcome.CORRECT
    langs = [layer_language(s, references, target, rules) for s in layer_strings]
    if any(lang is not None and lang != target for lang in langs):
        return Outcome.TRANSLATION_FAILURE
    if target in langs:
        return Outcome.TARGET_LOST
    return Outcome.TASK_FAILURE
