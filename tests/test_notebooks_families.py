"""The notebooks' code paths on models outside the zoo: each notebook's code cells, with the browser test's
small budgets and ``MODEL`` set to a twin of another family (tests/twins.py), run in this process (no
kernel; figure export is skipped, the notebook tests check it). This is what "MODEL accepts any of the nine
families" means in practice: nothing in them assumes a HookedTransformer or a Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from browser.budgets import BUDGETS

ROOT = Path(__file__).resolve().parent.parent


def _run(name: str, folder: Path, out: Path, **overrides) -> dict:
    nb = json.loads((ROOT / "notebooks" / name).read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    env: dict = {}
    exec(cells[0], env)  # the parameters cell
    env.update(BUDGETS[name], MODEL=str(folder), OUT_DIR=str(out), EXPORT=False, **overrides)
    for src in cells[1:]:
        if "export_many(" in src or ".export(" in src:
            continue
        exec(src, env)
    return env


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield


@pytest.mark.slow
@pytest.mark.parametrize("name,family,overrides", [
    ("01_translation_barrier.ipynb", "qwen2", dict(LENS="logit")),   # no BOS, tied embeddings
    ("02_lorsa_heads.ipynb", "gemma2", dict(AUTHORS_LORSA="no-such-folder")),  # soft-caps, sliding window, post-norms; no bundled Lorsa: trains one
    ("04_thr_attribution.ipynb", "phi3", dict(LR=1e-4)),              # outside the zoo: its own learning rate
], ids=["01-qwen2", "02-gemma2", "04-phi3"])
def test_notebook_runs_on_another_family(name, family, overrides, twin_dir, tmp_path):
    env = _run(name, twin_dir(family), tmp_path, **overrides)
    from interp.core.frontend import frontend

    assert frontend(env["model"]) == "bridge"
    if name.startswith("01"):
        assert len(env["report"]) > 0 and "pivot_en_share_by_layer" in env["summary"]
    if name.startswith("02"):
        assert env["lorsa"].cfg.attn_softcap == 3.0 and env["ev"].n_tokens > 0 and env["train_result"] is not None
        assert env["authors"] is None and env["authors_browser"].startswith("skipped")  # a missing folder skips the section
    if name.startswith("04"):
        assert len(env["result"].thr) == BUDGETS[name]["N_PROMPTS"] * BUDGETS[name]["GROUP_SIZE"]


@pytest.mark.slow
def test_corrsteer_notebook_on_gpt2_trains_saes_and_stops_clearly_on_a_task_it_never_solves(twin_dir, tmp_path):
    """A random-init twin answers nothing right, so the correlation step must refuse (one class of labels);
    everything before it (SAE training through sae-lens on the bridge, collection) runs."""
    from interp.steering.stats import OneClassLabelsError

    with pytest.raises(OneClassLabelsError, match="All .* labels equal 0"):
        _run("03_corrsteer.ipynb", twin_dir("gpt2"), tmp_path)
    assert any((tmp_path / "saes").iterdir())  # the SAEs were trained and saved
