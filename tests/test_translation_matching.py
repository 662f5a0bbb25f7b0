"""Matching rules per script and every branch of classify_outcome."""

from __future__ import annotations

import unicodedata

import pytest

from interp.translation import MatchRules, Outcome, classify_outcome, layer_language, matches, matching_languages
from interp.translation.matching import is_unsegmented, normalize, words


# ---- Latin ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "candidate, reference, expected",
    [
        ("perro", "perro", True),
        (" Perro\n", "perro", True),            # case and surrounding whitespace
        ("PERRO.", "perro", True),              # punctuation at the ends
        ("el perro", "perro", True),            # whole word
        ("perros", "perro", True),              # substring, reference has >= 4 chars
        ("solo", "sol", False),                 # substring refused: reference shorter than 4
        ("sol", "sol", True),                   # ...but exact still matches
        ("el sol", "sol", True),                # ...and so does a whole word
        ("tierra", "perro", False),
        ("kız kardeş", "kardeş", True),         # Turkish whole word (non-ASCII Latin)
        ("saudara laki-laki", "laki-laki", True),
        ("Straße", "STRASSE", True),            # case folding (ß -> ss)
        ("", "perro", False),
    ],
)
def test_latin(candidate, reference, expected):
    assert matches(candidate, reference) is expected


# ---- Cyrillic ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "candidate, reference, expected",
    [
        ("Собака", "собака", True),
        ("собаками", "собака", True),   # substring (6 letters)
        ("кот", "кот", True),
        ("который", "кот", False),      # 3-letter reference: no substring
        ("мой кот", "кот", True),
        ("дом", "дым", False),
    ],
)
def test_cyrillic(candidate, reference, expected):
    assert matches(candidate, reference) is expected


# ---- Devanagari -------------------------------------------------------------------------------
def test_devanagari_keeps_vowel_signs_inside_words():
    # vowel signs and virama are combining marks: a naive \w split would cut these words apart
    assert words(normalize("ठंडा पानी है")) == ["ठंडा", "पानी", "है"]
    assert matches("ठंडा पानी", "पानी")
    assert matches("कुत्ता", "कुत्ता")
    assert not matches("कुत्ता", "बिल्ली")


def test_devanagari_nukta_forms_are_normalised():
    precomposed = "\u095b"  # DEVANAGARI LETTER ZA (one code point)
    decomposed = "\u091c\u093c"  # JA + NUKTA
    assert matches(f"{precomposed}मीन", f"{decomposed}मीन")
    assert matches(f"{decomposed}मीन", f"{precomposed}मीन")


def test_devanagari_short_reference_needs_a_word_boundary():
    assert not matches("आगरा", "आग")  # 3 code points: no substring
    assert matches("आग लगी", "आग")


# ---- CJK ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "candidate, reference, expected",
    [
        ("狗", "狗", True),
        ("小狗", "狗", True),          # no spaces in Chinese: any substring counts
        ("一只猫", "猫", True),
        ("猫", "狗", False),
        ("ｄｏｇ", "dog", True),         # NFKC folds full-width Latin
    ],
)
def test_cjk(candidate, reference, expected):
    assert matches(candidate, reference) is expected


def test_cjk_substring_rule_is_configurable():
    strict = MatchRules(unsegmented_substring=False)
    assert matches("狗", "狗", strict)
    assert not matches("小狗", "狗", strict)
    assert is_unsegmented("狗") and is_unsegmented("ひらがな") and not is_unsegmented("dog")


# ---- Arabic -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "candidate, reference, expected",
    [
        ("كلب", "كلب", True),
        ("الكتاب", "كتاب", True),       # 4 letters: the article-prefixed form matches
        ("الكلب", "كلب", False),        # 3 letters: substring refused (documented limitation)
        ("هذا كلب", "كلب", True),        # whole word
        ("قطة", "كلب", False),
    ],
)
def test_arabic(candidate, reference, expected):
    assert matches(candidate, reference) is expected


def test_telugu():
    assert matches(" కుక్క", "కుక్క")
    assert matches("కుక్కలు", "కుక్క")  # 5 code points: substring allowed
    assert not matches("పిల్లి", "కుక్క")


# ---- invariances ------------------------------------------------------------------------------
@pytest.mark.parametrize("word", ["perro", "Собака", "कुत्ता", "狗", "كلب", "köpek", "కుక్క"])
def test_normal_forms_and_case_do_not_matter(word):
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        assert matches(unicodedata.normalize(form, word), word)
        assert matches(word.upper(), unicodedata.normalize(form, word))


def test_rules_can_switch_matching_modes_off():
    assert not matches("perros", "perro", MatchRules(substring=False))
    assert not matches("el perro", "perro", MatchRules(whole_word=False, substring=False))
    assert matches("perro", "perro", MatchRules(whole_word=False, substring=False))
    assert not matches("Perro", "perro", MatchRules(case_insensitive=False))
    assert matches("perros", "perro", MatchRules(min_substring_chars=5))
    assert not matches("perros", "perro", MatchRules(min_substring_chars=6))
    with pytest.raises(ValueError, match="normalization"):
        MatchRules(normalization="lower")


# ---- language of a layer string --------------------------------------------------------------
REFS = {"en": ["dog"], "es": ["perro", "can"], "fr": ["chien"], "hi": ["कुत्ता"], "zh": ["狗"]}


def test_matching_languages_and_synonyms():
    assert matching_languages("perro", REFS) == ["es"]
    assert matching_languages("can", REFS) == ["es"]  # a synonym counts
    assert matching_languages(" doggy", REFS) == []   # 3-letter 'dog' is not a substring match
    assert matching_languages("", REFS) == []
    assert layer_language("狗", REFS, target="hi") == "zh"
    assert layer_language("xyz", REFS, target="hi") is None


def test_shared_word_counts_for_the_target():
    refs = {"es": ["miel"], "fr": ["miel"], "en": ["honey"]}
    assert layer_language("miel", refs, target="fr") == "fr"
    assert layer_language("miel", refs, target="en") == "es"


# ---- classify_outcome: every branch --------------------------------------------------------------
def test_correct_even_if_layers_show_other_languages():
    assert classify_outcome(" perro", ["dog", "chien"], REFS, target="es") is Outcome.CORRECT


def test_correct_through_a_synonym():
    assert classify_outcome("can", [], REFS, target="es") is Outcome.CORRECT


def test_translation_failure():
    assert classify_outcome("gato", ["", "dog", "gato"], REFS, target="es") is Outcome.TRANSLATION_FAILURE
    # a non-target language wins over an intermediate target match
    assert classify_outcome("gato", ["perro", "狗"], REFS, target="es") is Outcome.TRANSLATION_FAILURE


def test_target_lost():
    assert classify_outcome("gato", ["xx", "perro", "yy"], REFS, target="es") is Outcome.TARGET_LOST


def test_task_failure():
    assert classify_outcome("gato", ["gato", "mesa", ""], REFS, target="es") is Outcome.TASK_FAILURE
    assert classify_outcome("gato", [], REFS, target="es") is Outcome.TASK_FAILURE


def test_outcome_is_a_string_enum():
    assert Outcome.TRANSLATION_FAILURE == "translation_failure"
    assert {o.value for o in Outcome} == {"correct", "translation_failure", "target_lost", "task_failure"}


def test_classify_outcome_errors():
    with pytest.raises(KeyError, match="target 'de' has no references"):
        classify_outcome("Hund", [], REFS, target="de")
    with pytest.raises(TypeError, match="sequence of strings"):
        classify_outcome("x", "dog", REFS, target="es")
