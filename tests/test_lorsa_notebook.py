"""notebooks/02_lorsa_heads.ipynb runs headless end to end with a tiny budget and exports its figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from static_html import assert_every_widget_has_a_static_figure

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_lorsa_notebook_runs(tmp_path, stories_dir):
    from interp.app.notebooks import execute_notebook

    out = tmp_path / "figs"
    run = execute_notebook(ROOT / "notebooks" / "02_lorsa_heads.ipynb", out_dir=tmp_path, parameters=dict(
        MODEL=str(stories_dir), LAYER=2, TOKENS="sample", CTX=48, N_TRAIN_SEQ=24, N_EVAL_SEQ=8, EXPANSION=2,
        TOP_K=4, THREADS=1, OUT_DIR=str(out)))
    for name in ("lorsa_head_frequency", "lorsa_induction_scores", "lorsa_z_pattern"):
        assert (out / f"{name}.png").is_file(), name
    assert (out / "lorsa-L2" / "weights.safetensors").is_file()
    html = next(tmp_path.glob("*.html")).read_text()
    assert "plotly" in html and "Traceback" not in html
    assert_every_widget_has_a_static_figure(run, "HeadBrowser")
