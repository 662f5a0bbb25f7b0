"""Drive a real JupyterLab 4 and Notebook 7 with Debian's Chromium through Playwright, the way a user
meets interp.

``LabServer`` starts ``jupyter lab`` on loopback (free port, token, no browser, temporary config,
settings and workspace folders) over a copy of the notebooks; with the notebook package installed the
same server serves Notebook 7 at ``/notebooks/`` (``FRONTENDS``). Notebooks open in a headless Chromium
(the system one: Playwright's own browser download is impossible offline). Both front-ends expose
``window.jupyterapp`` (a JupyterLab application whose ``shell.currentWidget`` is the notebook panel),
so the same page scripts drive either.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


# front-end -> (URL of a notebook, its server extension's application class)
FRONTENDS: dict[str, tuple[str, str]] = {
    "lab": ("lab/workspaces/{workspace}/tree/{name}", "LabApp"),
    "notebook": ("notebooks/{name}", "JupyterNotebookApp"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``jupyter lab``, serving JupyterLab and Notebook 7 pages."""

    def __init__(self, root: Path, work: Path):
        self.root = root
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        for sub in ("config", "data", "runtime", "settings", "workspaces"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        # No "news" or update pop-ups: they cover the page and would ask the network.
        notify = work / "settings" / "@jupyterlab" / "apputils-extension"
        notify.mkdir(parents=True, exist_ok=True)
        (notify / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        # Every cell stays in the DOM and rendered (no windowing), so the checks see every widget,
        # not only those near the viewport.
        tracker = work / "settings" / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True, exist_ok=True)
        (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(work / "config"),
            JUPYTER_RUNTIME_DIR=str(work / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(work / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"),
            HF_HUB_OFFLINE="1",
        )
        # The kernel must be the project's interpreter (the tests run in .venv). Both front-ends' server
        # extensions get their settings (the notebook package's one serves Notebook 7's pages).
        cmd = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
            "--ServerApp.disable_check_xsrf=True", "--allow-root",
        ]
        for _, app in FRONTENDS.values():
            cmd += [f"--{app}.expose_app_in_browser=True", f"--{app}.user_settings_dir={work / 'settings'}",
                    f"--{app}.workspaces_dir={work / 'workspaces'}"]
        self.log = open(work / "lab.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=root)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early; log: {Path(self.log.name).read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2) as r:
                    json.load(r)
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s")

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def shutdown_kernels(self) -> None:
        """End every kernel, so one notebook's memory does not weigh on the next."""
        with urllib.request.urlopen(f"{self.base}/api/kernels?token={self.token}", timeout=10) as r:
            kernels = json.load(r)
        for kernel in kernels:
            req = urllib.request.Request(
                f"{self.base}/api/kernels/{kernel['id']}?token={self.token}", method="DELETE"
            )
            urllib.request.urlopen(req, timeout=30).close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@contextmanager
def lab_session(notebooks: list[Path], work: Path):
    """Yield ``(server, browser)`` with copies of ``notebooks`` served from ``work/root`` (``server.root``;
    files written there later are served too)."""
    from playwright.sync_api import sync_playwright

    root = work / "root"
    root.mkdir(parents=True, exist_ok=True)
    for nb in notebooks:
        shutil.copy(nb, root / nb.name)
    server = LabServer(root, work)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=find_chromium(), headless=True, args=CHROMIUM_FLAGS)
            try:
                yield server, browser
            finally:
                browser.close()
    finally:
        server.stop()


RUN_ALL = """async () => {
  const app = window.jupyterapp;
  await app.commands.execute('notebook:run-all-cells');
}"""

KERNEL_BUSY = """() => {
  const prompts = [...document.querySelectorAll('.jp-InputArea-prompt')].map(e => e.textContent);
  return prompts.some(t => t.includes('*'));
}"""


def open_notebook(page, server: LabServer, name: str, timeout_ms: int = 120_000, frontend: str = "lab") -> None:
    """Open notebook ``name`` in ``frontend`` (a key of ``FRONTENDS``) and wait for its kernel; a notebook
    whose kernel is already running (opened before in the other front-end) joins that kernel."""
    # A workspace per notebook, so JupyterLab does not also restore the notebooks opened before
    # (Notebook 7 opens one notebook per page and has no workspaces).
    workspace = "".join(c if c.isalnum() else "-" for c in Path(name).stem)
    url = server.url(FRONTENDS[frontend][0].format(workspace=workspace, name=name))
    page.goto(url + ("&reset" if frontend == "lab" else ""))
    page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=timeout_ms)
    # Wait for the kernel to be ready before running cells.
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
                  return w && w.sessionContext && w.sessionContext.session &&
                         w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'; }""",
        timeout=timeout_ms,
    )


