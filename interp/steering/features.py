"""Look at one SAE feature: its decoder's direct logit readout and its top activating task samples."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    from interp.steering.collect import Collection
    from interp.core.tasks import TaskProtocol

__all__ = ["logit_readout", "top_examples"]


@torch.no_grad()
def logit_readout(model: "HookedTransformer", sae: "SAE[Any]", feature: int, k: int = 10) -> pd.DataFrame:
    """Tokens the decoder direction ``W_dec[feature]`` promotes and suppresses through the unembedding
    (``W_dec[i] @ W_U``; the final norm's per-channel weight is applied when the model has one)."""
    direction = sae.W_dec[feature].detach().to(model.W_U.dtype)
    ln = getattr(model, "ln_final", None)
    w = getattr(ln, "w", None)
    if isinstance(w, torch.Tensor) and w.shape == direction.shape:
        direction = direction * w  # unfolded RMSNorm/LayerNorm scale (raw weights)
    logits = direction @ model.W_U
    top, bottom = logits.topk(k), (-logits).topk(k)
    decode = (lambda i: model.tokenizer.decode([i])) if model.tokenizer is not None else str
    rows = [{"direction": "promotes", "token": decode(int(i)), "logit": float(v)} for v, i in zip(top.values, top.indices)]
    rows += [{"direction": "suppresses", "token": decode(int(i)), "logit": -float(v)}
             for v, i in zip(bottom.values, bottom.indices)]
    return pd.DataFrame(rows)


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
