"""The BPE tokenizer: exact round trip, BOS prepended, digits split, words span several tokens."""

import pytest

from interp.zoo.bpe import BOS, EOS, PAD, train_bpe
from interp.zoo.corpus import NAMES, CorpusConfig, generate_corpus


@pytest.fixture(scope="module")
def docs():
    return generate_corpus(CorpusConfig(n_docs=300, seed=2))


@pytest.fixture(scope="module")
def tok(docs, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    train_bpe(docs, vocab_size=600, out_dir=out)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(out)  # what load_model reads: the saved folder


@pytest.mark.parametrize("text", ["Kelmira lives in Dovaren.\nAdd: 12 + 79 = 91.", "  two  spaces\n\n, é ü 😀 ",
                                  "Question: What color? A) red B) blue Answer: B"])
def test_round_trip_exact(tok, text):
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert tok.decode(ids, skip_special_tokens=True) == text
    # token by token too (what streaming generation does); multi-byte characters may straddle tokens
    if text.isascii():
        assert "".join(tok.decode([i]) for i in ids[1:]) == text


def test_round_trip_on_corpus(tok, docs):
    for doc in docs[:50]:
        assert tok.decode(tok(doc)["input_ids"], skip_special_tokens=True) == doc


def test_special_tokens(tok):
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == (PAD, BOS, EOS)
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert len(tok) == 600


def test_digits_are_one_token_each(tok):
    pieces = tok.tokenize("Add: 123 + 45 = 168")
    digits = [p for p in pieces if any(c.isdigit() for c in p)]
    assert digits == list("12345168")


def test_made_up_names_span_several_tokens(tok):
    lengths = [len(tok.tokenize(" " + n)) for n in NAMES]
    assert sum(lengths) / len(lengths) > 1.5
    assert max(lengths) >= 3


def test_tiny_vocab_is_a_clear_error(docs):
    with pytest.raises(ValueError, match="too small for a byte-level BPE"):
        train_bpe(docs[:5], vocab_size=100)
