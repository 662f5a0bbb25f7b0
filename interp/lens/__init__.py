"""Logit lens, tuned lens and Jacobian lens: decode what each layer of a TransformerLens model predicts.

>>> from interp.lens import decode_layers
>>> res = decode_layers(model, ["The capital of France is"], k=5)   # doctest: +SKIP
>>> res.to_frame().head()                                            # doctest: +SKIP
"""

from interp.core.tokens import encode_prompts
from interp.lens.compare import LensComparison, compare_lenses
from interp.lens.decode import decode_layers, decode_residuals, lens_name, resolve_lens
from interp.lens.jacobian import JacobianLens, JacobianLensConfig, attached_jacobian_lens
from interp.lens.layers import layer_hook_name, resolve_layers
from interp.lens.result import LensResult, layer_label
from interp.lens.fitted import FittedLens
from interp.lens.kl import kl_by_layer
from interp.lens.tuned import TunedLens, TunedLensConfig, attached_lens
from interp.lens.unembed import DEFAULT_CHUNK, unembed_topk

__all__ = [
    "decode_layers",
    "decode_residuals",
    "layer_hook_name",
    "resolve_layers",
    "resolve_lens",
    "lens_name",
    "layer_label",
    "LensResult",
    "FittedLens",
    "TunedLens",
    "TunedLensConfig",
    "attached_lens",
    "compare_lenses",
    "LensComparison",
    "JacobianLens",
    "JacobianLensConfig",
    "attached_jacobian_lens",
    "kl_by_layer",
    "encode_prompts",
    "unembed_topk",
    "DEFAULT_CHUNK",
]
