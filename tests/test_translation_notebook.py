"""Notebook 01 runs headless on the bundled toy model with a small budget."""

from __future__ import annotations

import json

import pytest

from static_html import assert_every_widget_has_a_static_figure


@pytest.mark.slow  # ~40-75 s on a shared 2-core machine (kernel start, probe, tuned lens, figure export)
def test_notebook_01_executes(tmp_path):
    from interp import zoo
    from interp.viz.figures import find_chromium
    from interp.app.notebooks import execute_notebook

    try:
        zoo.model_dir("toy-translate")
    except FileNotFoundError:
        pytest.skip("toy-translate checkpoint not trained")
    export = find_chromium() is not None
    run = execute_notebook(
        "notebooks/01_translation_barrier.ipynb",
        parameters=dict(SOURCES=["es"], TARGETS=["en", "hi", "sw"], N_CONCEPTS=4, LENS="tuned", TUNED_STEPS=3,
                        MAX_NEW_TOKENS=8, EXPORT=export, OUT_DIR=str(tmp_path / "out")),
        out_dir=tmp_path,
    )
    report = json.loads((tmp_path / "out" / "probe_report.json").read_text())
    assert len(report["rows"]) == 12 and report["meta"]["lens"] == "tuned"
    html = run.html.read_text()
    assert "Plotly.newPlot" in html  # figures survive in the static HTML
    assert "ProbeReport" in html
    assert_every_widget_has_a_static_figure(run, "LensExplorer")
    if export:
        for name in ("01_heatmap_accuracy", "01_language_presence", "01_example", "01_example_probs"):
            assert (tmp_path / "out" / f"{name}.pdf").stat().st_size > 0
