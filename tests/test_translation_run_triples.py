"""TranslationProbe.run_triples: each (source, target, concept) example gives exactly one row, the same
row ``run`` gives for that pair and concept."""

from __future__ import annotations

import pytest

from interp.translation import Lexicon, ProbeConfig, TranslationProbe


@pytest.fixture(scope="module")
def probe(stories_model):
    lex = Lexicon.bundled().subset(languages=["en", "es", "sw"])
    return TranslationProbe(stories_model, lex, config=ProbeConfig(max_new_tokens=3, batch_size=4))


def test_rows_are_the_examples_asked_for(probe):
    triples = [("es", "sw", "dog"), ("es", "sw", "water"), ("sw", "es", "fire"), ("es", "en", "dog")]
    report = probe.run_triples(triples, progress=False)
    assert sorted((r["src"], r["tgt"], r["concept"]) for r in report.rows) == sorted(triples)
    assert [r["pair"] for r in report.rows] == ["es-sw", "es-sw", "sw-es", "es-en"]
    # the same as running each pair on its own concepts
    alone = probe.run([("es", "sw")], concepts=["dog", "water"], progress=False)
    got = [r for r in report.rows if r["pair"] == "es-sw"]
    assert [r["layer_strings"] for r in got] == [r["layer_strings"] for r in alone.rows]
    assert report.meta["n_layers"] == probe.model.cfg.n_layers


def test_bad_examples_are_clear_errors(probe):
    with pytest.raises(ValueError, match="source, target, concept"):
        probe.run_triples([("es", "sw")], progress=False)
    with pytest.raises(ValueError, match="No examples"):
        probe.run_triples([], progress=False)
