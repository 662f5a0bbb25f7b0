"""Where things live outside the package: the shared real models (``stories260K``) and the notebooks.

The library never assumes a repository layout; these lookups belong to the app layer (CLI, demo,
experiment runners) and are overridable by environment variables.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_model_dir", "notebook_dir"]


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
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared" / "models" / name
        if candidate.is_dir():
            return candidate
    return here.parent / "shared" / "models" / name


def notebook_dir(folder: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the numbered notebooks: ``folder``, else ``INTERP_NOTEBOOKS``, else ``./notebooks``."""
    path = Path(folder or os.environ.get("INTERP_NOTEBOOKS") or "notebooks").expanduser().resolve()
    if not any(path.glob("[0-9][0-9]_*.ipynb")):
        raise FileNotFoundError(
            f"No notebooks (NN_name.ipynb) in {path}. Run from the project folder, or pass --notebooks DIR "
            "(or set INTERP_NOTEBOOKS)."
        )
    return path
