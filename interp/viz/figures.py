"""Paper-ready plotly figures: a layout template in physical units and static export to PDF, SVG
and PNG through kaleido and a system Chromium (one browser start for a batch).

Sizes: plotly lays out in CSS pixels (96 per inch) and kaleido writes PDF/SVG pages of that size,
so a single-column figure is 3.25 in = 312 px wide and an 8 pt font is 8 * 96 / 72 px.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import plotly.graph_objects as go
import plotly.io as pio

from interp.core.errors import InterpConfigError
from interp.core.validate import Check

__all__ = [
    "ColumnWidth",
    "Format",
    "FigureExportError",
    "FigureConfigError",
    "PAPER",
    "paper_layout",
    "export",
    "export_many",
    "find_chromium",
    "wrap_title",
]

ColumnWidth = Literal["single", "double"]
Format = Literal["png", "pdf", "svg"]
FORMATS: tuple[Format, ...] = ("png", "pdf", "svg")

PX_PER_INCH = 96.0
PX_PER_POINT = PX_PER_INCH / 72.0

PAPER = {
    # Column widths of common two-column venues (ICML/NeurIPS/ACL are all ~3.25 in / ~6.75 in).
    "single_in": 3.25,
    "double_in": 6.75,
    "font_pt": 8.0,
    "title_pt": 9.0,
    "font_family": "DejaVu Sans, Arial, Helvetica, sans-serif",
    "aspect": 0.72,
    "png_dpi": 300,
}

_DEFAULT_SIZE = (700, 500)  # plotly's own default, in px
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class FigureConfigError(InterpConfigError):
    """A figure-layout argument that cannot work (an unknown column width, a non-positive size)."""


class FigureExportError(RuntimeError):
    """Static export failed; the message says how to fix it (usually: install a Chromium)."""


def _px(inches: float) -> int:
    return int(round(inches * PX_PER_INCH))


def paper_layout(
    fig: go.Figure,
    width: ColumnWidth | float = "single",
    *,
    height_in: float | None = None,
    font_pt: float | None = None,
) -> go.Figure:
    """Apply the paper template in place and return the figure.

    Args:
        width: ``"single"`` (3.25 in), ``"double"`` (6.75 in) or a width in inches.
        height_in: height in inches; default ``width * 0.72``.
        font_pt: base font size in points (8 by default; titles one point larger).

    >>> import plotly.graph_objects as go
    >>> fig = paper_layout(go.Figure(go.Scatter(y=[1, 3, 2])), "single")
    >>> fig.layout.width
    312
    """
    c = Check("paper_layout", FigureConfigError)
    if not isinstance(fig, go.Figure):
        c.fail("fig", fig, "a plotly go.Figure")
    if isinstance(width, str):
        if width not in ("single", "double"):
            raise FigureConfigError(f"width must be 'single', 'double' or inches, not {width!r}")
        width_in = PAPER[f"{width}_in"]
    else:
        width_in = c.number("width", width, gt=0, fix="'single' (3.25 in), 'double' (6.75 in) or a width in inches.")
    c.number("height_in", height_in, gt=0, optional=True)
    c.number("font_pt", font_pt, gt=0, optional=True)
    height_in = height_in if height_in is not None else width_in * PAPER["aspect"]
    base = (font_pt or PAPER["font_pt"]) * PX_PER_POINT
    fig.update_layout(
        template="simple_white",
        width=_px(width_in),
        height=_px(height_in),
        font=dict(family=PAPER["font_family"], size=base, color="black"),
        title_font=dict(size=base * PAPER["title_pt"] / PAPER["font_pt"]),
        margin=dict(l=int(6 * base), r=int(2 * base), t=int(3 * base), b=int(5 * base)),
        legend=dict(font=dict(size=base * 0.9)),
    )
    return fig


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome kaleido can drive: ``BROWSER_PATH`` first, then the usual names."""
    explicit = os.environ.get("BROWSER_PATH")
    if explicit and Path(explicit).exists():
        return explicit
    for name in _BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _require_chromium() -> str:
    path = find_chromium()
    if path is None:
        raise FigureExportError(
            "Static figure export (PDF/SVG/PNG) needs a Chromium browser and none was found. "
            "Install one: `sudo apt-get install chromium` (Debian/Ubuntu), `brew install --cask chromium` "
            "(macOS), or `plotly_get_chrome` where a network exists; or point BROWSER_PATH at an existing "
            "Chrome/Chromium binary. Interactive figures work without it."
        )
    # choreographer (kaleido's browser driver) reads BROWSER_PATH.
    os.environ["BROWSER_PATH"] = path
    return path


