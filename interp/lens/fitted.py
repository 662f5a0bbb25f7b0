"""What the tuned lens and the Jacobian lens share: a per-layer map fitted for one model's shape, the
check that a model has that shape, attachment (what ``decode_layers(..., lens="tuned"|"jacobian")``
finds), the held-out KL per layer, the token windows they are fitted on, and persistence as
safetensors (the maps) + JSON (shapes, model name, fit record), validated in full before any state
is touched.

A subclass names itself (``kind``, ``title``, its files) and says what its tensors are
(``_tensors`` / ``_tensor_shapes`` / ``_restore``); everything else lives here once.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from jaxtyping import Float, Int
from torch import Tensor, nn

from interp.core.errors import missing_file
from interp.core.frontend import d_model as d_model_of
from interp.core.frontend import n_layers as n_layers_of
from interp.core.frontend import output_device
from interp.core.tokens import Truncation, check_tokens
from interp.lens.errors import LensConfigError, LensLoadError
from interp.lens.kl import kl_by_layer

if TYPE_CHECKING:
    from typing import Self

    from transformer_lens import HookedTransformer

__all__ = ["FittedLens", "token_windows"]


def token_windows(model: "HookedTransformer", data: Any, ctx: int, truncate: Truncation | None = None, *,
                  what: str = "the lens's training tokens") -> Int[Tensor, "n ctx"]:
    """``data`` as ``[n, ctx]`` token windows: a token tensor as it is (length-checked), or texts packed
    into BOS-first ``ctx``-token windows (without the BOS the first positions are off-distribution)."""
    if isinstance(data, Tensor):
        return check_tokens(model, data, what=what, truncate=truncate, min_len=1)
    texts = [data] if isinstance(data, str) else list(data) if hasattr(data, "__iter__") else []
    if not texts or not all(isinstance(t, str) for t in texts):
        raise LensConfigError("Training data must be a [n, ctx] token tensor or a non-empty list of strings.")
    from interp.core.activations import text_tokens

    return text_tokens(model, texts, ctx)


class FittedLens(nn.Module):
    """Base of :class:`~interp.lens.tuned.TunedLens` and :class:`~interp.lens.jacobian.JacobianLens`:
    per-layer maps for lens indices ``0..n_layers-1``; the last index (the model's output) has none,
    so every fitted lens still equals the logits there."""

    kind: ClassVar[str] = ""
    """The name ``decode_layers(..., lens=...)`` takes and results record."""
    title: ClassVar[str] = ""
    """How messages name the lens ("tuned lens")."""
    weights_file: ClassVar[str] = ""
    config_file: ClassVar[str] = ""
    format: ClassVar[str] = ""
    make_hint: ClassVar[str] = ""
    """How to make one for a model, for error messages."""
    nonfinite_hint: ClassVar[str] = ""
    """Why a saved lens would hold NaN or inf, for error messages."""
    _attached: ClassVar["weakref.WeakKeyDictionary[nn.Module, FittedLens]"]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._attached = weakref.WeakKeyDictionary()  # one registry per kind of lens

    def __init__(self, n_layers: int, d_model: int, *, model_name: str = ""):
        super().__init__()
        self.n_layers = n_layers
        self.d_model = d_model
        self.model_name = model_name

    # ---- one model -------------------------------------------------------------------------
    @classmethod
    def for_model(cls, model: "HookedTransformer") -> "Self":
        """An unfitted lens (the identity: the logit lens) shaped for ``model``, on its output device."""
        return cls(n_layers_of(model), d_model_of(model), model_name=str(getattr(model.cfg, "model_name", ""))).to(
            output_device(model))

    def check_model(self, model: "HookedTransformer") -> None:
        if (n_layers_of(model), d_model_of(model)) != (self.n_layers, self.d_model):
            raise LensConfigError(
                f"This {self.title} was made for n_layers={self.n_layers}, d_model={self.d_model} "
                f"({self.model_name or 'unnamed model'}); the model has n_layers={n_layers_of(model)}, "
                f"d_model={d_model_of(model)}. {self.make_hint}")

    def attach(self, model: "HookedTransformer") -> "Self":
        """Make this the lens ``decode_layers(..., lens=<kind>)`` uses for ``model``."""
        self.check_model(model)
        type(self)._attached[model] = self
        return self

    @classmethod
    def attached(cls, model: "HookedTransformer") -> "Self | None":
        """The lens of this kind attached to ``model``, if any."""
        return cls._attached.get(model)

    # ---- translation ----------------------------------------------------------------------
    def translate(
        self, resid: Float[Tensor, "batch n_sel n_pos d_model"], layers: Sequence[int]
    ) -> Float[Tensor, "batch n_sel n_pos d_model"]:
        """Map the residuals of lens indices ``layers`` (index ``n_layers`` passes unchanged)."""
        raise NotImplementedError

    def translate_all(self, x: Float[Tensor, "n_layers rows d_model"]) -> Float[Tensor, "n_layers rows d_model"]:
        """Map rows of every lens index ``0..n_layers-1`` at once (the KL's inner loop)."""
        return self.translate(x[None], list(range(x.shape[0])))[0]

    def kl_by_layer(self, model: "HookedTransformer", tokens: Int[Tensor, "n ctx"]) -> Float[Tensor, "n_layers"]:
        """Mean KL(final || this lens) per lens index ``0..n_layers-1`` on ``tokens``."""
        return kl_by_layer(model, tokens, self)

    # ---- persistence ----------------------------------------------------------------------
    def _tensors(self) -> dict[str, Tensor]:
        """What the weights file holds."""
        raise NotImplementedError

    @classmethod
    def _tensor_shapes(cls, n_layers: int, d_model: int) -> dict[str, tuple[int, ...]]:
        """The shapes the weights file must hold for a lens of this size."""
        raise NotImplementedError

    def _meta(self) -> dict[str, Any]:
        """The fit record saved beside the shapes (JSON)."""
        return {}

    def _restore(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        """Set the state from validated ``tensors`` and ``meta``."""
        raise NotImplementedError

    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self._tensors().items()},
                  str(folder / self.weights_file))
        meta = dict(n_layers=self.n_layers, d_model=self.d_model, model_name=self.model_name, format=self.format,
                    **self._meta())
        (folder / self.config_file).write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path, model: "HookedTransformer | None" = None, *, attach: bool = True) -> "Self":
        """Read a lens saved by :meth:`save`. Every file is checked (presence, JSON, shapes, finite
        values, the model's shape) before a lens is made or attached."""
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg_path, w_path = folder / cls.config_file, folder / cls.weights_file
        if not w_path.is_file() or not cfg_path.is_file():
            absent = ", ".join(p.name for p in (cfg_path, w_path) if not p.is_file())
            raise missing_file(LensLoadError,
                               f"{folder} is not a saved {cls.title}: it needs {cls.weights_file} and "
                               f"{cls.config_file} (written by {cls.__name__}.save); missing {absent}.")
        try:
            meta = json.loads(cfg_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise LensLoadError(f"{cfg_path} is not valid JSON ({err}); save the lens again.") from err
        if not isinstance(meta, dict) or not all(isinstance(meta.get(k), int) and meta[k] > 0
                                                 for k in ("n_layers", "d_model")):
            raise LensLoadError(f"{cfg_path} does not describe a {cls.title}: it needs positive integers n_layers "
                                f"and d_model (written by {cls.__name__}.save).")
        n, d = meta["n_layers"], meta["d_model"]
        try:
            tensors = load_file(str(w_path))
        except (SafetensorError, OSError, RuntimeError, ValueError) as err:
            raise LensLoadError(f"{w_path} is corrupt or truncated ({err}); save the lens again.") from err
        shapes = {k: tuple(v.shape) for k, v in tensors.items()}
        if shapes != cls._tensor_shapes(n, d):
            raise LensLoadError(f"{w_path} does not match {cls.config_file} (n_layers={n}, d_model={d}): it holds "
                                f"{shapes}; the folder mixes two lenses.")
        if not all(torch.isfinite(t).all() for t in tensors.values()):
            raise LensLoadError(f"{w_path} holds NaN or inf entries: {cls.nonfinite_hint}")
        lens = cls(n, d, model_name=meta.get("model_name", ""))
        if model is not None:
            lens.check_model(model)  # before anything is attached
        lens._restore(tensors, meta)
        if model is not None:
            lens.to(output_device(model))
            if attach:
                lens.attach(model)
        return lens
