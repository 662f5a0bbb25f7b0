"""The committed toy-translate checkpoint: the card's probe numbers are reproduced, and the corpus
recipe has the structure the card claims."""

from __future__ import annotations

from collections import Counter

import pytest

from interp import zoo


@pytest.fixture(scope="module")
def card():
    try:
        return zoo.card("toy-translate")
    except FileNotFoundError:
        pytest.skip("toy-translate checkpoint not trained")


def test_card_probe_numbers_are_reproduced(card, one_thread):
    from interp.translation import Lexicon, TranslationProbe
    from interp.zoo.toy_translate import probe_pairs, toy_template

    model = zoo.load("toy-translate")
    lex = Lexicon.bundled().subset(concepts=card["corpus"]["concepts"])
    n = card["probe"]["n_concepts_per_pair"]
    # concepts are sampled pair by pair from one seeded stream, so the first pairs of the card's
    # run are reproduced exactly by a run over just those pairs
    pairs = probe_pairs(lex)[:2]
    report = TranslationProbe(model, lex, template=toy_template()).run(pairs, n_concepts=n, progress=False)
    got = report.by_pair().to_dict("records")
    want = card["probe"]["logit_lens"]["by_pair"][:2]
    for g, w in zip(got, want):
        assert g["pair"] == w["pair"]
        for key in ("accuracy", "translation_failure_rate", "task_failure_rate"):
            assert g[key] == pytest.approx(w[key], abs=1e-3), (g["pair"], key)


def test_corpus_has_the_claimed_structure(card):
    from interp.zoo.toy_translate import CorpusSpec, build_corpus

    spec = CorpusSpec(n_docs=3000, seed=5, n_concepts=card["corpus"]["n_concepts"])
    docs = build_corpus(spec)
    assert docs == build_corpus(spec)  # seeded
    translations = [d for d in docs if d.startswith("Translate from ")]
    pairs = Counter(tuple(d.split("\n")[0][len("Translate from "):-1].split(" to ")) for d in translations)
    with_pivot = sum(v for (a, b), v in pairs.items() if "English" in (a, b))
    assert with_pivot > 0.8 * sum(pairs.values())  # the pivot dominates translation documents
    mentions = Counter()
    for (a, b), v in pairs.items():
        mentions[a] += v
        mentions[b] += v
    assert mentions["Spanish"] > 3 * mentions["Telugu"] and mentions["Hindi"] > mentions["Swahili"]
    glosses = [d for d in docs if " = " in d and not d.startswith("Translate")]
    assert glosses and all(d.split(" (")[1].startswith("English") for d in glosses)
