"""The notebooks as a user meets them: a real JupyterLab 4 and a real Notebook 7, driven by a real
(system) Chromium.

For each notebook: open it in JupyterLab, run all cells, check every widget rendered (no "Error
displaying widget", nothing left "Loading widget...", a plotly graph on the page, no blank figure in a
widget view, no traceback), then use each widget the way a person would (choose another item in a
selector, move a slider) and check that the view changed. The notebook, saved, is then exported to
HTML (``interp.app.notebooks.notebook_html``) and opened with the network cut: every widget's static
figure must draw and the page may ask no CDN for anything. Then Notebook 7 opens the same notebook on
the same kernel (as a user switching front-ends does; the cells are not run a second time, which would
double the test's time), and the same checks and interactions run there. A small notebook of two-pane
widgets is run from scratch in each front-end, with plotly's widget module made slow on purpose.
Screenshots go to ``out/screenshots/``: ``NAME[_nb7].png`` as the widgets first render and
``NAME[_nb7]_after_interaction.png``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from interp.app.notebooks import inject_parameters, notebook_html
from browser.lab import (
    PLOT_STATE, app_name_and_version, find_chromium, lab_session, open_notebook, page_problems, run_all_cells,
    wait_widgets_rendered,
)
from static_html import widget_figure_ids

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
from browser.budgets import BUDGETS  # noqa: E402

# front-end -> (what window.jupyterapp must say it is, its major version, screenshot suffix)
FRONTENDS = {"lab": ("JupyterLab", "4", ""), "notebook": ("Jupyter Notebook", "7", "_nb7")}


# Notebooks whose page still asks a CDN for something at run time, and why (their own code, not the
# widgets': panes load plotly's module from the kernel). Offline the figures still draw (the front-end
# renders plotly's mime type itself); the fix is a line in the notebook, and the test fails on any
# other notebook that asks, or on one listed here that no longer does.
CDN_AT_RUN_TIME: dict[str, str] = {}


def _check_app(page, frontend: str) -> None:
    name, version = app_name_and_version(page)
    want, major, _ = FRONTENDS[frontend]
    assert (name, version.split(".")[0]) == (want, major), f"the page runs {name} {version}, not {want} {major}"

VIEW_STATE = f"""() => JSON.stringify([({PLOT_STATE})(),
    [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText).join('|')])"""

# Every plotly graph inside a widget view, with the prompt of its cell and its number of traces: a
# graph with none is a blank chart (a pane whose frontend model missed its content).
WIDGET_PLOTS = """() => [...document.querySelectorAll('.jp-OutputArea-output > .jupyter-widgets')].flatMap(v => {
    const cell = v.closest('.jp-Cell');
    const prompt = cell && cell.querySelector('.jp-InputArea-prompt');
    return [...v.querySelectorAll('.js-plotly-plot')].map(p => [prompt ? prompt.innerText.trim() : '?',
                                                               (p.data || []).length]);
})"""


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


def _blank_figures(page, timeout_ms: int = 30_000) -> list[str]:
    """Cells whose widget view holds a plotly graph without traces, once the views had ``timeout_ms``
    to fill (polled: a busy machine draws late, a view that missed its content never does)."""
    try:
        page.wait_for_function(f"() => ({WIDGET_PLOTS})().every(([, n]) => n > 0)", timeout=timeout_ms, polling=500)
        return []
    except Exception:  # playwright TimeoutError
        return sorted({prompt for prompt, n in page.evaluate(WIDGET_PLOTS) if n == 0})


def _screenshot(page, path: Path) -> None:
    # The notebook scrolls inside its panel: show the first widget holding a plot (not a progress
    # bar, which is a widget too), not the end of the notebook.
    views = page.locator(".jp-OutputArea-output .jupyter-widgets:has(.js-plotly-plot)")
    if views.count():
        views.first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)


def drive_notebook(page, server, name: str, shots: Path, frontend: str = "lab", run: bool = True) -> list[str]:
    """Open notebook ``name`` in ``frontend``, run its cells (``run``; else it joins the running kernel and
    shows the saved outputs) and use its widgets; what a user would see broken."""
    problems: list[str] = []
    asked: list[str] = []  # what the page fetched from anywhere but the Jupyter server (a CDN, say)
    page.on("request", lambda r: None if r.url.startswith((server.base, "data:", "blob:")) else asked.append(r.url))
    open_notebook(page, server, name, frontend=frontend)
    _check_app(page, frontend)
    if run:
        run_all_cells(page)
    try:
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    except Exception:
        problems.append("no plotly graph on the page")
    # Widgets take a moment to render after the kernel goes idle.
    if not wait_widgets_rendered(page):
        problems.append("widget outputs still without a rendered view after 60 s")
    problems += page_problems(page)
    if page.locator(".jupyter-widgets").count() == 0:
        problems.append("no widget rendered")
    blank = _blank_figures(page)
    if blank:
        problems.append(f"blank figure (a plotly graph with no trace) in the widget view of cell(s) {', '.join(blank)}")
    _screenshot(page, shots.with_suffix(".png"))  # as it first renders

    selects = page.locator(".jp-OutputArea-output .widget-dropdown select")
    if selects.count() == 0:
        problems.append("no selector to interact with")
    elif not _some_selection_changes_view(page, selects):
        problems.append("the view did not change after choosing another item in any selector")

    sliders = page.locator(".jp-OutputArea-output .widget-slider .noUi-handle")
    if sliders.count():
        before = page.evaluate(VIEW_STATE)
        handle = sliders.first
        # towards the far end: a slider a user already moved to its maximum (in the other front-end,
        # on the same kernel) goes back to its minimum
        now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
        at_max = now is not None and now == top
        step, end = ("ArrowLeft", "Home") if at_max else ("ArrowRight", "End")
        handle.focus()
        for _ in range(3):
            handle.press(step)
            page.wait_for_timeout(200)
        handle.press(end)
        try:
            _wait_changed(page, before, "moving the slider")
        except AssertionError as err:
            problems.append(str(err))
    _screenshot(page, shots.with_name(shots.name + "_after_interaction.png"))
    known = CDN_AT_RUN_TIME.get(name)
    if asked and not known:
        problems.append(f"asked the network at run time for {sorted(set(asked))[:5]}")
    elif known and not asked:
        problems.append(f"no longer asks the network at run time ({known}): drop it from CDN_AT_RUN_TIME")
    return problems


DRAWN = """(ids) => ids.filter(id => { const d = document.getElementById(id);
    return !(d && d.querySelector('.main-svg') && (d.data || []).length); })"""


# What a page fetches from the network whatever it holds: an external script or style sheet, a static
# module import (a dynamic import runs only when its code asks, e.g. nbconvert's mermaid loader for
# diagrams; the offline load below catches any that does).
EXTERNAL = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//[^"'>\s]+|\bimport\s*["'](?:https?:)?//[^"']+""")


