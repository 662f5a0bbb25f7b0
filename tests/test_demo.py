"""The zoo smoke run behind `make demo`: live accuracies beside the card's."""

from __future__ import annotations

import pytest

from interp import zoo
from interp.app.demo import zoo_smoke_figure
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


def _png(path, width, height):
    from PIL import Image

    image = Image.new("RGBA", (width, height), (255, 255, 255, 255))
    for x in range(0, width, 7):  # some structure, so the thumbnail is not trivially one colour
        for y in range(0, height, 50):
            image.putpixel((x, y), (200, 30, 30, 255))
    image.save(path)


def test_gallery_thumbnails_keep_aspect_and_shrink_only_large_figures(tmp_path):
    from PIL import Image

    from interp.app.demo import write_gallery

    src = tmp_path / "figures"
    src.mkdir()
    _png(src / "big.png", 2025, 1050)
    _png(src / "small.png", 600, 300)
    written = write_gallery(src, tmp_path / "gallery", width_px=900, figures={"big": "a.png", "small": "b.png"})
    assert [p.name for p in written] == ["a.png", "b.png"]
    with Image.open(written[0]) as a, Image.open(written[1]) as b:
        assert a.size == (900, round(1050 * 900 / 2025))
        assert b.size == (600, 300)  # never enlarged
    assert written[0].stat().st_size < (src / "big.png").stat().st_size


def test_gallery_names_every_missing_figure(tmp_path):
    from interp.app.demo import write_gallery

    (tmp_path / "figures").mkdir()
    _png(tmp_path / "figures" / "there.png", 100, 50)
    with pytest.raises(FileNotFoundError, match="gone.png, also_gone.png"):
        write_gallery(tmp_path / "figures", tmp_path / "g",
                      figures={"there": "t.png", "gone": "x.png", "also_gone": "y.png"})
    assert not (tmp_path / "g").exists()  # nothing half-written


def test_readme_gallery_is_committed_small_and_shown():
    from pathlib import Path

    from interp.app.demo import GALLERY

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    for name in GALLERY.values():
        path = root / "docs" / "gallery" / name
        assert path.is_file(), f"{path} missing: run `make gallery` and commit docs/gallery"
        assert path.stat().st_size < 250_000, f"{name} is {path.stat().st_size} bytes; gallery PNGs stay small"
        assert f"docs/gallery/{name}" in readme, f"README.md does not show {name}"
