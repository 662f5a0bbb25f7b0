"""Prompt templates for word translation: the paper's zero-shot template (default), few-shot
templates, and the tokenizer's chat template for instruction-tuned models (Aya, Llama-Instruct).

The paper (Bafna et al. 2025) ends its prompt with ``"Translation: "``; byte-level BPE tokenizers
attach a space to the following word, so a trailing space would force an unnatural token split.
The default strips it (``strip_trailing_space``) and the model generates ``" word"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from interp.core.validate import Check
from interp.translation.errors import TranslationConfigError

__all__ = ["PromptTemplate", "ZERO_SHOT", "FEW_SHOT", "CHAT", "build_prompt", "TemplateKind"]

TemplateKind = Literal["zero_shot", "few_shot", "chat"]

PAPER_INSTRUCTION = "Translate the following word from {src} to {tgt}. Respond with a single word."


@dataclass(frozen=True)
class PromptTemplate:
    """A word-translation prompt.

    ``instruction`` is formatted with ``src``/``tgt`` language names; each example (shots, then
    the query) is ``example`` formatted with ``word`` (and ``answer`` for shots).
    """

    kind: TemplateKind = "zero_shot"
    instruction: str = PAPER_INSTRUCTION
    example: str = "Word: {word}\nTranslation: {answer}"
    n_shots: int = 0
    shot_separator: str = "\n"
    strip_trailing_space: bool = True

    def __post_init__(self) -> None:
        c = Check(self, TranslationConfigError)
        if not (isinstance(self.kind, str) and self.kind in ("zero_shot", "few_shot", "chat")):
            raise TranslationConfigError(f"kind={self.kind!r}: use 'zero_shot', 'few_shot' or 'chat'.")
        c.integer("n_shots", min=0)
        if self.kind == "few_shot" and self.n_shots < 1:
            raise TranslationConfigError("A few-shot template needs n_shots >= 1.")
        if self.kind != "few_shot" and self.n_shots:
            c.fail("n_shots", self.n_shots, f"0 for a {self.kind} template (only few_shot templates use shots)",
                   "Use kind='few_shot' to add demonstrations.")
        c.text("instruction", nonempty=False)
        c.text("example")
        c.text("shot_separator", nonempty=False)
        c.boolean("strip_trailing_space")
        if "{word}" not in self.example or "{answer}" not in self.example:
            raise TranslationConfigError("example must contain '{word}' and '{answer}' placeholders.")
        for name, fields in (("instruction", dict(src="x", tgt="y")), ("example", dict(word="w", answer="a"))):
            try:
                getattr(self, name).format(**fields)
            except (KeyError, IndexError, ValueError) as err:
                allowed = "{src} and {tgt}" if name == "instruction" else "{word} and {answer}"
                c.fail(name, getattr(self, name), f"a format string using only {allowed} (got {type(err).__name__}: "
                       f"{err})", "Write a literal brace as {{ or }}.")


ZERO_SHOT = PromptTemplate()
FEW_SHOT = PromptTemplate(kind="few_shot", n_shots=3)
CHAT = PromptTemplate(kind="chat")


def _query(template: PromptTemplate, word: str) -> str:
    text = template.example.format(word=word, answer="")
    return text.rstrip(" ") if template.strip_trailing_space else text


def build_prompt(
    template: PromptTemplate,
    *,
    src: str,
    tgt: str,
    word: str,
    shots: Sequence[tuple[str, str]] = (),
    tokenizer: Any = None,
) -> str:
    """The prompt text for translating ``word`` from language name ``src`` to ``tgt``.

    ``shots`` are ``(source word, target word)`` demonstrations (few-shot templates use the first
    ``n_shots``). ``chat`` wraps the zero-shot text in the tokenizer's chat template.

    >>> build_prompt(ZERO_SHOT, src="Spanish", tgt="Hindi", word="perro")
    'Translate the following word from Spanish to Hindi. Respond with a single word.\\nWord: perro\\nTranslation:'
    """
    head = template.instruction.format(src=src, tgt=tgt)
    parts = [head]
    if template.kind == "few_shot":
        if len(shots) < template.n_shots:
            raise TranslationConfigError(f"The few-shot template needs {template.n_shots} shots; got {len(shots)}.")
        parts += [template.example.format(word=w, answer=a) for w, a in shots[: template.n_shots]]
    parts.append(_query(template, word))
    text = "\n".join([parts[0], template.shot_separator.join(parts[1:])])
    if template.kind != "chat":
        return text
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise TranslationConfigError(
            "The chat template was asked for but this tokenizer has none (tokenizer.chat_template is empty). "
            "Use the zero-shot or few-shot template for base models."
        )
    user = "\n".join([head, template.example.format(word=word, answer="").rstrip()])
    return tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                         add_generation_prompt=True)
