"""Notebook 04 executes headless with a tiny budget (toy-lm-planted when its checkpoint exists, else stories260K)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interp import zoo
from conftest import shared_model_dir

from static_html import assert_every_widget_has_a_static_figure

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04_thr_attribution.ipynb"


def _model() -> str:
    try:
        zoo.model_dir("toy-lm-planted")
        return "toy-lm-planted"
    except FileNotFoundError:
        if (shared_model_dir() / "config.json").is_file():
            return str(shared_model_dir())
        pytest.skip("neither the toy-lm checkpoint nor stories260K is available")


@pytest.mark.slow
def test_notebook_04_runs_with_a_small_budget(tmp_path):
    from interp.app.notebooks import execute_notebook

    params = dict(MODEL=_model(), N_PROMPTS=3, GROUP_SIZE=4, STEPS=1, PROMPTS_PER_STEP=2, EVAL_SAMPLES=0, LOG_STEPS=1,
                  OUT_DIR=str(tmp_path / "figs"))
    run = execute_notebook(NOTEBOOK, parameters=params, out_dir=tmp_path, timeout=300)
    assert run.html is not None and "plotly" in run.html.read_text().lower()
    assert_every_widget_has_a_static_figure(run, "THRViewer")
    assert_every_widget_has_a_static_figure(run, "THRTrainingViewer")
    log = (tmp_path / "figs" / "thr_token_log.jsonl").read_text().splitlines()
    assert len(log) == 1  # LOG_STEPS rollouts
    if params["MODEL"] == "toy-lm-planted":  # the card's planted experiment is shown
        assert "held-out hard holders" in run.html.read_text()
    from interp.viz.figures import find_chromium

    if find_chromium() is not None:
        for stem in ("thr_tokens", "thr_histogram", "thr_training"):
            assert (tmp_path / "figs" / f"{stem}.png").stat().st_size > 0


def test_notebook_is_committed_without_outputs():
    import json

    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[0]["metadata"].get("tags") == ["parameters"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    assert "widgets" not in nb["metadata"]
