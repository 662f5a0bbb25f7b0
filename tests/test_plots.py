"""The figure builders in ``interp/<method>/plots.py``: what each draws is the result's numbers,
recomputed here by hand from small synthetic results, in the colours of the one palette."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from interp.viz import palettes

ROOT = Path(__file__).resolve().parent.parent
BUILDERS = sorted((ROOT / "interp").glob("*/plots.py")) + sorted((ROOT / "widgets").glob("*.py"))
COLOUR_LITERAL = re.compile(r"""#[0-9a-fA-F]{3,8}\b|rgba?\(|["'](?:white|black|crimson|red|blue|green|grey|gray)["']""")


def test_every_method_has_a_plots_module():
    assert {p.parent.name for p in ROOT.glob("interp/*/plots.py")} >= {"lens", "translation", "lorsa", "steering", "thr"}


@pytest.mark.parametrize("path", BUILDERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_colours_come_from_the_palette(path):
    code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    found = COLOUR_LITERAL.findall(code)
    assert not found, f"{path.relative_to(ROOT)} writes colours {found}; name them in interp/viz/palettes.py"


# ----------------------------------------------------------------------------- translation
def _report():
    from interp.translation.report import ProbeReport

    outcomes = {  # (pair, resource of the target) -> outcomes of its examples
        ("es-en", "high"): ["correct", "correct", "translation_failure", "task_failure"],
        ("es-fr", "mid"): ["correct", "target_lost", "translation_failure"],
        ("en-es", "high"): ["translation_failure", "translation_failure"],
    }
    rows = []
    for (pair, level), outs in outcomes.items():
        src, tgt = pair.split("-")
        for o in outs:
            rows.append(dict(pair=pair, src=src, tgt=tgt, outcome=o, target_resource=level,
                             layer_languages=[None, "en", tgt], first_token_prob={}))
    meta = dict(layers=[1, 2, 3], languages=["en", "es", "fr"], resource={"en": "high", "es": "high", "fr": "mid"})
    return ProbeReport(rows, meta), outcomes


def test_outcome_bars_are_the_shares_per_resource_level_in_outcome_colours():
    report, outcomes = _report()
    fig = report.plot("outcomes")
    names = {"correct": "correct", "translation_failure": "translation failure", "target_lost": "target lost",
             "task_failure": "task failure"}
    assert [t.name for t in fig.data] == list(names.values())
    for trace, outcome in zip(fig.data, names):
        assert trace.marker.color == palettes.OUTCOME_COLOURS[outcome]
        assert list(trace.x) == ["high", "mid"]
        for level, y in zip(trace.x, trace.y):
            outs = [o for (_, lvl), os in outcomes.items() if lvl == level for o in os]
            assert y == pytest.approx(outs.count(outcome) / len(outs))
    shares = np.array([list(t.y) for t in fig.data]).sum(0)
    np.testing.assert_allclose(shares, 1.0)  # stacked bars fill each level


def test_pair_heatmap_cells_are_each_pairs_rate():
    report, outcomes = _report()
    fig = report.plot("heatmap", metric="translation_failure_share")
    hm = fig.data[0]
    assert list(hm.y) == ["en", "es"] and list(fig.layout.xaxis.ticktext) == ["en", "es", "fr"]
    for (pair, _), outs in outcomes.items():
        src, tgt = pair.split("-")
        fails = [o for o in outs if o != "correct"]
        cell = hm.z[list(hm.y).index(src)][list(fig.layout.xaxis.ticktext).index(tgt)]
        assert cell == pytest.approx(fails.count("translation_failure") / len(fails))
    assert hm.z[0][0] is None and fig.layout.plot_bgcolor == palettes.MISSING_COLOUR  # en-en was not run
    import plotly.graph_objects as go

    assert hm.colorscale == go.Heatmap(colorscale=palettes.RATE_SCALE).colorscale and (hm.zmin, hm.zmax) == (0, 1)


def test_presence_lines_are_shares_of_examples_per_layer():
    report, _ = _report()
    traces = {t.name: t for t in report.plot("presence").data}
    # every example decodes nothing at layer 1, English at layer 2 and its target at layer 3: at layer 2
    # English is the target of the 4 es-en examples, the source of the 2 en-es ones, a pivot for 3 es-fr
    assert list(traces["target"].y) == pytest.approx([0, 4 / 9, 1])
    assert list(traces["source"].y) == pytest.approx([0, 2 / 9, 0])
    assert list(traces["pivot (en)"].y) == pytest.approx([0, 3 / 9, 0])


# ----------------------------------------------------------------------------- lorsa
def test_lorsa_figures_draw_the_results_numbers():
    from interp.lorsa.analyze import TopContexts
    from interp.lorsa.evaluate import LorsaEval
    from interp.lorsa.train import LorsaTrainResult

    freq = torch.tensor([0.0, 1e-3, 0.1, 0.5])
    ev = LorsaEval(layer=2, n_tokens=100, explained_variance=0.9, mse=0.1, l0=3.0, dead_heads=1, dense_heads=0,
                   n_ov_heads=4, clean_loss=1.0, spliced_loss=1.1, ablated_loss=2.0, loss_recovered=0.9,
                   head_frequency=freq, head_mean_act=torch.ones(4))
    hist = ev.plot().data[0]
    np.testing.assert_allclose(hist.x, [-7.0, -3.0, -1.0, np.log10(0.5)], rtol=1e-6)
    assert "EV 0.900" in ev.plot().layout.title.text and "1 never fired" in ev.plot().layout.title.text

    tops = TopContexts(values=torch.tensor([[3.0, 2.0, 0.0]]), seq=torch.zeros(1, 3, dtype=torch.long),
                       pos=torch.tensor([[1, 2, 0]]), frequency=torch.tensor([0.2]), tokens=torch.zeros(1, 4, dtype=torch.long))
    assert list(tops.plot(0).data[0].y) == [3.0, 2.0]  # the head's activations, the empty slot left out

    run = LorsaTrainResult(lorsa=None, log=[dict(step=0, mse=1.0, fvu=0.5), dict(step=10, mse=0.5, fvu=0.2)])
    curves = {t.name: list(t.y) for t in run.plot().data}
    assert curves == {"mse": [1.0, 0.5], "fvu": [0.5, 0.2]} and run.plot().layout.yaxis.type == "log"


def test_head_scores_use_the_head_source_colours():
    import pandas as pd

    from interp.lorsa.analyze import HeadScores

    s = HeadScores(lorsa=pd.DataFrame({"head": [0, 1, 2], "induction": [0.1, 0.9, float("nan")]}),
                   host=pd.DataFrame({"head": [0, 1], "induction": [0.3, 0.7]}))
    hist, host = s.plot("induction").data
    assert list(hist.x) == [0.1, 0.9] and hist.marker.color == palettes.HEAD_SOURCE_COLOURS["lorsa"]
    assert list(host.x) == [0.3, 0.7] and host.marker.color == palettes.HEAD_SOURCE_COLOURS["host"]


# ----------------------------------------------------------------------------- steering
def test_readout_bars_are_the_frame_drawn_bottom_up():
    import pandas as pd

    from interp.steering.plots import readout_figure

    frame = pd.DataFrame({"direction": ["promotes", "promotes", "suppresses"], "token": [" a", "b", "\n"],
                          "logit": [2.0, 1.0, -3.0]})
    bar = readout_figure(frame, "t").data[0]
    assert list(bar.x) == [-3.0, 1.0, 2.0] and list(bar.y) == ["'\\n'", "'b'", "' a'"]
    assert list(bar.marker.color) == [palettes.READOUT_COLOURS[d] for d in ["suppresses", "promotes", "promotes"]]
