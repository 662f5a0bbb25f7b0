"""Quiet by default: ``load_model`` prints nothing and warns nothing (toy-lm and stories260K, both front-ends),
in a fresh process (where one-time notices would appear) and in this one (captured at the file descriptors, so
a C-level or logging write counts too); progress bars stay off when output is not a terminal."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings

import pytest

from conftest import shared_model_dir

_HAS_STORIES = (shared_model_dir() / "config.json").is_file()
_SOURCES = ["toy-lm"] + ([str(shared_model_dir())] if _HAS_STORIES else [])


def _zoo_has_toy_lm() -> bool:
    from interp import zoo

    try:
        zoo.model_dir("toy-lm")
    except FileNotFoundError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _zoo_has_toy_lm(), reason="toy-lm is not trained (make zoo)")

_SCRIPT = """
import warnings
warnings.simplefilter("always")  # show every warning, even those Python hides by default
from interp import load_model
for source in {sources!r}:
    for frontend in ("bridge", "hooked"):
        load_model(source, frontend=frontend, device="cpu")
"""


@pytest.mark.slow  # ~27 s on the shared 2-core machine (a fresh interpreter importing torch and transformers)
def test_a_fresh_process_loading_every_model_prints_nothing():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "always"}
    env.pop("TQDM_DISABLE", None)
    proc = subprocess.run([sys.executable, "-c", _SCRIPT.format(sources=_SOURCES)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "", proc.stdout[:2000]
    assert proc.stderr == "", proc.stderr[:2000]


@pytest.mark.parametrize("frontend", ["bridge", "hooked"])
@pytest.mark.parametrize("source", _SOURCES, ids=lambda s: os.path.basename(s))
def test_load_model_prints_and_warns_nothing(capfd, source, frontend):
    from interp import load_model

    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(source, frontend=frontend, device="cpu")
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out[:500], err[:500])
    assert [str(w.message)[:200] for w in caught] == []
    assert model is not None


def test_progress_bars_stay_off_in_a_log_file():
    """progress=True draws on a terminal; into a file or pipe (a background run's log) it writes nothing."""
    from interp.core.progress import progress_bar

    log = io.StringIO()  # not a TTY, like `nohup ... > log`
    assert sum(progress_bar(range(50), progress=True, file=log)) == sum(range(50))
    assert log.getvalue() == ""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    for _ in progress_bar(range(3), progress=True, file=term):
        pass
    assert "3/3" in term.getvalue()
    term = Terminal()
    for _ in progress_bar(range(3), progress=False, file=term):
        pass
    assert term.getvalue() == ""


def test_every_bar_in_interp_goes_through_the_policy():
    """No ``tqdm(...)`` call without ``disable=bar_disabled(...)`` (or progress_bar): a bar that ignores the policy
    writes hundreds of carriage-return updates into non-terminal logs."""
    import re
    from pathlib import Path

    import interp

    offenders = []
    for path in Path(interp.__file__).parent.rglob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"\btqdm\(", text):
            call = text[m.start(): m.start() + 400]
            depth, end = 0, None
            for i, ch in enumerate(call):
                depth += ch == "("
                depth -= ch == ")"
                if depth == 0 and ch == ")":
                    end = i
                    break
            if "disable=" not in call[: end or len(call)]:
                offenders.append(f"{path.name}: {call[:80]!r}")
    assert offenders == []


def test_loading_bundled_saes_warns_nothing():
    """sae-lens's import warns about a TransformerLens module (not ours); the filter sits around our import of it."""
    script = ("import warnings\nwarnings.simplefilter('always')\nfrom interp import zoo\n"
              "zoo.load_saes('toy-lm-saes')\nzoo.load_lorsa()\n")
    from interp import zoo

    try:
        zoo.artefact_dir("toy-lm-saes"), zoo.artefact_dir("stories260K-lorsa-L2")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "" and proc.stderr == "", (proc.stdout[:1000], proc.stderr[:2000])


def test_every_notebook_cell_has_an_id():
    """nbformat 4.5 cells need ids; a cell without one makes every run of the demo print a
    MissingIDFieldWarning (a notebook edited by hand is the usual cause)."""
    import json
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        missing = [i for i, c in enumerate(nb["cells"]) if "id" not in c]
        assert not missing, f"{path.name}: cells {missing} have no id"


def test_notebook_runs_leave_no_kernel_behind(tmp_path):
    """The runner shuts its kernel down: a kernel that outlives the process warns "Parent appears to
    have exited" into the console (four times after every `make demo`). The pipe stays open until the
    last kernel exits, so a lingering kernel's warning is captured here."""
    from pathlib import Path

    script = (
        "import nbformat, pathlib; from interp.app.notebooks import execute_notebook\n"
        f"d = pathlib.Path({str(tmp_path)!r}); nb = nbformat.v4.new_notebook()\n"
        "nb.cells = [nbformat.v4.new_code_cell('x = 1 + 1')]; nbformat.write(nb, d / 't.ipynb')\n"
        "execute_notebook(d / 't.ipynb', out_dir=d / 'o', html=False)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=str(Path(__file__).resolve().parent.parent))
    assert run.returncode == 0, run.stderr
    assert "Parent appears to have exited" not in run.stderr, run.stderr
