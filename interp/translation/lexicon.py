"""Multilingual word lists: the bundled hand-compiled lexicon and loaders for the public formats
researchers bring (a two-column English-to-xx TSV, MUSE bilingual dictionaries, a CSV with one
column per language). Several references per concept and language (synonyms) are allowed.

>>> from interp.translation import Lexicon
>>> lex = Lexicon.bundled()
>>> lex.references("dog")["es"]
('perro',)
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path

from interp.translation.errors import TranslationConfigError

__all__ = [
    "ResourceLevel",
    "Language",
    "Lexicon",
    "LexiconFormatError",
    "language_info",
    "load_tsv_pairs",
    "load_muse",
    "load_csv",
]

SYNONYM_SEP = "|"


class ResourceLevel(str, Enum):
    """How much text a language has online (tiers after Joshi et al. 2020); orders heatmaps."""

    HIGH = "high"
    MID = "mid"
    LOW = "low"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        return ["high", "mid", "low", "unknown"].index(self.value)


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    script: str
    resource: ResourceLevel


class LexiconFormatError(TranslationConfigError):
    """A word-list file does not have the expected format; the message gives the line and what
    was expected."""

    def __init__(self, path: str | Path, line: int, expected: str, got: str):
        self.path, self.line = str(path), line
        super().__init__(f"{path}, line {line}: expected {expected}; got {got}.")


def _data_file(name: str) -> str:
    return resources.files("interp.translation").joinpath("data").joinpath(name).read_text(encoding="utf-8")


_LANG_TABLE: dict[str, dict[str, str]] | None = None


def language_info(code: str) -> Language:
    """Metadata of a language code (bundled table; unknown codes get resource ``unknown``)."""
    global _LANG_TABLE
    if _LANG_TABLE is None:
        _LANG_TABLE = {k: v for k, v in json.loads(_data_file("languages.json")).items() if not k.startswith("_")}
    row = _LANG_TABLE.get(code)
    if row is None:
        return Language(code, code, "unknown", ResourceLevel.UNKNOWN)
    return Language(code, row["name"], row["script"], ResourceLevel(row["resource"]))


def _clean(word: str) -> str:
    return unicodedata.normalize("NFC", word.strip())


@dataclass
class Lexicon:
    """Concepts with references per language.

    ``entries[concept][lang]`` is a tuple of references (synonyms); a concept may lack a language.
    """

    languages: dict[str, Language]
    entries: dict[str, dict[str, tuple[str, ...]]]
    pos: dict[str, str] = field(default_factory=dict)
    source: str = ""

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def bundled(cls) -> "Lexicon":
        """The hand-compiled lexicon shipped with the package (165 concepts, 12 languages);
        see :meth:`card`."""
        lex = load_csv(io.StringIO(_data_file("lexicon.csv")), name="bundled lexicon.csv")
        lex.source = "interp bundled lexicon"
        return lex

    @staticmethod
    def card() -> str:
        """How the bundled lexicon was made, and its limitations."""
        return _data_file("LEXICON_CARD.md")

    def merge(self, other: "Lexicon") -> "Lexicon":
        """Union of two lexicons (synonyms of the same concept and language are combined)."""
        entries = {c: dict(v) for c, v in self.entries.items()}
        for concept, refs in other.entries.items():
            slot = entries.setdefault(concept, {})
            for lang, words in refs.items():
                slot[lang] = tuple(dict.fromkeys(slot.get(lang, ()) + words))
        return Lexicon({**self.languages, **other.languages}, entries, {**other.pos, **self.pos},
                       source=f"{self.source} + {other.source}")

    def subset(self, *, languages: Iterable[str] | None = None, concepts: Iterable[str] | None = None,
               pos: str | None = None) -> "Lexicon":
        """A smaller lexicon (unknown names are an error, so typos do not silently shrink data)."""
        langs = list(self.languages) if languages is None else list(languages)
        bad = [code for code in langs if code not in self.languages]
        if bad:
            raise KeyError(f"Languages {bad} are not in this lexicon; it has {sorted(self.languages)}.")
        keep = list(self.entries) if concepts is None else list(concepts)
        missing = [c for c in keep if c not in self.entries]
        if missing:
            raise KeyError(f"Concepts {missing[:5]} are not in this lexicon.")
        if pos is not None:
            keep = [c for c in keep if self.pos.get(c) == pos]
        entries = {c: {lang: r for lang, r in self.entries[c].items() if lang in langs} for c in keep}
        return Lexicon({code: self.languages[code] for code in langs}, entries,
                       {c: self.pos[c] for c in keep if c in self.pos}, source=self.source)

    # ---- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def concepts(self, *, having: Sequence[str] = (), pos: str | None = None) -> list[str]:
        """Concepts that have references in every language of ``having`` (and the given part of speech)."""
        return [c for c, refs in self.entries.items()
                if all(refs.get(lang) for lang in having) and (pos is None or self.pos.get(c) == pos)]

    def references(self, concept: str) -> dict[str, tuple[str, ...]]:
        if concept not in self.entries:
            raise KeyError(f"Unknown concept {concept!r}; e.g. {list(self.entries)[:5]}.")
        return dict(self.entries[concept])

    def languages_by_resource(self) -> list[str]:
        """Language codes ordered high -> mid -> low -> unknown (then by file order)."""
        order = list(self.languages)
        return sorted(order, key=lambda c: (self.languages[c].resource.rank, order.index(c)))

    def to_frame(self):
        import pandas as pd

        rows = [
            {"concept": c, "pos": self.pos.get(c, ""), "language": lang, "references": SYNONYM_SEP.join(refs)}
            for c, per_lang in self.entries.items() for lang, refs in per_lang.items()
        ]
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return f"Lexicon({self.source or 'unnamed'}: {len(self)} concepts, languages {', '.join(self.languages)})"

    def _repr_html_(self) -> str:
        langs = ", ".join(f"{lang.name} ({lang.resource.value})" for lang in self.languages.values())
        return f"<b>Lexicon</b> ({self.source}): {len(self)} concepts; languages: {langs}"


# ---- loaders ----------------------------------------------------------------------------
def _open_text(path) -> tuple[Iterable[str], str]:
    if isinstance(path, io.TextIOBase):
        return path, getattr(path, "name", "<stream>")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No word-list file at {p}.")
    return p.read_text(encoding="utf-8-sig").splitlines(), str(p)


def _pairs_to_lexicon(pairs: list[tuple[str, str]], source: str, target: str, name: str) -> Lexicon:
    entries: dict[str, dict[str, tuple[str, ...]]] = {}
    for src, tgt in pairs:
        slot = entries.setdefault(src.lower() if source == "en" else src, {})
        slot[source] = tuple(dict.fromkeys(slot.get(source, ()) + (src,)))
        slot[target] = tuple(dict.fromkeys(slot.get(target, ()) + (tgt,)))
    return Lexicon({source: language_info(source), target: language_info(target)}, entries, source=name)


def load_tsv_pairs(path, target: str, *, source: str = "en") -> Lexicon:
    """A two-column TSV ``english<TAB>translation`` (one pair per line; a repeated source word adds
    a synonym; blank lines and ``#`` comments are skipped; a header ``en<TAB>xx`` is allowed)."""
    lines, name = _open_text(path)
    pairs = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 2 or not cols[0].strip() or not cols[1].strip():
            raise LexiconFormatError(name, number, f"two non-empty tab-separated columns ({source}<TAB>{target})",
                                     f"{len(cols)} column(s): {line[:60]!r}")
        if number == 1 and (cols[0].strip(), cols[1].strip()) == (source, target):
            continue  # header line
        pairs.append((_clean(cols[0]), _clean(cols[1])))
    if not pairs:
        raise LexiconFormatError(name, 0, "at least one word pair", "an empty file")
    return _pairs_to_lexicon(pairs, source, target, name)


def load_muse(path, source: str, target: str) -> Lexicon:
    """A MUSE bilingual dictionary (Conneau et al. 2018): ``source_word target_word`` per line,
    separated by a space or a tab; repeated source words are synonyms."""
    lines, name = _open_text(path)
    pairs = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        cols = raw.split()
        if len(cols) != 2:
            raise LexiconFormatError(name, number, f"exactly two whitespace-separated words ({source} {target})",
                                     f"{len(cols)} field(s): {raw[:60]!r}")
        pairs.append((_clean(cols[0]), _clean(cols[1])))
    if not pairs:
        raise LexiconFormatError(name, 0, "at least one word pair", "an empty file")
    return _pairs_to_lexicon(pairs, source, target, name)


def load_csv(path, *, concept_column: str | None = "concept", pos_column: str | None = "pos",
             name: str | None = None, languages: Mapping[str, Language] | None = None) -> Lexicon:
    """A CSV with one column per language code (cells may hold ``|``-separated synonyms), plus
    optional ``concept`` and ``pos`` columns. Without a concept column the English cell (or the
    first language's) names the concept."""
    lines, fname = _open_text(path)
    name = name or fname
    reader = csv.reader(lines if not isinstance(lines, io.TextIOBase) else lines.read().splitlines())
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise LexiconFormatError(name, 1, "a header row of language codes", "an empty file") from None
    if len(set(header)) != len(header) or any(not h for h in header):
        raise LexiconFormatError(name, 1, "a header of distinct, non-empty column names", repr(header))
    meta = {c for c in (concept_column, pos_column) if c}
    lang_cols = [h for h in header if h not in meta]
    if not lang_cols:
        raise LexiconFormatError(name, 1, "at least one language column besides concept/pos", repr(header))
    entries: dict[str, dict[str, tuple[str, ...]]] = {}
    pos: dict[str, str] = {}
    for number, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise LexiconFormatError(name, number, f"{len(header)} comma-separated fields ({','.join(header)})",
                                     f"{len(row)} field(s)")
        cells = dict(zip(header, row))
        refs = {lang: tuple(_clean(w) for w in cells[lang].split(SYNONYM_SEP) if w.strip()) for lang in lang_cols}
        refs = {lang: words for lang, words in refs.items() if words}
        if concept_column and concept_column in cells:
            concept = cells[concept_column].strip()
        else:
            key = "en" if "en" in refs else next(iter(refs), None)
            concept = refs[key][0] if key else ""
        if not concept:
            raise LexiconFormatError(name, number, "a concept name (or at least one non-empty cell)", repr(row))
        if concept in entries:
            raise LexiconFormatError(name, number, "each concept once", f"a second row for {concept!r}")
        entries[concept] = refs
        if pos_column and pos_column in cells:
            pos[concept] = cells[pos_column].strip()
    if not entries:
        raise LexiconFormatError(name, 2, "at least one data row", "only a header")
    langs = {code: (languages or {}).get(code) or language_info(code) for code in lang_cols}
    return Lexicon(langs, entries, pos, source=name)