def save(page) -> None:
    page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:save'); }")


def exported_html_problems(browser, server, name: str, out: Path) -> list[str]:
    """Export notebook ``name`` as saved to HTML and open that offline: every interp widget's static
    figure must draw, and nothing may be asked of the network (no CDN script, style sheet or import)."""
    nb = nbformat.read(server.root / name, as_version=4)
    ids = widget_figure_ids(nb)
    if not ids:
        return ["exported HTML: the saved notebook holds no static figure of an interp widget"]
    html = out / (Path(name).stem + ".html")
    page_html = notebook_html(nb)
    html.write_text(page_html, encoding="utf-8")
    asked: list[str] = sorted({m.group(0)[-90:] for m in EXTERNAL.finditer(page_html)})
    offline = browser.new_page()  # a new context: nothing cached
    try:
        def cut(route):
            if route.request.url.startswith("file:"):
                route.continue_()
            else:
                asked.append(route.request.url)
                route.abort()

        offline.route("**/*", cut)
        offline.goto(html.as_uri(), wait_until="load", timeout=120_000)
        wanted = [i for widget_ids in ids.values() for i in widget_ids]
        try:
            offline.wait_for_function(f"() => ({DRAWN})({json.dumps(wanted)}).length === 0", timeout=60_000, polling=500)
            undrawn = []
        except Exception:  # playwright TimeoutError
            undrawn = offline.evaluate(DRAWN, wanted)
    finally:
        offline.close()
    problems = []
    if undrawn:
        which = sorted(w for w, widget_ids in ids.items() if set(widget_ids) & set(undrawn))
        problems.append(f"exported HTML: {len(undrawn)} of {len(wanted)} static figures of {which} not drawn offline")
    if asked:
        problems.append(f"exported HTML asks the network for {sorted(set(asked))[:5]}")
    return problems


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


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    """One ``jupyter lab`` server (serving Notebook 7 too) and one Chromium for this module's tests."""
    with lab_session([], tmp_path_factory.mktemp("jupyter")) as session:
        yield session


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
def test_notebooks_render_and_respond_in_jupyterlab_and_notebook7(tmp_path, jupyter):
    server, browser = jupyter
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    failures: dict[str, list[str]] = {}
    timings: dict[str, dict[str, float]] = {}
    for prepared in _prepare(tmp_path):
        shutil.copy(prepared, server.root / prepared.name)
    for nb_path in NOTEBOOKS:
        name, seconds = nb_path.name, {}
        start = time.perf_counter()
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        problems = drive_notebook(page, server, name, SCREENSHOTS / nb_path.stem)
        save(page)
        page.close()
        seconds["lab"] = time.perf_counter() - start
        problems += exported_html_problems(browser, server, name, tmp_path)
        seconds["html"] = time.perf_counter() - start - seconds["lab"]
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        problems += [f"Notebook 7: {p}" for p in drive_notebook(
            page, server, name, SCREENSHOTS / f"{nb_path.stem}_nb7", frontend="notebook", run=False)]
        page.close()
        seconds["nb7"] = time.perf_counter() - start - seconds["lab"] - seconds["html"]
        server.shutdown_kernels()
        timings[name] = {k: round(v, 1) for k, v in seconds.items()}
        if problems:
            failures[name] = problems
    print("browser timings (s):", timings)
    assert not failures, "\n".join(f"{name}: {problem}" for name, problems in failures.items() for problem in problems)


