"""Notebook widgets for interp (ipywidgets + plotly). They only present results and call back
into ``interp``; every one has ``.export(path)`` and shows a static figure outside a live kernel.

Names are imported lazily so ``import widgets`` stays cheap and one missing optional piece does not
break the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LensExplorer": "widgets.lens_explorer",
    "HeadBrowser": "widgets.head_browser",
    "SteeringPanel": "widgets.steering_panel",
    "THRViewer": "widgets.thr_viewer",
    "THRTrainingViewer": "widgets.thr_training_viewer",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'widgets' has no attribute {name!r}; available: {', '.join(_EXPORTS)}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
