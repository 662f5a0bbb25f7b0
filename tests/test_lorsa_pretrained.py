"""The bundled stories260K Lorsa loads, runs on raw activations (normalisation folded) and still
reconstructs the attention output of held-out sampled text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from interp.core.activations import sample_tokens
from interp.lorsa import Lorsa, LorsaConfigError, evaluate_lorsa

PRETRAINED = Path(__file__).resolve().parent.parent / "interp" / "lorsa" / "pretrained" / "stories260K-L2"


@pytest.mark.slow
@pytest.mark.skipif(not (PRETRAINED / "config.json").is_file(), reason="no bundled Lorsa")
def test_bundled_lorsa_reconstructs(stories_model):
    lorsa = Lorsa.load(PRETRAINED)
    meta = json.loads((PRETRAINED / "config.json").read_text())
    assert lorsa.cfg.layer == 2 and lorsa.cfg.hook_in == "blocks.2.ln1.hook_normalized"
    tokens = sample_tokens(stories_model, 6, 64, seed=99, progress=False)
    ev = evaluate_lorsa(stories_model, lorsa, tokens, progress=False)
    # A loaded Lorsa that silently expected normalised inputs (the authors' saved-config fault) gives EV ~0.2.
    assert ev.explained_variance > 0.6
    assert ev.loss_recovered > 0.6
    assert ev.l0 == pytest.approx(lorsa.cfg.top_k, abs=0.5)
    assert meta["extra"]["eval"]["explained_variance"] > 0.6


def test_bundled_lorsa_refuses_other_model():
    if not (PRETRAINED / "config.json").is_file():
        pytest.skip("no bundled Lorsa")
    from tiny_models import hooked

    other = hooked(n_layers=1, d_model=32, n_heads=4, n_ctx=16, d_vocab=20)
    with pytest.raises(LorsaConfigError, match="d_model=64"):
        evaluate_lorsa(other, Lorsa.load(PRETRAINED), torch.zeros(1, 8, dtype=torch.long), progress=False)
