"""The bundled lexicon (coverage the issue asks for) and the loaders, malformed files included."""

from __future__ import annotations

import io
import unicodedata

import pytest

from interp.translation import Lexicon, LexiconFormatError, ResourceLevel, load_csv, load_muse, load_tsv_pairs


@pytest.fixture(scope="module")
def lex():
    return Lexicon.bundled()


def test_bundled_lexicon_coverage(lex):
    assert len(lex) >= 150
    assert len(lex.languages) >= 12
    levels = {lang.resource for lang in lex.languages.values()}
    assert {ResourceLevel.HIGH, ResourceLevel.MID, ResourceLevel.LOW} <= levels
    assert len({lang.script for lang in lex.languages.values()}) >= 5
    assert {"noun", "verb", "adj"} <= set(lex.pos.values())
    # every concept has a reference in every language, and some have synonyms
    assert all(len(refs) == len(lex.languages) for refs in lex.entries.values())
    assert sum(len(w) > 1 for refs in lex.entries.values() for w in refs.values()) > 50


def test_bundled_words_are_clean(lex):
    for concept, refs in lex.entries.items():
        for lang, words in refs.items():
            for w in words:
                assert w == w.strip() and w, (concept, lang)
                assert unicodedata.normalize("NFC", w) == w
                assert "|" not in w and "," not in w


def test_scripts_match_the_declared_language(lex):
    """Independent check of the data: each word's letters belong to its language's script."""
    expected = {"Latin": "LATIN", "Cyrillic": "CYRILLIC", "Han": "CJK", "Devanagari": "DEVANAGARI",
                "Arabic": "ARABIC", "Telugu": "TELUGU"}
    for concept, refs in lex.entries.items():
        for lang, words in refs.items():
            prefix = expected[lex.languages[lang].script]
            for w in words:
                for ch in w:
                    if unicodedata.category(ch)[0] == "L":
                        assert unicodedata.name(ch).startswith(prefix), (concept, lang, w, ch)


def test_card_and_views(lex):
    card = Lexicon.card()
    assert "may contain errors" in card.lower() and "hand-compiled" in card.lower()
    assert lex.languages_by_resource()[0] == "en" and lex.languages_by_resource()[-1] in ("sw", "te")
    frame = lex.to_frame()
    assert len(frame) == sum(len(v) for v in lex.entries.values())
    assert "Lexicon" in lex._repr_html_()
    small = lex.subset(languages=["en", "hi"], pos="verb")
    assert set(small.languages) == {"en", "hi"} and all(small.pos[c] == "verb" for c in small.entries)
    with pytest.raises(KeyError, match="not in this lexicon"):
        lex.subset(languages=["xx"])


def test_tsv_pairs_with_synonyms_comments_and_header():
    text = "en\tes\n# a comment\n\ndog\tperro\ndog\tcan\ncat\tgato\n"
    lex = load_tsv_pairs(io.StringIO(text), target="es")
    assert lex.references("dog") == {"en": ("dog",), "es": ("perro", "can")}
    assert lex.languages["es"].name == "Spanish"


@pytest.mark.parametrize(
    "text, line, expected",
    [
        ("dog\tperro\ncat gato\n", 2, "two non-empty tab-separated columns"),
        ("dog\tperro\tcan\n", 1, "two non-empty"),
        ("dog\t\n", 1, "two non-empty"),
        ("", 0, "at least one word pair"),
    ],
)
def test_tsv_errors_name_the_line(text, line, expected):
    with pytest.raises(LexiconFormatError, match=expected) as info:
        load_tsv_pairs(io.StringIO(text), target="es")
    assert info.value.line == line
    assert f"line {line}" in str(info.value)


def test_muse_dictionary(tmp_path):
    path = tmp_path / "de-en.txt"
    path.write_text("Hund dog\nHund hound\nKatze\tcat\n", encoding="utf-8")
    lex = load_muse(path, "de", "en")
    assert lex.references("Hund")["en"] == ("dog", "hound")
    bad = tmp_path / "bad.txt"
    bad.write_text("Hund dog\nKatze\n", encoding="utf-8")
    with pytest.raises(LexiconFormatError, match=r"bad.txt, line 2: expected exactly two"):
        load_muse(bad, "de", "en")
    with pytest.raises(FileNotFoundError, match="No word-list file"):
        load_muse(tmp_path / "missing.txt", "de", "en")


def test_csv_one_column_per_language(tmp_path):
    path = tmp_path / "words.csv"
    path.write_text("en,fr,xx\ndog,chien|toutou,dogo\ncat,chat,\n", encoding="utf-8")
    lex = load_csv(path)
    assert lex.references("dog")["fr"] == ("chien", "toutou")
    assert "xx" not in lex.references("cat")  # empty cell = no reference
    assert lex.languages["xx"].resource is ResourceLevel.UNKNOWN


@pytest.mark.parametrize(
    "text, line, expected",
    [
        ("en,fr\ndog,chien,extra\n", 2, "2 comma-separated fields"),
        ("en,en\ndog,dog\n", 1, "distinct, non-empty column names"),
        ("concept,pos\nx,noun\n", 1, "at least one language column"),
        ("en,fr\n", 2, "at least one data row"),
        ("en,fr\ndog,chien\ndog,chienne\n", 3, "each concept once"),
    ],
)
def test_csv_errors_name_the_line(tmp_path, text, line, expected):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LexiconFormatError, match=expected) as info:
        load_csv(path)
    assert info.value.line == line


def test_merge_combines_synonyms():
    a = load_tsv_pairs(io.StringIO("dog\tperro\n"), target="es")
    b = load_tsv_pairs(io.StringIO("dog\tcan\ncat\tgato\n"), target="es")
    merged = a.merge(b)
    assert merged.references("dog")["es"] == ("perro", "can") and "cat" in merged.entries
