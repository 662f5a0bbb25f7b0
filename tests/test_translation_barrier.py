"""barrier_stats: Wilson intervals against an independent root-finding solution, the vectorised
takeover against ProbeReport.takeover_layer, and the shares against hand counts."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from interp.translation import ProbeReport
from interp.translation.barrier import barrier_stats, middle_layers, takeover_from_counts, wilson


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (37, 200), (1, 3520)])
def test_wilson_solves_the_score_equation(k, n):
    from scipy.optimize import brentq

    z = 1.96
    p_hat = k / n

    def score(p):  # the Wilson bounds are the p where the score statistic equals z
        return (p_hat - p) ** 2 - z * z * p * (1 - p) / n

    s = wilson(k, n, z)
    # the score equation has p_hat itself as a root when k is 0 or n: bracket the other root
    lo = 0.0 if k == 0 else brentq(score, 1e-12, min(p_hat, 1 - 1e-9))
    hi = 1.0 if k == n else brentq(score, max(p_hat, 1e-9), 1 - 1e-12)
    assert s.lo == pytest.approx(lo, abs=1e-9) and s.hi == pytest.approx(hi, abs=1e-9)
    assert s.value == pytest.approx(p_hat)


def test_wilson_rejects_bad_counts():
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson(5, 3)
    assert math.isnan(wilson(0, 0).value)


def test_middle_layers_are_fixed_by_depth():
    assert middle_layers(8) == [2, 3, 4, 5, 6]
    assert middle_layers(6) == [2, 3, 4]


def _row(src, tgt, langs, outcome, resource):
    return dict(pair=f"{src}-{tgt}", src=src, tgt=tgt, layer_languages=langs, outcome=outcome,
                target_resource=resource)


def _random_report(seed: int, n: int = 60, n_layers: int = 4) -> ProbeReport:
    rng = random.Random(seed)
    langs = ["en", "es", "fr", "sw", None]
    rows = []
    for _ in range(n):
        src, tgt = rng.sample(["es", "fr", "sw"], 2)
        # later layers lean to the target so that takeovers at various depths occur
        layer_langs = [tgt if rng.random() < i / n_layers else rng.choice(langs) for i in range(n_layers + 1)]
        rows.append(_row(src, tgt, layer_langs, rng.choice(["correct", "translation_failure", "task_failure"]),
                         "low" if tgt == "sw" else "high"))
    meta = dict(layers=list(range(n_layers + 1)), n_layers=n_layers, lens="logit")
    return ProbeReport(rows, meta)


@pytest.mark.parametrize("seed", range(12))
def test_takeover_point_estimate_is_the_reports(seed):
    report = _random_report(seed)
    stats = barrier_stats(report, n_boot=20, middle=[1, 2, 3])
    assert stats.takeover == report.takeover_layer()


def test_takeover_from_counts_by_hand():
    layers = [0, 1, 2, 3]
    on_target = np.array([[0, 1, 3, 4], [0, 5, 1, 4], [2, 2, 2, 1]])
    rival = np.array([[1, 2, 1, 0], [0, 1, 2, 0], [1, 1, 1, 3]])
    assert takeover_from_counts(on_target, rival, layers) == [2, 3, None]


def test_shares_match_hand_counts():
    rows = [
        _row("es", "sw", [None, "en", "en", "sw", "sw"], "correct", "low"),
        _row("es", "sw", [None, "es", None, "en", "en"], "translation_failure", "low"),
        _row("fr", "es", [None, None, None, "es", "es"], "correct", "high"),
        _row("fr", "es", [None, None, None, None, "fr"], "task_failure", "high"),
        _row("en", "es", [None, "en", "en", "en", "es"], "correct", "high"),  # a pivot pair: left out
    ]
    report = ProbeReport(rows, dict(layers=[0, 1, 2, 3, 4], n_layers=4, lens="logit"))
    s = barrier_stats(report, n_boot=50)
    assert s.n_examples == 4 and s.middle == [1, 2, 3]
    assert (s.pivot_in_middle.k, s.pivot_in_middle.n) == (2, 4)
    # English in a middle layer: both low-target examples, neither high-target one
    assert {lvl: (x.k, x.n) for lvl, x in s.pivot_in_middle_by_target.items()} == {"high": (0, 2), "low": (2, 2)}
    assert [x.k for x in s.pivot_by_layer] == [0, 1, 1, 1, 1]
    assert [x.k for x in s.target_by_layer] == [0, 0, 0, 2, 2]
    assert s.outcomes["low"]["translation_failure"].k == 1 and s.outcomes["low"]["translation_failure"].n == 2
    assert (s.translation_failure_share["all"].k, s.translation_failure_share["all"].n) == (1, 2)
    assert s.takeover == report.takeover_layer(rows[:4])
    # target in 0, 0, 0, 2, 2 of 4 examples by layer: never more than half, so no majority layer
    assert s.majority is None
    assert s.to_frame().shape[0] == 4 * 3 + 3  # (all, high, low) x 4 outcomes + the 3 failure shares
    assert "BarrierStats" in s._repr_html_() and "takeover" in repr(s)
    assert len(s.plot().data) == 4


def test_majority_layer_is_the_first_of_the_final_run_above_half():
    # 4 examples; target share by layer: 0, 3/4, 1/4, 3/4, 4/4 -> majority from layer 3 (layer 1 is cut off)
    langs = [
        [None, "sw", None, "sw", "sw"],
        [None, "sw", "sw", "sw", "sw"],
        [None, "sw", None, "sw", "sw"],
        [None, None, None, "en", "sw"],
    ]
    rows = [_row("es", "sw", l, "correct", "low") for l in langs]
    s = barrier_stats(ProbeReport(rows, dict(layers=[0, 1, 2, 3, 4], n_layers=4, lens="logit")), n_boot=100)
    assert s.majority == 3
    assert s.takeover == 1  # relative: one target decoding beats no rival, so it "takes over" early
    assert s.majority_ci[0] is not None and s.majority_ci[0] <= 3 <= (s.majority_ci[1] or 5)
    assert "majority" in repr(s) and s.to_dict()["majority_layer"] == 3


def test_bootstrap_interval_covers_the_point_and_is_seeded():
    report = _random_report(3, n=200)
    a = barrier_stats(report, n_boot=200, seed=1, middle=[1, 2])
    b = barrier_stats(report, n_boot=200, seed=1, middle=[1, 2])
    assert a.takeover_ci == b.takeover_ci and a.takeover_bootstrap == b.takeover_bootstrap
    never = report.meta["n_layers"] + 1
    lo, hi = (never if v is None else v for v in a.takeover_ci)
    point = never if a.takeover is None else a.takeover
    assert lo <= point <= hi
    assert sum(a.takeover_bootstrap.values()) == pytest.approx(1.0, abs=1e-3)


def test_errors_are_clear():
    report = ProbeReport([_row("en", "es", [None, "en"], "correct", "high")], dict(layers=[0, 1], n_layers=1))
    with pytest.raises(ValueError, match="no example without the pivot"):
        barrier_stats(report)
    report = _random_report(0)
    with pytest.raises(ValueError, match="were not inspected"):
        barrier_stats(report, middle=[9])
