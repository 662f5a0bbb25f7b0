"""The Lorsa authors' checkpoint format (llamascopium): read and write it without their package.

Reference: ``../shared/fixtures/lorsa-authors-stories260K-L2`` was trained and saved by the authors' own
code; its README states explained variance 0.928 of their own forward on the 2 held-out sequences in
``authors_forward.safetensors`` and says the config contradicts the folded weights. Every number below
is recomputed here from those files, independently of the loader's own EV bookkeeping.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import PROJECT_ROOT, shared_model_dir
from interp.lorsa import Lorsa, LorsaConfig
from interp.lorsa.authors import (
    AuthorsConfigWarning, AuthorsFormatError, load_authors_lorsa, read_authors_lorsa, save_authors_lorsa,
)

NAME = "lorsa-authors-stories260K-L2"
README_EV = 0.928  # fixture README: EV of y_hat_authors against y over the non-BOS positions of the 2 sequences


def _fixture_candidates() -> list[Path]:
    """INTERP_LORSA_AUTHORS_FIXTURE, then ``shared/fixtures`` beside the project or beside the shared
    stories260K folder (worktrees live one level deeper than the main checkout)."""
    out = [Path(os.environ["INTERP_LORSA_AUTHORS_FIXTURE"])] if os.environ.get("INTERP_LORSA_AUTHORS_FIXTURE") else []
    out.append(PROJECT_ROOT.parent / "shared" / "fixtures" / NAME)
    out.append(shared_model_dir("stories260K").resolve().parent.parent / "fixtures" / NAME)
    return out


@pytest.fixture(scope="module")
def fixture_dir() -> Path:
    for path in _fixture_candidates():
        if (path / "sae_weights.safetensors").is_file():
            return path
    if os.environ.get("CI"):
        pytest.fail(f"authors' fixture expected at one of {_fixture_candidates()} in CI")
    pytest.skip(f"authors' fixture not found at {_fixture_candidates()}; set INTERP_LORSA_AUTHORS_FIXTURE")


@pytest.fixture(scope="module")
def reference(fixture_dir):
    return load_file(str(fixture_dir / "authors_forward.safetensors"))


def ev(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """1 - SSE / total variance over non-BOS positions (position 0 is BOS), in float64."""
    yy, pp = y[:, 1:].reshape(-1, y.shape[-1]).double(), y_hat[:, 1:].reshape(-1, y.shape[-1]).double()
    return float(1 - ((pp - yy) ** 2).sum() / ((yy - yy.mean(0)) ** 2).sum())


def test_reference_ev_is_the_readme_number(reference):
    # The reference itself: the authors' forward reaches the README's EV (guards the fixture, not our code).
    assert ev(reference["y_hat_authors"], reference["y"]) == pytest.approx(README_EV, abs=5e-4)


def test_fixture_loads_folded_despite_its_config_and_reconstructs(fixture_dir, reference):
    x, y = reference["x"], reference["y"]
    with pytest.warns(AuthorsConfigWarning, match="already folded"):
        loaded = read_authors_lorsa(fixture_dir, activations=(x, y))
    assert json.loads((fixture_dir / "config.json").read_text())["norm_activation"] == "dataset-wise"
    assert loaded.reading == "folded" and loaded.contradicts_config
    with torch.no_grad():
        z = loaded.lorsa.encode(x)
        y_hat = loaded.lorsa.decode(z)
    assert ev(y_hat, y) == pytest.approx(README_EV, abs=0.01)
    # Same function as the authors' own encode/decode, not just the same EV.
    torch.testing.assert_close(y_hat, reference["y_hat_authors"], atol=1e-4, rtol=0)
    torch.testing.assert_close(z, reference["z_authors"], atol=1e-3, rtol=0)
    assert (z != 0).sum(-1).eq(16).all()  # L0 = top_k = 16, as the README says
    cfg = loaded.lorsa.cfg
    assert (cfg.layer, cfg.hook_in, cfg.hook_out) == (2, "blocks.2.ln1.hook_normalized", "blocks.2.hook_attn_out")
    assert cfg.rotary and not cfg.rotary_adjacent_pairs and cfg.n_ov_heads == 512 and cfg.top_k == 16


def test_literal_reading_is_what_breaks_and_is_detected(fixture_dir, reference):
    x, y = reference["x"], reference["y"]
    literal = load_authors_lorsa(fixture_dir, reading="normalised")
    with torch.no_grad():
        ev_literal = ev(literal(x), y)
    assert ev_literal < 0.3  # the "EV drops from 0.92 to 0.20" (0.19 here)
    with pytest.warns(AuthorsConfigWarning):
        loaded = read_authors_lorsa(fixture_dir, activations=(x, y))
    assert loaded.explained_variance["normalised"] == pytest.approx(ev_literal, abs=1e-6)
    assert loaded.explained_variance["folded"] == pytest.approx(README_EV, abs=0.01)


def test_a_genuinely_normalised_checkpoint_is_read_as_normalised(fixture_dir, reference, tmp_path):
    # Unfold the weights (what their trainer's checkpoints/step_N hold, config "dataset-wise" and true):
    # the detector must now pick the other reading, and the result must be the same function.
    x, y = reference["x"], reference["y"]
    with pytest.warns(AuthorsConfigWarning):
        loaded = read_authors_lorsa(fixture_dir, activations=(x, y))
    out = save_authors_lorsa(loaded.lorsa, tmp_path / "unfolded", template=loaded, normalised=True)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["norm_activation"] == "dataset-wise"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # config and weights agree: no warning
        again = read_authors_lorsa(out, activations=(x, y))
    assert again.reading == "normalised" and not again.contradicts_config
    assert again.explained_variance["folded"] < 0.5
    with torch.no_grad():
        torch.testing.assert_close(again.lorsa(x), reference["y_hat_authors"], atol=1e-4, rtol=0)


def test_without_activations_the_files_place_decides_with_a_warning(fixture_dir, tmp_path):
    with pytest.warns(AuthorsConfigWarning, match="guessed"):
        assert read_authors_lorsa(fixture_dir).reading == "folded"
    step = tmp_path / "run" / "checkpoints" / "step_640"
    shutil.copytree(fixture_dir, step)
    with pytest.warns(AuthorsConfigWarning, match="guessed"):
        assert read_authors_lorsa(step).reading == "normalised"


def test_round_trip_authors_to_ours_to_authors_is_exact(fixture_dir, reference, tmp_path):
    with pytest.warns(AuthorsConfigWarning):
        loaded = read_authors_lorsa(fixture_dir, activations=(reference["x"], reference["y"]))
    out = save_authors_lorsa(loaded.lorsa, tmp_path / "again", template=loaded)
    original, written = load_file(str(fixture_dir / "sae_weights.safetensors")), load_file(str(out / "sae_weights.safetensors"))
    assert set(original) == set(written)
    for k in original:  # every tensor bit for bit, buffers (rotary tables, mask, IGNORE, norms) included
        assert original[k].dtype == written[k].dtype and torch.equal(original[k], written[k]), k
    cfg_a = json.loads((fixture_dir / "config.json").read_text())
    cfg_b = json.loads((out / "config.json").read_text())
    # The one deliberate difference: the written config tells the truth about the folded weights.
    assert {k for k in cfg_a if cfg_a[k] != cfg_b.get(k)} == {"norm_activation"}
    assert set(cfg_a) == set(cfg_b) and cfg_b["norm_activation"] == "inference"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "inference" needs no guess and no warning
        back = read_authors_lorsa(out)
    assert back.reading == "folded"
    for k, v in loaded.lorsa.state_dict().items():
        assert torch.equal(v, back.lorsa.state_dict()[k]), k


@pytest.mark.parametrize("variant", [
    dict(rotary=True, rotary_dim=4, rotary_base=500.0, rotary_adjacent_pairs=True),
    dict(rotary=True, rotary_dim=8, rotary_adjacent_pairs=False, qk_norm=True, qk_norm_eps=1e-5, attn_scale=3.0),
    dict(rotary=False),
])
def test_round_trip_ours_to_authors_to_ours_is_exact(variant, tmp_path):
    cfg = LorsaConfig(d_model=16, n_qk_heads=2, d_qk_head=8, n_ov_heads=48, top_k=4, layer=1,
                      hook_in="blocks.1.ln1.hook_normalized", hook_out="blocks.1.hook_attn_out", **variant)
    lorsa = Lorsa(cfg, seed=3)
    with torch.no_grad():
        for p in lorsa.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # non-zero biases too
        if cfg.qk_norm:
            lorsa.q_norm_w.copy_(torch.rand(8) + 0.5)
            lorsa.k_norm_w.copy_(torch.rand(8) + 0.5)
    out = save_authors_lorsa(lorsa, tmp_path / "ckpt", n_ctx=64)
    back = load_authors_lorsa(out)
    assert back.cfg.to_dict() == dict(cfg.to_dict(), attn_scale=cfg.scale)  # None is written as its value
    a, b = lorsa.state_dict(), back.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    x = torch.randn(2, 20, 16)
    with torch.no_grad():
        assert torch.equal(lorsa(x), back(x))


def test_clear_errors(fixture_dir, tmp_path):
    with pytest.raises(AuthorsFormatError, match="missing"):
        read_authors_lorsa(tmp_path)
    signed = Lorsa(LorsaConfig(d_model=16, n_qk_heads=2, d_qk_head=8, n_ov_heads=32, top_k=4, activation="signed",
                               hook_in="blocks.0.hook_resid_pre", hook_out="blocks.0.hook_attn_out"))
    with pytest.raises(AuthorsFormatError, match="signed"):
        save_authors_lorsa(signed, tmp_path / "s", n_ctx=8)
    with pytest.raises(ValueError, match="n_ctx"):
        save_authors_lorsa(Lorsa(LorsaConfig(d_model=16, n_qk_heads=2, d_qk_head=8, n_ov_heads=32, top_k=4,
                                             hook_in="a", hook_out="b")), tmp_path / "t")
    for change, match in ((dict(act_fn="jumprelu"), "act_fn"), (dict(norm_activation="token-wise"), "token-wise"),
                          (dict(rotary_adjacent_pairs=True), "rotary tables"), (dict(sae_type="sae"), "sae_type")):
        bad = tmp_path / f"bad_{next(iter(change))}"
        shutil.copytree(fixture_dir, bad)
        cfg = json.loads((bad / "config.json").read_text())
        cfg.update(change)
        (bad / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(AuthorsFormatError, match=match):
            read_authors_lorsa(bad, reading="folded")


def test_opens_on_its_host_in_head_browser(fixture_dir, reference, stories_model):
    """The authors' checkpoint, as it comes, on stories260K: the hook input our loader computes is the
    fixture's x, the auto reading (calibrated on tokens sampled from the host) is folded, and the
    unchanged HeadBrowser opens on it."""
    from interp.lorsa import head_scores, top_contexts
    from widgets import HeadBrowser

    model = stories_model
    tokens = reference["tokens"]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=["blocks.2.ln1.hook_normalized", "blocks.2.hook_attn_out"])
    torch.testing.assert_close(cache["blocks.2.ln1.hook_normalized"], reference["x"], atol=1e-4, rtol=0)
    with pytest.warns(AuthorsConfigWarning):
        loaded = read_authors_lorsa(fixture_dir, model=model, n_calibration=4, ctx=128)
    assert loaded.reading == "folded"
    assert loaded.explained_variance["folded"] > 0.85 > 0.5 > loaded.explained_variance["normalised"]
    # The stored dataset norms describe this host: measured mean norms agree to a few percent.
    for hook, stored in loaded.dataset_norms.items():
        assert loaded.mean_norms[hook] == pytest.approx(stored, rel=0.1), hook
    lorsa = loaded.lorsa
    with torch.no_grad():
        assert ev(lorsa(cache["blocks.2.ln1.hook_normalized"]), cache["blocks.2.hook_attn_out"]) == pytest.approx(README_EV, abs=0.01)
    tops = top_contexts(model, lorsa, tokens, k=4, progress=False)
    scores = head_scores(model, lorsa, tokens[:, :64], n_random=4, half=16)
    browser = HeadBrowser(lorsa, model, tops, scores)
    assert browser.ranked_heads() and len(browser.fig.data) > 0
    assert "HeadBrowser" in repr(browser)


def test_authors_own_loader_reads_what_we_write(fixture_dir, reference, tmp_path):
    """Optional: with llamascopium importable, their from_pretrained loads our written folder and their
    encode/decode reproduce their own reference outputs."""
    sd = pytest.importorskip("llamascopium.models.sparse_dictionary")
    with pytest.warns(AuthorsConfigWarning):
        loaded = read_authors_lorsa(fixture_dir, activations=(reference["x"], reference["y"]))
    out = save_authors_lorsa(loaded.lorsa, tmp_path / "ours", template=loaded)
    theirs = sd.SparseDictionary.from_pretrained(str(out))
    with torch.no_grad():
        y_hat = theirs.decode(theirs.encode(reference["x"]))
    torch.testing.assert_close(y_hat, reference["y_hat_authors"], atol=1e-4, rtol=0)