class _DropIgnoredPipeNoise(logging.Filter):
    """choreographer (kaleido's browser driver) logs a traceback when one message on its pipe from the
    browser does not decode, then ignores the message and carries on. It reaches the user as a
    frightening stderr block in a cell whose export succeeded (and whose files are checked below), so it
    is dropped, only while we export; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "JSONError decoding message. Ignoring"


@contextlib.contextmanager
def _quiet_browser_pipe():
    name = "choreographer.channels.pipe"
    try:  # its module makes the logger (a logistro subclass): a plain one made here first would break it
        importlib.import_module(name)
    except ImportError:  # no kaleido browser driver, nothing to quiet
        yield
        return
    logger = logging.getLogger(name)
    noise = _DropIgnoredPipeNoise()
    logger.addFilter(noise)
    try:
        yield
    finally:
        logger.removeFilter(noise)


def _targets(path: str | os.PathLike[str], formats: Sequence[str]) -> list[Path]:
    base = Path(path)
    if base.suffix.lstrip(".") in FORMATS:
        base = base.with_suffix("")
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"Unknown figure format(s) {bad}; choose from {FORMATS}.")
    if not formats:
        raise ValueError("formats is empty; ask for at least one of png, pdf, svg.")
    base.parent.mkdir(parents=True, exist_ok=True)
    return [base.with_suffix(f".{f}") for f in formats]


def export_many(
    items: Iterable[tuple[go.Figure, str | os.PathLike[str]]],
    *,
    formats: Sequence[Format] = FORMATS,
    png_scale: float | None = None,
) -> list[Path]:
    """Write several figures, each in every format, with one browser start.

    A path's suffix is ignored: ``out/fig1`` writes ``out/fig1.png``, ``.pdf`` and ``.svg``.
    PNGs are rendered at ``png_scale`` times the layout size (default: 300 dpi, i.e. 3.125x), so a
    312 px wide single-column figure becomes a 975 px wide PNG.
    Returns the written paths.
    """
    items = list(items)
    if not items:
        return []
    _require_chromium()
    scale = png_scale if png_scale is not None else PAPER["png_dpi"] / PX_PER_INCH
    figs, files, fmts, scales, widths, heights = [], [], [], [], [], []
    for fig, path in items:
        for target in _targets(path, formats):
            figs.append(fig)
            # write_images ignores the layout's size unless it is passed explicitly.
            widths.append(fig.layout.width or _DEFAULT_SIZE[0])
            heights.append(fig.layout.height or _DEFAULT_SIZE[1])
            files.append(target)
            fmt = target.suffix.lstrip(".")
            fmts.append(fmt)
            scales.append(scale if fmt == "png" else 1)
    try:
        with _quiet_browser_pipe():
            pio.write_images(figs, files, format=fmts, scale=scales, width=widths, height=heights)
    except Exception as err:  # kaleido wraps browser failures in several exception types
        raise FigureExportError(
            f"Figure export through kaleido failed ({type(err).__name__}: {err}). The browser used was "
            f"{find_chromium()!r}; set BROWSER_PATH to another Chromium if this one cannot run headless."
        ) from err
    missing = [f for f in files if not f.exists() or f.stat().st_size == 0]
    if missing:
        raise FigureExportError(f"kaleido reported success but did not write {missing}.")
    return files


def export(
    fig: go.Figure,
    path: str | os.PathLike[str],
    *,
    formats: Sequence[Format] = FORMATS,
    png_scale: float | None = None,
) -> list[Path]:
    """Write one figure as PDF, SVG and PNG (or the ``formats`` asked for).

    >>> import plotly.graph_objects as go
    >>> from interp.viz.figures import export, paper_layout
    >>> fig = paper_layout(go.Figure(go.Bar(y=[1, 2])))
    >>> paths = export(fig, "out/bars")  # doctest: +SKIP  (needs a Chromium)
    """
    return export_many([(fig, path)], formats=formats, png_scale=png_scale)


def wrap_title(text: str, width: int = 42) -> str:
    """``text`` broken into lines of at most about ``width`` characters with ``<br>`` (plotly does not wrap
    titles, so a long one runs off a single-column figure)."""
    import textwrap

    return "<br>".join(textwrap.wrap(text, width)) or text
