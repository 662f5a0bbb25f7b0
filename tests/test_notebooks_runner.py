"""Parameter injection and headless execution of notebooks."""

from __future__ import annotations

import nbformat
import pytest

from interp.notebooks import NotebookExecutionError, execute_notebook, inject_parameters


def _notebook(path, body="print(N * 2)"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# test"),
        nbformat.v4.new_code_cell("N = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ]
    nbformat.write(nb, path)
    return path


def test_inject_after_parameters_cell(tmp_path):
    nb = nbformat.read(_notebook(tmp_path / "a.ipynb"), as_version=4)
    inject_parameters(nb, {"N": 21, "NAME": "x"})
    assert nb.cells[2].source.splitlines()[1:] == ["N = 21", "NAME = 'x'"]
    with pytest.raises(ValueError, match="identifier"):
        inject_parameters(nb, {"not valid": 1})


def test_missing_parameters_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    with pytest.raises(ValueError, match="tagged 'parameters'"):
        inject_parameters(nb, {"N": 1})


def test_execute_writes_outputs_and_html(tmp_path):
    run = execute_notebook(_notebook(tmp_path / "a.ipynb"), parameters={"N": 21}, out_dir=tmp_path / "out")
    nb = nbformat.read(run.executed, as_version=4)
    assert nb.cells[-1].outputs[0]["text"].strip() == "42"
    assert "42" in run.html.read_text()


def test_failing_cell_raises_with_name(tmp_path):
    path = _notebook(tmp_path / "bad.ipynb", body="raise RuntimeError('boom')")
    with pytest.raises(NotebookExecutionError, match=r"(?s)bad.ipynb failed.*RuntimeError: boom"):
        execute_notebook(path, out_dir=tmp_path / "out")