def app_name_and_version(page) -> tuple[str, str]:
    """What the page runs: ("JupyterLab", "4.x") or ("Jupyter Notebook", "7.x")."""
    name, version = page.evaluate("() => [window.jupyterapp.name, window.jupyterapp.version]")
    return name, version


def run_all_cells(page, timeout_ms: int = 600_000) -> float:
    start = time.perf_counter()
    page.evaluate(RUN_ALL)
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
                  const s = w && w.sessionContext && w.sessionContext.session;
                  const k = s && s.kernel;
                  if (!k) return false;
                  const prompts = [...document.querySelectorAll('.jp-InputArea-prompt')].map(e => e.textContent);
                  return k.status === 'idle' && prompts.length > 0 && !prompts.some(t => t.includes('*'))
                         && !prompts.some(t => t.trim() === '[ ]:'); }""",
        timeout=timeout_ms,
        polling=500,
    )
    return time.perf_counter() - start


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def wait_widgets_rendered(page, timeout_ms: int = 60_000) -> bool:
    """Wait until every widget output in the notebook's model has a view in the page (or an error):
    the kernel going idle does not mean the browser has drawn the views yet. False on timeout."""
    try:
        page.wait_for_function(
            f"""() => {{
          const nb = window.jupyterapp.shell.currentWidget.content;
          let expected = 0;
          for (const cell of nb.model.cells) {{
            if (cell.type !== 'code') continue;
            for (let i = 0; i < cell.outputs.length; i++) {{
              const data = cell.outputs.get(i).data;
              if (data && data['{WIDGET_MIME}']) expected++;
            }}
          }}
          const views = document.querySelectorAll('.jp-OutputArea-output > .jupyter-widgets').length;
          const errors = (document.body.innerText.match(/Error displaying widget/g) || []).length;
          return expected > 0 && views + errors >= expected && !document.body.innerText.includes('Loading widget...');
        }}""",
            timeout=timeout_ms, polling=500,
        )
        page.wait_for_timeout(1000)  # views fill their children (plots, options) just after attaching
        return True
    except Exception:  # playwright TimeoutError
        return False


def page_problems(page) -> list[str]:
    """What a user would see as broken: widget errors, widgets stuck loading, tracebacks, a selector
    showing a blank box (a Dropdown whose value matches none of its options, e.g. ``None``)."""
    return page.evaluate(
        """() => {
      const out = [];
      const text = document.body.innerText;
      if (text.includes('Error displaying widget')) out.push('Error displaying widget');
      if (text.includes('Loading widget...')) out.push('Loading widget... left on the page');
      document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]').forEach(e => {
        if (e.innerText.includes('Traceback') || e.innerText.includes('Error')) out.push('stderr: ' + e.innerText.slice(0, 300));
      });
      document.querySelectorAll('.widget-dropdown select').forEach(e => {
        if (e.options.length && e.selectedIndex < 0) {
          const label = e.closest('.widget-dropdown').querySelector('label');
          out.push('blank selector: ' + (label ? label.innerText : '(no description)'));
        }
      });
      document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]').forEach(e => {
        out.push('error: ' + e.innerText.slice(0, 300));
      });
      return out;
    }"""
    )


PLOT_STATE = """() => [...document.querySelectorAll('.js-plotly-plot')].map(p => JSON.stringify(
    (p.data || []).map(t => [t.type, t.x, t.y, t.z, t.text, t.marker && t.marker.color])))"""


def plot_state(page) -> list[str]:
    return page.evaluate(PLOT_STATE)
