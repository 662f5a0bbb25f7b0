"""Moved to :mod:`tiny_models` (the one module of tiny test models); kept so older imports still work."""

from tiny_models import D_MODEL, WORDS, make_sae, random_prompts, tiny_llama, tiny_llama_with_tokenizer, word_tokenizer

__all__ = ["D_MODEL", "WORDS", "make_sae", "random_prompts", "tiny_llama", "tiny_llama_with_tokenizer", "word_tokenizer"]
