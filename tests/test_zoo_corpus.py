"""The synthetic corpus: deterministic, planted segments present, held-out sums never stated."""

import re

import pytest

from interp.zoo.corpus import NAMES, PLACES, CorpusConfig, generate_corpus, is_heldout_sum


def test_same_seed_same_text_and_other_seed_differs():
    a = generate_corpus(CorpusConfig(n_docs=50, seed=3))
    b = generate_corpus(CorpusConfig(n_docs=50, seed=3))
    c = generate_corpus(CorpusConfig(n_docs=50, seed=4))
    assert a == b
    assert a != c
    assert all(doc.strip() for doc in a)


def test_planted_segments_are_all_present():
    text = "\n".join(generate_corpus(CorpusConfig(n_docs=200, seed=0)))
    for marker in ["Question: Where does", "Answer:", "A) ", "D) ", "Add: ", "Copy: ", "Reverse: ",
                   "Monday, Tuesday", " lives in "]:
        assert marker in text, marker
    # names recur inside documents (induction has something to copy)
    doc = generate_corpus(CorpusConfig(n_docs=1, seed=0, mix={"story": 1.0}))[0]
    counts = [doc.count(n) for n in NAMES if n in doc]
    assert max(counts) >= 2


def test_heldout_sums_never_in_corpus_and_stated_sums_are_right():
    text = "\n".join(generate_corpus(CorpusConfig(n_docs=400, seed=0)))
    sums = re.findall(r"Add: (\d+) \+ (\d+) = (\d+)\.", text)
    assert len(sums) > 100
    for a, b, c in sums:
        assert int(a) + int(b) == int(c)
        assert not is_heldout_sum(int(a), int(b))
    share = sum(is_heldout_sum(a, b) for a in range(100) for b in range(100)) / 10_000
    assert 0.1 < share < 0.2


def test_copy_and_reverse_segments_are_consistent():
    text = "\n".join(generate_corpus(CorpusConfig(n_docs=300, seed=1)))
    for src, dst in re.findall(r"Copy: ([^\n]+?) -> ([^\n]+?)\.", text):
        assert src == dst
    for src, dst in re.findall(r"Reverse: ([^\n]+?) -> ([^\n]+?)\.", text):
        assert src.split()[::-1] == dst.split()


def test_vocabulary_has_no_duplicates():
    assert len(set(NAMES)) == len(NAMES) and len(set(PLACES)) == len(PLACES)
    assert not set(NAMES) & set(PLACES)


def test_unknown_segment_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown segment kinds"):
        generate_corpus(CorpusConfig(n_docs=1, mix={"poetry": 1.0}))
