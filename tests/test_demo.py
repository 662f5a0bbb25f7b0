"""The zoo smoke run behind `make demo`: live accuracies beside the card's."""

from __future__ import annotations

import pytest

from interp import zoo
from interp.demo import zoo_smoke_figure
from interp.zoo import tasks


def test_zoo_smoke_figure_shows_every_task_live_and_from_the_card():
    fig = zoo_smoke_figure("toy-lm", n_items=10)
    live, card = fig.data
    assert list(live.x) == list(tasks.TASKS) == list(card.x)
    recorded = zoo.card("toy-lm")["evaluation"]["accuracy"]
    assert list(card.y) == [recorded[t] for t in tasks.TASKS]
    assert all(0.0 <= y <= 1.0 for y in live.y)
    # Measured now on 10 items: each live value is a multiple of 1/10, i.e. really measured here.
    assert all(abs(y * 10 - round(y * 10)) < 1e-9 for y in live.y)
    assert live.y[tasks.TASKS.index("successor")] == pytest.approx(1.0, abs=0.3)
