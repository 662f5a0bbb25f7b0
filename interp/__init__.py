"""interp: a Jupyter-first interpretability toolkit.

Four methods, each a sub-package: ``interp.lens`` / ``interp.translation`` (logit-lens
translation-barrier probing), ``interp.lorsa`` (low-rank sparse attention), ``interp.steering``
(CorrSteer) and ``interp.thr`` (token hidden reward). Models load through
:func:`interp.models.load_model`; small bundled models live in :mod:`interp.zoo`.
"""

__version__ = "0.1.0"

from interp.models import load_model  # noqa: E402  (cheap: heavy imports happen inside)

__all__ = ["load_model", "__version__"]
