"""Look at one SAE feature: its decoder's direct logit readout and its top activating task samples."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from interp.core.readout import direction_logits, readout_frame
from interp.steering.errors import SteeringConfigError

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    from interp.steering.collect import Collection
    from interp.core.tasks import TaskProtocol

__all__ = ["logit_readout", "top_examples"]


@torch.no_grad()
def logit_readout(model: "HookedTransformer", sae: "SAE[Any]", feature: int, k: int = 10) -> pd.DataFrame:
    """Tokens the decoder direction ``W_dec[feature]`` promotes and suppresses through the unembedding
    (:func:`interp.core.readout.direction_logits`; the final norm's per-channel weight is applied)."""
    if isinstance(feature, bool) or not isinstance(feature, int) or not 0 <= feature < sae.cfg.d_sae:
        raise IndexError(f"feature {feature!r} is out of range for an SAE with d_sae={sae.cfg.d_sae}.")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= int(model.cfg.d_vocab):
        raise SteeringConfigError(f"logit_readout(k={k!r}) is invalid: it must be an integer in [1, {int(model.cfg.d_vocab)}].")
    return readout_frame(model, direction_logits(model, sae.W_dec[feature].detach()), k)


def top_examples(collection: "Collection", task: "TaskProtocol", hook: str, feature: int) -> pd.DataFrame:
    """The samples of ``task`` (the split ``collection`` was collected on) where ``feature`` was largest."""
    if hook not in collection.top_values:
        raise KeyError(f"No top examples for {hook!r}; collected hooks: {collection.hooks}.")
    if len(task.examples) != len(collection.labels):
        raise ValueError(f"The collection saw {len(collection.labels)} samples but the task has {len(task.examples)}: "
                         "pass the split that was collected.")
    vals = collection.top_values[hook][:, feature].tolist()
    idx = collection.top_indices[hook][:, feature].tolist()
    return pd.DataFrame([{"sample": i, "activation": v, "prompt": task.examples[i].prompt,
                          "generated": collection.generations[i], "answer": task.examples[i].answer,
                          "correct": bool(collection.labels[i])} for v, i in zip(vals, idx)])
