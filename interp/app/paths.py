"""Where things live outside the package: the shared real models (``stories260K``), the shared fixtures
(``lorsa-authors-stories260K-L2``) and the notebooks.

The library never assumes a repository layout; these lookups belong to the app layer (CLI, demo,
experiment runners) and are overridable by environment variables.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_model_dir", "shared_fixture_dir", "AUTHORS_LORSA_FIXTURE", "notebook_dir"]

AUTHORS_LORSA_FIXTURE = "lorsa-authors-stories260K-L2"
"""The shared fixture holding a Lorsa trained and saved by the Lorsa authors' own code (see its README)."""


def shared_model_dir(name: str = "stories260K") -> Path:
    """Folder of a model kept beside the project (``../shared/models/<name>``).

    ``INTERP_STORIES260K`` overrides the stories260K location and ``INTERP_SHARED_MODELS`` the parent
    folder of every shared model; otherwise the first ``shared/models/<name>`` found in the working
    directory or one of its parents (a checkout with ``../shared`` beside it finds it).

    >>> shared_model_dir("stories260K").name
    'stories260K'
    """
    if name == "stories260K" and os.environ.get("INTERP_STORIES260K"):
        return Path(os.environ["INTERP_STORIES260K"]).expanduser()
    base = os.environ.get("INTERP_SHARED_MODELS")
    if base:
        return Path(base).expanduser() / name
    found = _first_shared("models", name)
    return found if found is not None else Path.cwd().resolve().parent / "shared" / "models" / name


def _first_shared(kind: str, name: str) -> Path | None:
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared" / kind / name
        if candidate.is_dir():
            return candidate
    return None


def shared_fixture_dir(name: str = AUTHORS_LORSA_FIXTURE) -> Path:
    """Folder of a fixture kept beside the project (``../shared/fixtures/<name>``); it may not exist.

    ``INTERP_LORSA_AUTHORS_FIXTURE`` overrides the authors' Lorsa fixture's location and
    ``INTERP_SHARED_FIXTURES`` the parent folder of every fixture; otherwise the first
    ``shared/fixtures/<name>`` found in the working directory or one of its parents, then the
    ``fixtures`` folder beside the shared models (:func:`shared_model_dir`). Callers check ``is_dir()``.

    >>> shared_fixture_dir().name
    'lorsa-authors-stories260K-L2'
    """
    if name == AUTHORS_LORSA_FIXTURE and os.environ.get("INTERP_LORSA_AUTHORS_FIXTURE"):
        return Path(os.environ["INTERP_LORSA_AUTHORS_FIXTURE"]).expanduser()
    base = os.environ.get("INTERP_SHARED_FIXTURES")
    if base:
        return Path(base).expanduser() / name
    found = _first_shared("fixtures", name)
    if found is not None:
        return found
    beside_models = shared_model_dir().resolve().parent.parent / "fixtures" / name
    if beside_models.is_dir():
        return beside_models
    return Path.cwd().resolve().parent / "shared" / "fixtures" / name


def notebook_dir(folder: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the numbered notebooks: ``folder``, else ``INTERP_NOTEBOOKS``, else ``./notebooks``."""
    path = Path(folder or os.environ.get("INTERP_NOTEBOOKS") or "notebooks").expanduser().resolve()
    if not any(path.glob("[0-9][0-9]_*.ipynb")):
        raise FileNotFoundError(
            f"No notebooks (NN_name.ipynb) in {path}. Run from the project folder, or pass --notebooks DIR "
            "(or set INTERP_NOTEBOOKS)."
        )
    return path
