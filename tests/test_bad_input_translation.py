"""Bad input to translation probing (ProbeConfig, PromptTemplate, MatchRules, TranslationProbe, generation-time
lens, saved reports, word lists) is a clear error; a run with no examples is an error, not an empty report."""

from __future__ import annotations

import functools
import json
import re

import pytest
import torch

from interp.core.tokens import ContextLengthError
from interp.translation import (FEW_SHOT, Lexicon, LexiconFormatError, MatchRules, ProbeConfig, ProbeReport,
                                PromptTemplate, TranslationProbe, generate_with_lens, load_csv, load_tsv_pairs)
from interp.lens.errors import LensConfigError
from interp.translation.errors import TranslationConfigError, TranslationLoadError
from test_steering_fixtures import tiny_llama_with_tokenizer


@functools.cache
def tiny():
    return tiny_llama_with_tokenizer()


@functools.cache
def lexicon() -> Lexicon:
    return Lexicon.bundled().subset(languages=["en", "es", "hi"])


def probe(**cfg) -> TranslationProbe:
    return TranslationProbe(tiny(), lexicon(), config=ProbeConfig(**cfg))


PROBE_CONFIG_CASES = [
    (dict(layers=["blocks.0.hook_resid_post"]), "ProbeConfig.layers=['blocks.0.hook_resid_post'] is invalid"),
    (dict(layers=2.5), "layers=2.5"),
    (dict(layers=5), "ProbeConfig.layers=5 is invalid: it must be None (every layer), a negative int (the last |n|)"),
    (dict(lens="magic"), "lens='magic'"),
    (dict(final_norm=None), "final_norm=None"),
    (dict(max_new_tokens=0), "max_new_tokens=0"),
    (dict(max_new_tokens=-3), "max_new_tokens=-3"),
    (dict(batch_size=0), "batch_size=0"),
    (dict(k=0), "k=0"),
    (dict(rules={"exact": True}), "a MatchRules"),
    (dict(stop="\n"), "stop='\\n'"),
    (dict(stop=("",)), "non-empty strings"),
    (dict(seed=-1), "seed=-1"),
    (dict(prepend_bos="yes"), "prepend_bos='yes'"),
    (dict(truncate="middle"), "truncate='middle'"),
]


@pytest.mark.parametrize("kwargs, fragment", PROBE_CONFIG_CASES)
def test_probe_config_fields(kwargs, fragment):
    with pytest.raises(TranslationConfigError, match=re.escape(fragment)):
        ProbeConfig(**kwargs)


TEMPLATE_CASES = [
    (dict(kind="two_shot"), "kind='two_shot'"),
    (dict(kind="few_shot", n_shots=0), "A few-shot template needs n_shots >= 1"),
    (dict(n_shots=2), "0 for a zero_shot template"),
    (dict(n_shots=-1), "n_shots=-1"),
    (dict(example="Word: {word}"), "'{word}' and '{answer}' placeholders"),
    (dict(instruction="Translate {word} from {src}"), "a format string using only {src} and {tgt}"),
    (dict(example="{word} {answer} {"), "a format string using only {word} and {answer}"),
    (dict(instruction=3), "instruction=3"),
    (dict(shot_separator=None), "shot_separator=None"),
    (dict(strip_trailing_space="no"), "strip_trailing_space='no'"),
]


@pytest.mark.parametrize("kwargs, fragment", TEMPLATE_CASES)
def test_prompt_template_fields(kwargs, fragment):
    with pytest.raises(TranslationConfigError, match=re.escape(fragment)):
        PromptTemplate(**kwargs)


RULES_CASES = [
    (dict(normalization="NFX"), "normalization='NFX'"),
    (dict(min_substring_chars=0), "min_substring_chars must be at least 1"),
    (dict(min_substring_chars=2.5), "min_substring_chars=2.5"),
    (dict(exact="yes"), "exact='yes'"),
    (dict(case_insensitive=None), "case_insensitive=None"),
]