# plotly's FigureWidget module is 5 MB of JavaScript; anywidget gives a model's module 2 s to load and
# initialise and then drops every later message, so on a busy machine a pane drew blank and never
# redrew. This makes the module slow on purpose (3 s of a blocked main thread while its source is
# turned into a URL, as a compile on a loaded machine would) and checks that panes still draw and redraw.
SLOW_MODULE = """{ const url = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (obj) => {
    if (obj instanceof Blob && obj.size > 1e6) { const end = Date.now() + 3000; while (Date.now() < end) {} }
    return url(obj);
  };
}"""

TWO_PANES = '''
import ipywidgets as W
import plotly.graph_objects as go
from widgets._view import FigureView, Pane, fill

class TwoPanes(FigureView):
    def __init__(self):
        self.panes = {"bars": Pane(), "line": Pane()}
        self.item = W.Dropdown(options=["a", "b", "c"], value="a", description="item")
        self.item.observe(lambda change: self.draw(), "value")
        self.draw()
        self.widget = W.VBox([self.item, *self.panes.values()])

    def draw(self):
        k = "abc".index(self.item.value)
        fill(self.panes["bars"], go.Figure(go.Bar(y=[1, 2, 3 + k])))
        fill(self.panes["line"], go.Figure(go.Scatter(y=[k, 1, 0])))

TwoPanes()
'''


@pytest.mark.parametrize("frontend", list(FRONTENDS), ids=["jupyterlab4", "notebook7"])
def test_panes_draw_and_respond_when_plotlys_module_loads_slowly(jupyter, frontend):
    server, browser = jupyter
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell(TWO_PANES), nbformat.v4.new_code_cell("TwoPanes()")]
    name = f"two_panes_{frontend}.ipynb"  # a notebook per front-end: each runs its own kernel from scratch
    nbformat.write(nb, server.root / name)
    page = browser.new_page(viewport={"width": 1200, "height": 1300})
    page.add_init_script(SLOW_MODULE)
    asked: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((server.base, "data:", "blob:")) else asked.append(r.url))
    try:
        open_notebook(page, server, name, frontend=frontend)
        _check_app(page, frontend)
        run_all_cells(page)
        assert wait_widgets_rendered(page), "widget outputs still without a rendered view after 60 s"
        assert not page_problems(page)
        blank = _blank_figures(page)
        plots = page.evaluate(WIDGET_PLOTS)
        assert not blank, f"blank panes in cell(s) {blank} after plotly's module loaded late: {plots}"
        assert len(plots) == 4, plots  # two views of two panes each
        selects = page.locator(".jp-OutputArea-output .widget-dropdown select")
        for i in range(selects.count()):
            before = page.evaluate(VIEW_STATE)
            selects.nth(i).select_option("c")
            _wait_changed(page, before, f"choosing another item in widget {i + 1}")
        assert not asked, f"the widgets asked the network at run time for {sorted(set(asked))[:5]}"  # no CDN
    finally:
        page.close()
        server.shutdown_kernels()
