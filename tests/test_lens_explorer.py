"""LensExplorer: what it draws is the report's (or the lens's) own numbers, its filters keep exactly
the matching examples, the static fallback carries the figures on screen, export writes paper figures.

Expected values are read straight from the report rows or recomputed from the model here, never
through the figure builders the widget calls.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from interp.translation import Lexicon, ProbeConfig, TranslationProbe


@pytest.fixture(scope="module")
def report(stories_model):
    lex = Lexicon.bundled().subset(languages=["en", "es", "fr"])
    probe = TranslationProbe(stories_model, lex, config=ProbeConfig(max_new_tokens=3))
    rep = probe.run([("es", "en"), ("es", "fr")], n_concepts=4, progress=False)
    # make sure two outcomes exist so the outcome filter has something to do
    rep.rows[0]["outcome"] = "correct" if rep.rows[0]["outcome"] != "correct" else "task_failure"
    return rep


def _hover_probs(cell: str) -> list[float]:
    return [float(x) for x in re.findall(r": ([0-9.]+)(?:<br>|$)", cell)]


def _assert_shows_row(ex, report, i: int) -> None:
    """The explorer's two panes and badge show report row ``i``, checked number by number."""
    from interp.viz.display import visible_token
    from interp.viz.palettes import OUTCOME_COLOURS

    row = report.rows[i]
    # probability panel: the target's curve is the row's first-token probabilities, the rival curve
    # is the best other language at each layer, English dotted
    probs, tgt = row["first_token_prob"], row["tgt"]
    traces = {t.name: t for t in ex.probs.data}
    assert list(traces[f"target ({tgt})"].x) == report.layers
    np.testing.assert_allclose(traces[f"target ({tgt})"].y, probs[tgt])
    others = {lang: v for lang, v in probs.items() if lang != tgt}
    best = [max(v[li] for v in others.values()) for li in range(len(report.layers))]
    np.testing.assert_allclose(traces["best other language"].y, best)
    if tgt != "en":
        np.testing.assert_allclose(traces["English"].y, probs["en"])
    # grid: one row per inspected layer, each coloured by that layer's language (read back through the
    # colour bar's labels), cells showing the top-1 token and the top-k probabilities on hover
    grid = ex.grid.data[0]
    assert len(grid.z) == len(report.layers) == len(row["layer_languages"])
    labels = list(grid.colorbar.ticktext)
    for li, lang in enumerate(row["layer_languages"]):
        assert {labels[int(v)] for v in grid.z[li]} == {lang or "none"}
        for t, cell in enumerate(row["grid"][li]):
            assert grid.text[li][t] == visible_token(cell[0][0])
            assert _hover_probs(grid.customdata[li][t]) == pytest.approx([p for _, p in cell], abs=5e-4 + 1e-9)  # shown to 3 decimals
    assert row["source_word"] in ex.grid.layout.title.text
    assert OUTCOME_COLOURS[row["outcome"]] in ex.badge.value and row["outcome"].replace("_", " ") in ex.badge.value


def test_selectors_show_the_chosen_example(report):
    from widgets.lens_explorer import ALL, NO_EXAMPLE, LensExplorer

    ex = LensExplorer(report)
    # the filters open on a real option (a None value renders as a blank box in JupyterLab)
    assert ex.pair.value == ex.outcome.value == ALL and ex.pair.index == ex.outcome.index == 0
    assert [i for _, i in ex.example.options] == list(range(len(report)))
    _assert_shows_row(ex, report, ex.example.value)

    # the pair filter keeps exactly that pair's rows, in report order
    ex.pair.value = "es-fr"
    assert [i for _, i in ex.example.options] == [i for i, r in enumerate(report.rows) if r["pair"] == "es-fr"]
    shown = ex.example.value
    _assert_shows_row(ex, report, shown)
    # another example of the pair whose curve differs: the fixture must hold one, and the panes follow it
    other = next(i for _, i in ex.example.options
                 if report.rows[i]["first_token_prob"]["fr"] != report.rows[shown]["first_token_prob"]["fr"])
    ex.example.value = other
    _assert_shows_row(ex, report, other)

    # the outcome filter keeps exactly the rows with that outcome
    ex.pair.value = ALL
    ex.outcome.value = report.rows[0]["outcome"]
    assert [i for _, i in ex.example.options] == [i for i, r in enumerate(report.rows)
                                                  if r["outcome"] == report.rows[0]["outcome"]]
    _assert_shows_row(ex, report, ex.example.value)

    # filters that match nothing leave a visible "(no example matches)" choice, not a blank box
    pairs = {r["pair"] for r in report.rows}
    empty = next(((p, o) for p in pairs for o in ex.outcome.options[1:]
                  if not any(r["pair"] == p and r["outcome"] == o[1] for r in report.rows)), None)
    assert empty is not None, "the fixture should leave some pair x outcome without examples"
    ex.pair.value, ex.outcome.value = empty[0], empty[1][1]
    assert ex.example.index == 0 and ex.example.value == NO_EXAMPLE
    assert "No example matches" in ex.badge.value and len(ex.grid.data) == 0 and len(ex.probs.data) == 0


