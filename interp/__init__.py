"""interp: a Jupyter-first interpretability toolkit.

Four methods, each a sub-package: ``interp.lens`` / ``interp.translation`` (logit-lens
translation-barrier probing), ``interp.lorsa`` (low-rank sparse attention), ``interp.steering``
(CorrSteer) and ``interp.thr`` (token hidden reward). They stand on ``interp.core`` (models, tokens,
the one generation loop, activations, tasks, checkpoints) and ``interp.viz`` (figures); the bundled
models and artefacts live in :mod:`interp.zoo`; CLIs and the demo in ``interp.app``.

>>> from interp import load_model
>>> model = load_model("toy-lm")     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["load_model", "__version__"]


def load_model(source: Any, **kwargs: Any) -> Any:
    """Load a model by zoo name, local Hugging Face folder or hub name
    (:func:`interp.core.models.load_model` with the zoo's model names).

    >>> model = load_model("toy-lm")                           # doctest: +SKIP
    >>> model = load_model("../shared/models/stories260K")     # doctest: +SKIP
    """
    from interp import zoo
    from interp.core.models import load_model as _load

    kwargs.setdefault("names", zoo.named_folders())
    return _load(source, **kwargs)
