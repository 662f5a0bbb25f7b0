"""The notebooks as a user meets them: a real JupyterLab, driven by a real (system) Chromium.

For each notebook: open it, run all cells, check every widget rendered (no "Error displaying
widget", nothing left "Loading widget...", a plotly graph on the page, no traceback), then use each
widget the way a person would (choose another item in a selector, move a slider) and check that
the view changed. Screenshots per notebook go to ``out/screenshots/``: ``NAME.png`` as the widget
first renders and ``NAME_after_interaction.png``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

from interp.app.notebooks import inject_parameters
from tests.browser.lab import (
    PLOT_STATE, find_chromium, lab_session, open_notebook, page_problems, run_all_cells, wait_widget_plots_drawn,
    wait_widgets_rendered,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SCREENSHOTS = ROOT / "out" / "screenshots"

try:
    import playwright.sync_api  # noqa: F401

    _HAVE_PLAYWRIGHT = True
except ImportError:  # pragma: no cover
    _HAVE_PLAYWRIGHT = False

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(find_chromium() is None, reason="no system Chromium (apt-get install chromium)"),
    pytest.mark.skipif(not _HAVE_PLAYWRIGHT, reason="playwright is not installed"),
]

# Small budgets so all four notebooks run in a few minutes (the same ones the notebook tests use).
from tests.browser.budgets import BUDGETS  # noqa: E402

VIEW_STATE = f"""() => JSON.stringify([({PLOT_STATE})(),
    [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText).join('|')])"""


def _wait_changed(page, before: str, what: str, timeout_ms: int = 30_000) -> None:
    try:
        page.wait_for_function(f"() => ({VIEW_STATE})() !== {json.dumps(before)}", timeout=timeout_ms)
    except Exception as err:  # playwright TimeoutError
        raise AssertionError(f"the view did not change after {what}") from err


def _some_selection_changes_view(page, selects, max_selects: int = 4, max_options: int = 3) -> bool:
    """Choose other items the way a user would, selector by selector, until the view changes.

    A filter selector (say, "pair") may legitimately keep the same item on screen for some
    choices, so one unchanged view is no failure; no change for any choice of any selector is.
    """
    for i in range(min(selects.count(), max_selects)):
        select = selects.nth(i)
        current = select.input_value()
        values = select.locator("option").evaluate_all("els => els.map(e => e.value)")
        for value in [v for v in values if v != current][:max_options]:
            before = page.evaluate(VIEW_STATE)
            select.select_option(value)
            try:
                # 20 s: on a loaded machine a redraw can take over 10 s; a dead view still never changes
                _wait_changed(page, before, "choosing another item", timeout_ms=20_000)
                return True
            except AssertionError:
                continue
    return False


def _screenshot(page, path: Path) -> None:
    # JupyterLab scrolls inside the notebook panel: show the first widget holding a plot (not a
    # progress bar, which is a widget too), not the end of the notebook.
    views = page.locator(".jp-OutputArea-output .jupyter-widgets:has(.js-plotly-plot)")
    if views.count():
        views.first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)


def _prepare(tmp_path: Path) -> list[Path]:
    prepared = []
    for nb_path in NOTEBOOKS:
        nb = nbformat.read(nb_path, as_version=4)
        params = dict(BUDGETS.get(nb_path.name, {}))
        params["OUT_DIR"] = str(tmp_path / "figures")
        inject_parameters(nb, params)
        target = tmp_path / "src" / nb_path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        prepared.append(target)
    return prepared


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
def test_notebooks_render_and_respond_in_jupyterlab(tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    failures: dict[str, list[str]] = {}
    timings: dict[str, float] = {}
    with lab_session(_prepare(tmp_path), tmp_path / "lab") as (server, browser):
        for nb_path in NOTEBOOKS:
            name = nb_path.name
            problems: list[str] = []
            page = browser.new_page(viewport={"width": 1500, "height": 1300})
            start = time.perf_counter()
            open_notebook(page, server, name)
            run_all_cells(page)
            try:
                page.wait_for_selector(".js-plotly-plot", timeout=60_000)
            except Exception:
                problems.append("no plotly graph on the page")
            # Widgets take a moment to render after the kernel goes idle.
            if not wait_widgets_rendered(page):
                problems.append("widget outputs still without a rendered view after 60 s")
            empty = wait_widget_plots_drawn(page)
            if empty:
                problems.append(f"{empty} plot(s) inside widgets still without traces after 60 s (a blank chart)")
            problems += page_problems(page)
            if page.locator(".jupyter-widgets").count() == 0:
                problems.append("no widget rendered")
            _screenshot(page, SCREENSHOTS / f"{nb_path.stem}.png")  # as it first renders

            selects = page.locator(".jp-OutputArea-output .widget-dropdown select")
            if selects.count() == 0:
                problems.append("no selector to interact with")
            elif not _some_selection_changes_view(page, selects):
                problems.append("the view did not change after choosing another item in any selector")

            sliders = page.locator(".jp-OutputArea-output .widget-slider .noUi-handle")
            if sliders.count():
                before = page.evaluate(VIEW_STATE)
                handle = sliders.first
                handle.focus()
                for _ in range(3):
                    handle.press("ArrowRight")
                    page.wait_for_timeout(200)
                handle.press("End")
                try:
                    _wait_changed(page, before, "moving the slider")
                except AssertionError as err:
                    problems.append(str(err))
            _screenshot(page, SCREENSHOTS / f"{nb_path.stem}_after_interaction.png")
            timings[name] = time.perf_counter() - start
            page.close()
            server.shutdown_kernels()
            if problems:
                failures[name] = problems
    print("browser timings (s):", {k: round(v, 1) for k, v in timings.items()})
    assert not failures, failures
