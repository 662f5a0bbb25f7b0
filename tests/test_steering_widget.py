"""SteeringPanel: builds headless, reacts to its selectors, shows a static figure, exports."""

from __future__ import annotations

import pytest
import torch

from interp.steering.collect import collect
from interp.steering.corrsteer import CorrSteerConfig, evaluate_vectors, run_corrsteer
from interp.steering.features import logit_readout
from interp.core.tasks import Example, ExactMatchTask

from test_steering_fixtures import make_sae, random_prompts, tiny_llama_with_tokenizer

HOOKS = ("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")


@pytest.fixture(scope="module")
def setup():
    model = tiny_llama_with_tokenizer(seed=4)
    saes = [make_sae(HOOKS[0], seed=5), make_sae(HOOKS[1], seed=6)]
    prompts = random_prompts(24, seed=9)
    said = evaluate_vectors(model, ExactMatchTask("x", [Example(p, "a") for p in prompts], max_new_tokens=3))[1]
    answers = [t.split(" ")[0] if i % 2 == 0 else "zzz" for i, t in enumerate(said)]  # both labels occur
    task = ExactMatchTask("toy", [Example(p, a) for p, a in zip(prompts, answers)], max_new_tokens=3,
                          match="first_word")
    splits = task.split(12, 4, seed=0)
    col = collect(model, saes, splits.train, progress=False)
    report = run_corrsteer(model, saes, splits, CorrSteerConfig(n_random=1, progress=False, n_boot=50, scale=4.0),
                           collection=col)
    return model, saes, splits, col, report


def test_panel_reacts_and_has_static_view(setup):
    from widgets.steering_panel import SteeringPanel

    model, saes, splits, col, report = setup
    panel = SteeringPanel(report, model, saes, collection=col, task=splits.train, max_new_tokens=4)
    x0 = tuple(panel.readout.data[0].x)
    panel.feature_select.value = 1
    assert tuple(panel.readout.data[0].x) != x0
    f = panel.feature
    expected = logit_readout(model, panel.saes[f.hook], f.feature, k=8)
    assert sorted(panel.readout.data[0].x) == pytest.approx(sorted(expected["logit"]))
    assert "Top activating" in panel.examples.value
    panel.scale.value = 0.0
    plain, steered = panel.last_generations
    assert plain == steered  # scale 0 is the unsteered model
    panel.scale.value = 8.0
    assert panel.generations.value.count("<pre>") == 2
    bundle = panel._repr_mimebundle_()
    assert "plotly" in bundle["text/html"] and "application/vnd.jupyter.widget-view+json" in bundle


def test_panel_export(setup, tmp_path):
    from interp.viz.figures import find_chromium
    from widgets.steering_panel import SteeringPanel

    if find_chromium() is None:
        pytest.skip("no Chromium for kaleido")
    model, saes, splits, col, report = setup
    paths = SteeringPanel(report, model, saes).export(tmp_path / "panel", formats=("png",))
    assert paths[0].stat().st_size > 1000


def test_logit_readout_matches_direct_product(setup):
    model, saes, *_ = setup
    frame = logit_readout(model, saes[0], 3, k=4)
    direct = (saes[0].W_dec[3] * model.ln_final.w) @ model.W_U
    assert frame[frame.direction == "promotes"]["logit"].tolist() == pytest.approx(direct.topk(4).values.tolist())
    assert torch.isfinite(direct).all()
