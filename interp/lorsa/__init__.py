"""Lorsa: low-rank sparse attention (He et al. 2025, arXiv 2504.20938).

A sparse replacement for one attention layer: many rank-1 OV heads share a few QK heads and only
the top-K heads fire per token, so attention computation splits into interpretable heads.

>>> from interp.lorsa import LorsaConfig, train_lorsa, evaluate_lorsa        # doctest: +SKIP
>>> cfg = LorsaConfig.from_model(model, layer=2, expansion=8, top_k=16)       # doctest: +SKIP
>>> lorsa = train_lorsa(model, 2, tokens, cfg).lorsa                          # doctest: +SKIP
>>> evaluate_lorsa(model, lorsa, held_out).to_frame()                         # doctest: +SKIP
"""

from interp.lorsa.analyze import HeadScores, TopContexts, head_loss_attribution, head_scores, ov_readout, top_contexts
from interp.lorsa.config import Activation, LorsaConfig, LorsaConfigError, UnsupportedModelError, hook_names
from interp.lorsa.evaluate import LorsaEval, evaluate_lorsa
from interp.lorsa.init import host_attention, init_from_host
from interp.lorsa.model import Lorsa, LorsaLoadError
from interp.lorsa.train import CheckpointError, LorsaTrainConfig, LorsaTrainResult, train_lorsa

__all__ = [
    "Activation", "LorsaConfig", "LorsaConfigError", "UnsupportedModelError", "hook_names",
    "Lorsa", "LorsaLoadError", "host_attention", "init_from_host",
    "LorsaTrainConfig", "LorsaTrainResult", "train_lorsa", "CheckpointError",
    "LorsaEval", "evaluate_lorsa",
    "TopContexts", "top_contexts", "HeadScores", "head_scores", "ov_readout", "head_loss_attribution",
]
