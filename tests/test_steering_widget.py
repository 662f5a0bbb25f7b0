"""SteeringPanel: builds headless; the readout, the summary and the generations it shows are checked
against numbers recomputed here (decoder x unembedding, accuracy and SER from the arms' labels, the
library's compare_generations on the typed prompt); the static view is the view on screen; exports."""

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


def _direct_readout(model, sae, feature: int, k: int = 8):
    """Promoted and suppressed tokens of a decoder direction through the final norm's weight and W_U, by hand."""
    with torch.no_grad():
        logits = (sae.W_dec[feature] * model.ln_final.w) @ model.W_U
    top, bottom = logits.topk(k), logits.topk(k, largest=False)  # bottom: most negative first
    return top.values.tolist() + bottom.values.tolist(), top.indices.tolist() + bottom.indices.tolist()


def test_panel_draws_the_selected_features_readout(setup):
    from interp.viz.palettes import READOUT_COLOURS
    from widgets.steering_panel import SteeringPanel

    model, saes, splits, col, report = setup
    panel = SteeringPanel(report, model, saes, collection=col, task=splits.train, max_new_tokens=4)
    assert len(panel.features) > 1, "the fixture should select features on both hooks"
    for i in range(len(panel.features)):
        panel.feature_select.value = i
        f = panel.feature
        values, ids = _direct_readout(model, panel.saes[f.hook], f.feature)
        bars = panel.readout.data[0]
        # drawn bottom-up: the list reversed, so the most promoted token is the top bar
        assert list(bars.x) == pytest.approx(values[::-1], abs=1e-5)
        assert list(bars.y) == [repr(model.tokenizer.decode([t])) for t in ids[::-1]]
        assert list(bars.marker.color) == [READOUT_COLOURS["suppresses"]] * 8 + [READOUT_COLOURS["promotes"]] * 8
        assert f"{f.hook} #{f.feature}" in panel.readout.layout.title.text
        assert "Top activating" in panel.examples.value


def test_panel_summary_is_the_reports_accuracy_and_ser(setup):
    from interp.viz.palettes import CONDITION_COLOURS
    from widgets.steering_panel import SteeringPanel

    model, saes, splits, col, report = setup
    panel = SteeringPanel(report, model, saes)
    acc, ser = panel.summary.data
    arms = list(report.arms.values())
    assert list(acc.x) == [a.name for a in arms]
    assert list(acc.y) == pytest.approx([sum(a.labels) / len(a.labels) for a in arms])
    assert list(acc.marker.color) == [CONDITION_COLOURS[a.kind] for a in arms]
    base = report.arms["unsteered"]
    steered = [a for a in arms if a.kind != "unsteered"]
    expect, labels = [], []
    for a in steered:  # side-effect ratio by hand: of the answers that changed, the share that broke
        changed = [x.strip() != y.strip() for x, y in zip(base.generations, a.generations)]
        broke = [c and b == 1 and y == 0 for c, b, y in zip(changed, base.labels, a.labels)]
        expect.append(sum(broke) / sum(changed) if any(changed) else 0.0)
        labels.append(f"{sum(broke) / sum(changed):.2f}" if any(changed) else "n/a")
    assert list(ser.x) == [a.name for a in steered]
    assert list(ser.y) == pytest.approx(expect) and list(ser.text) == labels


def test_generate_button_compares_generations_of_the_prompt(setup):
    import html

    from interp.steering.corrsteer import compare_generations
    from interp.steering.select import to_vectors
    from widgets.steering_panel import SteeringPanel

    model, saes, splits, col, report = setup
    panel = SteeringPanel(report, model, saes, collection=col, task=splits.train, max_new_tokens=4)
    assert panel.prompt.value == splits.train.examples[0].prompt  # the text box opens on the first sample
    panel.scale.value = 0.0
    plain, steered = panel.last_generations
    assert plain == steered  # scale 0 is the unsteered model
    prompt = splits.test.examples[1].prompt
    panel.prompt.value = prompt
    panel.scale.value = 8.0
    panel.run_button.click()
    f = panel.feature
    want = compare_generations(model, [prompt], to_vectors([f], panel.saes), scale=8.0, max_new_tokens=4,
                               stop=tuple(splits.train.stop))
    assert panel.last_generations == (want[0][0], want[1][0])
    assert f"<pre>{html.escape(want[0][0])}</pre>" in panel.generations.value
    assert f"<pre>{html.escape(want[1][0])}</pre>" in panel.generations.value
    assert f"c={f.coefficient * 8.0:.3g}" in panel.generations.value


def test_panel_static_view_is_the_view_on_screen(setup):
    import re

    import numpy as np
    from static_html import static_figures
    from widgets._view import WIDGET_MIME
    from widgets.steering_panel import SteeringPanel

    model, saes, splits, col, report = setup
    panel = SteeringPanel(report, model, saes, collection=col, task=splits.train, max_new_tokens=4)
    panel.feature_select.value = 1
    bundle = panel._repr_mimebundle_()
    assert WIDGET_MIME in bundle and not re.search(r"<script[^>]*src=", bundle["text/html"])
    summary, readout = static_figures(bundle["text/html"])
    np.testing.assert_allclose(summary["data"][0]["y"], list(panel.summary.data[0].y))
    np.testing.assert_allclose(readout["data"][0]["x"], list(panel.readout.data[0].x))
    assert panel.table.value in bundle["text/html"] and panel.generations.value in bundle["text/html"]


def test_panel_export(setup, tmp_path):
    from interp.viz.figures import find_chromium
    from widgets.steering_panel import SteeringPanel

    if find_chromium() is None:
        pytest.skip("no Chromium for kaleido")
    model, saes, splits, col, report = setup
    paths = SteeringPanel(report, model, saes).export(tmp_path / "panel", formats=("png",))
    assert [p.name for p in paths] == ["panel.png"]  # the paper figure is the accuracy / SER chart only
    assert paths[0].stat().st_size > 1000


def test_logit_readout_matches_direct_product(setup):
    model, saes, *_ = setup
    frame = logit_readout(model, saes[0], 3, k=4)
    direct = (saes[0].W_dec[3] * model.ln_final.w) @ model.W_U
    assert frame[frame.direction == "promotes"]["logit"].tolist() == pytest.approx(direct.topk(4).values.tolist())
    assert torch.isfinite(direct).all()
