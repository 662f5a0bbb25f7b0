"""The environment is described once: pyproject, environment.yml and constraints.txt agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_deps() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {_name(d): d.replace(" ", "") for d in data["project"]["dependencies"]}


def _environment_pip_deps() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    deps = {}
    for line in lines[start + 1 :]:
        item = line.strip()
        if not item.startswith("- "):
            break
        item = item[2:].strip()
        if item.startswith("-e"):
            continue
        deps[_name(item)] = item.replace(" ", "")
    return deps


def test_environment_yml_matches_pyproject():
    assert _environment_pip_deps() == _pyproject_deps()


def test_constraints_pin_every_dependency_and_torch():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.lower().replace("_", "-")] = version
    assert pins.get("torch") == "2.13.0", "torch must stay pinned to the local CPU wheel's version"
    missing = sorted(set(_pyproject_deps()) - set(pins))
    assert not missing, f"constraints.txt lacks pins for {missing}"
    tl_major, tl_minor = (int(x) for x in pins["transformer-lens"].split(".")[:2])
    assert tl_major == 3 and tl_minor >= 9, "transformer-lens must be >=3.9,<4 (4.x removed HookedTransformer)"
    assert pins["sae-lens"].startswith("6.")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_library_never_imports_widgets():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "interp").rglob("*.py")
        if re.search(r"^\s*(import ipywidgets|from ipywidgets|import widgets|from widgets)", p.read_text(), re.M)
    ]
    assert not offenders, f"library modules import presentation code: {offenders}"


def test_no_pickle_loading():
    offenders = []
    for p in list((ROOT / "interp").rglob("*.py")) + list((ROOT / "widgets").rglob("*.py")):
        text = p.read_text()
        if "pickle.load" in text:
            offenders.append(str(p))
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            if "weights_only=True" not in call:
                offenders.append(f"{p}: {call}")
    assert not offenders, offenders
