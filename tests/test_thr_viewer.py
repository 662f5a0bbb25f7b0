"""THRViewer: built headless from a synthetic THRResult; what each selection draws is checked against
the result's numbers recomputed by hand here (advantages, tau, weights), never through interp.thr.plots."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.thr import token_hidden_reward
from interp.thr.result import GRPOLog, THRResult

G = 4
REWARDS = [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # group 0 mixed, group 1 all equal (no signal)


@pytest.fixture()
def result():
    g = torch.Generator().manual_seed(0)
    V, d = 20, 6
    lengths = [5, 3, 4, 6, 2, 5, 5, 3]
    H = [torch.randn(n, d, generator=g) for n in lengths]
    L = [2 * torch.randn(n, V, generator=g) for n in lengths]
    Y = [torch.randint(0, V, (n,), generator=g) for n in lengths]
    r = torch.tensor(REWARDS)
    thr = token_hidden_reward(H, L, Y, r, group_size=G)
    logp = [torch.log_softmax(x, -1) for x in L]
    return THRResult(
        prompts=["first prompt", "second prompt"], completions=["c"] * 8, tokens=Y,
        token_text=[[f"t{int(t)}" for t in y] for y in Y], thr=thr,
        prob=[lp.gather(-1, y[:, None])[:, 0].exp() for lp, y in zip(logp, Y)],
        entropy=[-(lp.exp() * lp).sum(-1) for lp in logp], rewards=r, group_size=G,
    )


def _hand(result, group: int = 0, beta: float = 1.0):
    """By hand: correct = reward above the group's mean (positive advantage); tau = beta * max(0, min over
    correct responses of their mean THR); dominant = |THR| > tau."""
    idx = list(range(group * G, (group + 1) * G))
    mean = sum(REWARDS[i] for i in idx) / G
    correct = [i for i in idx if REWARDS[i] > mean]
    incorrect = [i for i in idx if REWARDS[i] < mean]
    tau = beta * max(0.0, min(float(result.thr[i].mean()) for i in correct)) if correct else 0.0
    return correct, incorrect, tau


def _weights(thr: np.ndarray, tau: float, p: float) -> np.ndarray:
    return np.where(np.abs(thr) > tau, 1.0 + p * np.sign(thr), 1.0)


def _z(v) -> np.ndarray:
    return np.array(v.fig.data[0].z, dtype=float)


def _rows_shown(v) -> list[int]:
    return [int(label.rsplit("#", 1)[1]) for label in v.fig.layout.yaxis.ticktext]


def _assert_rows(z: np.ndarray, result, rows: list[int], keep=None) -> None:
    width = max(result.thr[i].numel() for i in rows)
    assert z.shape == (len(rows), width)
    for r, i in enumerate(rows):
        t = result.thr[i].numpy().astype(float)
        expect = t if keep is None else np.where(keep(t), t, np.nan)
        np.testing.assert_allclose(z[r, : t.size], expect, rtol=1e-6)
        assert np.isnan(z[r, t.size:]).all()  # padding beyond the response is empty, not a value


def test_token_grid_is_the_groups_thr(result):
    from widgets import THRViewer

    v = THRViewer(result, p=0.5)
    assert v.group.value == 0  # opens on a group with mixed rewards
    assert [label for label, _ in v.group.options] == ["0", "1 (equal rewards)"]
    _assert_rows(_z(v), result, [0, 1, 2, 3])
    assert _rows_shown(v) == [0, 1, 2, 3]
    hm = v.fig.data[0]
    m = max(float(result.thr[i].abs().max()) for i in range(4))
    assert hm.zmid == 0 and hm.zmin == pytest.approx(-m) and hm.zmax == pytest.approx(m)  # symmetric around 0
    assert [list(r[: len(result.token_text[i])]) for r, i in zip(hm.text, range(4))] == result.token_text[:4]


def test_correct_and_incorrect_are_the_advantage_signs(result):
    from widgets import THRViewer

    correct, incorrect, _ = _hand(result)
    assert correct == [0, 2] and incorrect == [1, 3]
    v = THRViewer(result)
    v.which.value = "correct"
    assert _rows_shown(v) == correct
    _assert_rows(_z(v), result, correct)
    v.which.value = "incorrect"
    assert _rows_shown(v) == incorrect
    _assert_rows(_z(v), result, incorrect)
    # a group with equal (zero) rewards has no correct response, and all four are incorrect
    v.group.value = 1
    assert _rows_shown(v) == [4, 5, 6, 7]
    v.which.value = "correct"
    assert _rows_shown(v) == [] and _z(v).shape[0] == 0


def test_dominant_tokens_and_weights_follow_tau_and_p(result):
    from widgets import THRViewer

    correct, _, tau = _hand(result)
    v = THRViewer(result, p=0.5)
    v.dominant_only.value = True
    _assert_rows(_z(v), result, [0, 1, 2, 3], keep=lambda t: np.abs(t) > tau)
    n_dominant = int(np.isfinite(_z(v)).sum())
    assert 0 < n_dominant < sum(result.thr[i].numel() for i in range(4))  # the fixture has both kinds
    assert f"τ={tau:.3g}" in v.fig.layout.title.text

    for p in (0.5, -0.5):
        v.p.value = p
        w = np.array(v.fig.data[0].customdata, dtype=float)[..., 3]
        for r in range(4):
            t = result.thr[r].numpy().astype(float)
            np.testing.assert_allclose(w[r, : t.size], _weights(t, tau, p))
        assert f"p={p:+.2f}" in v.fig.data[0].hovertemplate


def test_histogram_and_training_views(result):
    from widgets import THRViewer

    log = GRPOLog(records=[dict(step=1.0, reward_mean=0.2, thr_density=0.3), dict(step=2.0, reward_mean=0.4, thr_density=0.2)])
    v = THRViewer(result, logs=log)
    correct, incorrect, _ = _hand(result)
    v.view.value = "histogram"
    traces = {t.name: t for t in v.fig.data}
    assert [t.type for t in v.fig.data] == ["histogram", "histogram"]
    np.testing.assert_allclose(traces["correct"].x, torch.cat([result.thr[i] for i in correct]).numpy(), rtol=1e-6)
    np.testing.assert_allclose(traces["incorrect"].x, torch.cat([result.thr[i] for i in incorrect]).numpy(), rtol=1e-6)
    v.view.value = "training"
    curves = {t.xaxis: list(t.y) for t in v.fig.data}
    assert curves == {"x": [0.2, 0.4], "x2": [0.3, 0.2]}
    assert list(v.fig.data[0].x) == [1.0, 2.0]


def test_viewer_has_a_static_fallback_and_exports(result, tmp_path):
    import re

    from static_html import static_figures
    from widgets import THRViewer
    from widgets._view import WIDGET_MIME

    v = THRViewer(result)
    v.which.value = "incorrect"
    bundle = v._repr_mimebundle_()
    assert WIDGET_MIME in bundle and bundle["text/plain"] == "THRViewer(2 groups x 4)"
    assert not re.search(r"<script[^>]*src=", bundle["text/html"])
    (shown,) = static_figures(bundle["text/html"])
    np.testing.assert_array_equal(np.array(shown["data"][0]["z"], dtype=float), _z(v))  # the view on screen
    assert "thr_density" in bundle["text/html"]  # with the batch statistics
    from interp.viz.figures import find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium for kaleido: static export not testable here")
    paths = v.export(tmp_path / "thr", formats=("png",))
    assert [p.name for p in paths] == ["thr.png"] and paths[0].stat().st_size > 0


def test_result_frame_and_plot(result):
    df = result.to_frame(p=0.5)
    assert len(df) == sum(t.numel() for t in result.thr)
    assert set(df.columns) >= {"thr", "prob", "entropy", "weight", "dominant", "reward"}
    assert (df[df.group == 1].thr == 0).all()
    assert result.active_groups == [0]
    assert len(result.plot().data) == 2 and "THRResult" in result._repr_html_()
