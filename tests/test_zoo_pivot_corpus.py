"""The planted-pivot corpus has the structure toy-pivot's card claims: English is the hub, the
held-out (pair, concept) combinations and the bridge concepts are never translated directly, the
knowledge text is English-only, and every planted word is one token."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from interp.translation import Lexicon
from interp.zoo.pivot_corpus import PivotSpec, build_corpus, plant_concepts, single_token_concepts, tokenizer_texts

SPEC = PivotSpec(n_docs=6000, seed=3, n_bridge=8, p_holdout=0.5, p_pivot_pair=0.6, p_direct_pair=0.25,
                 p_english=0.10)
_TRANSLATION = re.compile(r"^Translate from (\w+) to (\w+)\.\nWord: (\S+)\nTranslation: (\S+)$")


@pytest.fixture(scope="module")
def lex():
    return Lexicon.bundled()


@pytest.fixture(scope="module")
def docs(lex):
    return build_corpus(SPEC, lex)


@pytest.fixture(scope="module")
def word_index(lex):
    """word -> set of (concept, language) it can stand for."""
    plant = plant_concepts(SPEC, lex)
    index: dict[str, set] = {}
    for c in plant.concepts:
        for lang, words in lex.entries[c].items():
            for w in words:
                index.setdefault(w, set()).add((c, lang))
    return index


def _translations(docs, lex):
    code = {lang.name: c for c, lang in lex.languages.items()}
    for d in docs:
        m = _TRANSLATION.match(d)
        if m:
            yield code[m[1]], code[m[2]], m[3], m[4]


def test_seeded_and_sample_seed_changes_documents_not_the_plant(lex, docs):
    assert build_corpus(SPEC, lex) == docs
    other = build_corpus(SPEC, lex, sample_seed=SPEC.seed + 1)
    assert other != docs
    assert plant_concepts(SPEC, lex) == plant_concepts(SPEC, lex)


def test_english_is_the_hub(lex, docs):
    pairs = Counter((s, t) for s, t, _, _ in _translations(docs, lex))
    total = sum(pairs.values())
    with_en = sum(v for (s, t), v in pairs.items() if "en" in (s, t))
    share = SPEC.p_pivot_pair / (SPEC.p_pivot_pair + SPEC.p_direct_pair)
    sd = (share * (1 - share) / total) ** 0.5
    assert abs(with_en / total - share) < 4 * sd
    # resource weights: a high-resource language is paired with English far more often than a low one
    en_pairs = Counter(x for (s, t), v in pairs.items() if "en" in (s, t) for x in [s if t == "en" else t]
                       for _ in range(v))
    assert en_pairs["es"] > 5 * en_pairs["sw"] and en_pairs["hi"] > 2 * en_pairs["te"]


def test_held_out_combinations_and_bridge_concepts_are_never_translated_directly(lex, docs, word_index):
    plant = plant_concepts(SPEC, lex)
    assert plant.held_out and set(plant.direct).isdisjoint(plant.bridge)
    direct_seen = Counter()
    for s, t, w, a in _translations(docs, lex):
        if "en" in (s, t):
            continue
        concepts = {c for c, lang in word_index[w] if lang == s} & {c for c, lang in word_index[a] if lang == t}
        assert concepts, (s, t, w, a)
        for c in concepts:
            assert c not in plant.bridge, f"bridge concept {c} translated {s}->{t}"
            assert not plant.is_held_out(s, t, c), f"held-out {s}-{t} {c} translated directly"
            direct_seen[c] += 1
    # every direct concept is translated directly somewhere (its legs are used inside compositions)
    assert set(direct_seen) == set(plant.direct)
    # the held-out set is half of each pair's direct concepts, in both directions
    triples = plant.held_out_triples()
    n_pairs = len(plant.eval_pairs())
    assert len(triples) == n_pairs * round(SPEC.p_holdout * len(plant.direct))


def test_knowledge_text_and_glosses_are_english_led(lex, docs, word_index):
    english = [d for d in docs if not d.startswith("Translate") and " = " not in d]
    assert english
    for d in english:
        for w in re.findall(r"[^\s,.]+", d):
            langs = {lang for _, lang in word_index.get(w, set())}
            assert not langs or "en" in langs, (d, w)
    glosses = [d for d in docs if " = " in d]
    assert glosses and all(d.split(" (", 1)[1].startswith("English)") for d in glosses)


def test_every_planted_word_is_one_token(lex, docs):
    from interp.zoo.bpe import train_bpe

    plant = plant_concepts(SPEC, lex)
    tok = train_bpe(tokenizer_texts(SPEC, docs, lex), vocab_size=4096, marks_in_words=True)
    words = [w for c in plant.concepts for ws in lex.entries[c].values() for w in ws]
    assert all(len(tok(" " + w, add_special_tokens=False)["input_ids"]) == 1 for w in words)
    assert set(plant.concepts) <= set(single_token_concepts(lex))


def test_bad_specs_are_clear_errors():
    with pytest.raises(ValueError, match="n_bridge"):
        PivotSpec(n_concepts=8, n_bridge=8)
    with pytest.raises(ValueError, match="p_holdout"):
        PivotSpec(p_holdout=1.0)
    with pytest.raises(ValueError, match="single-word concepts"):
        plant_concepts(PivotSpec(n_concepts=500, n_bridge=4))
