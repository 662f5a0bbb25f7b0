"""notebooks/02_lorsa_heads.ipynb runs headless end to end with a tiny budget (its defaults: toy-lm-planted with
the bundled toy-lm-planted-lorsa, and the authors' checkpoint section on the shared fixture) and exports its
figures; the lookups it relies on (the bundled Lorsa of a model, the shared fixture folder) are checked here too.
Training inside the notebook is exercised by tests/test_notebooks_families.py (a gemma2 twin has no bundled Lorsa)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from static_html import assert_every_widget_has_a_static_figure
from tests.browser.budgets import BUDGETS

ROOT = Path(__file__).resolve().parent.parent
NAME = "02_lorsa_heads.ipynb"


def test_bundled_lorsa_lookup():
    from interp.zoo import sources

    assert sources.bundled_lorsa("toy-lm-planted") == "toy-lm-planted-lorsa"
    assert sources.bundled_lorsa("toy-lm-planted", 3) == "toy-lm-planted-lorsa"
    assert sources.bundled_lorsa("toy-lm-planted", 1) is None  # no Lorsa bundled at that layer: the notebook trains
    assert sources.bundled_lorsa("toy-lm") is None
    assert sources.bundled_lorsa("/some/folder/stories260K") is None  # only zoo models have bundled artefacts
    assert sources.lorsa_card("toy-lm-planted-lorsa")["layer"] == 3
    assert sources.lorsa_card("/a/lorsa/folder") == {}


def test_shared_fixture_dir_env_overrides(monkeypatch, tmp_path):
    from interp.app.paths import AUTHORS_LORSA_FIXTURE, shared_fixture_dir

    monkeypatch.setenv("INTERP_LORSA_AUTHORS_FIXTURE", str(tmp_path / "mine"))
    assert shared_fixture_dir() == tmp_path / "mine"
    monkeypatch.delenv("INTERP_LORSA_AUTHORS_FIXTURE")
    monkeypatch.setenv("INTERP_SHARED_FIXTURES", str(tmp_path))
    assert shared_fixture_dir() == tmp_path / AUTHORS_LORSA_FIXTURE
    assert shared_fixture_dir("other") == tmp_path / "other"
    monkeypatch.delenv("INTERP_SHARED_FIXTURES")
    (tmp_path / "shared" / "fixtures" / AUTHORS_LORSA_FIXTURE).mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "shared")  # found in a parent of the working directory
    assert shared_fixture_dir() == tmp_path / "shared" / "fixtures" / AUTHORS_LORSA_FIXTURE


def test_authors_reference_tokens(tmp_path):
    import torch
    from safetensors.torch import save_file

    from interp.zoo import sources

    assert sources.authors_reference_tokens(tmp_path) is None
    save_file({"tokens": torch.tensor([[1, 5, 6]], dtype=torch.int32)}, str(tmp_path / "authors_forward.safetensors"))
    got = sources.authors_reference_tokens(tmp_path)
    assert got.dtype == torch.long and got.tolist() == [[1, 5, 6]]


def _fixture_or_skip() -> Path:
    from interp.app.paths import shared_fixture_dir

    path = shared_fixture_dir()
    if not (path / "sae_weights.safetensors").is_file():
        pytest.skip(f"authors' fixture not found at {path}; set INTERP_LORSA_AUTHORS_FIXTURE")
    return path


@pytest.mark.slow
def test_lorsa_notebook_runs(tmp_path, stories_dir):
    from interp.app.notebooks import execute_notebook

    fixture = _fixture_or_skip()
    out = tmp_path / "figs"
    run = execute_notebook(ROOT / "notebooks" / NAME, out_dir=tmp_path, parameters=dict(
        BUDGETS[NAME], AUTHORS_LORSA=str(fixture), AUTHORS_HOST=str(stories_dir), OUT_DIR=str(out)))
    for name in ("lorsa_head_frequency", "lorsa_induction_scores", "lorsa_z_pattern"):
        assert (out / f"{name}.png").is_file(), name
    assert not (out / "lorsa-L3").exists()  # the bundled Lorsa was loaded, not trained
    html = next(tmp_path.glob("*.html")).read_text()
    assert "plotly" in html and "Traceback" not in html
    text = json.dumps(json.loads(Path(run.executed).read_text())["cells"])
    assert "loaded toy-lm-planted-lorsa | layer 3" in text
    # the authors' checkpoint: its config's contradiction is detected and the README's EV reproduced
    assert "contradiction with the weights detected: True | read as: folded" in text
    ev = re.search(r"'folded': (0\.\d+), 'normalised': (0\.\d+)", text)
    assert ev is not None, "no explained-variance line for the authors' checkpoint"
    assert float(ev.group(1)) == pytest.approx(0.928, abs=0.01)  # fixture README: 0.928 on its reference sequences
    assert float(ev.group(2)) < 0.5  # read as the config says, it does not reconstruct
    assert_every_widget_has_a_static_figure(run, "HeadBrowser")
    assert text.count("HeadBrowser(layer=") >= 2  # toy-lm-planted's Lorsa and the authors' one
