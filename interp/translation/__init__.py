"""Translation-barrier probing (Bafna et al. 2025, arXiv 2506.22724): generate answers greedily,
decode every layer at every generated step with the logit (or tuned) lens, match each layer's
string against a multilingual lexicon, and classify failures.

>>> from interp.translation import TranslationProbe, Lexicon
>>> report = TranslationProbe(model, Lexicon.bundled()).run([("es", "hi")])   # doctest: +SKIP
"""

from interp.translation.lexicon import (
    Language,
    Lexicon,
    LexiconFormatError,
    ResourceLevel,
    language_info,
    load_csv,
    load_muse,
    load_tsv_pairs,
)
from interp.translation.matching import (
    MatchRules,
    Outcome,
    classify_outcome,
    layer_language,
    matches,
    matching_languages,
    normalize,
)
from interp.translation.prompts import CHAT, FEW_SHOT, ZERO_SHOT, PromptTemplate, build_prompt

__all__ = [
    "Language",
    "Lexicon",
    "LexiconFormatError",
    "ResourceLevel",
    "language_info",
    "load_csv",
    "load_muse",
    "load_tsv_pairs",
    "MatchRules",
    "Outcome",
    "classify_outcome",
    "layer_language",
    "matches",
    "matching_languages",
    "normalize",
    "PromptTemplate",
    "ZERO_SHOT",
    "FEW_SHOT",
    "CHAT",
    "build_prompt",
]

from interp.translation.generate import GenerationTrace, first_answer_token, generate_with_lens  # noqa: E402
from interp.translation.probe import ProbeConfig, TranslationProbe  # noqa: E402
from interp.translation.report import ProbeReport  # noqa: E402

__all__ += ["GenerationTrace", "first_answer_token", "generate_with_lens", "ProbeConfig", "TranslationProbe",
            "ProbeReport"]
