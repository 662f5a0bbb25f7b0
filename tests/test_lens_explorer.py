"""LensExplorer: headless instantiation, selectors change the figures, static fallback, export."""

from __future__ import annotations

import pytest

from interp.translation import Lexicon, ProbeConfig, TranslationProbe



@pytest.fixture(scope="module")
def report(stories_model):
    lex = Lexicon.bundled().subset(languages=["en", "es", "fr"])
    probe = TranslationProbe(stories_model, lex, config=ProbeConfig(max_new_tokens=3))
    rep = probe.run([("es", "en"), ("es", "fr")], n_concepts=4, progress=False)
    # make sure two outcomes exist so the outcome filter has something to do
    rep.rows[0]["outcome"] = "correct" if rep.rows[0]["outcome"] != "correct" else "task_failure"
    return rep


def test_selectors_change_the_figures(report):
    from interp.viz.display import visible_token
    from widgets.lens_explorer import ALL, NO_EXAMPLE, LensExplorer

    ex = LensExplorer(report)
    # the filters open on a real option (a None value renders as a blank box in JupyterLab)
    assert ex.pair.value == ex.outcome.value == ALL and ex.pair.index == ex.outcome.index == 0
    first_title = ex.grid.layout.title.text
    first_probs = ex.probs.data[0].y
    assert len(ex.example.options) == len(report)
    ex.pair.value = "es-fr"
    assert all(report.rows[i]["pair"] == "es-fr" for _, i in ex.example.options)
    assert ex.grid.layout.title.text != first_title
    ex.example.value = ex.example.options[-1][1]
    row = report.rows[ex.example.value]
    assert row["source_word"] in ex.grid.layout.title.text
    assert list(ex.probs.data[0].y) == row["first_token_prob"]["fr"]
    assert list(ex.probs.data[0].y) != list(first_probs) or row is not report.rows[0]
    # the grid has one row per inspected layer and shows the top-1 tokens
    assert len(ex.grid.data[0].z) == len(report.layers)
    assert ex.grid.data[0].text[-1][0] == visible_token(row["grid"][-1][0][0][0])
    # outcome filter
    ex.pair.value = ALL
    ex.outcome.value = report.rows[0]["outcome"]
    assert all(report.rows[i]["outcome"] == report.rows[0]["outcome"] for _, i in ex.example.options)
    assert report.rows[0]["outcome"].replace("_", " ") in ex.badge.value
    # filters that match nothing leave a visible "(no example matches)" choice, not a blank box
    pairs = {r["pair"] for r in report.rows}
    empty = next(((p, o) for p in pairs for o in ex.outcome.options[1:]
                  if not report.select(pair=p, outcome=o[1])), None)
    assert empty is not None, "the fixture should leave some pair x outcome without examples"
    ex.pair.value, ex.outcome.value = empty[0], empty[1][1]
    assert ex.example.index == 0 and ex.example.value == NO_EXAMPLE
    assert "No example matches" in ex.badge.value and len(ex.grid.data) == 0


def test_static_fallback_and_lens_result(stories_model, report):
    from interp.lens import decode_layers
    from widgets.lens_explorer import LensExplorer

    bundle = LensExplorer(report)._repr_mimebundle_()
    assert "plotly" in bundle["text/html"] and "application/vnd.jupyter.widget-view+json" in bundle
    res = decode_layers(stories_model, ["Once upon a time", "The cat sat"], positions="all", k=3)
    ex = LensExplorer(res)
    z0 = [list(r) for r in ex.grid.data[0].z]
    ex.example.value = 1
    assert [list(r) for r in ex.grid.data[0].z] != z0
    assert len(ex.figures()) == 1


def test_export_writes_paper_figures(report, tmp_path, monkeypatch):
    import interp.viz.figures as figures
    from widgets.lens_explorer import LensExplorer

    written = []

    def fake_export_many(items, formats=("png", "pdf", "svg")):  # no browser needed in the test
        for fig, path in items:
            written.append((fig.layout.width, str(path)))
        return [p for _, p in items]

    monkeypatch.setattr(figures, "export_many", fake_export_many)
    LensExplorer(report).export(tmp_path / "ex")
    assert [p for _, p in written] == [str(tmp_path / "ex"), str(tmp_path / "ex_probs")]
    assert all(w == figures.paper_layout(__import__("plotly").graph_objects.Figure(), "double").layout.width
               for w, _ in written)


def test_bad_input():
    from widgets.lens_explorer import LensExplorer

    with pytest.raises(TypeError, match="ProbeReport"):
        LensExplorer([1, 2])