def test_lens_result_grid_is_the_logit_lens(stories_model):
    """For a LensResult the grid's z is each layer's top-1 log-prob, recomputed here with a plain forward
    pass per prompt (no padding), the final norm and the unembedding."""
    from interp.lens import decode_layers
    from interp.viz.display import visible_token
    from widgets.lens_explorer import LensExplorer

    model = stories_model
    res = decode_layers(model, ["Once upon a time", "The cat sat on the"], positions="all", k=3)
    ex = LensExplorer(res)
    n = model.cfg.n_layers
    for i in range(2):
        ex.example.value = i
        tokens = res.tokens[i][res.attention_mask[i].bool()][None]
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
        resid = torch.stack([cache["blocks.0.hook_resid_pre"][0]] +
                            [cache[f"blocks.{j}.hook_resid_post"][0] for j in range(n)])  # [layer, pos, d]
        with torch.no_grad():
            logp = torch.log_softmax(model.ln_final(resid) @ model.W_U + model.b_U, -1)
        best = logp.max(-1)
        grid = ex.grid.data[0]
        np.testing.assert_allclose(np.array(grid.z, dtype=float), best.values.numpy(), atol=1e-4)
        assert [list(r) for r in grid.text] == [[visible_token(model.tokenizer.decode([int(t)])) for t in layer]
                                                for layer in best.indices]
        assert len(grid.x) == tokens.shape[1]
    assert len(ex.figures()) == 1


def test_static_fallback_is_the_view_on_screen(report):
    from static_html import static_figures
    from widgets._view import WIDGET_MIME
    from widgets.lens_explorer import LensExplorer

    ex = LensExplorer(report)
    ex.example.value = len(report) - 1
    bundle = ex._repr_mimebundle_()
    assert WIDGET_MIME in bundle and bundle["text/plain"] == repr(ex)
    html = bundle["text/html"]
    assert not re.search(r"<script[^>]*src=", html)  # offline: plotly.js inline (once a session), never a CDN
    assert html.startswith(ex.badge.value)
    grid, probs = static_figures(html)
    row = report.rows[-1]
    assert grid["layout"]["title"]["text"] == ex.grid.layout.title.text and row["source_word"] in ex.grid.layout.title.text
    assert grid["data"][0]["text"] == [list(r) for r in ex.grid.data[0].text]
    assert probs["data"][0]["y"] == pytest.approx(row["first_token_prob"][row["tgt"]])


def test_export_writes_paper_figures(report, tmp_path, monkeypatch):
    import plotly.graph_objects as go

    import interp.viz.figures as figures
    from widgets.lens_explorer import LensExplorer

    written = []

    def fake_export_many(items, formats=("png", "pdf", "svg")):  # no browser needed in the test
        written.extend((fig, str(path)) for fig, path in items)
        return [p for _, p in items]

    monkeypatch.setattr(figures, "export_many", fake_export_many)
    ex = LensExplorer(report)
    ex.export(tmp_path / "ex")
    assert [p for _, p in written] == [str(tmp_path / "ex"), str(tmp_path / "ex_probs")]
    assert all(fig.layout.width == figures.paper_layout(go.Figure(), "double").layout.width for fig, _ in written)
    # the exported figures carry the data on screen
    assert list(written[0][0].data[0].z) == list(ex.grid.data[0].z)
    assert list(written[1][0].data[0].y) == list(ex.probs.data[0].y)


def test_bad_input():
    from widgets.lens_explorer import LensExplorer

    with pytest.raises(TypeError, match="ProbeReport"):
        LensExplorer([1, 2])