@pytest.mark.parametrize("kwargs, fragment", RULES_CASES)
def test_match_rules_fields(kwargs, fragment):
    with pytest.raises(TranslationConfigError, match=re.escape(fragment)):
        MatchRules(**kwargs)


LONG_INSTRUCTION = PromptTemplate(instruction="Translate this word from {src} to {tgt}. " * 20)

CASES = [
    ("one pair not in a list", lambda: probe().run(("es", "hi"), progress=False), TranslationConfigError,
     "looks like one pair"),
    ("a pair of three", lambda: probe().run([("es", "hi", "en")], progress=False), TranslationConfigError,
     "Each pair must be (source, target)"),
    ("unknown language", lambda: probe().run([("es", "xx")], progress=False), TranslationConfigError,
     "Languages ['xx'] are not in the lexicon; it has ['en', 'es', 'hi']"),
    ("unknown language in a subset", lambda: lexicon().subset(languages=["xx"]), TranslationConfigError,
     "Languages ['xx'] are not in this lexicon"),
    ("unknown concept", lambda: lexicon().subset(concepts=["unicorn"]), TranslationConfigError,
     "Concepts ['unicorn'] are not in this lexicon"),
    ("no pairs", lambda: probe().run([], progress=False), TranslationConfigError, "No language pairs given"),
    ("n_concepts=0", lambda: probe().run([("es", "hi")], n_concepts=0, progress=False), TranslationConfigError,
     "n_concepts=0"),
    ("unknown concepts", lambda: probe().run([("es", "hi")], concepts=["unicorn"], progress=False),
     TranslationConfigError, "concepts=['unicorn']"),
    ("concepts as one string", lambda: probe().run([("es", "hi")], concepts="dog", progress=False),
     TranslationConfigError, "concepts='dog'"),
    ("layers beyond the model", lambda: probe(layers=[7]).run([("es", "hi")], progress=False), TranslationConfigError,
     "does not fit this model: Layer index 7 is outside 0..3"),
    ("only the output layer", lambda: probe(layers=[3]).run([("es", "hi")], progress=False), TranslationConfigError,
     "at least one intermediate layer"),
    ("tuned lens never attached", lambda: probe(lens="tuned").run([("es", "hi")], progress=False), LensConfigError,
     "no tuned lens is attached"),
    ("generation fills the context", lambda: probe(max_new_tokens=64).run([("es", "hi")], progress=False),
     TranslationConfigError, "less than the model's context of 64"),
    ("k above the vocabulary", lambda: probe(k=500).run([("es", "hi")], progress=False), TranslationConfigError,
     "at most the vocabulary size 38"),
    ("prompt longer than the context", lambda: TranslationProbe(tiny(), lexicon(), template=LONG_INSTRUCTION)
     .run([("es", "hi")], n_concepts=2, progress=False), ContextLengthError, "more than the model's context of 64"),
    ("too few concepts for the shots", lambda: TranslationProbe(
        tiny(), lexicon().subset(concepts=list(lexicon().entries)[:3]), template=FEW_SHOT).examples([("es", "hi")]),
     TranslationConfigError, "needs 3 other concepts"),
    ("progress not a bool", lambda: probe().run([("es", "hi")], progress="yes"), TranslationConfigError,
     "progress='yes'"),
    ("a config that is not a ProbeConfig", lambda: TranslationProbe(tiny(), lexicon(), config={"k": 3}),
     TranslationConfigError, "a ProbeConfig"),
    ("a template that is not one", lambda: TranslationProbe(tiny(), lexicon(), template="zero_shot"),
     TranslationConfigError, "a PromptTemplate"),
    # generation-time lens
    ("lens k=0", lambda: generate_with_lens(tiny(), ["the cat"], k=0), TranslationConfigError, "k=0"),
    ("lens stop as a string", lambda: generate_with_lens(tiny(), ["the cat"], stop="\n"), TranslationConfigError,
     "stop='\\n'"),
    ("lens targets of the wrong batch", lambda: generate_with_lens(tiny(), ["the cat", "a dog"],
                                                                   step0_target_ids=torch.ones(1, 2, dtype=torch.long)),
     TranslationConfigError, "[2 prompts, n_targets]"),
    ("lens long prompt", lambda: generate_with_lens(tiny(), [" ".join(["the"] * 70)], max_new_tokens=2),
     ContextLengthError, "plus 2 tokens to generate"),
]


