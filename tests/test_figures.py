"""Paper template and static export: files exist, are valid, and have the requested size."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import plotly.graph_objects as go
import pytest

from interp.viz import figures
from interp.viz.figures import FigureExportError, export, export_many, find_chromium, paper_layout

needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="no Chromium installed (make installs Debian's)")


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_paper_layout_sizes_in_physical_units():
    fig = paper_layout(go.Figure(go.Scatter(y=[1, 2])), "double", height_in=2.0, font_pt=9)
    assert fig.layout.width == round(6.75 * 96) and fig.layout.height == round(2.0 * 96)
    assert fig.layout.font.size == pytest.approx(9 * 96 / 72)
    assert paper_layout(go.Figure(), 4.0).layout.width == 384
    with pytest.raises((ValueError, KeyError)):
        paper_layout(go.Figure(), "triple")


@needs_chromium
def test_export_writes_valid_files(tmp_path):
    fig = paper_layout(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])), "single")
    paths = export(fig, tmp_path / "heat.pdf", png_scale=2)  # the suffix is ignored
    assert sorted(p.suffix for p in paths) == [".pdf", ".png", ".svg"]
    pdf, png, svg = (tmp_path / f"heat.{s}" for s in ("pdf", "png", "svg"))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert ET.parse(svg).getroot().tag.endswith("svg")
    assert _png_size(png) == (fig.layout.width * 2, fig.layout.height * 2)


@needs_chromium
def test_export_many_one_browser_start(tmp_path):
    figs = [(paper_layout(go.Figure(go.Bar(y=[i, 1])), "single"), tmp_path / f"f{i}") for i in range(3)]
    paths = export_many(figs, formats=("png",), png_scale=1)
    assert [p.name for p in paths] == ["f0.png", "f1.png", "f2.png"]
    assert all(_png_size(p) == (312, round(3.25 * 0.72 * 96)) for p in paths)


def test_export_without_chromium_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "find_chromium", lambda: None)
    with pytest.raises(FigureExportError, match="apt-get install chromium"):
        export(go.Figure(), tmp_path / "x")


def test_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="Unknown figure format"):
        figures._targets(tmp_path / "x", ["jpeg"])


def test_export_drops_only_the_browser_pipes_ignored_message(caplog):
    """choreographer's 'JSONError decoding message. Ignoring' traceback (a message it skips) is dropped while
    we export; any other record of that logger still reaches the user, and nothing is dropped afterwards."""
    import logging

    pytest.importorskip("choreographer.channels.pipe")  # makes its logger: a plain one made first breaks it
    from interp.viz.figures import _quiet_browser_pipe

    logger = logging.getLogger("choreographer.channels.pipe")
    with caplog.at_level(logging.INFO, logger="choreographer.channels.pipe"):
        with _quiet_browser_pipe():
            logger.error("JSONError decoding message. Ignoring")
            logger.error("Error in trying to decode JSON off our read.")
        logger.error("JSONError decoding message. Ignoring")
    assert [r.getMessage() for r in caplog.records] == ["Error in trying to decode JSON off our read.",
                                                        "JSONError decoding message. Ignoring"]
