"""notebooks/03_corrsteer.ipynb executes headless with a tiny budget on the bundled zoo model."""

from __future__ import annotations

from pathlib import Path

import pytest

from static_html import assert_every_widget_has_a_static_figure

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03_corrsteer.ipynb"


def test_notebook_parameters_cell_and_stripped_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", []) and "OUT_DIR" in first.source
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    assert "widgets" not in nb.metadata


@pytest.mark.slow
def test_notebook_executes_on_stories260k_with_saved_saes(tmp_path, stories_dir):
    """The notebook with a local folder model and a folder of SAEs (random ones: only execution is checked)."""
    from test_steering_fixtures import make_sae

    from interp.app.notebooks import execute_notebook

    sae_dir = tmp_path / "saes"
    for i, hook in enumerate(("blocks.1.hook_resid_post", "blocks.3.hook_resid_post")):
        make_sae(hook, d_sae=64, d_in=64, kind="topk", seed=i).save_model(sae_dir / hook)
    run = execute_notebook(NOTEBOOK, out_dir=tmp_path, parameters={
        "MODEL": str(stories_dir), "SAE_DIR": str(sae_dir), "TASK": "stories-name", "N_SAMPLES": 40, "N_TRAIN": 20,
        "N_VAL": 6, "N_RANDOM": 1, "BATCH_SIZE": 20, "OUT_DIR": str(tmp_path / "out"),
        "LEAKAGE_CHECK": False, "SELECTORS": False,  # both run on toy-mode in the small-budget test
    })
    report = tmp_path / "out" / "corrsteer_report" / "report.json"
    assert report.is_file() and "stories/name-recall" in report.read_text()
    assert "plotly" in run.html.read_text()


@pytest.mark.slow
def test_notebook_executes_with_small_budget(tmp_path):
    from interp import zoo
    from interp.app.notebooks import execute_notebook

    try:
        zoo.model_dir("toy-mode")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    run = execute_notebook(NOTEBOOK, out_dir=tmp_path, parameters={
        "N_SAMPLES": 48, "N_TRAIN": 24, "N_VAL": 8, "N_RANDOM": 1, "BATCH_SIZE": 24, "SAE_TRAIN_TOKENS": 20_000,
        "OUT_DIR": str(tmp_path / "out"),
    })
    assert (tmp_path / "out" / "corrsteer_report" / "report.json").is_file()
    # the default is toy-mode's planted task; the selection-rule comparison ran and was saved
    assert "toy-mode/opposite" in (tmp_path / "out" / "corrsteer_report" / "report.json").read_text()
    assert (tmp_path / "out" / "selectors" / "comparison.json").is_file()
    assert "cosine_with_latent" in run.html.read_text()
    assert "plotly" in run.html.read_text()
    assert_every_widget_has_a_static_figure(run, "SteeringPanel")
