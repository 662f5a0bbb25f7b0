"""Byte-level BPE tokenizer trained on a corpus with the ``tokenizers`` library, saved as a Hugging
Face tokenizer folder (``PreTrainedTokenizerFast``) that prepends ``<s>`` to every text.

Digits are split one per token (arithmetic stays learnable); everything else is byte-level BPE, so
any text round-trips exactly through ``decode(encode(text))``.

>>> from interp.zoo.bpe import train_bpe
>>> tok = train_bpe(["Kelmira lives in Dovaren."] * 50, vocab_size=300)
>>> tok.decode(tok("Kelmira lives in Dovaren.")["input_ids"], skip_special_tokens=True)
'Kelmira lives in Dovaren.'
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from interp.zoo.errors import ZooConfigError

__all__ = ["train_bpe", "train_chars", "SPECIAL_TOKENS", "BOS", "EOS", "PAD"]

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
SPECIAL_TOKENS = [PAD, BOS, EOS]  # ids 0, 1, 2
# GPT-2's split with combining marks kept inside words: its ``\p{L}+`` cuts Devanagari and Telugu words at
# every vowel sign, so no merge could ever make such a word one token.
_WORDS_WITH_MARKS = Regex(r" ?[\p{L}\p{M}]+| ?[^\s\p{L}\p{M}\p{N}]+|\s+(?!\S)|\s+")


def train_bpe(texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 2,
              out_dir: str | Path | None = None, *, marks_in_words: bool = False):
    """Train a byte-level BPE on ``texts``; return a ``PreTrainedTokenizerFast`` (saved to ``out_dir``).

    The tokenizer prepends ``<s>`` (ids: ``<pad>``=0, ``<s>``=1, ``</s>``=2) and decodes without
    touching spaces (``clean_up_tokenization_spaces=False``), so generations detokenise exactly.
    ``marks_in_words`` keeps combining marks (Indic vowel signs) inside the word they belong to,
    so that a large enough vocabulary can hold every word of any script as one token.
    """
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ZooConfigError(f"vocab_size={vocab_size} is too small for a byte-level BPE: use at least "
                         f"{256 + len(SPECIAL_TOKENS)} (256 bytes + special tokens).")
    tok = Tokenizer(models.BPE())
    words = [pre_tokenizers.Split(_WORDS_WITH_MARKS, behavior="isolated")] if marks_in_words else []
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        *words,
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=not marks_in_words),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return _bos_first_fast_tokenizer(tok, out_dir)


def _bos_first_fast_tokenizer(tok: "Tokenizer", out_dir: str | Path | None):
    """``tok`` with ``<s>`` prepended to every text, as a transformers fast tokenizer (saved to ``out_dir``)."""
    from transformers import PreTrainedTokenizerFast

    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=None,
        clean_up_tokenization_spaces=False, padding_side="right", model_max_length=1_000_000,
    )
    if out_dir is not None:
        fast.save_pretrained(str(out_dir))
    return fast


def train_chars(texts: Iterable[str], out_dir: str | Path | None = None):
    """A character-level tokenizer: one token per character of ``texts`` (ids after ``<pad>``, ``<s>``, ``</s>``,
    in code-point order), ``<s>`` prepended, exact round trip on those characters. A small vocabulary makes
    every id frequent (toy-induction: the induction probe draws uniform random ids over the whole vocabulary).

    >>> tok = train_chars(["ab ba"])
    >>> len(tok), tok("ab")["input_ids"], tok.decode(tok("ab ba")["input_ids"], skip_special_tokens=True)
    (6, [1, 4, 5], 'ab ba')
    """
    chars = sorted(set("".join(texts)))
    if not chars:
        raise ZooConfigError("train_chars needs at least one character of text.")
    vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return _bos_first_fast_tokenizer(tok, out_dir)
