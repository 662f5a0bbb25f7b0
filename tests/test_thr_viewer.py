"""THRViewer: built headless from a synthetic THRResult; selectors change the figure data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.thr import token_hidden_reward
from interp.thr.result import GRPOLog, THRResult


@pytest.fixture()
def result():
    g = torch.Generator().manual_seed(0)
    G, V, d = 4, 20, 6
    lengths = [5, 3, 4, 6, 2, 5, 5, 3]
    H = [torch.randn(n, d, generator=g) for n in lengths]
    L = [2 * torch.randn(n, V, generator=g) for n in lengths]
    Y = [torch.randint(0, V, (n,), generator=g) for n in lengths]
    r = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # second group: equal rewards
    thr = token_hidden_reward(H, L, Y, r, group_size=G)
    logp = [torch.log_softmax(x, -1) for x in L]
    return THRResult(
        prompts=["first prompt", "second prompt"], completions=["c"] * 8, tokens=Y,
        token_text=[[f"t{int(t)}" for t in y] for y in Y], thr=thr,
        prob=[lp.gather(-1, y[:, None])[:, 0].exp() for lp, y in zip(logp, Y)],
        entropy=[-(lp.exp() * lp).sum(-1) for lp in logp], rewards=r, group_size=G,
    )


def test_viewer_selectors_change_the_figure(result):
    from widgets import THRViewer

    log = GRPOLog(records=[dict(step=1.0, reward_mean=0.2, thr_density=0.3), dict(step=2.0, reward_mean=0.4, thr_density=0.2)])
    v = THRViewer(result, logs=log, p=0.5)
    assert v.group.value == 0  # opens on a group with mixed rewards
    z_all = np.array(v.fig.data[0].z, dtype=float)
    assert z_all.shape == (4, 6)
    # colours are symmetric around 0 and the cells carry THR itself
    hm = v.fig.data[0]
    assert hm.zmid == 0 and hm.zmin == -hm.zmax
    np.testing.assert_allclose(z_all[0, :5], result.thr[0].numpy(), rtol=1e-6)

    v.which.value = "correct"
    assert np.array(v.fig.data[0].z).shape[0] == 2
    v.dominant_only.value = True
    z_dom = np.array(v.fig.data[0].z, dtype=float)
    dom = result.dominant()
    assert np.isnan(z_dom[0, :5][~dom[0].numpy()]).all()

    w_before = np.array(v.fig.data[0].customdata, dtype=float)[..., 3]
    v.p.value = -0.5
    w_after = np.array(v.fig.data[0].customdata, dtype=float)[..., 3]
    expect = result.weights(-0.5)[0].numpy()
    np.testing.assert_allclose(w_after[0, :5], expect)
    assert not np.allclose(np.nan_to_num(w_before), np.nan_to_num(w_after)) or not dom[0].any()

    v.view.value = "histogram"
    assert [t.type for t in v.fig.data] == ["histogram", "histogram"]
    v.view.value = "training"
    assert list(v.fig.data[0].y) == [0.2, 0.4]


def test_viewer_has_a_static_fallback_and_exports(result, tmp_path):
    from widgets import THRViewer

    v = THRViewer(result)
    bundle = v._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "plotly" in bundle["text/html"].lower()
    from interp.viz.figures import find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium for kaleido: static export not testable here")
    paths = v.export(tmp_path / "thr", formats=("png",))
    assert paths[0].stat().st_size > 0


def test_result_frame_and_plot(result):
    df = result.to_frame(p=0.5)
    assert len(df) == sum(t.numel() for t in result.thr)
    assert set(df.columns) >= {"thr", "prob", "entropy", "weight", "dominant", "reward"}
    assert (df[df.group == 1].thr == 0).all()
    assert len(result.plot().data) == 2 and "THRResult" in result._repr_html_()