@pytest.mark.parametrize("case, call, error, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(case, call, error, fragment):
    with pytest.raises(error, match=re.escape(fragment)):
        call()


def test_unknown_names_are_also_key_errors():
    """An unknown language is the package's error and still a KeyError (code that caught KeyError keeps working),
    and its message is a sentence, not KeyError's quoted repr."""
    with pytest.raises(KeyError) as info:
        probe().run([("es", "xx")], progress=False)
    assert isinstance(info.value, TranslationConfigError) and str(info.value).startswith("Languages")


def test_an_edited_config_is_checked_again_before_a_run():
    p = probe()
    p.config.max_new_tokens = -1  # edited after construction, as a notebook does with lens=
    with pytest.raises(TranslationConfigError, match="max_new_tokens=-1"):
        p.run([("es", "hi")], progress=False)


# ---------------------------------------------------------------------------------------- saved reports
ROW = dict(pair="es-hi", src="es", tgt="hi", outcome="correct", layer_languages=["hi", "hi"], target_resource="mid")


def _write(path, data):
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize("content, error, fragment", [
    ("{not json", TranslationLoadError, "is not valid JSON"),
    ({"format": "other"}, TranslationLoadError, "is not a ProbeReport file (format 'other'"),
    ([1, 2], TranslationLoadError, "is not a ProbeReport file (format 'list'"),
    ({"format": "interp.translation.probe_report/1", "meta": {"layers": [1, 2]}}, TranslationLoadError,
     "rows must be a list of dicts"),
    ({"format": "interp.translation.probe_report/1", "rows": [ROW], "meta": {}}, TranslationLoadError,
     "meta must be a dict with the inspected 'layers'"),
    ({"format": "interp.translation.probe_report/1", "rows": [{"pair": "es-hi"}], "meta": {"layers": [1, 2]}},
     TranslationLoadError, "rows lack"),
    ({"format": "interp.translation.probe_report/1", "rows": [ROW], "meta": {"layers": [1, 2, 3]}},
     TranslationLoadError, "from different runs"),
])
def test_damaged_reports_name_the_file(tmp_path, content, error, fragment):
    path = _write(tmp_path / "report.json", content)
    with pytest.raises(error, match=re.escape(fragment)) as info:
        ProbeReport.load(path)
    assert str(path) in str(info.value) and isinstance(info.value, ValueError)


def test_report_files_missing_or_of_another_kind(tmp_path):
    with pytest.raises(FileNotFoundError, match="No report at"):
        ProbeReport.load(tmp_path / "none.json")
    _write(tmp_path / "bad.parquet", "PAR1 nonsense")
    with pytest.raises(TranslationLoadError, match="bad.parquet is not a readable parquet file"):
        ProbeReport.load(tmp_path / "bad.parquet")
    _write(tmp_path / "r.csv", "a,b")
    with pytest.raises(TranslationLoadError, match="from .json or .parquet"):
        ProbeReport.load(tmp_path / "r.csv")


@pytest.mark.parametrize("loader, content, fragment", [
    (lambda p: load_tsv_pairs(p, "es"), "dog\tperro\ncat\n", "line 2: expected two non-empty tab-separated columns"),
    (lambda p: load_tsv_pairs(p, "es"), "", "an empty file"),
    (lambda p: load_csv(p), "en,es\ndog,perro,extra\n", "line 2: expected 2 comma-separated fields"),
    (lambda p: load_csv(p), "en,en\ndog,perro\n", "line 1: expected a header of distinct"),
])
def test_word_lists_name_file_and_line(tmp_path, loader, content, fragment):
    path = _write(tmp_path / "words.txt", content)
    with pytest.raises(LexiconFormatError, match=re.escape(fragment)):
        loader(path)
    assert issubclass(LexiconFormatError, TranslationConfigError)
